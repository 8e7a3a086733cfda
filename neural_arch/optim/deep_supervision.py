r"""Weight schedules for deep supervision: how much each output's loss counts.

A network with ``n`` supervised outputs (a U-Net with side outputs at several
scales) adds up its losses with weights that change over training.
:func:`deep_supervision_schedule_builder` turns a config into
``f(progress) -> weights``: a float64 NumPy array of ``n`` non-negative weights
that sum to 1, for training progress ``p`` in ``[0, 1]``.

Output 0 is the final, highest-resolution output; output ``n-1`` the deepest,
lowest-resolution one. "Low to high" schedules move the weight from the deep
outputs (early in training) to output 0 (late). With
:math:`u = [1, 2, \ldots, n]`, :math:`d = [n, n-1, \ldots, 1]` and
:math:`N(w) = w / \sum w`:

==============================  =====================================================
``constant_equal``              :math:`1/n` each
``constant_low_to_high``        :math:`N(d)` (output 0 heaviest)
``constant_high_to_low``        :math:`N(u)` (deepest output heaviest)
``linear_low_to_high``          :math:`N((1-p)\,u + p\,d)`
``non_linear_low_to_high``      :math:`N((1-p^2)\,u + p^2 d)`
``custom_sigmoid_low_to_high``  :math:`N((1-s)\,u + s\,d)`, :math:`s = 0` for :math:`p < t`,
                                else :math:`\sigma(k(\frac{p-t}{1-t} - x_0))`
``scale_by_scale_low_to_high``  one-hot on output :math:`n-1-\min(\lfloor pn \rfloor, n-1)`
``cosine_annealing``            :math:`N(\max(0, 1 + m_i \cos(2\pi f p)\, A))`,
                                :math:`m_i = (n-1-i) - \frac{n-1}{2}`,
                                :math:`A = (1 - (1-r)p)/n`
``curriculum``                  equal weights on the deepest :math:`c` outputs
                                :math:`n-1, \ldots, n-c`, :math:`c = \max(1,
                                \lfloor M p \rfloor)` (:math:`M p^2` with ``'exp'``),
                                :math:`c = M` at :math:`p = 1`
``step_wise``                   ``linear_low_to_high`` at :math:`p / \tau` for
                                :math:`p < \tau`, then one-hot on output 0
==============================  =====================================================

Parameters (config entries) and defaults: ``custom_sigmoid_low_to_high``
``k=10, x0=0.5, transition_point=0.25``; ``cosine_annealing`` ``frequency=3,
final_ratio=0.5``; ``curriculum`` ``max_active_outputs=n,
activation_strategy='linear'``; ``step_wise`` ``threshold=0.5``.

Progress outside ``[0, 1]`` (or NaN) is a ``ValueError``, not clamped: a value
out of range means the caller computed progress wrongly, and clamping would hide
it. The floors :math:`\lfloor pn \rfloor` and :math:`\lfloor Mp \rfloor` treat a
product within a relative ``1e-9`` of an integer as that integer, so progress
computed as ``29 / 100`` (for which ``100 * (29 / 100)`` is
``28.999999999999996``) does not lose a step.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

__all__ = ["deep_supervision_schedule_builder", "DeepSupervisionSchedule",
           "DEEP_SUPERVISION_SCHEDULES"]


# ---- helpers ---------------------------------------------------------------------

def _normalized(w):
    return w / w.sum()


def _floor(x):
    """``floor(x)``, except that ``x`` within a relative 1e-9 of an integer is that integer."""
    nearest = round(x)
    if abs(x - nearest) <= 1e-9 * max(1.0, abs(x)):
        return int(nearest)
    return math.floor(x)


def _ramps(n):
    up = np.arange(1, n + 1, dtype=np.float64)      # u = [1..n]: deepest output heaviest
    return up, up[::-1].copy()                        # d = [n..1]: output 0 heaviest


def _blend(n, s):
    """``N((1-s) u + s d)``: from favouring the deepest output (s=0) to output 0 (s=1)."""
    u, d = _ramps(n)
    return _normalized((1.0 - s) * u + s * d)


def _one_hot(n, i):
    w = np.zeros(n)
    w[i] = 1.0
    return w


# ---- the schedules: (progress, n, **params) -> weights -------------------------------

def _constant_equal(p, n):
    return np.full(n, 1.0 / n)


def _constant_low_to_high(p, n):
    return _normalized(_ramps(n)[1])


def _constant_high_to_low(p, n):
    return _normalized(_ramps(n)[0])


def _linear_low_to_high(p, n):
    return _blend(n, p)


def _non_linear_low_to_high(p, n):
    return _blend(n, p * p)


def _custom_sigmoid_low_to_high(p, n, k, x0, transition_point):
    t = transition_point
    s = 0.0 if p < t else 1.0 / (1.0 + math.exp(-k * ((p - t) / (1.0 - t) - x0)))
    return _blend(n, s)


def _scale_by_scale_low_to_high(p, n):
    return _one_hot(n, n - 1 - min(_floor(p * n), n - 1))


def _cosine_annealing(p, n, frequency, final_ratio):
    m = (n - 1 - np.arange(n)) - (n - 1) / 2.0          # +(n-1)/2 at output 0 ... -(n-1)/2
    amplitude = (1.0 - (1.0 - final_ratio) * p) / n
    w = np.maximum(0.0, 1.0 + m * math.cos(2.0 * math.pi * frequency * p) * amplitude)
    return _normalized(w)


def _curriculum(p, n, max_active_outputs, activation_strategy):
    m = n if max_active_outputs is None else max_active_outputs
    reach = p if activation_strategy == "linear" else p * p
    active = m if p >= 1.0 else min(m, max(1, _floor(m * reach)))
    w = np.zeros(n)
    w[n - active:] = 1.0 / active                       # outputs n-1, ..., n-active
    return w


def _step_wise(p, n, threshold):
    if p >= threshold:
        return _one_hot(n, 0)
    return _blend(n, p / threshold)


# ---- parameter checks --------------------------------------------------------------

def _real(low=None, high=None, low_open=False, high_open=False):
    def check(name, value, n):
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"deep supervision parameter {name!r} must be a number, got "
                            f"{value!r} ({type(value).__name__})")
        value = float(value)
        bad = not math.isfinite(value) \
            or (low is not None and (value <= low if low_open else value < low)) \
            or (high is not None and (value >= high if high_open else value > high))
        if bad:
            lo = "" if low is None else f"{low:g} {'<' if low_open else '<='} "
            hi = "" if high is None else f" {'<' if high_open else '<='} {high:g}"
            raise ValueError(f"invalid deep supervision parameter {name}={value!r} "
                             f"(expected {lo}{name}{hi})")
        return value
    return check


def _active_outputs(name, value, n):
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"deep supervision parameter {name!r} must be an integer, got "
                        f"{value!r} ({type(value).__name__})")
    if not 1 <= value <= n:
        raise ValueError(f"invalid deep supervision parameter {name}={value!r} "
                         f"(expected 1 <= {name} <= num_outputs = {n})")
    return int(value)


def _strategy(name, value, n):
    if value not in ("linear", "exp"):
        raise ValueError(f"invalid deep supervision parameter {name}={value!r} "
                         f"(expected 'linear' or 'exp')")
    return value


#: name -> (function, {parameter: (default, check)})
DEEP_SUPERVISION_SCHEDULES = {
    "constant_equal": (_constant_equal, {}),
    "constant_low_to_high": (_constant_low_to_high, {}),
    "constant_high_to_low": (_constant_high_to_low, {}),
    "linear_low_to_high": (_linear_low_to_high, {}),
    "non_linear_low_to_high": (_non_linear_low_to_high, {}),
    "custom_sigmoid_low_to_high": (_custom_sigmoid_low_to_high, {
        "k": (10.0, _real()),
        "x0": (0.5, _real()),
        "transition_point": (0.25, _real(0.0, 1.0, high_open=True))}),
    "scale_by_scale_low_to_high": (_scale_by_scale_low_to_high, {}),
    "cosine_annealing": (_cosine_annealing, {
        "frequency": (3.0, _real()),
        "final_ratio": (0.5, _real())}),
    "curriculum": (_curriculum, {
        "max_active_outputs": (None, _active_outputs),
        "activation_strategy": ("linear", _strategy)}),
    "step_wise": (_step_wise, {
        "threshold": (0.5, _real(0.0, 1.0, low_open=True))}),
}


# ---- the schedule object and the builder -------------------------------------------

class DeepSupervisionSchedule:
    """``schedule(progress) -> weights`` for ``num_outputs`` supervised outputs.

    Built by :func:`deep_supervision_schedule_builder`; see the module docstring
    for the formulas.

    Attributes
    ----------
    type : str
        The schedule's name.
    num_outputs : int
    invert_order : bool
        Whether the weights are reversed (output 0 taking the deepest output's).
    params : dict
        The schedule's parameters, defaults filled in.
    """

    def __init__(self, kind, num_outputs, invert_order, params):
        self.type = kind
        self.num_outputs = num_outputs
        self.invert_order = invert_order
        self.params = params
        self._fn = DEEP_SUPERVISION_SCHEDULES[kind][0]

    def __call__(self, progress):
        """Weights at training progress ``progress`` in [0, 1]: ``num_outputs`` floats summing to 1.

        Raises
        ------
        ValueError
            ``progress`` outside [0, 1] or NaN.
        TypeError
            ``progress`` not a number.
        """
        p = progress.item() if isinstance(progress, np.generic) or (
            isinstance(progress, np.ndarray) and progress.ndim == 0) else progress
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"training progress must be a number in [0, 1], got {progress!r} "
                            f"({type(progress).__name__})")
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"training progress must be in [0, 1], got {progress!r}")
        w = self._fn(p, self.num_outputs, **self.params)
        return w[::-1].copy() if self.invert_order else w

    def to_config(self):
        """``{'type': ..., 'config': {parameters}}``: the builder's config of this schedule."""
        return {"type": self.type, "config": dict(self.params)}

    def __repr__(self):
        return (f"DeepSupervisionSchedule({self.type!r}, num_outputs={self.num_outputs}, "
                f"invert_order={self.invert_order}, params={self.params})")


def deep_supervision_schedule_builder(config, num_outputs, invert_order=False):
    """Build a deep-supervision weight schedule from a config.

    Parameters
    ----------
    config : dict
        ``{'type': name, 'config': {parameters}}``; ``'config'`` may be omitted
        when the defaults are wanted. Names: ``constant_equal``,
        ``constant_low_to_high``, ``constant_high_to_low``, ``linear_low_to_high``,
        ``non_linear_low_to_high``, ``custom_sigmoid_low_to_high`` (``k``, ``x0``,
        ``transition_point``), ``scale_by_scale_low_to_high``, ``cosine_annealing``
        (``frequency``, ``final_ratio``), ``curriculum`` (``max_active_outputs``,
        ``activation_strategy``), ``step_wise`` (``threshold``).
    num_outputs : int
        Number ``n >= 1`` of supervised outputs; output 0 is the final,
        highest-resolution one.
    invert_order : bool, default False
        Reverse the weights, for models that list their outputs deepest first.

    Returns
    -------
    DeepSupervisionSchedule
        ``f(progress)`` -> float64 array of ``num_outputs`` non-negative weights
        summing to 1, for ``progress`` in [0, 1] (outside it: ``ValueError``).

    Raises
    ------
    ValueError
        An unknown type (the message lists the ten known ones), an unknown
        parameter (listing the valid ones), or an invalid value.
    TypeError
        ``config`` not a dict, ``num_outputs`` not an integer, or a parameter of
        the wrong type.

    Examples
    --------
    >>> f = deep_supervision_schedule_builder({"type": "constant_low_to_high"}, 5)
    >>> f(0.3).round(3).tolist()
    [0.333, 0.267, 0.2, 0.133, 0.067]
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"deep_supervision_schedule_builder expects a dict config, got "
                        f"{type(config).__name__}")
    if isinstance(num_outputs, np.integer):
        num_outputs = int(num_outputs)
    if isinstance(num_outputs, bool) or not isinstance(num_outputs, int):
        raise TypeError(f"num_outputs must be an integer, got {num_outputs!r}")
    if num_outputs < 1:
        raise ValueError(f"num_outputs must be >= 1, got {num_outputs}")
    if not isinstance(invert_order, (bool, np.bool_)):
        raise TypeError(f"invert_order must be True or False, got {invert_order!r}")
    extra = sorted(set(config) - {"type", "config"})
    if extra:
        raise ValueError(f"unknown key(s) {extra} in a deep supervision config; expected "
                         f"'type' and optionally 'config'")
    kind = config.get("type")
    known = ", ".join(DEEP_SUPERVISION_SCHEDULES)
    if kind is None:
        raise ValueError(f"a deep supervision config needs a 'type'; known types: {known}")
    if not isinstance(kind, str) or kind not in DEEP_SUPERVISION_SCHEDULES:
        raise ValueError(f"Unknown deep supervision schedule type {kind!r}; known types: "
                         f"{known}")
    given = config.get("config")
    given = {} if given is None else given
    if not isinstance(given, Mapping):
        raise TypeError(f"the 'config' of a deep supervision config must be a dict, got "
                        f"{type(given).__name__}")
    spec = DEEP_SUPERVISION_SCHEDULES[kind][1]
    unknown = sorted(set(given) - set(spec))
    if unknown:
        valid = ", ".join(spec) if spec else "none"
        raise ValueError(f"unknown parameter(s) {unknown} for the {kind!r} deep supervision "
                         f"schedule; valid parameters: {valid}")
    params = {name: check(name, given[name], num_outputs) if name in given else default
              for name, (default, check) in spec.items()}
    return DeepSupervisionSchedule(kind, num_outputs, bool(invert_order), params)
