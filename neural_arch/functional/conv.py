"""Convolutions: conv1d, conv2d and their transposes (PyTorch semantics, NC* layouts).

One convolution is three linear maps of one trilinear form
``T(x, w, y) = <y, conv(x, w)>``, each a :class:`Function` here:

* :class:`Conv`           ``(x, w) -> y``  the convolution itself;
* :class:`ConvTranspose`  ``(y, w) -> x``  its adjoint in ``x`` (the transposed
  convolution, and the input gradient of a convolution);
* :class:`ConvWeight`     ``(x, y) -> w``  its adjoint in ``w`` (the weight
  gradient of a convolution).

The derivative of each of them is again one of the three, so every backward is
written with these ops and ``create_graph=True`` gives exact second derivatives.

The work is vectorised with im2col: the windows of the zero-padded input are
read through one strided view (the windows of ``sliding_window_view``, built
directly with ``as_strided``), copied once into columns of shape ``(N, groups, C/groups * prod(kernel), L)``
(``L`` output positions), and one batched matmul contracts them with the
weight. The way back (col2im) adds the columns into the padded input with one
strided add per kernel offset; nothing loops over batch items or pixels.

The spatial helpers here (:class:`Geometry`, :func:`geometry`,
:func:`spatial_args`) are shared with :mod:`neural_arch.functional.pool`.
"""
from __future__ import annotations

import functools
import itertools
import operator

from ..backend import get_array_module
from ..core.function import Function
from ._util import needs_grad
from .reduce import sum as _sum
from .shape import pad as _pad
from .shape import reshape

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]


# ==== geometry ==========================================================================

class Geometry:
    """Where the windows of a convolution or a pooling sit, for the spatial dims only.

    Attributes
    ----------
    size : tuple of int
        Spatial size of the (unpadded) input.
    kernel, stride, dilation : tuple of int
        One entry per spatial dim.
    pads : tuple of (int, int)
        Padding before and after each spatial dim.
    padded : tuple of int
        ``size`` plus the padding.
    extent : tuple of int
        Span of one dilated window: ``dilation * (kernel - 1) + 1``.
    out : tuple of int
        Number of window positions per dim (the output's spatial size).
    slices : list of tuple of slice
        For every kernel offset (row-major), the strided slice of the padded
        input that holds that offset's element of every window.
    """

    __slots__ = ("size", "kernel", "stride", "dilation", "pads", "padded", "extent", "out",
                 "slices", "has_pad", "overlap")

    def __init__(self, size, kernel, stride, dilation, pads):
        self.size, self.kernel, self.stride = size, kernel, stride
        self.dilation, self.pads = dilation, pads
        self.padded = tuple(n + a + b for n, (a, b) in zip(size, pads))
        self.extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        self.out = tuple((p - e) // s + 1 for p, e, s in zip(self.padded, self.extent, stride))
        self.has_pad = any(a or b for a, b in pads)
        # Windows overlap (an input element can sit in two windows) unless every
        # stride reaches past a window's extent.
        self.overlap = any(s < e for s, e in zip(stride, self.extent))
        self.slices = [tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                             for o, d, s, n in zip(offset, dilation, stride, self.out))
                       for offset in itertools.product(*(range(k) for k in kernel))]

    def crop(self):
        """The slices (over the spatial dims) that cut the padding off again."""
        return tuple(slice(a, a + n) for (a, _), n in zip(self.pads, self.size))


@functools.lru_cache(maxsize=512)
def geometry(size, kernel, stride, dilation, pads):
    """A (cached) :class:`Geometry`; every argument is a tuple."""
    return Geometry(size, kernel, stride, dilation, pads)


def spatial_args(value, n, what, op, minimum):
    """An int or a sequence of ``n`` ints -> a tuple of ``n`` ints, each >= ``minimum``."""
    if isinstance(value, bool):
        raise TypeError(f"{op}: {what} must be an int or a tuple of {n} ints, got {value!r}")
    try:
        vals = (operator.index(value),) * n
    except TypeError:
        try:
            vals = tuple(operator.index(v) for v in value)
        except TypeError:
            raise TypeError(f"{op}: {what} must be an int or a tuple of {n} ints, "
                            f"got {value!r}") from None
        if len(vals) != n:
            raise ValueError(f"{op}: {what} must be an int or a tuple of {n} ints, "
                             f"got {value!r}")
    if min(vals) < minimum:
        raise ValueError(f"{op}: {what} must be >= {minimum}, got {value!r}")
    return vals


