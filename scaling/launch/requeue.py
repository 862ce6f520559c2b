"""Preemption under submitit (Hydra's submitit launcher, on SLURM or its local executor): the extra signal submitit
announces a time limit or preemption with, and handing a checkpointed run back to submitit so it requeues the job.

On SLURM, submitit asks for ``--signal=USR2@<signal_delay_s>`` (its ``SUBMITIT_PREEMPT_SIGNAL``) and, in the job,
binds that signal to a handler that pickles the job again (Hydra's launcher is checkpointable: it resubmits the same
sweep point), requeues it (``scontrol requeue``; the local executor restarts the task) and exits. The trainer catches
that signal like SIGTERM and SIGUSR1: it finishes the step, writes its checkpoint, and only then calls submitit's
handler, so the requeued job finds the checkpoint and resumes the run exactly where it stopped.
"""

from __future__ import annotations

import os
import signal
import sys


def under_submitit() -> bool:
    return bool(os.environ.get("SUBMITIT_EXECUTOR"))


def signals() -> tuple[signal.Signals, ...]:
    """The signal submitit reserves for preemption and time limits, when this process is a submitit job."""
    if not under_submitit():
        return ()
    from submitit import JobEnvironment

    return (JobEnvironment._usr_sig(),)


def hand_over() -> None:
    """Under submitit, with the run's checkpoint written: requeue through submitit's own handler, which exits the
    process (``scontrol requeue`` on SLURM; the local executor restarts the task). Elsewhere: return (exit 75)."""
    if not under_submitit():
        return
    from submitit import JobEnvironment

    sig = JobEnvironment._usr_sig()
    handler = signal.getsignal(sig)
    if not callable(handler) or getattr(handler, "__name__", "") != "checkpoint_and_try_requeue":
        return  # not a job submitit started with its handlers: the caller exits 75 as usual
    print(f"[train] handing the job to submitit to requeue it ({signal.Signals(sig).name} handler)", file=sys.stderr)
    handler(sig, None)  # requeues and exits; returns only on a rank other than 0 of a multi-task job
