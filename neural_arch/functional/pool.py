"""Pooling: max, average and adaptive average over the last one or two dims.

Max and average pooling reuse the window :class:`~neural_arch.functional.conv.Geometry`
of the convolutions: for each kernel offset, one strided slice of the padded
input holds that offset's element of every window, so a pooling is a short
loop over the kernel's offsets (``KH * KW`` array operations on whole batches),
never over pixels or batch items.

Both are linear in the upstream gradient, so each comes as a pair of
Functions that are each other's derivative (max: scatter to the arg-max /
gather from it; average: spread over the window / sum over the window), and
second derivatives follow. Adaptive average pooling is two matrix products with
constant averaging matrices, so its gradient comes from :func:`matmul`.
"""
from __future__ import annotations

import functools
import math
import operator

from ..backend import get_array_module
from ..core.function import Function
from ..core.tensor import Tensor
from .conv import geometry, pad_spatial, spatial_args
from .linalg import matmul
from .reduce import mean

__all__ = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d"]

_ALL = (Ellipsis,)


def _pad_spatial(x, geo, value):
    """``x`` with the geometry's padding on its last dims, filled with ``value``."""
    return pad_spatial(x, geo.pads, value) if geo.has_pad else x


def _spread(parts, geo, lead, dtype, xp):
    """An input-shaped array holding ``sum_k`` of ``parts(k)`` added at offset ``k``'s slice."""
    gx = xp.zeros(lead + geo.padded, dtype=dtype)
    for k, sl in enumerate(geo.slices):
        if geo.overlap:
            gx[_ALL + sl] += parts(k)
        else:       # disjoint windows: every element is written at most once
            gx[_ALL + sl] = parts(k)
    return gx[_ALL + geo.crop()] if geo.has_pad else gx


# ==== max pooling ======================================================================

class MaxPool(Function):
    """Max over each window; ``self.idx`` holds the winning kernel offset (first max)."""

    def __init__(self, geo):
        self.geo = geo
        # With disjoint windows every input gets at most one gradient, unscaled.
        self.grad_bounded = not geo.overlap

    def forward(self, x):
        xp = get_array_module(x)
        kind = x.dtype.kind
        low = float("-inf") if kind == "f" else xp.iinfo(x.dtype).min
        xpad = _pad_spatial(x, self.geo, low)
        slices = self.geo.slices
        best = xpad[_ALL + slices[0]].copy()
        idx = xp.zeros(best.shape, dtype=xp.int16 if len(slices) < 2 ** 15 else xp.int32)
        if len(slices) > 1:
            take = xp.empty(best.shape, dtype=bool)
            nan = xp.empty(best.shape, dtype=bool) if kind == "f" else None
        for k in range(1, len(slices)):
            v = xpad[_ALL + slices[k]]
            # Strictly greater keeps the first maximum, as PyTorch does; a NaN wins
            # (and maximum keeps it), so NaNs propagate.
            xp.greater(v, best, out=take)
            if nan is not None:
                xp.isnan(v, out=nan)
                take |= nan
            xp.maximum(best, v, out=best)
            xp.putmask(idx, take, k)
        self.idx = idx
        return best

    def backward(self, gy):
        return MaxPoolScatter(self.geo, self.idx)(gy)


class MaxPoolScatter(Function):
    """Each output gradient goes to its window's arg-max (the adjoint of the gather)."""

    def __init__(self, geo, idx):
        self.geo = geo
        self.idx = idx

    def forward(self, gy):
        xp = get_array_module(gy)
        lead = gy.shape[:gy.ndim - len(self.geo.size)]
        idx = self.idx
        if bool(xp.isfinite(gy).all()):
            # Multiplying by the 0/1 mask is exact for finite gradients and several
            # times faster than where(); a NaN/inf gradient must not leak into the
            # positions that were not the maximum (NaN * 0), so it takes where().
            def pick(k):
                return gy * (idx == k)
        else:
            def pick(k):
                return xp.where(idx == k, gy, 0)
        return _spread(pick, self.geo, lead, gy.dtype, xp)

    def backward(self, ggx):
        return MaxPoolGather(self.geo, self.idx)(ggx)


