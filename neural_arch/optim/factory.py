r"""Builders and configs: one registry of names that every dialect maps onto.

Optimizers and schedulers can be named instead of imported. Every entry point
below looks names up in the same two registries, so ``'adamw'``, ``'AdamW'``,
``'adam_w'`` and ``'adam-w'`` are one optimizer everywhere (case, ``_``, ``-``
and spaces are ignored), and an unknown name is an error that lists the known
ones.

======================================  ===================================================
:func:`create_optimizer`                ``(params, optimizer_name=, lr=, ...)`` or
                                        ``(model=, optimizer_type=, learning_rate=, ...)``
:func:`create_scheduler`                ``(optimizer, scheduler_name= | scheduler_type=,
                                        epochs=, steps_per_epoch=, ...)``
:func:`create_optimizer_and_scheduler`  both at once, the keyword arguments split
                                        between the two by name
:func:`create_optimizer_with_groups`    no weight decay for parameters whose name
                                        contains a ``no_decay`` entry
:class:`OptimizerFactory`               ``create_optimizer(model=, config=)``,
                                        ``create_optimizer_and_scheduler(model=, config=)``
:func:`optimizer_builder`               seed 002's Keras dialect (``beta_1``,
                                        ``epsilon``, ``rho``, clipping keys), Keras defaults
:func:`build_optimizer`                 from a config dict, such as :func:`get_config`
                                        returns
:func:`build_scheduler`                 the same for a scheduler
:func:`load_config`                     reads a YAML config file with a safe loader
:func:`save_config`                     writes a config as a YAML file
======================================  ===================================================

Names
-----
Optimizers: ``sgd``, ``adam``, ``adamw``, ``adamax``, ``nadam``, ``radam``,
``lion``, ``lamb``, ``lars``, ``rmsprop``, ``adagrad``, ``adadelta``, ``rprop``,
``asgd``, ``lbfgs``, ``shampoo``, ``sam``, ``asam``, ``lookahead``, ``pcgrad``,
``gradnorm``, ``cmaes``, ``differential_evolution``, ``particle_swarm``,
``mixed_precision``, ``distributed``; each class name works too, and a few
aliases (``pso``, ``de``, ``amp``, ...; see the registry table below and
:func:`available_optimizers`). Schedulers: ``step``, ``multistep``,
``exponential``, ``cosine``, ``cosine_warm_restarts``, ``onecycle``, ``plateau``,
``warmup_cosine``, ``linear``, ``polynomial``, ``constant``, ``cyclic``,
``sequential``, ``chained``; ``'none'`` means no scheduler. LambdaLR and
MultiplicativeLR are not registered: a config cannot hold their functions.
:func:`register_optimizer` and :func:`register_scheduler` add more.

Keys and values
---------------
Keyword arguments and config keys are the class's PyTorch names plus the
documented aliases (``learning_rate``, ``epsilon``, ``beta1``/``beta_1``, ...;
scheduler keys also match case-insensitively, so ``t_max`` is ``T_max``). Every
optimizer also takes ``max_grad_norm`` (:attr:`Optimizer.max_grad_norm`),
``gradient_clipping`` (a section, below) and ``param_groups`` (in configs). A
wrapper (SAM, Lookahead, ...) takes ``base_optimizer`` (a name, a config dict, a
class or a built optimizer) and, besides its own arguments, its base
optimizer's. An unknown key, two spellings of one key, or a value of the wrong
type (judged by the argument's default: a number, true/false, a list, a
string) is a :class:`ConfigError` that names the key and lists the valid ones;
values out of range are reported by the class itself, prefixed with where the
value came from.

YAML 1.1 (PyYAML) reads ``1e-4`` -- a number without a decimal point -- as a
string. :func:`load_config` and the config entry points
(:class:`OptimizerFactory`, :func:`build_optimizer`, :func:`build_scheduler`,
:func:`optimizer_builder`) turn a string in exponent notation into its number, so
a dict from a plain ``yaml.safe_load`` works too. No other string becomes a
number.

Schedulers and training length
------------------------------
``epochs`` and ``steps_per_epoch`` (default 1) are accepted by every scheduler.
Their product fills the length argument when it is not given: ``T_max``
(``cosine``), ``T_0`` (``cosine_warm_restarts``, one cycle over the whole run),
``total_steps`` (``onecycle``), ``max_epochs`` (``warmup_cosine``),
``total_iters`` (``linear``, ``polynomial``); the scheduler is then stepped once
per counted step. Arguments given explicitly are in the scheduler's own steps.
``onecycle`` without ``max_lr`` peaks at the optimizer's learning rate.

Gradient clipping
-----------------
A ``gradient_clipping`` section (seed 001) takes ``enabled`` and the arguments of
:class:`~neural_arch.optim.clipping.GradientClipper` (``max_norm``,
``norm_type``, ``adaptive``, ``clip_factor``, ``eps``, ``clip_value``,
``per_tensor_max_norm``, ``error_if_nonfinite``), also under the Keras names
(``clipvalue``, ``clipnorm``, ``global_clipnorm``) and seed 002's
(``gradient_clipping_by_value``, ``..._by_norm_local``, ``..._by_norm``). The
built optimizer then clips before every update, in the fixed order value,
per-tensor norm, adaptive, global norm, with
:func:`~neural_arch.optim.clipping.apply_gradient_clipping` (or the
:class:`GradientClipper` when ``adaptive``, ``norm_type`` or
``error_if_nonfinite`` need it). With ``step(closure)`` the gradients the closure
computes are clipped each time it returns. A wrapper's clipping acts on its
base optimizer, which takes the update.

Configs of built objects
------------------------
:func:`get_config` gives the config of an optimizer or scheduler in canonical
form: ``type`` (the registry name) and every constructor argument, defaults
filled in, tuples as lists; for optimizers also ``max_grad_norm`` and
``gradient_clipping`` when set, ``param_groups`` when there are several groups
or a group overrides a hyper-parameter (parameters named by their dotted names
when the optimizer was given names, else by their position), and a wrapper's
``base_optimizer`` as a nested config. :func:`build_optimizer` and
:func:`build_scheduler` build an equal object from it (same class,
hyper-parameters and groups), and :func:`get_config` of that gives the same
config back. A config is the recipe an object was built from, kept when the
factory builds it, so a scheduler moving ``lr`` or momentum later does not change
it; the state goes in ``state_dict()``. For objects built by hand the recipe is
read off the object.
"""
from __future__ import annotations

import copy
import functools
import importlib
import inspect
import numbers
import re
import weakref
from collections.abc import Mapping

import numpy as np
import yaml

from ..core.tensor import Parameter, Tensor
from . import lr_scheduler as _lrs
from ._args import ALIASES, resolve_aliases
from ._meta import MetaOptimizer
from .clipping import GradientClipper, apply_gradient_clipping
from .gradient_free import GradientFreeOptimizer
from .optimizer import Optimizer, required
from .schedules import LearningRateSchedule, learning_rate_schedule_builder

__all__ = ["ConfigError", "create_optimizer", "create_scheduler",
           "create_optimizer_and_scheduler", "create_optimizer_with_groups",
           "OptimizerFactory", "optimizer_builder", "DeferredOptimizer", "build_optimizer",
           "build_scheduler", "get_config", "load_config", "save_config",
           "register_optimizer", "register_scheduler", "available_optimizers",
           "available_schedulers", "get_optimizer_class", "get_scheduler_class"]

_EMPTY = inspect.Parameter.empty


class ConfigError(ValueError, TypeError):
    """A name, key or value the builders cannot use.

    Raised for an unknown optimizer or scheduler name, an unknown or duplicated
    key, a value of the wrong type or a missing required value; the message
    names it and lists what is valid. It is both a ``ValueError`` and a
    ``TypeError``, so either ``except`` catches it.
    """


def _context(exc, where):
    """``exc`` of the same type with ``where`` in front of its message."""
    try:
        new = type(exc)(f"{where}: {exc}")
    except Exception:                               # an exception type with other arguments
        return exc
    return new.with_traceback(exc.__traceback__)


def _listing(names):
    return ", ".join(sorted(names))


# ---- the registries ---------------------------------------------------------------------

def _normal(name):
    """The lookup key of a name: lower case without spaces, ``_`` and ``-``."""
    return re.sub(r"[\s_\-]+", "", name.lower())


class _Entry:
    """One registered name: its class (or the name of a class of neural_arch.optim)."""

    __slots__ = ("name", "target", "aliases", "extra")

    def __init__(self, name, target, aliases, extra):
        self.name, self.target, self.aliases, self.extra = name, target, tuple(aliases), extra

    def resolve(self):
        """The class; None while a built-in entry's module does not exist."""
        if not isinstance(self.target, str):
            return self.target
        module, _, cls = self.target.partition(":")
        full = f"neural_arch.optim.{module}"
        try:
            return getattr(importlib.import_module(full), cls, None)
        except ModuleNotFoundError as exc:
            if exc.name == full:
                return None
            raise


class _Registry:
    """Names and aliases -> classes, for one kind of object (optimizer or scheduler)."""

    def __init__(self, noun):
        self.noun = noun
        self.entries = {}           # canonical name -> _Entry
        self.keys = {}              # normalized name or alias -> canonical name

    def add(self, name, target, aliases=(), extra=None, replace=False):
        if not isinstance(name, str) or not _normal(name):
            raise ConfigError(f"a {self.noun} name must be a non-empty string, got {name!r}")
        if not isinstance(target, str) and not isinstance(target, type):
            raise ConfigError(f"register_{self.noun} needs a class, got {target!r}")
        for alias in aliases:
            if not isinstance(alias, str) or not _normal(alias):
                raise ConfigError(f"an alias must be a non-empty string, got {alias!r}")
        cls_name = target.partition(":")[2] if isinstance(target, str) else target.__name__
        keys = {_normal(name), _normal(cls_name), *(_normal(a) for a in aliases)}
        taken = {k: self.keys[k] for k in keys if k in self.keys and self.keys[k] != name}
        if taken and not replace:
            raise ConfigError(f"{self.noun} name(s) {sorted(taken)} already stand for "
                              f"{sorted(set(taken.values()))}; pass replace=True to take them")
        if name in self.entries:
            if not replace:
                raise ConfigError(f"a {self.noun} named {name!r} is already registered; pass "
                                  f"replace=True to replace it")
            self.remove(name)
        for key, other in taken.items():
            if other in self.entries:
                self.remove(other)
        self.entries[name] = _Entry(name, target, aliases, extra)
        for key in keys:
            self.keys[key] = name

    def remove(self, name):
        self.entries.pop(name, None)
        for key in [k for k, v in self.keys.items() if v == name]:
            del self.keys[key]

    def names(self):
        return sorted(n for n, e in self.entries.items() if e.resolve() is not None)

    def lookup(self, name, where):
        """(entry, class) of ``name``; a clear error for a bad or unknown name."""
        if isinstance(name, type):
            found = self.name_of(name)
            if found is None:
                raise ConfigError(f"{where}: {name.__name__} is not a registered {self.noun}; "
                                  f"register it with register_{self.noun}()")
            name = found
        if not isinstance(name, str):
            raise ConfigError(f"{where}: the {self.noun} must be given by name (a string), got "
                              f"{name!r} ({type(name).__name__})")
        canonical = self.keys.get(_normal(name))
        entry = self.entries.get(canonical)
        cls = entry.resolve() if entry is not None else None
        if cls is None:
            hint = ""
            if self.noun == "scheduler" and name in LearningRateSchedule._registry:
                hint = (f" ({name!r} is a step-based schedule: build it with "
                        f"learning_rate_schedule_builder and give it to the optimizer as lr)")
            raise ConfigError(f"{where}: unknown {self.noun} {name!r}; known {self.noun}s: "
                              f"{', '.join(self.names())}{hint}")
        return entry, cls

    def name_of(self, cls):
        for name, entry in self.entries.items():
            if entry.resolve() is cls:
                return name
        return None


