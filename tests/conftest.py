"""Shared fixtures (what tests import lives in testing_utils.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing_utils import write_tone_corpus


@pytest.fixture(scope="session")
def tone_corpus(tmp_path_factory) -> Path:
    return write_tone_corpus(tmp_path_factory.mktemp("tone_corpus"))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models run faster on one thread, and a busy 2-core machine makes two threads spin."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test may reach the Hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