class MaxPoolGather(Function):
    """Read every window's arg-max element (linear; the max pool with its choice fixed)."""

    def __init__(self, geo, idx):
        self.geo = geo
        self.idx = idx
        self.grad_bounded = not geo.overlap

    def forward(self, z):
        xp = get_array_module(z)
        zpad = _pad_spatial(z, self.geo, 0)
        slices = self.geo.slices
        out = zpad[_ALL + slices[0]]
        for k in range(1, len(slices)):
            out = xp.where(self.idx == k, zpad[_ALL + slices[k]], out)
        return out.copy() if len(slices) == 1 else out

    def backward(self, gout):
        return MaxPoolScatter(self.geo, self.idx)(gout)


def _flat_indices(idx, geo, xp):
    """Flat positions (in the unpadded spatial plane) of the arg-maxes, as ``return_indices``."""
    nd = len(geo.size)
    flat = None
    rest = idx
    coords = []
    for k in reversed(geo.kernel):      # unravel the row-major kernel offset
        coords.append(rest % k)
        rest = rest // k
    coords.reverse()
    for i in range(nd):
        shape = [1] * nd
        shape[i] = geo.out[i]
        starts = (xp.arange(geo.out[i]) * geo.stride[i] - geo.pads[i][0]).reshape(shape)
        pos = (starts + coords[i] * geo.dilation[i]).astype(xp.int64)
        flat = pos if flat is None else flat * geo.size[i] + pos
    return flat


def _check_input(x, nd, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(x).__name__}")
    if x.ndim not in (nd + 1, nd + 2):
        layout = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
        raise ValueError(f"{op}: expected a {nd + 2}-d input {layout} (or {nd + 1}-d without "
                         f"the batch dim), got shape {tuple(x.shape)}")


def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, nd, op):
    """Check the arguments of a pooling op; return its geometry and the padding."""
    _check_input(x, nd, op)
    args = (tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode, nd, op)
    try:
        return _plan_pool_cached(*args)
    except TypeError as e:
        if "unhashable" not in str(e):
            raise
        return _plan_pool(*args)         # lists as arguments: check them without the cache


def _plan_pool(xshape, kernel_size, stride, padding, dilation, ceil_mode, nd, op):
    kernel = spatial_args(kernel_size, nd, "kernel_size", op, 1)
    empty = isinstance(stride, (tuple, list)) and len(stride) == 0     # torch allows []
    stride = kernel if stride is None or empty else spatial_args(stride, nd, "stride", op, 1)
    pad = spatial_args(padding, nd, "padding", op, 0)
    dilation = spatial_args(dilation, nd, "dilation", op, 1)
    if any(p > k // 2 for p, k in zip(pad, kernel)):
        raise ValueError(f"{op}: padding must be at most half the kernel size, got padding "
                         f"{pad} for kernel_size {kernel}")
    size = xshape[-nd:]
    out, pads = [], []
    for n, k, s, p, d in zip(size, kernel, stride, pad, dilation):
        span = n + 2 * p - d * (k - 1) - 1
        if span < 0:
            raise ValueError(f"{op}: the kernel {kernel} (dilation {dilation}) is larger than "
                             f"the padded input: input shape {xshape}, padding {pad}")
        o = (span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= n + p:
            o -= 1      # the last window must start inside the input or the left padding
        out.append(o)
        # ceil_mode's last window may reach past the right padding: pad a bit more.
        pads.append((p, p + max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p))))
    return geometry(size, kernel, stride, dilation, tuple(pads)), pad


# typed: 2 and 2.0 (or True and 1) are different keys, so a float is refused every time.
_plan_pool_cached = functools.lru_cache(maxsize=256, typed=True)(_plan_pool)


