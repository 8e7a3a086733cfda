"""Shape ops: reshape, transpose, broadcasting, indexing, dtype and device moves."""
from __future__ import annotations

from .. import backend
from ..backend import get_array_module
from ..core.dtypes import to_dtype
from ..core.function import Function
from ._util import normalize_axis, raw

__all__ = ["reshape", "transpose", "swapaxes", "broadcast_to", "sum_to", "getitem",
           "astype", "to_device", "squeeze", "unsqueeze", "flatten"]


class Reshape(Function):
    grad_bounded = True

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.inputs[0].shape)


class Transpose(Function):
    grad_bounded = True

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        inv = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inv[a % len(self.axes)] = i
        return transpose(gy, tuple(inv))


class SwapAxes(Function):
    grad_bounded = True

    def __init__(self, a, b):
        self.a, self.b = a, b

    def forward(self, x):
        return x.swapaxes(self.a, self.b)

    def backward(self, gy):
        return swapaxes(gy, self.a, self.b)


class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)


class SumTo(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return _sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.inputs[0].shape)


def _sum_to_array(x, shape):
    """Sum the array ``x`` down to ``shape`` (the inverse of broadcasting)."""
    lead = x.ndim - len(shape)
    if lead < 0:
        raise ValueError(f"cannot sum shape {x.shape} down to the larger shape {shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    y = x.sum(axis=axes, keepdims=True) if axes else x
    if lead:
        y = y.reshape(shape)
    return y


class GetItem(Function):
    def __init__(self, index):
        self.index = index
        # Basic slicing moves each element at most once; integer arrays may repeat.
        self.grad_bounded = not _has_array(index)

    def forward(self, x):
        return x[self.index]

    def backward(self, gy):
        return GetItemGrad(self.index, self.inputs[0].shape)(gy)


class GetItemGrad(Function):
    """Scatter a gradient back into a zero array of the indexed tensor's shape."""

    def __init__(self, index, shape):
        self.index = index
        self.shape = shape

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if _has_array(self.index):
            backend.scatter_add(gx, self.index, gy)
        else:
            gx[self.index] = gy
        return gx

    def backward(self, ggx):
        return getitem(ggx, self.index)


def _has_array(index):
    items = index if isinstance(index, tuple) else (index,)
    return any(hasattr(i, "shape") or isinstance(i, (list,)) for i in items)


class AsType(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        return x.astype(self.dtype)

    def backward(self, gy):
        return astype(gy, self.inputs[0].dtype)


class ToDevice(Function):
    grad_bounded = True

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.src = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return to_device(gy, self.src)


def reshape(x, shape):
    """Return ``x`` with a new shape (one entry may be -1)."""
    if isinstance(shape, int):
        shape = (shape,)
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    return Reshape(shape)(x)


def transpose(x, axes=None):
    """Permute the axes (reverse them when ``axes`` is None)."""
    return Transpose(None if axes is None else tuple(axes))(x)


def swapaxes(x, axis1, axis2):
    """Swap two axes."""
    return SwapAxes(axis1, axis2)(x)


def broadcast_to(x, shape):
    """Broadcast ``x`` to ``shape`` (NumPy rules); the gradient is summed back."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    return BroadcastTo(shape)(x)


def sum_to(x, shape):
    """Sum ``x`` down to ``shape``: the adjoint of :func:`broadcast_to`."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    return SumTo(shape)(x)


def getitem(x, index):
    """``x[index]`` with basic, integer-array and boolean indexing."""
    if isinstance(index, tuple):
        index = tuple(raw(i) for i in index)
    else:
        index = raw(index)
    return GetItem(index)(x)


def astype(x, dtype):
    """Cast to ``dtype``; the gradient is cast back."""
    return AsType(to_dtype(dtype))(x)


def to_device(x, device):
    """Move to ``device`` (``'cpu'``, ``'cuda:N'``); the gradient moves back."""
    return ToDevice(device)(x)


def squeeze(x, axis=None):
    """Drop axes of length one (all of them when ``axis`` is None)."""
    shape = x.shape
    axes = [i for i, n in enumerate(shape) if n == 1] if axis is None \
        else normalize_axis(axis, len(shape))
    for a in axes:
        if shape[a] != 1:
            raise ValueError(f"cannot squeeze axis {a} of length {shape[a]}")
    return reshape(x, tuple(n for i, n in enumerate(shape) if i not in axes))


def unsqueeze(x, axis):
    """Insert an axis of length one at ``axis``."""
    shape = list(x.shape)
    if axis < 0:
        axis += len(shape) + 1
    if not 0 <= axis <= len(shape):
        raise ValueError(f"unsqueeze axis {axis} out of range for {len(shape)} dims")
    shape.insert(axis, 1)
    return reshape(x, tuple(shape))


def flatten(x, start_dim=0, end_dim=-1):
    """Merge the axes ``start_dim..end_dim`` into one."""
    shape = tuple(x.shape)
    nd = len(shape)
    if nd == 0:
        return reshape(x, (1,))
    s, e = start_dim % nd, end_dim % nd
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    n = 1
    for d in shape[s:e + 1]:
        n *= d
    return reshape(x, shape[:s] + (n,) + shape[e + 1:])
