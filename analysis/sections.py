"""How an analysis runs its sections: each one timed (``Sections``, with a line per section on stderr from
``progress_to_stderr``), the ones that need only the runs started beside the main fits in a second process
(``SideJobs``), and a section that fails kept as a note, not raised (``attempt``)."""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable


class Sections:
    """Wall time of each section of an analysis (and of the report around it), told to ``tell(name, seconds,
    elapsed)`` as each ends, so that a command line can print a line per section while the report works."""

    def __init__(self, tell: Callable[[str, float, float], None] | None = None):
        self.tell = tell
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}  # this process's CPU time (worker processes not counted)
        self.start = time.perf_counter()

    @contextmanager
    def __call__(self, name: str):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            now = time.perf_counter()
            self.seconds[name] = self.seconds.get(name, 0.0) + now - t0
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + time.process_time() - c0
            if self.tell is not None:
                self.tell(name, now - t0, now - self.start)


class SideJobs:
    """Sections that depend only on the runs (convention robustness, the rolling backtest), started at once in one
    worker process beside the main fits (a report's process pool over 2 cores), collected where the report needs
    them. With ``n_jobs`` 1 they run in this process when collected, so one core does all the work in order."""

    def __init__(self, n_jobs: int | None):
        import os

        self.pool = None
        if (n_jobs is None or n_jobs < 0 or n_jobs > 1) and (os.cpu_count() or 1) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawned, not forked: the parent may hold threads (Approach 3's batched refits, joblib's pool)
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self.jobs: dict[str, Any] = {}

    def submit(self, key: str, what: str, fn, *args, **kw) -> None:
        call = (key, what, fn, args, kw)
        self.jobs[key] = self.pool.submit(_side_call, *call) if self.pool is not None else call

    def has(self, key: str) -> bool:
        return key in self.jobs

    def result(self, key: str, notes: dict):
        job = self.jobs.pop(key)
        if self.pool is None:
            out, side_notes = _side_call(*job)
        else:
            try:
                out, side_notes = job.result()
            except Exception as e:  # the worker itself died (memory, a signal): a note, as any failed section
                out, side_notes = None, {key: f"{key} not computed: {type(e).__name__}: {e}"}
        notes.update(side_notes)
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _side_call(key, what, fn, args, kw):
    notes: dict = {}
    return attempt(notes, key, what, fn, *args, **kw), notes


def progress_to_stderr(name: str, seconds: float, elapsed: float) -> None:
    """``Sections``' line on stderr: elapsed time, the section and its own time."""
    import sys

    print(f"[{elapsed:6.1f} s] {name} ({seconds:.1f} s)", file=sys.stderr, flush=True)


def attempt(notes: dict, key: str, what: str, fn, *args, **kw):
    """``fn(*args, **kw)``, or None with ``notes[key]`` saying why. Warnings the fit raises (a minimum at the edge
    of the sampled sizes, a budget without a minimum) are kept in the notes too, not printed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = fn(*args, **kw)
        except Exception as e:
            notes[key] = f"{what}: {type(e).__name__}: {e}"
            out = None
    msgs = list(
        dict.fromkeys(
            str(w.message)
            for w in caught
            if not issubclass(w.category, DeprecationWarning) and not issubclass(w.category, RuntimeWarning)
        )
    )
    if msgs:
        k = key if key not in notes else f"{key}_warnings"
        notes[k] = (notes.get(k, "") + " " if k in notes else "") + "; ".join(msgs)
    return out