def _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd, op):
    geo, _ = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, nd, op)
    fn = MaxPool(geo)
    y = fn(x)
    if not return_indices:
        return y
    return y, Tensor._make(_flat_indices(fn.idx, geo, get_array_module(x)))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling over ``(N, C, L)`` (or ``(C, L)``) inputs.

    Parameters are as for :func:`max_pool2d`, with one spatial dim.
    """
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, 1, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    input : Tensor
        Shape ``(N, C, H, W)`` or ``(C, H, W)``.
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int), optional
        Step between windows; the kernel size when None.
    padding : int or (int, int), default 0
        Implicit ``-inf`` added on both sides; at most half the kernel size.
    dilation : int or (int, int), default 1
        Spacing between the elements of a window.
    ceil_mode : bool, default False
        Round the output size up, so a last partial window is kept when it
        starts inside the input (or its left padding).
    return_indices : bool, default False
        Also return the flat index (into each ``H * W`` plane) of every maximum.

    Returns
    -------
    Tensor, or (Tensor, Tensor)
        The maxima, shape ``(N, C, H_out, W_out)`` with
        ``H_out = (H + 2 * padding - dilation * (kH - 1) - 1) // stride + 1``
        (rounded up with ``ceil_mode``); and the int64 indices if asked for.

    Notes
    -----
    The gradient of each output goes to the first maximum of its window (in
    row-major order), as in PyTorch; a NaN in a window is its maximum.
    """
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, 2, "max_pool2d")


# ==== average pooling ==================================================================

class AvgPool(Function):
    """Sum over each window, divided by ``div`` (a number or an array over the output)."""

    def __init__(self, geo, div):
        self.geo = geo
        self.div = div

    def forward(self, x):
        xpad = _pad_spatial(x, self.geo, 0)
        slices = self.geo.slices
        acc = xpad[_ALL + slices[0]].copy()
        for sl in slices[1:]:
            acc += xpad[_ALL + sl]
        acc /= self.div
        return acc

    def backward(self, gy):
        return AvgPoolAdjoint(self.geo, self.div)(gy)


class AvgPoolAdjoint(Function):
    """Spread each output gradient, divided by ``div``, evenly over its window."""

    def __init__(self, geo, div):
        self.geo = geo
        self.div = div

    def forward(self, gy):
        xp = get_array_module(gy)
        g = gy / self.div
        lead = gy.shape[:gy.ndim - len(self.geo.size)]
        return _spread(lambda k: g, self.geo, lead, g.dtype, xp)

    def backward(self, ggx):
        return AvgPool(self.geo, self.div)(ggx)


