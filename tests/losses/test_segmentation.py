"""Segmentation losses (Dice, Tversky, focal Tversky, Lovasz) against their papers.

Every reference below is written independently in plain NumPy, pixel loops and set
functions included, from the formulas of the papers; nothing is shared with the
implementation.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neural_arch as na
import neural_arch.losses  # noqa: F401  (na.losses)
from neural_arch import backend
from neural_arch.autograd import gradcheck, gradgradcheck
from neural_arch.losses import functional as LF
from tests import fake_cupy

REDUCTIONS = ["mean", "sum", "none"]


# ==== plain NumPy references ===========================================================

def np_probs(x, from_logits=True):
    if not from_logits:
        return x
    if x.shape[1] == 1:
        return 1 / (1 + np.exp(-x))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_onehot(labels, c):
    if c == 1:
        return labels[:, None].astype(float)
    return np.stack([labels == k for k in range(c)], axis=1).astype(float)


def _pixels(p, g, n, c, valid):
    pn, gn = p[n, c].ravel(), g[n, c].ravel()
    if valid is not None:
        keep = valid[n].ravel()
        pn, gn = pn[keep], gn[keep]
    return pn, gn


def np_dice(p, g, smooth, valid=None):
    """Milletari's soft Dice loss per sample and class, pixel by pixel."""
    out = np.zeros(p.shape[:2])
    for n in range(p.shape[0]):
        for c in range(p.shape[1]):
            pn, gn = _pixels(p, g, n, c, valid)
            out[n, c] = 1 - (2 * np.sum(pn * gn) + smooth) / (pn.sum() + gn.sum() + smooth)
    return out


def np_tversky_index(p, g, alpha, beta, smooth, valid=None):
    """Salehi's Tversky index with FP and FN counted directly."""
    out = np.zeros(p.shape[:2])
    for n in range(p.shape[0]):
        for c in range(p.shape[1]):
            pn, gn = _pixels(p, g, n, c, valid)
            tp = np.sum(pn * gn)
            fp = np.sum(pn * (1 - gn))
            fn = np.sum((1 - pn) * gn)
            out[n, c] = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
    return out


def np_reduce(per, reduction, weight=None):
    if weight is not None:
        per = per * weight
        if reduction == "mean":
            return per.sum() / (per.shape[0] * np.sum(weight))
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](per)


def jaccard_of_mistakes(mistakes, fg):
    """Delta_J(M) = |M| / |G u M| (Berman et al., eq. 3)."""
    union = np.sum(fg | mistakes)
    return np.sum(mistakes) / union if union else 0.0


def np_lovasz_extension(errors, fg):
    """The Lovasz extension of Delta_J by its definition: errors times set increments."""
    mistakes = np.zeros(errors.shape, bool)
    total, previous = 0.0, 0.0
    for i in np.argsort(-errors, kind="stable"):
        mistakes[i] = True
        current = jaccard_of_mistakes(mistakes, fg)
        total += errors[i] * (current - previous)
        previous = current
    return total


def _groups(n, per_image):
    return [[i] for i in range(n)] if per_image else [list(range(n))]


def np_lovasz_hinge(x, labels, per_image=False, valid=None):
    """x: (N, *spatial) logits; labels: (N, *spatial) 0/1."""
    losses = []
    for group in _groups(x.shape[0], per_image):
        keep = (np.ones(x[group].shape, bool) if valid is None else valid[group]).ravel()
        xs, gs = x[group].ravel()[keep], labels[group].ravel()[keep] == 1
        errors = np.maximum(0, 1 - xs * np.where(gs, 1.0, -1.0))
        losses.append(np_lovasz_extension(errors, gs))
    return np.array(losses)


def np_lovasz_softmax(p, labels, classes="present", per_image=False, valid=None):
    """p: (N, C, *spatial) probabilities; labels (N, *spatial) class indices."""
    c_count = p.shape[1]
    losses = []
    for group in _groups(p.shape[0], per_image):
        keep = (np.ones(labels[group].shape, bool) if valid is None else valid[group]).ravel()
        lab = labels[group].ravel()[keep]
        class_losses = []
        wanted = range(c_count) if isinstance(classes, str) else classes
        for c in wanted:
            fg = lab == c
            if classes == "present" and not fg.any():
                continue
            pc = np.moveaxis(p[group], 1, 0)[c].ravel()[keep]
            class_losses.append(np_lovasz_extension(np.abs(fg - pc), fg))
        losses.append(np.mean(class_losses) if class_losses else 0.0)
    return np.array(losses)


