"""Shared pytest configuration: hypothesis profiles, a seeded RNG fixture, headless matplotlib."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings

os.environ.setdefault("MPLBACKEND", "Agg")

# `ci`: derandomised (the same examples every run), no deadline (2 shared cores are noisy), and no
# shrinking: a failing example is reported as found, so a failure cannot turn a check that takes
# seconds into a search that takes the whole CI budget (shrink locally with the `dev` profile).
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=25,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# `dev`: random search with more examples, for hunting counterexamples locally.
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: tests are reproducible and never touch global random state."""
    return np.random.default_rng(20261122)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny torch models: intra-op threads only contend on the shared cores (10–25x slower under
    load). Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch  # only the torch test modules request it, after their importorskip

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
