"""DistributedSampler: each rank's share of a dataset's indices, epoch by epoch."""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["DistributedSampler"]


def _count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"DistributedSampler: {name} must be an integer >= {minimum}, "
                         f"got {value!r}")
    return int(value)


class DistributedSampler:
    """The indices of a dataset that one rank reads, a disjoint share per rank.

    PyTorch's semantics: every epoch the indices ``0 .. len(dataset)-1`` are put
    in one order shared by all ranks (shuffled with ``seed + epoch`` when
    ``shuffle``), made divisible by ``num_replicas`` (by repeating indices from
    the start, or with ``drop_last`` by dropping the tail), and rank ``r``
    takes every ``num_replicas``-th index starting at ``r``. Call
    :meth:`set_epoch` at the start of each epoch, or every epoch gets the same
    order.

    Parameters
    ----------
    dataset : Dataset
        Anything with ``__len__``.
    num_replicas : int, optional
        Number of ranks (default: :func:`~neural_arch.distributed.world_size`).
    rank : int, optional
        This rank (default: :func:`~neural_arch.distributed.rank`).
    shuffle : bool, default True
    seed : int, default 0
        Must be the same on every rank.
    drop_last : bool, default False
        Drop the tail instead of padding, so no example is read twice.

    Notes
    -----
    The shuffled order comes from ``numpy.random.default_rng(seed + epoch)``
    (PyTorch draws its own with ``torch.randperm``, so the orders differ from
    PyTorch's, but not between ranks or runs).

    Iterate over it for this rank's indices. The :class:`~neural_arch.data.DataLoader`
    takes a dataset, so give it this rank's part::

        sampler = DistributedSampler(train_set, shuffle=True, seed=0)
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            loader = DataLoader(Subset(train_set, list(sampler)), batch_size=32)
            ...

    Examples
    --------
    >>> s = DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)
    >>> list(s), len(s)
    ([1, 4, 7, 0], 4)
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"DistributedSampler needs a dataset with __len__, got "
                            f"{type(dataset).__name__}")
        if num_replicas is None or rank is None:
            from . import _comm
            g = _comm.group()
            num_replicas = g.size if num_replicas is None else num_replicas
            rank = g.rank if rank is None else rank
        self.num_replicas = _count(num_replicas, "num_replicas", 1)
        self.rank = _count(rank, "rank", 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must lie in [0, {self.num_replicas - 1}]"
                             f" for num_replicas={self.num_replicas}, got {rank!r}")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DistributedSampler: {name} must be True or False, "
                                f"got {flag!r}")
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.seed = _count(seed, "seed", 0)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        """How many indices this rank gets per epoch."""
        n = len(self.dataset)
        if self.drop_last:
            return n // self.num_replicas
        return math.ceil(n / self.num_replicas)

    @property
    def total_size(self) -> int:
        """Indices per epoch over all ranks (``num_samples * num_replicas``)."""
        return self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch, and so (with ``shuffle``) the order of the indices."""
        self.epoch = _count(epoch, "epoch", 0)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        total = self.total_size
        if total > n:
            # Pad by repeating from the start (several times if the dataset is tiny).
            order = np.resize(order, total) if n else order
        order = order[:total]
        return order[self.rank:total:self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return self.num_samples

    def __repr__(self):
        return (f"DistributedSampler({len(self.dataset)} examples, rank {self.rank} of "
                f"{self.num_replicas}, shuffle={self.shuffle}, seed={self.seed}, "
                f"drop_last={self.drop_last}, epoch={self.epoch})")
