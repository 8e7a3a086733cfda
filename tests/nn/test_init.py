"""nn.init: fans and gains as torch computes them, distributions checked statistically."""
import math

import numpy as np
import pytest

import neural_arch as na
from neural_arch.nn import init
from tests import fake_cupy
from tests.helpers import requires_torch, torch

SHAPES = [(3, 5), (7, 2), (4, 3, 5), (6, 2, 3, 3), (2, 4, 1, 2, 3), (1, 1)]


def _t(*shape, dtype="float64"):
    return na.zeros(shape, dtype=dtype)


# ---- fans and gains ------------------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("shape", SHAPES)
def test_fans_equal_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.calculate_fan_in_and_fan_out(_t(*shape)) == expected
    assert init._calculate_fan_in_and_fan_out(_t(*shape)) == expected


@pytest.mark.parametrize("shape", [(), (5,)])
def test_fans_need_two_dims(shape):
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.calculate_fan_in_and_fan_out(_t(*shape))


@requires_torch
@pytest.mark.parametrize("name,param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                        ("tanh", None), ("relu", None), ("leaky_relu", None),
                                        ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)),
                                        ("selu", None), ("conv_transpose1d", None)])
def test_gain_equals_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(
        torch.nn.init.calculate_gain(name, param), rel=1e-15)


def test_gain_rejects_unknown_names_and_bad_slopes():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'.*relu"):
        init.calculate_gain("swish")
    with pytest.raises(TypeError, match="negative slope"):
        init.calculate_gain("leaky_relu", "big")


# ---- constants ------------------------------------------------------------------------------

def test_constants_fill_in_place_and_return_the_tensor():
    t = na.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    arr = t.data
    assert init.constant_(t, 2.5) is t and t.data is arr
    np.testing.assert_array_equal(arr, np.full((2, 3), 2.5))
    assert init.zeros_(t) is t and not arr.any()
    assert init.ones_(t) is t and (arr == 1).all()
    assert t.creator is None and t.requires_grad          # still a leaf, no graph
    ints = na.tensor([1, 2, 3], dtype="int64")
    init.constant_(ints, 7)
    assert ints.dtype == np.int64 and (ints.numpy() == 7).all()


def test_keeps_dtype_and_shape():
    t = _t(40, 30, dtype="float32")
    init.kaiming_normal_(t)
    assert t.dtype == np.float32 and t.shape == (40, 30)


# ---- distributions -------------------------------------------------------------------------

def _stats(t):
    a = t.numpy().ravel()
    return a.mean(), a.std(), a.min(), a.max()


def test_uniform_and_normal():
    na.manual_seed(0)
    m, s, lo, hi = _stats(init.uniform_(_t(200, 100), -3.0, 1.0))
    assert -3.0 <= lo and hi < 1.0
    assert m == pytest.approx(-1.0, abs=0.02) and s == pytest.approx(4 / math.sqrt(12), rel=0.02)
    m, s, _, _ = _stats(init.normal_(_t(200, 100), 2.0, 0.5))
    assert m == pytest.approx(2.0, abs=0.01) and s == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize("shape", [(300, 200), (64, 16, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier(shape, gain):
    na.manual_seed(1)
    fan_in, fan_out = init.calculate_fan_in_and_fan_out(_t(*shape))
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    m, s, lo, hi = _stats(init.xavier_uniform_(_t(*shape), gain=gain))
    bound = math.sqrt(3.0) * std
    assert -bound <= lo and hi <= bound and hi > 0.99 * bound
    assert m == pytest.approx(0, abs=0.02 * std) and s == pytest.approx(std, rel=0.02)
    m, s, _, _ = _stats(init.xavier_normal_(_t(*shape), gain=gain))
    assert m == pytest.approx(0, abs=0.02 * std) and s == pytest.approx(std, rel=0.02)


@pytest.mark.parametrize("a,mode,nonlinearity", [(0, "fan_in", "relu"),
                                                 (0, "fan_out", "relu"),
                                                 (math.sqrt(5), "fan_in", "leaky_relu"),
                                                 (0.1, "fan_out", "leaky_relu"),
                                                 (0, "fan_in", "linear")])
def test_kaiming(a, mode, nonlinearity):
    na.manual_seed(2)
    shape = (48, 16, 3, 3)
    fan_in, fan_out = init.calculate_fan_in_and_fan_out(_t(*shape))
    fan = fan_in if mode == "fan_in" else fan_out
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    m, s, lo, hi = _stats(init.kaiming_uniform_(_t(*shape), a, mode, nonlinearity))
    bound = math.sqrt(3.0) * std
    assert -bound <= lo and hi <= bound and hi > 0.99 * bound
    assert s == pytest.approx(std, rel=0.02) and abs(m) < 0.02 * std
    m, s, _, _ = _stats(init.kaiming_normal_(_t(*shape), a, mode, nonlinearity))
    assert s == pytest.approx(std, rel=0.02) and abs(m) < 0.02 * std


def test_kaiming_with_sqrt5_gives_torchs_linear_bound():
    t = init.kaiming_uniform_(_t(20, 50), a=math.sqrt(5))
    assert np.abs(t.numpy()).max() <= 1 / math.sqrt(50)


@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4), (3, 2, 2, 2)])
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal(shape, gain):
    q = init.orthogonal_(_t(*shape), gain=gain).numpy().reshape(shape[0], -1)
    rows, cols = q.shape
    gram = q @ q.T if rows <= cols else q.T @ q
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-12)


