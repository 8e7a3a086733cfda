"""Arithmetic and elementwise math.

Each op is a :class:`~neural_arch.core.Function` (CapWords) plus a lower-case
function. ``forward`` works on arrays; ``backward`` is written with these same ops,
so it can itself be differentiated (``create_graph=True``).

Binary ops broadcast like NumPy and accept Tensors, arrays and Python numbers on
either side. A Python number never changes the dtype of a Tensor it meets
(``float32_tensor * 2.0`` stays float32), as in PyTorch. Where a derivative is
ambiguous (ties of ``maximum``, ``abs`` at 0, ``clip`` at its bounds, ``0 ** p``)
the convention is PyTorch's.
"""
from __future__ import annotations

import math

from .. import backend
from ..backend import get_array_module
from ..core.function import Function
from ..core.grad_mode import config
from ..core.tensor import Tensor
from ._util import needs_grad, raw

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "abs", "maximum", "minimum", "clip",
           "clamp", "where", "exp", "log", "log1p", "expm1", "sqrt", "square", "sin", "cos",
           "tanh", "erf", "sign"]

_make = Tensor._make


# ==== arithmetic =====================================================================

class Add(Function):
    grad_bounded = True

    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        return gy, gy


class Sub(Function):
    grad_bounded = True

    def forward(self, x0, x1):
        return x0 - x1

    def backward(self, gy):
        return gy, (-gy if needs_grad(self.inputs[1]) else None)


class Mul(Function):
    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        # (needs_grad, inlined: mul is on the hot path of every model)
        n0 = isinstance(x0, Tensor) and x0._rg
        n1 = isinstance(x1, Tensor) and x1._rg
        if not config.grad_enabled:
            # First-order backward (no graph to record): the same products on the
            # arrays, without creating a node per product.
            gy, x0, x1 = gy.data, raw(x0), raw(x1)
        return (gy * x1 if n0 else None), (gy * x0 if n1 else None)


class Div(Function):
    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1
        # d(x0/x1)/dx1 = -x0 / x1^2 = -(gy / x1) * x0 / x1
        gx1 = -gx0 * x0 / x1 if needs_grad(x1) else None
        return (gx0 if needs_grad(x0) else None), gx1


class Neg(Function):
    grad_bounded = True

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    def forward(self, x0, x1):
        return x0 ** x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gx1 = None
        if needs_grad(x0):
            gx0 = _pow_grad_base(gy, x0, x1)
        if needs_grad(x1):
            gx1 = _pow_grad_exponent(gy, x0, x1, self.output())
        return gx0, gx1


def _pow_grad_base(gy, x, p):
    # d(x^p)/dx = p x^(p-1); where p == 0 the slope is taken as 0, so that 0 ** 0
    # (whose formula reads 0 * 0^-1) has slope 0, as in PyTorch.
    if isinstance(p, (int, float)):
        return gy * 0.0 if p == 0 else gy * (p * x ** (p - 1))
    return where(raw(p) == 0, 0.0, gy * (p * x ** (p - 1)))


def _pow_grad_exponent(gy, x, p, y):
    # d(x^p)/dp = x^p log x. Where x == 0 and p >= 0 this is 0 * -inf; PyTorch
    # takes it as 0, and so do we (log is evaluated at 1 there instead).
    if isinstance(x, (int, float)) and x > 0:      # 2 ** t: log x is a constant
        return gy * (y * math.log(x))
    a, ap = raw(x), raw(p)
    at_zero = (a == 0) & (ap >= 0)
    if not isinstance(x, Tensor):
        # A constant base: hold it as an array of the output's dtype, so that a
        # float64 constant does not promote a float32 gradient.
        x = _make(get_array_module(ap).asarray(a, dtype=y.dtype))
    return gy * (y * log(where(at_zero, 1.0, x)))


class Abs(Function):
    grad_bounded = True

    def forward(self, x):
        return get_array_module(x).abs(x)

    def backward(self, gy):
        a = self.inputs[0].data
        return gy * get_array_module(a).sign(a)    # d|x| = sign(x), 0 at x == 0


class Maximum(Function):
    grad_bounded = True

    def forward(self, x0, x1):
        return get_array_module(x0, x1).maximum(x0, x1)

    def backward(self, gy):
        return _minmax_grads(gy, self.inputs, larger_wins=True)