_OPTIMIZERS = _Registry("optimizer")
_SCHEDULERS = _Registry("scheduler")

# canonical name, 'module:Class' in neural_arch.optim, aliases (the class name is one too)
for _name, _cls, _aliases in (
        ("sgd", "sgd:SGD", ()),
        ("adam", "adam:Adam", ()),
        ("adamw", "adamw:AdamW", ("decoupled_adam",)),
        ("adamax", "adamax:Adamax", ()),
        ("nadam", "nadam:NAdam", ("nesterov_adam",)),
        ("radam", "radam:RAdam", ("rectified_adam",)),
        ("lion", "lion:Lion", ()),
        ("lamb", "lamb:LAMB", ()),
        ("lars", "lars:LARS", ()),
        ("rmsprop", "rmsprop:RMSprop", ()),
        ("adagrad", "adagrad:Adagrad", ()),
        ("adadelta", "adadelta:Adadelta", ()),
        ("rprop", "rprop:Rprop", ("resilient_backprop",)),
        ("asgd", "asgd:ASGD", ("averaged_sgd",)),
        ("lbfgs", "lbfgs:LBFGS", ()),
        ("shampoo", "shampoo:Shampoo", ()),
        ("sam", "sam:SAM", ("sharpness_aware_minimization",)),
        ("asam", "sam:ASAM", ("adaptive_sam",)),
        ("lookahead", "lookahead:Lookahead", ()),
        ("pcgrad", "pcgrad:PCGrad", ("gradient_surgery",)),
        ("gradnorm", "gradnorm:GradNorm", ()),
        ("cmaes", "cmaes:CMAES", ("cma",)),
        ("differential_evolution", "differential_evolution:DifferentialEvolution", ("de",)),
        ("particle_swarm", "particle_swarm:ParticleSwarmOptimization", ("pso",)),
        ("mixed_precision", "mixed_precision:MixedPrecisionOptimizer", ("amp",)),
        ("distributed", "distributed:DistributedOptimizer", ("zero",)),
):
    _OPTIMIZERS.add(_name, _cls, _aliases)

# canonical name, 'module:Class', aliases, the argument that epochs can fill
for _name, _cls, _aliases, _length in (
        ("step", "lr_scheduler:StepLR", (), None),
        ("multistep", "lr_scheduler:MultiStepLR", (), None),
        ("exponential", "lr_scheduler:ExponentialLR", ("exp",), None),
        ("cosine", "lr_scheduler:CosineAnnealingLR", ("cosine_annealing",), "T_max"),
        ("cosine_warm_restarts", "lr_scheduler:CosineAnnealingWarmRestarts",
         ("cosine_restarts", "warm_restarts", "sgdr"), "T_0"),
        ("onecycle", "lr_scheduler:OneCycleLR", ("1cycle",), "total_steps"),
        ("plateau", "lr_scheduler:ReduceLROnPlateau", ("reduce_on_plateau",), None),
        ("warmup_cosine", "lr_scheduler:WarmupCosineLR", ("cosine_warmup",), "max_epochs"),
        ("linear", "lr_scheduler:LinearLR", (), "total_iters"),
        ("polynomial", "lr_scheduler:PolynomialLR", ("poly",), "total_iters"),
        ("constant", "lr_scheduler:ConstantLR", (), None),
        ("cyclic", "lr_scheduler:CyclicLR", ("clr",), None),
        ("sequential", "lr_scheduler:SequentialLR", (), None),
        ("chained", "lr_scheduler:ChainedScheduler", ("chain",), None),
):
    _SCHEDULERS.add(_name, _cls, _aliases, extra=_length)


def register_optimizer(name, cls, aliases=(), *, keras_defaults=None, replace=False):
    """Make an optimizer class known to every builder under ``name`` (and ``aliases``).

    Parameters
    ----------
    name : str
        Canonical name (what :func:`get_config` writes as ``type``).
    cls : type
        An :class:`~neural_arch.optim.Optimizer` subclass.
    aliases : sequence of str
        Further names; the class name is always one.
    keras_defaults : dict, optional
        Defaults (PyTorch argument names) that :func:`optimizer_builder` uses
        instead of the class's.
    replace : bool, default False
        Allow taking over a name or alias already registered.
    """
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise ConfigError(f"register_optimizer needs an Optimizer subclass, got {cls!r}")
    _OPTIMIZERS.add(name, cls, aliases, replace=replace)
    if keras_defaults is not None:
        _KERAS_DEFAULTS[name] = dict(keras_defaults)


def register_scheduler(name, cls, aliases=(), *, length_argument=None, replace=False):
    """Make a scheduler class known to every builder under ``name`` (and ``aliases``).

    Parameters
    ----------
    name : str
        Canonical name.
    cls : type
        A :class:`~neural_arch.optim.lr_scheduler.LRScheduler` subclass whose
        ``__init__`` takes the optimizer first.
    aliases : sequence of str
    length_argument : str, optional
        The argument that ``epochs * steps_per_epoch`` fills when it is not given.
    replace : bool, default False
    """
    if not (isinstance(cls, type) and issubclass(cls, _lrs.LRScheduler)):
        raise ConfigError(f"register_scheduler needs an LRScheduler subclass, got {cls!r}")
    _SCHEDULERS.add(name, cls, aliases, extra=length_argument, replace=replace)


def available_optimizers():
    """The canonical optimizer names, sorted."""
    return _OPTIMIZERS.names()


def available_schedulers():
    """The canonical scheduler names, sorted."""
    return _SCHEDULERS.names()


def get_optimizer_class(name):
    """The optimizer class registered under ``name`` (any alias, any case)."""
    return _OPTIMIZERS.lookup(name, "get_optimizer_class")[1]


def get_scheduler_class(name):
    """The scheduler class registered under ``name`` (any alias, any case)."""
    return _SCHEDULERS.lookup(name, "get_scheduler_class")[1]


# ---- signatures, values -------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _signature(cls):
    """({argument: default or _EMPTY}, takes **kwargs) of ``cls.__init__`` (self dropped)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    args = {p.name: p.default for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                             p.KEYWORD_ONLY)}
    return args, any(p.kind is p.VAR_KEYWORD for p in params)


_EXPONENT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_NAME_KEYS = ("type", "params", "shared_parameters")


def _coerce(value, key=None):
    """A config with YAML 1.1's unread exponent numbers (``'1e-4'``) made numbers."""
    if key in _NAME_KEYS:
        return value
    if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, Mapping):
        return {k: _coerce(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce(v) for v in value]
    return value


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _check_type(where, key, value, default, per_group=False):
    """``value`` if its type suits an argument whose default is ``default``; else ConfigError."""
    if default is _EMPTY or default is None or default is required or isinstance(default, type):
        return value
    if isinstance(default, (bool, np.bool_)):
        if isinstance(value, (bool, np.bool_)):
            return value
        expected = "true or false"
    elif _is_number(default):
        if _is_number(value) or per_group and isinstance(value, (list, tuple)) \
                and value and all(_is_number(v) for v in value):
            return value
        expected = "a number" + (" (or a list of one per parameter group)" if per_group else "")
    elif isinstance(default, (tuple, list)):
        if isinstance(value, (tuple, list)):
            return value
        expected = f"a list such as {list(default)}"
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
        expected = "a string"
    else:
        return value
    raise ConfigError(f"{where}: {key!r} must be {expected}, got {value!r} "
                      f"({type(value).__name__})")


def _export(value):
    """A value as plain config data: lists for tuples, Python numbers for NumPy scalars."""
    if isinstance(value, LearningRateSchedule):
        return value.to_config()
    if isinstance(value, (tuple, list)):
        return [_export(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _export(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return copy.deepcopy(value)


def _collapse(values):
    """One value for all groups when they agree, else the list."""
    values = [_export(v) for v in values]
    return values[0] if all(v == values[0] for v in values) else values


# ---- what to optimize ------------------------------------------------------------------------

def _is_module(obj):
    return callable(getattr(obj, "named_parameters", None)) and not isinstance(obj, Tensor)


class _Params:
    """The ``params`` argument as given, with the parameters findable by name or position."""

    def __init__(self, params, where):
        self.groups_given = False
        self.named = None                   # name -> Parameter, when names are known
        if params is None:
            raise ConfigError(f"{where} needs the parameters to optimize: give params (such "
                              f"as model.parameters()) or model=")
        if _is_module(params):
            pairs = list(params.named_parameters())
            self.arg, self.named, self.flat = pairs, dict(pairs), [p for _, p in pairs]
            return
        if isinstance(params, Tensor) or isinstance(params, (str, bytes)) or not (
                isinstance(params, Mapping) or hasattr(params, "__iter__")):
            raise ConfigError(f"{where} expects an iterable of Parameters, a dict name -> "
                              f"Parameter, parameter groups or a model, got "
                              f"{type(params).__name__}")
        if isinstance(params, Mapping):
            if "params" in params and not all(isinstance(v, Tensor) for v in params.values()):
                items = [params]
            else:
                items = list(params.items())
        else:
            items = list(params)
        if items and all(isinstance(x, Mapping) for x in items):
            self.arg, self.groups_given, self.flat = [], True, []
            for g in items:
                g = dict(g)
                ps = g.get("params", [])
                if isinstance(ps, Tensor):
                    ps = [ps]
                elif isinstance(ps, Mapping):
                    ps = list(ps.items())
                elif hasattr(ps, "__iter__") and not isinstance(ps, (set, frozenset, str)):
                    ps = list(ps)           # a generator is read once: keep the list
                if "params" in g:
                    g["params"] = ps
                self.arg.append(g)
                self.flat += [p[1] if isinstance(p, tuple) else p for p in ps]
            return
        if items and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str)
                         for x in items):
            self.arg, self.named, self.flat = items, dict(items), [p for _, p in items]
            return
        self.arg, self.flat = items, items

    def select(self, ids, where):
        """The group entry for a list of parameter names or positions."""
        if isinstance(ids, (str, int)) or not isinstance(ids, (list, tuple)):
            ids = [ids]
        if ids and all(isinstance(i, str) for i in ids):
            if self.named is None:
                raise ConfigError(f"{where} names parameters ({ids[0]!r}, ...); pass the model "
                                  f"or its named_parameters() so they can be found")
            missing = [i for i in ids if i not in self.named]
            if missing:
                raise ConfigError(f"{where}: no parameter named {missing[0]!r}; the parameters "
                                  f"are {_listing(self.named)}")
            return [(i, self.named[i]) for i in ids]
        if ids and all(isinstance(i, numbers.Integral) and not isinstance(i, bool)
                       for i in ids):
            bad = [i for i in ids if not 0 <= i < len(self.flat)]
            if bad:
                raise ConfigError(f"{where}: parameter position {bad[0]} is out of range (there "
                                  f"are {len(self.flat)} parameters)")
            if self.named is not None:
                names = list(self.named)
                return [(names[i], self.flat[i]) for i in ids]
            return [self.flat[i] for i in ids]
        raise ConfigError(f"{where}: 'params' of a parameter group must be a non-empty list of "
                          f"parameter names or of positions, got {ids!r}")


def _param_ids(params, optimizer):
    """Names of ``params`` if the optimizer's groups carry names, else their positions."""
    groups = optimizer.param_groups
    if all("param_names" in g for g in groups):
        names = {id(p): n for g in groups for p, n in zip(g["params"], g["param_names"])}
        return [names[id(p)] for p in params]
    position = {id(p): i for i, p in enumerate(p for g in groups for p in g["params"])}
    return [position[id(p)] for p in params]


# ---- optimizers: keys ------------------------------------------------------------------------

#: Seed 002's defaults where it names them, else Keras's (PyTorch argument names).
_KERAS_DEFAULTS = {
    "adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7, "amsgrad": False,
             "weight_decay": 0.0},
    "adamw": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7, "amsgrad": False,
              "weight_decay": 0.004},
    "rmsprop": {"lr": 1e-3, "alpha": 0.9, "momentum": 0.0, "eps": 1e-7, "centered": False},
    "adadelta": {"lr": 1e-3, "rho": 0.9, "eps": 1e-7},
    "adagrad": {"lr": 1e-3, "initial_accumulator_value": 0.1, "eps": 1e-7},
    "adamax": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7},
    "nadam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7},
    "sgd": {"lr": 1e-2, "momentum": 0.0, "nesterov": False},
    "lion": {"lr": 1e-3, "betas": (0.9, 0.99)},
}

