"""Segmentation losses: functional form.

Dice, Tversky, focal Tversky and Lovasz losses for dense predictions.

Shapes shared by every loss here:

* ``input``: ``(N, C, *spatial)``, logits by default (``from_logits=True``: a sigmoid
  for one channel, a softmax over dim 1 for several) or probabilities
  (``from_logits=False``). ``spatial`` may be empty (``(N, C)``).
* ``target``: integer class indices ``(N, *spatial)`` (for one channel: 0/1 labels,
  also ``(N, 1, *spatial)``), or a float one-hot / soft target of ``input``'s
  shape; for one channel a float ``(N, *spatial)`` mask is accepted too.
"""
from __future__ import annotations

import numbers

import numpy as np

from ... import functional as F
from ...backend import get_array_module
from ...core.tensor import Tensor
from .._reduction import check_reduction, reduce

__all__ = ["dice_loss", "tversky_loss", "focal_tversky_loss", "lovasz_loss",
           "lovasz_hinge", "lovasz_softmax"]


def _tiny(x):
    """The smallest normal number of ``x``'s dtype: a floor that keeps 0 / 0 and 0^(-a) out."""
    return float(np.finfo(x.dtype).tiny)


# ==== argument checks and target preparation ==========================================

def _check_nonnegative(value, name, loss):
    if not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{loss}: {name} must be a number >= 0, got {value!r}")
    return float(value)


def _check_unit(value, name, loss):
    if not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{loss}: {name} must be in [0, 1], got {value!r}")
    return float(value)


def _check_input(input, loss):
    if not isinstance(input, Tensor):
        raise TypeError(f"{loss}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"{loss}: input must have shape (N, C, *spatial), "
                         f"got shape {tuple(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"{loss}: input must be floating point, got dtype {input.dtype}")


def _probabilities(input, from_logits):
    if not from_logits:
        return input
    return F.sigmoid(input) if input.shape[1] == 1 else F.softmax(input, axis=1)


def _target(input, target, ignore_index, loss):
    """The target as a one-hot float array of ``input``'s shape, and the valid-pixel mask.

    Returns ``(onehot, valid)``: ``valid`` is a float array ``(N, 1, *spatial)`` that is
    0 at ignored pixels, or None when nothing is ignored.
    """
    t = target.data if isinstance(target, Tensor) else target
    if not hasattr(t, "dtype") or not hasattr(t, "shape"):
        raise TypeError(f"{loss}: target must be a Tensor or array, got {type(target).__name__}")
    xp = get_array_module(input)
    shape = tuple(input.shape)
    n, c = shape[0], shape[1]
    pixels = (n,) + shape[2:]
    dtype = input.dtype
    kind = t.dtype.kind
    valid = None
    if kind in "iub" and c > 1 and tuple(t.shape) == shape:
        t, kind = t.astype(dtype), "f"        # an integer one-hot mask
    if kind in "iub":
        if c == 1 and tuple(t.shape) == shape:
            t = t.reshape(pixels)
        elif tuple(t.shape) != pixels:
            raise ValueError(f"{loss}: class-index target must have shape {pixels} for input "
                             f"of shape {shape}, got {tuple(t.shape)}")
        if ignore_index is not None:
            keep = t != ignore_index
            t = xp.where(keep, t, 0)
            valid = keep.astype(dtype).reshape((n, 1) + shape[2:])
        if t.size:
            lo, hi = int(t.min()), int(t.max())
            top = 1 if c == 1 else c - 1
            if lo < 0 or hi > top:
                bad = lo if lo < 0 else hi
                raise IndexError(f"{loss}: target holds class index {bad}, outside [0, {top}] "
                                 f"for input with {c} channel(s)"
                                 + ("" if ignore_index is None
                                    else f" (ignore_index={ignore_index})"))
        if c == 1:
            return t.astype(dtype).reshape(shape), valid
        classes = xp.arange(c).reshape((1, c) + (1,) * (len(shape) - 2))
        return (t.reshape((n, 1) + shape[2:]) == classes).astype(dtype), valid
    if kind != "f":
        raise TypeError(f"{loss}: target must hold integer class indices or float "
                        f"probabilities, got dtype {t.dtype}")
    if tuple(t.shape) == pixels and c == 1:
        t = t.reshape(shape)
    elif tuple(t.shape) == pixels:
        raise TypeError(f"{loss}: a target of shape {pixels} holds class indices and must be "
                        f"an integer dtype, got {t.dtype}")
    elif tuple(t.shape) != shape:
        raise ValueError(f"{loss}: target must have shape {pixels} (class indices) or "
                         f"{shape} (one-hot or soft), got {tuple(t.shape)}")
    if ignore_index is not None:
        if c != 1:
            raise ValueError(f"{loss}: ignore_index needs class-index targets, not a "
                             f"one-hot target of shape {shape}")
        keep = t != ignore_index
        t = xp.where(keep, t, 0)
        valid = keep.astype(dtype)
    return t.astype(dtype, copy=False), valid


def _class_weight(weight, c, input, loss):
    if weight is None:
        return None
    xp = get_array_module(input)
    w = xp.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=input.dtype)
    if w.shape != (c,):
        raise ValueError(f"{loss}: weight must hold one value per class, shape ({c},), "
                         f"got shape {tuple(w.shape)}")
    return w


