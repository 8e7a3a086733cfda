"""Generative losses: Module form.

The formulas live in :mod:`neural_arch.losses.functional.generative`.
"""
from __future__ import annotations

import numpy as np

from ..core.grad_mode import no_grad
from ..core.tensor import Tensor
from ..nn.module import Module
from ._reduction import check_reduction
from .functional import generative as _f

__all__ = ["GANLoss", "FeatureMatchingLoss", "PerceptualLoss"]


class GANLoss(Module):
    """Adversarial loss for both sides of a GAN.

    Three ways to call it, all built on :func:`neural_arch.losses.functional.gan_loss`
    (whose docstring has the per-mode formulas):

    * ``loss(pred, target_is_real)`` with a bool: one side, as pix2pix's ``GANLoss``
      (``for_discriminator=False`` gives the generator's hinge loss);
    * ``loss(fake_pred, real_pred)`` with two Tensors, or
      ``loss.discriminator_loss(fake_pred, real_pred)``: the **discriminator** loss,
      the real side plus the fake side, e.g. ``-log D(x) - log(1 - D(G(z)))`` for
      ``'vanilla'``;
    * ``loss.generator_loss(fake_pred)``: the generator loss, judging fakes as real
      (the non-saturating ``-log D(G(z))`` for ``'vanilla'``, ``-D(G(z))`` for
      ``'hinge'`` and ``'wgan'``).

    Predictions are raw discriminator outputs (logits or critic scores, no sigmoid).

    Parameters
    ----------
    gan_mode : {'vanilla', 'lsgan', 'hinge', 'wgan'}, default 'vanilla'
        The objective.
    target_real_label, target_fake_label : float, default 1.0 and 0.0
        The labels of ``'vanilla'`` and ``'lsgan'``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        Over the elements of each prediction Tensor. With ``'none'`` the discriminator
        loss adds the real and fake per-element losses, so their shapes must match.

    Examples
    --------
    >>> import neural_arch as na
    >>> gan = na.losses.GANLoss("hinge")
    >>> real, fake = na.tensor([2.0, 0.5]), na.tensor([-2.0, 0.5])
    >>> float(gan(fake, real))                  # mean(relu(1 - real)) + mean(relu(1 + fake))
    1.0
    >>> float(gan.generator_loss(fake))         # -mean(fake)
    0.75
    """

    def __init__(self, gan_mode="vanilla", target_real_label=1.0, target_fake_label=0.0,
                 reduction="mean"):
        super().__init__()
        self.gan_mode = _f.check_gan_mode(gan_mode)
        self.target_real_label = float(target_real_label)
        self.target_fake_label = float(target_fake_label)
        self.reduction = check_reduction(reduction)

    def _side(self, pred, target_is_real, for_discriminator):
        return _f.gan_loss(pred, target_is_real, self.gan_mode, for_discriminator,
                           self.target_real_label, self.target_fake_label, self.reduction)

    def forward(self, pred, target, for_discriminator=True):
        """``(pred, target_is_real: bool)``: one side; ``(fake_pred, real_pred)``: the
        discriminator loss (see the class docstring)."""
        if isinstance(target, (bool, np.bool_)):
            return self._side(pred, target, for_discriminator)
        if isinstance(target, Tensor):
            if not for_discriminator:
                raise ValueError("GANLoss: (fake_pred, real_pred) gives the discriminator "
                                 "loss; for the generator call generator_loss(fake_pred)")
            return self.discriminator_loss(pred, target)
        raise TypeError(f"GANLoss: the second argument must be a bool (target_is_real) or "
                        f"a Tensor of real predictions, got {type(target).__name__}")

    def discriminator_loss(self, fake_pred, real_pred):
        """The discriminator's loss: real predictions judged real plus fakes judged fake."""
        if self.reduction == "none" and tuple(fake_pred.shape) != tuple(real_pred.shape):
            raise ValueError(f"GANLoss: with reduction='none' fake_pred and real_pred must "
                             f"have one shape, got {tuple(fake_pred.shape)} and "
                             f"{tuple(real_pred.shape)}")
        return self._side(real_pred, True, True) + self._side(fake_pred, False, True)

    def generator_loss(self, fake_pred):
        """The generator's loss: its samples' predictions judged real."""
        return self._side(fake_pred, True, False)

    def extra_repr(self):
        return f"gan_mode={self.gan_mode!r}"