#: Keras argument names that differ from ours, per optimizer (Keras name -> ours).
_KERAS_NAMES = {"rmsprop": {"rho": "alpha"}}

_CLIP_NAMES = {"clipvalue": "clip_value", "clipnorm": "per_tensor_max_norm",
               "global_clipnorm": "max_norm", "gradient_clipping_by_value": "clip_value",
               "gradient_clipping_by_norm_local": "per_tensor_max_norm",
               "gradient_clipping_by_norm": "max_norm"}


def _alias_target(alias):
    target = ALIASES[alias]
    return target[0] if isinstance(target, tuple) else target


#: Arguments through which a wrapper receives (or builds) its base optimizer.
_BASE_ARGS = ("params", "model", "base_optimizer", "optimizer_type", "learning_rate")


def _kind(cls):
    """'meta' (wraps a base optimizer), 'free' (gradient-free) or 'plain'."""
    args = _signature(cls)[0]
    if issubclass(cls, MetaOptimizer) or "base_optimizer" in args or "optimizer_type" in args:
        return "meta"
    if issubclass(cls, GradientFreeOptimizer):
        return "free"
    return "plain"


def _own_args(cls):
    """A wrapper's own arguments: all but those that give or build its base optimizer."""
    return {k: v for k, v in _signature(cls)[0].items() if k not in _BASE_ARGS}


def _base_arg(cls):
    """The argument that takes a wrapper's built base optimizer."""
    return "base_optimizer" if "base_optimizer" in _signature(cls)[0] else "optimizer_type"


def _base_spec(cls, kwargs, where):
    """(name or Optimizer, dict of base keys) of a wrapper's ``base_optimizer``.

    A wrapper whose class calls it ``optimizer_type`` (MixedPrecisionOptimizer,
    DistributedOptimizer) takes that key too.
    """
    args = _signature(cls)[0]
    given = [k for k in ("base_optimizer", "optimizer_type")
             if k in kwargs and kwargs[k] is not None and (k in args or k == "base_optimizer")]
    if len(given) > 1:
        raise ConfigError(f"{where}: base_optimizer and optimizer_type both given; give one")
    if given:
        spec = kwargs[given[0]]
    else:
        spec = next((args[k] for k in ("base_optimizer", "optimizer_type")
                     if args.get(k, _EMPTY) not in (_EMPTY, None)), None)
    if spec is None:
        raise ConfigError(f"{where} wraps another optimizer: give base_optimizer (a name such "
                          f"as 'adam', a config dict with a 'type', or an optimizer)")
    if isinstance(spec, Optimizer):
        return spec, {}
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "type" not in spec:
            raise ConfigError(f"{where}: a base_optimizer config needs a 'type'; known "
                              f"optimizers: {', '.join(available_optimizers())}")
        return spec.pop("type"), spec
    return spec, {}


def _valid_keys(cls, name, dialect, kwargs, where):
    """The keys an optimizer of ``cls`` takes: {key: what it means} (for checks and messages)."""
    kind = _kind(cls)
    if kind == "meta":
        keys = {k: "own" for k in _own_args(cls)}
        keys["base_optimizer"] = "base_optimizer"
        if "optimizer_type" in _signature(cls)[0]:
            keys["optimizer_type"] = "base_optimizer"
        keys["param_groups"] = "special"
        base, _ = _base_spec(cls, kwargs, where)
        base_entry, base_cls = _OPTIMIZERS.lookup(
            type(base) if isinstance(base, Optimizer) else base, f"{where}: base_optimizer")
        for k in _valid_keys(base_cls, base_entry.name, dialect, {}, where):
            keys.setdefault(k, "base")
        return keys
    args = {k for k in _signature(cls)[0] if k != "params"}
    keys = {k: "arg" for k in args}
    keys.update({a: "alias" for a in ALIASES if _alias_target(a) in args})
    if dialect == "keras":
        keys.update({k: "keras" for k, ours in _KERAS_NAMES.get(name, {}).items()
                     if ours in args})
        if kind == "plain":
            keys.update({k: "clipping" for k in _CLIP_NAMES})
    keys["param_groups"] = "special"
    if kind == "plain":
        keys["max_grad_norm"] = "special"
        keys["gradient_clipping"] = "special"
    return keys


def _check_keys(where, noun, given, valid):
    unknown = [k for k in given if k not in valid]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} for {noun}; valid keys: "
                          f"{_listing(valid)}")


# ---- optimizers: plans -----------------------------------------------------------------------

class _OptimizerPlan:
    """Everything checked about an optimizer to build, short of the parameters."""

    def __init__(self, entry, cls, where):
        self.entry, self.cls, self.where = entry, cls, where
        self.kind = _kind(cls)
        self.kwargs = {}            # ready for the class
        self.groups = None          # [(ids, overrides)] from param_groups
        self.clipping = None        # GradientClipper config
        self.max_grad_norm = None
        self.base = None            # a wrapper's base: a plan or a built optimizer
        self.own_groups = None      # a wrapper's per-group overrides of its own keys


def _prepare_optimizer(name, kwargs, where, dialect="torch"):
    """Check a name and its keyword arguments; return a :class:`_OptimizerPlan`."""
    entry, cls = _OPTIMIZERS.lookup(name, where)
    where = f"{where} (optimizer {entry.name!r})"
    kwargs = dict(kwargs)
    plan = _OptimizerPlan(entry, cls, where)
    valid = _valid_keys(cls, entry.name, dialect, kwargs, where)
    _check_keys(where, f"optimizer {entry.name!r}", kwargs, valid)
    if plan.kind == "meta":
        return _prepare_meta(plan, kwargs, valid, dialect)
    args = {k: v for k, v in _signature(cls)[0].items() if k != "params"}
    keras_names = _KERAS_NAMES.get(entry.name, {}) if dialect == "keras" else {}
    _check_given(kwargs, args, keras_names, where)
    for keras_name, ours in keras_names.items():
        if keras_name in kwargs:
            if ours in kwargs:
                raise ConfigError(f"{where}: {ours!r} and its Keras name {keras_name!r} both "
                                  f"given; give one")
            kwargs[ours] = kwargs.pop(keras_name)
    plan.max_grad_norm = kwargs.pop("max_grad_norm", None)
    if plan.max_grad_norm is not None and not _is_number(plan.max_grad_norm):
        raise ConfigError(f"{where}: 'max_grad_norm' must be a number, got "
                          f"{plan.max_grad_norm!r}")
    plan.clipping = _clipping_config(kwargs.pop("gradient_clipping", None),
                                     f"{where}: gradient_clipping")
    groups = kwargs.pop("param_groups", None)
    defaults = {k: v for k, v in args.items() if v is not _EMPTY and v is not required}
    if dialect == "keras":
        defaults.update({k: v for k, v in _KERAS_DEFAULTS.get(entry.name, {}).items()
                         if k in args})
    try:
        kwargs = resolve_aliases(kwargs, set(args), defaults, where)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    if dialect == "keras":
        for k, v in _KERAS_DEFAULTS.get(entry.name, {}).items():
            if k in args:
                kwargs.setdefault(k, v)
    plan.kwargs = _checked_values(kwargs, args, where)
    if groups is not None:
        plan.groups = _prepare_groups(groups, args, {**defaults, **plan.kwargs}, where,
                                      plan.kind)
    return plan


def _check_given(kwargs, args, keras_names, where):
    """Check the type of each value under the key it was given with (alias or not)."""
    for key, value in kwargs.items():
        target = keras_names.get(key, key)
        if target in ALIASES:
            target = ALIASES[target]
            if isinstance(target, tuple):       # beta1 and the like: one number
                _check_type(where, key, value, 0.0)
                continue
        if target == "lr" and isinstance(value, (Mapping, LearningRateSchedule)):
            continue
        _check_type(where, key, value, args.get(target, _EMPTY))


def _checked_values(kwargs, args, where):
    """The values with a schedule config given as lr built into the schedule."""
    out = dict(kwargs)
    if isinstance(out.get("lr"), Mapping):
        try:
            out["lr"] = learning_rate_schedule_builder(out["lr"])
        except (TypeError, ValueError) as exc:
            raise _context(exc, f"{where}: lr schedule") from None
    return out


