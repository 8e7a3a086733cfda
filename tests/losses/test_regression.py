"""Regression losses: torch parity (functional and Module), NumPy formulas, derivatives."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import neural_arch as na
import neural_arch.losses as L
import neural_arch.losses.functional as LF
from neural_arch.autograd import gradcheck, gradgradcheck
from tests.helpers import requires_torch, torch
from tests.losses import assert_parity, grad_tensors

if torch is not None:
    import torch.nn.functional as TF

REDUCTIONS = ["mean", "sum", "none"]

# (name, neural_arch function, torch function, neural_arch Module, torch Module), each
# function taking (input, target, reduction) and each Module factory taking reduction.
TORCH_LOSSES = [
    ("mse", lambda x, y, r: LF.mse_loss(x, y, r),
     lambda x, y, r: TF.mse_loss(x, y, reduction=r),
     lambda r: L.MSELoss(r), lambda r: torch.nn.MSELoss(reduction=r)),
    ("l1", lambda x, y, r: LF.l1_loss(x, y, r),
     lambda x, y, r: TF.l1_loss(x, y, reduction=r),
     lambda r: L.L1Loss(r), lambda r: torch.nn.L1Loss(reduction=r)),
    ("smooth_l1", lambda x, y, r: LF.smooth_l1_loss(x, y, r),
     lambda x, y, r: TF.smooth_l1_loss(x, y, reduction=r),
     lambda r: L.SmoothL1Loss(r), lambda r: torch.nn.SmoothL1Loss(reduction=r)),
    ("smooth_l1_beta0.5", lambda x, y, r: LF.smooth_l1_loss(x, y, r, beta=0.5),
     lambda x, y, r: TF.smooth_l1_loss(x, y, reduction=r, beta=0.5),
     lambda r: L.SmoothL1Loss(r, beta=0.5),
     lambda r: torch.nn.SmoothL1Loss(reduction=r, beta=0.5)),
    ("smooth_l1_beta0", lambda x, y, r: LF.smooth_l1_loss(x, y, r, beta=0.0),
     lambda x, y, r: TF.smooth_l1_loss(x, y, reduction=r, beta=0.0),
     lambda r: L.SmoothL1Loss(r, beta=0.0),
     lambda r: torch.nn.SmoothL1Loss(reduction=r, beta=0.0)),
    ("huber", lambda x, y, r: LF.huber_loss(x, y, r),
     lambda x, y, r: TF.huber_loss(x, y, reduction=r),
     lambda r: L.HuberLoss(r), lambda r: torch.nn.HuberLoss(reduction=r)),
    ("huber_delta2.5", lambda x, y, r: LF.huber_loss(x, y, r, delta=2.5),
     lambda x, y, r: TF.huber_loss(x, y, reduction=r, delta=2.5),
     lambda r: L.HuberLoss(r, delta=2.5), lambda r: torch.nn.HuberLoss(reduction=r, delta=2.5)),
]
IDS = [c[0] for c in TORCH_LOSSES]


def _pair(shape, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-scale, scale, shape), rng.uniform(-scale, scale, shape)


# ---- parity with torch: functional and Module, every reduction, higher dims ---------------

@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,fn,tfn,mod,tmod", TORCH_LOSSES, ids=IDS)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2, 2)])
def test_matches_torch_functional(name, fn, tfn, mod, tmod, reduction, shape):
    x, y = _pair(shape)
    # Gradients of input and target both.
    assert_parity(lambda a, b: fn(a, b, reduction), lambda a, b: tfn(a, b, reduction),
                  [x, y], grad=(0, 1))


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,fn,tfn,mod,tmod", TORCH_LOSSES, ids=IDS)
def test_matches_torch_module(name, fn, tfn, mod, tmod, reduction):
    x, y = _pair((4, 3), seed=1)
    assert_parity(mod(reduction), tmod(reduction), [x, y], grad=(0,))


@requires_torch
@pytest.mark.parametrize("name,fn,tfn,mod,tmod", TORCH_LOSSES, ids=IDS)
def test_target_may_be_a_plain_array(name, fn, tfn, mod, tmod):
    x, y = _pair((3, 4), seed=2)
    out = fn(na.Tensor(x), y, "mean")
    assert np.isclose(out.item(), tfn(torch.tensor(x), torch.tensor(y), "mean").item(),
                      rtol=1e-12)


@requires_torch
@settings(max_examples=15, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       which=st.integers(0, len(TORCH_LOSSES) - 1), seed=st.integers(0, 100))
def test_broadcasting_matches_torch(shapes, which, seed):
    name, fn, tfn, _, _ = TORCH_LOSSES[which]
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, shapes.input_shapes[0])
    y = rng.uniform(-2, 2, shapes.input_shapes[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # torch warns about differing sizes
        assert_parity(lambda a, b: fn(a, b, "none"), lambda a, b: tfn(a, b, "none"),
                      [x, y], grad=(0, 1))


def test_smooth_l1_and_huber_regions():
    # Quadratic inside the threshold, linear outside, and the two meet continuously.
    d = np.array([-3.0, -0.5, 0.0, 0.25, 2.0])
    x, y = na.Tensor(d), np.zeros(5)
    np.testing.assert_allclose(LF.smooth_l1_loss(x, y, "none", beta=1.0).numpy(),
                               [2.5, 0.125, 0.0, 0.03125, 1.5])
    np.testing.assert_allclose(LF.huber_loss(x, y, "none", delta=1.0).numpy(),
                               [2.5, 0.125, 0.0, 0.03125, 1.5])
    np.testing.assert_allclose(LF.huber_loss(x, y, "none", delta=2.0).numpy(),
                               [4.0, 0.125, 0.0, 0.03125, 2.0])
    # smooth_l1(beta=b) == huber(delta=b) / b
    np.testing.assert_allclose(LF.smooth_l1_loss(x, y, "none", beta=2.0).numpy(),
                               LF.huber_loss(x, y, "none", delta=2.0).numpy() / 2.0)


# ---- derivatives ----------------------------------------------------------------------------

ALL_FUNCTIONS = [
    ("mse", lambda x, y: LF.mse_loss(x, y)),
    ("l1", lambda x, y: LF.l1_loss(x, y, "sum")),
    ("smooth_l1", lambda x, y: LF.smooth_l1_loss(x, y, beta=0.7)),
    ("huber", lambda x, y: LF.huber_loss(x, y, "none", delta=0.8)),
    ("log_cosh", lambda x, y: LF.log_cosh_loss(x, y)),
    ("quantile", lambda x, y: LF.quantile_loss(x, y, 0.3, "sum")),
    ("quantiles", lambda x, y: LF.quantile_loss(x, y[..., :1], [0.1, 0.5, 0.9], "none")),
]


@pytest.mark.parametrize("name,fn", ALL_FUNCTIONS, ids=[c[0] for c in ALL_FUNCTIONS])
def test_gradcheck_and_gradgradcheck(name, fn):
    x, y = _pair((4, 3), seed=3)
    xs = grad_tensors([x, y], grad=(0, 1))
    assert gradcheck(fn, xs)
    assert gradgradcheck(fn, xs)


# ---- log-cosh against an independent NumPy formula ----------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_log_cosh_matches_numpy(reduction):
    x, y = _pair((3, 5), seed=4, scale=3.0)
    ref = np.log(np.cosh(x - y))
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    out = LF.log_cosh_loss(na.Tensor(x), na.Tensor(y), reduction)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(L.LogCoshLoss(reduction)(na.Tensor(x), y).numpy(), ref,
                               rtol=1e-12, atol=1e-15)


def test_log_cosh_gradient_is_tanh_and_large_errors_stay_finite():
    d = np.array([-1e4, -800.0, -1.0, 0.0, 1e-3, 2.0, 800.0, 1e4])
    x = na.Tensor(d, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = LF.log_cosh_loss(x, np.zeros_like(d), "sum")
        loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.tanh(d), rtol=1e-15)
    per = LF.log_cosh_loss(na.Tensor(d), np.zeros_like(d), "none").numpy()
    # Far out log cosh d = |d| - log 2 (cosh itself overflows there).
    np.testing.assert_allclose(per[[0, 1, 6, 7]], np.abs(d[[0, 1, 6, 7]]) - np.log(2.0),
                               rtol=1e-15)
    assert per[3] == 0.0
    np.testing.assert_allclose(per[4], 0.5e-6, rtol=1e-6)


# ---- quantile (pinball) loss against an independent NumPy formula ---------------------------

def _pinball(pred, target, q):
    r = target - pred
    return np.where(r >= 0, q * r, (q - 1) * r)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_quantile_matches_numpy(q, reduction):
    x, y = _pair((4, 3), seed=5)
    ref = _pinball(x, y, q)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    out = LF.quantile_loss(na.Tensor(x), na.Tensor(y), q, reduction)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-13)
    np.testing.assert_allclose(L.QuantileLoss(q, reduction)(na.Tensor(x), y).numpy(), ref,
                               rtol=1e-13)


def test_quantile_gradient_and_median_case():
    x = na.Tensor(np.array([0.0, 2.0, 5.0]), requires_grad=True)
    y = np.array([1.0, 2.0, 3.0])
    LF.quantile_loss(x, y, 0.8, "sum").backward()
    # Under-prediction (and r = 0) costs q per unit, over-prediction 1 - q.
    np.testing.assert_allclose(x.grad.numpy(), [-0.8, -0.8, 0.2])
    # q = 0.5 is half the L1 loss.
    x2, y2 = _pair((5,), seed=6)
    np.testing.assert_allclose(LF.quantile_loss(na.Tensor(x2), y2).item(),
                               0.5 * np.abs(x2 - y2).mean(), rtol=1e-13)


@pytest.mark.parametrize("target_shape", [(4,), (4, 1)])
def test_several_quantiles_match_numpy(target_shape):
    rng = np.random.default_rng(7)
    qs = [0.1, 0.5, 0.9]
    x = rng.uniform(-2, 2, (4, 3))
    y = rng.uniform(-2, 2, target_shape)
    ref = _pinball(x, y.reshape(4, 1), np.array(qs))
    out = LF.quantile_loss(na.Tensor(x), na.Tensor(y), qs, "none")
    assert out.shape == (4, 3)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-13)
    np.testing.assert_allclose(L.QuantileLoss(qs)(na.Tensor(x), y).item(), ref.mean(),
                               rtol=1e-13)


def test_quantile_rejects_a_mismatched_last_axis():
    with pytest.raises(ValueError, match="3 quantiles.*last axis"):
        LF.quantile_loss(na.Tensor(np.zeros((4, 2))), np.zeros(4), [0.1, 0.5, 0.9])


# ---- Modules --------------------------------------------------------------------------------

def test_modules_hold_their_arguments_and_reject_bad_ones():
    assert L.SmoothL1Loss(beta=0.3).beta == 0.3
    assert L.HuberLoss(delta=2.0).delta == 2.0
    assert L.QuantileLoss([0.2, 0.8]).quantile == (0.2, 0.8)
    assert "delta=2.0" in repr(L.HuberLoss(delta=2.0))
    with pytest.raises(ValueError, match="reduction"):
        L.MSELoss("avg")
    with pytest.raises(ValueError, match="beta"):
        L.SmoothL1Loss(beta=-1.0)
    with pytest.raises(ValueError, match="delta"):
        L.HuberLoss(delta=0.0)
    with pytest.raises(ValueError, match="quantile"):
        L.QuantileLoss(1.5)


def test_module_is_trainable():
    # A Module loss drives a parameter to the target under plain gradient descent.
    w = na.Parameter(np.zeros(3))
    target = np.array([1.0, -2.0, 0.5])
    loss_fn = L.MSELoss()
    for _ in range(200):
        w.grad = None
        loss_fn(w, target).backward()
        w.data -= 0.5 * w.grad.numpy()
    np.testing.assert_allclose(w.numpy(), target, atol=1e-8)
