"""Dropout: randomly zero activations during training."""
from __future__ import annotations

import numbers

from .. import backend
from ..backend import get_array_module
from ..core.function import Function

__all__ = ["dropout"]


class Dropout(Function):
    def __init__(self, p):
        self.p = p

    def forward(self, x):
        xp = get_array_module(x)
        dtype = x.dtype if x.dtype.itemsize >= 4 else xp.float32   # generators draw f32/f64
        u = backend.default_generator(xp).random(x.shape, dtype=dtype)
        # Keep an element with probability 1 - p (u is uniform on [0, 1)) and scale the
        # kept ones by 1 / (1 - p), so the expected output equals the input.
        mask = (u >= self.p).astype(x.dtype)
        mask *= 1.0 / (1.0 - self.p)
        self.mask = mask
        return x * mask

    def backward(self, gy):
        return gy * self.mask


def dropout(input, p=0.5, training=True, inplace=False):
    """Inverted dropout: zero each element with probability ``p``, scale the rest.

    In training, every element is kept with probability ``1 - p`` and multiplied
    by ``1 / (1 - p)`` (so the expected value is unchanged), or set to 0; the
    gradient flows through the kept elements with the same factor. Outside
    training (``training=False``) or with ``p = 0`` the input is returned as is.
    The mask is drawn from the seeded generator of the input's array module
    (:func:`neural_arch.manual_seed`).

    Parameters
    ----------
    input : Tensor
        A floating-point tensor of any shape.
    p : float, default 0.5
        Probability of zeroing an element, in ``[0, 1]``; ``p = 1`` gives zeros.
    training : bool, default True
        Apply dropout (True) or pass the input through (False).
    inplace : bool, default False
        Accepted for PyTorch compatibility; the result is always a new tensor
        (overwriting an input the graph may still need would corrupt its gradient).

    Returns
    -------
    Tensor
        Same shape and dtype as ``input``.
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p!r}")
    if not training or p == 0:
        return input
    if input.dtype.kind != "f":
        raise TypeError(f"dropout needs a floating-point input, got dtype {input.dtype}")
    if p == 1:
        return input * 0.0      # all dropped; the gradient is 0 as well
    return Dropout(p)(input)
