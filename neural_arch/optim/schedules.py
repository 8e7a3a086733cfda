r"""Step-based learning-rate schedules with Keras semantics, and their builder.

A schedule is a callable object: ``schedule(step) -> lr`` for a step count
``step >= 0``. Any optimizer takes one as its ``lr``; it then evaluates the
schedule at its own step count (``optimizer.step_count``) before each update,
so the first update uses ``schedule(0)``, and ``optimizer.lr`` reads the value
the next update will use. Schedules are pure functions of the step: they hold
no state, so resuming is just resuming the optimizer's step count.

With :math:`\eta_0` the initial ``learning_rate``, :math:`s` the step and
:math:`T` the ``decay_steps``:

=========================  ======================================================
``CosineDecay``            :math:`\eta_0\,[(1-\alpha)\tfrac12(1+\cos\pi\tfrac{\min(s,T)}{T})+\alpha]`
``ExponentialDecay``       :math:`\eta_0\,r^{s/T}` (:math:`r^{\lfloor s/T\rfloor}` with ``staircase``)
``CosineDecayRestarts``    cosine decay over periods :math:`T, T t_{mul}, T t_{mul}^2, \ldots`;
                           period :math:`i` starts at :math:`m_{mul}^i` (see the class)
``PiecewiseConstant``      ``values[i]`` for ``boundaries[i-1] < s <= boundaries[i]``
``PolynomialDecay``        :math:`(\eta_0-\eta_{end})(1-\tfrac{\min(s,T)}{T})^p+\eta_{end}`
                           (with ``cycle``, :math:`T` grows to the next multiple
                           :math:`T\lceil s/T\rceil` instead of capping :math:`s`)
``Warmup``                 :math:`\eta_{start}+(\text{primary}(0)-\eta_{start})\,s/W` for
                           :math:`s < W`, then :math:`\text{primary}(s-W)`
=========================  ======================================================

Defaults follow the optimization guide (seed 002) where it names one, which
differs from Keras in three places: ``CosineDecay`` ``alpha=1e-4``, and
``CosineDecayRestarts`` ``m_mul=0.9, alpha=1e-3`` (Keras: 0, 1, 0). The warmup
ramps towards the primary schedule's value at step 0 and shifts the primary by
``W``, so a cosine decay with warmup lasts ``W + decay_steps`` steps.

Configs
-------
Every schedule has ``to_config()``, a flat dict in the builder's format, with the
schedule's ``type`` and all its parameters (defaults filled in), and
``from_config(config)``, which rebuilds an equal schedule from it. A warmup adds
``warmup_steps`` and ``warmup_start_lr`` to the flat dict of its primary
schedule::

    {"type": "cosine_decay", "learning_rate": 1e-3, "decay_steps": 10000,
     "alpha": 1e-4, "warmup_steps": 1000, "warmup_start_lr": 1e-8}

:func:`learning_rate_schedule_builder` reads that format. Keys use the names of
the guide, so ``CosineDecayRestarts``'s ``first_decay_steps`` is written
``decay_steps`` (``first_decay_steps`` is accepted on input). To add a schedule,
subclass :class:`LearningRateSchedule` with a ``type_name``; it is then known to
the builder and to optimizer state dicts.
"""
from __future__ import annotations

import bisect
import inspect
import math
import numbers
from collections.abc import Mapping

from ._args import check_range, flag

__all__ = ["LearningRateSchedule", "CosineDecay", "ExponentialDecay",
           "CosineDecayRestarts", "PiecewiseConstant", "PiecewiseConstantDecay",
           "PolynomialDecay", "Warmup", "learning_rate_schedule_builder",
           "DEFAULT_WARMUP_STEPS", "DEFAULT_WARMUP_START_LR"]

DEFAULT_WARMUP_STEPS = 0
DEFAULT_WARMUP_START_LR = 1e-8

_WARMUP_KEYS = ("warmup_steps", "warmup_start_lr")


# ---- argument checks (they keep an int an int, so configs round-trip exactly) ----

def _plain(value):
    """A NumPy scalar as the Python number it holds; anything else unchanged."""
    if not isinstance(value, (bool, int, float)) and hasattr(value, "item") \
            and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _real(name, value, low=None, low_open=False, high=None, high_open=True):
    value = _plain(value)
    check_range(name, value, low, high, low_open=low_open, high_open=high_open)
    return value


def _count(name, value):
    """A non-negative integer (a float with an integral value is refused too)."""
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {value!r} "
                        f"({type(value).__name__})")
    if value < 0:
        raise ValueError(f"Invalid {name} value: {value!r} (expected {name} >= 0)")
    return int(value)