def _overlap(input, target, from_logits, ignore_index, loss):
    """Per-sample, per-class sums ``(TP, sum p, sum g)``, each of shape (N, C).

    ``TP = sum p g`` is a Tensor, ``sum p`` a Tensor, ``sum g`` a constant array.
    """
    _check_input(input, loss)
    onehot, valid = _target(input, target, ignore_index, loss)
    probs = _probabilities(input, from_logits)
    if valid is not None:
        probs = probs * valid
        onehot = onehot * valid
    axes = tuple(range(2, input.ndim))
    if not axes:
        return probs * onehot, probs, onehot
    return (probs * onehot).sum(axis=axes), probs.sum(axis=axes), onehot.sum(axis=axes)


def _reduce_classes(loss_nc, weight, reduction):
    """Reduce per-sample, per-class losses (N, C) with optional per-class weights.

    ``'mean'`` with weights is the weighted mean ``sum w_c L_nc / (N sum w_c)``, as
    PyTorch's weighted cross-entropy; ``'none'`` gives ``w_c L_nc`` of shape (N, C).
    """
    if weight is None:
        return reduce(loss_nc, reduction)
    weighted = loss_nc * weight
    if reduction == "mean":
        return reduce(weighted, "sum") / (loss_nc.shape[0] * weight.sum())
    return reduce(weighted, reduction)


# ==== Dice and Tversky ===============================================================

