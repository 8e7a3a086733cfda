"""Argument handling shared by every optimizer: one alias resolver, the validators.

Aliases
-------
Users arrive with the spellings of several libraries. Every documented spelling
maps onto the PyTorch name, in one table (:data:`ALIASES`):

=====================  ======================
alias                  PyTorch name
=====================  ======================
``learning_rate``      ``lr``
``epsilon``            ``eps``
``beta1``, ``beta_1``  ``betas[0]``
``beta2``, ``beta_2``  ``betas[1]``
=====================  ======================

An alias is only accepted by an optimizer that has the PyTorch argument (``SGD``
takes no ``beta1``). Giving two spellings of one thing is a ``TypeError``, as is a
keyword nobody knows.

Validators
----------
A validator is ``check(name, value) -> value``: it returns the value in its
canonical form (``float``, ``bool``, a tuple of floats) or raises with a message
that names the argument, the value and the valid range, e.g.
``Invalid beta parameter at index 0: 1.5 (expected 0 <= beta < 1)``.
An optimizer lists one validator per hyper-parameter in its ``hyperparameters``
table; the base class runs them for the defaults and for every parameter group.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers

__all__ = ["ALIASES", "resolve_aliases", "accepts_aliases", "check_range", "non_negative",
           "positive", "unit_interval", "fraction", "flag", "optional_flag", "betas", "number"]

#: alias -> PyTorch name, or (PyTorch name, index) for one entry of a tuple argument.
ALIASES = {
    "learning_rate": "lr",
    "epsilon": "eps",
    "beta1": ("betas", 0),
    "beta_1": ("betas", 0),
    "beta2": ("betas", 1),
    "beta_2": ("betas", 1),
}


def _target(alias):
    t = ALIASES[alias]
    return t if isinstance(t, tuple) else (t, None)


def resolve_aliases(kwargs, accepted, defaults=None, owner="optimizer", given=(),
                    strict=True):
    """Rewrite the aliases in ``kwargs`` to the PyTorch names.

    Parameters
    ----------
    kwargs : mapping
        The keyword arguments (or parameter-group entries) as the user wrote them.
    accepted : collection of str
        The PyTorch names the owner takes. An alias counts only when its target is
        among them.
    defaults : mapping, optional
        Default values, used to fill the other half of ``betas`` when only
        ``beta1`` (or only ``beta2``) is given.
    owner : str
        Name used in error messages (the optimizer class).
    given : collection of str
        Names already given positionally; an alias for one of them is a conflict.
    strict : bool
        Reject keys that are neither accepted names nor aliases (keyword
        arguments); parameter groups pass False, since they may carry extra
        entries such as a scheduler's ``initial_lr``.

    Returns
    -------
    dict
        A new dict with PyTorch names only.

    Raises
    ------
    TypeError
        Two spellings of one argument, or (``strict``) an unknown keyword.
    """
    out = {}
    parts = {}          # name -> {index: (alias, value)}
    for key, value in kwargs.items():
        if key in ALIASES and _target(key)[0] in accepted:
            name, index = _target(key)
            if name in given or name in kwargs:
                raise TypeError(f"{owner} got both {name!r} and its alias {key!r}; give one")
            if index is None:
                if name in out:
                    raise TypeError(f"{owner} got two spellings of {name!r}; give one")
                out[name] = value
            else:
                slot = parts.setdefault(name, {})
                if index in slot:
                    raise TypeError(f"{owner} got both {slot[index][0]!r} and {key!r}, "
                                    f"two spellings of {name}[{index}]; give one")
                slot[index] = (key, value)
        elif strict and key not in accepted:
            unknown = sorted(k for k in kwargs if k not in accepted and not (
                k in ALIASES and _target(k)[0] in accepted))
            known = sorted(accepted)
            aliases = sorted(a for a in ALIASES if _target(a)[0] in accepted)
            raise TypeError(f"{owner} got unexpected keyword argument(s) "
                            f"{', '.join(map(repr, unknown))}; it accepts "
                            f"{', '.join(known)}" + (f" (aliases: {', '.join(aliases)})"
                                                     if aliases else ""))
        else:
            out[key] = value
    for name, slot in parts.items():
        default = (defaults or {}).get(name)
        if default is None or not isinstance(default, (tuple, list)):
            raise TypeError(f"{owner}: {name!r} has no default to complete "
                            f"{', '.join(a for a, _ in slot.values())} from; give {name}=")
        values = list(default)
        for index, (_, value) in slot.items():
            values[index] = value
        out[name] = tuple(values)
    return out


def accepts_aliases(init):
    """Decorate an optimizer's ``__init__`` so it takes the documented aliases.

    The decorated signature stays the PyTorch one (``help()`` shows it); the
    wrapper rewrites ``learning_rate=``, ``beta1=``, ... before the call and turns
    unknown keywords into a ``TypeError`` that lists the accepted ones. It also
    takes ``max_grad_norm=`` for every optimizer, sets it after ``__init__``
    (:attr:`Optimizer.max_grad_norm`) and validates it before.
    """
    sig = inspect.signature(init)
    params = list(sig.parameters.values())[1:]           # drop self
    accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    defaults = {p.name: p.default for p in params if p.default is not p.empty}

    takes_clipping = "max_grad_norm" in accepted

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        max_grad_norm = None
        if kwargs:
            if not takes_clipping and "max_grad_norm" in kwargs:
                # Every optimizer's global-norm clipping (Optimizer.max_grad_norm).
                max_grad_norm = kwargs.pop("max_grad_norm")
                if max_grad_norm is not None:
                    max_grad_norm = positive("max_grad_norm", max_grad_norm)
            kwargs = resolve_aliases(kwargs, accepted, defaults, type(self).__name__,
                                     given=positional[:len(args)])
        init(self, *args, **kwargs)
        if max_grad_norm is not None:
            self.max_grad_norm = max_grad_norm
    return wrapper


# ---- validators ------------------------------------------------------------------

_LABELS = {"lr": "learning rate", "eps": "epsilon value"}


def number(name, value):
    """A finite real number (bools are refused), returned as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} "
                        f"({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Invalid {_LABELS.get(name, name + ' value')}: {value!r} "
                         f"(expected a finite number)")
    return value


