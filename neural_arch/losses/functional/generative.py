"""Generative losses: functional form.

Adversarial losses (:func:`gan_loss`) and feature-space distances
(:func:`feature_matching_loss`, :func:`perceptual_loss`).
"""
from __future__ import annotations

import numbers

import numpy as np

from ... import functional as F
from ...core.tensor import Tensor
from .._reduction import check_reduction, reduce

__all__ = ["gan_loss", "feature_matching_loss", "perceptual_loss"]

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgan")
CRITERIA = ("l1", "l2")
_INF = float("inf")


# ==== adversarial ======================================================================

def check_gan_mode(gan_mode):
    """Return ``gan_mode`` if valid, else raise a ValueError listing the valid ones."""
    if gan_mode not in GAN_MODES:
        raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {gan_mode!r}")
    return gan_mode


def gan_loss(pred, target_is_real, gan_mode="vanilla", for_discriminator=True,
             target_real_label=1.0, target_fake_label=0.0, reduction="mean"):
    """Adversarial loss of discriminator outputs against "real" or "fake".

    One side of a GAN objective: the loss of the discriminator's raw outputs ``x``
    (logits or scores, no sigmoid) for samples that should be judged real
    (``target_is_real=True``) or fake. Per element, with ``t`` the real or fake label:

    ============  =========================  ========================  =================
    gan_mode      real                       fake                      generator
    ============  =========================  ========================  =================
    ``vanilla``   ``BCE(sigmoid(x), t)``     ``BCE(sigmoid(x), t)``    as real
    ``lsgan``     ``(x - t)^2``              ``(x - t)^2``             as real
    ``hinge``     ``max(0, 1 - x)``          ``max(0, 1 + x)``         ``-x``
    ``wgan``      ``-x``                     ``x``                     as real
    ============  =========================  ========================  =================

    ``vanilla`` is ``torch.nn.functional.binary_cross_entropy_with_logits`` against a
    constant label (computed as ``softplus(x) - t x``, finite for any ``x``); its
    generator side is the non-saturating loss of Goodfellow et al. ``lsgan`` is
    ``torch.nn.functional.mse_loss`` against the label. The generator column applies
    with ``for_discriminator=False``, which matters only for ``hinge``. A full
    discriminator loss is the sum of the real and the fake sides
    (:meth:`neural_arch.losses.GANLoss.discriminator_loss`); a generator loss is
    ``gan_loss(D(G(z)), True, for_discriminator=False)``. WGAN's gradient penalty or
    weight clipping is not part of this loss.

    Parameters
    ----------
    pred : Tensor
        Discriminator outputs, any shape.
    target_is_real : bool
        Whether ``pred`` belongs to samples that should be judged real.
    gan_mode : {'vanilla', 'lsgan', 'hinge', 'wgan'}, default 'vanilla'
        The objective (see the table).
    for_discriminator : bool, default True
        False for the generator's loss (``target_is_real`` must then be True with
        ``'hinge'``).
    target_real_label, target_fake_label : float, default 1.0 and 0.0
        The labels ``t`` of ``vanilla`` and ``lsgan`` (e.g. 0.9 for one-sided label
        smoothing).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        Over the elements of ``pred``.

    Returns
    -------
    Tensor
        The loss.

    Raises
    ------
    ValueError
        For an unknown ``gan_mode`` (the message lists the valid ones) or a hinge
        generator loss asked for fake targets. ``TypeError`` when ``target_is_real``
        is not a bool.

    References
    ----------
    I. Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, arXiv:1406.2661.
    X. Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017,
    arXiv:1611.04076. J. H. Lim, J. C. Ye, "Geometric GAN", arXiv:1705.02894 (hinge).
    M. Arjovsky, S. Chintala, L. Bottou, "Wasserstein GAN", ICML 2017, arXiv:1701.07875.
    """
    check_gan_mode(gan_mode)
    check_reduction(reduction)
    if not isinstance(target_is_real, (bool, np.bool_)):
        raise TypeError(f"gan_loss: target_is_real must be a bool, got "
                        f"{type(target_is_real).__name__} (for a discriminator loss from "
                        "fake and real outputs use GANLoss.discriminator_loss)")
    if not isinstance(pred, Tensor):
        raise TypeError(f"gan_loss: pred must be a Tensor, got {type(pred).__name__}")
    if gan_mode in ("vanilla", "lsgan"):
        t = target_real_label if target_is_real else target_fake_label
        if gan_mode == "vanilla":
            # BCE with logits: -t log s(x) - (1 - t) log(1 - s(x)) = softplus(x) - t x
            per_element = F.softplus(pred, threshold=_INF) - t * pred
        else:
            per_element = F.square(pred - t)
    elif gan_mode == "hinge":
        if for_discriminator:
            per_element = F.relu(1 - pred) if target_is_real else F.relu(1 + pred)
        elif target_is_real:
            per_element = -pred
        else:
            raise ValueError("gan_loss: the hinge generator loss (for_discriminator=False) "
                             "needs target_is_real=True")
    else:  # wgan: the critic's score, raised for real samples and lowered for fakes
        per_element = -pred if target_is_real else pred
    return reduce(per_element, reduction)


# ==== feature-space distances ===========================================================

def _feature_list(features, name, loss):
    if isinstance(features, Tensor) or hasattr(features, "shape"):   # one map (or array)
        return [features]
    if isinstance(features, (list, tuple)):
        return list(features)
    raise TypeError(f"{loss}: {name} must be a Tensor or a list of Tensors, "
                    f"got {type(features).__name__}")