def _step(step):
    """The step as a float, checked (an int, a float or a NumPy scalar, >= 0)."""
    if isinstance(step, int) and not isinstance(step, bool):
        if step < 0:
            raise ValueError(f"a schedule's step must be >= 0, got {step}")
        return float(step)
    s = _plain(step)
    if isinstance(s, bool) or not isinstance(s, numbers.Real):
        raise TypeError(f"a schedule's step must be a number, got {step!r} "
                        f"({type(step).__name__})")
    s = float(s)
    if not s >= 0 or math.isinf(s):
        raise ValueError(f"a schedule's step must be a finite number >= 0, got {step!r}")
    return s


# ---- base class ----------------------------------------------------------------------

class LearningRateSchedule:
    """Base class of the step-based schedules: ``schedule(step) -> lr``.

    Subclasses set ``type_name`` (the builder's name), store their constructor
    arguments as attributes of the same names, and implement ``__call__``.
    ``_config_names`` maps a constructor argument to its config key where the
    two differ.
    """

    type_name: str = ""
    _config_names: dict = {}
    _registry: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("type_name")
        if name:
            LearningRateSchedule._registry[name] = cls

    def __call__(self, step):
        raise NotImplementedError(f"{type(self).__name__} does not implement __call__")

    # ---- configs --------------------------------------------------------------
    @classmethod
    def _arguments(cls):
        """Constructor argument names and defaults: [(name, default or empty)]."""
        args = cls.__dict__.get("_argument_cache")
        if args is None:
            sig = inspect.signature(cls.__init__)
            args = [(p.name, p.default) for p in list(sig.parameters.values())[1:]]
            cls._argument_cache = args
        return args

    def to_config(self):
        """The schedule as a flat dict: ``type`` and every parameter.

        ``from_config`` (or :func:`learning_rate_schedule_builder`) of the result
        gives an equal schedule.
        """
        config = {"type": self.type_name}
        for name, _ in self._arguments():
            value = getattr(self, name)
            config[self._config_names.get(name, name)] = \
                list(value) if isinstance(value, list) else value
        return config

    @classmethod
    def from_config(cls, config):
        """Build a schedule from a flat config (the format of :meth:`to_config`).

        On :class:`LearningRateSchedule` itself the config's ``type`` picks the
        class, and warmup keys wrap the result in :class:`Warmup` when
        ``warmup_steps > 0``; on a subclass ``type`` may be omitted but, when
        given, must be that class's.

        Raises
        ------
        TypeError
            ``config`` is not a dict, or a value has the wrong type.
        ValueError
            No or an unknown ``type`` (the message lists the known ones), a
            missing required parameter, an unknown key, or an invalid value.
        """
        if not isinstance(config, Mapping):
            raise TypeError(f"a schedule config must be a dict, got {type(config).__name__}")
        if cls is LearningRateSchedule or cls is Warmup:
            return _build(config, always_wrap=cls is Warmup)
        given = config.get("type", cls.type_name)
        if given != cls.type_name:
            raise ValueError(f"{cls.__name__}.from_config got a config of type {given!r}; "
                             f"expected {cls.type_name!r}")
        warm = [k for k in _WARMUP_KEYS if k in config]
        if warm:
            raise ValueError(f"{cls.__name__}.from_config got warmup keys {warm}; build a "
                             f"schedule with warmup with learning_rate_schedule_builder or "
                             f"Warmup.from_config")
        return cls._from_flat({k: v for k, v in config.items() if k != "type"})

    @classmethod
    def _from_flat(cls, params, warmup_keys=()):
        """``cls(**params)`` with config names, after checking the keys."""
        to_arg = {key: arg for arg, key in cls._config_names.items()}
        aliases = {arg: arg for arg in cls._config_names}   # the constructor name works too
        arguments = cls._arguments()
        kwargs = {}
        for key, value in params.items():
            arg = to_arg.get(key, aliases.get(key, key))
            if arg not in dict(arguments):
                valid = [cls._config_names.get(a, a) for a, _ in arguments] + list(warmup_keys)
                raise ValueError(f"unknown key {key!r} in a {cls.type_name!r} schedule config; "
                                 f"valid keys: type, {', '.join(valid)}")
            if arg in kwargs:
                raise ValueError(f"the {cls.type_name!r} config gives {arg!r} twice "
                                 f"({cls._config_names[arg]!r} and {arg!r}); give one")
            kwargs[arg] = value
        missing = [cls._config_names.get(a, a) for a, d in arguments
                   if d is inspect.Parameter.empty and a not in kwargs]
        if missing:
            raise ValueError(f"Missing required parameters for the {cls.type_name!r} "
                             f"schedule: {', '.join(missing)}")
        return cls(**kwargs)

    # ---- comparison and display --------------------------------------------------
    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.to_config() == other.to_config()

    def __hash__(self):
        return hash((type(self), repr(self.to_config())))

    def __repr__(self):
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name, _ in self._arguments())
        return f"{type(self).__name__}({args})"


