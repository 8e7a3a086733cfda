"""Seed 000, "Advanced Loss Combinations": its three examples, as written.

The classes below are the seed's code with ``neural_arch`` (``na``) in place of the
library the seed names; each test then runs them on small tensors and checks what
they compute and that gradients reach what they should.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
import neural_arch.losses  # noqa: F401  (na.losses)
from neural_arch.losses import functional as LF

nn = na.nn


# ---- the seed's classes, verbatim apart from the library name --------------------------

class MultiTaskLoss(nn.Module):
    def __init__(self, num_tasks):
        super().__init__()
        self.uncertainty_loss = na.losses.UncertaintyWeightingLoss(num_tasks)
        self.task_losses = [
            na.losses.MSELoss(),
            na.losses.CrossEntropyLoss(),
            na.losses.DiceLoss()
        ]

    def forward(self, predictions, targets):
        losses = []
        for i, (pred, target) in enumerate(zip(predictions, targets)):
            loss = self.task_losses[i](pred, target)
            losses.append(loss)

        return self.uncertainty_loss(losses)


class CombinedSegmentationLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.dice = na.losses.DiceLoss(smooth=1e-5)
        self.focal = na.losses.FocalLoss(alpha=0.25, gamma=2.0)
        self.tversky = na.losses.TverskyLoss(alpha=0.3, beta=0.7)
        self.lovasz = na.losses.LovaszLoss()

    def forward(self, pred, target):
        dice_loss = self.dice(pred, target)
        focal_loss = self.focal(pred, target)
        tversky_loss = self.tversky(pred, target)
        lovasz_loss = self.lovasz(pred, target)

        # Weighted combination
        total_loss = (0.4 * dice_loss +
                      0.3 * focal_loss +
                      0.2 * tversky_loss +
                      0.1 * lovasz_loss)

        return total_loss


class GANLossCombination(nn.Module):
    def __init__(self):
        super().__init__()
        self.gan_loss = na.losses.GANLoss()
        self.perceptual_loss = na.losses.PerceptualLoss()
        self.feature_matching_loss = na.losses.FeatureMatchingLoss()

    def forward(self, fake_pred, real_pred, fake_features, real_features):
        gan_loss = self.gan_loss(fake_pred, real_pred)
        perceptual_loss = self.perceptual_loss(fake_features, real_features)
        feature_matching_loss = self.feature_matching_loss(fake_features, real_features)

        return gan_loss + 0.1 * perceptual_loss + 0.1 * feature_matching_loss


# ---- running them ---------------------------------------------------------------------------

def T(a, grad=False):
    return na.Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def test_multi_task_loss_weights_three_tasks_and_trains_its_log_variances():
    rng = np.random.default_rng(0)
    criterion = MultiTaskLoss(num_tasks=3)
    reg = T(rng.standard_normal((4, 1)), grad=True)
    cls = T(rng.standard_normal((4, 5)), grad=True)
    seg = T(rng.standard_normal((2, 3, 4, 4)), grad=True)
    targets = [T(rng.standard_normal((4, 1))), rng.integers(0, 5, 4),
               rng.integers(0, 3, (2, 4, 4))]
    total = criterion([reg, cls, seg], targets)
    tasks = [na.losses.MSELoss()(reg, targets[0]).item(),
             na.losses.CrossEntropyLoss()(cls, targets[1]).item(),
             na.losses.DiceLoss()(seg, targets[2]).item()]
    assert total.item() == pytest.approx(sum(tasks), rel=1e-6)     # s = 0: weights 1
    params = list(criterion.parameters())
    assert len(params) == 1 and params[0].shape == (3,)
    total.backward()
    assert all(p.grad is not None for p in (reg, cls, seg))
    np.testing.assert_allclose(params[0].grad.numpy(), 1 - np.array(tasks), rtol=1e-5)
    optimizer = na.optim.Adam(criterion.parameters(), lr=0.01)
    optimizer.step()
    # each s_i moves against its gradient 1 - L_i: up where L_i < 1, down otherwise
    np.testing.assert_array_equal(np.sign(params[0].numpy()), np.sign(np.array(tasks) - 1))


@pytest.mark.parametrize("channels", [1, 3])
def test_combined_segmentation_loss_is_the_weighted_sum(channels):
    rng = np.random.default_rng(channels)
    pred = T(rng.standard_normal((2, channels, 4, 4)), grad=True)
    target = rng.integers(0, max(channels, 2), (2, 4, 4))
    criterion = CombinedSegmentationLoss()
    total = criterion(pred, target)
    want = (0.4 * LF.dice_loss(pred, target, smooth=1e-5).item()
            + 0.3 * LF.focal_loss(pred, target, alpha=0.25, gamma=2.0).item()
            + 0.2 * LF.tversky_loss(pred, target, alpha=0.3, beta=0.7).item()
            + 0.1 * LF.lovasz_loss(pred, target).item())
    assert total.item() == pytest.approx(want, rel=1e-12)
    total.backward()
    assert np.isfinite(pred.grad.numpy()).all() and np.any(pred.grad.numpy() != 0)
    # The same combination through the library's helper:
    helper = na.losses.CombinedLoss([(0.4, criterion.dice), (0.3, criterion.focal),
                                     (0.2, criterion.tversky), (0.1, criterion.lovasz)])
    assert helper(pred, target).item() == pytest.approx(total.item(), rel=1e-12)


def test_gan_loss_combination():
    rng = np.random.default_rng(5)
    fake_pred = T(rng.standard_normal((2, 1, 3, 3)), grad=True)
    real_pred = T(rng.standard_normal((2, 1, 3, 3)), grad=True)
    fake_features = [T(rng.standard_normal((2, 4, 3, 3)), grad=True),
                     T(rng.standard_normal((2, 8)), grad=True)]
    real_features = [T(rng.standard_normal((2, 4, 3, 3)), grad=True),
                     T(rng.standard_normal((2, 8)), grad=True)]
    criterion = GANLossCombination()
    total = criterion(fake_pred, real_pred, fake_features, real_features)

    def bce(x, t):
        return np.mean(np.logaddexp(0, x) - t * x)

    f, r = fake_pred.numpy(), real_pred.numpy()
    d_loss = bce(r, 1.0) + bce(f, 0.0)         # the discriminator's loss
    pairs = list(zip(fake_features, real_features))
    perceptual = np.mean([np.mean((a.numpy() - b.numpy()) ** 2) for a, b in pairs])
    matching = np.mean([np.mean(np.abs(a.numpy() - b.numpy())) for a, b in pairs])
    assert total.item() == pytest.approx(d_loss + 0.1 * perceptual + 0.1 * matching,
                                         rel=1e-12)
    total.backward()
    assert fake_pred.grad is not None and real_pred.grad is not None
    assert all(a.grad is not None for a in fake_features)
    assert all(b.grad is None for b in real_features)      # real features are targets
