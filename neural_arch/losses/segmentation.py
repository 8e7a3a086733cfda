"""Segmentation losses: Module form.

Each class holds its settings and calls the function of the same name in
:mod:`neural_arch.losses.functional.segmentation`, whose docstring gives the formula.
"""
from __future__ import annotations

from ..core.tensor import Tensor
from ..nn.module import Module
from ._reduction import check_reduction
from .functional import segmentation as _f

__all__ = ["DiceLoss", "TverskyLoss", "FocalTverskyLoss", "LovaszLoss"]


class _OverlapLoss(Module):
    """Shared settings of the Dice-style losses; ``weight`` is a buffer (moves with ``to``)."""

    def __init__(self, smooth, weight, ignore_index, from_logits, reduction, name):
        super().__init__()
        self.smooth = _f._check_nonnegative(smooth, "smooth", name)
        self.ignore_index = ignore_index
        self.from_logits = from_logits
        self.reduction = check_reduction(reduction)
        self.register_buffer("weight", None if weight is None else Tensor(weight))

    def extra_repr(self):
        return f"smooth={self.smooth}, reduction={self.reduction!r}"


class DiceLoss(_OverlapLoss):
    """Soft Dice loss, ``1 - (2 sum p g + s) / (sum p + sum g + s)`` per sample and class.

    See :func:`neural_arch.losses.functional.dice_loss` for the arguments and the
    target shapes.

    Examples
    --------
    >>> import numpy as np, neural_arch as na
    >>> logits = na.Tensor(np.zeros((1, 2, 2, 2)))
    >>> loss = na.losses.DiceLoss(smooth=0.0)(logits, np.array([[[0, 1], [1, 0]]]))
    >>> round(loss.item(), 6)
    0.5
    """

    def __init__(self, smooth=1.0, weight=None, ignore_index=None, from_logits=True,
                 reduction="mean"):
        super().__init__(smooth, weight, ignore_index, from_logits, reduction, "DiceLoss")

    def forward(self, input, target):
        return _f.dice_loss(input, target, self.smooth, self.weight, self.ignore_index,
                            self.from_logits, self.reduction)


class TverskyLoss(_OverlapLoss):
    """Tversky loss, ``1 - (TP + s) / (TP + alpha FP + beta FN + s)`` per sample and class.

    See :func:`neural_arch.losses.functional.tversky_loss`.
    """

    def __init__(self, alpha=0.5, beta=0.5, smooth=1.0, weight=None, ignore_index=None,
                 from_logits=True, reduction="mean"):
        super().__init__(smooth, weight, ignore_index, from_logits, reduction, "TverskyLoss")
        self.alpha = _f._check_unit(alpha, "alpha", "TverskyLoss")
        self.beta = _f._check_unit(beta, "beta", "TverskyLoss")

    def forward(self, input, target):
        return _f.tversky_loss(input, target, self.alpha, self.beta, self.smooth, self.weight,
                               self.ignore_index, self.from_logits, self.reduction)

    def extra_repr(self):
        return f"alpha={self.alpha}, beta={self.beta}, " + super().extra_repr()


class FocalTverskyLoss(_OverlapLoss):
    """Focal Tversky loss, ``(1 - TI)^gamma`` per sample and class.

    See :func:`neural_arch.losses.functional.focal_tversky_loss` (``gamma`` is the
    exponent itself, the paper's ``1/gamma``).
    """

    def __init__(self, alpha=0.3, beta=0.7, gamma=0.75, smooth=1.0, weight=None,
                 ignore_index=None, from_logits=True, reduction="mean"):
        super().__init__(smooth, weight, ignore_index, from_logits, reduction,
                         "FocalTverskyLoss")
        self.alpha = _f._check_unit(alpha, "alpha", "FocalTverskyLoss")
        self.beta = _f._check_unit(beta, "beta", "FocalTverskyLoss")
        self.gamma = _f._check_nonnegative(gamma, "gamma", "FocalTverskyLoss")

    def forward(self, input, target):
        return _f.focal_tversky_loss(input, target, self.alpha, self.beta, self.gamma,
                                     self.smooth, self.weight, self.ignore_index,
                                     self.from_logits, self.reduction)

    def extra_repr(self):
        return (f"alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}, "
                + super().extra_repr())


class LovaszLoss(Module):
    """Lovasz loss: binary Lovasz hinge for one channel, Lovasz-softmax for several.

    See :func:`neural_arch.losses.functional.lovasz_loss`.
    """

    def __init__(self, per_image=False, classes="present", ignore_index=None,
                 from_logits=True, reduction="mean"):
        super().__init__()
        _f._check_classes(classes, "LovaszLoss")
        self.per_image = per_image
        self.classes = classes
        self.ignore_index = ignore_index
        self.from_logits = from_logits
        self.reduction = check_reduction(reduction)

    def forward(self, input, target):
        return _f.lovasz_loss(input, target, self.per_image, self.classes, self.ignore_index,
                              self.from_logits, self.reduction)

    def extra_repr(self):
        return f"per_image={self.per_image}, classes={self.classes!r}"
