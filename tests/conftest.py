"""Shared pytest set-up: every test runs offline and seeded."""

import os
import random

import pytest

# No hub can be reached here or in CI: make every library fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models gain nothing from intra-op threads, and on a loaded 2-core machine those threads thrash (a training test
# once took 1,881 s): one thread here and in every process a test starts (they inherit the environment).
os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"


def pytest_configure(config):
    """Set torch's thread pools once, before any test imports a model."""
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed Python, NumPy and torch before each test so results do not depend on test order."""
    random.seed(0)
    try:
        import numpy as np

        np.random.seed(0)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """Each test starts with no `Accelerator` state, as a new process would.

    accelerate keeps one process-wide state and refuses a second `Accelerator` with other settings (e.g. bf16
    after fp32); accelerate's own test suite resets it the same way between tests.
    """
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
