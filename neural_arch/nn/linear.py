"""Linear layers: Linear, Bilinear, and the shape helpers Identity and Flatten."""
from __future__ import annotations

import math
import numbers

from .. import functional as F
from ..core import creation
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Bilinear", "Identity", "Flatten"]


def _check_size(value, what, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{owner}: {what} must be a non-negative int, got {value!r}")
    return int(value)


def _new_param(shape, dtype, device):
    """An uninitialised Parameter (its values are set by reset_parameters)."""
    return Parameter(creation.empty(shape, dtype=dtype, device=device))


class Linear(Module):
    """Affine layer ``y = x W^T + b``, as ``torch.nn.Linear``.

    Parameters
    ----------
    in_features : int
        Size of the last dim of the input.
    out_features : int
        Size of the last dim of the output.
    bias : bool, default True
        Learn an additive bias.
    device : str, optional
        Where the parameters live (default device when None).
    dtype : dtype, optional
        Dtype of the parameters (default float dtype when None).

    Attributes
    ----------
    weight : Parameter
        Shape ``(out_features, in_features)``, initialised from
        ``U(-1/sqrt(in_features), 1/sqrt(in_features))`` (PyTorch's default:
        ``kaiming_uniform_`` with ``a = sqrt(5)``).
    bias : Parameter or None
        Shape ``(out_features,)``, drawn from the same uniform distribution.

    Examples
    --------
    >>> layer = na.nn.Linear(10, 1)
    >>> layer(na.randn(4, 10)).shape
    (4, 1)
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = _check_size(in_features, "in_features", "Linear")
        self.out_features = _check_size(out_features, "out_features", "Linear")
        self.weight = _new_param((self.out_features, self.in_features), dtype, device)
        if bias:
            self.bias = _new_param((self.out_features,), dtype, device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw fresh values, with PyTorch's default initialisation."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Bilinear(Module):
    """Bilinear layer ``y_k = x1^T W_k x2 + b_k``, as ``torch.nn.Bilinear``.

    Parameters
    ----------
    in1_features, in2_features : int
        Sizes of the last dims of the two inputs.
    out_features : int
        Size of the last dim of the output.
    bias : bool, default True
    device, dtype : optional
        As for :class:`Linear`.

    Attributes
    ----------
    weight : Parameter
        Shape ``(out_features, in1_features, in2_features)``, drawn from
        ``U(-1/sqrt(in1_features), 1/sqrt(in1_features))`` as in PyTorch.
    bias : Parameter or None
        Shape ``(out_features,)``, from the same distribution.
    """

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None,
                 dtype=None):
        super().__init__()
        self.in1_features = _check_size(in1_features, "in1_features", "Bilinear")
        self.in2_features = _check_size(in2_features, "in2_features", "Bilinear")
        self.out_features = _check_size(out_features, "out_features", "Bilinear")
        self.weight = _new_param((self.out_features, self.in1_features, self.in2_features),
                                 dtype, device)
        if bias:
            self.bias = _new_param((self.out_features,), dtype, device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw fresh values, with PyTorch's default initialisation."""
        bound = 1 / math.sqrt(self.in1_features) if self.in1_features > 0 else 0.0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Identity(Module):
    """Returns its input unchanged (a placeholder layer).

    Any constructor arguments are accepted and ignored, as in PyTorch, so it can
    stand in for a layer without changing the calling code.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """Flattens the dims ``start_dim`` through ``end_dim`` into one.

    Parameters
    ----------
    start_dim : int, default 1
        First dim to flatten (the batch dim 0 is kept by default).
    end_dim : int, default -1
        Last dim to flatten.
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        for v, what in ((start_dim, "start_dim"), (end_dim, "end_dim")):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"Flatten: {what} must be an int, got {v!r}")
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def forward(self, input):
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
