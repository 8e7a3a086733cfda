"""Anomaly mode: stop at the first NaN or inf, naming the op that made it."""
from __future__ import annotations

import contextlib

from ..core.function import AnomalyError
from ..core.grad_mode import config

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "AnomalyError"]


def is_anomaly_enabled() -> bool:
    """True inside :func:`detect_anomaly` (or after ``set_detect_anomaly(True)``)."""
    return config.anomaly


def set_detect_anomaly(mode: bool) -> None:
    """Switch anomaly mode on or off for the whole process."""
    config.anomaly = bool(mode)


@contextlib.contextmanager
def detect_anomaly():
    """Check every forward and backward result for NaN/inf inside the block.

    The first non-finite value raises :class:`AnomalyError` naming the op, the
    phase (forward or backward) and the source lines where the op was created.
    It slows every op down, so use it for debugging only.
    """
    prev = config.anomaly
    config.anomaly = True
    try:
        yield
    finally:
        config.anomaly = prev
