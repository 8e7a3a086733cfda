"""Dropout layer."""
from __future__ import annotations

import numbers

from .. import functional as F
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout in training mode, the identity in evaluation mode.

    In training (``module.train()``, the default) each element is zeroed with
    probability ``p`` and the others are scaled by ``1 / (1 - p)``; after
    ``module.eval()`` the input passes through unchanged. See
    :func:`neural_arch.functional.dropout`.

    Parameters
    ----------
    p : float, default 0.5
        Probability of zeroing an element, in ``[0, 1]``.
    inplace : bool, default False
        Accepted for PyTorch compatibility; the output is always a new tensor.
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability between 0 and 1, got {p!r}")
        if not isinstance(inplace, bool):
            raise TypeError(f"Dropout: inplace must be a bool, got {inplace!r}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