# ==== the array kernels (raw arrays in, raw arrays out) =================================

def pad_spatial(x, pads, value=0):
    """``x`` with one ``(before, after)`` pair of ``pads`` per trailing dim, filled with ``value``.

    (A preallocated array and one slice assignment: much cheaper than ``pad``
    for the small arrays of a network's hot path.)
    """
    xp = get_array_module(x)
    nd = len(pads)
    size = x.shape[x.ndim - nd:]
    shape = x.shape[:x.ndim - nd] + tuple(n + a + b for n, (a, b) in zip(size, pads))
    out = xp.zeros(shape, dtype=x.dtype) if value == 0 else xp.full(shape, value, dtype=x.dtype)
    out[(Ellipsis,) + tuple(slice(a, a + n) for n, (a, _) in zip(size, pads))] = x
    return out


def _im2col(x, geo, groups):
    """Columns ``(N, groups, Cg * prod(kernel), L)`` of the windows of ``x (N, C, *size)``."""
    xp = get_array_module(x)
    if geo.has_pad:
        x = pad_spatial(x, geo.pads)
    n, c = x.shape[:2]
    cg = c // groups
    # A strided view (N, groups, Cg, *kernel, *out) of the padded input: a kernel
    # offset steps ``dilation`` elements, an output position ``stride`` elements.
    # (The windows of ``sliding_window_view`` in this order, without its overhead.)
    st = x.strides
    shape = (n, groups, cg) + geo.kernel + geo.out
    strides = ((st[0], st[1] * cg, st[1]) + tuple(t * d for t, d in zip(st[2:], geo.dilation))
               + tuple(t * s for t, s in zip(st[2:], geo.stride)))
    win = xp.lib.stride_tricks.as_strided(x, shape, strides)
    return win.reshape(n, groups, cg * len(geo.slices), -1)      # the one copy


def _col2im(cols, geo, channels):
    """Add the columns ``(N, groups, Cg * prod(kernel), L)`` back into an input-shaped array."""
    xp = get_array_module(cols)
    n = cols.shape[0]
    cols = cols.reshape((n, channels, len(geo.slices)) + geo.out)
    lead = (slice(None), slice(None))
    if geo.out == geo.padded and not geo.has_pad:    # 1x1 kernel, stride 1: nothing to add
        return cols[:, :, 0]
    xpad = xp.zeros((n, channels) + geo.padded, dtype=cols.dtype)
    if geo.overlap:
        for k, sl in enumerate(geo.slices):
            xpad[lead + sl] += cols[:, :, k]
    else:   # every input element is in at most one window: no accumulation needed
        for k, sl in enumerate(geo.slices):
            xpad[lead + sl] = cols[:, :, k]
    return xpad[lead + geo.crop()] if geo.has_pad else xpad


