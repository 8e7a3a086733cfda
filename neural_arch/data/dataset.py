"""Datasets: indexable collections of examples, and ways to split and combine them.

A dataset is anything with ``__len__`` and ``__getitem__(i)`` returning one example
(often an ``(input, target)`` pair). :class:`TensorDataset` wraps arrays whose first
axis runs over examples, and lets :class:`~neural_arch.data.DataLoader` gather a
whole batch with one fancy-indexing call instead of one call per example.
"""
from __future__ import annotations

import bisect
import math
import numbers

import numpy as np

from .. import backend
from ..core.dtypes import get_default_dtype
from ..core.tensor import Tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split"]


class Dataset:
    """Base class of map-style datasets.

    Subclasses implement ``__getitem__(index)`` (one example) and ``__len__``.
    ``a + b`` concatenates two datasets (see :class:`ConcatDataset`).
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __add__(self, other):
        return ConcatDataset([self, other])


def _raw(x):
    """The array inside a Tensor; arrays pass through; lists become NumPy arrays.

    Lists of floats get the default float dtype (as ``Tensor([...])`` does); lists of
    integers stay int64, since they are usually labels or indices.
    """
    if isinstance(x, Tensor):
        return x.data
    if backend.get_array_module(x) is not np or isinstance(x, np.ndarray):
        return x
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"TensorDataset needs arrays or Tensors, got {type(x).__name__} "
                        "holding objects")
    return arr.astype(get_default_dtype()) if arr.dtype.kind == "f" else arr


class TensorDataset(Dataset):
    """Examples taken row by row from arrays or Tensors of equal length.

    Parameters
    ----------
    *tensors : array_like or Tensor
        One or more arrays (NumPy, CuPy) or Tensors whose first axis has the same
        length; example ``i`` is the tuple of their ``i``-th rows. Arrays are kept
        as they are; nested lists become arrays (floats in the default dtype).

    Attributes
    ----------
    tensors : tuple of ndarray
        The underlying arrays (not copied).

    Examples
    --------
    >>> import numpy as np
    >>> ds = TensorDataset(np.zeros((5, 3)), np.arange(5))
    >>> len(ds), ds[2][1].item()
    (5, 2)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one array")
        arrays = tuple(_raw(t) for t in tensors)
        for i, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: array {i} is 0-d; every array needs a "
                                 "first axis that runs over examples")
        n = arrays[0].shape[0]
        lengths = [a.shape[0] for a in arrays]
        if any(m != n for m in lengths):
            raise ValueError("TensorDataset: all arrays need the same length along the first "
                             f"axis, got lengths {lengths}")
        self.tensors = arrays

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(Tensor._make(a[index]) for a in self.tensors)

    def _get_batch(self, indices):
        """Rows ``indices`` (a host integer array) of every array, in one gather each."""
        out = []
        for a in self.tensors:
            xp = backend.get_array_module(a)
            out.append(a[indices] if xp is np else a[xp.asarray(indices)])
        return out

    def __repr__(self):
        shapes = ", ".join(str(tuple(a.shape)) for a in self.tensors)
        return f"TensorDataset({shapes})"


class Subset(Dataset):
    """The examples of ``dataset`` at positions ``indices``, in that order.

    Parameters
    ----------
    dataset : Dataset
        The full dataset.
    indices : sequence of int
        Positions into ``dataset``.
    """

    def __init__(self, dataset, indices):
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            got = f"dtype {idx.dtype}" if idx.ndim == 1 else f"{idx.ndim}-d indices"
            raise TypeError(f"Subset indices must be a 1-d sequence of integers, got {got}")
        n = len(dataset)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"Subset index out of range for a dataset of length {n}: "
                             f"min {idx.min()}, max {idx.max()}")
        self.dataset = dataset
        self.indices = idx.astype(np.int64) % max(n, 1)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, (list, np.ndarray)):
            return [self.dataset[int(i)] for i in self.indices[index]]
        return self.dataset[int(self.indices[index])]

    def __repr__(self):
        return f"Subset({self.dataset!r}, {len(self)} examples)"


def _has_batch_gather(dataset) -> bool:
    """True when ``dataset`` can return a whole batch by fancy indexing."""
    if isinstance(dataset, Subset):
        return _has_batch_gather(dataset.dataset)
    # A subclass that overrides __getitem__ (to transform examples, say) must be
    # read example by example.
    return (isinstance(dataset, TensorDataset)
            and type(dataset).__getitem__ is TensorDataset.__getitem__)


def _gather_batch(dataset, indices):
    if isinstance(dataset, Subset):
        return _gather_batch(dataset.dataset, dataset.indices[indices])
    return dataset._get_batch(indices)


class ConcatDataset(Dataset):
    """Several datasets one after the other.

    Parameters
    ----------
    datasets : sequence of Dataset
        The parts; ``len`` is the sum of their lengths.
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of length {n}")
        index %= n
        part = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[part - 1] if part else 0
        return self.datasets[part][index - start]


def _as_generator(generator, seed):
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        return np.random.default_rng(int(seed))
    if generator is None:
        return backend.default_generator(np)
    if not isinstance(generator, np.random.Generator):
        raise TypeError("generator must be a numpy.random.Generator, got "
                        f"{type(generator).__name__}")
    return generator


def random_split(dataset, lengths, generator=None, *, seed=None):
    """Split a dataset into non-overlapping random subsets.

    Parameters
    ----------
    dataset : Dataset
        What to split.
    lengths : sequence of int or of float
        Sizes of the parts, summing to ``len(dataset)``; or fractions summing to 1,
        turned into sizes by flooring, the remainder handed out one by one to the
        first parts (as PyTorch does).
    generator : numpy.random.Generator, optional
        Source of the permutation. Defaults to neural_arch's global generator
        (seeded by :func:`neural_arch.manual_seed`).
    seed : int, optional
        Shorthand for ``generator=numpy.random.default_rng(seed)``.

    Returns
    -------
    list of Subset

    Examples
    --------
    >>> train, test = random_split(TensorDataset(np.arange(10)), [0.8, 0.2], seed=0)
    >>> len(train), len(test)
    (8, 2)
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split needs at least one length")
    if all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in lengths):
        sizes = [int(x) for x in lengths]
        if any(s < 0 for s in sizes):
            raise ValueError(f"random_split lengths must be non-negative, got {sizes}")
        if sum(sizes) != n:
            raise ValueError(f"random_split lengths sum to {sum(sizes)}, but the dataset "
                             f"has {n} examples")
    elif all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in lengths):
        fr = [float(x) for x in lengths]
        if any(not 0.0 <= f <= 1.0 for f in fr) or not math.isclose(sum(fr), 1.0,
                                                                     abs_tol=1e-9):
            raise ValueError("random_split fractions must lie in [0, 1] and sum to 1, "
                             f"got {fr}")
        sizes = [int(math.floor(n * f)) for f in fr]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
    else:
        raise TypeError("random_split lengths must be all integers or all fractions, got "
                        f"{lengths!r}")
    perm = _as_generator(generator, seed).permutation(n)
    parts, start = [], 0
    for s in sizes:
        parts.append(Subset(dataset, perm[start:start + s]))
        start += s
    return parts