def T(a, grad=False):
    return na.Tensor(np.array(a, dtype=np.float64), requires_grad=grad)


def rng_logits(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def rng_labels(shape, c, seed=1):
    return np.random.default_rng(seed).integers(0, max(c, 2), shape)


# ==== Dice ===============================================================================

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_dice_multiclass_matches_formula(reduction):
    x = rng_logits((2, 3, 4, 3))
    labels = rng_labels((2, 4, 3), 3)
    got = LF.dice_loss(T(x), labels, smooth=0.5, reduction=reduction)
    want = np_reduce(np_dice(np_probs(x), np_onehot(labels, 3), 0.5), reduction)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_dice_class_weights_follow_the_weighted_mean(reduction):
    x = rng_logits((3, 4, 5))
    labels = rng_labels((3, 5), 4)
    w = [0.0, 1.0, 2.0, 0.5]
    got = LF.dice_loss(T(x), labels, weight=w, reduction=reduction)
    want = np_reduce(np_dice(np_probs(x), np_onehot(labels, 4), 1.0), reduction, np.array(w))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_dice_one_hot_and_soft_targets_equal_the_formula():
    x = rng_logits((2, 3, 3, 3))
    labels = rng_labels((2, 3, 3), 3)
    onehot = np_onehot(labels, 3)
    by_index = LF.dice_loss(T(x), labels)
    by_onehot = LF.dice_loss(T(x), T(onehot))
    np.testing.assert_allclose(by_index.numpy(), by_onehot.numpy(), rtol=1e-13)
    soft = np_probs(rng_logits((2, 3, 3, 3), seed=5))
    got = LF.dice_loss(T(x), soft, reduction="none")
    np.testing.assert_allclose(got.numpy(), np_dice(np_probs(x), soft, 1.0), rtol=1e-12)


@pytest.mark.parametrize("target_form", ["int_nhw", "int_n1hw", "float_nhw", "float_n1hw"])
def test_dice_binary_uses_a_sigmoid_and_accepts_every_target_form(target_form):
    x = rng_logits((3, 1, 4, 2))
    labels = rng_labels((3, 4, 2), 2)
    target = {"int_nhw": labels, "int_n1hw": labels[:, None],
              "float_nhw": labels.astype(float), "float_n1hw": labels[:, None] * 1.0}
    got = LF.dice_loss(T(x), target[target_form], reduction="none")
    want = np_dice(1 / (1 + np.exp(-x)), labels[:, None].astype(float), 1.0)
    assert got.shape == (3, 1)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_dice_from_probabilities_and_without_spatial_dims():
    p = np_probs(rng_logits((4, 3)))
    labels = rng_labels((4,), 3)
    got = LF.dice_loss(T(p), labels, smooth=0.1, from_logits=False, reduction="none")
    np.testing.assert_allclose(got.numpy(), np_dice(p, np_onehot(labels, 3), 0.1),
                               rtol=1e-12)


def test_dice_ignore_index_leaves_pixels_out():
    x = rng_logits((2, 3, 4, 4))
    labels = rng_labels((2, 4, 4), 3)
    labels[0, 0, :] = 255
    labels[1, 2, 1] = 255
    valid = labels != 255
    got = LF.dice_loss(T(x), labels, ignore_index=255, reduction="none")
    want = np_dice(np_probs(x), np_onehot(np.where(valid, labels, 0), 3), 1.0, valid)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_perfect_prediction_gives_zero_and_exact_probabilities_stay_finite():
    labels = rng_labels((2, 3, 3), 3)
    onehot = np_onehot(labels, 3)
    for fn in (LF.dice_loss, LF.tversky_loss, LF.focal_tversky_loss):
        for smooth in (0.0, 1.0):
            p = T(onehot, grad=True)
            loss = fn(p, labels, smooth=smooth, from_logits=False)
            loss.backward()
            assert abs(loss.item()) < 1e-6, fn.__name__
            assert np.isfinite(p.grad.numpy()).all(), fn.__name__
    # Exactly wrong 0/1 probabilities, an absent class and smooth=0: finite, no 0/0.
    p = T(1 - onehot, grad=True)
    loss = LF.focal_tversky_loss(p, labels, smooth=0.0, from_logits=False)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(p.grad.numpy()).all()
    empty = LF.dice_loss(T(np.zeros((1, 2, 2))), np.zeros((1, 2), int), smooth=0.0,
                         from_logits=False, reduction="none")
    assert np.isfinite(empty.numpy()).all()


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3),
       spatial=st.lists(st.integers(1, 3), min_size=0, max_size=2),
       smooth=st.floats(0.0, 2.0), seed=st.integers(0, 100))
