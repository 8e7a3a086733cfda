r"""Learning-rate schedulers with PyTorch's contract and PyTorch's numbers.

A scheduler owns no learning rate of its own: it rewrites ``group['lr']`` in the
optimizer's parameter groups, once per :meth:`LRScheduler.step`. The contract is
``torch.optim.lr_scheduler``'s:

* ``Scheduler(optimizer, ..., last_epoch=-1)``. A fresh scheduler stores each
  group's lr as ``group['initial_lr']``, keeps them as ``base_lrs`` and takes one
  step at construction (``last_epoch`` becomes 0). Resuming with
  ``last_epoch >= 0`` needs ``initial_lr`` in the groups (load the optimizer's
  state first).
* ``step()`` after ``optimizer.step()``: ``last_epoch += 1``, then
  ``get_lr()`` gives the new rates and the groups receive them. A warning is
  issued if the first ``step()`` comes before any ``optimizer.step()``.
* ``get_lr()`` is the *chainable* form: most schedulers compute the new rate
  from the group's current lr (``lr * gamma``), so several schedulers may act on
  one optimizer and their factors multiply. ``step(epoch)`` (deprecated in
  PyTorch, kept for old code) jumps to ``epoch`` and uses the *closed form*
  ``_get_closed_form_lr()`` (from ``base_lrs``) where the scheduler has one.
* ``get_last_lr()``: the rates of the last step, one per group.
* ``state_dict()`` holds every attribute but the optimizer;
  ``load_state_dict()`` restores it. Save and load the optimizer's state as well.
  A plain function or lambda given as ``lr_lambda`` (or as CyclicLR's
  ``scale_fn``) is not saved (it is stored as ``None``, as PyTorch does); a
  callable *object* has its ``__dict__`` saved and restored into the object
  the new scheduler was built with.

The recursive (chainable) forms are evaluated with the same floating-point
operations as PyTorch's, so the sequences agree exactly, not only to rounding.

Schedulers: :class:`LambdaLR`, :class:`MultiplicativeLR`, :class:`StepLR`,
:class:`MultiStepLR`, :class:`ConstantLR`, :class:`LinearLR`,
:class:`ExponentialLR`, :class:`PolynomialLR`, :class:`CosineAnnealingLR`,
:class:`CosineAnnealingWarmRestarts`, :class:`CyclicLR`, :class:`OneCycleLR`,
:class:`ReduceLROnPlateau`, :class:`SequentialLR`, :class:`ChainedScheduler`
and :class:`WarmupCosineLR` (linear warmup, then cosine; not in PyTorch).
"""
from __future__ import annotations

import copy
import math
import numbers
import types
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR",
           "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "ReduceLROnPlateau",
           "SequentialLR", "ChainedScheduler", "WarmupCosineLR"]

_EPOCH_WARNING = ("passing an epoch to scheduler.step() is deprecated (as in PyTorch): it "
                  "jumps to that epoch with the closed-form schedule where one exists; call "
                  "scheduler.step() without arguments once per epoch instead")


# ---- argument checks ----------------------------------------------------------------

def _real(owner, name, value, low=None, high=None, low_open=False, high_open=False):
    """A finite real ``value`` within the given bounds, as float; else a named error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r} "
                        f"({type(value).__name__})")
    value = float(value)
    bad = not math.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        lo = "" if low is None else f"{low:g} {'<' if low_open else '<='} "
        hi = "" if high is None else f" {'<' if high_open else '<='} {high:g}"
        expected = f"{lo}{name}{hi}" if (lo or hi) else "a finite number"
        raise ValueError(f"{owner}: invalid {name} {value!r} (expected {expected})")
    return value


def _int(owner, name, value, low):
    """An integer ``value >= low`` (bools refused), as int; else a named error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an integer, got {value!r} "
                        f"({type(value).__name__})")
    if value < low:
        raise ValueError(f"{owner}: invalid {name} {value!r} (expected an integer >= {low})")
    return int(value)


def _choice(owner, name, value, options):
    if value not in options:
        raise ValueError(f"{owner}: unknown {name} {value!r}; expected one of "
                         f"{', '.join(map(repr, options))}")
    return value


def _per_group(owner, name, value, optimizer, check):
    """One value per parameter group: a list/tuple of that length, or one value for all."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{owner}: {name} has {len(value)} values, but the optimizer has "
                             f"{n} parameter groups")
        return [check(owner, f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [check(owner, name, value)] * n


def _non_negative(owner, name, value):
    return _real(owner, name, value, low=0.0)


def _check_optimizer(owner, optimizer):
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, Mapping) for g in groups):
        raise TypeError(f"{owner} needs an optimizer (an object with a list of param_groups), "
                        f"got {type(optimizer).__name__}")
    for i, group in enumerate(groups):
        lr = group.get("lr")
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise TypeError(f"{owner} needs a number as the lr of every parameter group, but "
                            f"group {i} has {lr!r}; a step-based schedule given as lr drives "
                            f"the rate itself and cannot be combined with a scheduler")
    return optimizer


def _group_lrs(optimizer):
    return [group["lr"] for group in optimizer.param_groups]


def _set_momentum(group, value, use_beta1):
    """Write the momentum of a group: SGD-like ``momentum`` or Adam-like ``betas[0]``."""
    if use_beta1:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


def _momentum_kind(owner, optimizer):
    """True if the optimizer's momentum is ``betas[0]``, False if ``momentum``."""
    defaults = getattr(optimizer, "defaults", {})
    if "momentum" not in defaults and "betas" not in defaults:
        raise ValueError(f"{owner}: cycle_momentum=True needs an optimizer with a 'momentum' "
                         f"or 'betas' hyper-parameter; {type(optimizer).__name__} has neither "
                         f"(pass cycle_momentum=False)")
    return "betas" in defaults


