"""The one error a config can raise, and the check every config field uses to raise it."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value out of range; the message names the field, the value and what is allowed."""


def require(cond: bool, field_name: str, value: Any, allowed: str) -> None:
    """``cond`` or a ConfigError "<field>=<value>: must be <allowed>"."""
    if not cond:
        raise ConfigError(f"{field_name}={value!r}: must be {allowed}")


def one_of(choices: tuple[str, ...]) -> str:
    """What a choice field allows, in words: "'auto', 'fp32' or 'bf16'"."""
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