def check_range(name, value, low=None, high=None, low_open=False, high_open=True,
                label=None, symbol=None):
    """Check ``low <= value < high`` (ends configurable) and return ``float(value)``.

    The message reads ``Invalid <label>: <value> (expected <range>)``.
    """
    value = number(name, value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        s = symbol or name
        if high is None:
            rng = f"{s} {'>' if low_open else '>='} {low:g}"
        else:
            lo = "" if low is None else f"{low:g} {'<' if low_open else '<='} "
            rng = f"{lo}{s} {'<' if high_open else '<='} {high:g}"
        raise ValueError(f"Invalid {label or _LABELS.get(name, name + ' value')}: "
                         f"{value!r} (expected {rng})")
    return value


def non_negative(name, value):
    """``value >= 0``."""
    return check_range(name, value, 0.0)


def positive(name, value):
    """``value > 0``."""
    return check_range(name, value, 0.0, low_open=True)


def unit_interval(name, value):
    """``0 <= value <= 1``."""
    return check_range(name, value, 0.0, 1.0, high_open=False)


def fraction(name, value):
    """``0 <= value < 1`` (a decay rate such as a beta)."""
    return check_range(name, value, 0.0, 1.0)


def _is_numpy_bool(value):
    # numpy.bool_ (named ``bool`` since NumPy 2), without importing NumPy here.
    return type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")


def flag(name, value):
    """A bool (NumPy bools accepted)."""
    if isinstance(value, bool):
        return value
    if _is_numpy_bool(value):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def optional_flag(name, value):
    """None, True or False (NumPy bools accepted): a switch whose None means "decide
    automatically", such as ``fused``."""
    if value is None or isinstance(value, bool):
        return value
    if _is_numpy_bool(value):
        return bool(value)
    raise TypeError(f"{name} must be None, True or False, got {value!r} "
                    f"({type(value).__name__})")


def betas(name, value, count=2):
    """A pair (or ``count``-tuple) of decay rates, each ``0 <= beta < 1``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") \
            or len(value) != count:
        raise TypeError(f"{name} must be a tuple of {count} numbers, got {value!r}")
    return tuple(check_range(name, b, 0.0, 1.0, label=f"beta parameter at index {i}",
                             symbol="beta") for i, b in enumerate(value))