def _save_callable(fn):
    """State of a user callable: the ``__dict__`` of a callable object, None for a function."""
    if fn is None or isinstance(fn, (types.FunctionType, types.BuiltinFunctionType,
                                     types.MethodType, types.LambdaType)):
        return None
    state = getattr(fn, "__dict__", None)
    return None if state is None else dict(state)


# ---- the base class -----------------------------------------------------------------

class LRScheduler:
    """Base class of the epoch-indexed schedulers (PyTorch's ``LRScheduler``).

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer whose ``param_groups[i]['lr']`` the scheduler sets.
    last_epoch : int, default -1
        Index of the last epoch. -1 starts a schedule (and records each group's
        lr as ``initial_lr``); a value ``>= 0`` resumes one and needs
        ``initial_lr`` already in every group.

    Attributes
    ----------
    base_lrs : list of float
        ``initial_lr`` of each group: the rates the closed forms scale.
    last_epoch : int
        Number of ``step()`` calls since epoch 0 (0 right after construction).

    Notes
    -----
    A subclass implements :meth:`get_lr` (the chainable form, which may read
    ``group['lr']``) and, where a formula in ``last_epoch`` exists,
    ``_get_closed_form_lr`` (used by the deprecated ``step(epoch)``). Its
    ``__init__`` sets its own attributes and then calls ``super().__init__``,
    which takes the initial step.
    """

    # Attributes that exist only during a call and are never saved.
    _transient = ("optimizer", "_in_step", "_is_initial")

    def __init__(self, optimizer, last_epoch=-1):
        owner = type(self).__name__
        self.optimizer = _check_optimizer(owner, optimizer)
        last_epoch = _int(owner, "last_epoch", last_epoch, -1)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{owner}: resuming with last_epoch={last_epoch} needs "
                                   f"'initial_lr' in every parameter group, but group {i} "
                                   f"has none; load the optimizer's state dict first (or "
                                   f"start with last_epoch=-1)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """The step taken at construction (and by SequentialLR when it hands over)."""
        self._step_count = 0
        self._optimizer_steps = getattr(self.optimizer, "step_count", None)
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    # ---- stepping -------------------------------------------------------------------
    def step(self, epoch=None):
        """Advance one epoch and write the new learning rates into the optimizer.

        Parameters
        ----------
        epoch : int, optional
            Deprecated (as in PyTorch): jump to this epoch and evaluate the closed
            form where the scheduler has one. Warns.
        """
        if self._step_count == 1:
            self._warn_if_optimizer_idle()
        self._step_count += 1
        if epoch is not None:
            warnings.warn(_EPOCH_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _warn_if_optimizer_idle(self):
        steps = getattr(self.optimizer, "step_count", None)
        if steps is not None and self._optimizer_steps is not None \
                and steps == self._optimizer_steps:
            warnings.warn("lr_scheduler.step() was called before optimizer.step(); call "
                          "optimizer.step() first, or the first value of the learning-rate "
                          "schedule is skipped", UserWarning, stacklevel=3)

    def _update_lr(self, epoch=None):
        self._in_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                closed = getattr(self, "_get_closed_form_lr", None)
                values = closed() if closed is not None else self.get_lr()
        finally:
            self._in_step = False
        self._apply(values)

    def _apply(self, values):
        groups = self.optimizer.param_groups
        if len(values) != len(groups):
            raise RuntimeError(f"{type(self).__name__} computed {len(values)} learning rates "
                               f"but the optimizer now has {len(groups)} parameter groups "
                               f"(was a group added after the scheduler was built?)")
        for group, lr in zip(groups, values):
            group["lr"] = lr
        self._last_lr = _group_lrs(self.optimizer)

    def get_lr(self):
        """The learning rates of the current ``last_epoch`` (chainable form).

        Called by :meth:`step`; to read the rates in use, call
        :meth:`get_last_lr` (calling this from outside a step warns, as in
        PyTorch, since chainable forms depend on the current lr).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def _warn_outside_step(self):
        if not getattr(self, "_in_step", False):
            warnings.warn("get_lr() is meant to be called by step(); to read the learning "
                          "rates the scheduler last set, use get_last_lr()", UserWarning,
                          stacklevel=3)

    def get_last_lr(self):
        """The learning rates set by the last step, one per parameter group (a new list)."""
        return list(self._last_lr)

    # ---- state ----------------------------------------------------------------------
    def state_dict(self):
        """Every attribute except the optimizer, as a dict of copies.

        Callables given by the user are handled as PyTorch does: see the module
        docstring.
        """
        return {k: copy.deepcopy(v) for k, v in vars(self).items()
                if k not in self._transient}

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict` of a scheduler of the same class.

        Raises
        ------
        TypeError
            Not a dict.
        ValueError
            Keys missing or unknown (a state dict of another scheduler); nothing is
            changed then.
        """
        state = self._checked_state(state_dict)
        self.__dict__.update(copy.deepcopy(state))

    def _checked_state(self, state_dict):
        owner = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{owner}.load_state_dict expects a dict, got "
                            f"{type(state_dict).__name__}")
        # PyTorch's state dicts also carry two transient flags: accept, then drop them.
        state = {k: v for k, v in state_dict.items()
                 if k not in ("_get_lr_called_within_step", "_is_initial")}
        expected = set(self.state_dict())
        missing, unknown = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unknown:
            raise ValueError(f"{owner}.load_state_dict: the state dict does not belong to a "
                             f"{owner} (missing {missing}, unknown {unknown})")
        return state

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={getattr(self, 'last_epoch', None)})"


# ---- multiplicative families --------------------------------------------------------

class _LambdaBase(LRScheduler):
    """Shared by LambdaLR and MultiplicativeLR: one callable per group, saved as PyTorch."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        owner = type(self).__name__
        _check_optimizer(owner, optimizer)
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"{owner}: got {len(lr_lambda)} lr_lambdas for {n} "
                                 f"parameter groups")
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * n
        for i, fn in enumerate(lambdas):
            if not callable(fn):
                raise TypeError(f"{owner}: lr_lambda must be callable (epoch -> factor), but "
                                f"entry {i} is {type(fn).__name__}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def state_dict(self):
        state = {k: copy.deepcopy(v) for k, v in vars(self).items()
                 if k not in self._transient and k != "lr_lambdas"}
        state["lr_lambdas"] = [_save_callable(fn) for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state = dict(self._checked_state(state_dict))
        saved = state.pop("lr_lambdas")
        if len(saved) != len(self.lr_lambdas):
            raise ValueError(f"{type(self).__name__}.load_state_dict: {len(saved)} saved "
                             f"lr_lambdas for {len(self.lr_lambdas)} groups")
        self.__dict__.update(copy.deepcopy(state))
        for fn, fn_state in zip(self.lr_lambdas, saved):
            if fn_state is not None:
                fn.__dict__.update(fn_state)


class LambdaLR(_LambdaBase):
    r"""Initial lr times a user function of the epoch.

    .. math:: \eta_t = \eta_0 \cdot \lambda(t)

    Parameters
    ----------
    optimizer : Optimizer
    lr_lambda : callable or list of callables
        ``epoch -> factor``, one for all groups or one per group.
    last_epoch : int, default -1

    Notes
    -----
    ``state_dict`` stores ``None`` for a function or lambda and the
    ``__dict__`` of a callable object (see the module docstring).
    """

    def get_lr(self):
        self._warn_outside_step()
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaBase):
    r"""Current lr times a user function of the epoch, every step after the first.

    .. math:: \eta_t = \eta_{t-1} \cdot \lambda(t) \quad (t \ge 1)

    Parameters as :class:`LambdaLR`.
    """

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:
            return _group_lrs(self.optimizer)
        return [group["lr"] * fn(self.last_epoch)
                for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups)]


class StepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` every ``step_size`` epochs.

    .. math:: \eta_t = \eta_0 \, \gamma^{\lfloor t / s \rfloor}

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Period ``s`` of the decay (>= 1).
    gamma : float, default 0.1
        Factor per period (>= 0).
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = _int("StepLR", "step_size", step_size, 1)
        self.gamma = _non_negative("StepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _group_lrs(self.optimizer)
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size)
                for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` at each milestone epoch.

    .. math:: \eta_t = \eta_0 \, \gamma^{\#\{m \in M : m \le t\}}

    Parameters
    ----------
    optimizer : Optimizer
    milestones : iterable of int
        Epochs (>= 0) at which to decay; a milestone listed twice decays twice.
    gamma : float, default 0.1
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"MultiStepLR: milestones must be a list of epochs, got "
                            f"{milestones!r}")
        self.milestones = Counter(_int("MultiStepLR", "milestone", m, 0) for m in milestones)
        self.gamma = _non_negative("MultiStepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch not in self.milestones:
            return _group_lrs(self.optimizer)
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]


class ConstantLR(LRScheduler):
    r"""Scale the lr by a constant ``factor`` for the first ``total_iters`` epochs.

    .. math:: \eta_t = \eta_0 \cdot (f \text{ if } t < T \text{ else } 1)

    Parameters
    ----------
    optimizer : Optimizer
    factor : float, default 1/3
        ``0 < factor <= 1``.
    total_iters : int, default 5
        Epochs ``T`` (>= 1) during which the factor applies.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        self.factor = _real("ConstantLR", "factor", factor, 0.0, 1.0, low_open=True)
        self.total_iters = _int("ConstantLR", "total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return _group_lrs(self.optimizer)
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        scale = self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor)
        return [base * scale for base in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Scale the lr by a factor moving linearly from ``start_factor`` to ``end_factor``.

    .. math::
        \eta_t = \eta_0 \left(f_s + (f_e - f_s)\,\frac{\min(t, T)}{T}\right)

    Parameters
    ----------
    optimizer : Optimizer
    start_factor : float, default 1/3
        ``0 < start_factor <= 1``.
    end_factor : float, default 1.0
        ``0 <= end_factor <= 1``.
    total_iters : int, default 5
        Epochs ``T`` (>= 1) of the ramp.
    last_epoch : int, default -1

    Notes
    -----
    The chainable form multiplies the current lr by the ratio of consecutive
    factors, :math:`1 + (f_e - f_s) / (T f_s + (t-1)(f_e - f_s))`.
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        self.start_factor = _real("LinearLR", "start_factor", start_factor, 0.0, 1.0,
                                  low_open=True)
        self.end_factor = _real("LinearLR", "end_factor", end_factor, 0.0, 1.0)
        self.total_iters = _int("LinearLR", "total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_lrs(self.optimizer)
        delta = self.end_factor - self.start_factor
        ratio = 1.0 + delta / (self.total_iters * self.start_factor
                               + (self.last_epoch - 1) * delta)
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        done = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + (self.end_factor - self.start_factor) * done)
                for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` every epoch.

    .. math:: \eta_t = \eta_0 \, \gamma^{t}

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
        Factor per epoch (>= 0).
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = _non_negative("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:
            return _group_lrs(self.optimizer)
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class PolynomialLR(LRScheduler):
    r"""Decay the lr polynomially to zero over ``total_iters`` epochs.

    .. math:: \eta_t = \eta_0 \left(1 - \frac{\min(t, T)}{T}\right)^{p}

    Parameters
    ----------
    optimizer : Optimizer
    total_iters : int, default 5
        Epochs ``T`` (>= 1) until the lr reaches 0.
    power : float, default 1.0
        Exponent ``p`` (>= 0).
    last_epoch : int, default -1
    """

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters = _int("PolynomialLR", "total_iters", total_iters, 1)
        self.power = _non_negative("PolynomialLR", "power", power)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_lrs(self.optimizer)
        t, total = self.last_epoch, self.total_iters
        decay = ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power
        return [group["lr"] * decay for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        left = 1.0 - min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * left ** self.power for base in self.base_lrs]


# ---- cosine families ----------------------------------------------------------------

class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the initial lr to ``eta_min`` over ``T_max`` epochs.

    .. math::
        \eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})
                 \left(1 + \cos\frac{\pi t}{T_{max}}\right)

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Half period (>= 1); after it the lr rises again (no restart jump).
    eta_min : float, default 0.0
        Minimum lr (>= 0).
    last_epoch : int, default -1

    Notes
    -----
    ``step()`` uses PyTorch's recursive form, which equals the formula above when
    this scheduler alone sets the lr, and composes with others when it does not:

    .. math::
        \eta_t = \eta_{min} + (\eta_{t-1} - \eta_{min})
                 \frac{1 + \cos(\pi t / T_{max})}{1 + \cos(\pi (t-1) / T_{max})},

    except at :math:`t - 1 - T_{max} \equiv 0 \pmod{2 T_{max}}` (where the
    denominator vanishes), which adds
    :math:`(\eta_0 - \eta_{min})(1 - \cos(\pi / T_{max}))/2`.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = _int("CosineAnnealingLR", "T_max", T_max, 1)
        self.eta_min = _non_negative("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:
            return _group_lrs(self.optimizer)
        t, T, lo = self.last_epoch, self.T_max, self.eta_min
        groups = self.optimizer.param_groups
        if (t - 1 - T) % (2 * T) == 0:
            return [group["lr"] + (base - lo) * (1 - math.cos(math.pi / T)) / 2
                    for base, group in zip(self.base_lrs, groups)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (group["lr"] - lo) + lo for group in groups]

    def _get_closed_form_lr(self):
        cos = 1 + math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base - self.eta_min) * cos / 2 for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing restarted every ``T_i`` epochs, ``T_i`` growing by ``T_mult``.

    .. math::
        \eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})
                 \left(1 + \cos\frac{\pi T_{cur}}{T_i}\right)

    with :math:`T_{cur}` the epochs since the last restart and
    :math:`T_i = T_0 T_{mult}^{i}` the length of the current cycle.

    Parameters
    ----------
    optimizer : Optimizer
    T_0 : int
        Length of the first cycle (>= 1).
    T_mult : int, default 1
        Growth of the cycle length at each restart (>= 1).
    eta_min : float, default 0.0
        Minimum lr (>= 0).
    last_epoch : int, default -1

    Notes
    -----
    ``step(epoch)`` accepts fractional epochs (``scheduler.step(epoch + i /
    iters)`` inside an epoch's loop) and is not deprecated here. With ``T_mult >
    1`` the cycle holding ``epoch`` is the largest ``n`` with
    :math:`T_0 (T_{mult}^n - 1)/(T_{mult} - 1) \le epoch`; unlike PyTorch, which
    takes it from a floating logarithm, it is found exactly, so an epoch that is
    exactly a restart (e.g. 121 with ``T_0=1, T_mult=3``) starts the new cycle.
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        owner = "CosineAnnealingWarmRestarts"
        self.T_0 = _int(owner, "T_0", T_0, 1)
        self.T_i = self.T_0
        self.T_mult = _int(owner, "T_mult", T_mult, 1)
        self.eta_min = _non_negative(owner, "eta_min", eta_min)
        self.T_cur = _int(owner, "last_epoch", last_epoch, -1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        cos = 1 + math.cos(math.pi * self.T_cur / self.T_i)
        return [self.eta_min + (base - self.eta_min) * cos / 2 for base in self.base_lrs]

    def step(self, epoch=None):
        """Advance one epoch, or go to ``epoch`` (a float allowed), and set the lrs."""
        if epoch is not None:
            _real(type(self).__name__, "epoch", epoch, low=0.0)
        if self._step_count == 1:
            self._warn_if_optimizer_idle()
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur %= self.T_i
                self.T_i *= self.T_mult
        else:
            self._seek(epoch)
        self.last_epoch = math.floor(epoch)
        self._in_step = True
        try:
            values = self.get_lr()
        finally:
            self._in_step = False
        self._apply(values)

    def _seek(self, epoch):
        """Set ``T_i`` and ``T_cur`` for an absolute (possibly fractional) epoch."""
        T_0, m = self.T_0, self.T_mult
        if epoch < T_0:
            self.T_i, self.T_cur = T_0, epoch
        elif m == 1:
            self.T_cur = epoch % T_0
        else:
            # Cycle n starts at T_0 (m^n - 1) / (m - 1); estimate n, then make it exact.
            n = int(math.log(epoch / T_0 * (m - 1) + 1, m))
            while n > 0 and T_0 * (m ** n - 1) // (m - 1) > epoch:
                n -= 1
            while T_0 * (m ** (n + 1) - 1) // (m - 1) <= epoch:
                n += 1
            self.T_cur = epoch - T_0 * (m ** n - 1) / (m - 1)
            self.T_i = T_0 * m ** n


class WarmupCosineLR(LRScheduler):
    r"""Linear warmup for ``warmup_epochs``, then cosine annealing to ``eta_min``.

    .. math::
        \eta_t = \begin{cases}
          \eta_w + (\eta_0 - \eta_w)\,\dfrac{t}{W} & t < W \\[4pt]
          \eta_{min} + \tfrac12(\eta_0 - \eta_{min})
             \left(1 + \cos\left(\pi\,\dfrac{\min(t, T) - W}{T - W}\right)\right) & t \ge W
        \end{cases}

    with :math:`\eta_0` the group's initial lr, :math:`\eta_w` =
    ``warmup_start_lr``, :math:`W` = ``warmup_epochs`` and :math:`T` =
    ``max_epochs``. The lr starts at :math:`\eta_w` at epoch 0, reaches
    :math:`\eta_0` at epoch :math:`W`, reaches ``eta_min`` at epoch :math:`T` and
    stays there. With the defaults (``warmup_start_lr=0``, ``eta_min=0``) the
    factor is the usual ``t / W`` then ``(1 + cos(pi (t - W) / (T - W))) / 2``.

    Parameters
    ----------
    optimizer : Optimizer
    warmup_epochs : int
        Epochs ``W`` of linear warmup (>= 0; 0 starts the cosine at once).
    max_epochs : int
        Epoch ``T`` (> ``warmup_epochs``) at which the cosine reaches ``eta_min``.
    eta_min : float, default 0.0
        Final lr (>= 0).
    warmup_start_lr : float, default 0.0
        Lr at epoch 0 (>= 0).
    last_epoch : int, default -1

    Examples
    --------
    >>> import numpy as np, neural_arch as na
    >>> opt = na.optim.SGD([na.Parameter(np.zeros(1))], lr=0.1)
    >>> sched = WarmupCosineLR(opt, warmup_epochs=2, max_epochs=4)
    >>> lrs = []
    >>> for _ in range(5):
    ...     lrs.append(round(sched.get_last_lr()[0], 6)); opt.step(); sched.step()
    >>> lrs
    [0.0, 0.05, 0.1, 0.05, 0.0]
    """

    def __init__(self, optimizer, warmup_epochs, max_epochs, eta_min=0.0, warmup_start_lr=0.0,
                 last_epoch=-1):
        owner = "WarmupCosineLR"
        self.warmup_epochs = _int(owner, "warmup_epochs", warmup_epochs, 0)
        self.max_epochs = _int(owner, "max_epochs", max_epochs, 1)
        if self.max_epochs <= self.warmup_epochs:
            raise ValueError(f"{owner}: max_epochs ({self.max_epochs}) must be greater than "
                             f"warmup_epochs ({self.warmup_epochs})")
        self.eta_min = _non_negative(owner, "eta_min", eta_min)
        self.warmup_start_lr = _non_negative(owner, "warmup_start_lr", warmup_start_lr)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        return self._get_closed_form_lr()

    def _get_closed_form_lr(self):
        t, W, T = self.last_epoch, self.warmup_epochs, self.max_epochs
        if t < W:
            start = self.warmup_start_lr
            return [start + (base - start) * t / W for base in self.base_lrs]
        cos = 1 + math.cos(math.pi * (min(t, T) - W) / (T - W))
        return [self.eta_min + (base - self.eta_min) * cos / 2 for base in self.base_lrs]


# ---- cyclical policies --------------------------------------------------------------

class CyclicLR(LRScheduler):
    r"""Cyclical learning rate (Smith, 2017): a triangle between ``base_lr`` and ``max_lr``.

    With :math:`S = s_{up} + s_{down}`, cycle :math:`c = \lfloor 1 + t/S \rfloor`
    and position :math:`x = 1 + t/S - c \in [0, 1)`:

    .. math::
        h = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases},
        \quad r = s_{up} / S, \qquad
        \eta_t = \eta_{base} + (\eta_{max} - \eta_{base})\, h\, \sigma(\cdot)

    where the amplitude scale :math:`\sigma` is 1 (``'triangular'``),
    :math:`2^{-(c-1)}` (``'triangular2'``), :math:`\gamma^{t}` (``'exp_range'``) or
    ``scale_fn`` of the cycle (``scale_mode='cycle'``) or of ``t``
    (``'iterations'``). Momentum, when cycled, moves the opposite way:
    :math:`m_t = m_{max} - (m_{max} - m_{base})\, h\, \sigma(\cdot)`. Step the
    scheduler after every batch.

    Parameters
    ----------
    optimizer : Optimizer
    base_lr, max_lr : float or list of float
        Bounds of the cycle (>= 0), one for all groups or one per group. The
        constructor sets each group's lr to ``base_lr``.
    step_size_up : int, default 2000
        Steps of the rising half (>= 1).
    step_size_down : int, optional
        Steps of the falling half (>= 1); default ``step_size_up``.
    mode : {'triangular', 'triangular2', 'exp_range'}, default 'triangular'
    gamma : float, default 1.0
        Base of ``'exp_range'`` (> 0).
    scale_fn : callable, optional
        Custom amplitude scale ``x -> factor``; overrides ``mode``.
    scale_mode : {'cycle', 'iterations'}, default 'cycle'
        What ``scale_fn`` receives (used only with ``scale_fn``).
    cycle_momentum : bool, default True
        Cycle the optimizer's ``momentum`` (or ``betas[0]``) inversely to the lr.
    base_momentum, max_momentum : float or list of float, default 0.8, 0.9
    last_epoch : int, default -1
        Here the index of the last *batch*.

    References
    ----------
    L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV
    2017, arXiv:1506.01186.
    """

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        owner = "CyclicLR"
        _check_optimizer(owner, optimizer)
        base_lrs = _per_group(owner, "base_lr", base_lr, optimizer, _non_negative)
        self.max_lrs = _per_group(owner, "max_lr", max_lr, optimizer, _non_negative)
        up = float(_int(owner, "step_size_up", step_size_up, 1))
        down = up if step_size_down is None else float(
            _int(owner, "step_size_down", step_size_down, 1))
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if scale_fn is None:
            self.mode = _choice(owner, "mode", mode, ("triangular", "triangular2", "exp_range"))
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"
        else:
            if not callable(scale_fn):
                raise TypeError(f"{owner}: scale_fn must be callable, got "
                                f"{type(scale_fn).__name__}")
            self.mode = mode
            self.scale_mode = _choice(owner, "scale_mode", scale_mode, ("cycle", "iterations"))
        self.gamma = _real(owner, "gamma", gamma, low=0.0, low_open=True)
        self._scale_fn_custom = scale_fn
        if not isinstance(cycle_momentum, bool):
            raise TypeError(f"{owner}: cycle_momentum must be True or False, got "
                            f"{cycle_momentum!r}")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_kind(owner, optimizer)
            self.base_momentums = _per_group(owner, "base_momentum", base_momentum, optimizer,
                                             _non_negative)
            self.max_momentums = _per_group(owner, "max_momentum", max_momentum, optimizer,
                                            _non_negative)
        last_epoch = _int(owner, "last_epoch", last_epoch, -1)
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr
            if cycle_momentum:
                for group, low, high in zip(optimizer.param_groups, self.base_momentums,
                                            self.max_momentums):
                    _set_momentum(group, high, self.use_beta1)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)
        # As PyTorch: the initial step used the groups' initial_lr, later steps base_lr.
        self.base_lrs = base_lrs

    def scale_fn(self, x):
        """Amplitude scale of the cycle (``mode``) or of the user's ``scale_fn``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self):
        self._warn_outside_step()
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            height = x / self.step_ratio
        else:
            height = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [low + (high - low) * height * scale
               for low, high in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums,
                                        self.max_momentums):
                _set_momentum(group, high - (high - low) * height * scale, self.use_beta1)
        return lrs

    def state_dict(self):
        state = {k: copy.deepcopy(v) for k, v in vars(self).items()
                 if k not in self._transient and k != "_scale_fn_custom"}
        state["_scale_fn_custom"] = _save_callable(self._scale_fn_custom)
        return state

    def load_state_dict(self, state_dict):
        state = dict(self._checked_state(state_dict))
        fn_state = state.pop("_scale_fn_custom")
        self.__dict__.update(copy.deepcopy(state))
        if fn_state is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(fn_state)


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin, 2018): warm up to ``max_lr``, then anneal far below.

    Two phases (three with ``three_phase=True``) over ``total_steps`` steps,
    each annealing from a start to an end value with
    :math:`a(s, e, p) = e + (s - e)(1 + \cos \pi p)/2` (``'cos'``) or
    :math:`s + (e - s) p` (``'linear'``), :math:`p` the fraction of the phase
    done. With :math:`\eta_{init} = \eta_{max} / \text{div\_factor}` and
    :math:`\eta_{min} = \eta_{init} / \text{final\_div\_factor}`:

    * two phases: :math:`\eta_{init} \to \eta_{max}` until step
      ``pct_start * total_steps - 1``, then :math:`\eta_{max} \to \eta_{min}`
      until ``total_steps - 1``;
    * three phases: :math:`\eta_{init} \to \eta_{max}`, back
      :math:`\eta_{max} \to \eta_{init}` until ``2 * pct_start * total_steps - 2``,
      then :math:`\eta_{init} \to \eta_{min}`.

    Momentum (``momentum`` or ``betas[0]``), when cycled, goes ``max_momentum ->
    base_momentum`` while the lr rises and back while it falls. Step after every
    batch; stepping past ``total_steps`` is an error.

    Parameters
    ----------
    optimizer : Optimizer
    max_lr : float or list of float
        Peak lr (> 0), one for all groups or one per group.
    total_steps : int, optional
        Length of the cycle; or give ``epochs`` and ``steps_per_epoch``.
    epochs, steps_per_epoch : int, optional
        ``total_steps = epochs * steps_per_epoch`` when ``total_steps`` is None.
    pct_start : float, default 0.3
        Fraction of the cycle spent rising (0 to 1).
    anneal_strategy : {'cos', 'linear'}, default 'cos'
    cycle_momentum : bool, default True
    base_momentum, max_momentum : float or list of float, default 0.85, 0.95
    div_factor : float, default 25.0
        ``initial_lr = max_lr / div_factor`` (> 0).
    final_div_factor : float, default 1e4
        ``min_lr = initial_lr / final_div_factor`` (> 0).
    three_phase : bool, default False
    last_epoch : int, default -1
        Here the index of the last *batch*.

    Raises
    ------
    ValueError
        Besides out-of-range arguments: a ``pct_start`` that makes a phase empty
        (``pct_start * total_steps`` equal to 1, or a phase ending where the
        previous one ended), which PyTorch would only report as a division by
        zero at that step.

    References
    ----------
    L. N. Smith and N. Topin, "Super-Convergence: Very Fast Training of Neural
    Networks Using Large Learning Rates", 2018, arXiv:1708.07120.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        owner = "OneCycleLR"
        _check_optimizer(owner, optimizer)
        if total_steps is not None:
            self.total_steps = _int(owner, "total_steps", total_steps, 1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_int(owner, "epochs", epochs, 1)
                                * _int(owner, "steps_per_epoch", steps_per_epoch, 1))
        else:
            raise ValueError(f"{owner}: give total_steps, or both epochs and steps_per_epoch")
        pct_start = _real(owner, "pct_start", pct_start, 0.0, 1.0)
        self._anneal_func_type = _choice(owner, "anneal_strategy", anneal_strategy,
                                         ("cos", "linear"))
        div_factor = _real(owner, "div_factor", div_factor, low=0.0, low_open=True)
        final_div_factor = _real(owner, "final_div_factor", final_div_factor, low=0.0,
                                 low_open=True)
        if not isinstance(three_phase, bool):
            raise TypeError(f"{owner}: three_phase must be True or False, got {three_phase!r}")
        rise_end = float(pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        if three_phase:
            phases = [(rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                       "base_momentum", "max_momentum"),
                      (last, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            phases = [(rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      (last, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        keys = ("end_step", "start_lr", "end_lr", "start_momentum", "end_momentum")
        self._schedule_phases = [dict(zip(keys, phase)) for phase in phases]
        start = 0.0
        for i, phase in enumerate(self._schedule_phases):
            if phase["end_step"] == start:
                raise ValueError(f"{owner}: pct_start={pct_start} with total_steps="
                                 f"{self.total_steps} leaves phase {i} of the cycle empty "
                                 f"(it would end at step {start:g}, where it starts)")
            start = phase["end_step"]
        max_lrs = _per_group(owner, "max_lr", max_lr, optimizer,
                             lambda o, n, v: _real(o, n, v, low=0.0, low_open=True))
        if not isinstance(cycle_momentum, bool):
            raise TypeError(f"{owner}: cycle_momentum must be True or False, got "
                            f"{cycle_momentum!r}")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_kind(owner, optimizer)
            highs = _per_group(owner, "max_momentum", max_momentum, optimizer, _non_negative)
            lows = _per_group(owner, "base_momentum", base_momentum, optimizer, _non_negative)
        last_epoch = _int(owner, "last_epoch", last_epoch, -1)
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
            if cycle_momentum:
                for group, high, low in zip(optimizer.param_groups, highs, lows):
                    _set_momentum(group, high, self.use_beta1)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        self._warn_outside_step()
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR was stepped {step} times, but its cycle has "
                             f"total_steps={self.total_steps}")
        lrs = []
        last_phase = len(self._schedule_phases) - 1
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == last_phase:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]],
                                            pct))
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]],
                                                group[phase["end_momentum"]], pct)
                        _set_momentum(group, momentum, self.use_beta1)
                    break
                start = end
        return lrs


# ---- metric-driven --------------------------------------------------------------------

class ReduceLROnPlateau(LRScheduler):
    r"""Multiply the lr by ``factor`` when a metric stops improving for ``patience`` epochs.

    A value :math:`a` improves on the best :math:`b` so far when (mode ``'min'``)
    :math:`a < b(1 - \theta)` (``threshold_mode='rel'``) or :math:`a < b - \theta`
    (``'abs'``); for ``'max'``, :math:`a > b(1 + \theta)` or :math:`a > b +
    \theta`. After more than ``patience`` epochs without improvement each
    group's lr becomes :math:`\max(\eta \cdot f, \eta_{min})` (skipped when the
    change would be at most ``eps``), and ``cooldown`` epochs follow during which
    bad epochs are not counted.

    Parameters
    ----------
    optimizer : Optimizer
    mode : {'min', 'max'}, default 'min'
        Whether the metric should fall (a loss) or rise (an accuracy).
    factor : float, default 0.1
        ``0 <= factor < 1``.
    patience : int, default 10
        Epochs without improvement tolerated (>= 0).
    threshold : float, default 1e-4
        :math:`\theta` (>= 0).
    threshold_mode : {'rel', 'abs'}, default 'rel'
    cooldown : int, default 0
        Epochs (>= 0) to wait after a reduction.
    min_lr : float or list of float, default 0
        Lower bound of the lr, one for all groups or one per group (>= 0).
    eps : float, default 1e-8
        Smallest change of lr that is applied (>= 0).

    Notes
    -----
    ``step(metrics)`` takes the metric of the epoch (a number, a 0-d array or a
    one-element Tensor). Unlike the other schedulers it takes no initial step
    and reads no ``initial_lr``.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        owner = "ReduceLROnPlateau"
        self.optimizer = _check_optimizer(owner, optimizer)
        self.factor = _real(owner, "factor", factor, 0.0, 1.0, high_open=True)
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = _per_group(owner, "min_lr", min_lr, optimizer, _non_negative)
        else:
            self.default_min_lr = _non_negative(owner, "min_lr", min_lr)
            self.min_lrs = [self.default_min_lr] * len(optimizer.param_groups)
        self.patience = _int(owner, "patience", patience, 0)
        self.cooldown = _int(owner, "cooldown", cooldown, 0)
        self.eps = _non_negative(owner, "eps", eps)
        self.mode = _choice(owner, "mode", mode, ("min", "max"))
        self.threshold = _non_negative(owner, "threshold", threshold)
        self.threshold_mode = _choice(owner, "threshold_mode", threshold_mode, ("rel", "abs"))
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = _group_lrs(optimizer)
        self._reset()

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self):
        """True while the cooldown after a reduction lasts."""
        return self.cooldown_counter > 0

    def is_better(self, a, best):
        """Whether metric value ``a`` improves on ``best`` (see the class docstring)."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics, epoch=None):
        """Record the epoch's metric; reduce the lrs if it has plateaued.

        Parameters
        ----------
        metrics : float, 0-d array or one-element Tensor
        epoch : int, optional
            Deprecated (as in PyTorch): sets ``last_epoch``. Warns.
        """
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step expects the metric as a number, got "
                            f"{type(metrics).__name__}") from None
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(_EPOCH_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _group_lrs(self.optimizer)

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau was built for {len(self.min_lrs)} "
                                   f"parameter groups with one min_lr each, but the optimizer "
                                   f"now has {len(groups)}; set scheduler.min_lrs to match")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, floor in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, floor)
            if old - new > self.eps:
                group["lr"] = new

    def get_lr(self):
        raise NotImplementedError("ReduceLROnPlateau sets the lr from a metric in step(); "
                                  "read it with get_last_lr()")


# ---- composition ----------------------------------------------------------------------

def _check_children(owner, schedulers, optimizer):
    if isinstance(schedulers, LRScheduler) or not isinstance(schedulers, (list, tuple)):
        raise TypeError(f"{owner} expects a list of schedulers, got "
                        f"{type(schedulers).__name__}")
    if not schedulers:
        raise ValueError(f"{owner} expects at least one scheduler, got none")
    for i, s in enumerate(schedulers):
        if not isinstance(s, LRScheduler):
            raise TypeError(f"{owner}: entry {i} is a {type(s).__name__}, not a scheduler")
        if isinstance(s, ReduceLROnPlateau):
            raise ValueError(f"{owner} cannot drive ReduceLROnPlateau (entry {i}): its step() "
                             f"needs the metric")
        if s.optimizer is not optimizer:
            raise ValueError(f"{owner}: entry {i} ({type(s).__name__}) schedules another "
                             f"optimizer than the one given")


class _Composite(LRScheduler):
    """Shared state handling of SequentialLR and ChainedScheduler (children nested)."""

    _transient = LRScheduler._transient + ("_schedulers",)

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state = dict(self._checked_state(state_dict))
        children = state.pop("_schedulers")
        if len(children) != len(self._schedulers):
            raise ValueError(f"{type(self).__name__}.load_state_dict: {len(children)} saved "
                             f"schedulers for {len(self._schedulers)}")
        self.__dict__.update(copy.deepcopy(state))
        for s, child in zip(self._schedulers, children):
            s.load_state_dict(child)

    def get_lr(self):
        raise NotImplementedError(f"{type(self).__name__} delegates to its schedulers; read "
                                  f"the rates with get_last_lr()")


class SequentialLR(_Composite):
    """Run schedulers one after another, switching at the given milestone epochs.

    Scheduler ``i`` acts on epochs ``[milestones[i-1], milestones[i])``. At a
    milestone the incoming scheduler restarts at its own epoch 0 (closed form
    where it has one), from the groups' ``initial_lr``.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer all the schedulers were built on.
    schedulers : list of LRScheduler
    milestones : list of int
        ``len(schedulers) - 1`` strictly increasing epochs (>= 0).
    last_epoch : int, default -1

    Notes
    -----
    Building the children already stepped them once; the constructor resets the
    lrs to ``initial_lr``, rewinds every child's ``last_epoch`` by one and
    re-runs the first child's initial step, as PyTorch does.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        owner = "SequentialLR"
        _check_optimizer(owner, optimizer)
        _check_children(owner, schedulers, optimizer)
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__len__"):
            raise TypeError(f"{owner}: milestones must be a list of epochs, got {milestones!r}")
        milestones = [_int(owner, "milestone", m, 0) for m in milestones]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"{owner} needs one milestone fewer than schedulers, got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"{owner}: milestones must be strictly increasing, got "
                             f"{milestones}")
        self._schedulers = list(schedulers)
        self._milestones = milestones
        self.last_epoch = _int(owner, "last_epoch", last_epoch, -1) + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._rewind(self)
        first = self._schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    @staticmethod
    def _rewind(sched):
        """Undo the construction step of every (nested) child scheduler."""
        children = sched.__dict__.get("_schedulers")
        if children is not None:
            for child in children:
                SequentialLR._rewind(child)
        elif hasattr(sched, "last_epoch"):
            sched.last_epoch -= 1

    def step(self):
        """Advance one epoch with the scheduler in charge of it."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    """Step several schedulers together, so their chainable factors multiply.

    Parameters
    ----------
    schedulers : list of LRScheduler
        Schedulers of one optimizer, stepped in this order.
    optimizer : Optimizer, optional
        Defaults to the first scheduler's.
    """

    def __init__(self, schedulers, optimizer=None):
        if isinstance(schedulers, (list, tuple)) and schedulers and optimizer is None:
            optimizer = getattr(schedulers[0], "optimizer", None)
        _check_children("ChainedScheduler", schedulers, optimizer)
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = _group_lrs(optimizer)

    def step(self):
        """Step every scheduler once, in order."""
        for s in self._schedulers:
            s.step()
        self._last_lr = _group_lrs(self.optimizer)


#: PyTorch's old name of the base class.
_LRScheduler = LRScheduler