def _prepare_groups(groups, args, defaults, where, kind):
    if isinstance(groups, Mapping) or not isinstance(groups, (list, tuple)) or not groups:
        raise ConfigError(f"{where}: 'param_groups' must be a non-empty list of groups, each "
                          f"with 'params', got {groups!r}")
    out = []
    valid = set(args) | {a for a in ALIASES if _alias_target(a) in args}
    for i, group in enumerate(groups):
        at = f"{where}: param_groups[{i}]"
        if not isinstance(group, Mapping) or "params" not in group:
            raise ConfigError(f"{at} must be a dict with a 'params' list, got {group!r}")
        over = {k: v for k, v in group.items() if k != "params"}
        if kind == "free" and over:
            raise ConfigError(f"{at}: a gradient-free optimizer's groups carry no "
                              f"hyper-parameters, got {sorted(over)}")
        _check_keys(at, "a parameter group", over, valid)
        _check_given(over, args, {}, at)
        try:
            over = resolve_aliases(over, set(args), defaults, at)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None
        out.append((group["params"], _checked_values(over, args, at)))
    return out


def _prepare_meta(plan, kwargs, valid, dialect):
    cls, where = plan.cls, plan.where
    own = _own_args(cls)
    spec, base_keys = _base_spec(cls, kwargs, where)
    kwargs.pop("base_optimizer", None)
    kwargs.pop("optimizer_type", None)
    plan.kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in own}
    for key, value in plan.kwargs.items():
        if key == "weight_optimizer" and isinstance(value, str):
            value = _OPTIMIZERS.lookup(value, f"{where}: weight_optimizer")[1]
        elif key != "shared_parameters":
            _check_type(where, key, value, own[key])
        plan.kwargs[key] = value
    groups = kwargs.pop("param_groups", None)
    if groups is not None:
        if not isinstance(groups, (list, tuple)) or not groups or not all(
                isinstance(g, Mapping) and "params" in g for g in groups):
            raise ConfigError(f"{where}: 'param_groups' must be a non-empty list of groups, "
                              f"each with 'params', got {groups!r}")
        if "param_groups" in base_keys:
            raise ConfigError(f"{where}: param_groups given both to the wrapper and to its "
                              f"base_optimizer; give them once")
        plan.own_groups = [{k: v for k, v in g.items() if k in own} for g in groups]
        kwargs["param_groups"] = [{k: v for k, v in g.items() if k not in own} for g in groups]
    if isinstance(spec, Optimizer):
        if kwargs:
            raise ConfigError(f"{where}: base_optimizer is already built, so "
                              f"{_listing(kwargs)} cannot be given for it")
        plan.base = spec
        return plan
    both = sorted(set(base_keys) & set(kwargs))
    if both:
        raise ConfigError(f"{where}: {both[0]!r} given both in base_optimizer and beside it; "
                          f"give it once")
    plan.base = _prepare_optimizer(spec, {**base_keys, **kwargs}, f"{where}: base_optimizer",
                                   dialect)
    return plan


def _clipping_config(section, where):
    """A ``gradient_clipping`` section as GradientClipper arguments, or None (off)."""
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a dict such as {{'enabled': True, 'max_norm': 1.0}}, "
                          f"got {section!r}")
    args = _signature(GradientClipper)[0]
    enabled = section.get("enabled", True)
    if not isinstance(enabled, (bool, np.bool_)):
        raise ConfigError(f"{where}: 'enabled' must be true or false, got {enabled!r}")
    kwargs = {}
    for key, value in section.items():
        if key == "enabled":
            continue
        target = key if key in args else _CLIP_NAMES.get(key)
        if target is None:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: "
                              f"{_listing(['enabled', *args, *_CLIP_NAMES])}")
        if target in kwargs:
            raise ConfigError(f"{where}: {target!r} given twice ({key!r} is another name for "
                              f"it); give it once")
        default = args[target] if args[target] is not None else 0.0     # bounds: numbers
        kwargs[target] = _check_type(where, key, value, default) if value is not None else None
    if not enabled:
        return None
    try:
        return GradientClipper(**kwargs).to_config()
    except (TypeError, ValueError) as exc:
        raise _context(exc, where) from None


# ---- optimizers: building --------------------------------------------------------------------

_RECIPES = weakref.WeakKeyDictionary()      # optimizer or scheduler -> its config
_CLIPPERS = weakref.WeakKeyDictionary()     # optimizer -> GradientClipper of its section


def _construct_optimizer(plan, source):
    """Build the optimizer of ``plan`` on ``source`` (a :class:`_Params`)."""
    where = plan.where
    if plan.kind == "meta":
        return _construct_meta(plan, source)
    arg = source.arg
    if plan.groups is not None:
        if source.groups_given:
            raise ConfigError(f"{where}: param_groups given in the config and parameter groups "
                              f"as params; give them once")
        arg, seen = [], set()
        for i, (ids, over) in enumerate(plan.groups):
            entry = source.select(ids, f"{where}: param_groups[{i}]")
            for item in entry:
                p = item[1] if isinstance(item, tuple) else item
                if id(p) in seen:
                    raise ConfigError(f"{where}: param_groups[{i}] repeats a parameter of an "
                                      f"earlier group")
                seen.add(id(p))
            arg.append({"params": entry, **over})
        left = [i for i, p in enumerate(source.flat) if id(p) not in seen]
        if left:
            names = list(source.named) if source.named is not None else None
            which = names[left[0]] if names else f"position {left[0]}"
            raise ConfigError(f"{where}: param_groups leave {len(left)} parameter(s) out (the "
                              f"first: {which}); every parameter must be in one group")
    try:
        opt = plan.cls(arg, **plan.kwargs)
        if plan.max_grad_norm is not None:
            opt.max_grad_norm = plan.max_grad_norm
    except (TypeError, ValueError) as exc:
        raise _context(exc, where) from None
    if plan.clipping is not None:
        _attach_clipping(opt, plan.clipping)
    _RECIPES[opt] = _derive_optimizer(opt)
    return opt


def _construct_meta(plan, source):
    where = plan.where
    base = plan.base if isinstance(plan.base, Optimizer) else \
        _construct_optimizer(plan.base, source)
    kwargs = dict(plan.kwargs)
    shared = kwargs.get("shared_parameters")
    if shared is not None and not isinstance(shared, Tensor) and not (
            isinstance(shared, (list, tuple)) and all(isinstance(p, Tensor) for p in shared)):
        kwargs["shared_parameters"] = [item[1] if isinstance(item, tuple) else item for item in
                                       source.select(shared, f"{where}: shared_parameters")]
    kwargs[_base_arg(plan.cls)] = base
    if _signature(plan.cls)[0].get("params", None) is _EMPTY:
        kwargs["params"] = None                  # the base optimizer holds them
    try:
        opt = plan.cls(**kwargs)
        per_group = getattr(opt, "_own_defaults", {})
        for i, (group, over) in enumerate(zip(opt.param_groups, plan.own_groups or ())):
            fixed = sorted(set(over) - set(per_group))
            if fixed:
                raise ConfigError(f"param_groups[{i}]: {fixed[0]!r} is one setting of the "
                                  f"{type(opt).__name__}, not a per-group hyper-parameter; "
                                  f"give it beside param_groups")
            group.update(opt.validate_group(over))
    except (TypeError, ValueError) as exc:
        raise _context(exc, where) from None
    _RECIPES[opt] = _derive_optimizer(opt, given=plan.kwargs)
    return opt


def _attach_clipping(opt, config):
    """Clip the gradients of ``opt`` before each of its updates, as ``config`` says."""
    clipper = GradientClipper(**config)
    fast = not clipper.adaptive and clipper.norm_type == 2.0 and not clipper.error_if_nonfinite

    def clip():
        params = [p for g in opt.param_groups for p in g["params"]]
        if fast:
            apply_gradient_clipping(params, clipper.clip_value, clipper.per_tensor_max_norm,
                                    clipper.max_norm)
        else:
            clipper.clip_gradients(params)

    def before_step(optimizer, args, kwargs):
        if args and callable(args[0]):
            closure, rest = args[0], args[1:]
        elif callable(kwargs.get("closure")):
            closure, rest = kwargs["closure"], None
        else:
            clip()
            return None

        def clipped_closure():
            loss = closure()
            clip()
            return loss
        if rest is None:
            return args, {**kwargs, "closure": clipped_closure}
        return (clipped_closure, *rest), kwargs

    opt.register_step_pre_hook(before_step)
    _CLIPPERS[opt] = clipper


def _optimizer_source(params, model, where):
    if params is not None and model is not None:
        raise ConfigError(f"{where}: give params or model, not both")
    return _Params(model if model is not None else params, where)