def dice_loss(input, target, smooth=1.0, weight=None, ignore_index=None, from_logits=True,
              reduction="mean"):
    """Soft Dice loss, one minus the smoothed Dice coefficient per sample and class.

    .. math::

        L_{nc} = 1 - \\frac{2 \\sum_i p_{nci} g_{nci} + s}
                         {\\sum_i p_{nci} + \\sum_i g_{nci} + s}

    with ``i`` running over the spatial positions, ``p`` the predicted probabilities
    and ``g`` the one-hot (or soft) target. Every class counts, background included;
    give it weight 0 to leave it out. PyTorch has no Dice loss; this is the soft Dice
    of Milletari et al. (2016) with linear (not squared) sums in the denominator.

    Parameters
    ----------
    input : Tensor
        ``(N, C, *spatial)`` logits (or probabilities with ``from_logits=False``).
    target : Tensor or array
        Integer class indices ``(N, *spatial)``, or a float one-hot / soft target of
        ``input``'s shape (see the module docstring for the binary forms).
    smooth : float, default 1.0
        ``s`` above, added to numerator and denominator; ``>= 0``. It makes a class
        absent from both prediction and target score a perfect 1.
    weight : sequence of float or Tensor, optional
        One weight per class.
    ignore_index : int, optional
        Pixels whose target equals this value count neither in ``p`` nor in ``g``.
    from_logits : bool, default True
        Apply a sigmoid (one channel) or a softmax over dim 1 (several) first.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        Over the per-sample, per-class losses; ``'none'`` returns shape ``(N, C)``
        and ``'mean'`` with ``weight`` divides by ``N * sum(weight)``.

    Returns
    -------
    Tensor
        The loss.

    Raises
    ------
    ValueError
        For a negative ``smooth`` or a target of the wrong shape. ``IndexError`` for a
        class index out of range, ``TypeError`` for float class indices.

    References
    ----------
    F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully Convolutional Neural Networks for
    Volumetric Medical Image Segmentation", 3DV 2016, arXiv:1606.04797.
    """
    smooth = _check_nonnegative(smooth, "smooth", "dice_loss")
    check_reduction(reduction)
    tp, sum_p, sum_g = _overlap(input, target, from_logits, ignore_index, "dice_loss")
    w = _class_weight(weight, input.shape[1], input, "dice_loss")
    # The floor matters only for smooth = 0 and a class absent from both: 0 / 0.
    dice = (2 * tp + smooth) / F.clip(sum_p + sum_g + smooth, min=_tiny(input))
    return _reduce_classes(1 - dice, w, reduction)


def _tversky_index(input, target, alpha, beta, smooth, ignore_index, from_logits, loss):
    _check_unit(alpha, "alpha", loss)
    _check_unit(beta, "beta", loss)
    smooth = _check_nonnegative(smooth, "smooth", loss)
    tp, sum_p, sum_g = _overlap(input, target, from_logits, ignore_index, loss)
    fp = sum_p - tp               # sum p (1 - g)
    fn = sum_g - tp               # sum (1 - p) g
    return (tp + smooth) / F.clip(tp + alpha * fp + beta * fn + smooth, min=_tiny(input))


def tversky_loss(input, target, alpha=0.5, beta=0.5, smooth=1.0, weight=None,
                 ignore_index=None, from_logits=True, reduction="mean"):
    """Tversky loss: one minus the Tversky index per sample and class.

    .. math::

        TI_{nc} = \\frac{TP + s}{TP + \\alpha FP + \\beta FN + s}, \\qquad
        L_{nc} = 1 - TI_{nc}

    with ``TP = sum p g``, ``FP = sum p (1 - g)``, ``FN = sum (1 - p) g`` over the
    spatial positions. ``alpha`` weighs false positives and ``beta`` false negatives;
    ``alpha = beta = 0.5`` is the Dice loss (with smoothing ``2 s``). PyTorch has no
    Tversky loss.

    Parameters
    ----------
    input, target, smooth, weight, ignore_index, from_logits, reduction
        As in :func:`dice_loss`.
    alpha : float, default 0.5
        Weight of the false positives, in ``[0, 1]``.
    beta : float, default 0.5
        Weight of the false negatives, in ``[0, 1]``.

    Returns
    -------
    Tensor
        The loss; shape ``(N, C)`` with ``reduction='none'``.

    Raises
    ------
    ValueError
        For ``alpha`` or ``beta`` outside ``[0, 1]``, a negative ``smooth``, or a target
        that does not fit ``input``.

    References
    ----------
    S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky loss function for image
    segmentation using 3D fully convolutional deep networks", MLMI 2017,
    arXiv:1706.05721.
    """
    check_reduction(reduction)
    ti = _tversky_index(input, target, alpha, beta, smooth, ignore_index, from_logits,
                        "tversky_loss")
    w = _class_weight(weight, input.shape[1], input, "tversky_loss")
    return _reduce_classes(1 - ti, w, reduction)