def _conv_forward(cols, w, groups, out):
    """``y (N, O, *out)`` from the columns of ``x`` and the weight ``(O, Cg, *kernel)``."""
    xp = get_array_module(cols, w)
    w2 = w.reshape(groups, w.shape[0] // groups, -1)
    y = xp.matmul(w2, cols)                         # (N, groups, O/groups, L)
    return y.reshape((cols.shape[0], w.shape[0]) + out)


def _weight_from(cols, gy, groups, w_shape):
    """The weight-shaped contraction of columns of ``x`` with ``gy (N, O, *out)``."""
    xp = get_array_module(cols, gy)
    n = gy.shape[0]
    g4 = gy.reshape(n, groups, w_shape[0] // groups, -1)
    # One (O/groups x L) @ (L x Cg*k) product per batch item and group, summed over
    # the batch: no copy of the columns into a transposed layout.
    gw = xp.matmul(g4, cols.swapaxes(-1, -2)).sum(axis=0)
    return gw.reshape(w_shape)


def _add_bias(y, b, nd):
    y += b.reshape((b.shape[0],) + (1,) * nd)
    return y


# ==== the three Functions =============================================================

class _ConvFunction(Function):
    def __init__(self, geo, groups, cols=None):
        self.geo = geo
        self.groups = groups
        self.cols = cols            # im2col of the first input, when already known

    def _cols(self, x):
        if self.cols is None:
            self.cols = _im2col(x, self.geo, self.groups)
        return self.cols

    def _bias_grad(self, gy):
        return _sum(gy, (0,) + tuple(range(2, gy.ndim)))


class Conv(_ConvFunction):
    """``y = conv(x, w) [+ b]``; the im2col columns of ``x`` are kept for the weight gradient."""

    def forward(self, x, w, b=None):
        y = _conv_forward(self._cols(x), w, self.groups, self.geo.out)
        return y if b is None else _add_bias(y, b, len(self.geo.out))

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        geo, groups = self.geo, self.groups
        gx = ConvTranspose(geo, groups)(gy, w) if needs_grad(x) else None
        gw = ConvWeight(geo, groups, self.cols)(x, gy) if needs_grad(w) else None
        if len(self.inputs) == 2:
            return gx, gw
        return gx, gw, self._bias_grad(gy) if needs_grad(self.inputs[2]) else None


class ConvTranspose(_ConvFunction):
    """``x = conv^T(y, w) [+ b]``: the adjoint of :class:`Conv` in its input."""

    def forward(self, y, w, b=None):
        xp = get_array_module(y, w)
        groups = self.groups
        n, o = y.shape[:2]
        w2 = w.reshape(groups, o // groups, -1)
        cols = xp.matmul(w2.swapaxes(-1, -2), y.reshape(n, groups, o // groups, -1))
        x = _col2im(cols, self.geo, w.shape[1] * groups)
        if b is not None:
            # col2im can return a view of the columns; the bias needs a fresh array
            x = x + b.reshape((b.shape[0],) + (1,) * len(self.geo.size))
        return x

    def backward(self, gx):
        y, w = self.inputs[0], self.inputs[1]
        geo, groups = self.geo, self.groups
        conv = Conv(geo, groups)
        gy = conv(gx, w) if needs_grad(y) else None
        gw = ConvWeight(geo, groups, conv.cols)(gx, y) if needs_grad(w) else None
        if len(self.inputs) == 2:
            return gy, gw
        return gy, gw, self._bias_grad(gx) if needs_grad(self.inputs[2]) else None


class ConvWeight(_ConvFunction):
    """``w = conv_w^T(x, y)``: the adjoint of :class:`Conv` in its weight."""

    def forward(self, x, y):
        o = y.shape[1]
        w_shape = (o, x.shape[1] // self.groups) + self.geo.kernel
        return _weight_from(self._cols(x), y, self.groups, w_shape)

    def backward(self, gw):
        x, y = self.inputs
        geo, groups = self.geo, self.groups
        gx = ConvTranspose(geo, groups)(y, gw) if needs_grad(x) else None
        gy = Conv(geo, groups, self.cols)(x, gw) if needs_grad(y) else None
        return gx, gy


# ==== argument checking ===============================================================

def _check_groups(groups, op):
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")


def _check_layout(xshape, wshape, nd, op, layout):
    if len(xshape) not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected a {nd + 2}-d input {layout} (or {nd + 1}-d without "
                         f"the batch dim), got shape {tuple(xshape)}")
    if len(wshape) != nd + 2:
        raise ValueError(f"{op}: expected a {nd + 2}-d weight, got shape {tuple(wshape)}")


def _check_bias(b, channels, op):
    if b is not None and tuple(b.shape) != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},) (one value per output "
                         f"channel), got {tuple(b.shape)}")


def conv_pads(padding, kernel, stride, dilation, op):
    """``padding`` (int, tuple, 'valid' or 'same') -> one ``(before, after)`` pair per dim."""
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' needs stride 1 (the output keeps the "
                                 f"input's size only then), got stride {stride}")
            # The total padding d*(k-1) is split evenly; an odd total puts the
            # extra element after, as PyTorch does.
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in total)
        raise ValueError(f"{op}: padding must be an int, a tuple of ints, 'valid' or 'same'; "
                         f"got {padding!r}")
    p = spatial_args(padding, nd, "padding", op, 0)
    return tuple((a, a) for a in p)


def _plan_conv(xshape, wshape, stride, padding, dilation, groups, nd, op, layout):
    """Check the arguments of a convolution; return its :class:`Geometry`."""
    _check_layout(xshape, wshape, nd, op, layout)
    _check_groups(groups, op)
    o, cg = wshape[0], wshape[1]
    c = xshape[-nd - 1]
    if o % groups:
        raise ValueError(f"{op}: the weight's {o} output channels (weight shape "
                         f"{wshape}) must be divisible by groups={groups}")
    if c != cg * groups:
        raise ValueError(f"{op}: the input has {c} channels (shape {xshape}), but the "
                         f"weight (shape {wshape}) with groups={groups} expects "
                         f"{cg * groups} = weight.shape[1] * groups")
    kernel = wshape[2:]
    stride = spatial_args(stride, nd, "stride", op, 1)
    dilation = spatial_args(dilation, nd, "dilation", op, 1)
    pads = conv_pads(padding, kernel, stride, dilation, op)
    geo = geometry(xshape[-nd:], kernel, stride, dilation, pads)
    if min(geo.out) < 1:
        raise ValueError(f"{op}: the kernel {kernel} (dilation {dilation}, so it spans "
                         f"{geo.extent}) is larger than the padded input {geo.padded} "
                         f"(input shape {xshape}, padding {padding!r})")
    return geo


# typed: 2 and 2.0 (or True and 1) are different keys, so a float is refused every time.
_plan_conv_cached = functools.lru_cache(maxsize=256, typed=True)(_plan_conv)


def _conv(x, w, b, stride, padding, dilation, groups, nd, op, layout):
    args = (tuple(x.shape), tuple(w.shape), stride, padding, dilation, groups, nd, op, layout)
    try:
        geo = _plan_conv_cached(*args)
    except TypeError as e:
        if "unhashable" not in str(e):
            raise
        geo = _plan_conv(*args)          # lists as arguments: check them without the cache
    _check_bias(b, w.shape[0], op)
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = reshape(x, (1,) + tuple(x.shape))
    y = Conv(geo, groups)(x, w) if b is None else Conv(geo, groups)(x, w, b)
    return reshape(y, tuple(y.shape[1:])) if unbatched else y


def _conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation, nd, op,
                    layout):
    _check_layout(x.shape, w.shape, nd, op, layout)
    _check_groups(groups, op)
    cin, og = w.shape[0], w.shape[1]
    c = x.shape[-nd - 1]
    if cin % groups:
        raise ValueError(f"{op}: the weight's {cin} input channels (weight shape "
                         f"{tuple(w.shape)}) must be divisible by groups={groups}")
    if c != cin:
        raise ValueError(f"{op}: the input has {c} channels (shape {tuple(x.shape)}), but the "
                         f"weight (shape {tuple(w.shape)}) expects weight.shape[0] = {cin}")
    _check_bias(b, og * groups, op)
    kernel = tuple(w.shape[2:])
    stride = spatial_args(stride, nd, "stride", op, 1)
    dilation = spatial_args(dilation, nd, "dilation", op, 1)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of ints (PyTorch has no "
                         f"string padding for transposed convolutions), got {padding!r}")
    pad = spatial_args(padding, nd, "padding", op, 0)
    extra = spatial_args(output_padding, nd, "output_padding", op, 0)
    for e, s, d in zip(extra, stride, dilation):
        if e >= max(s, d):
            raise ValueError(f"{op}: output_padding must be smaller than the stride or the "
                             f"dilation, got output_padding {extra}, stride {stride}, "
                             f"dilation {dilation}")
    n_in = tuple(x.shape[-nd:])
    size = tuple((i - 1) * s - 2 * p + d * (k - 1) + e + 1
                 for i, s, p, d, k, e in zip(n_in, stride, pad, dilation, kernel, extra))
    if min(size) < 1:
        raise ValueError(f"{op}: the output size {size} would not be positive (input shape "
                         f"{tuple(x.shape)}, kernel {kernel}, stride {stride}, padding {pad})")
    geo = geometry(size, kernel, stride, dilation, tuple((p, p) for p in pad))
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = reshape(x, (1,) + tuple(x.shape))
    if geo.out != n_in:
        # output_padding >= stride (allowed when below the dilation): the windows of
        # the output reach past the input; those positions contribute zeros.
        x = _pad(x, ((0, 0), (0, 0)) + tuple((0, m - i) for m, i in zip(geo.out, n_in)))
    args = (x, w) if b is None else (x, w, b)
    y = ConvTranspose(geo, groups)(*args)
    return reshape(y, tuple(y.shape[1:])) if unbatched else y


# ==== public functions =================================================================

def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution (cross-correlation, as in PyTorch) over ``(N, C, L)`` inputs.

    Parameters
    ----------
    input : Tensor
        Shape ``(N, C_in, L)``, or ``(C_in, L)`` for one unbatched sample.
    weight : Tensor
        Shape ``(C_out, C_in / groups, K)``.
    bias : Tensor, optional
        Shape ``(C_out,)``.
    stride, dilation : int or tuple of one int, default 1
    padding : int, tuple of one int, 'valid' or 'same', default 0
        Zeros added at both ends. ``'same'`` keeps the length (stride 1 only);
        when the total ``dilation * (K - 1)`` is odd the extra zero goes at the end.
    groups : int, default 1
        Split the channels into this many independent groups.

    Returns
    -------
    Tensor
        Shape ``(N, C_out, L_out)`` with
        ``L_out = (L + 2 * padding - dilation * (K - 1) - 1) // stride + 1``.

    Raises
    ------
    ValueError
        On a channel mismatch, groups that do not divide the channels, or a kernel
        larger than the padded input; the message names the shapes.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d",
                 "(N, C, L)")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in PyTorch) over ``(N, C, H, W)`` inputs.

    Parameters
    ----------
    input : Tensor
        Shape ``(N, C_in, H, W)``, or ``(C_in, H, W)`` for one unbatched sample.
    weight : Tensor
        Shape ``(C_out, C_in / groups, KH, KW)``.
    bias : Tensor, optional
        Shape ``(C_out,)``.
    stride, dilation : int or (int, int), default 1
    padding : int, (int, int), 'valid' or 'same', default 0
        Zeros added on both sides of each spatial dim. ``'same'`` keeps the
        spatial size (stride 1 only); an odd total padding puts the extra row or
        column at the bottom or right, as PyTorch does.
    groups : int, default 1
        Split the channels into this many independent groups; ``groups = C_in``
        gives a depthwise convolution.

    Returns
    -------
    Tensor
        Shape ``(N, C_out, H_out, W_out)``, with
        ``H_out = (H + 2 * padding - dilation * (KH - 1) - 1) // stride + 1``
        (and likewise ``W_out``).

    Raises
    ------
    ValueError
        On a channel mismatch, groups that do not divide the channels, or a kernel
        larger than the padded input; the message names the shapes.

    Examples
    --------
    >>> x = na.randn(8, 3, 32, 32)
    >>> w = na.randn(16, 3, 3, 3)
    >>> na.conv2d(x, w, padding='same').shape
    (8, 16, 32, 32)
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d",
                 "(N, C, H, W)")


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """1-D transposed convolution: the adjoint of :func:`conv1d` in its input.

    Parameters are as for :func:`conv_transpose2d` with one spatial dim; the
    output length is
    ``(L - 1) * stride - 2 * padding + dilation * (K - 1) + output_padding + 1``.
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d", "(N, C, L)")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """2-D transposed convolution ("deconvolution"), as ``torch.nn.functional.conv_transpose2d``.

    It is the adjoint of :func:`conv2d` in its input: every input element adds
    ``weight``, scaled by its value, into a window of the output; the windows sit
    ``stride`` apart, and ``padding`` rows/columns are cut from each side.

    Parameters
    ----------
    input : Tensor
        Shape ``(N, C_in, H, W)``, or ``(C_in, H, W)`` unbatched.
    weight : Tensor
        Shape ``(C_in, C_out / groups, KH, KW)`` (note the order, as in PyTorch).
    bias : Tensor, optional
        Shape ``(C_out,)``.
    stride, padding, dilation : int or (int, int)
        Those of the convolution this one transposes.
    output_padding : int or (int, int), default 0
        Extra rows/columns added at the bottom/right of the output, to pick one of
        the sizes that a strided convolution maps to the same size; must be
        smaller than the stride or the dilation.
    groups : int, default 1

    Returns
    -------
    Tensor
        Shape ``(N, C_out, H_out, W_out)`` with
        ``H_out = (H - 1) * stride - 2 * padding + dilation * (KH - 1) + output_padding + 1``.

    Raises
    ------
    ValueError
        On a channel mismatch, bad groups, too large an ``output_padding``, or a
        non-positive output size.
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d", "(N, C, H, W)")