def build_optimizer(params, config, **extra):
    """Build an optimizer from a config dict (such as :func:`get_config` returns).

    Parameters
    ----------
    params : iterable of Parameter, dict, parameter groups, or a model
        What to optimize. Configs whose ``param_groups`` name parameters need the
        model (or its ``named_parameters()``).
    config : dict
        ``type`` and the optimizer's keys (see the module docstring).
    **extra
        Further keyword arguments that a config cannot hold, such as a
        gradient-free optimizer's ``objective=``.

    Returns
    -------
    Optimizer
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"build_optimizer expects a config dict, got {type(config).__name__}")
    config = _coerce(dict(config))
    if "type" not in config:
        raise ConfigError(f"build_optimizer: the config needs a 'type'; known optimizers: "
                          f"{', '.join(available_optimizers())}")
    name = config.pop("type")
    twice = sorted(set(config) & set(extra))
    if twice:
        raise ConfigError(f"build_optimizer: {twice[0]!r} given in the config and as a keyword")
    plan = _prepare_optimizer(name, {**config, **extra}, "build_optimizer")
    return _construct_optimizer(plan, _Params(params, "build_optimizer"))


def _one_of(where, **spellings):
    given = {k: v for k, v in spellings.items() if v is not None}
    if len(given) > 1:
        raise ConfigError(f"{where}: {' and '.join(given)} are two spellings of one argument; "
                          f"give one")
    return next(iter(given.values()), None)


def create_optimizer(params=None, optimizer_name=None, lr=None, *, model=None,
                     optimizer_type=None, learning_rate=None, **kwargs):
    """Build an optimizer by name.

    Both spellings of seed 001 work: ``create_optimizer(model.parameters(),
    optimizer_name='adamw', lr=1e-4, weight_decay=1e-4)`` and
    ``create_optimizer(model=model, optimizer_type='rmsprop', learning_rate=1e-3,
    alpha=0.99)``.

    Parameters
    ----------
    params : iterable of Parameter, dict, parameter groups, or a model
        What to optimize (or give ``model=``; its parameters are named, so
        :func:`get_config` names them too).
    optimizer_name, optimizer_type : str
        The optimizer, by registry name (case, ``_`` and ``-`` ignored).
    lr, learning_rate : float or LearningRateSchedule or dict, optional
        The learning rate; a dict is a schedule config
        (:func:`~neural_arch.optim.schedules.learning_rate_schedule_builder`).
        Default: the optimizer's.
    **kwargs
        The optimizer's other arguments (PyTorch names or the documented
        aliases), ``max_grad_norm``, ``gradient_clipping`` (a section),
        ``param_groups``; for a wrapper, ``base_optimizer`` and its arguments.

    Returns
    -------
    Optimizer

    Raises
    ------
    ConfigError
        An unknown name or key (listing the valid ones), a value of the wrong
        type, or two spellings of one argument.
    """
    where = "create_optimizer"
    name = _one_of(where, optimizer_name=optimizer_name, optimizer_type=optimizer_type)
    if name is None:
        raise ConfigError(f"{where} needs optimizer_name (or optimizer_type); known "
                          f"optimizers: {', '.join(available_optimizers())}")
    rate = _one_of(where, lr=lr, learning_rate=learning_rate)
    if rate is not None:
        if "lr" in kwargs or "learning_rate" in kwargs:
            raise ConfigError(f"{where}: the learning rate is given twice")
        kwargs["lr"] = rate
    plan = _prepare_optimizer(name, kwargs, where)
    return _construct_optimizer(plan, _optimizer_source(params, model, where))


def create_optimizer_with_groups(model, optimizer_name, lr=None, weight_decay=0.0,
                                 no_decay=("bias",), **kwargs):
    """An optimizer with two groups: with weight decay, and without it for ``no_decay``.

    Parameters
    ----------
    model : Module, dict name -> Parameter, or iterable of (name, Parameter)
        The parameters, with their dotted names.
    optimizer_name : str
        Registry name of the optimizer (it must have ``weight_decay``).
    lr : float, optional
        Learning rate (default: the optimizer's).
    weight_decay : float, default 0.0
        Weight decay of the first group.
    no_decay : sequence of str, default ('bias',)
        A parameter whose name contains one of these strings goes to the second
        group, with ``weight_decay=0`` (seed 000: ``['bias', 'bn', 'ln']``).
    **kwargs
        The optimizer's other arguments.

    Returns
    -------
    Optimizer
        Groups in that order; a group that would be empty is left out. The
        groups carry the parameter names (``param_names``).
    """
    where = "create_optimizer_with_groups"
    if isinstance(no_decay, str):
        no_decay = [no_decay]
    if not isinstance(no_decay, (list, tuple)) or not all(isinstance(s, str) and s
                                                          for s in no_decay):
        raise ConfigError(f"{where}: no_decay must be a list of non-empty strings (parts of "
                          f"parameter names), got {no_decay!r}")
    source = _Params(model, where)
    if source.named is None or source.groups_given:
        raise ConfigError(f"{where} needs the parameters with their names: a model, a dict "
                          f"name -> Parameter, or named_parameters()")
    decay = [n for n in source.named if not any(s in n for s in no_decay)]
    plain = [n for n in source.named if any(s in n for s in no_decay)]
    if not decay and not plain:
        raise ConfigError(f"{where}: the model has no parameters")
    groups = ([{"params": decay}] if decay else []) + \
        ([{"params": plain, "weight_decay": 0.0}] if plain else [])
    if lr is not None:
        kwargs["lr"] = lr
    entry, cls = _OPTIMIZERS.lookup(optimizer_name, where)
    if _kind(cls) != "plain" or "weight_decay" not in _signature(cls)[0]:
        raise ConfigError(f"{where}: optimizer {entry.name!r} has no weight_decay argument, so "
                          f"it cannot be grouped by weight decay")
    plan = _prepare_optimizer(optimizer_name, {**kwargs, "weight_decay": weight_decay,
                                               "param_groups": groups}, where)
    return _construct_optimizer(plan, source)


# ---- optimizers: configs of built objects ----------------------------------------------------

def _derive_optimizer(opt, given=None):
    """The canonical config of ``opt``, read off the object.

    ``given``: a wrapper's own arguments as it was built with them, for those it
    does not keep as attributes (None for an object built by hand).
    """
    cls = type(opt)
    name = _OPTIMIZERS.name_of(cls)
    if name is None:
        raise ConfigError(f"{cls.__name__} is not a registered optimizer, so it has no config "
                          f"name; register it with register_optimizer()")
    config = {"type": name}
    kind = _kind(cls)
    if kind == "meta":
        return _derive_meta(opt, config, given)
    if kind == "free":
        config.update({k: _export(v) for k, v in opt._hyper.items()})
        config["seed"] = opt.seed
        if len(opt.param_groups) > 1:
            config["param_groups"] = [{"params": _param_ids(g["params"], opt)}
                                      for g in opt.param_groups]
        return config
    args = [k for k in _signature(cls)[0] if k not in ("params", "contiguous")]
    missing = [k for k in args if k not in opt.defaults]
    if missing:
        raise ConfigError(f"{cls.__name__} keeps argument {missing[0]!r} outside its defaults, "
                          f"so its config cannot be read off the object")
    hyper = {k: _export(opt.defaults[k]) for k in args}
    schedule = getattr(opt, "_default_lr_schedule", None)
    if schedule is not None:
        hyper["lr"] = schedule.to_config()
    config.update(hyper)
    if getattr(opt, "_contiguous", False):
        config["contiguous"] = True
    if opt.max_grad_norm is not None:
        config["max_grad_norm"] = opt.max_grad_norm
    if opt in _CLIPPERS:
        config["gradient_clipping"] = _CLIPPERS[opt].to_config()
    groups = []
    for group in opt.param_groups:
        over = {}
        for k in args:
            value = group.get("initial_lr", group[k]) if k == "lr" else group[k]
            if k == "lr" and "lr_schedule" in group:
                value = group["lr_schedule"]
            value = _export(value)
            if value != hyper[k]:
                over[k] = value
        groups.append(over)
    if len(groups) > 1 or groups[0]:
        config["param_groups"] = [{"params": _param_ids(g["params"], opt), **over}
                                  for g, over in zip(opt.param_groups, groups)]
    return config


def _derive_meta(opt, config, given):
    own = _own_args(type(opt))
    own_defaults = getattr(opt, "_own_defaults", {})
    for key, default in own.items():
        if key in own_defaults:
            value = own_defaults[key]
        elif key == "weight_optimizer":
            value = _OPTIMIZERS.name_of(opt.weight_optimizer_class) or \
                opt.weight_optimizer_class.__name__
        elif key == "shared_parameters":
            value = None if opt.shared_parameters is None else \
                _param_ids(opt.shared_parameters, opt)
        elif hasattr(opt, key) and not callable(getattr(opt, key)):
            value = getattr(opt, key)
        elif given is not None and (key in given or default is not _EMPTY):
            value = given.get(key, default)
        else:
            raise ConfigError(f"{type(opt).__name__} does not keep its argument {key!r}, so "
                              f"the config of one built by hand cannot be read off it; build "
                              f"it with create_optimizer to keep its config")
        config[key] = _export(value)
    base = get_config(opt.base_optimizer)
    groups = base.pop("param_groups", None)
    per_group = [{k: _export(g[k]) for k in own_defaults
                  if _export(g[k]) != _export(own_defaults[k])} for g in opt.param_groups]
    if any(per_group):
        if groups is None:
            groups = [{"params": _param_ids(g["params"], opt)} for g in opt.param_groups]
        groups = [{**g, **over} for g, over in zip(groups, per_group)]
    config["base_optimizer"] = base
    if groups is not None:
        config["param_groups"] = groups
    return config


# ---- schedulers -------------------------------------------------------------------------

_PER_GROUP = ("max_lr", "base_lr", "base_momentum", "max_momentum", "min_lr")


class _SchedulerPlan:
    def __init__(self, entry, cls, where):
        self.entry, self.cls, self.where = entry, cls, where
        self.kwargs = {}
        self.subs = None            # SequentialLR / ChainedScheduler: plans or schedulers


def _scheduler_args(cls):
    args = dict(_signature(cls)[0])
    args.pop("optimizer", None)
    return args


def _scheduler_keys(cls):
    """{lower-cased key: argument name} of a scheduler's arguments."""
    return {k.lower(): k for k in _scheduler_args(cls)}


def _prepare_scheduler(name, kwargs, where, epochs=None, steps_per_epoch=None):
    """Check a scheduler name and arguments; a :class:`_SchedulerPlan` (None for 'none')."""
    if name is None or isinstance(name, str) and _normal(name) == "none":
        if kwargs:
            raise ConfigError(f"{where}: no scheduler was named, but scheduler arguments "
                              f"{_listing(kwargs)} were given")
        return None
    entry, cls = _SCHEDULERS.lookup(name, where)
    where = f"{where} (scheduler {entry.name!r})"
    plan = _SchedulerPlan(entry, cls, where)
    args = _scheduler_args(cls)
    keys = _scheduler_keys(cls)
    for extra in ("epochs", "steps_per_epoch"):
        keys.pop(extra, None)
    kwargs = dict(kwargs)
    epochs, steps_per_epoch = _lengths(where, kwargs, epochs, steps_per_epoch)
    kw = {}
    for key, value in kwargs.items():
        arg = keys.get(key.lower()) if isinstance(key, str) else None
        if arg is None:
            valid = [*keys.values(), "epochs", "steps_per_epoch"]
            raise ConfigError(f"{where}: unknown key {key!r} for scheduler {entry.name!r}; "
                              f"valid keys: {_listing(valid)}")
        if arg in kw:
            raise ConfigError(f"{where}: {arg!r} given twice (as {key!r} too); give it once")
        kw[arg] = value
    length = entry.extra
    if length is not None and length not in kw and epochs is not None:
        kw[length] = int(epochs) * int(steps_per_epoch or 1)
    if "schedulers" in args:
        subs = kw.get("schedulers")
        if not isinstance(subs, (list, tuple)) or not subs:
            raise ConfigError(f"{where} needs 'schedulers': a non-empty list of scheduler "
                              f"configs (dicts with a 'type') or schedulers")
        plan.subs = []
        for i, sub in enumerate(subs):
            if isinstance(sub, _lrs.LRScheduler):
                plan.subs.append(sub)
                continue
            if not isinstance(sub, Mapping) or "type" not in sub:
                raise ConfigError(f"{where}: schedulers[{i}] must be a dict with a 'type', got "
                                  f"{sub!r}")
            sub = dict(sub)
            plan.subs.append(_prepare_scheduler(sub.pop("type"), sub,
                                                f"{where}: schedulers[{i}]"))
        kw.pop("schedulers")
    for key, value in kw.items():
        _check_type(where, key, value, args[key], per_group=key in _PER_GROUP)
    # The length argument may still come from epochs given when it is built.
    later = ("schedulers", length, "max_lr" if cls is _lrs.OneCycleLR else None)
    missing = [k for k, d in args.items() if d is _EMPTY and k not in kw and k not in later]
    if missing:
        raise ConfigError(f"{where} needs {missing[0]!r}")
    plan.kwargs = kw
    return plan


def _needs_length(plan):
    """The scheduler's missing length argument, or None."""
    length = plan.entry.extra
    if length is None or plan.kwargs.get(length) is not None:
        return None
    default = _scheduler_args(plan.cls).get(length, _EMPTY)
    return length if default is _EMPTY or length == "total_steps" else None


def _construct_scheduler(plan, optimizer):
    if plan is None:
        return None
    kwargs = dict(plan.kwargs)
    cls, where = plan.cls, plan.where
    length = _needs_length(plan)
    if length is not None:
        raise ConfigError(f"{where} needs {length!r}, or the training length: give epochs (and "
                          f"steps_per_epoch) in the config or to the call that builds it")
    if cls is _lrs.OneCycleLR and "max_lr" not in kwargs:
        kwargs["max_lr"] = _collapse(g.get("initial_lr", g["lr"])
                                     for g in optimizer.param_groups)
    try:
        if plan.subs is not None:
            subs = [s if isinstance(s, _lrs.LRScheduler) else _construct_scheduler(s, optimizer)
                    for s in plan.subs]
            if "optimizer" in _signature(cls)[0] and list(_signature(cls)[0])[0] == "schedulers":
                sched = cls(subs, optimizer=optimizer, **kwargs)
            else:
                sched = cls(optimizer, subs, **kwargs)
        else:
            sched = cls(optimizer, **kwargs)
    except (TypeError, ValueError) as exc:
        raise _context(exc, where) from None
    try:
        config = _derive_scheduler(sched, required_exact=False) or \
            {"type": plan.entry.name, **_generic_scheduler_config(cls, kwargs)}
    except ConfigError:
        config = None               # it holds a function: get_config will say so
    if config is not None:
        _RECIPES[sched] = config
    return sched


def _generic_scheduler_config(cls, kwargs):
    """Constructor arguments with defaults filled in (classes not read off their attributes)."""
    skip = {"last_epoch", "schedulers"}
    if cls is _lrs.OneCycleLR:
        skip |= {"epochs", "steps_per_epoch"}
    out = {}
    for key, default in _scheduler_args(cls).items():
        if key in skip:
            continue
        value = kwargs.get(key, default)
        if value is _EMPTY:
            continue
        if callable(value) and not isinstance(value, type):
            raise ConfigError(f"{cls.__name__}: its {key} is a function, which a config cannot "
                              f"hold")
        out[key] = _collapse(value) if isinstance(value, (list, tuple)) and key in _PER_GROUP \
            else _export(value)
    return out


def _momenta(s, low, high):
    if getattr(s, "cycle_momentum", False):
        return _collapse(getattr(s, low)), _collapse(getattr(s, high))
    return None


def _derive_scheduler(s, required_exact=True):
    """The canonical config of scheduler ``s`` from its attributes (None if it cannot be)."""
    name = _SCHEDULERS.name_of(type(s))
    if name is None:
        if required_exact:
            raise ConfigError(f"{type(s).__name__} is not a registered scheduler; register it "
                              f"with register_scheduler()")
        return None
    L = _lrs
    t = type(s)
    if t is L.StepLR:
        args = {"step_size": s.step_size, "gamma": s.gamma}
    elif t is L.MultiStepLR:
        args = {"milestones": sorted(s.milestones.elements()), "gamma": s.gamma}
    elif t is L.ConstantLR:
        args = {"factor": s.factor, "total_iters": s.total_iters}
    elif t is L.LinearLR:
        args = {"start_factor": s.start_factor, "end_factor": s.end_factor,
                "total_iters": s.total_iters}
    elif t is L.ExponentialLR:
        args = {"gamma": s.gamma}
    elif t is L.PolynomialLR:
        args = {"total_iters": s.total_iters, "power": s.power}
    elif t is L.CosineAnnealingLR:
        args = {"T_max": s.T_max, "eta_min": s.eta_min}
    elif t is L.CosineAnnealingWarmRestarts:
        args = {"T_0": s.T_0, "T_mult": s.T_mult, "eta_min": s.eta_min}
    elif t is L.WarmupCosineLR:
        args = {"warmup_epochs": s.warmup_epochs, "max_epochs": s.max_epochs,
                "eta_min": s.eta_min, "warmup_start_lr": s.warmup_start_lr}
    elif t is L.ReduceLROnPlateau:
        args = {"mode": s.mode, "factor": s.factor, "patience": s.patience,
                "threshold": s.threshold, "threshold_mode": s.threshold_mode,
                "cooldown": s.cooldown,
                "min_lr": s.default_min_lr if s.default_min_lr is not None
                else _collapse(s.min_lrs), "eps": s.eps}
    elif t is L.CyclicLR:
        if s._scale_fn_custom is not None:
            raise ConfigError("CyclicLR with a scale_fn function has no config (a config "
                              "cannot hold a function)")
        up = round(s.total_size * s.step_ratio)
        momenta = _momenta(s, "base_momentums", "max_momentums") or (0.8, 0.9)
        args = {"base_lr": _collapse(s.base_lrs), "max_lr": _collapse(s.max_lrs),
                "step_size_up": up, "step_size_down": round(s.total_size) - up,
                "mode": s.mode, "gamma": s.gamma, "scale_mode": s.scale_mode,
                "cycle_momentum": s.cycle_momentum, "base_momentum": momenta[0],
                "max_momentum": momenta[1]}
    elif t is L.SequentialLR:
        args = {"schedulers": [get_config(sub) for sub in s._schedulers],
                "milestones": list(s._milestones)}
    elif t is L.ChainedScheduler:
        args = {"schedulers": [get_config(sub) for sub in s._schedulers]}
    else:
        if required_exact:
            raise ConfigError(f"the arguments of a {t.__name__} built by hand cannot all be read "
                              f"off it; build it with create_scheduler to keep its config")
        return None
    return {"type": name, **{k: _export(v) for k, v in args.items()}}


def build_scheduler(optimizer, config, epochs=None, steps_per_epoch=None):
    """Build a scheduler for ``optimizer`` from a config dict (``type`` and its keys).

    Returns None for ``type: none``. ``epochs``/``steps_per_epoch`` as in
    :func:`create_scheduler` (also accepted as keys of the config).
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"build_scheduler expects a config dict, got {type(config).__name__}")
    config = _coerce(dict(config))
    if "type" not in config:
        raise ConfigError(f"build_scheduler: the config needs a 'type'; known schedulers: "
                          f"{', '.join(available_schedulers())}")
    name = config.pop("type")
    epochs = _one_of("build_scheduler", epochs=epochs, config_epochs=config.pop("epochs", None))
    steps = _one_of("build_scheduler", steps_per_epoch=steps_per_epoch,
                    config_steps_per_epoch=config.pop("steps_per_epoch", None))
    plan = _prepare_scheduler(name, config, "build_scheduler", epochs, steps)
    return _construct_scheduler(plan, optimizer)


def create_scheduler(optimizer, scheduler_name=None, *, scheduler_type=None, epochs=None,
                     steps_per_epoch=None, **kwargs):
    """Build a learning-rate scheduler by name.

    Parameters
    ----------
    optimizer : Optimizer
    scheduler_name, scheduler_type : str
        The scheduler (``'cosine'``, ``'cosine_warm_restarts'``, ``'onecycle'``,
        ``'plateau'``, ``'warmup_cosine'``, ``'step'``, ...; ``'none'`` gives None).
    epochs : int, optional
        Length of training; with ``steps_per_epoch`` (default 1) it fills the
        scheduler's length argument when that is not given (``T_max`` of
        ``'cosine'``, ...; see the module docstring).
    steps_per_epoch : int, optional
    **kwargs
        The scheduler's arguments (PyTorch names; case-insensitive).

    Returns
    -------
    LRScheduler or None
    """
    where = "create_scheduler"
    name = _one_of(where, scheduler_name=scheduler_name, scheduler_type=scheduler_type)
    if name is None:
        raise ConfigError(f"{where} needs scheduler_name (or scheduler_type); known "
                          f"schedulers: {', '.join(available_schedulers())}, or 'none'")
    plan = _prepare_scheduler(name, kwargs, where, epochs, steps_per_epoch)
    return _construct_scheduler(plan, optimizer)


# ---- both at once ----------------------------------------------------------------------------

def _split(opt_name, sched_name, kwargs, where, dialect="torch"):
    """Share ``kwargs`` between the optimizer and the scheduler by the keys each takes."""
    entry, cls = _OPTIMIZERS.lookup(opt_name, where)
    opt_keys = _valid_keys(cls, entry.name, dialect, kwargs, f"{where} (optimizer "
                                                              f"{entry.name!r})")
    sched_keys = {}
    if sched_name is not None and not (isinstance(sched_name, str)
                                       and _normal(sched_name) == "none"):
        sched_keys = _scheduler_keys(_SCHEDULERS.lookup(sched_name, where)[1])
    opt_kw, sched_kw = {}, {}
    for key, value in kwargs.items():
        in_opt = key in opt_keys
        in_sched = isinstance(key, str) and key.lower() in sched_keys
        if in_opt and in_sched:
            raise ConfigError(f"{where}: {key!r} is an argument of both the optimizer and the "
                              f"scheduler; build them separately (create_optimizer, "
                              f"create_scheduler) or use the nested config form")
        if in_opt:
            opt_kw[key] = value
        elif in_sched:
            sched_kw[key] = value
        else:
            raise ConfigError(f"{where}: unknown key {key!r}; the optimizer takes "
                              f"{_listing(opt_keys)}; the scheduler takes "
                              f"{_listing(sched_keys.values()) or 'nothing (none named)'}")
    return opt_kw, sched_kw


def create_optimizer_and_scheduler(params=None, optimizer_name=None, lr=None,
                                   scheduler_name=None, epochs=None, steps_per_epoch=None, *,
                                   model=None, optimizer_type=None, learning_rate=None,
                                   scheduler_type=None, **kwargs):
    """Build an optimizer and its scheduler from one set of keyword arguments.

    Each further keyword goes to the optimizer or the scheduler, whichever takes
    it (a key both take is an error). Arguments as :func:`create_optimizer` and
    :func:`create_scheduler`.

    Returns
    -------
    (Optimizer, LRScheduler or None)
        None when no scheduler (or ``'none'``) is named.
    """
    where = "create_optimizer_and_scheduler"
    name = _one_of(where, optimizer_name=optimizer_name, optimizer_type=optimizer_type)
    if name is None:
        raise ConfigError(f"{where} needs optimizer_name (or optimizer_type); known "
                          f"optimizers: {', '.join(available_optimizers())}")
    sched = _one_of(where, scheduler_name=scheduler_name, scheduler_type=scheduler_type)
    rate = _one_of(where, lr=lr, learning_rate=learning_rate)
    opt_kw, sched_kw = _split(name, sched, kwargs, where)
    if rate is not None:
        if "lr" in opt_kw or "learning_rate" in opt_kw:
            raise ConfigError(f"{where}: the learning rate is given twice")
        opt_kw["lr"] = rate
    plan = _prepare_optimizer(name, opt_kw, where)
    sched_plan = _prepare_scheduler(sched, sched_kw, where, epochs, steps_per_epoch)
    optimizer = _construct_optimizer(plan, _optimizer_source(params, model, where))
    return optimizer, _construct_scheduler(sched_plan, optimizer)


# ---- configs: forms, files -------------------------------------------------------------------

_TRAINING_KEYS = ("optimizer", "scheduler", "learning_rate", "lr", "epochs", "steps_per_epoch",
                  "max_grad_norm", "gradient_clipping", "amp", "compile")
_NESTED_KEYS = ("optimizer", "scheduler", "gradient_clipping", "epochs", "steps_per_epoch")
_KWARGS_KEYS = ("optimizer_name", "optimizer_type", "scheduler_name", "scheduler_type", "lr",
                "learning_rate", "epochs", "steps_per_epoch")


class _ConfigPlan:
    """A config in any accepted form, checked: the optimizer and scheduler to build."""

    def __init__(self, optimizer, scheduler):
        self.optimizer, self.scheduler = optimizer, scheduler


def _section(value, where):
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a dict, got {value!r} ({type(value).__name__})")
    return dict(value)


def _count(value, where):
    if value is not None and (isinstance(value, bool) or not isinstance(
            value, numbers.Integral) or value < 1):
        raise ConfigError(f"{where} must be a positive integer, got {value!r}")
    return value


def _plan_config(config, where, epochs=None, steps_per_epoch=None):
    """Check a config in any of the forms :class:`OptimizerFactory` takes."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}: a config must be a dict, got {type(config).__name__}")
    config = _coerce(dict(config))
    if "training" in config:
        others = sorted(k for k in config if k != "training")
        if others:
            raise ConfigError(f"{where}: unknown top-level key {others[0]!r} beside 'training'; "
                              f"the flat form has only the 'training' section")
        return _plan_flat(_section(config["training"], f"{where}: 'training'"),
                          f"{where}: training", epochs, steps_per_epoch)
    if isinstance(config.get("optimizer"), str):
        return _plan_flat(config, where, epochs, steps_per_epoch)
    if "optimizer_name" in config or "optimizer_type" in config:
        return _plan_kwargs(config, where, epochs, steps_per_epoch)
    if "optimizer" in config or "scheduler" in config or "gradient_clipping" in config:
        return _plan_nested(config, where, epochs, steps_per_epoch)
    if "type" in config:
        return _plan_nested({"optimizer": config}, where, epochs, steps_per_epoch)
    raise ConfigError(f"{where}: cannot tell the form of a config with keys {sorted(config)}; "
                      f"expected an optimizer section (with 'type'), the nested form "
                      f"(optimizer, scheduler, gradient_clipping), the flat form ('training' "
                      f"with optimizer: <name>), or create_optimizer_and_scheduler's keywords")


