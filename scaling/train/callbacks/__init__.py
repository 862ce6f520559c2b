"""A run's side jobs as callbacks: named hooks the run calls at fixed moments, so the trainer stays a plain loop.

Hooks, in the order a run calls them (``scaling/train/lifecycle.py`` ``Run.train``):

    on_start(run)                 the state is ready, before the first step of this call to ``train``
    after_eval(run, row)          a step whose row carries a validation loss, before that step's ``after_step``
    after_step(run, row)          each optimizer step; a callback may end the run here with ``run.stop(...)``
    after_checkpoint(run)         a resumable checkpoint and the metrics up to it are on disk
    on_finish(run, summary)       always, once per ``on_start``, whatever ended the run (its summary says what)

Once a callback has called ``run.stop``, the callbacks after it are not called for that step. A user's own callback
is any object with these five methods (``Callback`` is the protocol; subclassing it gives no-op defaults), passed as
``scaling.train.train(cfg, callbacks=[...])`` (the order: scaling/train/callbacks/defaults.py); it runs after the
built-in observers (progress, wandb) and before the callbacks that may stop the run, so it sees every step that was
trained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from scaling.core.records import RunSummary
    from scaling.train.lifecycle import Run


@runtime_checkable
class Callback(Protocol):
    """The hooks of a run's side job; every hook returns None."""

    def on_start(self, run: "Run") -> None:
        """The run is about to take its first step (of this call to ``Run.train``)."""
        return None  # a no-op default for subclasses (a body, so mypy does not take it as abstract)

    def after_step(self, run: "Run", row: dict[str, Any]) -> None:
        """Step ``row['step']`` is done and appended to ``run.state.rows``."""
        return None  # a no-op default for subclasses (a body, so mypy does not take it as abstract)

    def after_eval(self, run: "Run", row: dict[str, Any]) -> None:
        """``row['val_loss']`` was measured after this step."""
        return None  # a no-op default for subclasses (a body, so mypy does not take it as abstract)

    def after_checkpoint(self, run: "Run") -> None:
        """``checkpoint.pt`` and ``metrics.parquet`` hold the state after ``run.state.step``."""
        return None  # a no-op default for subclasses (a body, so mypy does not take it as abstract)

    def on_finish(self, run: "Run", summary: "RunSummary") -> None:
        """The run stopped (complete, diverged, halted, preempted or failed); release what ``on_start`` took."""
        return None  # a no-op default for subclasses (a body, so mypy does not take it as abstract)


HOOKS = ("on_start", "after_step", "after_eval", "after_checkpoint", "on_finish")
