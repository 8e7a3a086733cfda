"""Reductions over axes."""
from __future__ import annotations

from ..core.function import Function
from ._util import normalize_axis
from .shape import broadcast_to, reshape

__all__ = ["sum", "mean"]


def _expand_back(gy, in_shape, axes, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input again."""
    if not keepdims:
        shape = list(in_shape)
        for a in axes:
            shape[a] = 1
        gy = reshape(gy, tuple(shape))
    return gy


class Sum(Function):
    def __init__(self, axis, keepdims):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.axes = normalize_axis(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        x = self.inputs[0]
        return broadcast_to(_expand_back(gy, x.shape, self.axes, self.keepdims), x.shape)


def sum(x, axis=None, keepdims=False):
    """Sum over ``axis`` (all axes when None)."""
    return Sum(axis, keepdims)(x)


def mean(x, axis=None, keepdims=False):
    """Arithmetic mean over ``axis`` (all axes when None)."""
    axes = normalize_axis(axis, x.ndim)
    n = 1
    for a in axes:
        n *= x.shape[a]
    return sum(x, axis, keepdims) / n
