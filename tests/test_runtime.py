"""Thread settings: a rule's threads are capped at the CPUs the process may use."""

import torch

from crrg_clip import runtime


def test_threads_are_capped_at_the_available_cpus(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(runtime, "available_cpus", lambda: 2)
        assert runtime.set_threads(4) == 2  # snakemake --cores 4 on a 2-core machine
        assert runtime.set_threads(1) == 1
        assert runtime.set_threads(0) == 1  # 0 = leave torch's setting alone
    finally:
        torch.set_num_threads(before)


def test_available_cpus_is_positive():
    assert runtime.available_cpus() >= 1