def test_dice_and_tversky_match_formula_for_any_shape(n, c, spatial, smooth, seed):
    x = rng_logits((n, c, *spatial), seed)
    labels = rng_labels((n, *spatial), c, seed + 1)
    p, g = np_probs(x), np_onehot(labels, c)
    dice = LF.dice_loss(T(x), labels, smooth=smooth, reduction="none")
    np.testing.assert_allclose(dice.numpy(), np_dice(p, g, smooth), rtol=1e-10, atol=1e-12)
    tv = LF.tversky_loss(T(x), labels, alpha=0.3, beta=0.7, smooth=smooth, reduction="none")
    np.testing.assert_allclose(tv.numpy(), 1 - np_tversky_index(p, g, 0.3, 0.7, smooth),
                               rtol=1e-10, atol=1e-12)


# ==== Tversky and focal Tversky ============================================================

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_tversky_matches_formula(reduction):
    x = rng_logits((2, 3, 3, 2))
    labels = rng_labels((2, 3, 2), 3)
    got = LF.tversky_loss(T(x), labels, alpha=0.3, beta=0.7, smooth=0.2, reduction=reduction)
    ti = np_tversky_index(np_probs(x), np_onehot(labels, 3), 0.3, 0.7, 0.2)
    np.testing.assert_allclose(got.numpy(), np_reduce(1 - ti, reduction), rtol=1e-12)


def test_tversky_weighs_false_positives_with_alpha_and_false_negatives_with_beta():
    # one sample, one channel, probabilities: TP = 1, FP = 2, FN = 3 exactly
    p = T([[[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]]])
    g = np.array([[[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]]])
    got = LF.tversky_loss(p, g, alpha=0.2, beta=0.6, smooth=0.0, from_logits=False)
    assert got.item() == pytest.approx(1 - 1 / (1 + 0.2 * 2 + 0.6 * 3))
    # Abraham & Khan's defaults: FN weighted 0.7, FP 0.3, exponent 1/gamma = 3/4.
    focal = LF.focal_tversky_loss(p, g, smooth=0.0, from_logits=False)
    assert focal.item() == pytest.approx((1 - 1 / (1 + 0.3 * 2 + 0.7 * 3)) ** 0.75)


def test_tversky_with_half_half_is_dice_with_double_smooth():
    x = rng_logits((2, 3, 4))
    labels = rng_labels((2, 4), 3)
    tv = LF.tversky_loss(T(x), labels, alpha=0.5, beta=0.5, smooth=0.3, reduction="none")
    dice = LF.dice_loss(T(x), labels, smooth=0.6, reduction="none")
    np.testing.assert_allclose(tv.numpy(), dice.numpy(), rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.75, 1.0, 2.0])
def test_focal_tversky_is_the_tversky_loss_to_the_power_gamma(reduction, gamma):
    x = rng_logits((2, 2, 3, 3))
    labels = rng_labels((2, 3, 3), 2)
    w = np.array([0.3, 1.0])
    got = LF.focal_tversky_loss(T(x), labels, alpha=0.7, beta=0.3, gamma=gamma, weight=w,
                                reduction=reduction)
    ti = np_tversky_index(np_probs(x), np_onehot(labels, 2), 0.7, 0.3, 1.0)
    np.testing.assert_allclose(got.numpy(), np_reduce((1 - ti) ** gamma, reduction, w),
                               rtol=1e-12)


# ==== gradients ==========================================================================

GRAD_CASES = [
    ("dice", lambda x, t: LF.dice_loss(x, t, smooth=0.5)),
    ("dice_weighted_ignore", lambda x, t: LF.dice_loss(x, t, weight=[1.0, 2.0, 0.5],
                                                       ignore_index=2)),
    ("tversky", lambda x, t: LF.tversky_loss(x, t, alpha=0.3, beta=0.7)),
    ("focal_tversky", lambda x, t: LF.focal_tversky_loss(x, t, gamma=0.75,
                                                         reduction="sum")),
    ("lovasz_softmax", lambda x, t: LF.lovasz_loss(x, t, per_image=True)),
]