def focal_tversky_loss(input, target, alpha=0.3, beta=0.7, gamma=0.75, smooth=1.0,
                       weight=None, ignore_index=None, from_logits=True, reduction="mean"):
    """Focal Tversky loss: the Tversky loss raised to the power ``gamma``.

    .. math:: L_{nc} = (1 - TI_{nc})^{\\gamma}

    with ``TI`` the Tversky index of :func:`tversky_loss`. The paper writes the
    exponent as ``1/gamma`` with ``gamma`` in ``[1, 3]``; here ``gamma`` *is* the
    exponent, so the paper's best setting (its ``gamma = 4/3``) is the default 0.75.
    ``gamma < 1`` stresses the hard (low ``TI``) examples. PyTorch has no such loss.

    Parameters
    ----------
    input, target, alpha, beta, smooth, weight, ignore_index, from_logits, reduction
        As in :func:`tversky_loss`. The defaults ``alpha = 0.3`` (false positives),
        ``beta = 0.7`` (false negatives) are the paper's setting, whose ``alpha = 0.7``
        weighs the false negatives (the names are swapped there).
    gamma : float, default 0.75
        The exponent, ``>= 0``.

    Returns
    -------
    Tensor
        The loss; shape ``(N, C)`` with ``reduction='none'``.

    Raises
    ------
    ValueError
        For a negative ``gamma`` and the cases of :func:`tversky_loss`.

    References
    ----------
    N. Abraham, N. M. Khan, "A Novel Focal Tversky loss function with improved Attention
    U-Net for lesion segmentation", ISBI 2019, arXiv:1810.07842.
    """
    gamma = _check_nonnegative(gamma, "gamma", "focal_tversky_loss")
    check_reduction(reduction)
    ti = _tversky_index(input, target, alpha, beta, smooth, ignore_index, from_logits,
                        "focal_tversky_loss")
    w = _class_weight(weight, input.shape[1], input, "focal_tversky_loss")
    # Rounding can push 1 - TI a hair below 0 (a NaN power), and for gamma < 1 the slope
    # gamma x^(gamma - 1) is infinite at 0: the floor keeps both finite (the gradient of
    # a perfect prediction is then 0) and adds at most tiny^gamma to the loss.
    return _reduce_classes(F.clip(1 - ti, min=_tiny(input)) ** gamma, w, reduction)


# ==== Lovasz ============================================================================

def _lovasz_jaccard_slopes(xp, fg_sorted):
    """Slopes of the Lovasz extension of the Jaccard loss along sorted errors.

    ``fg_sorted`` (..., P) holds the 0/1 foreground labels ordered by decreasing error.
    With the first ``i`` pixels taken as mistakes, the Jaccard loss is
    ``J_i = 1 - (G - cumsum(fg)_i) / (G + cumsum(1 - fg)_i)`` (``G`` the foreground
    count); the extension's gradient is ``J_i - J_{i-1}`` (with ``J_0 = 0``).
    """
    total = fg_sorted.sum(axis=-1, keepdims=True)
    intersection = total - xp.cumsum(fg_sorted, axis=-1)
    union = total + xp.cumsum(1 - fg_sorted, axis=-1)     # >= 1 at every position
    jaccard = 1 - intersection / union
    slopes = jaccard.copy()
    slopes[..., 1:] -= jaccard[..., :-1]
    return slopes


def _lovasz(errors, fg):
    """The Lovasz extension of the Jaccard loss of each row of ``errors`` (B, K, P).

    ``fg`` is the constant 0/1 foreground array of the same shape. Sorting is a
    permutation, so it is differentiated by indexing: the loss is linear in the sorted
    errors with constant slopes.
    """
    xp = get_array_module(errors)
    order = xp.argsort(-errors.data, axis=-1)
    slopes = _lovasz_jaccard_slopes(xp, xp.take_along_axis(fg, order, axis=-1))
    return (F.take_along_axis(errors, order, axis=-1) * slopes).sum(axis=-1)