class FeatureMatchingLoss(Module):
    """Mean L1 (or squared) distance between fake and real feature maps, layer by layer.

    ``loss(fake_features, real_features)``; see
    :func:`neural_arch.losses.functional.feature_matching_loss`. The real features get
    no gradient.

    Parameters
    ----------
    layer_weights : sequence of float, optional
        One weight per layer; default ``1 / K``.
    criterion : {'l1', 'l2'}, default 'l1'
        Mean absolute or mean squared difference.
    """

    def __init__(self, layer_weights=None, criterion="l1"):
        super().__init__()
        self.layer_weights = None if layer_weights is None else list(layer_weights)
        self.criterion = _f.check_criterion(criterion, "FeatureMatchingLoss")

    def forward(self, fake_features, real_features):
        return _f.feature_matching_loss(fake_features, real_features, self.layer_weights,
                                        self.criterion)

    def extra_repr(self):
        return f"criterion={self.criterion!r}"


class PerceptualLoss(Module):
    """Perceptual loss: distance between feature maps of a fixed feature extractor.

    ``loss(input, target)``:

    * with a ``feature_extractor``, ``input`` and ``target`` are images; both go
      through the extractor and its features at ``layers`` are compared (the target's
      without gradient);
    * without one (``PerceptualLoss()``), ``input`` and ``target`` are the feature maps
      themselves (a Tensor or a list of Tensors each).

    The distance is :func:`neural_arch.losses.functional.perceptual_loss`:
    ``sum_k w_k mean((phi_k(input) - phi_k(target))^2)`` by default.

    Parameters
    ----------
    feature_extractor : Module or callable, optional
        The network ``phi``. Without ``layers`` its output is used as the features (a
        Tensor or a list/tuple of Tensors).
    layers : sequence of str or int, optional
        Names (``str(index)`` for a Sequential) of the extractor's direct children
        whose outputs are the features. The children are then run in order on the
        input, stopping after the last layer needed.
    layer_weights : sequence of float, optional
        One weight per feature map; default ``1 / K``.
    criterion : {'l2', 'l1'}, default 'l2'
        Mean squared or mean absolute difference.
    freeze : bool, default True
        Switch off ``requires_grad`` on the extractor's parameters and put it in eval
        mode, so the loss never trains it.

    Raises
    ------
    ValueError
        For a layer name that is not a child of the extractor (the message lists
        them), ``layers`` without an extractor, or ``layer_weights`` of the wrong
        length.
    """

    def __init__(self, feature_extractor=None, layers=None, layer_weights=None,
                 criterion="l2", freeze=True):
        super().__init__()
        self.criterion = _f.check_criterion(criterion, "PerceptualLoss")
        self.layer_weights = None if layer_weights is None else list(layer_weights)
        self.layers = None if layers is None else [str(name) for name in layers]
        if feature_extractor is not None and not callable(feature_extractor):
            raise TypeError(f"PerceptualLoss: feature_extractor must be a Module or callable, "
                            f"got {type(feature_extractor).__name__}")
        if self.layers is not None:
            if feature_extractor is None:
                raise ValueError("PerceptualLoss: layers needs a feature_extractor")
            if not isinstance(feature_extractor, Module):
                raise TypeError("PerceptualLoss: layers needs a Module feature_extractor "
                                "whose children are run in order")
            names = [name for name, _ in feature_extractor.named_children()]
            missing = [name for name in self.layers if name not in names]
            if missing or not self.layers:
                raise ValueError(f"PerceptualLoss: layers {missing or self.layers} not among "
                                 f"the extractor's children {names}")
            if self.layer_weights is not None:
                _f.check_layer_weights(self.layer_weights, len(self.layers), "PerceptualLoss")
        if freeze and isinstance(feature_extractor, Module):
            for p in feature_extractor.parameters():
                p.requires_grad = False
            feature_extractor.eval()
        self.feature_extractor = feature_extractor     # a Module registers as a child

    def features(self, x):
        """The extractor's feature maps of ``x`` (a list of Tensors)."""
        if self.layers is None:
            out = self.feature_extractor(x)
            return list(out) if isinstance(out, (list, tuple)) else [out]
        wanted = set(self.layers)
        found = {}
        for name, layer in self.feature_extractor.named_children():
            x = layer(x)
            if name in wanted:
                found[name] = x
                if len(found) == len(wanted):
                    break
        return [found[name] for name in self.layers]

    def forward(self, input, target):
        if self.feature_extractor is None:
            input_features, target_features = input, target
        else:
            input_features = self.features(input)
            with no_grad():
                target_features = self.features(target)
        return _f.perceptual_loss(input_features, target_features, self.layer_weights,
                                  self.criterion)

    def extra_repr(self):
        return f"layers={self.layers}, criterion={self.criterion!r}"