@pytest.mark.parametrize("name,fn", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_multiclass_gradients(name, fn):
    x = T(rng_logits((2, 3, 3, 2), seed=3), grad=True)
    labels = rng_labels((2, 3, 2), 3, seed=4)
    assert gradcheck(lambda x: fn(x, labels), [x])
    if name != "dice_weighted_ignore":
        assert gradgradcheck(lambda x: fn(x, labels), [x])


@pytest.mark.parametrize("fn", [LF.dice_loss, LF.tversky_loss, LF.focal_tversky_loss,
                                LF.lovasz_loss])
def test_binary_gradients(fn):
    x = T(rng_logits((2, 1, 3, 3), seed=6), grad=True)
    labels = rng_labels((2, 3, 3), 2, seed=7)
    assert gradcheck(lambda x: fn(x, labels), [x])


def test_gradients_from_probabilities():
    p = T(np.random.default_rng(2).uniform(0.05, 0.95, (2, 2, 3, 2)), grad=True)
    labels = rng_labels((2, 3, 2), 2)
    assert gradcheck(lambda p: LF.tversky_loss(p, labels, 0.4, 0.6, from_logits=False), [p])
    assert gradcheck(lambda p: LF.lovasz_softmax(p, labels, classes="all"), [p])


# ==== Lovasz ===============================================================================

def test_lovasz_hinge_on_four_pixels_by_hand():
    # logits (2, -0.5, 0.3, -1.5), labels (1, 1, 0, 0): hinge errors max(0, 1 - x s)
    # = (0, 1.5, 1.3, 0). Sorted: pixel 1 (1.5, foreground), then pixel 2 (1.3).
    # Delta_J({1}) = 1 / |{0, 1}| = 1/2; Delta_J({1, 2}) = 2 / |{0, 1, 2}| = 2/3.
    # Loss = 1.5 * 1/2 + 1.3 * (2/3 - 1/2) = 0.75 + 1.3/6.
    x = T([[[2.0, -0.5, 0.3, -1.5]]], grad=True)
    loss = LF.lovasz_loss(x, np.array([[[1, 1, 0, 0]]]))
    assert loss.item() == pytest.approx(0.75 + 1.3 / 6, rel=1e-14)
    loss.backward()
    # d/dx1 = -(1/2) (e1 = 1 - x1); d/dx2 = +(1/6) (e2 = 1 + x2); the rest are 0.
    np.testing.assert_allclose(x.grad.numpy(), [[[0.0, -0.5, 1 / 6, 0.0]]], atol=1e-15)


def test_lovasz_softmax_on_three_pixels_by_hand():
    # p(class 0) = (0.9, 0.4, 0.2), labels (0, 0, 1).
    # class 0: errors (0.1, 0.6, 0.2), G = {0, 1}; order 1, 2, 0;
    #   Delta: {1} -> 1/2, {1,2} -> 2/3, {1,2,0} -> 1: 0.6/2 + 0.2/6 + 0.1/3 = 11/30.
    # class 1: errors (0.1, 0.6, 0.2), G = {2}; order 1, 2, 0;
    #   Delta: {1} -> 1/2, {1,2} -> 1, {1,2,0} -> 1: 0.6/2 + 0.2/2 + 0 = 2/5.
    p0 = np.array([0.9, 0.4, 0.2])
    p = T(np.stack([p0, 1 - p0])[None], grad=True)
    loss = LF.lovasz_softmax(p, np.array([[0, 0, 1]]))
    assert loss.item() == pytest.approx((11 / 30 + 2 / 5) / 2, rel=1e-14)
    loss.backward()
    # dL/dp_c(i) = slope * sign(p - fg), averaged over the two classes; the slopes
    # are the Delta increments above, put back at each pixel.
    want = 0.5 * np.array([[-1 / 3, -1 / 2, 1 / 6], [0.0, 1 / 2, -1 / 2]])
    np.testing.assert_allclose(p.grad.numpy()[0], want, atol=1e-15)


def test_lovasz_equals_the_jaccard_loss_on_binary_predictions():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 3, (2, 4, 5))
    pred = rng.integers(0, 3, (2, 4, 5))
    p = np_onehot(pred, 3)
    iou_losses = [1 - np.sum((pred == c) & (labels == c)) / np.sum((pred == c) | (labels == c))
                  for c in range(3) if (labels == c).any()]
    got = LF.lovasz_loss(T(p), labels, from_logits=False)
    assert got.item() == pytest.approx(np.mean(iou_losses), rel=1e-13)
    # Binary: probabilities 0/1 give 1 - IoU; logits +-a (a >= 1) give (1 + a)(1 - IoU).
    fg_true, fg_pred = labels == 1, pred == 1
    jaccard = 1 - np.sum(fg_true & fg_pred) / np.sum(fg_true | fg_pred)
    binary = LF.lovasz_loss(T(fg_pred[:, None] * 1.0), fg_true.astype(int), from_logits=False)
    assert binary.item() == pytest.approx(jaccard, rel=1e-13)
    hinge = LF.lovasz_hinge(T(np.where(fg_pred, 2.0, -2.0)), fg_true.astype(int))
    assert hinge.item() == pytest.approx(3 * jaccard, rel=1e-13)


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_lovasz_hinge_matches_the_definition(per_image, reduction):
    x = rng_logits((3, 4, 4), seed=8)
    labels = rng_labels((3, 4, 4), 2, seed=9)
    got = LF.lovasz_hinge(T(x), labels, per_image=per_image, reduction=reduction)
    per = np_lovasz_hinge(x, labels, per_image)
    want = np_reduce(per, reduction) if per_image else per[0]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    same = LF.lovasz_loss(T(x[:, None]), labels, per_image=per_image, reduction=reduction)
    np.testing.assert_allclose(same.numpy(), got.numpy(), rtol=1e-14)


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("classes", ["present", "all", [0, 2]])
def test_lovasz_softmax_matches_the_definition(per_image, classes):
    x = rng_logits((3, 3, 3, 4), seed=12)
    labels = rng_labels((3, 3, 4), 3, seed=13)
    labels[0] = np.where(labels[0] == 2, 0, labels[0])      # class 2 absent in image 0
    got = LF.lovasz_loss(T(x), labels, per_image=per_image, classes=classes,
                         reduction="none")
    per = np_lovasz_softmax(np_probs(x), labels, classes, per_image)
    np.testing.assert_allclose(got.numpy(), per if per_image else per[0], rtol=1e-12)