def _divisor(geo, pad, count_include_pad, divisor_override, xp, dtype):
    """The number each window's sum is divided by (PyTorch's rule)."""
    if divisor_override is not None:
        return float(divisor_override)
    ceil_extra = any(b != a for a, b in geo.pads)
    if (count_include_pad or not geo.has_pad) and not ceil_extra:
        return float(math.prod(geo.kernel))     # every window counts its full size
    # Per dim: windows are cut at the end of the right padding; without
    # count_include_pad, also to the input itself. The count is a product over dims.
    div = None
    nd = len(geo.size)
    for i, (n, k, s, p) in enumerate(zip(geo.size, geo.kernel, geo.stride, pad)):
        start = xp.arange(geo.out[i]) * s - p
        end = xp.minimum(start + k, n + p)
        if not count_include_pad:
            start = xp.maximum(start, 0)
            end = xp.minimum(end, n)
        shape = [1] * nd
        shape[i] = geo.out[i]
        cnt = (end - start).reshape(shape)
        div = cnt if div is None else div * cnt
    return div.astype(dtype)


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              nd, op):
    geo, pad = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, nd, op)
    if divisor_override is not None and (isinstance(divisor_override, bool) or
                                         not isinstance(divisor_override, int) or
                                         divisor_override == 0):
        raise ValueError(f"{op}: divisor_override must be a non-zero int, "
                         f"got {divisor_override!r}")
    div = _divisor(geo, pad, count_include_pad, divisor_override, get_array_module(x),
                   x.dtype)
    return AvgPool(geo, div)(x)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """1-D average pooling over ``(N, C, L)`` (or ``(C, L)``) inputs.

    Parameters are as for :func:`avg_pool2d`, with one spatial dim (and no
    ``divisor_override``, as in PyTorch).
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None,
                     1, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    input : Tensor
        Shape ``(N, C, H, W)`` or ``(C, H, W)``.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        The kernel size when None.
    padding : int or (int, int), default 0
        Zeros added on both sides; at most half the kernel size.
    ceil_mode : bool, default False
        Round the output size up (see :func:`max_pool2d`).
    count_include_pad : bool, default True
        Divide by the window size including padded zeros (PyTorch's default);
        when False, by the number of input elements in the window.
    divisor_override : int, optional
        Divide every window's sum by this number instead.

    Returns
    -------
    Tensor
        Shape ``(N, C, H_out, W_out)``, sizes as for :func:`max_pool2d`.
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2, "avg_pool2d")


# ==== adaptive average pooling =========================================================

def _adaptive_matrix(n, m, xp, dtype):
    """The ``(m, n)`` matrix that averages PyTorch's adaptive windows of an axis of length n.

    Output ``i`` averages input ``floor(i * n / m)`` up to (excluding)
    ``ceil((i + 1) * n / m)``.
    """
    i = xp.arange(m)
    start = (i * n) // m
    end = -((-(i + 1) * n) // m)
    j = xp.arange(n)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return inside.astype(dtype) / (end - start)[:, None].astype(dtype)


def _adaptive_avg_pool(x, output_size, nd, op):
    _check_input(x, nd, op)
    size = tuple(x.shape[-nd:])
    out = adaptive_output_size(output_size, size, op)
    if out == size:
        return x
    if all(o == 1 for o in out):
        return mean(x, tuple(range(-nd, 0)), keepdims=True)
    if all(n % o == 0 for n, o in zip(size, out)):
        # Equal, disjoint windows: a plain average pooling.
        k = tuple(n // o for n, o in zip(size, out))
        return AvgPool(geometry(size, k, k, (1,) * nd, ((0, 0),) * nd), float(math.prod(k)))(x)
    xp = get_array_module(x)
    y = x
    if nd == 2 and out[0] != size[0]:
        y = matmul(Tensor._make(_adaptive_matrix(size[0], out[0], xp, x.dtype)), y)
    if out[-1] != size[-1]:
        y = matmul(y, Tensor._make(_adaptive_matrix(size[-1], out[-1], xp, x.dtype).T))
    return y


def adaptive_output_size(output_size, size, op):
    """``output_size`` (int, or a tuple of ints and Nones) -> a tuple of positive ints."""
    nd = len(size)
    bad = ValueError(f"{op}: output_size must be a positive int or a tuple of {nd} positive "
                     f"ints (None keeps that input size), got {output_size!r}")
    if isinstance(output_size, bool):
        raise bad
    try:
        sizes = (operator.index(output_size),) * nd
    except TypeError:
        try:
            sizes = tuple(output_size)
        except TypeError:
            raise bad from None
    if len(sizes) != nd:
        raise bad
    try:
        out = tuple(n if o is None else operator.index(o) for o, n in zip(sizes, size))
    except TypeError:
        raise bad from None
    if min(out) < 1:
        raise bad
    return out


def adaptive_avg_pool1d(input, output_size):
    """1-D adaptive average pooling to ``output_size`` positions (PyTorch's windows).

    See :func:`adaptive_avg_pool2d`.
    """
    return _adaptive_avg_pool(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Parameters
    ----------
    input : Tensor
        Shape ``(N, C, H, W)`` or ``(C, H, W)``.
    output_size : int or (int or None, int or None)
        ``(H_out, W_out)``; an int for both; None keeps that input size.

    Returns
    -------
    Tensor
        Shape ``(N, C, H_out, W_out)``. Output row ``i`` averages input rows
        ``floor(i * H / H_out)`` to ``ceil((i + 1) * H / H_out) - 1`` (windows may
        overlap and differ in size by one), and likewise for columns.
    """
    return _adaptive_avg_pool(input, output_size, 2, "adaptive_avg_pool2d")
