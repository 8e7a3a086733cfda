"""Deep-supervision weight schedules: the issue's formulas and reference values.

Each schedule is compared with its formula written out here in plain Python;
every schedule gives non-negative weights summing to 1 for any progress in
[0, 1] (hypothesis); ``invert_order`` reverses them; the floors do not lose a
step to float noise; bad configs and progress outside [0, 1] raise.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neural_arch.optim import deep_supervision_schedule_builder
from neural_arch.optim.deep_supervision import DEEP_SUPERVISION_SCHEDULES

ALL_TYPES = ["constant_equal", "constant_low_to_high", "constant_high_to_low",
             "linear_low_to_high", "non_linear_low_to_high", "custom_sigmoid_low_to_high",
             "scale_by_scale_low_to_high", "cosine_annealing", "curriculum", "step_wise"]


def build(kind, n, invert_order=False, **params):
    return deep_supervision_schedule_builder({"type": kind, "config": params}, n,
                                             invert_order=invert_order)


# ---- references in plain Python -----------------------------------------------------------

def norm(w):
    total = sum(w)
    return [x / total for x in w]


def mix(n, s):
    return norm([(1 - s) * (i + 1) + s * (n - i) for i in range(n)])


def reference(kind, p, n, **kw):
    if kind == "constant_equal":
        return [1 / n] * n
    if kind == "constant_low_to_high":
        return norm([n - i for i in range(n)])
    if kind == "constant_high_to_low":
        return norm([i + 1 for i in range(n)])
    if kind == "linear_low_to_high":
        return mix(n, p)
    if kind == "non_linear_low_to_high":
        return mix(n, p ** 2)
    if kind == "custom_sigmoid_low_to_high":
        k, x0, t = kw.get("k", 10.0), kw.get("x0", 0.5), kw.get("transition_point", 0.25)
        s = 0.0 if p < t else 1 / (1 + math.exp(-k * ((p - t) / (1 - t) - x0)))
        return mix(n, s)
    if kind == "scale_by_scale_low_to_high":
        hot = n - 1 - min(int(math.floor(p * n + 1e-9)), n - 1)
        return [1.0 if i == hot else 0.0 for i in range(n)]
    if kind == "cosine_annealing":
        f, r = kw.get("frequency", 3.0), kw.get("final_ratio", 0.5)
        amp = (1 - (1 - r) * p) / n
        return norm([max(0.0, 1 + ((n - 1 - i) - (n - 1) / 2) * math.cos(2 * math.pi * f * p)
                         * amp) for i in range(n)])
    if kind == "curriculum":
        m = kw.get("max_active_outputs") or n
        reach = p if kw.get("activation_strategy", "linear") == "linear" else p * p
        c = m if p >= 1 else min(m, max(1, int(math.floor(m * reach + 1e-9))))
        return [1 / c if i >= n - c else 0.0 for i in range(n)]
    if kind == "step_wise":
        tau = kw.get("threshold", 0.5)
        return [1.0] + [0.0] * (n - 1) if p >= tau else mix(n, p / tau)
    raise AssertionError(kind)


# ---- the reference values (n = 5) ---------------------------------------------------

def test_reference_values_n5():
    np.testing.assert_allclose(build("constant_low_to_high", 5)(0.3),
                               [5 / 15, 4 / 15, 3 / 15, 2 / 15, 1 / 15], rtol=1e-12)
    np.testing.assert_allclose(build("constant_low_to_high", 5)(0.3).round(3),
                               [.333, .267, .2, .133, .067])
    np.testing.assert_allclose(build("cosine_annealing", 5)(0.0), [.28, .24, .2, .16, .12],
                               rtol=1e-12)
    np.testing.assert_allclose(build("cosine_annealing", 5)(0.5), [.14, .17, .2, .23, .26],
                               rtol=1e-12)
    np.testing.assert_array_equal(build("curriculum", 5)(0.4), [0, 0, 0, 0.5, 0.5])


def test_named_points():
    n = 5
    np.testing.assert_allclose(build("linear_low_to_high", n)(0.0), norm(range(1, 6)))
    np.testing.assert_allclose(build("linear_low_to_high", n)(1.0), norm(range(5, 0, -1)))
    np.testing.assert_allclose(build("linear_low_to_high", n)(0.5), [0.2] * 5)
    np.testing.assert_array_equal(build("scale_by_scale_low_to_high", n)(0.0), [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(build("scale_by_scale_low_to_high", n)(1.0), [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(build("step_wise", n)(0.5), [1, 0, 0, 0, 0])
    np.testing.assert_allclose(build("step_wise", n)(0.25), [0.2] * 5)
    np.testing.assert_array_equal(build("curriculum", n)(0.0), [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(build("curriculum", n)(1.0), [0.2] * 5)
    np.testing.assert_array_equal(build("curriculum", n, max_active_outputs=3)(1.0),
                                  [0, 0, 1 / 3, 1 / 3, 1 / 3])
    # custom sigmoid: nothing moves before the transition point
    np.testing.assert_allclose(build("custom_sigmoid_low_to_high", n)(0.2), norm(range(1, 6)))


@pytest.mark.parametrize("kind", ALL_TYPES)
@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_against_the_formulas_on_a_grid(kind, n):
    f = build(kind, n)
    for p in np.linspace(0, 1, 41):
        np.testing.assert_allclose(f(p), reference(kind, float(p), n), rtol=1e-12, atol=1e-15,
                                   err_msg=f"{kind} n={n} p={p}")


@pytest.mark.parametrize("kind, params", [
    ("custom_sigmoid_low_to_high", {"k": 5.0, "x0": 0.3, "transition_point": 0.1}),
    ("cosine_annealing", {"frequency": 1.5, "final_ratio": 0.8}),
    ("cosine_annealing", {"frequency": 2.0, "final_ratio": 3.0}),      # weights clipped at 0
    ("curriculum", {"max_active_outputs": 3, "activation_strategy": "exp"}),
    ("curriculum", {"max_active_outputs": 6, "activation_strategy": "linear"}),
    ("step_wise", {"threshold": 0.8}),
    ("step_wise", {"threshold": 1.0}),
])
def test_parameters(kind, params):
    f = build(kind, 6, **params)
    for p in np.linspace(0, 1, 37):
        np.testing.assert_allclose(f(p), reference(kind, float(p), 6, **params), rtol=1e-12,
                                   atol=1e-15, err_msg=f"{kind} {params} p={p}")


def test_cosine_annealing_clips_negative_weights():
    w = build("cosine_annealing", 9, final_ratio=3.0)(1.0)     # amplitude (1+2)/9 * 4 > 1
    assert w.min() == 0.0 and w.sum() == pytest.approx(1.0)


# ---- invariants ------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(ALL_TYPES), n=st.integers(1, 9), p=st.floats(0, 1),
       invert=st.booleans())
def test_weights_are_a_distribution(kind, n, p, invert):
    w = build(kind, n, invert_order=invert)(p)
    assert isinstance(w, np.ndarray) and w.shape == (n,) and w.dtype == np.float64
    assert (w >= 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(ALL_TYPES), n=st.integers(1, 9), p=st.floats(0, 1))
def test_invert_order_reverses(kind, n, p):
    np.testing.assert_array_equal(build(kind, n, invert_order=True)(p), build(kind, n)(p)[::-1])


def test_progress_types():
    f = build("linear_low_to_high", 4)
    expected = f(0.25)
    for p in (np.float32(0.25), np.float64(0.25), np.array(0.25)):
        np.testing.assert_array_equal(f(p), expected)
    np.testing.assert_array_equal(f(1), f(1.0))


# ---- floors do not lose a step ------------------------------------------------------------

def test_int_of_m_times_p_keeps_its_step():
    np.testing.assert_allclose(build("curriculum", 5)(0.6), [0, 0, 1 / 3, 1 / 3, 1 / 3])
    assert 100 * (29 / 100) < 29              # the noise this guards against
    w = build("curriculum", 100)(29 / 100)
    assert np.count_nonzero(w) == 29
    hot = build("scale_by_scale_low_to_high", 100)(29 / 100)
    assert hot[100 - 1 - 29] == 1.0
    for epochs in (7, 10, 49, 100):               # progress = epoch / epochs, exact steps
        for epoch in range(epochs + 1):
            active = np.count_nonzero(build("curriculum", epochs)(epoch / epochs))
            assert active == max(1, epoch)
    w = build("curriculum", 10, activation_strategy="exp")(math.sqrt(0.3))
    assert np.count_nonzero(w) == 3               # 10 * sqrt(0.3)**2 = 2.999999999999999


# ---- configs and errors ------------------------------------------------------------------------

def test_config_round_trip_and_defaults():
    f = build("custom_sigmoid_low_to_high", 5, k=5.0)
    config = f.to_config()
    assert config == {"type": "custom_sigmoid_low_to_high",
                      "config": {"k": 5.0, "x0": 0.5, "transition_point": 0.25}}
    g = deep_supervision_schedule_builder(config, 5)
    assert g.to_config() == config
    np.testing.assert_array_equal(f(0.7), g(0.7))
    assert deep_supervision_schedule_builder({"type": "step_wise"}, 3).params == {"threshold": 0.5}
    assert deep_supervision_schedule_builder({"type": "curriculum", "config": None}, 3).params \
        == {"max_active_outputs": None, "activation_strategy": "linear"}
    assert "curriculum" in repr(build("curriculum", 3))


def test_exactly_ten_types():
    assert list(DEEP_SUPERVISION_SCHEDULES) == ALL_TYPES


@pytest.mark.parametrize("kind", ["linear", "cosine", "", 5, None])
def test_unknown_type_lists_the_ten(kind):
    config = {"config": {}} if kind is None else {"type": kind, "config": {}}
    with pytest.raises(ValueError) as info:
        deep_supervision_schedule_builder(config, 5)
    assert all(name in str(info.value) for name in ALL_TYPES)


@pytest.mark.parametrize("kind, params, error, pattern", [
    ("linear_low_to_high", {"k": 1.0}, ValueError, r"unknown parameter.*'k'.*valid.*none"),
    ("curriculum", {"max_outputs": 3}, ValueError,
     r"'max_outputs'.*max_active_outputs, activation_strategy"),
    ("curriculum", {"max_active_outputs": 6}, ValueError, "max_active_outputs"),
    ("curriculum", {"max_active_outputs": 0}, ValueError, "max_active_outputs"),
    ("curriculum", {"max_active_outputs": 2.0}, TypeError, "must be an integer"),
    ("curriculum", {"activation_strategy": "log"}, ValueError, "'linear' or 'exp'"),
    ("custom_sigmoid_low_to_high", {"transition_point": 1.0}, ValueError, "transition_point"),
    ("custom_sigmoid_low_to_high", {"k": "10"}, TypeError, "'k' must be a number"),
    ("cosine_annealing", {"frequency": float("nan")}, ValueError, "frequency"),
    ("step_wise", {"threshold": 0.0}, ValueError, "threshold"),
])
def test_bad_parameters(kind, params, error, pattern):
    with pytest.raises(error, match=pattern):
        build(kind, 5, **params)


def test_bad_builder_arguments():
    with pytest.raises(TypeError, match="dict config"):
        deep_supervision_schedule_builder("linear_low_to_high", 5)
    with pytest.raises(ValueError, match="num_outputs must be >= 1"):
        deep_supervision_schedule_builder({"type": "constant_equal"}, 0)
    with pytest.raises(TypeError, match="num_outputs must be an integer"):
        deep_supervision_schedule_builder({"type": "constant_equal"}, 5.0)
    with pytest.raises(TypeError, match="invert_order"):
        deep_supervision_schedule_builder({"type": "constant_equal"}, 5, invert_order="yes")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['params'\]"):
        deep_supervision_schedule_builder({"type": "constant_equal", "params": {}}, 5)
    with pytest.raises(TypeError, match="'config'.*must be a dict"):
        deep_supervision_schedule_builder({"type": "constant_equal", "config": [1]}, 5)
    assert build("constant_equal", np.int64(3))(0.5).shape == (3,)


@pytest.mark.parametrize("p", [-0.01, 1.0000001, 2, float("nan"), float("inf")])
def test_progress_outside_unit_interval_is_an_error(p):
    with pytest.raises(ValueError, match=r"progress must be in \[0, 1\]"):
        build("linear_low_to_high", 5)(p)


@pytest.mark.parametrize("p", ["0.5", None, True])
def test_progress_must_be_a_number(p):
    with pytest.raises(TypeError, match="progress must be a number"):
        build("linear_low_to_high", 5)(p)
