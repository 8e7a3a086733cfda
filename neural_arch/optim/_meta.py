"""What the meta-optimizers share: a base optimizer held and delegated to.

SAM, ASAM, Lookahead, PCGrad and GradNorm change which gradient the update sees,
or where the parameters stand when it is taken, but never the update rule itself:
each holds a base optimizer (``self.base_optimizer``) and calls its ``step``.
:class:`MetaOptimizer` gives them one contract:

* ``param_groups`` *is* the base's list (the same dicts), so a scheduler,
  ``optimizer.lr = ...`` or ``add_param_group`` acts on the base. A wrapper's own
  per-group hyper-parameters (SAM's ``rho``) are entries of those same dicts; one
  whose name the base already uses (Adadelta's ``rho``) is refused, since the two
  would overwrite each other.
* ``zero_grad`` and ``step_count`` are the base's: ``step_count`` counts the
  base's updates, however the wrapper drives them (SAM's ``second_step``).
* ``state`` holds the wrapper's own per-parameter state (SAM's saved weights,
  Lookahead's slow weights); the base's state is ``base_optimizer.state``.
* ``state_dict()`` is the base's state dict plus one entry named after the
  wrapper (``'sam'``, ``'lookahead'``, ...) with its own state, so a resumed run
  continues bit for bit, and wrappers nest (``Lookahead(SAM(...))``).
  ``load_state_dict`` checks everything, the base's part included, before it
  changes anything.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Mapping

from ..core.tensor import Tensor
from .optimizer import Optimizer, _as_groups, _is_array, _param_list

__all__ = ["MetaOptimizer", "build_base", "task_losses"]


def build_base(owner, params, base_optimizer, base_kwargs):
    """The base optimizer of a wrapper: built from a class, or given built.

    Parameters
    ----------
    owner : str
        The wrapper's name, for error messages.
    params : iterable of Parameter or parameter groups, or None
        What to optimize. With an already built ``base_optimizer`` it may be None;
        otherwise it must hold the same parameters as that optimizer.
    base_optimizer : Optimizer subclass or Optimizer
        A class, built here as ``base_optimizer(params, **base_kwargs)``, or an
        instance, used as it is.
    base_kwargs : dict
        Keyword arguments of the class (``lr=...``).
    """
    if isinstance(base_optimizer, Optimizer):
        if base_kwargs:
            raise TypeError(f"{owner}: base_optimizer is an already built "
                            f"{type(base_optimizer).__name__}, so its hyper-parameters cannot "
                            f"be given here (got {', '.join(sorted(base_kwargs))}); set them "
                            f"when building it, or pass the class instead")
        if params is not None:
            given = [p for g in _as_groups(params, owner) for p in _param_list(g["params"], 0)[0]]
            held = [p for g in base_optimizer.param_groups for p in g["params"]]
            if {id(p) for p in given} != {id(p) for p in held}:
                raise ValueError(f"{owner}: params are not the parameters of the given "
                                 f"{type(base_optimizer).__name__} ({len(given)} given, "
                                 f"{len(held)} held by it); pass the same parameters, or "
                                 f"params=None")
        return base_optimizer
    if isinstance(base_optimizer, type) and issubclass(base_optimizer, Optimizer):
        if params is None:
            raise TypeError(f"{owner} needs params to build its {base_optimizer.__name__}")
        return base_optimizer(params, **base_kwargs)
    hint = ""
    if isinstance(base_optimizer, (int, float)) and not isinstance(base_optimizer, bool):
        hint = f"; to set the learning rate write lr={base_optimizer!r}"
    raise TypeError(f"{owner}: base_optimizer must be an optimizer class (such as SGD or "
                    f"Adam) or an optimizer built on the same parameters, got "
                    f"{base_optimizer!r} ({type(base_optimizer).__name__}){hint}")


def task_losses(losses, owner):
    """Check the per-task losses given to ``step`` and return them as a list."""
    if isinstance(losses, Tensor):
        losses = [losses]
    elif losses is None or callable(losses) or isinstance(losses, (str, bytes, Mapping)) \
            or not hasattr(losses, "__iter__"):
        raise TypeError(f"{owner}.step expects a list of scalar task losses, such as "
                        f"step([loss1, loss2]), got {type(losses).__name__}")
    losses = list(losses)
    if not losses:
        raise ValueError(f"{owner}.step got an empty list of task losses")
    for i, loss in enumerate(losses):
        if not isinstance(loss, Tensor):
            raise TypeError(f"{owner}.step: task loss {i} must be a Tensor, got "
                            f"{type(loss).__name__}")
        if loss.size != 1:
            raise ValueError(f"{owner}.step: task loss {i} must be a scalar, got shape "
                             f"{tuple(loss.shape)} (reduce it, e.g. with .mean())")
        if not loss.requires_grad:
            raise ValueError(f"{owner}.step: task loss {i} does not require grad (was it "
                             f"computed under no_grad, or from detached tensors?)")
    return losses


class MetaOptimizer(Optimizer):
    """Base class of the optimizers that wrap a base optimizer (see the module docstring).

    Subclasses call ``super().__init__(base, defaults)`` with their own per-group
    hyper-parameters (validated by the class's ``hyperparameters`` table) and may
    override :meth:`_param_state_to_save`, :meth:`_extra_state`,
    :meth:`_check_extra` and :meth:`_commit_extra` to put more in the state dict.

    Parameters
    ----------
    base : Optimizer
        The optimizer whose update is used.
    defaults : dict, optional
        The wrapper's own per-group hyper-parameters and their defaults.
    """

    def __init__(self, base, defaults=None):
        if not isinstance(base, Optimizer):
            raise TypeError(f"{type(self).__name__} wraps an optimizer instance, got "
                            f"{type(base).__name__}")
        own = self.validate_group(dict(defaults or {}))
        own = {**(defaults or {}), **own}
        clash = sorted(set(own) & set(base.defaults))
        if clash:
            raise ValueError(f"{type(self).__name__} cannot wrap {type(base).__name__}: both "
                             f"have a per-group hyper-parameter named "
                             f"{', '.join(map(repr, clash))}, which would overwrite each other")
        self.base_optimizer = None
        # Optimizer.__init__ sets up hooks, counters and state, and validates the
        # wrapper's entries of every group; the groups themselves stay the base's.
        super().__init__([dict(g) for g in base.param_groups], own)
        for mine, shared in zip(self.param_groups, base.param_groups):
            for key in own:
                shared[key] = mine[key]
        self.param_groups = base.param_groups
        self._own_defaults = own
        self.defaults = {**base.defaults, **own}
        self.base_optimizer = base

    # ---- delegation -------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a group to the base optimizer (and so to this one), with this one's defaults."""
        if self.base_optimizer is None:          # during __init__
            return Optimizer.add_param_group(self, param_group)
        if not isinstance(param_group, Mapping):
            raise TypeError(f"a parameter group must be a dict with a 'params' entry, got "
                            f"{type(param_group).__name__}")
        group = dict(param_group)
        for key, value in self._own_defaults.items():
            group.setdefault(key, value)
        group.update(self.validate_group(group))
        self.base_optimizer.add_param_group(group)

    def zero_grad(self, set_to_none=True):
        """Reset the gradients (the base optimizer's ``zero_grad``)."""
        self.base_optimizer.zero_grad(set_to_none)

    # The step count is the base's: every use of it in the Optimizer machinery (and
    # step_count) sees the number of updates the base has made, however the wrapper
    # drives them (SAM's second_step); the base class's own increments are ignored.
    @property
    def _step_count(self):
        base = self.__dict__.get("base_optimizer")
        return 0 if base is None else base._step_count

    @_step_count.setter
    def _step_count(self, value):
        pass

    def _params(self):
        return [p for g in self.param_groups for p in g["params"]]

    # ---- state_dict ---------------------------------------------------------------
    @property
    def state_key(self) -> str:
        """The entry of the state dict holding this wrapper's own state."""
        return type(self).__name__.lower()

    def _param_state_to_save(self, param, state):
        """The part of a parameter's own state that goes into the state dict (override)."""
        return state

    def _extra_state(self):
        """More of the wrapper's state, as plain data (override)."""
        return {}

    def _check_extra(self, saved):
        """Validate the extra state of a loaded dict; return what to commit (override)."""
        return None

    def _commit_extra(self, prepared):
        """Install what :meth:`_check_extra` prepared (override)."""

    def state_dict(self):
        """The base's state dict plus this wrapper's own state under :attr:`state_key`.

        Returns
        -------
        dict
            ``{'state', 'param_groups', 'step_count'}`` of the base optimizer (the
            groups include this wrapper's hyper-parameters) and
            ``{state_key: {'state': {index: {key: array}}, ...}}``.
        """
        sd = self.base_optimizer.state_dict()
        own = {}
        for i, p in enumerate(self._params()):
            s = self.state.get(p)
            if s:
                s = self._param_state_to_save(p, s)
            if s:
                own[i] = {k: v.copy() if _is_array(v) else copy.deepcopy(v)
                          for k, v in s.items()}
        sd[self.state_key] = {"state": own, **self._extra_state()}
        return sd

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict`; on any mismatch raise and change nothing.

        Raises
        ------
        TypeError, ValueError
            Not a state dict of this kind of wrapper, invalid hyper-parameters, or
            any mismatch the base optimizer's ``load_state_dict`` finds.
        """
        name, key = type(self).__name__, self.state_key
        if not isinstance(state_dict, Mapping) or "param_groups" not in state_dict:
            raise TypeError(f"{name}.load_state_dict expects a dict from {name}.state_dict(), "
                            f"got {type(state_dict).__name__}")
        own = state_dict.get(key)
        if not isinstance(own, Mapping) or not isinstance(own.get("state"), Mapping):
            raise ValueError(f"the state dict has no {key!r} entry: was it saved from another "
                             f"optimizer than {name}?")
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, (list, tuple)) or len(saved_groups) != len(
                self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"this {name} has {len(self.param_groups)}")
        checked, by_index = [], {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, Mapping) or "params" not in saved:
                raise ValueError(f"parameter group {i} of the loaded state dict is not a dict "
                                 f"with a 'params' entry")
            missing = sorted(set(self._own_defaults) - set(saved))
            if missing:
                raise ValueError(f"parameter group {i} of the loaded state dict lacks "
                                 f"{missing}; was it saved from another optimizer than {name}?")
            checked.append(self.validate_group({k: saved[k] for k in self._own_defaults}))
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"parameter group {i} of the loaded state dict has "
                                 f"{len(saved['params'])} parameters, this {name}'s has "
                                 f"{len(group['params'])}")
            by_index.update((int(k), p) for k, p in zip(saved["params"], group["params"]))
        new_state = defaultdict(dict)
        for k, saved in own["state"].items():
            p = by_index.get(int(k))
            if p is None:
                raise ValueError(f"the loaded {key!r} state has parameter {k}, but the groups "
                                 f"list only {sorted(by_index)}")
            new_state[p] = {sk: self._load_value(sk, v, p, k) for sk, v in saved.items()}
        prepared = self._check_extra(own)
        base_part = {k: v for k, v in state_dict.items() if k != key}
        self.base_optimizer.load_state_dict(base_part)     # checks, then commits, or raises
        for group, values in zip(self.param_groups, checked):
            group.update(values)
        self.state = new_state
        self._commit_extra(prepared)

    def __repr__(self):
        lines = Optimizer.__repr__(self).split("\n")
        lines[0] = f"{type(self).__name__} (base_optimizer: {type(self.base_optimizer).__name__}"
        settings = self._repr_settings()
        if settings:
            lines.insert(1, "    " + ", ".join(f"{k}={v!r}" for k, v in settings.items()))
        return "\n".join(lines)

    def _repr_settings(self):
        """Settings that are not per-group entries, for ``repr`` (override)."""
        return {}
