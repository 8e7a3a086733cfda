"""Regression losses: Module form.

Each class holds its arguments and calls the function of the same name in
:mod:`neural_arch.losses.functional.regression`; the formulas live there only.
"""
from __future__ import annotations

from numbers import Real

from ..nn.module import Module
from ._reduction import check_reduction
from .functional import regression as _F

__all__ = ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "LogCoshLoss", "QuantileLoss"]


class _Loss(Module):
    """Base of the loss Modules: validates and holds ``reduction``."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error, :math:`(x - y)^2` per element.

    See :func:`~neural_arch.losses.functional.mse_loss`. PyTorch equivalent:
    ``torch.nn.MSELoss``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def forward(self, input, target):
        return _F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error, :math:`|x - y|` per element.

    See :func:`~neural_arch.losses.functional.l1_loss`. PyTorch equivalent:
    ``torch.nn.L1Loss``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def forward(self, input, target):
        return _F.l1_loss(input, target, self.reduction)


class SmoothL1Loss(_Loss):
    """Smooth L1 loss: :math:`0.5 d^2 / \\beta` for :math:`|d| < \\beta`, else
    :math:`|d| - 0.5 \\beta`.

    See :func:`~neural_arch.losses.functional.smooth_l1_loss`. PyTorch equivalent:
    ``torch.nn.SmoothL1Loss``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    beta : float, default 1.0
        Non-negative; 0 gives the L1 loss.
    """

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = _F.check_beta(beta, "SmoothL1Loss")

    def forward(self, input, target):
        return _F.smooth_l1_loss(input, target, self.reduction, self.beta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, beta={self.beta}"


class HuberLoss(_Loss):
    """Huber loss: :math:`0.5 d^2` for :math:`|d| < \\delta`, else
    :math:`\\delta (|d| - 0.5 \\delta)`.

    See :func:`~neural_arch.losses.functional.huber_loss`. PyTorch equivalent:
    ``torch.nn.HuberLoss``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    delta : float, default 1.0
        Positive.
    """

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = _F.check_delta(delta, "HuberLoss")

    def forward(self, input, target):
        return _F.huber_loss(input, target, self.reduction, self.delta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, delta={self.delta}"


class LogCoshLoss(_Loss):
    """Log-cosh loss, :math:`\\log\\cosh(x - y)` per element, computed without overflow.

    See :func:`~neural_arch.losses.functional.log_cosh_loss`. No PyTorch equivalent.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def forward(self, input, target):
        return _F.log_cosh_loss(input, target, self.reduction)


class QuantileLoss(_Loss):
    """Quantile (pinball) loss, :math:`\\max(q r, (q - 1) r)` with :math:`r = y - x`.

    See :func:`~neural_arch.losses.functional.quantile_loss`, which also documents
    the shapes for several quantiles at once (one prediction per quantile on the
    input's last axis). No PyTorch equivalent.

    Parameters
    ----------
    quantile : float or sequence of float, default 0.5
        Each strictly between 0 and 1.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    """

    def __init__(self, quantile=0.5, reduction="mean"):
        super().__init__(reduction)
        qs = _F.check_quantiles(quantile, "QuantileLoss")
        self.quantile = quantile if isinstance(quantile, Real) else qs

    def forward(self, input, target):
        return _F.quantile_loss(input, target, self.quantile, self.reduction)

    def extra_repr(self) -> str:
        return f"quantile={self.quantile!r}, reduction={self.reduction!r}"
