"""Data-parallel training over MPI (through mpi4py).

One process per model replica, started by an MPI launcher::

    mpirun -n 4 python train.py                 # or: neural-arch train --distributed

In ``train.py``::

    from neural_arch import distributed as dist

    dist.init()                                  # optional: the first use starts it
    model = dist.DistributedDataParallel(model)  # rank 0's weights everywhere
    sampler = dist.DistributedSampler(train_set, shuffle=True, seed=0)
    optimizer = na.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in DataLoader(Subset(train_set, list(sampler)), batch_size=32):
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()       # gradients averaged over the ranks
            optimizer.step()

or, without the wrapper, :class:`~neural_arch.optim.DistributedOptimizer`
(seed 001's ``DistributedOptimizer(model=, optimizer_type=, learning_rate=,
world_size=)``), which averages the gradients when it steps and can shard the
optimizer state over the ranks (ZeRO stage 1).

==============================================  ===========================================
:func:`init`                                    start the process group (MPI)
:func:`rank`, :func:`world_size`,               who am I, how many are we, which one on
:func:`local_rank`                              this machine (to pick a GPU)
:func:`is_initialized`, :func:`is_available`    started? is mpi4py importable?
:func:`barrier`, :func:`all_reduce`,            collectives on Tensors and arrays, and
:func:`broadcast`, :func:`all_gather_object`    on picklable Python objects
:class:`DistributedDataParallel` (``DDP``)      averages gradients during backward
:class:`DistributedSampler`                     each rank's share of a dataset
==============================================  ===========================================

Without MPI
-----------
A script run as plain ``python train.py`` (no launcher) is a job of one
process: rank 0, world size 1, every collective returns at once, whether or
not mpi4py is installed. Under a launcher, mpi4py is required
(``pip install 'neural_arch[dist]'``, which needs an MPI library such as
Debian's ``openmpi-bin`` and ``libopenmpi-dev``).

Failures
--------
A rank whose script raises prints the traceback and aborts the whole job
(``MPI_Abort``) instead of leaving the others waiting in their next
collective. Every collective has a deadline (``init(timeout=...)``, default
30 minutes, or the environment variable ``NEURAL_ARCH_DIST_TIMEOUT``) after
which it raises :class:`DistributedTimeoutError`, which names the collective
and, uncaught, aborts the job too. Running as root, Open MPI's ``mpirun``
needs ``--allow-run-as-root`` (or ``OMPI_ALLOW_RUN_AS_ROOT=1`` and
``OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1``), and ``--oversubscribe`` to start more
processes than there are cores.
"""
from __future__ import annotations

import importlib.util

from .. import backend as _backend
from ..core.tensor import Tensor
from . import _comm
from ._comm import (DEFAULT_TIMEOUT, DistributedError, DistributedTimeoutError, ProcessGroup,
                    check_op, current_group, group)
from .ddp import DDP, DistributedDataParallel
from .sampler import DistributedSampler

DistributedError.__module__ = DistributedTimeoutError.__module__ = __name__
ProcessGroup.__module__ = __name__

__all__ = ["init", "is_initialized", "is_available", "rank", "world_size", "local_rank",
           "get_rank", "get_world_size", "barrier", "all_reduce", "broadcast",
           "all_gather_object", "DistributedDataParallel", "DDP", "DistributedSampler",
           "DistributedError", "DistributedTimeoutError", "ProcessGroup", "DEFAULT_TIMEOUT"]


def init(backend="mpi", timeout=None, abort_on_error=True) -> ProcessGroup:
    """Start the process group of this job (idempotent).

    Parameters
    ----------
    backend : str, default 'mpi'
        Only ``'mpi'`` (Open MPI, MPICH, ... through mpi4py).
    timeout : float, optional
        Seconds any collective may wait for the other ranks before raising
        :class:`DistributedTimeoutError` (default: ``NEURAL_ARCH_DIST_TIMEOUT``
        or 1800). A second call may change it.
    abort_on_error : bool, default True
        On several ranks, make an uncaught exception on any rank abort the whole
        job (its traceback first), so no rank waits forever for a dead one.

    Returns
    -------
    ProcessGroup
        With ``rank``, ``size``, ``local_rank``, ``gpu_aware``.

    Raises
    ------
    DistributedError
        Started by an MPI launcher, but mpi4py is missing.

    Notes
    -----
    Without a launcher the job is one process, with or without mpi4py.
    :class:`DistributedDataParallel`, :class:`DistributedSampler`,
    :func:`rank` and the rest call ``init()`` themselves when needed.
    """
    return _comm.start(backend, timeout, abort_on_error)


def is_initialized() -> bool:
    """True once the process group has been started (by :func:`init` or a first use)."""
    return current_group() is not None


def is_available() -> bool:
    """True when mpi4py can be imported, so jobs of several processes can run."""
    return importlib.util.find_spec("mpi4py") is not None


def rank() -> int:
    """This process's rank, ``0 .. world_size() - 1`` (0 without a launcher)."""
    return group().rank


def world_size() -> int:
    """The number of processes in the job (1 without a launcher)."""
    return group().size


def local_rank() -> int:
    """This process's rank among those on the same machine (e.g. to choose ``cuda:N``)."""
    return group().local_rank


get_rank = rank
get_world_size = world_size


def barrier() -> None:
    """Wait until every rank has called ``barrier()`` (with the group's deadline)."""
    group().barrier()


def _contiguous(arr):
    flags = getattr(arr, "flags", None)
    return flags is not None and bool(flags.c_contiguous)


def _collective_in_place(x, fn, name):
    if isinstance(x, Tensor):
        arr = x.data
    elif hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, (int, float)):
        arr = x
    else:
        raise TypeError(f"{name} expects a Tensor or an array, got {type(x).__name__}")
    if _contiguous(arr):
        fn(arr)
    else:
        tmp = _backend.get_array_module(arr).ascontiguousarray(arr)
        fn(tmp)
        arr[...] = tmp
    return x


def all_reduce(tensor, op="sum"):
    """Combine ``tensor`` over all ranks, in place; every rank gets the result.

    Parameters
    ----------
    tensor : Tensor or array
        The same shape and dtype on every rank (no gradient flows through).
    op : {'sum', 'mean', 'max', 'min', 'prod'}

    Returns
    -------
    The same ``tensor``, now holding the result.
    """
    check_op(op)
    g = group()
    return _collective_in_place(tensor, lambda a: g.allreduce_(a, op, f"all_reduce({op!r})"),
                                "all_reduce")


def broadcast(tensor, src=0):
    """Overwrite ``tensor`` (in place) on every rank with rank ``src``'s values."""
    g = group()
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < g.size:
        raise ValueError(f"src must be a rank in [0, {g.size - 1}], got {src!r}")
    return _collective_in_place(tensor, lambda a: g.broadcast_(a, src, "broadcast"),
                                "broadcast")


def all_gather_object(object_list, obj):
    """Fill ``object_list`` with every rank's ``obj``, in rank order (PyTorch's signature).

    ``obj`` must be picklable. ``object_list`` must be a list of ``world_size()``
    entries (their values are replaced).
    """
    g = group()
    if not isinstance(object_list, list) or len(object_list) != g.size:
        raise ValueError(f"object_list must be a list of world_size() = {g.size} entries, "
                         f"got {type(object_list).__name__} of length "
                         f"{len(object_list) if hasattr(object_list, '__len__') else '?'}")
    object_list[:] = g.allgather_object(obj)
