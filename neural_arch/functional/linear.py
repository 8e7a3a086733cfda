"""Affine maps: the ops behind ``nn.Linear`` and ``nn.Bilinear``.

``linear`` is one graph node rather than a transpose, a matmul and an add: it
sits on the hot path of every MLP, where per-op overhead counts, and its
backward is three plain products (written with neural_arch ops, so second
derivatives still come from the same formula).
"""
from __future__ import annotations

from ..backend import get_array_module
from ..core.function import Function
from ._util import needs_grad
from .linalg import einsum, matmul
from .reduce import sum as _sum
from .shape import reshape, transpose

__all__ = ["linear", "bilinear"]


class Linear(Function):
    def forward(self, x, w, b=None):
        xp = get_array_module(x, w)
        if w.ndim != 2:
            raise ValueError(_linear_mismatch(x, w))
        try:
            y = xp.matmul(x, w.T)
        except ValueError:
            raise ValueError(_linear_mismatch(x, w)) from None
        if b is not None:
            try:
                y += b      # y is a fresh array, b broadcasts over the leading dims
            except ValueError:
                raise ValueError(f"the bias must have shape ({w.shape[0]},) (out_features), "
                                 f"got {tuple(b.shape)}") from None
        return y

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        gx = matmul(gy, w) if needs_grad(x) else None
        gw = gb = None
        if needs_grad(w):
            # Leading (batch) dims of x and gy fold into one: gw = gy^T x.
            x2 = x if x.ndim == 2 else reshape(x, (-1, x.shape[-1]))
            g2 = gy if gy.ndim == 2 else reshape(gy, (-1, gy.shape[-1]))
            gw = matmul(transpose(g2), x2)
        if len(self.inputs) == 2:
            return gx, gw
        if needs_grad(self.inputs[2]):
            gb = _sum(gy, tuple(range(gy.ndim - 1))) if gy.ndim > 1 else gy
        return gx, gw, gb


def _linear_mismatch(x, w):
    xs, ws = tuple(x.shape), tuple(w.shape)
    if len(ws) != 2:
        return f"weight must be 2-d (out_features, in_features), got shape {ws}"
    if not xs:
        return "the input must have at least one dim, got a 0-d tensor"
    return (f"the input's last dim ({xs[-1]}) must equal in_features ({ws[1]}) of "
            f"the weight (shape {ws}); got input shape {xs}")


def linear(input, weight, bias=None):
    """Affine map ``y = input @ weight.T + bias`` over the last axis.

    Parameters
    ----------
    input : Tensor
        Shape ``(*, in_features)``; any number of leading dims (including none).
    weight : Tensor
        Shape ``(out_features, in_features)``, as in PyTorch.
    bias : Tensor, optional
        Shape ``(out_features,)``.

    Returns
    -------
    Tensor
        Shape ``(*, out_features)``.

    Raises
    ------
    ValueError
        When the input's last dim differs from ``in_features``.
    """
    if bias is None:
        return Linear()(input, weight)
    return Linear()(input, weight, bias)


def bilinear(input1, input2, weight, bias=None):
    """Bilinear map ``y_k = input1^T weight_k input2 + bias_k`` over the last axes.

    Parameters
    ----------
    input1 : Tensor
        Shape ``(*, in1_features)``.
    input2 : Tensor
        Shape ``(*, in2_features)``, with the same leading dims as ``input1``.
    weight : Tensor
        Shape ``(out_features, in1_features, in2_features)``.
    bias : Tensor, optional
        Shape ``(out_features,)``.

    Returns
    -------
    Tensor
        Shape ``(*, out_features)``.
    """
    s1, s2, sw = tuple(input1.shape), tuple(input2.shape), tuple(weight.shape)
    if len(sw) != 3 or not s1 or not s2 or s1[:-1] != s2[:-1] or (s1[-1], s2[-1]) != sw[1:]:
        raise ValueError(f"bilinear: expected inputs of shapes (*, in1) and (*, in2) with the "
                         f"same leading dims and a weight of shape (out, in1, in2); got "
                         f"{s1}, {s2} and weight {sw}")
    y = einsum("...i,kij,...j->...k", input1, weight, input2)
    return y if bias is None else y + bias
