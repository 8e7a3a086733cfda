"""Linear algebra: matrix products."""
from __future__ import annotations

from ..backend import get_array_module
from ..core.function import Function
from ._util import needs_grad
from .shape import reshape, swapaxes

__all__ = ["matmul"]


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul needs tensors with at least one dim, got shapes "
                             f"{a.shape} and {b.shape}")
        ka = a.shape[-1]
        kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if ka != kb:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align "
                             f"(inner dims {ka} != {kb})")
        return get_array_module(a, b).matmul(a, b)

    def backward(self, gy):
        a, b = self.inputs
        # Treat 1-D operands as a row (left) or a column (right), as matmul does.
        a2 = a if a.ndim > 1 else reshape(a, (1, a.shape[0]))
        b2 = b if b.ndim > 1 else reshape(b, (b.shape[0], 1))
        gshape = list(gy.shape)
        if a.ndim == 1:
            gshape.insert(len(gshape) - (0 if b.ndim == 1 else 1), 1)
        if b.ndim == 1:
            gshape.append(1)
        g2 = reshape(gy, tuple(gshape))
        ga = matmul(g2, swapaxes(b2, -1, -2)) if needs_grad(a) else None
        gb = matmul(swapaxes(a2, -1, -2), g2) if needs_grad(b) else None
        if ga is not None and a.ndim == 1:
            ga = reshape(ga, ga.shape[:-2] + (ga.shape[-1],))
        if gb is not None and b.ndim == 1:
            gb = reshape(gb, gb.shape[:-1])
        return ga, gb


def matmul(a, b):
    """Matrix product with NumPy semantics: 1-D, 2-D and batched (broadcast) operands."""
    return MatMul()(a, b)
