"""Activation functions.

Each activation is a :class:`~neural_arch.core.Function` (CapWords) plus a
lower-case function with PyTorch's argument names and defaults (``softmax`` and
``log_softmax`` take ``axis``; ``dim`` is accepted as an alias). ``forward`` works
on raw arrays and is kept to a few ufuncs, because these ops sit on the hot path
of every network; ``backward`` is written with neural_arch ops, so second
derivatives come out of the same formula.

Numerical care: nothing here overflows for large ``|x|`` (sigmoid, softplus,
silu, mish, elu and the softmaxes stay finite and warning-free at ``x = +-1e4``).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import get_array_module
from ..core.function import Function
from .math import clip, erf, exp, tanh, where
from .reduce import sum as _sum

__all__ = ["sigmoid", "softplus", "relu", "leaky_relu", "elu", "selu", "gelu", "silu",
           "mish", "hardtanh", "softmax", "log_softmax"]


# The largest argument whose exponential is still finite, per dtype (rounded down).
# Capping ``-x`` there before ``exp`` avoids overflow (and NumPy's warning); where the
# cap bites, ``1 / (1 + e^cap)`` is already below the dtype's smallest normal number,
# so sigmoid is unchanged for all practical purposes (silu there gives ``x`` times that
# tiny number instead of -0: under 1e-23 in magnitude for any |x| < 1e15, even in
# float32). float16, whose exp overflows from 11 on, is computed in float32 instead.
_EXP_CAP = {np.dtype(np.float32): 88.0, np.dtype(np.float64): 709.0}
_HALF = np.dtype(np.float16)
_SINGLE = np.dtype(np.float32)


def _one_plus_exp_neg(xp, x):
    """``1 + e^(-x)`` as a fresh array that never overflows."""
    e = xp.exp(xp.minimum(-x, _EXP_CAP.get(getattr(x, "dtype", None), 709.0)))
    e += 1
    return e


def _softplus_array(xp, z):
    """``log(1 + e^z)`` computed as ``max(z, 0) + log1p(e^-|z|)``: accurate, overflow-free."""
    y = xp.log1p(xp.exp(-xp.abs(z)))
    y += xp.maximum(z, 0)
    return y


# ==== sigmoid family ================================================================

class Sigmoid(Function):
    grad_bounded = True              # sigma' = sigma (1 - sigma) <= 1/4

    def forward(self, x):
        if getattr(x, "dtype", None) == _HALF:
            return self.forward(x.astype(_SINGLE)).astype(_HALF)
        return 1 / _one_plus_exp_neg(get_array_module(x), x)

    def backward(self, gy):
        y = self.output()
        return gy * (y * (1 - y))


class Softplus(Function):
    grad_bounded = True              # the derivative is sigmoid(beta x) (or 1): in (0, 1]

    def __init__(self, beta, threshold):
        self.beta = beta
        self.threshold = threshold

    def forward(self, x):
        xp = get_array_module(x)
        beta = self.beta
        z = x if beta == 1 else x * beta
        y = _softplus_array(xp, z)
        if beta != 1:
            y /= beta
        # Above the threshold the function is taken to be linear, as PyTorch does.
        self.linear = z > self.threshold
        return xp.where(self.linear, x, y)

    def backward(self, gy):
        x = self.inputs[0]
        s = sigmoid(x) if self.beta == 1 else sigmoid(x * self.beta)
        return where(self.linear, gy, gy * s)


class Silu(Function):
    # silu' = s (1 + x (1 - s)) reaches about 1.0998 near x = 2.4: not bounded.
    def forward(self, x):
        if getattr(x, "dtype", None) == _HALF:
            return self.forward(x.astype(_SINGLE)).astype(_HALF)
        return x / _one_plus_exp_neg(get_array_module(x), x)

    def backward(self, gy):
        x = self.inputs[0]
        s = sigmoid(x)
        return gy * (s * (1 + x * (1 - s)))


class Mish(Function):
    # mish' peaks at about 1.088 near x = 1.2: not bounded.
    def forward(self, x):
        xp = get_array_module(x)
        return x * xp.tanh(_softplus_array(xp, x))

    def backward(self, gy):
        x = self.inputs[0]
        t = tanh(softplus(x))
        # d/dx [x tanh(sp(x))] = t + x (1 - t^2) sigmoid(x), since sp' = sigmoid
        return gy * (t + x * (1 - t * t) * sigmoid(x))


def sigmoid(x):
    """Logistic sigmoid, elementwise.

    .. math:: \\sigma(x) = \\frac{1}{1 + e^{-x}}

    Computed so that it neither overflows nor warns for large ``|x|``, and keeps
    full relative precision in the left tail (``sigmoid(-40)`` is about ``4.2e-18``,
    not 0).

    Parameters
    ----------
    x : Tensor
        Input of any shape.

    Returns
    -------
    Tensor
        Values in ``[0, 1]``, same shape and dtype as ``x``.
    """
    return Sigmoid()(x)


def softplus(x, beta=1.0, threshold=20.0):
    """Smooth approximation of ReLU, elementwise.

    .. math:: \\mathrm{softplus}(x) = \\frac{1}{\\beta} \\log(1 + e^{\\beta x})

    and simply ``x`` wherever ``beta * x > threshold`` (PyTorch's convention, which
    keeps the tail exactly linear).

    Parameters
    ----------
    x : Tensor
        Input of any shape.
    beta : float, default 1.0
        Sharpness; larger values approach ReLU. Must be non-zero.
    threshold : float, default 20.0
        Above ``beta * x > threshold`` the identity is returned.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``.
    """
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero, got 0")
    return Softplus(beta, threshold)(x)


def silu(x):
    """Sigmoid-weighted linear unit (also called swish), elementwise.

    .. math:: \\mathrm{silu}(x) = x \\, \\sigma(x) = \\frac{x}{1 + e^{-x}}

    Parameters
    ----------
    x : Tensor
        Input of any shape.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``.
    """
    return Silu()(x)


def mish(x):
    """Mish, elementwise.

    .. math:: \\mathrm{mish}(x) = x \\tanh(\\log(1 + e^{x}))

    Parameters
    ----------
    x : Tensor
        Input of any shape.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``.
    """
    return Mish()(x)


# ==== piecewise-linear and exponential-linear units =================================

class Relu(Function):
    grad_bounded = True

    def forward(self, x):
        return get_array_module(x).maximum(x, 0)

    def backward(self, gy):
        # The gradient at exactly 0 is 0, as in PyTorch. (Multiplying by the boolean
        # mask is several times faster than a ``where``.)
        return gy * (self.inputs[0].data > 0)


class LeakyRelu(Function):
    grad_bounded = True              # overridden per instance when |slope| > 1

    def __init__(self, negative_slope):
        self.slope = negative_slope
        if not -1 <= negative_slope <= 1:
            self.grad_bounded = False

    def forward(self, x):
        xp = get_array_module(x)
        s = self.slope
        if 0 <= s <= 1:
            # For slopes in [0, 1], x * s lies between x and 0, so the max picks the
            # right branch: one ufunc fewer than the general ``where``.
            return xp.maximum(x, x * s)
        return xp.where(x > 0, x, x * s)

    def backward(self, gy):
        # At exactly 0 the slope applies, as in PyTorch.
        return where(self.inputs[0].data > 0, gy, gy * self.slope)


class Elu(Function):
    grad_bounded = True              # overridden per instance (see __init__)

    def __init__(self, alpha, scale=1.0):
        self.alpha = alpha
        self.scale = scale
        # The derivative is ``scale`` for x > 0 and ``scale * alpha * e^x`` (at most
        # |scale * alpha| in magnitude) for x <= 0.
        if abs(scale) > 1 or abs(scale * alpha) > 1:
            self.grad_bounded = False

    def forward(self, x):
        xp = get_array_module(x)
        # alpha (e^min(x,0) - 1) + max(x, 0): each term vanishes on the other side of 0,
        # the min keeps expm1 from overflowing, and no (slow) ``where`` is needed.
        y = xp.expm1(xp.minimum(x, 0))
        y *= self.alpha
        y += xp.maximum(x, 0)
        if self.scale != 1:
            y *= self.scale
        return y

    def backward(self, gy):
        x = self.inputs[0]
        sa = self.scale * self.alpha
        # The derivative is scale for x > 0 and sa e^x for x <= 0, that is
        # sa e^min(x, 0) + (scale - sa) [x > 0]. Taking e^x directly (rather than
        # y + sa, which cancels to 0 in the far tail) keeps full precision, and the
        # clip keeps it from overflowing while leaving it differentiable.
        d = sa * exp(clip(x, max=0.0))
        if self.scale != sa:
            d = d + (self.scale - sa) * (x.data > 0).astype(x.dtype)
        return gy * d


# SELU's fixed constants (Klambauer et al., 2017), to the precision PyTorch uses.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def relu(x):
    """Rectified linear unit, elementwise.

    .. math:: \\mathrm{relu}(x) = \\max(x, 0)

    The gradient at ``x == 0`` is 0.

    Parameters
    ----------
    x : Tensor
        Input of any shape.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``.
    """
    return Relu()(x)


def leaky_relu(x, negative_slope=0.01):
    """Leaky ReLU, elementwise.

    .. math:: \\mathrm{leaky\\_relu}(x) = x \\text{ if } x > 0 \\text{ else }
              \\mathrm{negative\\_slope} \\cdot x

    Parameters
    ----------
    x : Tensor
        Input of any shape.
    negative_slope : float, default 0.01
        Slope for ``x <= 0`` (also the gradient at exactly 0).

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``.
    """
    return LeakyRelu(negative_slope)(x)


def elu(x, alpha=1.0):
    """Exponential linear unit, elementwise.

    .. math:: \\mathrm{elu}(x) = x \\text{ if } x > 0 \\text{ else } \\alpha (e^{x} - 1)

    Parameters
    ----------
    x : Tensor
        Input of any shape.
    alpha : float, default 1.0
        Value the function approaches as ``x -> -inf`` is ``-alpha``.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``.
    """
    return Elu(alpha)(x)


def selu(x):
    """Scaled exponential linear unit, elementwise.

    .. math:: \\mathrm{selu}(x) = \\lambda \\, (x \\text{ if } x > 0 \\text{ else }
              \\alpha (e^{x} - 1))

    with the self-normalising constants ``alpha = 1.6732632423543772`` and
    ``lambda = 1.0507009873554805``.

    Parameters
    ----------
    x : Tensor
        Input of any shape.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``.
    """
    return Elu(_SELU_ALPHA, _SELU_SCALE)(x)


# ==== GELU ==========================================================================

# Beyond |x| = 40 the Gaussian density underflows (e^-800) and beyond |x| = 10 the
# tanh of the approximation is exactly +-1, in every float dtype; clipping x there
# first changes no value and keeps x^2 and x^3 from overflowing float16.
_GELU_PDF_CLIP = 40.0
_GELU_TANH_CLIP = 10.0
_SQRT1_2 = 0.7071067811865476          # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327     # 1 / sqrt(2 pi)
_SQRT_2_OVER_PI = 0.7978845608028654   # sqrt(2 / pi)
_GELU_KAPPA = 0.044715


class Gelu(Function):
    # gelu' = Phi(x) + x phi(x) peaks at about 1.129 near x = 1.4: not bounded.
    def forward(self, x):
        if getattr(x, "dtype", None) == _HALF:       # float16 is worked in float32
            return self.forward(x.astype(_SINGLE)).astype(_HALF)
        y = backend.erf(x * _SQRT1_2)
        y += 1
        y *= x
        y *= 0.5
        return y

    def backward(self, gy):
        x = self.inputs[0]
        cdf = 0.5 * (1 + erf(x * _SQRT1_2))
        xc = clip(x, -_GELU_PDF_CLIP, _GELU_PDF_CLIP)
        pdf = exp(xc * xc * -0.5) * _INV_SQRT_2PI
        return gy * (cdf + x * pdf)


class GeluTanh(Function):
    # Same shape of derivative as the exact GELU (peak about 1.13): not bounded.
    def forward(self, x):
        xp = get_array_module(x)
        xc = xp.clip(x, -_GELU_TANH_CLIP, _GELU_TANH_CLIP)
        t = xp.tanh(_SQRT_2_OVER_PI * (xc + _GELU_KAPPA * (xc * xc * xc)))
        t += 1
        t *= x
        t *= 0.5
        return t

    def backward(self, gy):
        # Written with the clipped input throughout: for |x| >= 10 the tanh is +-1, so
        # both terms have the same value as with x itself (the second one is 0).
        xc = clip(self.inputs[0], -_GELU_TANH_CLIP, _GELU_TANH_CLIP)
        x2 = xc * xc
        t = tanh(_SQRT_2_OVER_PI * (xc + _GELU_KAPPA * (x2 * xc)))
        dinner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_KAPPA * x2)
        return gy * (0.5 * (1 + t) + 0.5 * xc * (1 - t * t) * dinner)


def gelu(x, approximate="none"):
    """Gaussian error linear unit, elementwise.

    .. math:: \\mathrm{gelu}(x) = x \\, \\Phi(x)
              = \\frac{x}{2} \\left(1 + \\mathrm{erf}(x / \\sqrt{2})\\right)

    With ``approximate='tanh'`` the cheaper form
    ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` is used instead.

    Parameters
    ----------
    x : Tensor
        Input of any shape.
    approximate : {'none', 'tanh'}, default 'none'
        Which formula to evaluate.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``.
    """
    if approximate == "none":
        return Gelu()(x)
    if approximate == "tanh":
        return GeluTanh()(x)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


# ==== hardtanh ======================================================================

class Hardtanh(Function):
    grad_bounded = True

    def __init__(self, min_val, max_val):
        self.min_val = min_val
        self.max_val = max_val

    def forward(self, x):
        return get_array_module(x).clip(x, self.min_val, self.max_val)

    def backward(self, gy):
        # Zero gradient at and beyond the bounds (strict inequalities, as PyTorch).
        x = self.inputs[0].data
        return gy * ((x > self.min_val) & (x < self.max_val))


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """Hard tanh: clamp to ``[min_val, max_val]``, elementwise.

    .. math:: \\mathrm{hardtanh}(x) = \\min(\\max(x, \\mathrm{min\\_val}), \\mathrm{max\\_val})

    The gradient is 1 strictly inside the interval and 0 elsewhere (including the
    two bounds themselves).

    Parameters
    ----------
    x : Tensor
        Input of any shape.
    min_val, max_val : float, default -1.0 and 1.0
        The bounds; ``max_val`` must not be below ``min_val``.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``.
    """
    if max_val < min_val:
        raise ValueError(f"hardtanh: max_val ({max_val}) must not be below min_val ({min_val})")
    return Hardtanh(min_val, max_val)(x)


# ==== softmax =======================================================================

class Softmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))   # shift: no overflow
        e /= e.sum(axis=self.axis, keepdims=True)
        return e

    def backward(self, gy):
        y = self.output()
        return y * (gy - _sum(gy * y, self.axis, keepdims=True))


class LogSoftmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        s = x - x.max(axis=self.axis, keepdims=True)
        return s - xp.log(xp.exp(s).sum(axis=self.axis, keepdims=True))

    def backward(self, gy):
        # Hand-written rather than derived through x - m - log(sum(exp(x - m))): the
        # closed form gx = gy - softmax(x) * sum(gy) only exponentiates the output
        # y = log_softmax(x) <= 0, which cannot overflow, and needs neither the
        # shifted inputs nor a division by the (possibly tiny) sum. Being written
        # with differentiable ops on the output, it also gives second derivatives.
        return gy - exp(self.output()) * _sum(gy, self.axis, keepdims=True)


def _pick_axis(axis, dim, name):
    if dim is None:
        return axis
    if axis != -1 and axis != dim:
        raise TypeError(f"{name}: got both axis={axis} and dim={dim}; pass only one")
    return dim


def softmax(x, axis=-1, *, dim=None):
    """Softmax along one axis.

    .. math:: \\mathrm{softmax}(x)_i = \\frac{e^{x_i}}{\\sum_j e^{x_j}}

    The maximum along ``axis`` is subtracted first, so large inputs do not overflow.

    Parameters
    ----------
    x : Tensor
        Input of any shape (at least 1-d).
    axis : int, default -1
        The axis whose entries are normalised to sum to 1.
    dim : int, optional
        PyTorch's name for ``axis`` (keyword only).

    Returns
    -------
    Tensor
        Non-negative values summing to 1 along ``axis``; same shape and dtype as ``x``.
    """
    if dim is not None:
        axis = _pick_axis(axis, dim, "softmax")
    return Softmax(axis)(x)


def log_softmax(x, axis=-1, *, dim=None):
    """Logarithm of the softmax along one axis, computed stably.

    .. math:: \\mathrm{log\\_softmax}(x)_i = x_i - m - \\log \\sum_j e^{x_j - m},
              \\quad m = \\max_j x_j

    Preferred over ``log(softmax(x))``, which gives ``-inf`` once a probability
    underflows to 0.

    Parameters
    ----------
    x : Tensor
        Input of any shape (at least 1-d).
    axis : int, default -1
        The axis to normalise over.
    dim : int, optional
        PyTorch's name for ``axis`` (keyword only).

    Returns
    -------
    Tensor
        Values ``<= 0`` whose exponentials sum to 1 along ``axis``.
    """
    if dim is not None:
        axis = _pick_axis(axis, dim, "log_softmax")
    return LogSoftmax(axis)(x)