def check_layer_weights(layer_weights, count, loss):
    """Return the per-layer weights as a list of floats (default: ``1 / count`` each)."""
    if layer_weights is None:
        return [1.0 / count] * count
    weights = list(layer_weights)
    if len(weights) != count:
        raise ValueError(f"{loss}: layer_weights has {len(weights)} entries for "
                         f"{count} feature map(s)")
    for w in weights:
        if not isinstance(w, numbers.Real) or not w >= 0:
            raise ValueError(f"{loss}: layer_weights must be numbers >= 0, got {w!r}")
    return [float(w) for w in weights]


def check_criterion(criterion, loss):
    """Return ``criterion`` if it is ``'l1'`` or ``'l2'``, else raise a ValueError."""
    if criterion not in CRITERIA:
        raise ValueError(f"{loss}: criterion must be one of {CRITERIA}, got {criterion!r}")
    return criterion


def _feature_distance(inputs, targets, layer_weights, criterion, loss):
    """``sum_k w_k mean(d(a_k - b_k))`` with the targets ``b_k`` taken as constants."""
    check_criterion(criterion, loss)
    inputs = _feature_list(inputs, "the input features", loss)
    targets = _feature_list(targets, "the target features", loss)
    if len(inputs) != len(targets):
        raise ValueError(f"{loss}: got {len(inputs)} input feature map(s) but "
                         f"{len(targets)} target feature map(s)")
    if not inputs:
        raise ValueError(f"{loss}: no feature maps given")
    weights = check_layer_weights(layer_weights, len(inputs), loss)
    total = None
    for k, (a, b, w) in enumerate(zip(inputs, targets, weights)):
        if not isinstance(a, Tensor):
            raise TypeError(f"{loss}: input feature {k} must be a Tensor, "
                            f"got {type(a).__name__}")
        b = b.data if isinstance(b, Tensor) else b      # a constant: no gradient
        if tuple(a.shape) != tuple(getattr(b, "shape", ())):
            raise ValueError(f"{loss}: feature map {k} has shape {tuple(a.shape)} in the "
                             f"input but {tuple(getattr(b, 'shape', ()))} in the target")
        d = a - b
        term = (F.abs(d) if criterion == "l1" else F.square(d)).mean() * w
        total = term if total is None else total + term
    return total


def feature_matching_loss(fake_features, real_features, layer_weights=None, criterion="l1"):
    """Feature matching: distance between a discriminator's features of fake and real data.

    .. math:: L = \\sum_k w_k \\, \\mathrm{mean}\\, |f_k(G(z)) - f_k(x)|

    (squared differences with ``criterion='l2'``), the real features ``f_k(x)``
    taken as constants (no gradient flows into them). This is the multi-layer L1 form
    of pix2pixHD; Salimans et al. match the mean features of one layer. PyTorch has
    no such loss.

    Parameters
    ----------
    fake_features : Tensor or list of Tensor
        Intermediate discriminator features of generated samples.
    real_features : Tensor or list of Tensor
        The same layers' features of real samples, shape for shape.
    layer_weights : sequence of float, optional
        ``w_k``, one per layer, ``>= 0``; default ``1 / K`` (the mean over layers).
    criterion : {'l1', 'l2'}, default 'l1'
        Mean absolute or mean squared difference.

    Returns
    -------
    Tensor
        A scalar.

    Raises
    ------
    ValueError
        When the lists differ in length, a pair of maps in shape, or ``layer_weights``
        in length; for an unknown ``criterion``.

    References
    ----------
    T. Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016,
    arXiv:1606.03498. T.-C. Wang et al., "High-Resolution Image Synthesis and Semantic
    Manipulation with Conditional GANs", CVPR 2018, arXiv:1711.11585.
    """
    return _feature_distance(fake_features, real_features, layer_weights, criterion,
                             "feature_matching_loss")


def perceptual_loss(input_features, target_features, layer_weights=None, criterion="l2"):
    """Perceptual (feature reconstruction) loss between feature maps.

    .. math:: L = \\sum_k w_k \\, \\mathrm{mean}\\, (\\phi_k(\\hat y) - \\phi_k(y))^2

    (absolute differences with ``criterion='l1'``), with ``phi_k`` the features of a
    fixed network at layer ``k`` and the target's features taken as constants. The mean
    over a map is Johnson et al.'s ``1 / (C H W)`` normalisation. To compute the
    features from images with a network, use :class:`neural_arch.losses.PerceptualLoss`.
    PyTorch has no such loss.

    Parameters
    ----------
    input_features : Tensor or list of Tensor
        Features of the generated image.
    target_features : Tensor or list of Tensor
        Features of the target image, shape for shape.
    layer_weights : sequence of float, optional
        ``w_k``, one per layer, ``>= 0``; default ``1 / K``.
    criterion : {'l2', 'l1'}, default 'l2'
        Mean squared or mean absolute difference.

    Returns
    -------
    Tensor
        A scalar.

    Raises
    ------
    ValueError
        As :func:`feature_matching_loss`.

    References
    ----------
    J. Johnson, A. Alahi, L. Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
    Super-Resolution", ECCV 2016, arXiv:1603.08155.
    """
    return _feature_distance(input_features, target_features, layer_weights, criterion,
                             "perceptual_loss")
