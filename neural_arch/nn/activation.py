"""Activation modules: one per activation in :mod:`neural_arch.functional`.

Names, arguments and ``repr`` follow ``torch.nn``. The ``inplace`` flag of
PyTorch's modules is accepted so that code written for PyTorch runs, but the
result is always a new tensor: overwriting an input that the graph may still
need would corrupt its gradient. (It is shown in the ``repr`` as in PyTorch.)
"""
from __future__ import annotations

import numbers

from .. import functional as F
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Mish", "Hardtanh", "Sigmoid",
           "Tanh", "Softplus", "Softmax", "LogSoftmax"]


def _inplace_repr(inplace, first=False):
    if not inplace:
        return ""
    return "inplace=True" if first else ", inplace=True"


def _check_bool(value, what, owner):
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {what} must be a bool, got {value!r}")
    return value


def _check_real(value, what, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {what} must be a real number, got {value!r}")
    return value


class ReLU(Module):
    """Rectified linear unit, ``max(x, 0)``, elementwise (:func:`~neural_arch.functional.relu`).

    Parameters
    ----------
    inplace : bool, default False
        Accepted for PyTorch compatibility; the output is always a new tensor.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = _check_bool(inplace, "inplace", "ReLU")

    def forward(self, input):
        return F.relu(input)

    def extra_repr(self):
        return _inplace_repr(self.inplace, first=True)


class LeakyReLU(Module):
    """Leaky ReLU: ``x`` for ``x > 0``, ``negative_slope * x`` otherwise.

    Parameters
    ----------
    negative_slope : float, default 0.01
    inplace : bool, default False
        Accepted for PyTorch compatibility; the output is always a new tensor.
    """

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = _check_real(negative_slope, "negative_slope", "LeakyReLU")
        self.inplace = _check_bool(inplace, "inplace", "LeakyReLU")

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + _inplace_repr(self.inplace)


class ELU(Module):
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha (e^x - 1)`` otherwise.

    Parameters
    ----------
    alpha : float, default 1.0
    inplace : bool, default False
        Accepted for PyTorch compatibility; the output is always a new tensor.
    """

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = _check_real(alpha, "alpha", "ELU")
        self.inplace = _check_bool(inplace, "inplace", "ELU")

    def forward(self, input):
        return F.elu(input, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + _inplace_repr(self.inplace)


class SELU(Module):
    """Scaled ELU with the self-normalising constants (:func:`~neural_arch.functional.selu`).

    Parameters
    ----------
    inplace : bool, default False
        Accepted for PyTorch compatibility; the output is always a new tensor.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = _check_bool(inplace, "inplace", "SELU")

    def forward(self, input):
        return F.selu(input)

    def extra_repr(self):
        return _inplace_repr(self.inplace, first=True)


class GELU(Module):
    """Gaussian error linear unit, ``x Phi(x)`` (:func:`~neural_arch.functional.gelu`).

    Parameters
    ----------
    approximate : {'none', 'tanh'}, default 'none'
        ``'tanh'`` selects the tanh approximation.
    """

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """Sigmoid-weighted linear unit (swish), ``x sigmoid(x)``.

    Parameters
    ----------
    inplace : bool, default False
        Accepted for PyTorch compatibility; the output is always a new tensor.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = _check_bool(inplace, "inplace", "SiLU")

    def forward(self, input):
        return F.silu(input)

    def extra_repr(self):
        return _inplace_repr(self.inplace, first=True)


class Mish(Module):
    """Mish, ``x tanh(softplus(x))``.

    Parameters
    ----------
    inplace : bool, default False
        Accepted for PyTorch compatibility; the output is always a new tensor.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = _check_bool(inplace, "inplace", "Mish")

    def forward(self, input):
        return F.mish(input)

    def extra_repr(self):
        return _inplace_repr(self.inplace, first=True)


class Hardtanh(Module):
    """Clamp to ``[min_val, max_val]``, elementwise.

    Parameters
    ----------
    min_val, max_val : float, default -1.0 and 1.0
    inplace : bool, default False
        Accepted for PyTorch compatibility; the output is always a new tensor.
    """

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        self.min_val = _check_real(min_val, "min_val", "Hardtanh")
        self.max_val = _check_real(max_val, "max_val", "Hardtanh")
        if max_val < min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must not be below min_val "
                             f"({min_val})")
        self.inplace = _check_bool(inplace, "inplace", "Hardtanh")

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + _inplace_repr(self.inplace)


class Sigmoid(Module):
    """Logistic sigmoid, ``1 / (1 + e^-x)``, elementwise."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """Hyperbolic tangent, elementwise."""

    def forward(self, input):
        return F.tanh(input)


class Softplus(Module):
    """Softplus, ``log(1 + e^(beta x)) / beta`` (linear above ``threshold``).

    Parameters
    ----------
    beta : float, default 1.0
    threshold : float, default 20.0
        Where ``beta * x`` exceeds it, the output is ``x``.
    """

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = _check_real(beta, "beta", "Softplus")
        if beta == 0:
            raise ValueError("Softplus: beta must be non-zero, got 0")
        self.threshold = _check_real(threshold, "threshold", "Softplus")

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


def _dim(dim, axis, owner):
    """Resolve PyTorch's ``dim`` and its alias ``axis``; None for both means -1."""
    if dim is not None and axis is not None and dim != axis:
        raise TypeError(f"{owner}: got both dim={dim} and axis={axis}; pass only one")
    d = dim if dim is not None else axis
    if d is None:
        return -1
    if isinstance(d, bool) or not isinstance(d, numbers.Integral):
        raise TypeError(f"{owner}: dim must be an int, got {d!r}")
    return int(d)


class Softmax(Module):
    """Softmax along one dim: the entries along ``dim`` become positive and sum to 1.

    Parameters
    ----------
    dim : int, optional
        The dim to normalise. When omitted, the last dim (-1) is used. (PyTorch
        picks a dim from the input's rank and warns; the last dim is what
        classifier outputs of any rank want.)
    axis : int, optional
        Alias of ``dim`` (keyword only).
    """

    def __init__(self, dim=None, *, axis=None):
        super().__init__()
        self.dim = _dim(dim, axis, "Softmax")

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Log of the softmax along one dim, computed stably.

    Parameters
    ----------
    dim : int, optional
        The dim to normalise; the last dim (-1) when omitted (see :class:`Softmax`).
    axis : int, optional
        Alias of ``dim`` (keyword only).
    """

    def __init__(self, dim=None, *, axis=None):
        super().__init__()
        self.dim = _dim(dim, axis, "LogSoftmax")

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