# ---- the schedules ---------------------------------------------------------------------

class CosineDecay(LearningRateSchedule):
    r"""Cosine decay from ``learning_rate`` to ``alpha * learning_rate`` over ``decay_steps``.

    .. math:: \eta(s) = \eta_0 \left[(1-\alpha)\,\tfrac12\left(1 + \cos\frac{\pi
              \min(s, T)}{T}\right) + \alpha\right]

    Parameters
    ----------
    learning_rate : float
        Initial learning rate :math:`\eta_0` (Keras: ``initial_learning_rate``).
    decay_steps : int or float
        Steps :math:`T > 0` of the decay; the rate stays at ``alpha *
        learning_rate`` afterwards.
    alpha : float, default 1e-4
        Final rate as a fraction of the initial one.
    """

    type_name = "cosine_decay"

    def __init__(self, learning_rate, decay_steps, alpha=1e-4):
        self.learning_rate = _real("learning_rate", learning_rate, 0.0)
        self.decay_steps = _real("decay_steps", decay_steps, 0.0, low_open=True)
        self.alpha = _real("alpha", alpha, 0.0)

    def __call__(self, step):
        t = min(_step(step), self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * t))
        return self.learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)


class ExponentialDecay(LearningRateSchedule):
    r"""Exponential decay: the rate is multiplied by ``decay_rate`` every ``decay_steps``.

    .. math:: \eta(s) = \eta_0\, r^{s/T} \quad (r^{\lfloor s/T \rfloor}
              \text{ with staircase})

    Parameters
    ----------
    learning_rate : float
        Initial learning rate :math:`\eta_0`.
    decay_steps : int or float
        Steps :math:`T > 0` per factor of ``decay_rate``.
    decay_rate : float
        The factor :math:`r > 0`.
    staircase : bool, default False
        Decay in whole steps of ``decay_steps`` (a staircase) instead of smoothly.
    """

    type_name = "exponential_decay"

    def __init__(self, learning_rate, decay_steps, decay_rate, staircase=False):
        self.learning_rate = _real("learning_rate", learning_rate, 0.0)
        self.decay_steps = _real("decay_steps", decay_steps, 0.0, low_open=True)
        self.decay_rate = _real("decay_rate", decay_rate, 0.0, low_open=True)
        self.staircase = flag("staircase", staircase)

    def __call__(self, step):
        p = _step(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.learning_rate * self.decay_rate ** p


class CosineDecayRestarts(LearningRateSchedule):
    r"""Cosine decay with warm restarts (SGDR, Loshchilov & Hutter, arXiv:1608.03983).

    Period :math:`i = 0, 1, \ldots` lasts :math:`T t_{mul}^i` steps and decays
    from :math:`m_{mul}^i \eta_0` towards :math:`\alpha \eta_0`:

    .. math:: \eta(s) = \eta_0 \left[(1-\alpha)\, m_{mul}^i\, \tfrac12 (1 + \cos \pi f)
              + \alpha\right]

    where :math:`f \in [0, 1)` is the fraction of period :math:`i` done at step
    :math:`s`. The period index is found in closed form (a logarithm when
    :math:`t_{mul} \ne 1`) and then corrected against the exact period starts, so
    a restart is never a step early or late through rounding.

    Parameters
    ----------
    learning_rate : float
        Initial learning rate :math:`\eta_0`.
    first_decay_steps : int or float
        Length :math:`T > 0` of the first period (config key ``decay_steps``).
    t_mul : float, default 2.0
        Factor :math:`\ge 1` on the period length after each restart. (Keras also
        takes :math:`t_{mul} < 1`, whose periods add up to the finite
        :math:`T / (1 - t_{mul})` steps, after which its rate is NaN; refused here.)
    m_mul : float, default 0.9
        Factor :math:`\ge 0` on the restart rate after each restart.
    alpha : float, default 1e-3
        Floor of the decay as a fraction of ``learning_rate``.
    """

    type_name = "cosine_decay_restarts"
    _config_names = {"first_decay_steps": "decay_steps"}

    def __init__(self, learning_rate, first_decay_steps, t_mul=2.0, m_mul=0.9, alpha=1e-3):
        self.learning_rate = _real("learning_rate", learning_rate, 0.0)
        self.first_decay_steps = _real("first_decay_steps", first_decay_steps, 0.0,
                                       low_open=True)
        self.t_mul = _real("t_mul", t_mul, 1.0)
        self.m_mul = _real("m_mul", m_mul, 0.0)
        self.alpha = _real("alpha", alpha, 0.0)

    def _period_start(self, i):
        """Start of period ``i`` in units of the first period: sum of t_mul^j, j < i."""
        t = self.t_mul
        return float(i) if t == 1.0 else (1.0 - t ** i) / (1.0 - t)

    def __call__(self, step):
        done = _step(step) / self.first_decay_steps     # in first periods
        t = self.t_mul
        if t == 1.0:
            i = math.floor(done)
        else:
            i = math.floor(math.log(1.0 - done * (1.0 - t)) / math.log(t))
            while self._period_start(i + 1) <= done:
                i += 1
            while i > 0 and self._period_start(i) > done:
                i -= 1
        fraction = (done - self._period_start(i)) / t ** i
        cosine = 0.5 * self.m_mul ** i * (1.0 + math.cos(math.pi * fraction))
        return self.learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)


