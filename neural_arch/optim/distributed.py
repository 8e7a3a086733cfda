"""DistributedOptimizer: an optimizer that averages gradients over MPI ranks before it steps.

The seed-001 spelling::

    dist_optimizer = DistributedOptimizer(model=model, optimizer_type='adamw',
                                          learning_rate=1e-4, world_size=4)
    loss.backward()
    dist_optimizer.step()        # gradients averaged over the 4 ranks, then AdamW

It wraps a base optimizer (built here by name, through
:func:`~neural_arch.optim.factory.create_optimizer`, or given built) and delegates
the update to it, so every optimizer of :mod:`neural_arch.optim` runs data-parallel
unchanged. The averaging happens inside ``step`` (a step pre-hook registered first,
so it precedes the user's hooks and the ``max_grad_norm`` clipping), which a
training loop cannot forget to call. When ``model`` is a
:class:`~neural_arch.distributed.DistributedDataParallel`, which averages during
backward already, the step does not average a second time.

ZeRO stage 1 (``zero_stage=1``)
-------------------------------
Rajbhandari, Rasley, Ruwase & He, "ZeRO: Memory Optimizations Toward Training
Trillion Parameter Models", SC 2020, arXiv:1910.02054, stage :math:`P_{os}`.
The parameters are dealt out to the ranks, whole tensors, largest first to the
least loaded rank; each rank's base optimizer keeps state (moments, momentum)
for its own share only, about ``1/world_size`` of the total. A step averages
all gradients (every rank needs them for clipping), updates the rank's own
parameters, and then all-gathers the updated parameters from their owners
(one ``MPI_Allgatherv`` per dtype). Because an update of one tensor depends on
that tensor alone, the parameters are the same, bit for bit, as without
sharding. This holds for per-tensor optimizers (SGD, Adam(W), LARS, LAMB, Lion,
RMSprop, Shampoo, ...); ones that couple all parameters (LBFGS, the gradient-free
methods, wrappers such as SAM) and contiguous mode are refused. ``max_grad_norm``
is applied by this wrapper over all parameters. ``state_dict()`` is then a
collective (every rank must call it): it gathers the shards into the same dict
an unsharded optimizer returns (arrays on the host), and ``load_state_dict``
takes either kind and keeps each rank's share.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..core.tensor import Tensor
from ..distributed import _comm
from ..distributed._sync import (GradientBuckets, broadcast_arrays, check_consistent,
                                 gather_shards)
from ._args import positive
from ._meta import MetaOptimizer
from .optimizer import Optimizer, _is_array

__all__ = ["DistributedOptimizer"]


def _partition(params, size):
    """Owner rank of each parameter: largest first, to the least loaded rank (ties: lowest)."""
    loads = [0] * size
    owner = [0] * len(params)
    for i in sorted(range(len(params)), key=lambda i: (-int(params[i].data.size), i)):
        r = min(range(size), key=lambda r: (loads[r], r))
        owner[i] = r
        loads[r] += int(params[i].data.size)
    return owner


class DistributedOptimizer(Optimizer):
    """Data-parallel wrapper: average gradients over the ranks, then the base update.

    Parameters
    ----------
    params : iterable of Parameter or parameter groups, optional
        What to optimize (or give ``model``).
    optimizer_type : str or Optimizer subclass
        The base optimizer: a registry name (``'adamw'``, ``'sgd'``, ...; see
        :func:`~neural_arch.optim.factory.available_optimizers`) or a class.
    learning_rate : float, optional
        The base optimizer's learning rate (``lr=`` works too).
    model : Module, optional
        The model whose parameters are optimized (its parameters are named in the
        config, as with :func:`~neural_arch.optim.factory.create_optimizer`). A
        :class:`~neural_arch.distributed.DistributedDataParallel` model averages
        its gradients during backward, so the step then does not.
    world_size : int, optional
        The number of processes the job is expected to have; an error when the
        job has another number (e.g. the script was not started with
        ``mpirun -n world_size``). Default: whatever the job has.
    zero_stage : {0, 1}, default 0
        1: shard the optimizer state over the ranks (ZeRO stage 1, see the
        module docstring).
    bucket_cap_mb : float, default 25
        Largest gradient bucket of the all-reduce, in MiB.
    base_optimizer : Optimizer, optional
        An optimizer already built on the parameters, instead of
        ``optimizer_type`` and its arguments.
    **kwargs
        The base optimizer's other arguments (``weight_decay=``, ``betas=``,
        ``max_grad_norm=``, ...).

    Attributes
    ----------
    base_optimizer : Optimizer
        The optimizer that takes the update (with ``zero_stage=1`` its groups
        hold only this rank's share of the parameters).
    param_groups : list of dict
        All parameters and their hyper-parameters; schedulers and ``lr`` act
        here (without sharding these are the base's own groups).
    process_group : ProcessGroup

    Notes
    -----
    At construction the parameters are checked to be alike on every rank and
    rank 0's values are broadcast, so all replicas start equal. With
    ``step(closure)`` the gradients are averaged after every evaluation of the
    closure and the loss it returns is averaged too, so line searches (LBFGS)
    take the same decisions on every rank. Without ``mpirun`` (one process) it
    is the base optimizer plus nothing.

    Examples
    --------
    ::

        model = make_model()
        optimizer = DistributedOptimizer(model=model, optimizer_type='adamw',
                                         learning_rate=1e-4, zero_stage=1)
        for x, y in loader:              # this rank's share of the data
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
    """

    def __init__(self, params=None, optimizer_type=None, learning_rate=None, *, model=None,
                 world_size=None, zero_stage=0, bucket_cap_mb=25.0, base_optimizer=None,
                 **kwargs):
        g = _comm.group()
        if world_size is not None:
            if isinstance(world_size, bool) or not isinstance(world_size, numbers.Integral) \
                    or world_size < 1:
                raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
            if world_size != g.size:
                hint = (f"start it with: mpirun -n {world_size} python <script>"
                        if g.size == 1 else f"leave world_size out, or start {world_size}")
                raise ValueError(f"DistributedOptimizer(world_size={world_size}), but this job "
                                 f"has {g.size} process(es); {hint}")
        if zero_stage not in (0, 1) or isinstance(zero_stage, bool):
            raise ValueError(f"zero_stage must be 0 (no sharding) or 1 (optimizer state "
                             f"sharded over the ranks), got {zero_stage!r}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, numbers.Real) \
                or not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be a positive number of MiB, "
                             f"got {bucket_cap_mb!r}")
        base = self._build_base(params, optimizer_type, learning_rate, model, base_optimizer,
                                kwargs)
        self.process_group = g
        self.zero_stage = int(zero_stage)
        self.base_optimizer = None
        Optimizer.__init__(self, [dict(gr) for gr in base.param_groups], {})
        self.defaults = base.defaults

        all_params = [p for gr in base.param_groups for p in gr["params"]]
        check_consistent(g, [(tuple(p.shape), str(p.dtype)) for p in all_params],
                         "parameters given to DistributedOptimizer")
        self._syncs_in_backward = bool(getattr(model, "_averages_gradients_in_backward", False))
        if not self._syncs_in_backward:
            broadcast_arrays([p.data for p in all_params], g, 0, bucket_cap_mb,
                             what="initial broadcast of rank 0's parameters")
        self._bucket_cap_mb = float(bucket_cap_mb)
        self._buckets = None if self._syncs_in_backward else GradientBuckets(
            [p for p in all_params if p.requires_grad], g, bucket_cap_mb)

        if self.zero_stage:
            self._check_shardable(base)
            self._max_grad_norm = base.max_grad_norm
            base.max_grad_norm = None
            self._shard(base)
        else:
            self.param_groups = base.param_groups       # shared: nothing to copy
        self.base_optimizer = base
        self.register_step_pre_hook(DistributedOptimizer._average_before_step)

    # ---- construction ------------------------------------------------------------------
    @staticmethod
    def _build_base(params, optimizer_type, learning_rate, model, base_optimizer, kwargs):
        if base_optimizer is not None:
            given = [k for k, v in (("params", params), ("optimizer_type", optimizer_type),
                                    ("learning_rate", learning_rate)) if v is not None]
            given += sorted(kwargs)
            if given:
                raise TypeError(f"DistributedOptimizer got base_optimizer= and also "
                                f"{', '.join(given)}; set those when building the base "
                                f"optimizer")
            if not isinstance(base_optimizer, Optimizer):
                raise TypeError(f"base_optimizer must be a built Optimizer, got "
                                f"{type(base_optimizer).__name__}")
            return base_optimizer
        if optimizer_type is None:
            raise TypeError("DistributedOptimizer needs optimizer_type (a name such as "
                            "'adamw', or an optimizer class) or base_optimizer=")
        if (params is None) == (model is None):
            raise TypeError("DistributedOptimizer needs the parameters: give params or "
                            "model= (one of them)")
        if isinstance(optimizer_type, type) and issubclass(optimizer_type, Optimizer):
            if learning_rate is not None:
                if "lr" in kwargs:
                    raise TypeError("DistributedOptimizer: the learning rate is given twice "
                                    "(learning_rate and lr)")
                kwargs["lr"] = learning_rate
            source = model.parameters() if model is not None else params
            return optimizer_type(source, **kwargs)
        if isinstance(optimizer_type, str):
            from .factory import create_optimizer
            return create_optimizer(params, model=model, optimizer_type=optimizer_type,
                                    learning_rate=learning_rate, **kwargs)
        raise TypeError(f"optimizer_type must be an optimizer name or class, got "
                        f"{optimizer_type!r}")

    @staticmethod
    def _check_shardable(base):
        from .gradient_free import GradientFreeOptimizer
        from .lbfgs import LBFGS
        name = type(base).__name__
        if isinstance(base, (MetaOptimizer, LBFGS, GradientFreeOptimizer)):
            raise ValueError(f"zero_stage=1 shards the optimizer state by parameter, which "
                             f"needs an update that treats each parameter on its own; {name} "
                             f"couples all parameters. Use zero_stage=0")
        if base._contiguous:
            raise ValueError(f"zero_stage=1 cannot shard a contiguous {name} (its state lies "
                             f"in flat buffers over all parameters); build it without "
                             f"contiguous=True")
        if base._step_pre_hooks:
            raise ValueError(f"zero_stage=1: the {name} has step pre-hooks (such as a "
                             f"gradient_clipping section), which would see only this rank's "
                             f"share of the parameters; use max_grad_norm=, which "
                             f"DistributedOptimizer applies over all parameters")

    def _shard(self, base):
        """Give the base optimizer only this rank's parameters (and drop others' state)."""
        g = self.process_group
        full = [p for gr in self.param_groups for p in gr["params"]]
        owner = _partition(full, g.size)
        self._owner = {id(p): r for p, r in zip(full, owner)}
        self._shards = [[p for p, r in zip(full, owner) if r == k] for k in range(g.size)]
        for gr in base.param_groups:
            self._restrict(gr)
        for p in full:
            if self._owner[id(p)] != g.rank:
                base.state.pop(p, None)

    def _restrict(self, base_group):
        rank = self.process_group.rank
        keep = [self._owner[id(p)] == rank for p in base_group["params"]]
        base_group["params"] = [p for p, k in zip(base_group["params"], keep) if k]
        if "param_names" in base_group:
            base_group["param_names"] = [n for n, k in zip(base_group["param_names"], keep)
                                         if k]

    # ---- delegation --------------------------------------------------------------------
    @property
    def state(self):
        """The base optimizer's state (with ``zero_stage=1``: this rank's share only)."""
        base = self.__dict__.get("base_optimizer")
        return self.__dict__.get("_own_state") if base is None else base.state

    @state.setter
    def state(self, value):
        self.__dict__["_own_state"] = value

    @property
    def _step_count(self):
        base = self.__dict__.get("base_optimizer")
        return 0 if base is None else base._step_count

    @_step_count.setter
    def _step_count(self, value):
        pass                    # the base counts the updates

    @property
    def max_grad_norm(self):
        """Global-norm clipping bound over all parameters (see :attr:`Optimizer.max_grad_norm`)."""
        if self.zero_stage:
            return self._max_grad_norm
        return self.base_optimizer.max_grad_norm

    @max_grad_norm.setter
    def max_grad_norm(self, value):
        if self.zero_stage:
            self._max_grad_norm = None if value is None else positive("max_grad_norm", value)
        else:
            self.base_optimizer.max_grad_norm = value

    def add_param_group(self, param_group):
        """Add a group (to the base optimizer too); every rank must call it alike.

        The new parameters are checked and broadcast from rank 0 as at
        construction.
        """
        base = self.__dict__.get("base_optimizer")
        if base is None:                    # during __init__
            return Optimizer.add_param_group(self, param_group)
        g = self.process_group
        base.add_param_group(param_group)
        new = base.param_groups[-1]
        params = list(new["params"])
        check_consistent(g, [(tuple(p.shape), str(p.dtype)) for p in params],
                         "parameters of the added group")
        if not self._syncs_in_backward:
            broadcast_arrays([p.data for p in params], g, 0, self._bucket_cap_mb,
                             what="broadcast of rank 0's added parameters")
        if self.zero_stage:
            full = dict(new)
            full["params"] = params
            self.param_groups.append(full)
            loads = [sum(int(p.data.size) for p in s) for s in self._shards]
            for p in sorted(params, key=lambda p: -int(p.data.size)):
                r = min(range(g.size), key=lambda r: (loads[r], r))
                self._owner[id(p)] = r
                loads[r] += int(p.data.size)
            self._shards = [[p for gr in self.param_groups for p in gr["params"]
                             if self._owner[id(p)] == r] for r in range(g.size)]
            self._restrict(new)
        if self._buckets is not None:
            self._buckets = GradientBuckets(
                [p for gr in self.param_groups for p in gr["params"] if p.requires_grad],
                g, self._bucket_cap_mb)

    # ---- the step ------------------------------------------------------------------------
    def _average_before_step(self, args, kwargs):
        """Step pre-hook: average the gradients now, or after each closure evaluation."""
        if args and callable(args[0]):
            return (self._averaging(args[0]),) + tuple(args[1:]), kwargs
        if callable(kwargs.get("closure")):
            return args, {**kwargs, "closure": self._averaging(kwargs["closure"])}
        if self._buckets is not None:
            self._buckets.sync()
        return None

    def _averaging(self, closure):
        def averaged_closure():
            loss = closure()
            if self._buckets is not None:
                self._buckets.sync()
            return self._average_loss(loss)
        return averaged_closure

    def _average_loss(self, loss):
        g = self.process_group
        if g.size == 1 or loss is None:
            return loss
        if isinstance(loss, Tensor):
            arr = backend.get_array_module(loss.data).array(loss.data, copy=True)
            arr = arr.reshape(-1) if arr.ndim == 0 else arr
            g.allreduce_(arr, "mean", "all-reduce of the closure's loss")
            return Tensor._make(arr.reshape(loss.data.shape))
        if isinstance(loss, numbers.Real):
            buf = np.array([float(loss)])
            g.allreduce_(buf, "mean", "all-reduce of the closure's loss")
            return float(buf[0])
        return loss

    def step(self, closure=None):
        """Average the gradients over the ranks, then take the base optimizer's step.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss; after each evaluation the
            gradients and the loss are averaged over the ranks.

        Returns
        -------
        The closure's (averaged) loss, or None.
        """
        base = self.base_optimizer
        if self.zero_stage:
            for full, own in zip(self.param_groups, base.param_groups):
                for key, value in full.items():
                    if key not in ("params", "param_names"):
                        own[key] = value
        loss = base.step(closure) if closure is not None else base.step()
        if self.zero_stage:
            gather_shards(self._shards, self.process_group,
                          what="all-gather of the updated parameters (ZeRO-1)")
        return loss

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters (this rank's share and the others')."""
        Optimizer.zero_grad(self, set_to_none)

    def state_bytes(self) -> int:
        """Bytes of optimizer-state arrays held by this rank (its share, with ZeRO-1)."""
        return sum(int(v.nbytes) for s in self.base_optimizer.state.values()
                   for v in s.values() if _is_array(v))

    # ---- state_dict ----------------------------------------------------------------------
    def state_dict(self):
        """The base optimizer's state dict; with ``zero_stage=1`` gathered from all ranks.

        With sharding this is a collective (every rank must call it); the result,
        the same on every rank, is the state dict an unsharded optimizer would
        return, with the arrays on the host.
        """
        if not self.zero_stage:
            return self.base_optimizer.state_dict()
        mine = Optimizer.state_dict(self)        # full groups; state: this rank's share
        shares = self.process_group.allgather_object(
            {k: {sk: backend.asnumpy(v) if _is_array(v) else v for sk, v in s.items()}
             for k, s in mine["state"].items()},
            what="gather of the optimizer state shards (ZeRO-1 state_dict)")
        merged = {}
        for share in shares:
            merged.update(share)
        mine["state"] = {k: merged[k] for k in sorted(merged)}
        return mine

    def load_state_dict(self, state_dict):
        """Load a state dict (sharded or not); with ZeRO-1 each rank keeps its share."""
        if not self.zero_stage:
            self.base_optimizer.load_state_dict(state_dict)
            return
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
                or "state" not in state_dict:
            raise TypeError(f"{name}.load_state_dict expects a dict with 'state' and "
                            f"'param_groups', got {type(state_dict).__name__}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"this {name} has {len(self.param_groups)}")
        base = self.base_optimizer
        full_index, base_index, sub_groups = {}, {}, []
        for gr in self.param_groups:
            for p in gr["params"]:
                full_index[p] = len(full_index)
        for gr in base.param_groups:
            for p in gr["params"]:
                base_index[p] = len(base_index)
        for i, (full, own, saved) in enumerate(zip(self.param_groups, base.param_groups,
                                                   saved_groups)):
            if len(saved["params"]) != len(full["params"]):
                raise ValueError(f"parameter group {i} of the loaded state dict has "
                                 f"{len(saved['params'])} parameters, this {name}'s has "
                                 f"{len(full['params'])}")
            sub = {k: v for k, v in saved.items() if k not in ("params", "param_names")}
            sub["params"] = [base_index[p] for p in own["params"]]
            sub_groups.append(sub)
        saved_state = {int(k): v for k, v in state_dict["state"].items()}
        sub_state = {base_index[p]: saved_state[full_index[p]] for p in base_index
                     if full_index[p] in saved_state}
        base.load_state_dict({"state": sub_state, "param_groups": sub_groups,
                              "step_count": state_dict.get("step_count", 0)})
        for full, own in zip(self.param_groups, base.param_groups):
            for key, value in own.items():
                if key not in ("params", "param_names"):
                    full[key] = value

    def __repr__(self):
        g = self.process_group
        head = (f"DistributedOptimizer (rank {g.rank} of {g.size}, zero_stage="
                f"{self.zero_stage}, base_optimizer: {type(self.base_optimizer).__name__})")
        return head + "\n" + "\n".join(Optimizer.__repr__(self).split("\n")[1:])
