"""Module-level functions for the sweep tests (workers import them by name)."""

import json
import os

import numpy as np


def noisy_square(*, x, seed):
    """A deterministic function of (x, seed): the seed draws the noise."""
    rng = np.random.default_rng(seed)
    return {"value": float(x * x + rng.standard_normal())}


def logged_square(*, x, seed, log_path, fail_at=None):
    """Records every call in ``log_path``; raises at ``x == fail_at`` (a simulated interruption)."""
    if fail_at is not None and x == fail_at:
        raise KeyboardInterrupt("simulated interruption")
    with open(log_path, "a") as fh:
        fh.write(json.dumps({"x": x, "seed": seed}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return {"value": float(x * x + seed)}


def slow_square(*, x, seed, delay=60.0, started=None):
    """``x == 0`` returns at once; any other point sleeps ``delay`` seconds first (a slow point
    that is still running when a test sends a signal), after creating ``started/x`` if
    ``started`` (a directory) is given. Like marginflow's training loops, it makes a (silent)
    tqdm bar, whose default lock is a multiprocessing semaphore."""
    import time
    from pathlib import Path

    from tqdm import tqdm

    tqdm(range(1), disable=True).close()
    if x != 0:
        if started is not None:
            (Path(started) / str(x)).touch()
        time.sleep(delay)
    return {"value": float(x * x + seed)}
