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
from .shape import broadcast_to

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
        has_bias = len(self.inputs) == 3
        need_w, need_b = needs_grad(w), has_bias and needs_grad(self.inputs[2])
        gx = matmul(gy, w) if needs_grad(x) else None
        gw = gb = None
        if need_w:
            # gw = gy^T x (leading dims folded) and gb = sum of gy: one node.
            if need_b:
                gw, gb = LinearParamGrads(True)(gy, x)
            else:
                gw = LinearParamGrads(False)(gy, x)
        elif need_b:
            gb = _sum(gy, tuple(range(gy.ndim - 1))) if gy.ndim > 1 else gy
        if has_bias:
            return gx, gw, gb
        return gx, gw


class LinearParamGrads(Function):
    """The weight and bias gradients of ``linear`` from its output gradient ``gy``.

    ``forward(gy, x)`` returns ``gw = gy^T x`` (all leading dims of ``gy`` and ``x``
    folded into one) and, with ``bias``, ``gb``, the sum of ``gy`` over those dims.
    One node for what would otherwise be a transpose, a matmul and a sum, in the
    backward pass of every linear layer; its own backward (for second derivatives)
    is ``d gy = x ggw^T + ggb`` and ``d x = gy ggw``.
    """

    def __init__(self, bias):
        self.bias = bias

    def forward(self, gy, x):
        xp = get_array_module(gy, x)
        g2 = gy.reshape(-1, gy.shape[-1]) if gy.ndim != 2 else gy
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        gw = xp.matmul(g2.T, x2)
        if not self.bias:
            return gw
        # 16-bit gradients are summed in float32 (the engine casts the result to the
        # bias's dtype), as the separate sum node did under autocast.
        return gw, g2.sum(axis=0, dtype=xp.float32 if g2.dtype.itemsize < 4 else None)

    def backward(self, ggw, ggb=None):
        gy, x = self.inputs
        d_gy = d_x = None
        if ggw is not None:
            d_gy = linear(x, ggw) if needs_grad(gy) else None     # x ggw^T: gy's shape
            d_x = matmul(gy, ggw) if needs_grad(x) else None       # gy ggw: x's shape
        if ggb is not None and needs_grad(gy):
            ggb = broadcast_to(ggb, tuple(gy.shape))
            d_gy = ggb if d_gy is None else d_gy + ggb
        return d_gy, d_x


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
