"""Keras-style step schedules: formulas, check values, configs, errors, optimizers.

Each schedule is held to its formula written out here independently (the
cosine-with-restarts reference walks the periods one by one instead of using
the closed form), to the check values of the issue, and, where PyTorch has the
same curve, to PyTorch's scheduler. Configs round-trip exactly; optimizers
driven by a schedule use ``schedule(step_count)`` at every step, save it in
their state dict and resume from it.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neural_arch as na
from neural_arch.optim import (SGD, Adam, CosineDecay, CosineDecayRestarts, ExponentialDecay,
                               LearningRateSchedule, PiecewiseConstant, PiecewiseConstantDecay,
                               PolynomialDecay, Warmup, learning_rate_schedule_builder)
from tests.helpers import requires_torch, torch

SETTINGS = dict(max_examples=20, deadline=None)


# ---- reference formulas, written out independently ------------------------------------

def ref_cosine(step, lr, T, alpha):
    fraction_done = min(step, T) / T
    return lr * alpha + lr * (1 - alpha) * (1 + math.cos(math.pi * fraction_done)) / 2


def ref_exponential(step, lr, T, rate, staircase):
    exponent = (step // T) if staircase else step / T
    return lr * rate ** exponent


def ref_restarts(step, lr, T, t_mul, m_mul, alpha):
    start, length, peak = 0.0, float(T), 1.0
    while step >= start + length:          # walk the periods one at a time
        start += length
        length *= t_mul
        peak *= m_mul
    f = (step - start) / length
    return lr * (alpha + (1 - alpha) * peak * (1 + math.cos(math.pi * f)) / 2)


def ref_piecewise(step, boundaries, values):
    for b, v in zip(boundaries, values):
        if step <= b:
            return v
    return values[-1]


def ref_polynomial(step, lr, T, end, power, cycle):
    if cycle:
        periods = 1 if step == 0 else math.ceil(step / T)
        horizon = T * periods
    else:
        horizon, step = T, min(step, T)
    return end + (lr - end) * (1 - step / horizon) ** power


def ref_warmup(step, primary, W, start):
    if step < W:
        return start + (primary(0) - start) * step / W
    return primary(step - W)


# ---- the issue's check values ----------------------------------------------------------

ISSUE_CONFIG = {"type": "cosine_decay", "warmup_steps": 1000, "warmup_start_lr": 1e-8,
                "learning_rate": 0.001, "decay_steps": 10000, "alpha": 0.0001}


def test_issue_check_values():
    s = learning_rate_schedule_builder(ISSUE_CONFIG)
    assert s(0) == pytest.approx(1e-8, rel=1e-12)
    # The issue rounds this one: the ramp's midpoint is (1e-8 + 1e-3) / 2 = 5.00005e-4.
    assert s(500) == pytest.approx((1e-8 + 1e-3) / 2, rel=1e-12)
    assert s(500) == pytest.approx(5.0005e-4, rel=1e-4)
    assert s(1000) == pytest.approx(1e-3, rel=1e-12)
    assert s(6000) == pytest.approx(5.0005e-4, rel=1e-12)
    for step in (11000, 11001, 15000, 10**6):
        assert s(step) == pytest.approx(1e-7, rel=1e-12)
    assert s(10999) > 1e-7
    assert isinstance(s, Warmup) and isinstance(s.schedule, CosineDecay)


def test_defaults_are_the_guides():
    assert CosineDecay(1e-3, 10).alpha == 1e-4
    r = CosineDecayRestarts(1e-3, 10)
    assert (r.t_mul, r.m_mul, r.alpha) == (2.0, 0.9, 1e-3)
    assert Warmup(CosineDecay(1e-3, 10), 5).warmup_start_lr == 1e-8
    assert ExponentialDecay(1e-3, 10, 0.5).staircase is False
    p = PolynomialDecay(1e-3, 10)
    assert (p.end_learning_rate, p.power, p.cycle) == (1e-4, 1.0, False)
    s = learning_rate_schedule_builder({"type": "cosine_decay", "learning_rate": 1e-3,
                                        "decay_steps": 10})
    assert isinstance(s, CosineDecay)            # no warmup keys: no wrapper (0 steps)


# ---- against the formulas ----------------------------------------------------------------

steps_st = st.one_of(st.integers(0, 5000), st.floats(0, 5000, allow_nan=False))


@settings(**SETTINGS)
@given(lr=st.floats(1e-6, 1.0), T=st.integers(1, 2000), alpha=st.floats(0, 1), step=steps_st)
def test_cosine_decay_formula(lr, T, alpha, step):
    assert CosineDecay(lr, T, alpha)(step) == pytest.approx(ref_cosine(step, lr, T, alpha),
                                                            rel=1e-12, abs=1e-300)


@settings(**SETTINGS)
@given(lr=st.floats(1e-6, 1.0), T=st.integers(1, 2000), rate=st.floats(0.01, 1.5),
       staircase=st.booleans(), step=st.integers(0, 5000))
def test_exponential_decay_formula(lr, T, rate, staircase, step):
    got = ExponentialDecay(lr, T, rate, staircase)(step)
    assert got == pytest.approx(ref_exponential(step, lr, T, rate, staircase), rel=1e-10,
                                abs=1e-300)


def test_exponential_staircase_is_flat_between_multiples():
    s = ExponentialDecay(1.0, 10, 0.5, staircase=True)
    assert [s(k) for k in (0, 9, 10, 19, 20)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    smooth = ExponentialDecay(1.0, 10, 0.5)
    assert smooth(5) == pytest.approx(0.5 ** 0.5)


@settings(**SETTINGS)
@given(lr=st.floats(1e-6, 1.0), T=st.integers(1, 300), t_mul=st.sampled_from([1.0, 1.5, 2.0, 3.0]),
       m_mul=st.floats(0, 1.2), alpha=st.floats(0, 1), step=st.integers(0, 5000))
def test_cosine_decay_restarts_formula(lr, T, t_mul, m_mul, alpha, step):
    got = CosineDecayRestarts(lr, T, t_mul, m_mul, alpha)(step)
    assert got == pytest.approx(ref_restarts(step, lr, T, t_mul, m_mul, alpha), rel=1e-9,
                                abs=1e-15)


@pytest.mark.parametrize("t_mul", [1.0, 1.5, 2.0, 3.0])
def test_restarts_happen_exactly_on_the_period_starts(t_mul):
    T, m_mul, alpha = 8, 0.5, 0.0
    s = CosineDecayRestarts(1.0, T, t_mul, m_mul, alpha)
    start, length = 0.0, float(T)
    for i in range(5):
        if start == int(start):
            assert s(int(start)) == pytest.approx(m_mul ** i, rel=1e-12)   # a fresh peak
            if start > 0:
                assert s(int(start) - 1) < 0.05 * m_mul ** (i - 1)        # end of the last
        start += length
        length *= t_mul


@settings(**SETTINGS)
@given(data=st.data(), step=st.floats(0, 120, allow_nan=False))
def test_piecewise_constant_formula(data, step):
    boundaries = sorted(set(data.draw(st.lists(st.integers(0, 100), min_size=1, max_size=5))))
    values = data.draw(st.lists(st.floats(0, 1), min_size=len(boundaries) + 1,
                                max_size=len(boundaries) + 1))
    s = PiecewiseConstant(boundaries, values)
    assert s(step) == ref_piecewise(step, boundaries, values)
    for b in boundaries:                      # a boundary belongs to the interval it closes
        assert s(b) == ref_piecewise(b, boundaries, values)


def test_piecewise_constant_keras_example_and_alias():
    s = PiecewiseConstantDecay([100000, 110000], [1.0, 0.5, 0.1])
    assert [s(k) for k in (0, 100000, 100001, 110000, 110001)] == [1.0, 1.0, 0.5, 0.5, 0.1]


@settings(**SETTINGS)
@given(lr=st.floats(1e-4, 1.0), T=st.integers(1, 500), end=st.floats(0, 1e-4),
       power=st.floats(0, 3), cycle=st.booleans(), step=st.integers(0, 3000))
def test_polynomial_decay_formula(lr, T, end, power, cycle, step):
    got = PolynomialDecay(lr, T, end, power, cycle)(step)
    assert got == pytest.approx(ref_polynomial(step, lr, T, end, power, cycle), rel=1e-10,
                                abs=1e-15)


@settings(**SETTINGS)
@given(W=st.integers(0, 300), start=st.floats(0, 1e-3), step=st.integers(0, 2000),
       kind=st.sampled_from(["cos", "exp", "poly"]))
def test_warmup_formula(W, start, step, kind):
    primary = {"cos": CosineDecay(1e-2, 500, 0.1), "exp": ExponentialDecay(1e-2, 100, 0.7),
               "poly": PolynomialDecay(1e-2, 400, power=2.0)}[kind]
    s = Warmup(primary, W, start)
    assert s(step) == pytest.approx(ref_warmup(step, primary, W, start), rel=1e-12)


def test_warmup_shifts_the_primary_schedule():
    primary = CosineDecay(1e-3, 100, 0.0)
    s = Warmup(primary, 20, 0.0)
    assert s(20) == primary(0) and s(70) == primary(50) and s(120) == primary(100)
    assert [s(k) for k in (0, 5, 10)] == pytest.approx([0.0, 0.25e-3, 0.5e-3])
    assert Warmup(primary, 0)(37) == primary(37)


def test_steps_may_be_numpy_scalars_or_floats():
    s = CosineDecay(1.0, 10, 0.0)
    assert s(np.int64(5)) == s(5) == s(5.0) == s(np.float32(5.0)) == s(np.array(5))


@requires_torch
def test_same_curves_as_pytorch():
    """Where torch has the same curve: CosineAnnealingLR, ExponentialLR, PolynomialLR,
    CosineAnnealingWarmRestarts (m_mul = 1, integer t_mul)."""
    lr, n = 0.1, 120
    cases = [
        (CosineDecay(lr, 50, 0.02), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(
            o, T_max=50, eta_min=0.02 * lr), 50),
        (ExponentialDecay(lr, 1, 0.97), lambda o: torch.optim.lr_scheduler.ExponentialLR(
            o, gamma=0.97), n),
        (PolynomialDecay(lr, 60, 0.0, 2.0), lambda o: torch.optim.lr_scheduler.PolynomialLR(
            o, total_iters=60, power=2.0), n),
        (CosineDecayRestarts(lr, 10, 2.0, 1.0, 0.05),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
             o, T_0=10, T_mult=2, eta_min=0.05 * lr), n),
    ]
    for ours, make, steps in cases:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
        sched = make(opt)
        for k in range(steps):
            assert ours(k) == pytest.approx(sched.get_last_lr()[0], rel=1e-9, abs=1e-15), \
                (type(ours).__name__, k)
            opt.step()
            sched.step()


# ---- configs -------------------------------------------------------------------------------

EXAMPLES = [
    CosineDecay(1e-3, 10000, 1e-4),
    CosineDecay(2, 7.5, 0),
    ExponentialDecay(1e-3, 1000, 0.9),
    ExponentialDecay(0.5, 3, 0.25, staircase=True),
    CosineDecayRestarts(1e-3, 5000),
    CosineDecayRestarts(5e-4, 20000, 1.5, 0.95, 0.01),
    PiecewiseConstant([10, 20.5], [0.1, 0.01, 0.001]),
    PolynomialDecay(1e-2, 100, 1e-5, 0.5, cycle=True),
    Warmup(CosineDecay(1e-3, 10000), 1000, 1e-8),
    Warmup(CosineDecayRestarts(1e-3, 8000, m_mul=0.8), 2000),
    Warmup(PiecewiseConstant([5], [1.0, 0.5]), 0, 0.0),
]


@pytest.mark.parametrize("schedule", EXAMPLES, ids=repr)
def test_config_round_trip(schedule):
    config = schedule.to_config()
    primary = schedule.schedule if isinstance(schedule, Warmup) else schedule
    assert config["type"] == primary.type_name
    for rebuilt in (learning_rate_schedule_builder(config),
                    LearningRateSchedule.from_config(config),
                    type(schedule).from_config(config),
                    learning_rate_schedule_builder(json.loads(json.dumps(config)))):
        assert type(rebuilt) is type(schedule)
        assert rebuilt == schedule and hash(rebuilt) == hash(schedule)
        assert rebuilt.to_config() == config
        assert [type(v) for v in rebuilt.to_config().values()] == \
            [type(v) for v in config.values()]           # an int stays an int
        assert [rebuilt(k) for k in (0, 1, 999, 5000, 30001)] == \
            [schedule(k) for k in (0, 1, 999, 5000, 30001)]
    scratch = schedule.to_config()                       # a fresh dict, lists copied
    for value in scratch.values():
        if isinstance(value, list):
            value.append(99)
    scratch["learning_rate"] = 123
    assert schedule.to_config() == config


FULL_CONFIGS = [
    ISSUE_CONFIG,
    {"type": "exponential_decay", "learning_rate": 0.001, "decay_steps": 1000,
     "decay_rate": 0.9, "staircase": False, "warmup_steps": 500, "warmup_start_lr": 1e-8},
    {"type": "cosine_decay_restarts", "learning_rate": 0.0005, "decay_steps": 20000,
     "t_mul": 1.5, "m_mul": 0.95, "alpha": 0.01, "warmup_steps": 4000,
     "warmup_start_lr": 1e-9},
    {"type": "cosine_decay", "learning_rate": 0.0005, "decay_steps": 10000, "alpha": 0.0001},
    {"type": "piecewise_constant", "boundaries": [100, 200], "values": [1e-3, 1e-4, 1e-5]},
    {"type": "polynomial_decay", "learning_rate": 0.1, "decay_steps": 50,
     "end_learning_rate": 0.0, "power": 2.0, "cycle": True, "warmup_steps": 0,
     "warmup_start_lr": 1e-8},
]


@pytest.mark.parametrize("config", FULL_CONFIGS, ids=lambda c: c["type"])
def test_builder_config_identity(config):
    before = json.dumps(config)
    schedule = learning_rate_schedule_builder(config)
    assert schedule.to_config() == config
    assert json.dumps(config) == before                   # the builder did not modify it


def test_builder_fills_defaults():
    s = learning_rate_schedule_builder({"type": "cosine_decay_restarts", "learning_rate": 1e-3,
                                        "decay_steps": 8000, "warmup_steps": 2000})
    assert s.to_config() == {"type": "cosine_decay_restarts", "learning_rate": 1e-3,
                             "decay_steps": 8000, "t_mul": 2.0, "m_mul": 0.9, "alpha": 1e-3,
                             "warmup_steps": 2000, "warmup_start_lr": 1e-8}
    # first_decay_steps (the constructor's name) is accepted on input
    t = learning_rate_schedule_builder({"type": "cosine_decay_restarts", "learning_rate": 1e-3,
                                        "first_decay_steps": 8000})
    assert t == CosineDecayRestarts(1e-3, 8000)


# ---- errors --------------------------------------------------------------------------------

KNOWN = ["cosine_decay", "cosine_decay_restarts", "exponential_decay", "piecewise_constant",
         "polynomial_decay"]


def test_missing_required_parameters():
    with pytest.raises(ValueError, match=r"Missing required parameters.*decay_steps"):
        learning_rate_schedule_builder({"type": "cosine_decay", "learning_rate": 1e-3})
    with pytest.raises(ValueError, match=r"Missing required parameters.*decay_rate"):
        learning_rate_schedule_builder({"type": "exponential_decay", "learning_rate": 1e-3,
                                        "decay_steps": 10, "warmup_steps": 5})
    with pytest.raises(ValueError, match=r"Missing required parameters.*learning_rate, "
                                         r"decay_steps"):
        learning_rate_schedule_builder({"type": "cosine_decay_restarts"})


@pytest.mark.parametrize("kind", ["cosine", "warmup", "adam", 3, None])
def test_unknown_type_lists_the_known_ones(kind):
    config = {"learning_rate": 1e-3, "decay_steps": 10}
    if kind is not None:
        config["type"] = kind
    with pytest.raises(ValueError) as info:
        learning_rate_schedule_builder(config)
    message = str(info.value)
    assert all(name in message for name in KNOWN)
    assert ("Unknown" in message and repr(kind) in message) if kind else "'type'" in message


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match=r"unknown key 'alhpa'.*valid keys: type, "
                                         r"learning_rate, decay_steps, alpha, warmup_steps"):
        learning_rate_schedule_builder({"type": "cosine_decay", "learning_rate": 1e-3,
                                        "decay_steps": 10, "alhpa": 0.1})
    with pytest.raises(ValueError, match="twice"):
        learning_rate_schedule_builder({"type": "cosine_decay_restarts", "learning_rate": 1,
                                        "decay_steps": 5, "first_decay_steps": 5})


@pytest.mark.parametrize("change, error, pattern", [
    ({"learning_rate": "1e-3"}, TypeError, "learning_rate must be a real number"),
    ({"learning_rate": -1.0}, ValueError, "learning_rate"),
    ({"decay_steps": 0}, ValueError, "decay_steps"),
    ({"decay_steps": float("inf")}, ValueError, "decay_steps"),
    ({"alpha": True}, TypeError, "alpha"),
    ({"warmup_steps": 10.5}, TypeError, "warmup_steps must be a non-negative integer"),
    ({"warmup_steps": -1}, ValueError, "warmup_steps"),
    ({"warmup_start_lr": -1e-8}, ValueError, "warmup_start_lr"),
])
def test_bad_values_name_the_key(change, error, pattern):
    config = dict(ISSUE_CONFIG, **change)
    with pytest.raises(error, match=pattern):
        learning_rate_schedule_builder(config)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="t_mul"):
        CosineDecayRestarts(1e-3, 10, t_mul=0.5)
    with pytest.raises(ValueError, match="decay_rate"):
        ExponentialDecay(1e-3, 10, 0.0)
    with pytest.raises(TypeError, match="staircase"):
        ExponentialDecay(1e-3, 10, 0.5, staircase="yes")
    with pytest.raises(ValueError, match="one more value than boundaries"):
        PiecewiseConstant([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="strictly increasing"):
        PiecewiseConstant([2, 2], [0.1, 0.2, 0.3])
    with pytest.raises(TypeError, match="boundaries must be a list"):
        PiecewiseConstant(5, [0.1, 0.2])
    with pytest.raises(ValueError, match="power"):
        PolynomialDecay(1e-3, 10, power=-1)
    with pytest.raises(TypeError, match="not itself a Warmup"):
        Warmup(Warmup(CosineDecay(1e-3, 10), 5), 5)
    with pytest.raises(TypeError, match="Warmup wraps a LearningRateSchedule"):
        Warmup(lambda step: 0.1, 5)


def test_bad_steps():
    s = CosineDecay(1e-3, 10)
    with pytest.raises(ValueError, match="step must be"):
        s(-1)
    with pytest.raises(ValueError, match="step must be"):
        s(float("nan"))
    with pytest.raises(TypeError, match="step must be a number"):
        s("3")


def test_from_config_errors():
    with pytest.raises(TypeError, match="expects a dict, got list"):
        learning_rate_schedule_builder([("type", "cosine_decay")])
    with pytest.raises(TypeError, match="must be a dict, got list"):
        LearningRateSchedule.from_config([("type", "cosine_decay")])
    with pytest.raises(ValueError, match="expected 'cosine_decay'"):
        CosineDecay.from_config({"type": "exponential_decay", "learning_rate": 1,
                                 "decay_steps": 1, "decay_rate": 0.5})
    with pytest.raises(ValueError, match="warmup keys"):
        CosineDecay.from_config(ISSUE_CONFIG)
    assert CosineDecay.from_config({"learning_rate": 1, "decay_steps": 3}) == CosineDecay(1, 3)


# ---- optimizers driven by a schedule ---------------------------------------------------

def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [na.Parameter(rng.standard_normal((3, 2))), na.Parameter(rng.standard_normal(2))]


def _grads(k, params):
    rng = np.random.default_rng(100 + k)
    return [rng.standard_normal(p.shape) for p in params]


def _run(opt, params, steps, start=0):
    for k in range(start, start + steps):
        for p, g in zip(params, _grads(k, params)):
            p.grad = na.Tensor(g)
        opt.step()


SCHEDULE = Warmup(CosineDecay(0.05, 20, 0.1), 5, 1e-3)


@pytest.mark.parametrize("cls, kwargs", [(SGD, {"momentum": 0.9}), (Adam, {})])
def test_optimizer_evaluates_the_schedule_at_its_step_count(cls, kwargs):
    params, manual_params = _params(), _params()
    opt = cls(params, lr=SCHEDULE, **kwargs)
    manual = cls(manual_params, lr=1.0, **kwargs)
    for k in range(30):
        assert opt.step_count == k and float(opt.lr) == SCHEDULE(k)
        manual.lr = SCHEDULE(k)
        _run(opt, params, 1, start=k)
        _run(manual, manual_params, 1, start=k)
        for a, b in zip(params, manual_params):
            np.testing.assert_array_equal(a.data, b.data)
    assert float(opt.lr) == SCHEDULE(30)
    assert opt.defaults["lr"] == SCHEDULE(0)


@requires_torch
def test_adam_with_a_schedule_matches_torch_adam_with_the_same_rates():
    params = _params()
    opt = Adam(params, learning_rate=SCHEDULE, betas=(0.8, 0.99))
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    topt = torch.optim.Adam(tparams, lr=1.0, betas=(0.8, 0.99))
    for k in range(25):
        _run(opt, params, 1, start=k)
        for t, g in zip(tparams, _grads(k, params)):
            t.grad = torch.tensor(g)
        topt.param_groups[0]["lr"] = SCHEDULE(k)
        topt.step()
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_state_dict_stores_the_config_and_resumes(cls):
    params = _params()
    opt = cls(params, lr=SCHEDULE)
    _run(opt, params, 12)
    saved = opt.state_dict()
    assert saved["param_groups"][0]["lr_schedule"] == SCHEDULE.to_config()
    json.dumps(saved["param_groups"][0]["lr_schedule"])        # plain data
    fresh_params = [na.Parameter(p.data.copy()) for p in params]
    fresh = cls(fresh_params, lr=0.123)                          # no schedule of its own
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr_schedule"] == SCHEDULE
    assert float(fresh.lr) == SCHEDULE(12) == float(opt.lr)
    _run(opt, params, 10, start=12)
    _run(fresh, fresh_params, 10, start=12)
    for a, b in zip(params, fresh_params):
        np.testing.assert_array_equal(a.data, b.data)


def test_bad_schedule_in_a_state_dict_changes_nothing():
    params = _params()
    opt = SGD(params, lr=SCHEDULE)
    saved = opt.state_dict()
    saved["param_groups"][0]["lr_schedule"] = {"type": "nope"}
    other = SGD(_params(), lr=0.5)
    with pytest.raises(ValueError, match="Unknown learning rate schedule type 'nope'"):
        other.load_state_dict(saved)
    assert other.lr == 0.5 and "lr_schedule" not in other.param_groups[0]


def test_schedules_per_group_and_later_groups():
    a, b, c = _params(1) + _params(2)[:1]
    fast = ExponentialDecay(0.1, 1, 0.5)
    opt = SGD([{"params": [a], "lr": fast}, {"params": [b], "lr": 0.01}], lr=SCHEDULE)
    opt.add_param_group({"params": [c]})                 # takes the default schedule
    _run(opt, [a, b], 3)
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs == [fast(3), 0.01, SCHEDULE(3)]
    assert "lr_schedule" not in opt.param_groups[1]


def test_assigning_lr():
    params = _params()
    opt = SGD(params, lr=0.1)
    _run(opt, params, 4)
    opt.lr = SCHEDULE                                    # takes over at the current step
    assert float(opt.lr) == SCHEDULE(4)
    with pytest.raises(TypeError, match="follows a schedule"):
        opt.lr = 0.01
    with pytest.raises(TypeError, match="follows a schedule"):
        opt.lr *= 0.5
    del opt.param_groups[0]["lr_schedule"]
    opt.lr = 0.01
    _run(opt, params, 1)
    assert opt.lr == 0.01


def test_contiguous_mode_follows_the_schedule():
    p1, p2 = _params(), _params()
    a = Adam(p1, lr=SCHEDULE, contiguous=True)
    b = Adam(p2, lr=SCHEDULE)
    _run(a, p1, 8)
    _run(b, p2, 8)
    for x, y in zip(p1, p2):
        np.testing.assert_allclose(x.data, y.data, rtol=1e-13, atol=1e-15)


def test_hooks_see_the_rate_of_their_step():
    params = _params()
    opt = SGD(params, lr=SCHEDULE)
    seen = []
    opt.register_step_pre_hook(lambda o, args, kw: seen.append(("pre", o.step_count, o.lr)))
    opt.register_step_post_hook(lambda o, args, kw: seen.append(("post", o.step_count, o.lr)))
    _run(opt, params, 2)
    assert seen == [("pre", 0, SCHEDULE(0)), ("post", 1, SCHEDULE(0)),
                    ("pre", 1, SCHEDULE(1)), ("post", 2, SCHEDULE(1))]
