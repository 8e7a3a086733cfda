"""The optimizer base class: parameter groups, lazy state, state_dict, hooks.

:class:`Optimizer` owns everything an update rule should not have to think
about; a subclass supplies a table of hyper-parameter validators and one method,
``_update(param, grad, state, group)``, that runs its kernel on raw arrays (see
the package docstring, "How to add an optimizer").
"""
from __future__ import annotations

import copy
import functools
import itertools
from collections import OrderedDict, defaultdict
from collections.abc import Mapping

import numpy as np

from .. import backend
from ..core.grad_mode import enable_grad
from ..core.tensor import Tensor
from ._args import non_negative, positive, resolve_aliases
from .clipping import clip_grad_norm_
from .schedules import LearningRateSchedule

__all__ = ["Optimizer", "required", "LearningRate", "StateView", "state_view",
           "RemovableHandle"]


class _Required:
    """Default marker for a hyper-parameter the user must give (``SGD(lr=required)``)."""

    def __repr__(self):
        return "<required parameter>"

    def __deepcopy__(self, memo):
        return self


required = _Required()


class RemovableHandle:
    """Returned by the hook registrations; ``handle.remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class LearningRate(float):
    """An optimizer's learning rate as read through ``optimizer.lr``.

    It is a float equal to the first parameter group's lr (the lr, when all
    groups share one) that remembers every group's value. Arithmetic on it acts
    on each group's lr, so ``optimizer.lr *= 0.1`` scales every group and keeps
    their ratios, while ``optimizer.lr = 0.01`` sets all groups to 0.01.
    """

    __slots__ = ("per_group",)

    def __new__(cls, per_group):
        obj = super().__new__(cls, per_group[0])
        obj.per_group = tuple(per_group)
        return obj

    def _map(self, fn):
        return LearningRate([fn(x) for x in self.per_group])

    def __mul__(self, other): return self._map(lambda x: x * other)
    def __rmul__(self, other): return self._map(lambda x: other * x)
    def __truediv__(self, other): return self._map(lambda x: x / other)
    def __add__(self, other): return self._map(lambda x: x + other)
    def __radd__(self, other): return self._map(lambda x: other + x)
    def __sub__(self, other): return self._map(lambda x: x - other)
    def __pow__(self, other): return self._map(lambda x: x ** other)

    def __repr__(self):
        return float.__repr__(self)


class StateView(Mapping):
    """A live, read-only mapping Parameter -> one entry of the optimizer state.

    ``optimizer.m[p]`` is ``optimizer.state[p]['exp_avg']``; parameters that have
    no such entry yet (no step taken) are absent.
    """

    def __init__(self, optimizer, key):
        self._opt = optimizer
        self._key = key

    def __getitem__(self, param):
        s = self._opt.state.get(param)
        if not s or self._key not in s:
            raise KeyError(f"no {self._key!r} state for this parameter (has it had a step?)")
        return s[self._key]

    def __iter__(self):
        state = self._opt.state
        for group in self._opt.param_groups:
            for p in group["params"]:
                if self._key in state.get(p, ()):
                    yield p

    def __len__(self):
        return sum(1 for _ in self)

    def __repr__(self):
        return f"StateView({self._key!r}, {len(self)} parameters)"


def state_view(key, doc=None):
    """A read-only property giving the :class:`StateView` of ``key``.

    Example: ``m = state_view('exp_avg')`` in an Adam-like class body.
    """
    return property(lambda self: StateView(self, key),
                    doc=doc or f"Read-only mapping Parameter -> state[{key!r}].")


def _counted(step):
    """Wrap a ``step`` method: pre-hooks, the step, ``step_count``, post-hooks.

    Applied to :meth:`Optimizer.step` and to every subclass that defines its own
    ``step``; a nested call (a subclass calling ``super().step()``) runs hooks and
    counts once.
    """
    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        if self._stepping:
            return step(self, *args, **kwargs)
        for hook in list(self._step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"a step pre-hook must return None or (args, kwargs), "
                                       f"got {result!r}")
                args, kwargs = result
        self._apply_lr_schedules()
        if self._max_grad_norm is not None:
            args, kwargs = self._clip_before_update(args, kwargs)
        self._stepping = True
        try:
            out = step(self, *args, **kwargs)
        finally:
            self._stepping = False
        self._step_count += 1
        for hook in list(self._step_post_hooks.values()):
            hook(self, args, kwargs)
        self._apply_lr_schedules()          # optimizer.lr reads the next step's rate
        return out
    wrapper._counted = True
    return wrapper


def _is_array(v):
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, np.generic)


class Optimizer:
    """Base class of all optimizers, with PyTorch's contract.

    Parameters
    ----------
    params : iterable of Parameter, dict name -> Parameter, or iterable of dicts
        What to optimize. A bare iterable of Parameters (or ``(name, Parameter)``
        pairs, or a dict name -> Parameter) becomes one group; dicts with a
        ``'params'`` entry are parameter groups whose other entries override the
        defaults for that group.
    defaults : dict
        Default hyper-parameters of every group (use :data:`required` for one the
        user must give).
    contiguous : bool, default False
        Lay each group's parameters, gradients and state end to end in flat
        buffers so an update runs once per group instead of once per tensor
        (see :mod:`neural_arch.optim.contiguous`).

    Attributes
    ----------
    param_groups : list of dict
        Each group: ``'params'`` (list of Parameters), the hyper-parameters, and
        ``'param_names'`` when names were given.
    state : dict
        Parameter -> dict of its state (PyTorch key names: ``step``, ``exp_avg``,
        ``exp_avg_sq``, ``max_exp_avg_sq``, ``momentum_buffer``, ...), created on
        the parameter's device at its first update.
    defaults : dict
        The default hyper-parameters.

    Notes
    -----
    Subclasses set ``hyperparameters`` (name -> validator, see
    :mod:`neural_arch.optim._args`), may add cross-checks in ``check_group``, and
    implement ``_update(param, grad, state, group)`` on raw arrays. The class
    attribute ``elementwise`` (default True) says that the update of each element
    depends only on that element and on scalars; only such optimizers run once
    over a whole flat group in contiguous mode (per-layer norms, as in LARS and
    LAMB, set it False).

    Every optimizer built through ``@accepts_aliases`` also takes
    ``max_grad_norm=`` (see :attr:`max_grad_norm`).
    """

    hyperparameters: dict = {}
    elementwise = True
    _max_grad_norm = None

    def __init__(self, params, defaults, *, contiguous=False):
        defaults = dict(defaults)
        # A schedule as lr drives every group that does not give its own lr.
        self._default_lr_schedule = None
        if isinstance(defaults.get("lr"), LearningRateSchedule):
            self._default_lr_schedule = defaults["lr"]
            defaults["lr"] = float(defaults["lr"](0))
        checked = self.validate_group({k: v for k, v in defaults.items() if v is not required})
        defaults.update(checked)
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        self._step_count = 0
        self._stepping = False
        self._step_pre_hooks = OrderedDict()
        self._step_post_hooks = OrderedDict()
        if not isinstance(contiguous, bool):
            raise TypeError(f"contiguous must be True or False, got {contiguous!r}")
        self._contiguous = contiguous
        self._flat = []          # one FlatGroup per param group in contiguous mode
        self._scratch_buffers = {}
        for group in _as_groups(params, type(self).__name__):
            self.add_param_group(group)

    # ---- parameter groups ----------------------------------------------------
    def validate_group(self, group):
        """Check the hyper-parameters of ``group``; return their canonical values.

        Runs the validator of every entry of ``hyperparameters`` present in
        ``group``, then :meth:`check_group` on the result. Nothing is modified.
        """
        out = {}
        for name, check in self.hyperparameters.items():
            if name in group:
                out[name] = check(name, group[name])
        merged = dict(group)
        merged.update(out)
        self.check_group(merged)
        return out

    def check_group(self, group):
        """Cross-checks between hyper-parameters (override; SGD's nesterov rule)."""

    def add_param_group(self, param_group):
        """Add a parameter group (a dict with ``'params'`` and optional overrides).

        Raises
        ------
        TypeError
            Not a dict, a parameter that is not a floating-point Tensor, or a set.
        ValueError
            A parameter already in a group (or twice in this one), a non-leaf
            tensor, a missing required hyper-parameter, or an invalid value.
        """
        name = type(self).__name__
        if not isinstance(param_group, Mapping):
            raise TypeError(f"a parameter group must be a dict with a 'params' entry, got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"a parameter group needs a 'params' entry; got keys "
                             f"{sorted(param_group)}")
        group = resolve_aliases(param_group, set(self.defaults), self.defaults, name,
                                strict=False)
        params, names = _param_list(group["params"], len(self.param_groups))
        group["params"] = params
        schedule = group.get("lr", self._default_lr_schedule)
        if isinstance(schedule, LearningRateSchedule):
            group["lr_schedule"] = schedule
            group["lr"] = float(schedule(self._step_count))
        if names is not None:
            group["param_names"] = names
        for key, default in self.defaults.items():
            if key not in group:
                if default is required:
                    raise ValueError(f"parameter group {len(self.param_groups)} did not "
                                     f"specify a value of required hyper-parameter {key!r}")
                group[key] = default
        group.update(self.validate_group(group))
        seen = {p for g in self.param_groups for p in g["params"]}
        if any(p in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)
        if self._contiguous:
            from .contiguous import FlatGroup
            self._flat.append(FlatGroup(params, self))

    # ---- the step ------------------------------------------------------------
    def step(self, closure=None):
        """Update every parameter that has a gradient; return the closure's loss.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss; it runs with gradient
            recording on (even inside ``no_grad``) before the update.
        """
        loss = self._evaluate(closure)
        for i, group in enumerate(self.param_groups):
            if self._contiguous:
                self._flat[i].step(group)
                continue
            state = self.state
            for p in group["params"]:
                g = p.grad
                if g is not None:
                    self._update(p.data, _grad_array(p, g), state[p], group)
        return loss

    def _clip_before_update(self, args, kwargs):
        """Clip the gradients to :attr:`max_grad_norm` before the update.

        Without a closure the gradients are clipped now; with one (``step(closure)``)
        every gradient the closure computes is clipped as soon as it returns, so
        closure-driven methods (LBFGS) only ever see clipped gradients.
        """
        params = [p for group in self.param_groups for p in group["params"]]
        max_norm = self._max_grad_norm

        if args and callable(args[0]):
            closure, where = args[0], 0
        elif callable(kwargs.get("closure")):
            closure, where = kwargs["closure"], "closure"
        else:
            clip_grad_norm_(params, max_norm)
            return args, kwargs

        def clipped_closure():
            loss = closure()
            clip_grad_norm_(params, max_norm)
            return loss

        if where == 0:
            args = (clipped_closure,) + tuple(args[1:])
        else:
            kwargs = {**kwargs, "closure": clipped_closure}
        return args, kwargs

    def _apply_lr_schedules(self):
        """Set the lr of each group driven by a schedule to ``schedule(step_count)``."""
        for group in self.param_groups:
            schedule = group.get("lr_schedule")
            if schedule is not None:
                group["lr"] = float(schedule(self._step_count))

    def _evaluate(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _update(self, param, grad, state, group):
        """One update of one parameter (or one flat group) on raw arrays; override."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    def _scratch(self, param):
        """A persistent scratch buffer for a flat group's array, else None (kernel allocates)."""
        return self._scratch_buffers.get(id(param))

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters.

        Parameters
        ----------
        set_to_none : bool, default True
            Drop the gradients (``p.grad = None``); with False, fill them with zeros.
        """
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if not isinstance(g, Tensor) or g.creator is not None:
                        g = p.grad = Tensor._make(_grad_array(p, g).copy())
                    g.data[...] = 0

    # ---- conveniences ----------------------------------------------------------
    @property
    def step_count(self) -> int:
        """Number of completed ``step()`` calls."""
        return self._step_count

    @property
    def lr(self) -> LearningRate:
        """The learning rate (reads the first group's; see :class:`LearningRate`).

        Writing a number sets every group's lr; ``optimizer.lr *= 0.1`` scales each
        group's lr, so groups with different rates keep their ratios.

        With a :class:`~neural_arch.optim.schedules.LearningRateSchedule` as lr (given
        to the constructor, in a group, or written here for all groups), a group's
        lr is ``schedule(step_count)``, evaluated before each step: the rate of the
        next update. The schedule sits in the group as ``'lr_schedule'`` and in
        :meth:`state_dict` as its config; writing a number to a scheduled
        optimizer's lr is an error.
        """
        return LearningRate([g["lr"] for g in self.param_groups])

    @lr.setter
    def lr(self, value):
        if isinstance(value, LearningRateSchedule):
            for group in self.param_groups:
                group["lr_schedule"] = value
            self._apply_lr_schedules()
            return
        scheduled = [i for i, g in enumerate(self.param_groups) if "lr_schedule" in g]
        if scheduled:
            raise TypeError(f"the learning rate of parameter group(s) {scheduled} follows a "
                            f"schedule; assign a schedule instead of {value!r}, or delete "
                            f"'lr_schedule' from those groups first")
        if isinstance(value, LearningRate) and len(value.per_group) == len(self.param_groups):
            values = [non_negative("lr", v) for v in value.per_group]
        else:
            values = [non_negative("lr", value)] * len(self.param_groups)
        for group, v in zip(self.param_groups, values):
            group["lr"] = v

    @property
    def max_grad_norm(self):
        """Bound on the global gradient norm applied before each update (None: off).

        Set by the constructor argument ``max_grad_norm=`` (every optimizer takes
        it) or by assignment. Before each ``step()`` the gradients of all the
        optimizer's parameters are scaled together by
        :func:`~neural_arch.optim.clipping.clip_grad_norm_` (2-norm, PyTorch's
        formula), after the step pre-hooks and, for ``step(closure)``, after each
        evaluation of the closure. It is one setting of the optimizer, not a
        per-group hyper-parameter: it is not in ``param_groups`` or
        :meth:`state_dict`, so an optimizer without it keeps PyTorch's exact
        groups and state. A wrapper (SAM, Lookahead, ...) reads and writes its
        base optimizer's setting, which does the clipping. Quasi-Newton methods
        build curvature from gradient differences, which clipping distorts: with
        LBFGS use it together with ``line_search_fn='strong_wolfe'``.
        """
        base = getattr(self, "base_optimizer", None)
        if base is not None:
            return base.max_grad_norm
        return self._max_grad_norm

    @max_grad_norm.setter
    def max_grad_norm(self, value):
        base = getattr(self, "base_optimizer", None)
        if base is not None:
            base.max_grad_norm = value
            return
        self._max_grad_norm = None if value is None else positive("max_grad_norm", value)

    def register_step_pre_hook(self, hook):
        """Call ``hook(optimizer, args, kwargs)`` before each step.

        The hook may return ``(args, kwargs)`` to replace the step's arguments.
        Returns a handle whose ``remove()`` unregisters it.
        """
        handle = RemovableHandle(self._step_pre_hooks)
        self._step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook):
        """Call ``hook(optimizer, args, kwargs)`` after each step; returns a removable handle."""
        handle = RemovableHandle(self._step_post_hooks)
        self._step_post_hooks[handle.id] = hook
        return handle

    # ---- state_dict ------------------------------------------------------------
    def state_dict(self):
        """The optimizer's state as plain data, with parameters replaced by indices.

        Returns
        -------
        dict
            ``{'state': {index: {key: array or number}}, 'param_groups': [{...,
            'params': [indices]}], 'step_count': int}``, as PyTorch's, with arrays
            copied (the dict does not change when training goes on). Indices number
            the parameters in group order.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items()
                      if k not in ("params", "lr_schedule")}
            if "lr_schedule" in group:
                packed["lr_schedule"] = group["lr_schedule"].to_config()
            packed["params"] = [index.setdefault(p, len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                s = self.state.get(p)
                if s:
                    state[index[p]] = {k: v.copy() if _is_array(v) else copy.deepcopy(v)
                                       for k, v in s.items()}
        return {"state": state, "param_groups": groups, "step_count": self._step_count}

    def _state_shape(self, key, param):
        """Expected shape of array state ``key`` of ``param`` (None: any). Override if needed."""
        return param.shape

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict`; on any mismatch raise and change nothing.

        Arrays are copied onto each parameter's device and cast to its dtype.

        Raises
        ------
        ValueError
            Different numbers of groups or of parameters in a group, a state array
            whose shape differs from its parameter's, hyper-parameters missing or
            invalid (e.g. a state dict of another optimizer).
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping) or "param_groups" not in state_dict \
                or "state" not in state_dict:
            raise TypeError(f"{name}.load_state_dict expects a dict with 'state' and "
                            f"'param_groups', got {type(state_dict).__name__}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"this {name} has {len(self.param_groups)}")
        by_index = {}
        new_groups = []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"parameter group {i} of the loaded state dict has "
                                 f"{len(saved['params'])} parameters, this {name}'s has "
                                 f"{len(group['params'])}")
            missing = sorted(set(self.defaults) - set(saved))
            if missing:
                raise ValueError(f"parameter group {i} of the loaded state dict lacks "
                                 f"{missing}; was it saved from another optimizer than {name}?")
            for k, p in zip(saved["params"], group["params"]):
                by_index[int(k)] = p
            new = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            new.update(self.validate_group(new))
            if "lr_schedule" in new:
                new["lr_schedule"] = LearningRateSchedule.from_config(new["lr_schedule"])
            new["params"] = group["params"]
            if "param_names" in group and "param_names" not in new:
                new["param_names"] = group["param_names"]
            new_groups.append(new)
        new_state = defaultdict(dict)
        for k, saved in state_dict["state"].items():
            p = by_index.get(int(k))
            if p is None:
                raise ValueError(f"the loaded state dict has state for parameter {k}, but its "
                                 f"groups list only {sorted(by_index)}")
            new_state[p] = {key: self._load_value(key, v, p, k) for key, v in saved.items()}
        step_count = state_dict.get("step_count", 0)
        if isinstance(step_count, bool) or not isinstance(step_count, (int, np.integer)) \
                or step_count < 0:
            raise ValueError(f"step_count must be a non-negative integer, got {step_count!r}")
        # Everything checked: commit.
        self.state = new_state
        for group, new in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new)
        self._step_count = int(step_count)
        self._apply_lr_schedules()
        for flat in self._flat:
            flat.pack_state()

    def _load_value(self, key, value, param, index):
        if not _is_array(value):
            return value.item() if isinstance(value, np.generic) else copy.deepcopy(value)
        if value.ndim == 0 and (key == "step" or param.ndim != 0):
            return value.item()      # a counter stored as a 0-d array (PyTorch keeps tensors)
        expected = self._state_shape(key, param)
        if expected is not None and tuple(value.shape) != tuple(expected):
            raise ValueError(f"state {key!r} of parameter {index} has shape "
                             f"{tuple(value.shape)}, but the parameter has shape "
                             f"{tuple(param.shape)}")
        arr = backend.to_device(value, param.device)
        dtype = param.data.dtype if arr.dtype.kind == "f" else arr.dtype
        out = backend.get_array_module(arr).array(arr, dtype=dtype, copy=True)
        return out

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_counted", False):
            cls.step = _counted(step)


Optimizer.step = _counted(Optimizer.step)


# ---- helpers -------------------------------------------------------------------

def _grad_array(p, g):
    """The raw gradient array of ``p`` (``.grad`` may be a Tensor or an array set by hand)."""
    a = g.data if isinstance(g, Tensor) else g
    if a.shape != p.data.shape:
        raise ValueError(f"the gradient of a parameter of shape {tuple(p.data.shape)} has "
                         f"shape {tuple(a.shape)}")
    if a.dtype != p.data.dtype:
        raise TypeError(f"the gradient of a {p.data.dtype} parameter has dtype {a.dtype}")
    return a


def _is_group(x):
    # A dict name -> Parameter may itself hold a parameter called 'params'.
    return "params" in x and not all(isinstance(v, Tensor) for v in x.values())


def _as_groups(params, owner):
    """Normalise the ``params`` argument to a list of group dicts."""
    if isinstance(params, Tensor):
        raise TypeError(f"{owner} expects an iterable of Parameters (or a dict, or parameter "
                        f"groups), got a single {type(params).__name__}; wrap it in a list")
    if isinstance(params, (set, frozenset)):
        raise TypeError("optimizer parameters must be an ordered collection (a list, tuple "
                        "or dict); the order of a set changes between runs")
    if isinstance(params, Mapping):
        if _is_group(params):
            return [params]
        return [{"params": params}]
    params = list(params)
    if not params:
        raise ValueError(f"{owner} got an empty parameter list")
    if all(isinstance(x, Mapping) for x in params):
        return params
    if any(isinstance(x, Mapping) for x in params):
        raise TypeError("params mixes parameter-group dicts with bare parameters; give a "
                        "list of dicts or a list of Parameters")
    return [{"params": params}]


def _param_list(params, group_index):
    """(list of Parameters, list of names or None) from a group's 'params' entry."""
    if isinstance(params, Tensor):
        params = [params]
    elif isinstance(params, (set, frozenset)):
        raise TypeError("optimizer parameters must be an ordered collection (a list, tuple "
                        "or dict); the order of a set changes between runs")
    elif isinstance(params, Mapping):
        params = list(params.items())
    else:
        params = list(params)
    names = None
    if params and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str)
                      for x in params):
        names = [n for n, _ in params]
        params = [p for _, p in params]
    if not params:
        raise ValueError(f"parameter group {group_index} has no parameters")
    ids = set()
    for i, p in enumerate(params):
        where = f"parameter {names[i]!r}" if names else f"parameter {i}"
        where += f" of group {group_index}"
        if not isinstance(p, Tensor):
            raise TypeError(f"an optimizer can only optimize Tensors, but {where} is a "
                            f"{type(p).__name__}")
        if p.creator is not None:
            raise ValueError(f"can't optimize a non-leaf Tensor ({where} was made by "
                             f"{type(p.creator).__name__}); optimize the leaf it came from")
        if p.data.dtype.kind != "f":
            raise TypeError(f"can only optimize floating-point tensors, but {where} has "
                            f"dtype {p.data.dtype}")
        if id(p) in ids:
            raise ValueError(f"{where} appears twice in the group")
        ids.add(id(p))
    return params, names
