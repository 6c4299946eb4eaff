"""Device choice, seeding and thread settings: arguments, never module globals."""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when requested or available (the scheduler's CUDA_VISIBLE_DEVICES decides which), else CPU."""
    if requested == "cpu":
        device = torch.device("cpu")
    elif requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device: cuda was requested but no CUDA device is visible")
        device = torch.device("cuda")
    else:
        device = torch.device("cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log.info("device %s (%s), CUDA_VISIBLE_DEVICES=%s", device, name,
             os.environ.get("CUDA_VISIBLE_DEVICES"))
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which a SLURM allocation sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(threads: int) -> int:
    """Use ``threads`` torch threads, never more than the CPUs available; returns the count.

    ``snakemake --cores 4`` on a 2-core machine hands a rule 4 threads; 4 compute threads
    on 2 cores run the demo's training about 1.4x slower than 2 (measured on R-CLIP).
    """
    if threads > 0:
        used = min(threads, available_cpus())
        if used < threads:
            log.info("torch threads: %d (%d requested, %d CPUs available)", used, threads, available_cpus())
        torch.set_num_threads(used)
    return torch.get_num_threads()


def setup_logging(log_path=None) -> None:
    handlers = [logging.StreamHandler()]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def start_job(snakemake, *, num_workers_key: tuple[str, str] | None = None) -> "JobRuntime":
    """Set up a Snakemake job's run-time choices: its log, torch threads and device.

    These change how fast a job runs, never what it writes, so they are read from the
    validated config here rather than passed as rule params (a param change reruns a rule):
    ``device``, ``torch_threads`` (0 = the rule's Snakemake threads, capped at the CPUs the
    job may use) and, with ``num_workers_key = (section, key)``, a DataLoader worker count.
    """
    setup_logging(snakemake.log[0])
    config = snakemake.config
    threads = set_threads(config["torch_threads"] or snakemake.threads)
    workers = int(config[num_workers_key[0]][num_workers_key[1]]) if num_workers_key else 0
    return JobRuntime(device=pick_device(config["device"]), threads=threads, num_workers=workers)


@dataclass(frozen=True)
class JobRuntime:
    """What ``start_job`` chose (recorded in run.json, never part of a resume fingerprint)."""

    device: torch.device
    threads: int
    num_workers: int

    def record(self) -> dict:
        return {"device": describe_device(self.device), "torch_threads": self.threads,
                "num_workers": self.num_workers}
