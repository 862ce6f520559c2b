"""How many runs of a sweep share one device, and which device each job of a sweep trains on: several small runs per
GPU (or one-thread runs per CPU core), chosen from each run's memory estimate (scaling/model/memory.py).

    python -m scaling.launch.placement -cd sweeps -cn isoflop_gpu [overrides]  # prints n_jobs for the joblib launcher
    python -m scaling.train -cd sweeps -cn isoflop_gpu \\
        hydra.launcher.n_jobs=$(python -m scaling.launch.placement -cd sweeps -cn isoflop_gpu)

Runs on a device at once (``runs_per_device``): on CUDA, as many as the device's memory holds by every run's estimate
(with its margin and per-process overhead, which covers a CUDA context), at most ``MAX_RUNS_PER_GPU``, and 1 when any
run of the sweep has more than ``SMALL_PARAMS`` parameters (a large model fills a GPU by itself). The processes share
the GPU through time-slicing, or through CUDA MPS where its daemon runs (``nvidia-cuda-mps-control -d``: kernels of
different processes then overlap). On CPU, one run per ``train.threads`` cores, as many as memory holds.
Which device (``slot``): in a multirun on a machine with several GPUs, each running job takes the lowest free slot
(an flock in the sweep's Hydra folder), and slot k trains on cuda:(k mod GPUs), so the GPUs fill evenly however
long each run takes. Hydra's joblib launcher runs the jobs; this module schedules nothing itself.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from scaling.model import memory

if TYPE_CHECKING:
    from scaling.config.schema import Config

SMALL_PARAMS = 20_000_000  # runs up to this many parameters may share a GPU
MAX_RUNS_PER_GPU = 8  # past a handful of processes a GPU is busy: more only adds contention


@dataclass(frozen=True)
class RunNeed:
    run_id: str
    params: int
    needed_bytes: int  # memory estimate with margin and overhead (memory.MemoryEstimate.needed_bytes)
    threads: int


def runs_per_device(
    needs: list[RunNeed], *, device_type: str, device_bytes: int, cores: int = 1, max_runs: int = MAX_RUNS_PER_GPU
) -> int:
    """How many of these runs may train on one device at once (the worst run decides)."""
    if not needs:
        raise ValueError("runs_per_device: a sweep with no runs")
    by_memory = max(1, device_bytes // max(n.needed_bytes for n in needs))
    if device_type == "cpu":
        return max(1, min(by_memory, cores // max(1, max(n.threads for n in needs))))
    if max(n.params for n in needs) > SMALL_PARAMS:
        return 1
    return max(1, min(by_memory, max_runs))


def device_memory(device_type: str) -> tuple[int, int]:
    """(bytes one device has for runs, number of devices): total memory of GPU 0, or available host memory."""
    if device_type == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory), torch.cuda.device_count()
    import torch

    return int(memory.available_bytes(torch.device("cpu")) or 0), 1


def sweep_needs(config_dir: str, config_name: str, overrides: list[str]) -> tuple[list[RunNeed], str]:
    """Every run of a sweep preset (its sweeper params crossed, as Hydra's basic sweeper does) with its memory
    estimate, and the device type the runs ask for."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from scaling.config.hydra_tree import override_line, register, sweep_jobs
    from scaling.train.lifecycle import resolve
    from scaling.train.loop import compute_for

    register()
    parser = OverridesParser.create()
    cli = parser.parse_overrides(overrides)
    fixed = [override_line(o) for o in cli if not o.is_sweep_override() and not o.key_or_group.startswith("hydra")]
    swept = {o.key_or_group: override_line(o) for o in cli if o.is_sweep_override()}
    with initialize_config_dir(config_dir=str(Path(config_dir).absolute()), version_base="1.3"):
        top = compose(config_name, overrides=fixed, return_hydra_config=True)
        fixed_keys = {o.key_or_group.lstrip("+") for o in cli if not o.is_sweep_override()}
        params = {
            k: f"{k}={v}" for k, v in (top.hydra.sweeper.get("params") or {}).items() if k.lstrip("+") not in fixed_keys
        } | swept  # the command line wins, as in Hydra's sweeper
        jobs = sweep_jobs(list(params.values()))
        needs, device_type = [], "cpu"
        for job in jobs:
            cfg = cast("Config", OmegaConf.to_object(compose(config_name, overrides=fixed + list(job))))
            spec = resolve(cfg)
            t = spec.cfg.train
            compute = compute_for(t)
            device_type = compute.device.type
            est = memory.estimate(
                spec.plan.shape, t.micro_batch_size or t.batch_size, bytes_per_activation=2 if compute.bf16 else 4
            )
            needs.append(RunNeed(spec.run_id, est.params, est.needed_bytes, max(1, t.threads)))
    return needs, device_type


def n_jobs(config_dir: str, config_name: str, overrides: list[str], verbose: bool = False) -> int:
    """The joblib launcher's n_jobs for a sweep on this machine: runs per device x devices."""
    needs, device_type = sweep_needs(config_dir, config_name, overrides)
    device_bytes, n_devices = device_memory(device_type)
    per = runs_per_device(needs, device_type=device_type, device_bytes=device_bytes, cores=os.cpu_count() or 1)
    if verbose:
        worst = max(needs, key=lambda n: n.needed_bytes)
        print(
            f"[placement] {len(needs)} runs on {n_devices} {device_type} device(s) of "
            f"{device_bytes / memory.GiB:.1f} GiB: largest run {max(n.params for n in needs):,} parameters, "
            f"{worst.needed_bytes / memory.GiB:.2f} GiB needed ({worst.run_id}); {per} run(s) per device",
            file=sys.stderr,
        )
    return min(len(needs), per * n_devices)


@contextmanager
def slot(folder: Path, n_slots: int):
    """Hold the lowest free slot 0..n_slots-1 (an flock, released however the process ends) while a job runs."""
    folder.mkdir(parents=True, exist_ok=True)
    fds = [os.open(folder / f"slot{k}", os.O_RDWR | os.O_CREAT, 0o644) for k in range(n_slots)]
    try:
        for k, fd in enumerate(fds):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            yield k
            return
        k = os.getpid() % n_slots  # more jobs than slots (a second launch of the sweep): share one
        fcntl.flock(fds[k], fcntl.LOCK_EX)
        yield k
    finally:
        for fd in fds:
            os.close(fd)


@contextmanager
def placed(device: str):
    """The device this job of a multirun trains on: on a machine with several GPUs, the one of its slot (a run that
    asks for 'auto' or 'cuda'); otherwise ``device`` unchanged."""
    import torch
    from hydra.core.hydra_config import HydraConfig

    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    multirun = HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"
    if device not in ("auto", "cuda") or n_gpus < 2 or not multirun:
        yield device
        return
    hc = HydraConfig.get()
    n_slots = max(1, int(hc.launcher.get("n_jobs", 1) or 1))
    with slot(Path(hc.sweep.dir) / ".slots", n_slots) as k:
        yield f"cuda:{k % n_gpus}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scaling.launch.placement", description=__doc__.splitlines()[0])
    ap.add_argument("-cd", "--config-dir", default="sweeps")
    ap.add_argument("-cn", "--config-name", required=True)
    ap.add_argument("-q", "--quiet", action="store_true", help="print only n_jobs")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)
    print(n_jobs(a.config_dir, a.config_name, a.overrides, verbose=not a.quiet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