def _hard_target(input, target, ignore_index, loss):
    onehot, valid = _target(input, target, ignore_index, loss)
    if not bool(((onehot == 0) | (onehot == 1)).all()):
        raise ValueError(f"{loss}: the Lovasz loss needs hard 0/1 (or class-index) targets, "
                         "got soft values")
    if valid is not None:
        onehot = onehot * valid        # ignored pixels are in no class's foreground
    return onehot, valid


def _rows(x, per_image):
    """(N, K, *spatial) -> (N, K, P) per image, or (1, K, N P) over the whole batch."""
    n, k = x.shape[0], x.shape[1]
    if per_image:
        return x.reshape((n, k, -1))
    return x.swapaxes(0, 1).reshape((1, k, -1))


def _finish(per_row, per_image, reduction):
    """Reduce per-image losses; a batch-wide loss (one row) is returned as a 0-d tensor."""
    return reduce(per_row, reduction) if per_image else per_row.reshape(())


def _binary_lovasz(input, target, per_image, ignore_index, from_logits, reduction, loss):
    fg, valid = _hard_target(input, target, ignore_index, loss)
    if from_logits:
        # Hinge errors of the logits: 1 - x for foreground, 1 + x for background.
        errors = F.relu(1 - input * (2 * fg - 1))
    else:
        errors = F.abs(input - fg)
    if valid is not None:
        errors = errors * valid
    per_row = _lovasz(_rows(errors, per_image), _rows(fg, per_image))[:, 0]
    return _finish(per_row, per_image, reduction)


def _multiclass_lovasz(probs, input, target, classes, per_image, ignore_index, reduction,
                       loss):
    xp = get_array_module(input)
    c = input.shape[1]
    fg, valid = _hard_target(input, target, ignore_index, loss)
    errors = F.abs(probs - fg)
    if valid is not None:
        errors = errors * valid
    fg_rows = _rows(fg, per_image)
    per_class = _lovasz(_rows(errors, per_image), fg_rows)            # (B, C)
    if classes == "present":
        chosen = (fg_rows.sum(axis=-1) > 0).astype(input.dtype)
    elif classes == "all":
        chosen = xp.ones((1, c), dtype=input.dtype)
    else:
        ids = list(classes)
        if not ids or any(not isinstance(i, numbers.Integral) or not 0 <= i < c for i in ids):
            raise ValueError(f"{loss}: classes must be 'present', 'all' or a non-empty list "
                             f"of class indices in [0, {c - 1}], got {classes!r}")
        chosen = (xp.arange(c)[:, None] == xp.asarray(ids)).any(axis=1)[None]
        chosen = chosen.astype(input.dtype)
    count = xp.maximum(chosen.sum(axis=-1), 1)        # no chosen class: loss 0
    return _finish((per_class * chosen).sum(axis=-1) / count, per_image, reduction)


def _check_classes(classes, loss):
    if isinstance(classes, str) and classes not in ("present", "all"):
        raise ValueError(f"{loss}: classes must be 'present', 'all' or a list of class "
                         f"indices, got {classes!r}")