def _lengths(where, given, epochs, steps):
    """epochs and steps_per_epoch from the config and from the call (not both)."""
    e = _count(given.pop("epochs", None), f"{where}: 'epochs'")
    s = _count(given.pop("steps_per_epoch", None), f"{where}: 'steps_per_epoch'")
    epochs = _count(epochs, f"{where}: 'epochs'")
    steps = _count(steps, f"{where}: 'steps_per_epoch'")
    if e is not None and epochs is not None and e != epochs:
        raise ConfigError(f"{where}: epochs={e} in the config but {epochs} given to the call")
    if s is not None and steps is not None and s != steps:
        raise ConfigError(f"{where}: steps_per_epoch={s} in the config but {steps} given to "
                          f"the call")
    return (e if e is not None else epochs), (s if s is not None else steps)


def _plan_nested(config, where, epochs, steps):
    _check_keys(where, "the nested config", config, _NESTED_KEYS)
    epochs, steps = _lengths(where, config, epochs, steps)
    if "optimizer" not in config:
        raise ConfigError(f"{where}: the config has no 'optimizer' section")
    opt = _section(config["optimizer"], f"{where}: 'optimizer'")
    if "type" not in opt:
        raise ConfigError(f"{where}: the 'optimizer' section needs a 'type'; known optimizers: "
                          f"{', '.join(available_optimizers())}")
    name = opt.pop("type")
    if "gradient_clipping" in config:
        if "gradient_clipping" in opt:
            raise ConfigError(f"{where}: gradient_clipping given at the top level and in the "
                              f"'optimizer' section; give it once")
        opt["gradient_clipping"] = config["gradient_clipping"]
    opt_plan = _prepare_optimizer(name, opt, f"{where}: 'optimizer'")
    sched_plan = None
    if config.get("scheduler") is not None:
        sched = config["scheduler"]
        if isinstance(sched, str):                      # scheduler: cosine
            sched = {"type": sched}
        sched = _section(sched, f"{where}: 'scheduler'")
        if "type" not in sched:
            raise ConfigError(f"{where}: the 'scheduler' section needs a 'type'; known "
                              f"schedulers: {', '.join(available_schedulers())}")
        s_name = sched.pop("type")
        e, s = _lengths(f"{where}: 'scheduler'", sched, epochs, steps)
        sched_plan = _prepare_scheduler(s_name, sched, f"{where}: 'scheduler'", e, s)
    return _ConfigPlan(opt_plan, sched_plan)


