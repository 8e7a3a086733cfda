"""DistributedDataParallel: one model replica per process, gradients averaged in backward.

How the gradients get averaged without the user asking
------------------------------------------------------
Every call of the wrapper records, before the wrapped module runs, a tiny
*sync point* node in the graph, and ties the module's outputs to it. The
backward engine runs nodes in decreasing order of creation (a node always runs
after every node created later that feeds it), so the sync point's backward
runs only once backward has passed through *everything* recorded after it: the
whole forward pass of the module and the loss. At that moment every
parameter's ``.grad`` from this backward is complete; the sync point
all-reduces them, bucket by bucket, and backward carries on. So
``loss.backward()`` returns averaged gradients, and any optimizer (SGD, LARS,
a scheduler-driven Adam, ...) can step on them as it does in one process.

Averaging is linear and idempotent on values that already agree, which keeps
the less common patterns correct: gradients accumulated over several
backward passes, or a module called several times before one backward (each
call's sync point averages what has arrived so far, and the last one what
came after). Use :meth:`DistributedDataParallel.no_sync` to skip the
communication for the accumulation steps.
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np

from ..core.function import Function
from ..core.grad_mode import config
from ..core.tensor import Tensor
from ..nn.module import Module
from . import _comm
from ._sync import GradientBuckets, broadcast_arrays, check_consistent

__all__ = ["DistributedDataParallel", "DDP"]


class _SyncPoint(Function):
    """Created before the module's forward; its backward averages the gradients."""

    def __init__(self, ddp):
        self.ddp = ddp

    def forward(self, anchor):
        return np.zeros((), dtype=np.float64)      # a host scalar that no one reads

    def backward(self, gz):
        self.ddp._after_backward()
        return None


class _Attach(Function):
    """The identity on a module output, which also hands a zero gradient to a sync point."""

    grad_bounded = True

    def forward(self, y, z):
        return y

    def backward(self, gy):
        return gy, Tensor._make(np.zeros((), dtype=np.float64))


def _attach(out, z):
    """``out`` (a Tensor or a nest of tuples/lists/dicts of them) tied to the sync point ``z``."""
    if isinstance(out, Tensor):
        return _Attach()(out, z) if out.requires_grad else out
    if isinstance(out, tuple):
        items = [_attach(o, z) for o in out]
        return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
    if isinstance(out, list):
        return [_attach(o, z) for o in out]
    if isinstance(out, dict):
        items = {k: _attach(v, z) for k, v in out.items()}
        if type(out) is dict:
            return items
        copy = out.copy()           # keeps a subclass (OrderedDict, defaultdict, ...)
        copy.update(items)
        return copy
    return out


def _cap(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"bucket_cap_mb must be a positive number of MiB, got {value!r}")
    return float(value)


