"""Small helpers shared by the op families."""
from __future__ import annotations

from ..core.tensor import Tensor


def needs_grad(x) -> bool:
    """True when ``x`` is a Tensor that requires grad (a constant never does)."""
    return isinstance(x, Tensor) and x._rg


def raw(x):
    """The array inside a Tensor; anything else unchanged."""
    return x.data if isinstance(x, Tensor) else x


def normalize_axis(axis, ndim):
    """Return ``axis`` as a sorted tuple of non-negative ints (None -> all axes)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dims")
        out.append(a % ndim if ndim else 0)
    return tuple(sorted(out))
