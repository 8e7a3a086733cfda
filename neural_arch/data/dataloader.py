"""DataLoader: batches of examples from a dataset, as Tensors on the device you name."""
from __future__ import annotations

import collections.abc
import math
import numbers
from collections import namedtuple

import numpy as np

from .. import backend
from ..core.dtypes import get_default_dtype
from ..core.tensor import Tensor
from .dataset import _as_generator, _gather_batch, _has_batch_gather

__all__ = ["DataLoader", "Batch", "default_collate"]

#: What the loader yields for datasets of ``(input, target)`` pairs: a tuple, so
#: ``x, y = batch`` works, whose fields can also be read by name.
Batch = namedtuple("Batch", ["inputs", "targets"])


def _is_array(x) -> bool:
    return isinstance(x, np.ndarray) or backend.get_array_module(x) is not np


def default_collate(samples):
    """Merge a list of examples into one batch.

    Tensors and arrays are stacked along a new first axis; Python integers become
    an int64 array, floats the default float dtype, booleans a bool array (all
    wrapped as Tensors); strings are kept as a list. Tuples, lists and dicts are
    collated field by field, keeping their structure; a pair ``(input, target)``
    becomes a :data:`Batch`.

    Parameters
    ----------
    samples : list
        Examples, all of the same structure.

    Returns
    -------
    Tensor, Batch, tuple, list or dict
    """
    if not samples:
        raise ValueError("default_collate got an empty list of examples")
    elem = samples[0]
    if isinstance(elem, Tensor) or _is_array(elem):
        arrays = [s.data if isinstance(s, Tensor) else s for s in samples]
        shapes = {tuple(a.shape) for a in arrays}
        if len(shapes) > 1:
            raise ValueError("default_collate: examples have different shapes "
                             f"{sorted(shapes)}; pass a collate_fn that pads or crops them")
        return Tensor._make(backend.get_array_module(arrays[0]).stack(arrays))
    if isinstance(elem, (bool, np.bool_)):
        return Tensor._make(np.array(samples, dtype=np.bool_))
    if isinstance(elem, numbers.Integral):
        return Tensor._make(np.array(samples, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return Tensor._make(np.array(samples, dtype=get_default_dtype()))
    if isinstance(elem, (str, bytes)):
        return list(samples)
    if isinstance(elem, collections.abc.Mapping):
        return {k: default_collate([s[k] for s in samples]) for k in elem}
    if isinstance(elem, (tuple, list)):
        n = len(elem)
        if any(len(s) != n for s in samples):
            raise ValueError("default_collate: examples have different numbers of fields "
                             f"({sorted({len(s) for s in samples})})")
        fields = [default_collate(list(f)) for f in zip(*samples)]
        if hasattr(elem, "_fields"):            # a namedtuple keeps its type
            return type(elem)(*fields)
        if isinstance(elem, list):
            return fields
        return Batch(*fields) if n == 2 else tuple(fields)
    raise TypeError("default_collate cannot batch examples of type "
                    f"{type(elem).__name__}; expected Tensors, arrays, numbers, strings, "
                    "or tuples/lists/dicts of them (or pass collate_fn)")


def _move(obj, device):
    """Put every Tensor/array inside ``obj`` on ``device`` as a Tensor."""
    if isinstance(obj, Tensor) or _is_array(obj):
        arr = obj.data if isinstance(obj, Tensor) else obj
        if device is None:
            if backend.get_array_module(arr) is np and backend.get_default_device() != "cpu":
                arr = backend.to_device(arr, backend.get_default_device())
        else:
            arr = backend.to_device(arr, device)
        return obj if isinstance(obj, Tensor) and arr is obj.data else Tensor._make(arr)
    if isinstance(obj, tuple):
        moved = [_move(o, device) for o in obj]
        return type(obj)(*moved) if hasattr(obj, "_fields") else tuple(moved)
    if isinstance(obj, list):
        return [_move(o, device) for o in obj]
    if isinstance(obj, dict):
        return {k: _move(v, device) for k, v in obj.items()}
    return obj


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"DataLoader: {name} must be True or False, got {value!r}")
    return bool(value)


class DataLoader:
    """Iterate over a dataset in batches.

    Parameters
    ----------
    dataset : Dataset
        Anything with ``__len__`` and ``__getitem__``.
    batch_size : int, default 1
        Examples per batch.
    shuffle : bool, default False
        Draw a new random order at the start of every epoch (every ``iter``).
    drop_last : bool, default False
        Drop the last batch when it is smaller than ``batch_size``.
    collate_fn : callable, optional
        ``collate_fn(list_of_examples) -> batch``; :func:`default_collate` when
        omitted. Tensors and arrays in what it returns are moved to ``device``.
    generator : numpy.random.Generator, optional
        Source of the shuffling order. Defaults to neural_arch's global generator,
        seeded by :func:`neural_arch.manual_seed`.
    seed : int, optional
        Give the loader its own generator, ``numpy.random.default_rng(seed)``: the
        sequence of epoch orders is then the same on every run, whatever else draws
        random numbers.
    device : str, optional
        Where the batches' Tensors live (``'cpu'``, ``'cuda'``, ``'cuda:N'``). When
        omitted, host data goes to the default device and device data stays put.
    sampler : iterable of int, optional
        Yields the dataset indices of one epoch, in order (for example a
        :class:`~neural_arch.distributed.DistributedSampler`); it has ``__len__``
        and excludes ``shuffle=True``.

    Notes
    -----
    For a :class:`TensorDataset` (or a :class:`Subset` of one) with the default
    collate, each batch is gathered with one fancy-indexing call per array, not
    one ``__getitem__`` per example; the result is the same.

    Examples
    --------
    >>> import numpy as np
    >>> from neural_arch.data import TensorDataset
    >>> ds = TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> loader = DataLoader(ds, batch_size=2, shuffle=True, seed=0)
    >>> [tuple(b.inputs.shape) for b in loader]
    [(2, 2), (2, 2), (1, 2)]
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False,
                 collate_fn=None, generator=None, *, seed=None, device=None, sampler=None):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError("DataLoader needs a dataset with __len__ and __getitem__, got "
                            f"{type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, "
                             f"got {batch_size!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {collate_fn!r}")
        if device is not None:
            backend.array_module_for(device)        # fails early on a bad device name
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = _check_flag("shuffle", shuffle)
        self.drop_last = _check_flag("drop_last", drop_last)
        self.collate_fn = collate_fn
        self.device = device
        if sampler is not None:
            if self.shuffle:
                raise ValueError("DataLoader: sampler and shuffle=True exclude each other "
                                 "(the sampler decides the order)")
            if not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__")):
                raise TypeError("DataLoader: sampler must be an iterable of indices with "
                                f"__len__ (e.g. a DistributedSampler), got {sampler!r}")
        self.sampler = sampler
        if generator is not None or seed is not None:
            self.generator = _as_generator(generator, seed)
        else:
            self.generator = None           # the global generator, looked up per epoch

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self):
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        gen = self.generator if self.generator is not None else backend.default_generator(np)
        return gen.permutation(n)

    def __iter__(self):
        order = self._order()
        bs = self.batch_size
        stop = len(self) * bs
        fast = self.collate_fn is None and _has_batch_gather(self.dataset)
        for start in range(0, min(stop, len(order)), bs):
            idx = order[start:start + bs]
            if fast:
                arrays = [_move(a, self.device) for a in _gather_batch(self.dataset, idx)]
                yield Batch(*arrays) if len(arrays) == 2 else tuple(arrays)
            else:
                samples = [self.dataset[int(i)] for i in idx]
                collate = self.collate_fn or default_collate
                yield _move(collate(samples), self.device)

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")