class DistributedDataParallel(Module):
    """Data-parallel training: the same model on every rank, gradients averaged.

    Run one process per replica under ``mpirun -n N``; each feeds its own part
    of the data (see :class:`~neural_arch.distributed.DistributedSampler`).

    Parameters
    ----------
    module : Module
        The model. It must be built alike on every rank (same parameters, same
        shapes, same order); its values are replaced by rank 0's here.
    bucket_cap_mb : float, default 25
        Largest gradient bucket in MiB: one all-reduce moves one bucket.
    broadcast_buffers : bool, default True
        Copy rank 0's buffers (batch-norm running statistics) to every rank at
        each forward pass in training mode, as PyTorch does.

    Attributes
    ----------
    module : Module
        The wrapped model (save ``ddp.module.state_dict()`` to get keys without
        the ``module.`` prefix).
    require_backward_grad_sync : bool
        False inside :meth:`no_sync`.

    Notes
    -----
    * At construction the model's parameters and buffers are broadcast from
      rank 0, after a check that every rank has the same ones (a mismatch is a
      :class:`~neural_arch.distributed.DistributedError`, not a hang).
    * Gradients are averaged automatically during ``loss.backward()`` (see the
      module docstring of :mod:`neural_arch.distributed.ddp`). Call the wrapper,
      not ``ddp.module``: a forward pass that bypasses it records no sync point;
      then call :meth:`sync_gradients` yourself before stepping.
    * A parameter that gets no gradient on some rank counts as a zero gradient
      there; one that gets none on any rank keeps ``.grad = None``.
    * CuPy gradients go to MPI directly when the MPI library is CUDA-aware
      (``ProcessGroup.gpu_aware``), else through host copies.
    * ``backward(create_graph=True)`` through the wrapper is not supported:
      differentiate ``ddp.module``'s outputs, then call :meth:`sync_gradients`.
    * With one process (no ``mpirun``) the wrapper only calls the module.

    Examples
    --------
    ::

        import neural_arch as na
        from neural_arch import distributed as dist

        dist.init()
        model = dist.DistributedDataParallel(make_model())
        optimizer = na.optim.LARS(model.parameters(), lr=1e-3, momentum=0.9,
                                  weight_decay=1e-4)
        for x, y in loader:                  # this rank's share of the data
            optimizer.zero_grad()
            loss = na.cross_entropy_loss(model(x), y)
            loss.backward()                  # gradients averaged over the ranks
            optimizer.step()
    """

    def __init__(self, module, bucket_cap_mb=25.0, broadcast_buffers=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a Module, got "
                            f"{type(module).__name__}")
        if isinstance(module, DistributedDataParallel):
            raise TypeError("the module is already a DistributedDataParallel")
        if not isinstance(broadcast_buffers, bool):
            raise TypeError(f"broadcast_buffers must be True or False, got "
                            f"{broadcast_buffers!r}")
        self.module = module
        self.bucket_cap_mb = _cap(bucket_cap_mb)
        self.broadcast_buffers = broadcast_buffers
        self.require_backward_grad_sync = True
        self.process_group = g = _comm.group()
        named = list(module.named_parameters())
        buffers = list(module.named_buffers())
        check_consistent(g, [(n, tuple(p.shape), str(p.dtype)) for n, p in named]
                         + [(n, tuple(b.shape), str(b.dtype)) for n, b in buffers],
                         "parameters and buffers of the model")
        broadcast_arrays([p.data for _, p in named] + [b.data for _, b in buffers], g,
                         src=0, bucket_cap_mb=self.bucket_cap_mb,
                         what="initial broadcast of rank 0's parameters and buffers")
        self._buckets = GradientBuckets([p for _, p in named if p.requires_grad], g,
                                        self.bucket_cap_mb)
        # The input of every sync point: a leaf that requires grad, so the point is
        # recorded, but never receives a gradient (its backward returns None).
        self._anchor = Tensor(np.zeros((), dtype=np.float64), requires_grad=True)

    # marks for DistributedOptimizer: the gradients are averaged during backward
    _averages_gradients_in_backward = True

    def forward(self, *inputs, **kwargs):
        """Call the wrapped module; its gradients will be averaged during backward."""
        g = self.process_group
        if g.size == 1:
            return self.module(*inputs, **kwargs)
        if self.broadcast_buffers and self.training:
            bufs = [b.data for b in self.module.buffers()]
            if bufs:
                broadcast_arrays(bufs, g, src=0, bucket_cap_mb=self.bucket_cap_mb,
                                 what="broadcast of rank 0's buffers")
        if not (self.require_backward_grad_sync and config.grad_enabled):
            return self.module(*inputs, **kwargs)
        z = _SyncPoint(self)(self._anchor)
        return _attach(self.module(*inputs, **kwargs), z)

    def _after_backward(self):
        if config.grad_enabled:
            raise RuntimeError(
                "DistributedDataParallel does not support backward(create_graph=True): "
                "differentiate ddp.module's outputs instead and call ddp.sync_gradients() "
                "before the optimizer step")
        self._buckets.sync()

    def sync_gradients(self):
        """Average the parameters' gradients over all ranks now (in place).

        Backward through the wrapper does this by itself; call it after computing
        gradients some other way (through ``ddp.module``, or with
        ``neural_arch.autograd.grad``). Every rank must call it.
        """
        self._buckets.sync()

    @contextlib.contextmanager
    def no_sync(self):
        """Inside this block, backward passes keep their gradients local.

        For gradient accumulation: run the first ``k - 1`` micro-batches inside
        ``no_sync()`` and the last outside, whose backward averages the sum.
        As in PyTorch, what counts is whether the *forward* pass ran inside.
        """
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def extra_repr(self):
        g = self.process_group
        return f"world_size={g.size}, bucket_cap_mb={self.bucket_cap_mb:g}"


#: Short name, as the PyTorch import ``... as DDP`` reads.
DDP = DistributedDataParallel