def _plan_flat(section, where, epochs, steps):
    section = dict(section)
    if "optimizer" not in section:
        raise ConfigError(f"{where}: the flat form needs 'optimizer' (a name); known "
                          f"optimizers: {', '.join(available_optimizers())}")
    name = section.pop("optimizer")
    sched = section.pop("scheduler", None)
    epochs, steps = _lengths(where, section, epochs, steps)
    for key in ("amp", "compile"):
        # Settings of the training loop (mixed precision, compilation), not of the optimizer.
        if key in section and not isinstance(section.pop(key), (bool, np.bool_)):
            raise ConfigError(f"{where}: {key!r} must be true or false")
    rate = _one_of(where, learning_rate=section.pop("learning_rate", None),
                   lr=section.pop("lr", None))
    special = {k: section.pop(k) for k in ("max_grad_norm", "gradient_clipping")
               if k in section}
    try:
        opt_kw, sched_kw = _split(name, sched, section, where)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (the flat form also takes {_listing(_TRAINING_KEYS)})") \
            from None
    opt_kw.update(special)
    if rate is not None:
        opt_kw["lr"] = rate
    return _ConfigPlan(_prepare_optimizer(name, opt_kw, where),
                       _prepare_scheduler(sched, sched_kw, where, epochs, steps))


def _plan_kwargs(config, where, epochs, steps):
    config = dict(config)
    name = _one_of(where, optimizer_name=config.pop("optimizer_name", None),
                   optimizer_type=config.pop("optimizer_type", None))
    sched = _one_of(where, scheduler_name=config.pop("scheduler_name", None),
                    scheduler_type=config.pop("scheduler_type", None))
    rate = _one_of(where, lr=config.pop("lr", None),
                   learning_rate=config.pop("learning_rate", None))
    epochs, steps = _lengths(where, config, epochs, steps)
    opt_kw, sched_kw = _split(name, sched, config, where)
    if rate is not None:
        opt_kw["lr"] = rate
    return _ConfigPlan(_prepare_optimizer(name, opt_kw, where),
                       _prepare_scheduler(sched, sched_kw, where, epochs, steps))


def load_config(path, check=True):
    """Read a YAML config file with ``yaml.safe_load``.

    Only plain data is built (no Python objects), and numbers in exponent
    notation that YAML 1.1 leaves as strings (``1e-4``) are made numbers.

    Parameters
    ----------
    path : str or path-like
    check : bool, default True
        Check the config (names, keys and value types, in any form
        :class:`OptimizerFactory` takes, or a scheduler config alone) and raise
        :class:`ConfigError` naming the first bad key. Ranges are checked when
        the objects are built.

    Returns
    -------
    dict
    """
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a config file must hold a mapping (key: value lines), got "
                          f"{type(data).__name__}")
    data = _coerce(data)
    if check:
        kind = data.get("type")
        if isinstance(kind, str) and _normal(kind) in _SCHEDULERS.keys \
                and _normal(kind) not in _OPTIMIZERS.keys:
            scheduler = dict(data)
            scheduler.pop("type")
            _prepare_scheduler(kind, scheduler, str(path))       # a scheduler config alone
        else:
            _plan_config(data, str(path))
    return data


