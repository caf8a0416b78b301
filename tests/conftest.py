"""Shared fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Small tensors and networks: intra-op threads only add contention on a shared 2-core CPU.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