def test_lovasz_ignore_index_equals_dropping_the_pixels():
    x = rng_logits((2, 3, 4, 4), seed=14)
    labels = rng_labels((2, 4, 4), 3, seed=15)
    labels[0, :2, :] = -1
    labels[1, 3, 3] = -1
    valid = labels != -1
    got = LF.lovasz_loss(T(x), labels, ignore_index=-1, per_image=True, reduction="none")
    want = np_lovasz_softmax(np_probs(x), labels, per_image=True, valid=valid)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    xb = rng_logits((2, 4, 4), seed=16)
    lb = rng_labels((2, 4, 4), 2, seed=17)
    lb[1, 0] = 255
    got = LF.lovasz_hinge(T(xb), lb, ignore_index=255)
    want = np_lovasz_hinge(xb, lb, valid=lb != 255)[0]
    assert got.item() == pytest.approx(want, rel=1e-12)


def test_lovasz_with_no_present_class_is_zero():
    x = T(rng_logits((1, 2, 2, 2)), grad=True)
    loss = LF.lovasz_loss(x, np.full((1, 2, 2), 7), ignore_index=7)
    loss.backward()
    assert loss.item() == 0.0 and np.all(x.grad.numpy() == 0)


# ==== errors ===============================================================================

@pytest.mark.parametrize("call,match", [
    (lambda x, t: LF.dice_loss(x, t, smooth=-1.0), "smooth must be a number >= 0"),
    (lambda x, t: LF.focal_tversky_loss(x, t, gamma=-0.5), "gamma must be a number >= 0"),
    (lambda x, t: LF.tversky_loss(x, t, alpha=1.5), r"alpha must be in \[0, 1\]"),
    (lambda x, t: LF.tversky_loss(x, t, beta=-0.1), r"beta must be in \[0, 1\]"),
    (lambda x, t: LF.dice_loss(x, t[:, :2]), r"target must have shape \(2, 3, 3\)"),
    (lambda x, t: LF.dice_loss(x, t, weight=[1.0, 2.0]), r"weight must hold one value per"),
    (lambda x, t: LF.dice_loss(x, t, reduction="avg"), "reduction must be one of"),
    (lambda x, t: LF.lovasz_loss(x, t, classes="some"), "classes must be 'present'"),
    (lambda x, t: LF.lovasz_loss(x, t, classes=[0, 5]), "classes must be 'present'"),
    (lambda x, t: LF.dice_loss(x, np_onehot(t, 3), ignore_index=0),
     "ignore_index needs class-index targets"),
    (lambda x, t: LF.lovasz_loss(x, np_onehot(t, 3) * 0.5), "hard 0/1"),
    (lambda x, t: LF.dice_loss(x[:, 0, 0, 0], t), r"input must have shape \(N, C"),
])
def test_bad_arguments_raise_value_errors_naming_them(call, match):
    x = T(rng_logits((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=match):
        call(x, rng_labels((2, 3, 3), 3))


def test_class_index_out_of_range_is_an_index_error():
    x = T(rng_logits((2, 3, 4)))
    with pytest.raises(IndexError, match=r"target holds class index 3, outside \[0, 2\]"):
        LF.dice_loss(x, np.array([[0, 1, 2, 3], [0, 0, 0, 0]]))
    with pytest.raises(IndexError, match=r"class index -1, outside \[0, 1\]"):
        LF.lovasz_loss(x[:, :1], np.array([[0, 1, -1, 1], [0, 0, 0, 0]]))


def test_integer_one_hot_targets_work_like_float_ones():
    x = T(rng_logits((2, 3, 4)))
    labels = rng_labels((2, 4), 3)
    onehot = np_onehot(labels, 3)
    np.testing.assert_allclose(LF.dice_loss(x, onehot.astype(np.uint8)).numpy(),
                               LF.dice_loss(x, labels).numpy(), rtol=1e-14)


def test_float_class_indices_are_a_type_error():
    with pytest.raises(TypeError, match="class indices and must be an integer dtype"):
        LF.dice_loss(T(rng_logits((2, 3, 4))), np.zeros((2, 4)))


def test_modules_reject_bad_settings_at_construction():
    with pytest.raises(ValueError, match="smooth"):
        na.losses.DiceLoss(smooth=-1e-5)
    with pytest.raises(ValueError, match="alpha"):
        na.losses.TverskyLoss(alpha=2.0)
    with pytest.raises(ValueError, match="gamma"):
        na.losses.FocalTverskyLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        na.losses.LovaszLoss(reduction="avg")


# ==== Module forms and devices ===============================================================

def test_modules_call_their_functional_forms():
    x = T(rng_logits((2, 3, 3, 3)))
    labels = rng_labels((2, 3, 3), 3)
    pairs = [
        (na.losses.DiceLoss(smooth=1e-5, weight=[1.0, 0.5, 2.0]),
         LF.dice_loss(x, labels, smooth=1e-5, weight=[1.0, 0.5, 2.0])),
        (na.losses.TverskyLoss(alpha=0.3, beta=0.7),
         LF.tversky_loss(x, labels, alpha=0.3, beta=0.7)),
        (na.losses.FocalTverskyLoss(gamma=2.0, reduction="none"),
         LF.focal_tversky_loss(x, labels, gamma=2.0, reduction="none")),
        (na.losses.LovaszLoss(per_image=True), LF.lovasz_loss(x, labels, per_image=True)),
    ]
    for module, want in pairs:
        np.testing.assert_allclose(module(x, labels).numpy(), want.numpy(), rtol=1e-14)
    dice = na.losses.DiceLoss(weight=[1.0, 0.5, 2.0])
    assert "weight" in dict(dice.named_buffers())
    assert "smooth=1.0" in repr(dice)


@pytest.fixture
def fake_device():
    fake_cupy.register()
    return "fake"


@pytest.mark.parametrize("fn", [
    lambda x, t: LF.dice_loss(x, t, weight=[1.0, 2.0, 0.5], ignore_index=9),
    lambda x, t: LF.tversky_loss(x, t, 0.3, 0.7, ignore_index=9),
    lambda x, t: LF.focal_tversky_loss(x, t, ignore_index=9),
    lambda x, t: LF.lovasz_loss(x, t, ignore_index=9, classes=[0, 1]),
    lambda x, t: LF.lovasz_loss(x[:, :1], (t == 1).astype(t.dtype), per_image=True),
    lambda x, t: LF.lovasz_hinge(x[:, 0], (t == 1) * 1.0),
])
def test_losses_run_on_the_fake_device_like_on_cpu(fn, fake_device):
    x = rng_logits((2, 3, 3, 3), seed=21)
    labels = rng_labels((2, 3, 3), 3, seed=22)
    labels[0, 0, 0] = 9
    results = []
    for device in ("cpu", fake_device):
        xt = na.Tensor(backend.to_device(x, device), requires_grad=True)
        loss = fn(xt, backend.to_device(labels, device))
        loss.backward()
        assert xt.grad.device.startswith(device)
        results.append((backend.asnumpy(loss.data), backend.asnumpy(xt.grad.data)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-14)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-14)
