"""Embedding layer: a lookup table of learned vectors."""
from __future__ import annotations

import numbers

from .. import backend
from .. import functional as F
from ..core import creation
from ..core.tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``, looked up by index.

    Parameters
    ----------
    num_embeddings : int
        Number of rows (the vocabulary size).
    embedding_dim : int
        Length of each vector.
    padding_idx : int, optional
        A row that starts as zeros and receives no gradient (so it stays zero
        under plain gradient descent); negative values count from the end.
    device, dtype : optional
        Where and in which float dtype the table is made.

    Attributes
    ----------
    weight : Parameter
        Shape ``(num_embeddings, embedding_dim)``, drawn from ``N(0, 1)`` as in
        PyTorch, with the padding row set to zero.

    Examples
    --------
    >>> emb = na.nn.Embedding(10, 3, padding_idx=0)
    >>> emb(na.tensor([[1, 2], [0, 9]], dtype="int64")).shape
    (2, 2, 3)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, device=None,
                 dtype=None):
        super().__init__()
        for v, what in ((num_embeddings, "num_embeddings"), (embedding_dim, "embedding_dim")):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"Embedding: {what} must be a non-negative int, got {v!r}")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = _padding_index(padding_idx, self.num_embeddings)
        self.weight = Parameter(creation.empty((self.num_embeddings, self.embedding_dim),
                                               dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self):
        """Draw the table from ``N(0, 1)`` and zero the padding row."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None):
        """Make an Embedding whose table is a copy of ``embeddings`` (a 2-d array or Tensor).

        With ``freeze=True`` (default) the table does not require grad.
        """
        data = embeddings.data if isinstance(embeddings, Tensor) else embeddings
        if getattr(data, "ndim", None) != 2:
            raise ValueError(f"Embedding.from_pretrained expects a 2-d table, got shape "
                             f"{tuple(getattr(data, 'shape', ()))}")
        xp = backend.get_array_module(data)
        module = cls.__new__(cls)
        Module.__init__(module)
        module.num_embeddings, module.embedding_dim = (int(n) for n in data.shape)
        module.padding_idx = _padding_index(padding_idx, module.num_embeddings)
        module.weight = Parameter(xp.array(data, copy=True), requires_grad=not freeze)
        return module

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s


def _padding_index(padding_idx, num):
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral) \
            or not -num <= padding_idx < num:
        raise ValueError(f"Embedding: padding_idx must be an int in [-{num}, {num}), "
                         f"got {padding_idx!r}")
    return int(padding_idx) % num