class Minimum(Function):
    grad_bounded = True

    def forward(self, x0, x1):
        return get_array_module(x0, x1).minimum(x0, x1)

    def backward(self, gy):
        return _minmax_grads(gy, self.inputs, larger_wins=False)


def _minmax_grads(gy, inputs, larger_wins):
    # Each side gets the gradient unless it lost; a tie splits it half and half.
    # (As PyTorch: with a NaN on either side neither side lost, so both get it.)
    x0, x1 = inputs
    a, b = raw(x0), raw(x1)
    tie = 0.5 * (a == b)
    gx0 = gx1 = None
    if needs_grad(x0):
        lost = a < b if larger_wins else a > b
        gx0 = gy * (1.0 - lost - tie).astype(gy.dtype, copy=False)
    if needs_grad(x1):
        lost = b < a if larger_wins else b > a
        gx1 = gy * (1.0 - lost - tie).astype(gy.dtype, copy=False)
    return gx0, gx1


class Clip(Function):
    grad_bounded = True

    def forward(self, x, lo, hi):
        return get_array_module(x, lo, hi).clip(x, lo, hi)

    def backward(self, gy):
        # Both bounds are inclusive for x: at x == lo or x == hi the gradient goes
        # to x. When lo > hi the output is hi everywhere (NumPy and PyTorch agree).
        x, lo, hi = self.inputs
        a, l, h = raw(x), raw(lo), raw(hi)
        gx = glo = ghi = None
        if needs_grad(x):
            if l is None:
                keep = a <= h
            elif h is None:
                keep = a >= l
            else:
                keep = (a >= l) & (a <= h)
            gx = where(keep, gy, 0.0)
        if needs_grad(lo):
            below = a < l if h is None else (a < l) & (l < h)
            glo = where(below, gy, 0.0)
        if needs_grad(hi):
            above = a > h if l is None else (a > h) | (h < l)
            ghi = where(above, gy, 0.0)
        return gx, glo, ghi


class Where(Function):
    grad_bounded = True

    def forward(self, cond, x0, x1):
        return get_array_module(cond, x0, x1).where(cond, x0, x1)

    def backward(self, gy):
        cond, x0, x1 = self.inputs
        c = raw(cond)
        return (None,
                where(c, gy, 0.0) if needs_grad(x0) else None,
                where(c, 0.0, gy) if needs_grad(x1) else None)


def add(x, other):
    """Elementwise sum ``x + other``, broadcasting like NumPy.

    Parameters
    ----------
    x, other : Tensor, array or number
        Operands; at least one is usually a Tensor. Python numbers keep the
        Tensor's dtype.

    Returns
    -------
    Tensor
        The sum, of the broadcast shape of the operands.

    Raises
    ------
    ValueError
        When the shapes cannot be broadcast together (the message names both).
    """
    return Add()(x, other)


def sub(x, other):
    """Elementwise difference ``x - other``, broadcasting like NumPy.

    Parameters
    ----------
    x, other : Tensor, array or number
        Operands.

    Returns
    -------
    Tensor
    """
    return Sub()(x, other)


def mul(x, other):
    """Elementwise product ``x * other``, broadcasting like NumPy.

    Parameters
    ----------
    x, other : Tensor, array or number
        Operands.

    Returns
    -------
    Tensor
    """
    return Mul()(x, other)


def div(x, other):
    """Elementwise true division ``x / other``, broadcasting like NumPy.

    Parameters
    ----------
    x, other : Tensor, array or number
        Numerator and denominator.

    Returns
    -------
    Tensor
        The quotient; division by zero gives ``inf`` or ``nan`` as in NumPy.
    """
    return Div()(x, other)


def neg(x):
    """Elementwise negation ``-x``.

    Parameters
    ----------
    x : Tensor or array

    Returns
    -------
    Tensor
    """
    return Neg()(x)


def pow(x, exponent):
    """Elementwise power ``x ** exponent``.

    Parameters
    ----------
    x : Tensor, array or number
        The base (a number for ``2 ** t``).
    exponent : Tensor, array or number
        The exponent, broadcast against ``x``.

    Returns
    -------
    Tensor

    Notes
    -----
    The derivatives are :math:`p x^{p-1}` with respect to the base and
    :math:`x^p \\log x` with respect to the exponent. Following PyTorch, the
    first is 0 wherever :math:`p = 0`, and the second is 0 wherever
    :math:`x = 0` and :math:`p \\ge 0`. A negative base with a Tensor exponent
    gives a NaN exponent gradient (the real logarithm is undefined there).
    """
    return Pow()(x, exponent)