class PiecewiseConstant(LearningRateSchedule):
    """A constant rate per interval of steps.

    ``values[0]`` for ``step <= boundaries[0]``, ``values[i]`` for
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last
    boundary (as Keras's ``PiecewiseConstantDecay``, also importable under that
    name).

    Parameters
    ----------
    boundaries : sequence of numbers
        Strictly increasing step counts.
    values : sequence of float
        ``len(boundaries) + 1`` non-negative learning rates.
    """

    type_name = "piecewise_constant"

    def __init__(self, boundaries, values):
        for name, seq in (("boundaries", boundaries), ("values", values)):
            if isinstance(seq, (str, bytes, Mapping)) or not hasattr(seq, "__len__"):
                raise TypeError(f"{name} must be a list of numbers, got {seq!r}")
        self.boundaries = [_real(f"boundaries[{i}]", b) for i, b in enumerate(boundaries)]
        self.values = [_real(f"values[{i}]", v, 0.0) for i, v in enumerate(values)]
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(f"PiecewiseConstant needs one more value than boundaries, got "
                             f"{len(self.boundaries)} boundaries and {len(self.values)} values")
        if any(b >= c for b, c in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"boundaries must be strictly increasing, got {self.boundaries}")

    def __call__(self, step):
        return self.values[bisect.bisect_left(self.boundaries, _step(step))]


PiecewiseConstantDecay = PiecewiseConstant


class PolynomialDecay(LearningRateSchedule):
    r"""Polynomial decay from ``learning_rate`` to ``end_learning_rate`` over ``decay_steps``.

    .. math:: \eta(s) = (\eta_0 - \eta_{end}) \left(1 - \frac{\min(s, T)}{T}\right)^p
              + \eta_{end}

    With ``cycle`` the step is not capped; instead :math:`T` becomes
    :math:`T \lceil s/T \rceil` (:math:`T` at step 0), so the decay restarts from
    a lower rate at each multiple of :math:`T`.

    Parameters
    ----------
    learning_rate : float
        Initial learning rate :math:`\eta_0`.
    decay_steps : int or float
        Steps :math:`T > 0` of the decay.
    end_learning_rate : float, default 1e-4
        Final rate :math:`\eta_{end}`.
    power : float, default 1.0
        Exponent :math:`p \ge 0` (1: linear).
    cycle : bool, default False
        Cycle beyond ``decay_steps`` as described above.
    """

    type_name = "polynomial_decay"

    def __init__(self, learning_rate, decay_steps, end_learning_rate=1e-4, power=1.0,
                 cycle=False):
        self.learning_rate = _real("learning_rate", learning_rate, 0.0)
        self.decay_steps = _real("decay_steps", decay_steps, 0.0, low_open=True)
        self.end_learning_rate = _real("end_learning_rate", end_learning_rate, 0.0)
        self.power = _real("power", power, 0.0)
        self.cycle = flag("cycle", cycle)

    def __call__(self, step):
        s = _step(step)
        total = self.decay_steps
        if self.cycle:
            total *= max(1.0, math.ceil(s / total))
        else:
            s = min(s, total)
        remaining = 1.0 - s / total
        return (self.learning_rate - self.end_learning_rate) * remaining ** self.power \
            + self.end_learning_rate


