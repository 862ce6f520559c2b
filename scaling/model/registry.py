"""Which module a shape's ``arch`` builds: ``gpt`` (scaling/model/gpt.py), ``llama`` (scaling/model/llama.py) or a
user's ``<module>:<Class>`` (scaling/model/user.py). Every model the trainer builds goes through ``build``, which
checks the module's parameter count against the analytic one before any compute."""

from __future__ import annotations

import torch.nn as nn

from scaling.core import archs
from scaling.core.family import Shape


def prepare(arch: str, shape: Shape | None = None) -> None:
    """Make ``arch`` known to scaling.core.archs (a user's class: load, check the protocol, register; with a shape,
    also its parameter count against its modules). ValueError in one line otherwise. Nothing to do for built-ins."""
    if arch in archs.BUILTIN:
        return
    from scaling.model import user

    ua = user.load(arch)
    if shape is not None:
        user.check(ua, shape)


def build(shape: Shape) -> nn.Module:
    """The model of ``shape`` on CPU, initialised from torch's current seed, its parameter count checked."""
    if shape.arch == "gpt":
        from scaling.model.gpt import GPT

        gpt = GPT(shape)
        gpt.check_param_count()
        return gpt
    if shape.arch == "llama":
        from scaling.model.llama import Llama

        llama = Llama(shape)
        llama.check_param_count()
        return llama
    else:
        from scaling.model import user

        ua = user.load(shape.arch)
        model = ua.cls(shape)
        own = sum(p.numel() for p in model.parameters())
        if own != shape.params_total():
            raise ValueError(
                f"model.arch={shape.arch!r}: param_counts gives total={shape.params_total():,}, "
                f"the module holds {own:,}"
            )
    return model
