"""Shared fixtures, and one intra-op thread per test worker.

The suite runs on two workers (pytest-xdist, ``-n 2`` in setup.cfg). Its networks are tiny, so
two workers with one thread each finish sooner than one worker with two threads; two workers with
two threads each contend for the cores (measured: a 1-D training test ran 10x slower). Each worker
therefore uses one thread, and so do the processes the tests start (``OMP_NUM_THREADS``).
"""

import os

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
        os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def one_thread():
    """Small tensors and networks: intra-op threads only add contention on a shared 2-core CPU.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
