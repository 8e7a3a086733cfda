"""Activations: parity with torch.nn.functional, derivatives, stability, flags."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes

import neural_arch as na
import neural_arch.functional as F
from tests.helpers import check_op, requires_torch, torch

if torch is not None:
    import torch.nn.functional as TF

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# (name, neural_arch fn, torch fn) for the smooth elementwise activations.
SMOOTH = [
    ("sigmoid", F.sigmoid, lambda x: torch.sigmoid(x)),
    ("softplus", F.softplus, lambda x: TF.softplus(x)),
    ("softplus_beta2_thr3", lambda x: F.softplus(x, beta=2.0, threshold=3.0),
     lambda x: TF.softplus(x, beta=2.0, threshold=3.0)),
    ("softplus_beta0.5", lambda x: F.softplus(x, beta=0.5),
     lambda x: TF.softplus(x, beta=0.5)),
    ("silu", F.silu, lambda x: TF.silu(x)),
    ("mish", F.mish, lambda x: TF.mish(x)),
    ("gelu", F.gelu, lambda x: TF.gelu(x)),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"),
     lambda x: TF.gelu(x, approximate="tanh")),
]

# Activations with a kink: (name, fn, torch fn, kink points). Inputs are kept away from
# the kinks by adding per-element offsets to values drawn from (0.1, 1.9).
KINKED = [
    ("relu", F.relu, lambda x: TF.relu(x), [-2.0, 0.0]),
    ("leaky_relu", F.leaky_relu, lambda x: TF.leaky_relu(x), [-2.0, 0.0]),
    ("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2),
     [-2.0, 0.0]),
    ("leaky_relu_neg", lambda x: F.leaky_relu(x, -0.5), lambda x: TF.leaky_relu(x, -0.5),
     [-2.0, 0.0]),
    ("leaky_relu_steep", lambda x: F.leaky_relu(x, 1.5), lambda x: TF.leaky_relu(x, 1.5),
     [-2.0, 0.0]),
    ("elu", F.elu, lambda x: TF.elu(x), [-2.0, 0.0]),
    ("elu_alpha2", lambda x: F.elu(x, alpha=2.0), lambda x: TF.elu(x, alpha=2.0),
     [-2.0, 0.0]),
    ("elu_alpha0.3", lambda x: F.elu(x, 0.3), lambda x: TF.elu(x, 0.3), [-2.0, 0.0]),
    ("selu", F.selu, lambda x: TF.selu(x), [-2.0, 0.0]),
    ("hardtanh", F.hardtanh, lambda x: TF.hardtanh(x), [-3.0, -1.0, 1.0]),
    ("hardtanh_custom", lambda x: F.hardtanh(x, min_val=-0.5, max_val=2.0),
     lambda x: TF.hardtanh(x, min_val=-0.5, max_val=2.0), [-2.5, -0.55, 2.05]),
]

ELEMENTWISE = [(n, f, t) for n, f, t in SMOOTH] + [(n, f, t) for n, f, t, _ in KINKED]


def _offsets(shape, points):
    n = int(np.prod(shape))
    return np.resize(np.asarray(points, dtype=np.float64), n).reshape(shape)


# ---- parity with torch, gradcheck, gradgradcheck ------------------------------------

@requires_torch
@pytest.mark.parametrize("name,fn,tfn", SMOOTH, ids=[s[0] for s in SMOOTH])
def test_smooth_activation_matches_torch(name, fn, tfn):
    check_op(fn, [(3, 4)], torch_fn=tfn, bounds={0: (-5.0, 5.0)})


@requires_torch
@pytest.mark.parametrize("name,fn,tfn,points", KINKED, ids=[k[0] for k in KINKED])
def test_kinked_activation_matches_torch(name, fn, tfn, points):
    off = _offsets((3, 4), points)
    check_op(lambda x: fn(x + off), [(3, 4)],
             torch_fn=lambda x: tfn(x + torch.tensor(off)), bounds={0: (0.1, 1.9)})


@requires_torch
@pytest.mark.parametrize("shape,axis", [((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1),
                                        ((5,), 0), ((2, 3, 4), -3)])
@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_softmax_family_matches_torch(which, shape, axis):
    fn = getattr(F, which)
    tfn = getattr(torch, which)
    check_op(lambda x: fn(x, axis), [shape], torch_fn=lambda x: tfn(x, dim=axis),
             bounds={0: (-3.0, 3.0)})


@requires_torch
@pytest.mark.parametrize("name,fn,tfn,point", [
    ("relu", F.relu, TF.relu if torch else None, 0.0),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.3),
     (lambda x: TF.leaky_relu(x, 0.3)) if torch else None, 0.0),
    ("elu", lambda x: F.elu(x, 0.7), (lambda x: TF.elu(x, 0.7)) if torch else None, 0.0),
    ("selu", F.selu, TF.selu if torch else None, 0.0),
    ("hardtanh_low", F.hardtanh, TF.hardtanh if torch else None, -1.0),
    ("hardtanh_high", F.hardtanh, TF.hardtanh if torch else None, 1.0),
    ("softplus_threshold", lambda x: F.softplus(x, threshold=1.0),
     (lambda x: TF.softplus(x, threshold=1.0)) if torch else None, 1.0),
])
def test_gradient_at_the_kink_follows_torch(name, fn, tfn, point):
    pts = np.array([point - 0.5, point, point + 0.5])
    x = na.Tensor(pts.copy(), requires_grad=True)
    fn(x).sum().backward()
    tx = torch.tensor(pts, requires_grad=True)
    tfn(tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=0)


# ---- numerical stability ---------------------------------------------------------

BIG = np.array([-1e4, -800.0, -100.0, -40.0, -1.0, 0.0, 1.0, 40.0, 100.0, 800.0, 1e4])


TOLERANCE = {"float64": dict(rtol=1e-12, atol=1e-300), "float32": dict(rtol=1e-5, atol=1e-30),
             "float16": dict(rtol=2e-3, atol=1e-7)}


@requires_torch
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize("name,fn,tfn", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_large_inputs_stay_finite_and_match_torch(name, fn, tfn, dtype):
    data = BIG.astype(dtype)
    x = na.Tensor(data.copy(), requires_grad=True)
    # (The clamp is off: this checks the ops, not the engine's float16 clamp.)
    with warnings.catch_warnings(), na.autograd.grad_clip(None):
        warnings.simplefilter("error")          # no overflow / invalid-value warnings
        y = fn(x)
        y.backward(na.Tensor(np.ones_like(data)))
    tx = torch.tensor(data.copy(), requires_grad=True)
    ty = tfn(tx)
    ty.backward(torch.ones_like(ty))
    assert y.dtype == data.dtype and x.grad.dtype == data.dtype
    assert np.all(np.isfinite(y.numpy())) and np.all(np.isfinite(x.grad.numpy()))
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **tol)


@requires_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_softmax_family_is_stable_for_large_inputs(which, dtype):
    data = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, 1e4],
                     [-1e4, -1e4, -1e4]], dtype=dtype)
    x = na.Tensor(data.copy(), requires_grad=True)
    w = np.random.default_rng(0).standard_normal(data.shape).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = getattr(F, which)(x)
        y.backward(na.Tensor(w))
    tx = torch.tensor(data.copy(), requires_grad=True)
    ty = getattr(torch, which)(tx, dim=-1)
    ty.backward(torch.tensor(w))
    assert np.all(np.isfinite(y.numpy())) and np.all(np.isfinite(x.grad.numpy()))
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=1e-6)


@requires_torch
def test_sigmoid_keeps_relative_precision_in_the_left_tail():
    x = np.array([-40.0, -200.0, -700.0])
    np.testing.assert_allclose(F.sigmoid(na.Tensor(x)).numpy(),
                               torch.sigmoid(torch.tensor(x)).numpy(), rtol=1e-13)
    assert F.sigmoid(na.Tensor(x)).numpy()[0] > 4e-18


def test_selu_uses_the_self_normalising_constants():
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    expected = SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))
    np.testing.assert_allclose(F.selu(na.Tensor(x)).numpy(), expected, rtol=1e-15)


def test_log_softmax_beats_log_of_softmax_when_probabilities_underflow():
    x = na.Tensor(np.array([0.0, -800.0]), requires_grad=True)
    y = F.log_softmax(x)
    np.testing.assert_allclose(y.numpy(), [0.0, -800.0])
    y.backward(na.Tensor(np.array([0.0, 1.0])))
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, 1.0])   # gy - softmax * sum(gy)


# ---- softmax specifics ------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=5), data=st.data())
def test_softmax_sums_to_one_along_the_axis(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(len(shape)).uniform(-30, 30, size=shape)
    y = F.softmax(na.Tensor(x), axis).numpy()
    assert y.shape == x.shape
    assert np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-12)
    ls = F.log_softmax(na.Tensor(x), axis).numpy()
    np.testing.assert_allclose(np.exp(ls), y, rtol=1e-10, atol=1e-300)
    # Invariant to a shift along the axis.
    shifted = F.softmax(na.Tensor(x + 123.0), axis).numpy()
    np.testing.assert_allclose(shifted, y, rtol=1e-9, atol=1e-300)


def test_softmax_accepts_torch_dim_keyword():
    x = np.random.default_rng(1).standard_normal((3, 4))
    for fn in (F.softmax, F.log_softmax):
        np.testing.assert_array_equal(fn(na.Tensor(x), dim=0).numpy(),
                                      fn(na.Tensor(x), 0).numpy())
        with pytest.raises(TypeError, match="both axis"):
            fn(na.Tensor(x), 1, dim=0)


def test_softmax_axis_out_of_range_names_the_op():
    with pytest.raises(ValueError, match="Softmax.*axis"):
        F.softmax(na.Tensor(np.zeros((2, 3))), axis=2)
    with pytest.raises(ValueError, match="LogSoftmax.*axis"):
        F.log_softmax(na.Tensor(np.zeros((2, 3))), axis=-3)


def test_softmax_with_minus_inf_mask():
    x = na.Tensor(np.array([[0.0, -np.inf, 1.0]]), requires_grad=True)
    y = F.softmax(x)
    assert y.numpy()[0, 1] == 0.0
    np.testing.assert_allclose(y.numpy().sum(), 1.0)
    ls = F.log_softmax(x)
    assert ls.numpy()[0, 1] == -np.inf
    ls.backward(na.Tensor(np.array([[1.0, 0.0, 0.0]])))
    assert np.all(np.isfinite(x.grad.numpy()))


# ---- shapes, dtypes, methods (hypothesis over shapes) ------------------------------

@requires_torch
@settings(max_examples=15, deadline=None)
@given(shape=array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
       idx=st.integers(0, len(ELEMENTWISE) - 1))
def test_elementwise_any_shape_matches_torch(shape, idx):
    name, fn, tfn = ELEMENTWISE[idx]
    x = np.random.default_rng(idx).uniform(-3, 3, size=shape)
    y = fn(na.Tensor(x))
    assert y.shape == x.shape
    np.testing.assert_allclose(y.numpy(), tfn(torch.tensor(x)).numpy(),
                               rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name,fn,tfn", ELEMENTWISE + [
    ("softmax", F.softmax, None), ("log_softmax", F.log_softmax, None)],
    ids=[e[0] for e in ELEMENTWISE] + ["softmax", "log_softmax"])
def test_float32_stays_float32(name, fn, tfn):
    x = na.Tensor(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    y.backward(na.Tensor(np.ones((3, 4), dtype=np.float32)))
    assert x.grad.dtype == np.float32


def test_tensor_methods_delegate():
    x = na.Tensor(np.random.default_rng(2).standard_normal((2, 3)))
    np.testing.assert_array_equal(x.sigmoid().numpy(), F.sigmoid(x).numpy())
    np.testing.assert_array_equal(x.relu().numpy(), F.relu(x).numpy())
    np.testing.assert_array_equal(x.softmax(0).numpy(), F.softmax(x, axis=0).numpy())
    np.testing.assert_array_equal(x.log_softmax().numpy(), F.log_softmax(x, -1).numpy())
    assert na.gelu is F.gelu and na.mish is F.mish


def test_no_graph_without_requires_grad():
    x = na.Tensor(np.ones(3))
    for _, fn, _ in ELEMENTWISE:
        assert fn(x).creator is None


# ---- the grad_bounded flag is honest -------------------------------------------------

def _creator(fn):
    x = na.Tensor(np.zeros(1), requires_grad=True)
    return fn(x).creator


@pytest.mark.parametrize("name,fn,tfn", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_grad_bounded_flag_matches_the_derivative(name, fn, tfn):
    grid = np.linspace(-8, 8, 4001)
    x = na.Tensor(grid.copy(), requires_grad=True)
    fn(x).backward(na.Tensor(np.ones_like(grid)))
    peak = np.max(np.abs(x.grad.numpy()))
    flag = _creator(fn).grad_bounded
    if flag:
        assert peak <= 1.0, f"{name} claims grad_bounded but its derivative reaches {peak}"
    else:
        # Not wrong to leave the flag off, but every op here leaves it off for a reason.
        assert peak > 1.0, f"{name} could be marked grad_bounded (peak derivative {peak})"


def test_grad_bounded_flags_as_documented():
    assert _creator(F.relu).grad_bounded
    assert _creator(F.sigmoid).grad_bounded
    assert _creator(lambda x: F.softplus(x, beta=5.0)).grad_bounded
    assert _creator(lambda x: F.leaky_relu(x, 1.0)).grad_bounded
    assert not _creator(lambda x: F.leaky_relu(x, 2.0)).grad_bounded
    assert _creator(F.elu).grad_bounded
    assert not _creator(lambda x: F.elu(x, 1.5)).grad_bounded
    assert not _creator(F.selu).grad_bounded
    assert not _creator(F.gelu).grad_bounded
    assert not _creator(F.silu).grad_bounded
    assert not _creator(F.mish).grad_bounded
    assert not _creator(F.softmax).grad_bounded      # its gradient is a sum
    assert not _creator(F.log_softmax).grad_bounded


# ---- bad arguments -------------------------------------------------------------------

def test_bad_arguments_raise_clear_errors():
    x = na.Tensor(np.zeros(3))
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'fast'"):
        F.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match="max_val .* must not be below min_val"):
        F.hardtanh(x, min_val=1.0, max_val=-1.0)
    with pytest.raises(ValueError, match="beta must be non-zero"):
        F.softplus(x, beta=0)