def abs(x):
    """Elementwise absolute value ``|x|``.

    Parameters
    ----------
    x : Tensor or array

    Returns
    -------
    Tensor
        ``|x|``; its gradient is ``sign(x)``, hence 0 at ``x == 0`` (as PyTorch).
    """
    return Abs()(x)


def maximum(x, other):
    """Elementwise maximum of two operands, broadcasting like NumPy.

    Parameters
    ----------
    x, other : Tensor, array or number

    Returns
    -------
    Tensor
        The larger of the two; NaN wins. Where both are equal, each receives half
        of the gradient (the PyTorch convention).
    """
    return Maximum()(x, other)


def minimum(x, other):
    """Elementwise minimum of two operands, broadcasting like NumPy.

    Parameters
    ----------
    x, other : Tensor, array or number

    Returns
    -------
    Tensor
        The smaller of the two; NaN wins. Ties split the gradient half and half.
    """
    return Minimum()(x, other)


def clip(x, min=None, max=None):
    """Clamp every element of ``x`` into ``[min, max]``.

    Parameters
    ----------
    x : Tensor or array
        The values to clamp.
    min, max : Tensor, array, number or None
        The bounds; either may be None (no bound on that side), not both. Tensor
        bounds broadcast against ``x`` and receive gradients where they are the
        output. If ``min > max`` somewhere, the output there is ``max``.

    Returns
    -------
    Tensor
        The clamped values. The gradient reaches ``x`` where
        ``min <= x <= max`` (bounds inclusive, as PyTorch) and is 0 elsewhere.

    Raises
    ------
    ValueError
        When both bounds are None.
    """
    if min is None and max is None:
        raise ValueError("clip needs at least one bound: min and max were both None")
    return Clip()(x, min, max)


clamp = clip   # PyTorch's name


def where(condition, x, other):
    """Choose ``x`` where ``condition`` is True and ``other`` elsewhere.

    Parameters
    ----------
    condition : Tensor, array or bool
        A boolean mask (build one with a comparison, e.g. ``t > 0``).
    x, other : Tensor, array or number
        The two sources; all three arguments broadcast together.

    Returns
    -------
    Tensor
        The selection. Each source receives the gradient where it was chosen.

    Raises
    ------
    TypeError
        When ``condition`` is an array that is not boolean.
    """
    c = raw(condition)
    dtype = getattr(c, "dtype", None)
    if dtype is not None and dtype.kind != "b":
        raise TypeError(f"where expects a boolean condition, got dtype {dtype}; "
                        "build one with a comparison such as t > 0")
    return Where()(c, x, other)


# ==== elementwise math ==============================================================

class Exp(Function):
    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.output()              # d e^x = e^x


class Log(Function):
    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]             # d log x = 1 / x


class Log1p(Function):
    def forward(self, x):
        return get_array_module(x).log1p(x)

    def backward(self, gy):
        return gy / (self.inputs[0] + 1)       # d log(1 + x) = 1 / (1 + x)


class Expm1(Function):
    def forward(self, x):
        return get_array_module(x).expm1(x)

    def backward(self, gy):
        return gy * (self.output() + 1)        # d (e^x - 1) = e^x = y + 1


class Sqrt(Function):
    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2 * self.output())        # d sqrt(x) = 1 / (2 sqrt(x))


class Square(Function):
    def forward(self, x):
        return get_array_module(x).square(x)

    def backward(self, gy):
        return gy * (2 * self.inputs[0])       # d x^2 = 2x


class Sin(Function):
    def forward(self, x):
        return get_array_module(x).sin(x)

    def backward(self, gy):
        return gy * cos(self.inputs[0])        # d sin = cos


class Cos(Function):
    def forward(self, x):
        return get_array_module(x).cos(x)

    def backward(self, gy):
        return gy * -sin(self.inputs[0])       # d cos = -sin


