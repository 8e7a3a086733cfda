"""Moving many tensors at once: gradient buckets, parameter broadcasts, shard gathers.

A collective per tensor would pay MPI's latency hundreds of times per step, and
one buffer for the whole model would double its memory. Tensors are therefore
packed into *buckets*: flat arrays of one dtype on one device, each at most
``bucket_cap_mb`` (a tensor larger than that gets a bucket of its own). The
buffers are kept between steps.

Nothing here knows about modules: these helpers take Parameters and arrays, so
the optimizers (:mod:`neural_arch.optim.distributed`) use them as well as
:class:`~neural_arch.distributed.DistributedDataParallel`.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..core.tensor import Tensor
from ._comm import DistributedError

__all__ = ["GradientBuckets", "broadcast_arrays", "gather_shards", "check_consistent",
           "MB"]

MB = 1 << 20


def _size(nbytes):
    """``nbytes`` for a message: '1.5 MiB', '12.0 KiB', '40 B'."""
    if nbytes >= MB:
        return f"{nbytes / MB:.1f} MiB"
    return f"{nbytes / 1024:.1f} KiB" if nbytes >= 1024 else f"{nbytes} B"


def _key(arr):
    """What must be equal for two arrays to share a flat buffer: dtype and device."""
    return arr.dtype.str, backend.device_of(arr)


def _grad_array(p):
    g = p.grad
    if g is None:
        return None
    a = g.data if isinstance(g, Tensor) else g
    if tuple(a.shape) != tuple(p.data.shape):
        raise ValueError(f"the gradient of a parameter of shape {tuple(p.data.shape)} has "
                         f"shape {tuple(a.shape)}")
    return a


class _Bucket:
    """Parameters of one dtype and device laid end to end in one flat buffer."""

    __slots__ = ("key", "params", "offsets", "sizes", "numel", "buffer")

    def __init__(self, key):
        self.key = key
        self.params, self.offsets, self.sizes = [], [], []
        self.numel = 0
        self.buffer = None

    @property
    def nbytes(self):
        return self.numel * np.dtype(self.key[0]).itemsize

    def add(self, p):
        self.params.append(p)
        self.offsets.append(self.numel)
        self.sizes.append(int(p.data.size))
        self.numel += int(p.data.size)


def _buckets(params, cap_bytes, reverse=False):
    """Consecutive runs of ``params`` by (dtype, device), each run cut at ``cap_bytes``."""
    out, open_ = [], {}
    for p in (reversed(params) if reverse else params):
        k = _key(p.data)
        b = open_.get(k)
        if b is None or (b.params and b.nbytes + p.data.nbytes > cap_bytes):
            b = open_[k] = _Bucket(k)
            out.append(b)
        b.add(p)
    return out


class GradientBuckets:
    """Average the gradients of ``params`` over all ranks, bucket by bucket.

    Parameters
    ----------
    params : list of Parameter
        The same parameters, in the same order, on every rank.
    group : ProcessGroup
    bucket_cap_mb : float
        Largest bucket, in MiB.

    Notes
    -----
    Buckets are filled from the last parameter to the first (the order in which
    backward produces gradients). Each bucket carries one extra number per
    parameter: how many ranks had a gradient for it. A parameter without a
    gradient on this rank counts as zero in the sum; it gets the average when
    some rank had a gradient, and stays ``None`` when no rank had one, so an
    unused parameter is treated alike everywhere.

    One arrival check (with the group's deadline) covers the buckets of one
    call; each bucket is then summed by a blocking ``MPI_Allreduce``.
    """

    def __init__(self, params, group, bucket_cap_mb=25.0):
        self.params = list(params)
        self.group = group
        self.cap_bytes = max(1, int(bucket_cap_mb * MB))
        self._build()

    def _build(self):
        self.buckets = _buckets(self.params, self.cap_bytes, reverse=True)
        self._layout = [(p.data.dtype, type(p.data), p.data.shape) for p in self.params]

    def _layout_changed(self):
        return any((p.data.dtype, type(p.data), p.data.shape) != lay
                   for p, lay in zip(self.params, self._layout))

    def sync(self):
        """All-reduce (average) every parameter's ``.grad`` in place; a no-op on one rank."""
        g = self.group
        if g.size == 1:
            return
        if self._layout_changed():          # the model moved to another device or dtype
            self._build()
        n = len(self.buckets)
        g.arrive(f"gradient all-reduce ({n} bucket{'s' if n > 1 else ''}, "
                 f"{_size(sum(b.nbytes for b in self.buckets))})")
        for i, b in enumerate(self.buckets):
            buf, missing = self._pack(b)
            g.allreduce_(buf, "sum", f"gradient all-reduce (bucket {i + 1} of {n})",
                         arrived=True)
            self._unpack(b, missing)

    def _pack(self, b):
        if b.buffer is None:
            xp = backend.get_array_module(b.params[0].data)
            b.buffer = xp.empty(b.numel + len(b.params), dtype=b.params[0].data.dtype)
        buf = b.buffer
        flags = np.ones(len(b.params), dtype=buf.dtype)
        missing = False
        for i, (p, o, n) in enumerate(zip(b.params, b.offsets, b.sizes)):
            a = _grad_array(p)
            if a is None:
                buf[o:o + n] = 0
                flags[i] = 0
                missing = True
            else:
                buf[o:o + n] = a.reshape(-1)
        tail = buf[b.numel:]
        tail[...] = flags if backend.get_array_module(buf) is np else \
            backend.to_device(flags, backend.device_of(buf))
        return buf, missing

    def _unpack(self, b, missing):
        buf = b.buffer
        data = buf[:b.numel]
        data /= self.group.size
        counts = backend.asnumpy(buf[b.numel:]) if missing else None
        for i, (p, o, n) in enumerate(zip(b.params, b.offsets, b.sizes)):
            avg = data[o:o + n].reshape(p.data.shape)
            g = p.grad
            if g is None:
                if counts[i] > 0:
                    p.grad = Tensor._make(avg.copy())
                continue
            if isinstance(g, Tensor) and g.creator is None:
                try:
                    g.data[...] = avg
                    continue
                except (ValueError, TypeError):       # a read-only gradient array
                    pass
            p.grad = Tensor._make(avg.copy())


def broadcast_arrays(arrays, group, src=0, bucket_cap_mb=25.0, what="broadcast"):
    """Overwrite each array in ``arrays`` (in place) with rank ``src``'s values."""
    if group.size == 1 or not arrays:
        return
    holders = [_Holder(a) for a in arrays]
    for b in _buckets(holders, max(1, int(bucket_cap_mb * MB))):
        xp = backend.get_array_module(b.params[0].data)
        buf = xp.empty(b.numel, dtype=b.params[0].data.dtype)
        if group.rank == src:
            for h, o, n in zip(b.params, b.offsets, b.sizes):
                buf[o:o + n] = h.data.reshape(-1)
        group.broadcast_(buf, src, what=f"{what} ({_size(b.nbytes)})")
        if group.rank != src:
            for h, o, n in zip(b.params, b.offsets, b.sizes):
                h.data[...] = buf[o:o + n].reshape(h.data.shape)


class _Holder:
    """Gives a bare array the ``.data`` that the bucket code reads."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def gather_shards(shards, group, what="parameter all-gather"):
    """Every rank gets every parameter's values from the rank that owns it.

    Parameters
    ----------
    shards : list of lists of Parameter
        ``shards[r]``: the parameters rank ``r`` owns (and has just updated), the
        same lists on every rank.
    group : ProcessGroup

    Notes
    -----
    One ``MPI_Allgatherv`` per (dtype, device): each rank sends its own
    parameters end to end, and everyone unpacks the others'. Parameters are
    written in place, so views into them (contiguous optimizers) stay valid.
    """
    if group.size == 1:
        return
    keys = []
    for shard in shards:
        for p in shard:
            k = _key(p.data)
            if k not in keys:
                keys.append(k)
    mine = shards[group.rank]
    for k in keys:
        per_rank = [[p for p in shard if _key(p.data) == k] for shard in shards]
        counts = [sum(int(p.data.size) for p in ps) for ps in per_rank]
        like = next(p.data for ps in per_rank for p in ps)
        xp = backend.get_array_module(like)
        own = [p for p in mine if _key(p.data) == k]
        send = xp.empty(counts[group.rank], dtype=like.dtype)
        o = 0
        for p in own:
            send[o:o + p.data.size] = p.data.reshape(-1)
            o += int(p.data.size)
        out = xp.empty(sum(counts), dtype=like.dtype)
        group.allgatherv(send, counts, out, what=f"{what} ({k[0]}, {sum(counts)} values)")
        o = 0
        for r, ps in enumerate(per_rank):
            for p in ps:
                n = int(p.data.size)
                if r != group.rank:
                    p.data[...] = out[o:o + n].reshape(p.data.shape)
                o += n


def check_consistent(group, signature, what):
    """Raise unless ``signature`` (a list of plain values) is the same on every rank.

    The message names the first rank and the first entry that differ from rank 0's.
    """
    if group.size == 1:
        return
    everyone = group.allgather_object(signature, what=f"consistency check of {what}")
    ref = everyone[0]
    for r, sig in enumerate(everyone[1:], start=1):
        if sig == ref:
            continue
        if len(sig) != len(ref):
            detail = f"rank 0 has {len(ref)} entries, rank {r} has {len(sig)}"
        else:
            i = next(i for i, (a, b) in enumerate(zip(ref, sig)) if a != b)
            detail = f"entry {i}: rank 0 has {ref[i]}, rank {r} has {sig[i]}"
        raise DistributedError(f"the {what} differ between ranks ({detail}); every rank "
                               f"must build the same model")