def lovasz_loss(input, target, per_image=False, classes="present", ignore_index=None,
                from_logits=True, reduction="mean"):
    """Lovasz loss: the Lovasz extension of the Jaccard (IoU) loss.

    With one channel it is the binary Lovasz hinge (:func:`lovasz_hinge`) on the
    logits; with several it is the Lovasz-softmax loss (:func:`lovasz_softmax`) on
    the softmax probabilities.

    The Lovasz extension of a set function ``Delta`` at errors ``e >= 0`` is

    .. math::

        \\overline{\\Delta}(e) = \\sum_{i=1}^{P} e_{\\pi_i}
            \\left(\\Delta(\\{\\pi_1..\\pi_i\\}) - \\Delta(\\{\\pi_1..\\pi_{i-1}\\})\\right)

    with ``pi`` the order of decreasing error and ``Delta(M) = |M| / |G u M|`` the
    Jaccard loss of the mistake set ``M`` (``G`` the foreground). On 0/1 errors it
    equals ``1 - IoU``; it is convex and piecewise linear in ``e``.

    Parameters
    ----------
    input : Tensor
        ``(N, C, *spatial)`` logits (or probabilities with ``from_logits=False``; for
        one channel these give the errors ``|g - p|`` instead of the hinge).
    target : Tensor or array
        Integer class indices ``(N, *spatial)`` or a hard 0/1 target (see the module
        docstring).
    per_image : bool, default False
        Compute the loss per image and reduce over images; otherwise one loss over all
        the pixels of the batch.
    classes : {'present', 'all'} or list of int, default 'present'
        Multi-class only: average over the classes present in the target (of the image
        with ``per_image``), over all classes, or over the listed ones.
    ignore_index : int, optional
        Pixels with this target value are left out.
    from_logits : bool, default True
        Multi-class: apply a softmax over dim 1 first.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        Over the per-image losses with ``per_image``; ``'none'`` then gives shape
        ``(N,)``. Without ``per_image`` the loss is one number for every reduction.

    Returns
    -------
    Tensor
        The loss.

    References
    ----------
    M. Berman, A. Rannen Triki, M. B. Blaschko, "The Lovasz-Softmax loss: A tractable
    surrogate for the optimization of the intersection-over-union measure in neural
    networks", CVPR 2018, arXiv:1705.08790.
    """
    _check_input(input, "lovasz_loss")
    check_reduction(reduction)
    _check_classes(classes, "lovasz_loss")
    if input.shape[1] == 1:
        return _binary_lovasz(input, target, per_image, ignore_index, from_logits, reduction,
                              "lovasz_loss")
    return _multiclass_lovasz(_probabilities(input, from_logits), input, target, classes,
                              per_image, ignore_index, reduction, "lovasz_loss")


def lovasz_hinge(logits, target, per_image=False, ignore_index=None, reduction="mean"):
    """Binary Lovasz hinge loss (Berman et al. 2018) on logits.

    The errors are the hinge terms ``max(0, 1 - x s)`` with ``s = +1`` for foreground
    and ``-1`` for background; the loss is their Lovasz extension of the Jaccard loss
    (see :func:`lovasz_loss`).

    Parameters
    ----------
    logits : Tensor
        ``(N, *spatial)`` or ``(N, 1, *spatial)`` logits.
    target : Tensor or array
        0/1 labels (integer or float), ``(N, *spatial)`` or of ``logits``' shape.
    per_image, ignore_index, reduction
        As in :func:`lovasz_loss`.

    Returns
    -------
    Tensor
        The loss.
    """
    if isinstance(logits, Tensor) and tuple(getattr(target, "shape", ())) == logits.shape:
        logits = F.unsqueeze(logits, 1)     # (N, *spatial): give it its one channel
    _check_input(logits, "lovasz_hinge")
    check_reduction(reduction)
    return _binary_lovasz(logits, target, per_image, ignore_index, True, reduction,
                          "lovasz_hinge")


def lovasz_softmax(probas, target, classes="present", per_image=False, ignore_index=None,
                   reduction="mean"):
    """Multi-class Lovasz-softmax loss (Berman et al. 2018) on probabilities.

    For every class ``c`` the errors are ``|[target == c] - p_c|`` and the class loss is
    their Lovasz extension of the Jaccard loss (see :func:`lovasz_loss`); the classes
    chosen by ``classes`` are averaged.

    Parameters
    ----------
    probas : Tensor
        ``(N, C, *spatial)`` class probabilities (a softmax over dim 1).
    target : Tensor or array
        Integer class indices ``(N, *spatial)`` or a 0/1 one-hot target.
    classes, per_image, ignore_index, reduction
        As in :func:`lovasz_loss`.

    Returns
    -------
    Tensor
        The loss.
    """
    _check_input(probas, "lovasz_softmax")
    check_reduction(reduction)
    _check_classes(classes, "lovasz_softmax")
    return _multiclass_lovasz(probas, probas, target, classes, per_image, ignore_index,
                              reduction, "lovasz_softmax")