class Tanh(Function):
    grad_bounded = True

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        if not config.grad_enabled:         # first order: the formula on the arrays
            return _tanh_grad(self.output().data, gy.data)
        return TanhGrad()(self.output(), gy)


def _tanh_grad(y, gy):
    """``gy (1 - y^2)`` on arrays: tanh's derivative through its output ``y``."""
    return gy * (1 - y * y)


class TanhGrad(Function):
    """``gy * (1 - y^2)``, the backward of tanh, as one node.

    Tanh sits on the hot path of small networks; one fused node costs one op call in
    backward instead of three. Its own backward gives tanh's second derivative.
    """

    def forward(self, y, gy):
        return _tanh_grad(y, gy)

    def backward(self, g):
        y, gy = self.inputs
        # d/dy [gy (1 - y^2)] = -2 y gy ;  d/dgy = 1 - y^2
        return g * gy * (-2 * y), g * (1 - y * y)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class Erf(Function):
    def forward(self, x):
        return backend.erf(x)

    def backward(self, gy):
        x = self.inputs[0]
        return gy * (_TWO_OVER_SQRT_PI * exp(-(x * x)))   # d erf = 2/sqrt(pi) e^(-x^2)


def exp(x):
    """Elementwise exponential ``e^x``.

    Parameters
    ----------
    x : Tensor or array

    Returns
    -------
    Tensor
    """
    return Exp()(x)


def log(x):
    """Elementwise natural logarithm.

    Parameters
    ----------
    x : Tensor or array
        Positive values (0 gives ``-inf``, negatives NaN, as in NumPy).

    Returns
    -------
    Tensor
    """
    return Log()(x)


def log1p(x):
    """Elementwise ``log(1 + x)``, accurate for ``x`` near 0.

    Parameters
    ----------
    x : Tensor or array
        Values above -1.

    Returns
    -------
    Tensor
    """
    return Log1p()(x)


def expm1(x):
    """Elementwise ``e^x - 1``, accurate for ``x`` near 0.

    Parameters
    ----------
    x : Tensor or array

    Returns
    -------
    Tensor
    """
    return Expm1()(x)


def sqrt(x):
    """Elementwise square root.

    Parameters
    ----------
    x : Tensor or array
        Non-negative values; the gradient at 0 is ``inf``.

    Returns
    -------
    Tensor
    """
    return Sqrt()(x)


def square(x):
    """Elementwise square ``x * x``.

    Parameters
    ----------
    x : Tensor or array

    Returns
    -------
    Tensor
    """
    return Square()(x)


def sin(x):
    """Elementwise sine (radians).

    Parameters
    ----------
    x : Tensor or array

    Returns
    -------
    Tensor
    """
    return Sin()(x)


def cos(x):
    """Elementwise cosine (radians).

    Parameters
    ----------
    x : Tensor or array

    Returns
    -------
    Tensor
    """
    return Cos()(x)


def tanh(x):
    """Elementwise hyperbolic tangent.

    Parameters
    ----------
    x : Tensor or array

    Returns
    -------
    Tensor
        Values in ``(-1, 1)``.
    """
    return Tanh()(x)


def erf(x):
    """Elementwise Gauss error function.

    Parameters
    ----------
    x : Tensor or array

    Returns
    -------
    Tensor
        :math:`\\operatorname{erf}(x) = \\frac{2}{\\sqrt\\pi}\\int_0^x e^{-t^2}\\,dt`,
        with derivative :math:`\\frac{2}{\\sqrt\\pi} e^{-x^2}`.

    Notes
    -----
    Computed by :func:`neural_arch.backend.erf` (SciPy or an exact NumPy fallback
    on the CPU, ``cupyx.scipy.special`` on the GPU).
    """
    return Erf()(x)


def sign(x):
    """Elementwise sign: -1, 0 or 1.

    Parameters
    ----------
    x : Tensor or array

    Returns
    -------
    Tensor
        A constant tensor outside the graph: the sign is piecewise constant, so
        nothing flows back through it.

    Notes
    -----
    NaN stays NaN, as in NumPy; PyTorch returns 0 there. We keep the NaN on
    purpose: a sign-based update (signSGD, Lion) fed a NaN gradient should show
    it, not silently skip the step.
    """
    a = raw(x)
    xp = get_array_module(a)
    return _make(xp.asarray(xp.sign(a)))
