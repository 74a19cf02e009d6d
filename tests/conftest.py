"""Tests run torch on one thread (two torch processes with two threads each on a 2-core machine
slow each other 10-100x); tests about threads set their own count and restore it."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
