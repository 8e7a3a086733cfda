"""Multi-task (uncertainty weighting, combined losses) and generative losses.

GANLoss's vanilla and lsgan sides are held to torch's BCE-with-logits and MSE; every
other formula is written independently in plain NumPy from its paper.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
import neural_arch.losses  # noqa: F401  (na.losses)
from neural_arch.autograd import gradcheck, gradgradcheck
from neural_arch.losses import functional as LF

from tests.helpers import requires_torch, torch

REDUCTIONS = ["mean", "sum", "none"]


def T(a, grad=False):
    return na.Tensor(np.array(a, dtype=np.float64), requires_grad=grad)


def randn(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def np_reduce(a, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](a)


# ==== UncertaintyWeightingLoss ===============================================================

def _weighting(s):
    crit = na.losses.UncertaintyWeightingLoss(len(s)).double()
    crit.log_vars.data[...] = s
    return crit


def test_uncertainty_weighting_value_and_analytic_gradients():
    s = np.array([0.3, -0.7, 1.2])
    values = [0.5, 2.0, 1.5]
    crit = _weighting(s)
    losses = [T(v, grad=True) for v in values]
    total = crit(losses)
    # Kendall et al. with s = log sigma^2 and the factor 1/2 dropped: sum e^-s L + s.
    assert total.item() == pytest.approx(np.sum(np.exp(-s) * values + s), rel=1e-14)
    total.backward()
    np.testing.assert_allclose(crit.log_vars.grad.numpy(), 1 - np.exp(-s) * values,
                               rtol=1e-14)
    np.testing.assert_allclose([l.grad.item() for l in losses], np.exp(-s), rtol=1e-14)


def test_uncertainty_weighting_gradcheck_in_log_vars_and_losses():
    crit = _weighting(np.array([0.2, -0.4]))
    task = T([0.8, 1.7], grad=True)
    assert gradcheck(lambda s, l: crit([l[0], l[1]]), [crit.log_vars, task])
    assert gradgradcheck(lambda s, l: crit(l), [crit.log_vars, task])


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_uncertainty_weighting_log_vars_train_to_log_of_the_losses(optimizer):
    crit = na.losses.UncertaintyWeightingLoss(3).double()
    fixed = np.array([0.25, 1.0, 4.0])
    opt = getattr(na.optim, optimizer)(crit.parameters(), lr=0.1)
    for _ in range(400):
        opt.zero_grad()
        crit([T(v) for v in fixed]).backward()
        opt.step()
    # d/ds (e^-s L + s) = 0 at s = log L.
    np.testing.assert_allclose(crit.log_vars.numpy(), np.log(fixed), atol=1e-3)


def test_uncertainty_weighting_parameters_are_found_through_a_parent_module():
    class Parent(na.nn.Module):
        def __init__(self):
            super().__init__()
            self.weighting = na.losses.UncertaintyWeightingLoss(2)

    params = list(Parent().parameters())
    assert len(params) == 1 and params[0].shape == (2,) and params[0].requires_grad
    total = Parent().weighting(T([1.0, 2.0]))       # a 1-d tensor of losses works too
    assert total.item() == pytest.approx(3.0)


def test_uncertainty_weighting_bad_input():
    with pytest.raises(ValueError, match="num_tasks must be an integer >= 1"):
        na.losses.UncertaintyWeightingLoss(0)
    crit = na.losses.UncertaintyWeightingLoss(2)
    with pytest.raises(ValueError, match="expected 2 task losses, got 3"):
        crit([T(1.0), T(2.0), T(3.0)])
    with pytest.raises(ValueError, match=r"task loss 1 has shape \(2,\)"):
        crit([T(1.0), T([1.0, 2.0])])


# ==== CombinedLoss ===========================================================================

def test_combined_loss_is_the_weighted_sum_and_registers_modules():
    x = T(randn((2, 3, 3, 3)), grad=True)
    labels = np.random.default_rng(1).integers(0, 3, (2, 3, 3))
    dice, lovasz = na.losses.DiceLoss(smooth=1e-5), na.losses.LovaszLoss()

    def plain_sum(x, t):
        return x.sum() * 0.0 + 2.0

    crit = na.losses.CombinedLoss([(0.4, dice), (0.6, lovasz), plain_sum])
    want = 0.4 * dice(x, labels).item() + 0.6 * lovasz(x, labels).item() + 2.0
    total = crit(x, labels)
    assert total.item() == pytest.approx(want, rel=1e-14)
    total.backward()
    assert x.grad is not None
    same = na.losses.CombinedLoss([dice, lovasz], weights=[0.4, 0.6])
    assert same(x, labels).item() == pytest.approx(want - 2.0, rel=1e-14)
    nested = na.losses.CombinedLoss([(1.0, na.losses.UncertaintyWeightingLoss(2))])
    assert len(list(nested.parameters())) == 1


def test_combined_loss_bad_terms():
    dice = na.losses.DiceLoss()
    with pytest.raises(TypeError, match=r"\(loss, weight\); write the pair as \(weight, loss\)"):
        na.losses.CombinedLoss([(dice, 0.5)])
    with pytest.raises(TypeError, match="must be callable"):
        na.losses.CombinedLoss([(0.5, "dice")])
    with pytest.raises(ValueError, match="2 weights for 1 losses"):
        na.losses.CombinedLoss([dice], weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="empty"):
        na.losses.CombinedLoss([])


# ==== GANLoss ===============================================================================

@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gan_mode", ["vanilla", "lsgan"])
@pytest.mark.parametrize("is_real", [True, False])
def test_gan_vanilla_and_lsgan_match_torch(gan_mode, is_real, reduction):
    x = randn((3, 1, 2, 2), seed=2, scale=3.0)
    label = 0.9 if is_real else 0.1
    ours = T(x, grad=True)
    got = LF.gan_loss(ours, is_real, gan_mode, target_real_label=0.9, target_fake_label=0.1,
                      reduction=reduction)
    theirs = torch.tensor(x, requires_grad=True)
    target = torch.full(x.shape, label)
    tf = torch.nn.functional
    want = (tf.binary_cross_entropy_with_logits(theirs, target, reduction=reduction)
            if gan_mode == "vanilla" else tf.mse_loss(theirs, target, reduction=reduction))
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-14)
    w = randn(got.shape, seed=3)
    got.backward(T(w))
    want.backward(torch.tensor(w))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gan_hinge_and_wgan_match_their_formulas(reduction):
    x = randn((4, 3), seed=4, scale=2.0)
    cases = {
        ("hinge", True, True): np.maximum(0, 1 - x),       # Lim & Ye: D on real
        ("hinge", False, True): np.maximum(0, 1 + x),      # D on fake
        ("hinge", True, False): -x,                        # G
        ("wgan", True, True): -x,                          # Arjovsky: critic on real
        ("wgan", False, True): x,                          # critic on fake
        ("wgan", True, False): -x,                         # G
    }
    for (mode, is_real, for_d), per in cases.items():
        got = LF.gan_loss(T(x), is_real, mode, for_discriminator=for_d, reduction=reduction)
        np.testing.assert_allclose(got.numpy(), np_reduce(per, reduction), rtol=1e-14)


@pytest.mark.parametrize("gan_mode", ["vanilla", "lsgan", "hinge", "wgan"])
def test_gan_discriminator_and_generator_sides(gan_mode):
    fake, real = randn((2, 5), seed=5), randn((2, 5), seed=6)
    gan = na.losses.GANLoss(gan_mode)
    d = gan(T(fake), T(real))
    want = (LF.gan_loss(T(real), True, gan_mode) + LF.gan_loss(T(fake), False, gan_mode))
    assert d.item() == pytest.approx(want.item(), rel=1e-14)
    assert gan.discriminator_loss(T(fake), T(real)).item() == pytest.approx(d.item())
    g = gan.generator_loss(T(fake))
    assert g.item() == pytest.approx(
        LF.gan_loss(T(fake), True, gan_mode, for_discriminator=False).item(), rel=1e-14)
    assert gan(T(fake), True, for_discriminator=False).item() == pytest.approx(g.item())
    # The non-saturating vanilla generator loss is -mean(log sigmoid(D(G(z)))).
    if gan_mode == "vanilla":
        assert g.item() == pytest.approx(-np.mean(np.log(1 / (1 + np.exp(-fake)))), rel=1e-12)
    fake_t, real_t = T(fake, grad=True), T(real, grad=True)
    assert gradcheck(lambda f, r: gan(f, r), [fake_t, real_t])
    assert gradcheck(lambda f: gan.generator_loss(f), [fake_t])
    if gan_mode in ("vanilla", "lsgan"):
        assert gradgradcheck(lambda f, r: gan(f, r), [fake_t, real_t])


def test_gan_vanilla_is_finite_for_huge_logits():
    x = T([1e4, -1e4, 3e3], grad=True)
    for is_real in (True, False):
        loss = LF.gan_loss(x, is_real, reduction="none")
        want = np.array([0.0, 1e4, 0.0]) if is_real else np.array([1e4, 0.0, 3e3])
        np.testing.assert_allclose(loss.numpy(), want, atol=1e-12)
        loss.sum().backward()
        assert np.isfinite(x.grad.numpy()).all()
        x.grad = None


def test_gan_reduction_none_keeps_shapes_and_d_loss_needs_matching_shapes():
    gan = na.losses.GANLoss("hinge", reduction="none")
    assert gan(T(randn((2, 3))), T(randn((2, 3)))).shape == (2, 3)
    with pytest.raises(ValueError, match="must have one shape"):
        gan(T(randn((2, 3))), T(randn((4,))))


def test_gan_bad_arguments():
    with pytest.raises(ValueError, match=r"gan_mode must be one of \('vanilla', 'lsgan', "
                                         r"'hinge', 'wgan'\), got 'wgan-gp'"):
        na.losses.GANLoss("wgan-gp")
    with pytest.raises(ValueError, match="gan_mode must be one of"):
        LF.gan_loss(T([1.0]), True, gan_mode="nonsaturating")
    with pytest.raises(TypeError, match="target_is_real must be a bool"):
        LF.gan_loss(T([1.0]), 1.0)
    with pytest.raises(TypeError, match="bool .target_is_real. or a Tensor"):
        na.losses.GANLoss()(T([1.0]), "real")
    with pytest.raises(ValueError, match="needs target_is_real=True"):
        LF.gan_loss(T([1.0]), False, "hinge", for_discriminator=False)
    with pytest.raises(ValueError, match="reduction must be one of"):
        na.losses.GANLoss(reduction="avg")


# ==== FeatureMatchingLoss and PerceptualLoss ===============================================

def _maps(seed):
    return [randn((2, 3, 2, 2), seed), randn((2, 4), seed + 1), randn((5,), seed + 2)]


@pytest.mark.parametrize("criterion", ["l1", "l2"])
@pytest.mark.parametrize("layer_weights", [None, [0.5, 2.0, 0.0]])
def test_feature_matching_matches_formula_and_real_features_get_no_gradient(criterion,
                                                                             layer_weights):
    fake, real = _maps(0), _maps(10)
    w = [1 / 3] * 3 if layer_weights is None else layer_weights
    dist = np.abs if criterion == "l1" else np.square
    want = sum(wk * np.mean(dist(a - b)) for wk, a, b in zip(w, fake, real))
    fake_t = [T(a, grad=True) for a in fake]
    real_t = [T(b, grad=True) for b in real]
    loss = na.losses.FeatureMatchingLoss(layer_weights, criterion)(fake_t, real_t)
    assert loss.item() == pytest.approx(want, rel=1e-13)
    loss.backward()
    assert all(b.grad is None for b in real_t)
    assert all(a.grad is not None for a in fake_t)
    assert gradcheck(lambda *fs: LF.feature_matching_loss(list(fs), real, layer_weights,
                                                          criterion), fake_t)


def test_perceptual_without_extractor_compares_the_given_features():
    fake, real = _maps(1), _maps(20)
    want = sum(np.mean((a - b) ** 2) for a, b in zip(fake, real)) / 3
    loss = na.losses.PerceptualLoss()([T(a) for a in fake], [T(b) for b in real])
    assert loss.item() == pytest.approx(want, rel=1e-13)
    single = na.losses.PerceptualLoss(criterion="l1")(T(fake[0]), T(real[0]))
    assert single.item() == pytest.approx(np.mean(np.abs(fake[0] - real[0])), rel=1e-13)
    assert gradgradcheck(lambda a: LF.perceptual_loss(a, real[1]), [T(fake[1], grad=True)])


class Scale(na.nn.Module):
    """tanh(a x) with a learnable a: a stand-in feature layer."""

    def __init__(self, a):
        super().__init__()
        self.a = na.nn.Parameter(np.array(a))

    def forward(self, x):
        return na.tanh(x * self.a)


class Boom(na.nn.Module):
    def forward(self, x):
        raise AssertionError("the extractor ran past the last layer needed")


def test_perceptual_with_extractor_uses_the_chosen_layers_and_freezes_it():
    extractor = na.nn.Sequential(Scale(0.5), Scale(2.0), Scale(-1.0), Boom())
    crit = na.losses.PerceptualLoss(extractor, layers=[0, 2], layer_weights=[1.0, 0.5])
    assert all(not p.requires_grad for p in extractor.parameters())
    x, y = randn((2, 3), 30), randn((2, 3), 31)

    def feats(v):
        f0 = np.tanh(0.5 * v)
        return f0, np.tanh(-np.tanh(2.0 * f0))

    (x0, x2), (y0, y2) = feats(x), feats(y)
    want = np.mean((x0 - y0) ** 2) + 0.5 * np.mean((x2 - y2) ** 2)
    xt, yt = T(x, grad=True), T(y, grad=True)
    loss = crit(xt, yt)
    assert loss.item() == pytest.approx(want, rel=1e-13)
    loss.backward()
    assert yt.grad is None and xt.grad is not None
    assert gradcheck(lambda v: crit(v, yt), [T(x, grad=True)])
    whole = na.losses.PerceptualLoss(lambda v: [v * 2.0, v * v])
    assert whole(T(x), T(y)).item() == pytest.approx(
        (np.mean((2 * x - 2 * y) ** 2) + np.mean((x * x - y * y) ** 2)) / 2, rel=1e-13)


def test_feature_losses_bad_input():
    with pytest.raises(ValueError, match=r"feature map 1 has shape \(2, 4\) in the input but "
                                         r"\(4, 2\) in the target"):
        LF.feature_matching_loss([T(randn((3,))), T(randn((2, 4)))],
                                 [T(randn((3,))), T(randn((4, 2)))])
    with pytest.raises(ValueError, match="got 2 input feature map.s. but 1 target"):
        LF.perceptual_loss([T([1.0]), T([2.0])], [T([1.0])])
    with pytest.raises(ValueError, match="layer_weights has 1 entries for 2"):
        LF.feature_matching_loss([T([1.0]), T([2.0])], [T([1.0]), T([2.0])], [1.0])
    with pytest.raises(ValueError, match="criterion must be one of"):
        na.losses.FeatureMatchingLoss(criterion="l3")
    extractor = na.nn.Sequential(Scale(1.0), Scale(2.0))
    with pytest.raises(ValueError, match=r"layers \['5'\] not among the extractor's children "
                                         r"\['0', '1'\]"):
        na.losses.PerceptualLoss(extractor, layers=[0, 5])
    with pytest.raises(ValueError, match="layers needs a feature_extractor"):
        na.losses.PerceptualLoss(layers=[0])


def test_losses_run_on_the_fake_device_like_on_cpu():
    from neural_arch import backend
    from tests import fake_cupy
    fake_cupy.register()
    fake, real = randn((2, 3), 40), randn((2, 3), 41)
    results = []
    for device in ("cpu", "fake"):
        f = na.Tensor(backend.to_device(fake, device), requires_grad=True)
        r = na.Tensor(backend.to_device(real, device))
        crit = na.losses.UncertaintyWeightingLoss(3).double().to(device)
        total = crit([na.losses.GANLoss()(f, r), na.losses.GANLoss("hinge").generator_loss(f),
                      LF.feature_matching_loss([f], [r])])
        total.backward()
        assert f.grad.device.startswith(device)
        results.append([backend.asnumpy(a) for a in (total.data, f.grad.data,
                                                     crit.log_vars.grad.data)])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-14)