def _truncated_moments(mean, std, a, b):
    """Mean and std of N(mean, std^2) truncated to [a, b] (closed form)."""
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))
    al, be = (a - mean) / std, (b - mean) / std
    z = cdf(be) - cdf(al)
    mu = mean + std * (pdf(al) - pdf(be)) / z
    var = std ** 2 * (1 + (al * pdf(al) - be * pdf(be)) / z - ((pdf(al) - pdf(be)) / z) ** 2)
    return mu, math.sqrt(var)


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0),     # rejection
                                          (1.0, 0.5, 0.0, 1.2),      # rejection, skewed
                                          (0.0, 1.0, 2.5, 4.0),      # right tail: inverse CDF
                                          (0.0, 2.0, -9.0, -6.0),    # left tail
                                          (0.0, 0.02, -0.04, 0.04)])  # ViT-style
def test_trunc_normal(mean, std, a, b):
    na.manual_seed(3)
    m, s, lo, hi = _stats(init.trunc_normal_(_t(200, 150), mean, std, a, b))
    assert a <= lo and hi <= b
    em, es = _truncated_moments(mean, std, a, b)
    assert m == pytest.approx(em, abs=0.03 * es) and s == pytest.approx(es, rel=0.02)


# ---- reproducibility, devices, errors -------------------------------------------------------

def test_manual_seed_reproduces_and_generator_overrides():
    def draw():
        return [f(_t(5, 4)).numpy() for f in (init.normal_, init.uniform_,
                                                init.kaiming_uniform_, init.orthogonal_,
                                                init.trunc_normal_)]
    na.manual_seed(11)
    first = draw()
    na.manual_seed(11)
    for x, y in zip(first, draw()):
        np.testing.assert_array_equal(x, y)
    g1 = np.random.default_rng(5)
    g2 = np.random.default_rng(5)
    np.testing.assert_array_equal(init.normal_(_t(3, 3), generator=g1).numpy(),
                                  init.normal_(_t(3, 3), generator=g2).numpy())


def test_runs_on_the_fake_device_in_place():
    fake_cupy.register()
    t = _t(6, 4).to("fake")
    arr = t.data
    for f in (init.uniform_, init.normal_, init.xavier_uniform_, init.kaiming_normal_,
              init.orthogonal_, init.trunc_normal_, init.zeros_, init.ones_):
        assert f(t) is t and t.data is arr and t.device == "fake:0"
    init.trunc_normal_(t, a=3.0, b=4.0)           # the inverse-CDF path
    assert 3.0 <= float(t.data.min()) and float(t.data.max()) <= 4.0


def test_empty_tensors_are_left_alone():
    t = _t(0, 5)
    for f in (init.kaiming_uniform_, init.kaiming_normal_, init.xavier_normal_,
              init.orthogonal_):
        assert f(t) is t


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="expects a Tensor.*ndarray"):
        init.normal_(np.zeros(3))
    with pytest.raises(TypeError, match="floating-point.*int64"):
        init.uniform_(na.tensor([1, 2], dtype="int64"))
    with pytest.raises(ValueError, match="a <= b"):
        init.uniform_(_t(3), 1.0, 0.0)
    with pytest.raises(ValueError, match="std >= 0"):
        init.normal_(_t(3), std=-1.0)
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'.*'fan_avg'"):
        init.kaiming_uniform_(_t(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.kaiming_normal_(_t(3, 3), nonlinearity="swish")
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.xavier_uniform_(_t(4))
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(_t(3), a=1.0, b=1.0)
    with pytest.raises(TypeError, match="val must be a real number"):
        init.constant_(_t(3), "x")
