"""Global switches of the autograd engine: grad mode, anomaly mode, the gradient clamp.

They live on one small object, :data:`config`, because the hot path of every op
reads them. The switches are process-wide (not per thread), which keeps that read
to a single attribute lookup.
"""
from __future__ import annotations

import contextlib
import math

__all__ = ["config", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "set_grad_clip", "get_grad_clip", "grad_clip", "DEFAULT_GRAD_CLIP"]

#: Default bound of the automatic elementwise gradient clamp in the backward pass.
DEFAULT_GRAD_CLIP = 1e6


class _Config:
    __slots__ = ("grad_enabled", "anomaly", "clip", "clamped", "autocast")

    def __init__(self):
        self.grad_enabled = True   # record graphs in forward
        self.anomaly = False       # check every forward/backward result for NaN/inf
        self.autocast = None       # (fn, inputs) -> inputs while neural_arch.amp.autocast is on
        self.clip = DEFAULT_GRAD_CLIP  # bound c of the clamp, or None for off
        self.clamped = 0           # elements clamped by the last backward


config = _Config()


def is_grad_enabled() -> bool:
    """Return True when operations record the graph for backward."""
    return config.grad_enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Switch graph recording on or off; works as a function, a context or a decorator.

    Parameters
    ----------
    mode : bool
        True to record graphs, False to compute without recording.
    """

    def __init__(self, mode: bool):
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled expects a bool, got {mode!r}")
        self.prev = config.grad_enabled
        self.mode = mode
        config.grad_enabled = mode

    def __enter__(self):
        config.grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        config.grad_enabled = self.prev
        return False


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) in which operations record no graph.

    Inference under ``no_grad`` costs only the array operation plus a thin wrapper.
    """

    def __enter__(self):
        self.prev = config.grad_enabled
        config.grad_enabled = False
        return self

    def __exit__(self, *exc):
        config.grad_enabled = self.prev
        return False


class enable_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) that turns recording back on inside ``no_grad``."""

    def __enter__(self):
        self.prev = config.grad_enabled
        config.grad_enabled = True
        return self

    def __exit__(self, *exc):
        config.grad_enabled = self.prev
        return False


def _check_clip(c):
    if c is None:
        return None
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not (c > 0) or math.isnan(c):
        raise ValueError(f"grad clip bound must be a positive number or None (off), got {c!r}")
    return float(c)


def set_grad_clip(c) -> None:
    """Set the bound of the automatic gradient clamp.

    Every gradient that flows along an edge of the graph during backward is clamped
    elementwise to ``[-c, c]``. The default is ``1e6``; ``None`` switches it off.
    """
    config.clip = _check_clip(c)


def get_grad_clip():
    """Return the current clamp bound (``None`` when off)."""
    return config.clip


@contextlib.contextmanager
def grad_clip(c):
    """Scope a clamp bound: ``with grad_clip(10.0): loss.backward()``; ``None`` turns it off."""
    c = _check_clip(c)
    prev = config.clip
    config.clip = c
    try:
        yield
    finally:
        config.clip = prev
