"""Embedding lookup: rows of a weight matrix picked by integer indices."""
from __future__ import annotations

import numbers

from .. import backend
from ..backend import get_array_module
from ..core.function import Function
from ..core.tensor import Tensor

__all__ = ["embedding"]


class Embedding(Function):
    """``weight[indices]``; the padding row (if any) receives no gradient."""

    def __init__(self, indices, padding_idx):
        self.indices = indices
        self.padding_idx = padding_idx

    def forward(self, w):
        return get_array_module(w).take(w, self.indices, axis=0)

    def backward(self, gy):
        return EmbeddingGrad(self.indices, self.padding_idx, self.inputs[0].shape[0])(gy)


class EmbeddingGrad(Function):
    """Scatter-add the rows of ``gy`` into a zero ``(num_embeddings, dim)`` gradient.

    Repeated indices accumulate; the ``padding_idx`` row stays zero.
    """

    def __init__(self, indices, padding_idx, num_embeddings):
        self.indices = indices
        self.padding_idx = padding_idx
        self.num_embeddings = num_embeddings

    def forward(self, gy):
        xp = get_array_module(gy)
        dim = gy.shape[-1]
        gw = xp.zeros((self.num_embeddings, dim), dtype=gy.dtype)
        backend.scatter_add(gw, self.indices.reshape(-1), gy.reshape(-1, dim))
        if self.padding_idx is not None:
            gw[self.padding_idx] = 0
        return gw

    def backward(self, ggw):
        # The map gy -> gw is linear; its adjoint picks rows of ggw again, with the
        # positions that hold the padding index zeroed.
        out = Embedding(self.indices, None)(ggw)
        if self.padding_idx is not None:
            keep = (self.indices != self.padding_idx)[..., None]
            out = out * keep.astype(ggw.dtype)
        return out


def embedding(input, weight, padding_idx=None):
    """Look up rows of ``weight``: ``out[..., :] = weight[input[...], :]``.

    The gradient with respect to ``weight`` is a scatter-add of the output
    gradient into the picked rows, so an index that occurs several times
    accumulates all its gradients. The row ``padding_idx`` receives no gradient
    (its value is still looked up; :class:`neural_arch.nn.Embedding` keeps it 0).

    Parameters
    ----------
    input : Tensor or array of int
        Indices of any shape, each in ``[0, num_embeddings)``.
    weight : Tensor
        The ``(num_embeddings, embedding_dim)`` table.
    padding_idx : int, optional
        A row that gets no gradient; negative values count from the end.

    Returns
    -------
    Tensor
        Shape ``input.shape + (embedding_dim,)``.

    Raises
    ------
    TypeError
        When the indices are not integers.
    IndexError
        When an index lies outside ``[0, num_embeddings)``.
    """
    idx = input.data if isinstance(input, Tensor) else input
    if isinstance(idx, (list, tuple, numbers.Integral)):
        idx = get_array_module(weight).asarray(idx)
    if not hasattr(idx, "dtype") or idx.dtype.kind not in "iu":
        raise TypeError(f"embedding expects integer indices, got "
                        f"{getattr(idx, 'dtype', type(input).__name__)}")
    if get_array_module(idx) is not get_array_module(weight):
        idx = backend.to_device(idx, backend.device_of(weight))   # e.g. host labels
    if weight.ndim != 2:
        raise ValueError(f"embedding expects a 2-d weight (num_embeddings, embedding_dim), "
                         f"got shape {tuple(weight.shape)}")
    num = weight.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num):
        raise IndexError(f"embedding indices must lie in [0, {num}) (num_embeddings = {num}); "
                         f"got values from {int(idx.min())} to {int(idx.max())}")
    if padding_idx is not None:
        if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral) \
                or not -num <= padding_idx < num:
            raise ValueError(f"padding_idx must be an int in [-{num}, {num}), "
                             f"got {padding_idx!r}")
        padding_idx = int(padding_idx) % num
    return Embedding(idx, padding_idx)(weight)