def save_config(config, path):
    """Write a config dict to a YAML file (``yaml.safe_dump``; :func:`load_config` reads it)."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(_export(config), f, sort_keys=False)


class OptimizerFactory:
    """Build optimizers and schedulers from config dicts (seed 001).

    The config may be in any of these forms:

    * an optimizer section: ``{'type': 'adam', 'learning_rate': 1e-4, ...}``;
    * nested: ``{'optimizer': {...}, 'scheduler': {'type': 'cosine', 'T_max':
      100}, 'gradient_clipping': {'enabled': True, 'max_norm': 1.0}}`` (also
      ``epochs``, ``steps_per_epoch``);
    * flat: ``{'training': {'optimizer': 'adamw', 'scheduler': 'cosine',
      'learning_rate': 1e-4, 'weight_decay': 1e-4, 'eta_min': 1e-7,
      'max_grad_norm': 1.0, 'amp': True, 'compile': True}}`` (or the section
      itself), where every other key goes to whichever of the two takes it;
      ``amp`` and ``compile`` are training-loop settings, checked (true or
      false) and not used here;
    * the keywords of :func:`create_optimizer_and_scheduler`
      (``optimizer_name``, ``lr``, ``scheduler_name``, ``epochs``, ...).

    Parameters
    ----------
    config : dict, optional
        Used when a method is called without one.
    epochs, steps_per_epoch : int, optional
        Training length, for schedulers whose length the config leaves out.
    """

    def __init__(self, config=None, epochs=None, steps_per_epoch=None):
        if config is not None:
            _plan_config(config, "OptimizerFactory")
        self.config = config
        self.epochs = _count(epochs, "OptimizerFactory: epochs")
        self.steps_per_epoch = _count(steps_per_epoch, "OptimizerFactory: steps_per_epoch")

    def _plan(self, config, where, epochs=None, steps_per_epoch=None):
        config = self.config if config is None else config
        if config is None:
            raise ConfigError(f"{where} needs a config (none was given to the factory either)")
        return _plan_config(config, where,
                            epochs if epochs is not None else self.epochs,
                            steps_per_epoch if steps_per_epoch is not None
                            else self.steps_per_epoch)

    def create_optimizer(self, model=None, config=None, *, params=None):
        """The optimizer a config describes, over ``model`` (or ``params``).

        A scheduler section, if any, is checked but not built.
        """
        where = "OptimizerFactory.create_optimizer"
        plan = self._plan(config, where)
        return _construct_optimizer(plan.optimizer, _optimizer_source(params, model, where))

    def create_scheduler(self, optimizer, config=None, *, epochs=None, steps_per_epoch=None):
        """The scheduler a config describes, for ``optimizer`` (None if it names none)."""
        plan = self._plan(config, "OptimizerFactory.create_scheduler", epochs, steps_per_epoch)
        return _construct_scheduler(plan.scheduler, optimizer)

    def create_optimizer_and_scheduler(self, model=None, config=None, *, params=None,
                                       epochs=None, steps_per_epoch=None):
        """(optimizer, scheduler or None) as a config describes, over ``model``."""
        where = "OptimizerFactory.create_optimizer_and_scheduler"
        plan = self._plan(config, where, epochs, steps_per_epoch)
        optimizer = _construct_optimizer(plan.optimizer, _optimizer_source(params, model, where))
        return optimizer, _construct_scheduler(plan.scheduler, optimizer)

    @staticmethod
    def get_config(optimizer, scheduler=None):
        """The nested config of an optimizer (and scheduler), which rebuilds them."""
        config = {"optimizer": get_config(optimizer)}
        if scheduler is not None:
            config["scheduler"] = get_config(scheduler)
        return config

    load_config = staticmethod(load_config)
    save_config = staticmethod(save_config)

    def __repr__(self):
        return (f"OptimizerFactory(config={self.config!r}, epochs={self.epochs!r}, "
                f"steps_per_epoch={self.steps_per_epoch!r})")


def get_config(obj):
    """The config of a built optimizer, scheduler, schedule, clipper or deferred optimizer.

    Optimizers and schedulers give their canonical config (see the module
    docstring), which :func:`build_optimizer` / :func:`build_scheduler` turn back
    into an equal object; a step-based schedule or a
    :class:`~neural_arch.optim.clipping.GradientClipper` its ``to_config()``; a
    :class:`DeferredOptimizer` its Keras-dialect config.
    """
    if isinstance(obj, (Optimizer, _lrs.LRScheduler)):
        recipe = _RECIPES.get(obj)
        if recipe is None:
            recipe = _derive_optimizer(obj) if isinstance(obj, Optimizer) \
                else _derive_scheduler(obj)
        return copy.deepcopy(recipe)
    if isinstance(obj, (LearningRateSchedule, GradientClipper, DeferredOptimizer)):
        return obj.to_config()
    raise ConfigError(f"get_config expects an optimizer, a scheduler, a schedule, a "
                      f"GradientClipper or a DeferredOptimizer, got {type(obj).__name__}")


# ---- seed 002: the Keras dialect -------------------------------------------------------------

#: our names -> Keras names in exported Keras configs
_TO_KERAS = {"lr": "learning_rate", "eps": "epsilon"}


def optimizer_builder(config, learning_rate=None, params=None):
    """Build an optimizer from a Keras-style config (seed 002).

    Parameters
    ----------
    config : dict
        ``type`` (any registered optimizer; seed 002 names ``adam``, ``adamw``,
        ``rmsprop``, ``adadelta``), Keras argument names (``beta_1``,
        ``beta_2``, ``epsilon``, ``rho`` -- RMSprop's is our ``alpha`` --,
        ``amsgrad``, ``centered``, ``momentum``, ``weight_decay``; PyTorch names
        work too), the clipping keys ``gradient_clipping_by_value``,
        ``gradient_clipping_by_norm_local``, ``gradient_clipping_by_norm`` (or
        Keras' ``clipvalue``, ``clipnorm``, ``global_clipnorm``), optionally
        ``learning_rate``.
    learning_rate : float, LearningRateSchedule or dict, optional
        The learning rate or a schedule (a dict is a schedule config); else the
        config's ``learning_rate``, else Keras's default.
    params : optional
        The parameters. Without them the result is a :class:`DeferredOptimizer`,
        built (like a Keras optimizer) by ``build(params)`` or at its first
        ``apply_gradients``.

    Returns
    -------
    Optimizer or DeferredOptimizer
        The optimizer clips the gradients before every update, in the order
        value, per-tensor norm, global norm
        (:func:`~neural_arch.optim.clipping.apply_gradient_clipping`).

    Notes
    -----
    Defaults are seed 002's (Adam/AdamW ``beta_1=0.9, beta_2=0.999,
    epsilon=1e-7, amsgrad=False``; RMSprop ``rho=0.9, momentum=0,
    epsilon=1e-7, centered=False``; Adadelta ``rho=0.9, epsilon=1e-7``) and
    otherwise Keras's (AdamW ``weight_decay=0.004``, learning rate 0.001 (SGD
    0.01), Adagrad ``initial_accumulator_value=0.1``, ``epsilon=1e-7`` for
    Adamax and Nadam); optimizers Keras lacks keep their own defaults. Only
    names and defaults are Keras's: the update rules stay this library's
    (PyTorch's), e.g. RMSprop adds ``epsilon`` after the square root.
    """
    where = "optimizer_builder"
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where} expects a config dict, got {type(config).__name__}")
    config = _coerce(dict(config))
    if "type" not in config:
        raise ConfigError(f"{where}: the config needs a 'type'; known optimizers: "
                          f"{', '.join(available_optimizers())}")
    name = config.pop("type")
    entry, cls = _OPTIMIZERS.lookup(name, where)
    if _kind(cls) == "free":
        raise ConfigError(f"{where}: {entry.name!r} is gradient-free and takes no gradients; "
                          f"build it with create_optimizer")
    rate = config.pop("learning_rate", None)
    if learning_rate is not None:
        if rate is not None or "lr" in config:
            raise ConfigError(f"{where}: the learning rate is given both as an argument and in "
                              f"the config")
        rate = learning_rate
    if rate is not None:
        if "lr" in config:
            raise ConfigError(f"{where}: 'learning_rate' and 'lr' both given; give one")
        config["lr"] = rate
    clip = {k: config.pop(k) for k in list(config) if k in _CLIP_NAMES}
    if clip:
        if "gradient_clipping" in config:
            raise ConfigError(f"{where}: clipping keys {sorted(clip)} beside a "
                              f"'gradient_clipping' section; use one")
        config["gradient_clipping"] = clip
    plan = _prepare_optimizer(name, config, where, dialect="keras")
    if params is not None:
        return _construct_optimizer(plan, _Params(params, where))
    return DeferredOptimizer(plan)


def _keras_config(optimizer_config, name):
    """A canonical optimizer config in seed 002's Keras spelling."""
    out = {}
    back = {ours: keras for keras, ours in _KERAS_NAMES.get(name, {}).items()}
    for key, value in optimizer_config.items():
        if key == "betas" and isinstance(value, list) and len(value) == 2:
            out["beta_1"], out["beta_2"] = value
        elif key == "gradient_clipping":
            simple = not value["adaptive"] and value["norm_type"] == 2.0 \
                and not value["error_if_nonfinite"]
            if not simple:
                out[key] = value
                continue
            for keras, ours in (("gradient_clipping_by_value", "clip_value"),
                                ("gradient_clipping_by_norm_local", "per_tensor_max_norm"),
                                ("gradient_clipping_by_norm", "max_norm")):
                if value[ours] is not None:
                    out[keras] = value[ours]
        else:
            out[back.get(key, _TO_KERAS.get(key, key))] = value
    return out


def _probe_ok(plan):
    """Whether ``plan`` can be built on a stand-in parameter (it names no parameters)."""
    if plan.groups is not None or plan.own_groups or "shared_parameters" in plan.kwargs:
        return False
    return plan.kind != "meta" or isinstance(plan.base, _OptimizerPlan) and _probe_ok(plan.base)


class DeferredOptimizer:
    """An optimizer described by :func:`optimizer_builder` but not yet given parameters.

    Like an unbuilt Keras optimizer: ``build(params)`` creates the optimizer
    (returned, and kept in :attr:`optimizer`), or the first
    ``apply_gradients(zip(grads, params))`` does. Once built, every attribute
    and method of the optimizer (``step``, ``zero_grad``, ``lr``,
    ``param_groups``, ``state_dict``, ...) is reachable through this object.
    """

    def __init__(self, plan):
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "_optimizer", None)
        probe = None
        if _probe_ok(plan):
            # Build once on a stand-in parameter: ranges are checked now, not at build().
            probe = _construct_optimizer(plan, _Params([Parameter(np.zeros(1))], "probe"))
        config = get_config(probe) if probe is not None else None
        object.__setattr__(self, "_config", config)

    @property
    def built(self) -> bool:
        """Whether the optimizer exists (after ``build`` or ``apply_gradients``)."""
        return self._optimizer is not None

    @property
    def optimizer(self):
        """The built optimizer (an error before ``build``)."""
        if self._optimizer is None:
            raise RuntimeError("this optimizer has no parameters yet: call build(params) or "
                               "apply_gradients(zip(grads, params)) first")
        return self._optimizer

    def build(self, params):
        """Create the optimizer over ``params`` and return it (once; again: the same one)."""
        if self._optimizer is not None:
            held = {id(p) for g in self._optimizer.param_groups for p in g["params"]}
            given = {id(p) for p in _Params(params, "DeferredOptimizer.build").flat}
            if held != given:
                raise RuntimeError("this optimizer was already built on other parameters")
            return self._optimizer
        optimizer = _construct_optimizer(self._plan, _Params(params, "DeferredOptimizer.build"))
        object.__setattr__(self, "_optimizer", optimizer)
        return optimizer

    def apply_gradients(self, grads_and_vars):
        """Set these gradients and take one step (Keras' ``apply_gradients``).

        Parameters
        ----------
        grads_and_vars : iterable of (gradient, Parameter)
            Gradients as Tensors or arrays (None: no gradient). Builds the
            optimizer on these parameters at the first call. Parameters of the
            optimizer that are not listed get no gradient for this step.
        """
        pairs = list(grads_and_vars)
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], Tensor)):
                raise TypeError(f"apply_gradients expects (gradient, parameter) pairs, such as "
                                f"zip(grads, params); item {i} is {pair!r}")
        if self._optimizer is None:
            self.build([v for _, v in pairs])
        listed = {id(v) for _, v in pairs}
        for group in self._optimizer.param_groups:
            for p in group["params"]:
                if id(p) not in listed:
                    p.grad = None
        for g, v in pairs:
            v.grad = g
        self._optimizer.step()

    def to_config(self):
        """The config in seed 002's Keras spelling, defaults filled in."""
        if self._config is None and self._optimizer is None:
            raise ConfigError("this optimizer's config names parameters; build it first")
        config = get_config(self._optimizer) if self._optimizer is not None else self._config
        return _keras_config(config, self._plan.entry.name)

    get_config = to_config

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        optimizer = object.__getattribute__(self, "_optimizer")
        if optimizer is None:
            raise AttributeError(f"{name!r}: this optimizer has no parameters yet; call "
                                 f"build(params) or apply_gradients(...) first")
        return getattr(optimizer, name)

    def __setattr__(self, name, value):
        setattr(self.optimizer, name, value)

    def __repr__(self):
        state = "built" if self._optimizer is not None else "not built"
        return f"DeferredOptimizer({self._plan.entry.name!r}, {state})"