class Warmup(LearningRateSchedule):
    r"""A linear warmup in front of another schedule, which it shifts by ``warmup_steps``.

    .. math:: \eta(s) = \begin{cases}
              \eta_{start} + (\text{primary}(0) - \eta_{start})\, s / W & s < W \\
              \text{primary}(s - W) & s \ge W \end{cases}

    Parameters
    ----------
    schedule : LearningRateSchedule
        The primary schedule (not itself a ``Warmup``).
    warmup_steps : int
        Length :math:`W \ge 0` of the ramp (0: the primary schedule unchanged).
    warmup_start_lr : float, default 1e-8
        Rate :math:`\eta_{start}` at step 0.

    Notes
    -----
    Its config is the primary's flat config plus ``warmup_steps`` and
    ``warmup_start_lr``.
    """

    type_name = "warmup"

    def __init__(self, schedule, warmup_steps, warmup_start_lr=DEFAULT_WARMUP_START_LR):
        if not isinstance(schedule, LearningRateSchedule) or isinstance(schedule, Warmup):
            raise TypeError(f"Warmup wraps a LearningRateSchedule that is not itself a "
                            f"Warmup, got {schedule!r}")
        self.schedule = schedule
        self.warmup_steps = _count("warmup_steps", warmup_steps)
        self.warmup_start_lr = _real("warmup_start_lr", warmup_start_lr, 0.0)

    def __call__(self, step):
        s = _step(step)
        w = self.warmup_steps
        if s < w:
            start = self.warmup_start_lr
            return start + (self.schedule(0) - start) * (s / w)
        return self.schedule(s - w)

    def to_config(self):
        config = self.schedule.to_config()
        config["warmup_steps"] = self.warmup_steps
        config["warmup_start_lr"] = self.warmup_start_lr
        return config

    def __repr__(self):
        return (f"Warmup({self.schedule!r}, warmup_steps={self.warmup_steps!r}, "
                f"warmup_start_lr={self.warmup_start_lr!r})")


# ---- the builder ---------------------------------------------------------------------

def _known_types():
    return ", ".join(sorted(n for n in LearningRateSchedule._registry if n != "warmup"))


def _build(config, always_wrap=False):
    kind = config.get("type")
    if kind is None:
        raise ValueError(f"a schedule config needs a 'type'; known types: {_known_types()}")
    cls = LearningRateSchedule._registry.get(kind) if isinstance(kind, str) else None
    if cls is None or cls is Warmup:
        raise ValueError(f"Unknown learning rate schedule type {kind!r}; known types: "
                         f"{_known_types()}")
    params = {k: v for k, v in config.items() if k != "type" and k not in _WARMUP_KEYS}
    primary = cls._from_flat(params, _WARMUP_KEYS)
    if always_wrap or any(k in config for k in _WARMUP_KEYS):
        return Warmup(primary, config.get("warmup_steps", DEFAULT_WARMUP_STEPS),
                      config.get("warmup_start_lr", DEFAULT_WARMUP_START_LR))
    return primary


def learning_rate_schedule_builder(config):
    """Build a schedule from a flat config dict (seed 002's format).

    Parameters
    ----------
    config : dict
        ``type`` (``cosine_decay``, ``exponential_decay``,
        ``cosine_decay_restarts``, ``piecewise_constant``, ``polynomial_decay``),
        the schedule's parameters at top level (``learning_rate``,
        ``decay_steps``, ...; see each class), and optionally ``warmup_steps``
        (default 0) and ``warmup_start_lr`` (default 1e-8). The dict is not
        modified.

    Returns
    -------
    LearningRateSchedule
        The schedule, wrapped in :class:`Warmup` when ``warmup_steps > 0`` or
        ``warmup_start_lr`` is given, even with 0 steps (so ``to_config()`` gives
        back every key of ``config``, with the defaults filled in).

    Raises
    ------
    ValueError
        ``Missing required parameters`` (naming them), an unknown ``type``
        (listing the known ones), an unknown key (listing the valid ones), or an
        invalid value.
    TypeError
        A value of the wrong type, or ``config`` not a dict.

    Examples
    --------
    >>> s = learning_rate_schedule_builder({"type": "cosine_decay", "learning_rate": 1e-3,
    ...                                     "decay_steps": 10000, "warmup_steps": 1000})
    >>> round(s(1000), 12), round(s(11000), 12)
    (0.001, 1e-07)
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"learning_rate_schedule_builder expects a dict, got "
                        f"{type(config).__name__}")
    return _build(config)
