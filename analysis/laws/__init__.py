"""Scaling laws as values: their forms, the published laws, and the FLOP conventions that put them on one axis."""

from __future__ import annotations

from analysis.laws.published import *  # noqa: F401,F403  (`from analysis.laws import PUBLISHED` as before the move)
