"""Arithmetic and elementwise math.

Each op is a :class:`~neural_arch.core.Function` (CapWords) plus a lower-case
function. ``forward`` works on arrays; ``backward`` is written with these same ops,
so it can itself be differentiated.
"""
from __future__ import annotations

from .. import backend
from ..backend import get_array_module
from ..core.function import Function
from ._util import needs_grad, raw

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "abs", "maximum", "minimum", "clip",
           "where", "exp", "log", "sqrt", "tanh", "erf"]


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
        return (gy * x1 if needs_grad(x0) else None,
                gy * x0 if needs_grad(x1) else None)


class Div(Function):
    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1
        # d(x0/x1)/dx1 = -x0 / x1^2
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
            # d(x^p)/dx = p x^(p-1)
            gx0 = gy * x1 * x0 ** (x1 - 1)
        if needs_grad(x1):
            # d(x^p)/dp = x^p log x, taken as 0 where x == 0 (as PyTorch does)
            safe = where(raw(x0) == 0, 1.0, x0)
            gx1 = gy * self.output() * log(safe)
        return gx0, gx1


class Abs(Function):
    def forward(self, x):
        return abs(x)

    def backward(self, gy):
        x = self.inputs[0]
        return gy * get_array_module(x.data).sign(x.data)


class Maximum(Function):
    def forward(self, x0, x1):
        return get_array_module(x0, x1).maximum(x0, x1)

    def backward(self, gy):
        # Ties share the gradient half and half, as in PyTorch.
        a, b = raw(self.inputs[0]), raw(self.inputs[1])
        w = (a > b) + 0.5 * (a == b)
        return gy * w.astype(gy.dtype), gy * (1 - w).astype(gy.dtype)


class Minimum(Function):
    def forward(self, x0, x1):
        return get_array_module(x0, x1).minimum(x0, x1)

    def backward(self, gy):
        a, b = raw(self.inputs[0]), raw(self.inputs[1])
        w = (a < b) + 0.5 * (a == b)
        return gy * w.astype(gy.dtype), gy * (1 - w).astype(gy.dtype)


class Clip(Function):
    grad_bounded = True

    def __init__(self, lo, hi):
        self.lo = lo
        self.hi = hi

    def forward(self, x):
        return get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, gy):
        # The gradient passes where lo <= x <= hi (bounds included, as PyTorch).
        x = self.inputs[0].data
        mask = x == x  # True, with NaN excluded
        if self.lo is not None:
            mask &= x >= self.lo
        if self.hi is not None:
            mask &= x <= self.hi
        return gy * mask.astype(gy.dtype)


class Where(Function):
    grad_bounded = True

    def __init__(self, cond):
        self.cond = cond

    def forward(self, x0, x1):
        return get_array_module(x0, x1).where(self.cond, x0, x1)

    def backward(self, gy):
        c = self.cond.astype(gy.dtype)
        return gy * c, gy * (1 - c)


def add(x0, x1):
    """Elementwise ``x0 + x1`` with NumPy broadcasting."""
    return Add()(x0, x1)


def sub(x0, x1):
    """Elementwise ``x0 - x1`` with NumPy broadcasting."""
    return Sub()(x0, x1)


def mul(x0, x1):
    """Elementwise ``x0 * x1`` with NumPy broadcasting."""
    return Mul()(x0, x1)


def div(x0, x1):
    """Elementwise ``x0 / x1`` with NumPy broadcasting."""
    return Div()(x0, x1)


def neg(x):
    """Elementwise ``-x``."""
    return Neg()(x)


def pow(x0, x1):
    """Elementwise ``x0 ** x1``; the exponent may be a number or a Tensor."""
    return Pow()(x0, x1)


def abs(x):
    """Elementwise ``|x|``; its gradient at 0 is 0."""
    return Abs()(x)


def maximum(x0, x1):
    """Elementwise maximum; ties share the gradient equally."""
    return Maximum()(x0, x1)


def minimum(x0, x1):
    """Elementwise minimum; ties share the gradient equally."""
    return Minimum()(x0, x1)


def clip(x, min=None, max=None):
    """Clamp ``x`` to ``[min, max]`` (either bound may be None)."""
    if min is None and max is None:
        raise ValueError("clip needs at least one of min and max")
    return Clip(raw(min), raw(max))(x)


def where(condition, x0, x1):
    """Pick ``x0`` where ``condition`` holds, else ``x1`` (broadcasting all three)."""
    return Where(raw(condition))(x0, x1)


# ==== elementwise math ==============================================================

class Exp(Function):
    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.output()          # d e^x = e^x


class Log(Function):
    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Sqrt(Function):
    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2 * self.output())    # d sqrt(x) = 1 / (2 sqrt(x))


class Tanh(Function):
    grad_bounded = True

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.output()
        return gy * (1 - y * y)            # d tanh = 1 - tanh^2


def exp(x):
    """Elementwise ``e^x``."""
    return Exp()(x)


def log(x):
    """Elementwise natural logarithm."""
    return Log()(x)


def sqrt(x):
    """Elementwise square root."""
    return Sqrt()(x)


def tanh(x):
    """Elementwise hyperbolic tangent."""
    return Tanh()(x)


_TWO_OVER_SQRT_PI = 1.1283791670955126


class Erf(Function):
    def forward(self, x):
        return backend.erf(x)

    def backward(self, gy):
        x = self.inputs[0]
        return gy * (_TWO_OVER_SQRT_PI * exp(-(x * x)))   # d erf = 2/sqrt(pi) e^(-x^2)


def erf(x):
    """Elementwise Gauss error function ``2/sqrt(pi) * integral_0^x e^(-t^2) dt``."""
    return Erf()(x)
