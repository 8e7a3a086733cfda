"""Regression and classification losses: numerical stability, bad input, device discipline."""
import warnings

import numpy as np
import pytest

import neural_arch as na
import neural_arch.losses as L
import neural_arch.losses.functional as LF
from neural_arch import backend
from tests import fake_cupy
from tests.helpers import requires_torch, torch
from tests.losses import assert_parity

if torch is not None:
    import torch.nn.functional as TF

fake_cupy.register()

BIG = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]])


@pytest.fixture
def no_warnings():
    """Turn every warning (overflow, log of zero, ...) into an error for the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---- large logits ---------------------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("target", [np.array([0, 1, 2, 1]), np.array([1, 0, 2, 0])])
def test_cross_entropy_with_huge_logits_is_finite_and_equals_torch(target, smoothing,
                                                                   no_warnings):
    out = assert_parity(lambda x, t: LF.cross_entropy(x, t, label_smoothing=smoothing),
                        lambda x, t: TF.cross_entropy(x, t, label_smoothing=smoothing),
                        [BIG, target])
    assert np.isfinite(out.item())


@requires_torch
def test_cross_entropy_with_huge_logits_and_probability_targets(no_warnings):
    p = np.full(BIG.shape, 1 / 3)
    out = assert_parity(lambda x, t: LF.cross_entropy(x, t, reduction="none"),
                        lambda x, t: TF.cross_entropy(x, t, reduction="none"), [BIG, p])
    assert np.all(np.isfinite(out.numpy()))


def test_cross_entropy_with_huge_float32_logits_is_finite(no_warnings):
    x = na.Tensor(BIG.astype(np.float32), requires_grad=True)
    loss = LF.cross_entropy(x, np.array([0, 1, 2, 1]), label_smoothing=0.1)
    loss.backward()
    assert loss.dtype == np.float32 and np.isfinite(loss.item())
    assert x.grad.dtype == np.float32 and np.all(np.isfinite(x.grad.numpy()))


@requires_torch
@pytest.mark.parametrize("pos_weight", [None, np.array([2.0, 0.5, 1.0])])
def test_bce_with_logits_with_huge_logits_is_finite_and_equals_torch(pos_weight, no_warnings):
    y = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.5], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    tpw = None if pos_weight is None else torch.tensor(pos_weight)
    out = assert_parity(
        lambda x, t: LF.binary_cross_entropy_with_logits(x, t, reduction="none",
                                                         pos_weight=pos_weight),
        lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction="none",
                                                         pos_weight=tpw),
        [BIG, y], grad=(0, 1))
    assert np.all(np.isfinite(out.numpy()))


def test_focal_loss_with_huge_logits_is_finite(no_warnings):
    x = na.Tensor(BIG, requires_grad=True)
    binary = LF.focal_loss(x, np.eye(4, 3))
    multi = LF.focal_loss(x, np.array([0, 1, 2, 1]))
    (binary + multi).backward()
    assert np.isfinite(binary.item()) and np.isfinite(multi.item())
    assert np.all(np.isfinite(x.grad.numpy()))
    # A wrong class at 2e4 logits apart costs 2e4 (1 - p_y = 1 exactly).
    per = LF.focal_loss(na.Tensor(BIG[:1]), np.array([1]), alpha=None, reduction="none")
    np.testing.assert_allclose(per.numpy(), [2e4])


# ---- probabilities of exactly 0 and 1 -------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_with_exact_zero_and_one_probabilities_is_finite_and_equals_torch(dtype,
                                                                              no_warnings):
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-50]).astype(dtype)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0]).astype(dtype)
    x = na.Tensor(p, requires_grad=True)
    loss = LF.binary_cross_entropy(x, y, reduction="none")
    with na.autograd.grad_clip(None):       # the gradient reaches 1e12, as in torch
        loss.backward(na.Tensor(np.ones(6, dtype)))
    tx = torch.tensor(p, requires_grad=True)
    tl = TF.binary_cross_entropy(tx, torch.tensor(y), reduction="none")
    tl.backward(torch.ones(6, dtype=tl.dtype))
    # log is clamped at -100: a certain wrong answer costs 100, a certain right one 0.
    np.testing.assert_allclose(loss.numpy(), tl.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(loss.numpy()[:4], [0.0, 0.0, 100.0, 100.0])
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
    assert np.all(np.isfinite(x.grad.numpy()))


def test_bce_target_gradient_is_finite_at_exact_probabilities(no_warnings):
    # d loss / d y = log(1 - x) - log(x), with the forward's -100 clamp on each log
    # (PyTorch leaves this gradient unclamped, +-inf at x = 0 and 1).
    x = na.Tensor(np.array([0.0, 1.0, 0.3]))
    y = na.Tensor(np.array([0.5, 0.5, 0.5]), requires_grad=True)
    LF.binary_cross_entropy(x, y, reduction="sum").backward()
    np.testing.assert_allclose(y.grad.numpy(), [100.0, -100.0, np.log(0.7 / 0.3)])


def test_kl_div_with_zero_target_probabilities_is_finite(no_warnings):
    q = na.Tensor(np.log(np.array([[0.5, 0.25, 0.25]])), requires_grad=True)
    p = na.Tensor(np.array([[0.0, 0.5, 0.5]]), requires_grad=True)
    loss = LF.kl_div(q, p, reduction="batchmean")
    loss.backward()
    np.testing.assert_allclose(loss.item(), np.log(2.0))
    assert np.all(np.isfinite(q.grad.numpy())) and np.all(np.isfinite(p.grad.numpy()))


# ---- bad input: clear errors naming the argument ---------------------------------------------

X = na.Tensor(np.zeros((4, 3)))


@pytest.mark.parametrize("fn", [LF.cross_entropy, LF.nll_loss, LF.focal_loss])
def test_float_class_indices_are_rejected(fn):
    with pytest.raises(TypeError, match="class indices must be integers.*astype"):
        fn(X, np.array([0.0, 1.0, 2.0, 1.0]))


@pytest.mark.parametrize("fn", [LF.cross_entropy, LF.nll_loss])
def test_class_index_target_of_the_wrong_shape_is_rejected(fn):
    with pytest.raises(ValueError, match=r"expected a target of shape \(4,\).*got \(3,\)"):
        fn(X, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"expected a target of shape \(2, 5\)"):
        fn(na.Tensor(np.zeros((2, 3, 5))), np.zeros((2, 3), dtype=np.int64))


@pytest.mark.parametrize("fn", [LF.cross_entropy, LF.nll_loss, LF.focal_loss])
@pytest.mark.parametrize("bad", [3, -1, 7])
def test_class_index_out_of_range_is_rejected(fn, bad):
    with pytest.raises(IndexError, match=f"class index {bad}, outside \\[0, 3\\)"):
        fn(X, np.array([0, bad, 1, 2]))


def test_ignore_index_is_exempt_from_the_range_check():
    t = np.array([0, 255, 1, 255])
    for fn in (LF.cross_entropy, LF.nll_loss):
        out = fn(X, t, ignore_index=255)
        assert np.isfinite(out.item())
        with pytest.raises(IndexError, match="255.*ignore_index=-100"):
            fn(X, t)


def test_a_float_target_of_another_shape_is_rejected():
    with pytest.raises(TypeError, match="integer dtype"):
        LF.cross_entropy(X, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"target must have the input's shape \(4, 3\)"):
        LF.binary_cross_entropy_with_logits(X, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"target must have the input's shape"):
        LF.binary_cross_entropy(na.Tensor(np.full((4, 3), 0.5)), np.zeros(4))
    with pytest.raises(ValueError, match="fits neither"):
        LF.focal_loss(X, np.zeros((4, 2)))


def test_a_bad_class_weight_is_rejected():
    with pytest.raises(ValueError, match=r"weight must have one entry per class, shape \(3,\)"):
        LF.cross_entropy(X, np.array([0, 1, 2, 1]), weight=np.ones(4))
    with pytest.raises(ValueError, match="weight"):
        L.NLLLoss(weight=np.ones(2))(X, np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="per-class alpha needs 3"):
        LF.focal_loss(X, np.array([0, 1, 2, 1]), alpha=[0.5, 0.5])
    with pytest.raises(ValueError, match="one number as alpha"):
        LF.focal_loss(X, np.zeros((4, 3)), alpha=[0.5, 0.5, 0.5])


def test_bce_rejects_inputs_that_are_not_probabilities():
    for bad in (1.5, -0.1, np.nan):
        with pytest.raises(ValueError, match=r"input must be a probability in \[0, 1\]"):
            LF.binary_cross_entropy(na.Tensor(np.array([0.5, bad])), np.zeros(2))


@pytest.mark.parametrize("call,match", [
    (lambda: LF.smooth_l1_loss(X, X, beta=-0.5), "beta must be non-negative, got -0.5"),
    (lambda: L.SmoothL1Loss(beta=-1), "SmoothL1Loss: beta"),
    (lambda: LF.huber_loss(X, X, delta=0.0), "delta must be positive, got 0.0"),
    (lambda: L.HuberLoss(delta=-2.0), "HuberLoss: delta"),
    (lambda: LF.focal_loss(X, np.array([0, 1, 2, 1]), gamma=-1.0),
     "gamma must be non-negative, got -1.0"),
    (lambda: L.FocalLoss(gamma=-0.5), "FocalLoss: gamma"),
    (lambda: LF.cross_entropy(X, np.array([0, 1, 2, 1]), label_smoothing=1.5),
     r"label_smoothing must lie in \[0, 1\]"),
    (lambda: L.CrossEntropyLoss(label_smoothing=-0.1), "CrossEntropyLoss: label_smoothing"),
    (lambda: LF.quantile_loss(X, X, quantile=1.0), "strictly between 0 and 1, got 1.0"),
    (lambda: LF.quantile_loss(X, X, quantile=[]), "non-empty"),
    (lambda: L.QuantileLoss([0.5, 0.0]), "QuantileLoss"),
])
def test_bad_hyperparameters_are_rejected_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()


FUNCTIONS = [
    lambda r: LF.mse_loss(X, X, r), lambda r: LF.l1_loss(X, X, r),
    lambda r: LF.smooth_l1_loss(X, X, r), lambda r: LF.huber_loss(X, X, r),
    lambda r: LF.log_cosh_loss(X, X, r), lambda r: LF.quantile_loss(X, X, 0.5, r),
    lambda r: LF.cross_entropy(X, np.array([0, 1, 2, 1]), reduction=r),
    lambda r: LF.nll_loss(X, np.array([0, 1, 2, 1]), reduction=r),
    lambda r: LF.binary_cross_entropy(X, X, reduction=r),
    lambda r: LF.binary_cross_entropy_with_logits(X, X, reduction=r),
    lambda r: LF.kl_div(X, X, reduction=r), lambda r: LF.focal_loss(X, X, reduction=r),
    lambda r: LF.margin_ranking_loss(X, X, X, reduction=r),
    lambda r: LF.hinge_embedding_loss(X, X, reduction=r),
    lambda r: LF.cosine_embedding_loss(X, X, np.ones(4), reduction=r),
    lambda r: LF.triplet_margin_loss(X, X, X, reduction=r),
]
MODULES = [L.MSELoss, L.L1Loss, L.SmoothL1Loss, L.HuberLoss, L.LogCoshLoss,
           lambda reduction: L.QuantileLoss(reduction=reduction),
           L.CrossEntropyLoss, L.NLLLoss, L.BCELoss, L.BCEWithLogitsLoss, L.KLDivLoss,
           L.FocalLoss, L.MarginRankingLoss, L.HingeEmbeddingLoss, L.CosineEmbeddingLoss,
           L.TripletMarginLoss]


@pytest.mark.parametrize("i", range(len(FUNCTIONS)))
def test_an_unknown_reduction_is_rejected_by_every_function(i):
    with pytest.raises(ValueError, match=r"reduction must be one of .*got 'avg'"):
        FUNCTIONS[i]("avg")


@pytest.mark.parametrize("make", MODULES)
def test_an_unknown_reduction_is_rejected_by_every_module(make):
    with pytest.raises(ValueError, match="reduction"):
        make(reduction="elementwise_mean")


def test_only_kl_div_accepts_batchmean():
    assert LF.kl_div(X, X, reduction="batchmean").item() == 0.0
    assert L.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    with pytest.raises(ValueError, match="reduction"):
        LF.mse_loss(X, X, reduction="batchmean")


def test_shape_mismatches_name_both_shapes():
    with pytest.raises(ValueError, match=r"mse_loss: input of shape \(4, 3\) and target of "
                                         r"shape \(2,\) cannot be broadcast"):
        LF.mse_loss(X, np.zeros(2))
    with pytest.raises(ValueError, match=r"margin_ranking_loss: .*input2 \(5,\)"):
        LF.margin_ranking_loss(X, na.Tensor(np.zeros(5)), np.ones(3))
    with pytest.raises(ValueError, match="one label per pair"):
        LF.cosine_embedding_loss(X, X, np.ones(3))
    with pytest.raises(ValueError, match="must all be"):
        LF.triplet_margin_loss(X, X, na.Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match="class axis"):
        LF.cross_entropy(na.Tensor(np.array(1.0)), np.array(0))


# ---- device discipline: the fake CuPy device gives the CPU's results ---------------------------

def _y(shape):
    return np.random.default_rng(1).uniform(0.1, 0.9, shape)


T_IDX = np.array([[0, 2], [1, -100]])            # (N, d) class indices for (N, C, d) logits
DEVICE_CASES = [
    ("mse", lambda x, on: LF.mse_loss(x, on(_y(x.shape)))),
    ("l1", lambda x, on: LF.l1_loss(x, on(_y(x.shape)), "sum")),
    ("smooth_l1", lambda x, on: LF.smooth_l1_loss(x, on(_y(x.shape)), beta=0.5)),
    ("huber", lambda x, on: LF.huber_loss(x, on(_y(x.shape)), "none", delta=0.5)),
    ("log_cosh", lambda x, on: LF.log_cosh_loss(x, on(_y(x.shape)))),
    ("quantiles", lambda x, on: LF.quantile_loss(x, on(_y(x.shape[:-1])), [0.2, 0.9])),
    ("cross_entropy", lambda x, on: LF.cross_entropy(
        x, on(T_IDX), weight=on(np.array([1.0, 2.0, 0.5])), label_smoothing=0.1)),
    ("cross_entropy_probs", lambda x, on: LF.cross_entropy(x, on(_y(x.shape)))),
    ("nll", lambda x, on: LF.nll_loss(x, on(T_IDX), weight=on(np.array([1.0, 2.0, 0.5])))),
    ("bce", lambda x, on: LF.binary_cross_entropy(
        na.functional.sigmoid(x), on(_y(x.shape)), weight=on(_y(x.shape[-1:])))),
    ("bce_logits", lambda x, on: LF.binary_cross_entropy_with_logits(
        x, on(_y(x.shape)), pos_weight=on(_y(x.shape[-1:])))),
    ("kl_div", lambda x, on: LF.kl_div(x, on(_y(x.shape)), "batchmean")),
    ("kl_div_log", lambda x, on: LF.kl_div(x, on(_y(x.shape)), "sum", log_target=True)),
    ("focal_binary", lambda x, on: LF.focal_loss(x, on(_y(x.shape)))),
    ("focal_multiclass", lambda x, on: LF.focal_loss(x, on(np.abs(T_IDX) % 3),
                                                     alpha=on(np.array([0.2, 0.3, 0.5])))),
    ("margin_ranking", lambda x, on: LF.margin_ranking_loss(x, x * 0.5, on(np.ones(x.shape)))),
    ("hinge", lambda x, on: LF.hinge_embedding_loss(x, on(np.sign(_y(x.shape) - 0.5)))),
    ("cosine", lambda x, on: LF.cosine_embedding_loss(x[:, :, 0], x[:, :, 1],
                                                      on(np.array([1.0, -1.0])))),
    ("triplet", lambda x, on: LF.triplet_margin_loss(x[:, :, 0], x[:, :, 1], x[:, :, 0] * 2,
                                                     swap=True)),
]


def _run(fn, device, x):
    def on(a):
        return backend.to_device(np.asarray(a), device)
    t = na.Tensor(x, requires_grad=True).to(device) if device != "cpu" else \
        na.Tensor(x, requires_grad=True)
    loss = fn(t, on)
    (g,) = na.autograd.grad(loss.sum(), [t], create_graph=True)
    # Piecewise-linear losses have a gradient that does not depend on x.
    gg = na.autograd.grad((g * g).sum(), [t])[0] if g.requires_grad else g * 0
    return [backend.asnumpy(a.data) for a in (loss, g, gg)], [a.device for a in (loss, g, gg)]


@pytest.mark.parametrize("name,fn", DEVICE_CASES, ids=[c[0] for c in DEVICE_CASES])
def test_losses_run_on_the_fake_device_like_on_the_cpu(name, fn):
    x = np.random.default_rng(2).uniform(-1.5, 1.5, (2, 3, 2))
    cpu, _ = _run(fn, "cpu", x)
    dev, devices = _run(fn, "fake", x)
    assert devices == ["fake:0"] * 3
    for a, b in zip(cpu, dev):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
