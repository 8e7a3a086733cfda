"""Classification losses: Module form.

Each class holds its arguments and calls the function of the same name in
:mod:`neural_arch.losses.functional.classification`; the formulas live there only.
Per-class ``weight`` and ``pos_weight`` are registered as buffers, so they follow
the Module through ``.to(device)`` and into its ``state_dict``, as in PyTorch.
"""
from __future__ import annotations

from ..core.tensor import Tensor
from .functional import classification as _F
from .regression import _Loss

__all__ = ["CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss",
           "FocalLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss",
           "TripletMarginLoss"]


def _buffer(value):
    """None, or ``value`` as a Tensor (arrays keep their dtype; lists become floats)."""
    if value is None or isinstance(value, Tensor):
        return value
    return Tensor(value)


class _WeightedLoss(_Loss):
    """A loss with an optional per-class ``weight`` buffer."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy between logits and class indices or class probabilities.

    See :func:`~neural_arch.losses.functional.cross_entropy` for the formula, the
    shapes and the ``'mean'`` normalisation. PyTorch equivalent:
    ``torch.nn.CrossEntropyLoss``.

    Parameters
    ----------
    weight : Tensor or array, optional
        A weight per class, shape ``(C,)``.
    ignore_index : int, default -100
        Class-index targets to skip.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    label_smoothing : float, default 0.0
        In ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np, neural_arch as na
    >>> loss_fn = na.losses.CrossEntropyLoss(label_smoothing=0.1)
    >>> loss = loss_fn(na.Tensor(np.zeros((4, 3)), requires_grad=True), np.array([0, 1, 2, 1]))
    >>> round(loss.item(), 4)
    1.0986
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = _F.check_label_smoothing(label_smoothing, "CrossEntropyLoss")

    def forward(self, input, target):
        return _F.cross_entropy(input, target, self.weight, self.ignore_index,
                                self.reduction, self.label_smoothing)

    def extra_repr(self) -> str:
        return (f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, "
                f"label_smoothing={self.label_smoothing}")


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices, given log-probabilities.

    See :func:`~neural_arch.losses.functional.nll_loss`. PyTorch equivalent:
    ``torch.nn.NLLLoss``.

    Parameters
    ----------
    weight : Tensor or array, optional
        A weight per class, shape ``(C,)``.
    ignore_index : int, default -100
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return _F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"


class BCELoss(_WeightedLoss):
    """Binary cross-entropy between probabilities and targets (logs clamped at -100).

    See :func:`~neural_arch.losses.functional.binary_cross_entropy`. PyTorch
    equivalent: ``torch.nn.BCELoss``.

    Parameters
    ----------
    weight : Tensor or array, optional
        Rescaling weights, broadcastable against the input.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def forward(self, input, target):
        return _F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy on logits, stable for logits of any size.

    See :func:`~neural_arch.losses.functional.binary_cross_entropy_with_logits`.
    PyTorch equivalent: ``torch.nn.BCEWithLogitsLoss``.

    Parameters
    ----------
    weight : Tensor or array, optional
        Rescaling weights, broadcastable against the input.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    pos_weight : Tensor or array, optional
        Weight of the positive term, broadcastable against the input.
    """

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", _buffer(pos_weight))

    def forward(self, input, target):
        return _F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                   self.reduction, self.pos_weight)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence; ``input`` holds log-probabilities.

    See :func:`~neural_arch.losses.functional.kl_div`. PyTorch equivalent:
    ``torch.nn.KLDivLoss``.

    Parameters
    ----------
    reduction : {'mean', 'batchmean', 'sum', 'none'}, default 'mean'
        ``'batchmean'`` gives the KL divergence per sample.
    log_target : bool, default False
        Whether the target holds log-probabilities.
    """

    def __init__(self, reduction="mean", log_target=False):
        super().__init__("sum" if reduction == "batchmean" else reduction)
        self.reduction = reduction          # 'batchmean' is valid for this loss only
        self.log_target = log_target

    def forward(self, input, target):
        return _F.kl_div(input, target, self.reduction, self.log_target)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, log_target={self.log_target}"


class FocalLoss(_Loss):
    """Focal loss from logits: binary (torchvision semantics) or multi-class.

    ``FocalLoss(alpha=0.25, gamma=2.0)(logits, target)`` accepts segmentation
    outputs as they come: ``(N, C, H, W)`` logits with integer ``(N, H, W)``
    class maps, or ``(N, 1, H, W)`` logits with a ``{0, 1}`` mask of shape
    ``(N, H, W)`` or ``(N, 1, H, W)``. See
    :func:`~neural_arch.losses.functional.focal_loss` for both formulas and the
    meaning of ``alpha`` in each. No PyTorch equivalent (torchvision has
    ``sigmoid_focal_loss``).

    Parameters
    ----------
    alpha : float, sequence of float or None, default 0.25
    gamma : float, default 2.0
        Non-negative.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def __init__(self, alpha=0.25, gamma=2.0, reduction="mean"):
        super().__init__(reduction)
        self.alpha = alpha
        self.gamma = _F.check_gamma(gamma, "FocalLoss")

    def forward(self, input, target):
        return _F.focal_loss(input, target, self.alpha, self.gamma, self.reduction)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}, reduction={self.reduction!r}"


class MarginRankingLoss(_Loss):
    """Margin ranking loss, :math:`\\max(0, -y (x_1 - x_2) + \\mathrm{margin})`.

    See :func:`~neural_arch.losses.functional.margin_ranking_loss`. PyTorch
    equivalent: ``torch.nn.MarginRankingLoss``.

    Parameters
    ----------
    margin : float, default 0.0
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def __init__(self, margin=0.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return _F.margin_ranking_loss(input1, input2, target, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class HingeEmbeddingLoss(_Loss):
    """Hinge embedding loss: :math:`x` for :math:`y = 1`, :math:`\\max(0, m - x)` for
    :math:`y = -1`.

    See :func:`~neural_arch.losses.functional.hinge_embedding_loss`. PyTorch
    equivalent: ``torch.nn.HingeEmbeddingLoss``.

    Parameters
    ----------
    margin : float, default 1.0
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def __init__(self, margin=1.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input, target):
        return _F.hinge_embedding_loss(input, target, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class CosineEmbeddingLoss(_Loss):
    """Cosine embedding loss: :math:`1 - \\cos` for :math:`y = 1`,
    :math:`\\max(0, \\cos - m)` for :math:`y = -1`.

    See :func:`~neural_arch.losses.functional.cosine_embedding_loss`. PyTorch
    equivalent: ``torch.nn.CosineEmbeddingLoss``.

    Parameters
    ----------
    margin : float, default 0.0
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def __init__(self, margin=0.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return _F.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class TripletMarginLoss(_Loss):
    """Triplet margin loss, :math:`\\max(0, d(a, p) - d(a, n) + \\mathrm{margin})`.

    See :func:`~neural_arch.losses.functional.triplet_margin_loss`. PyTorch
    equivalent: ``torch.nn.TripletMarginLoss``.

    Parameters
    ----------
    margin : float, default 1.0
    p : float, default 2.0
        The norm degree of the distance.
    eps : float, default 1e-6
    swap : bool, default False
        Use the distance swap.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor, positive, negative):
        return _F.triplet_margin_loss(anchor, positive, negative, self.margin, self.p,
                                      self.eps, self.swap, self.reduction)

    def extra_repr(self) -> str:
        return (f"margin={self.margin}, p={self.p}, eps={self.eps}, swap={self.swap}, "
                f"reduction={self.reduction!r}")
