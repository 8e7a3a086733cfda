"""Regression losses: functional form.

Every loss here compares a prediction ``input`` with a ``target`` element by
element, then applies ``reduction`` (``'mean'``, ``'sum'`` or ``'none'``). The two
broadcast against each other as in PyTorch; shapes that cannot broadcast raise a
ValueError naming both. All of them are built from differentiable ops (log-cosh
apart, whose one-line backward is written out), so second derivatives work.
"""
from __future__ import annotations

import math
from numbers import Real

from ...backend import get_array_module
from ...core.function import Function
from ...functional import abs as _abs
from ...functional import square, tanh, where
from ...functional._util import raw
from .._reduction import check_reduction, reduce

__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "log_cosh_loss",
           "quantile_loss"]

_LOG2 = math.log(2.0)


# ==== argument checks (shared with the Module forms) =================================

def check_beta(beta, name="smooth_l1_loss"):
    """Return ``beta`` if it is non-negative, else raise a ValueError."""
    if not beta >= 0:
        raise ValueError(f"{name}: beta must be non-negative, got {beta}")
    return beta


def check_delta(delta, name="huber_loss"):
    """Return ``delta`` if it is positive, else raise a ValueError."""
    if not delta > 0:
        raise ValueError(f"{name}: delta must be positive, got {delta}")
    return delta


def check_quantiles(quantile, name="quantile_loss"):
    """Return ``quantile`` as a tuple of floats, each strictly inside (0, 1)."""
    qs = ((float(quantile),) if isinstance(quantile, Real)
          else tuple(float(q) for q in quantile))
    if not qs:
        raise ValueError(f"{name}: quantile must be a number or a non-empty sequence of "
                         "numbers, got an empty sequence")
    for q in qs:
        if not 0.0 < q < 1.0:
            raise ValueError(f"{name}: every quantile must lie strictly between 0 and 1, "
                             f"got {q}")
    return qs


# ==== losses ===========================================================================

def _difference(input, target, name):
    """``input - target``, with a clear message when the shapes do not broadcast."""
    try:
        return input - target
    except ValueError:
        raise ValueError(f"{name}: input of shape {tuple(input.shape)} and target of shape "
                         f"{tuple(getattr(target, 'shape', ()))} cannot be broadcast "
                         "together") from None


def mse_loss(input, target, reduction="mean"):
    """Mean squared error.

    .. math:: \\ell_i = (x_i - y_i)^2

    Parameters
    ----------
    input : Tensor
        Predictions ``x``.
    target : Tensor or array
        Targets ``y``, broadcastable against ``input``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the elementwise losses, ``'sum'`` their sum and
        ``'mean'`` their average.

    Returns
    -------
    Tensor
        A scalar, or the elementwise losses for ``reduction='none'``.

    Notes
    -----
    PyTorch equivalent: ``torch.nn.functional.mse_loss``.

    Examples
    --------
    >>> import neural_arch as na
    >>> na.losses.functional.mse_loss(na.Tensor([1.0, 2.0]), na.Tensor([1.0, 4.0])).item()
    2.0
    """
    check_reduction(reduction)
    return reduce(square(_difference(input, target, "mse_loss")), reduction)


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error.

    .. math:: \\ell_i = |x_i - y_i|

    Parameters
    ----------
    input : Tensor
        Predictions ``x``.
    target : Tensor or array
        Targets ``y``, broadcastable against ``input``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise losses.

    Returns
    -------
    Tensor

    Notes
    -----
    The gradient at ``x = y`` is 0 (PyTorch's convention for ``|.|``).
    PyTorch equivalent: ``torch.nn.functional.l1_loss``.
    """
    check_reduction(reduction)
    return reduce(_abs(_difference(input, target, "l1_loss")), reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Smooth L1 loss: quadratic near zero, linear beyond ``beta``.

    .. math::

        \\ell_i = \\begin{cases} 0.5\\, d_i^2 / \\beta & |d_i| < \\beta \\\\
                                 |d_i| - 0.5\\, \\beta & \\text{otherwise} \\end{cases},
        \\qquad d_i = x_i - y_i

    Parameters
    ----------
    input : Tensor
        Predictions ``x``.
    target : Tensor or array
        Targets ``y``, broadcastable against ``input``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise losses.
    beta : float, default 1.0
        Where the quadratic part ends; ``beta = 0`` gives the L1 loss.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        When ``beta`` is negative.

    Notes
    -----
    ``smooth_l1_loss(x, y, beta=b)`` equals ``huber_loss(x, y, delta=b) / b``.
    PyTorch equivalent: ``torch.nn.functional.smooth_l1_loss``.
    """
    check_reduction(reduction)
    check_beta(beta)
    d = _difference(input, target, "smooth_l1_loss")
    a = _abs(d)
    if beta == 0:
        return reduce(a, reduction)
    return reduce(where(raw(a) < beta, (0.5 / beta) * square(d), a - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """Huber loss: quadratic near zero, linear with slope ``delta`` beyond it.

    .. math::

        \\ell_i = \\begin{cases} 0.5\\, d_i^2 & |d_i| < \\delta \\\\
                                 \\delta (|d_i| - 0.5\\, \\delta) & \\text{otherwise}
                  \\end{cases}, \\qquad d_i = x_i - y_i

    Parameters
    ----------
    input : Tensor
        Predictions ``x``.
    target : Tensor or array
        Targets ``y``, broadcastable against ``input``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise losses.
    delta : float, default 1.0
        Where the quadratic part ends; must be positive.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        When ``delta`` is not positive.

    Notes
    -----
    PyTorch equivalent: ``torch.nn.functional.huber_loss``.
    """
    check_reduction(reduction)
    check_delta(delta)
    d = _difference(input, target, "huber_loss")
    a = _abs(d)
    return reduce(where(raw(a) < delta, 0.5 * square(d), delta * (a - 0.5 * delta)),
                  reduction)


class LogCosh(Function):
    # The derivative of log cosh is tanh, at most 1 in magnitude.
    grad_bounded = True

    def forward(self, d):
        xp = get_array_module(d)
        # log cosh d = |d| + log(1 + e^(-2|d|)) - log 2: e^(-2|d|) <= 1 never overflows,
        # where cosh itself overflows from |d| ~ 710 on (float64).
        a = xp.abs(d)
        y = xp.log1p(xp.exp(-2 * a))
        y += a
        y -= _LOG2
        return y

    def backward(self, gy):
        return gy * tanh(self.inputs[0])


def log_cosh_loss(input, target, reduction="mean"):
    """Log-cosh loss: about ``d^2 / 2`` for small errors and ``|d| - log 2`` for large.

    .. math:: \\ell_i = \\log\\cosh(x_i - y_i)

    Parameters
    ----------
    input : Tensor
        Predictions ``x``.
    target : Tensor or array
        Targets ``y``, broadcastable against ``input``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise losses.

    Returns
    -------
    Tensor

    Notes
    -----
    Computed as :math:`|d| + \\log(1 + e^{-2|d|}) - \\log 2`, which stays finite for
    any finite ``d`` (``cosh`` alone overflows near ``|d| = 710``). Its gradient is
    :math:`\\tanh(d)`, bounded by 1 like the L1 loss, and smooth at 0 like the MSE.
    PyTorch has no equivalent; the loss is described by Chen et al., "Log Hyperbolic
    Cosine Loss Improves Variational Auto-Encoder" (2019).
    """
    check_reduction(reduction)
    return reduce(LogCosh()(_difference(input, target, "log_cosh_loss")), reduction)


def quantile_loss(input, target, quantile=0.5, reduction="mean"):
    """Quantile (pinball) loss for one quantile or several at once.

    With the residual :math:`r = y - x` and a quantile :math:`q \\in (0, 1)`,

    .. math:: \\ell = \\max(q\\, r,\\ (q - 1)\\, r)

    so under-prediction costs ``q`` per unit and over-prediction ``1 - q``; its
    minimiser is the ``q``-th quantile of the target distribution (``q = 0.5``
    gives half the L1 loss, whose minimiser is the median).

    Parameters
    ----------
    input : Tensor
        Predictions. For a single ``quantile``, any shape broadcastable against
        ``target``. For a sequence of ``Q`` quantiles, shape ``(..., Q)``: the last
        axis holds one prediction per quantile, in the order given.
    target : Tensor or array
        Targets. For a sequence of quantiles, of shape ``(...)`` (``input``'s shape
        without its last axis) or ``(..., 1)``; each target is compared with all
        ``Q`` predictions of its row.
    quantile : float or sequence of float, default 0.5
        The quantile(s), each strictly between 0 and 1.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise losses; ``'mean'`` averages over all
        elements, quantiles included, and ``'none'`` keeps the shape ``(..., Q)``.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        When a quantile is outside ``(0, 1)``, or for several quantiles, when
        ``input``'s last axis does not have one entry per quantile.

    Notes
    -----
    At ``r = 0`` the gradient with respect to ``input`` is ``-q`` (the
    under-prediction side). PyTorch has no equivalent; reference: Koenker &
    Bassett, "Regression Quantiles", Econometrica (1978).
    """
    check_reduction(reduction)
    qs = check_quantiles(quantile)
    if isinstance(quantile, Real):
        q = qs[0]
    else:
        xp = get_array_module(input)
        if input.ndim == 0 or input.shape[-1] != len(qs):
            raise ValueError(f"quantile_loss: with {len(qs)} quantiles, input's last axis "
                             f"must have {len(qs)} entries (one per quantile), got input "
                             f"of shape {tuple(input.shape)}")
        tshape = tuple(getattr(target, "shape", ()))
        if tshape == tuple(input.shape[:-1]):
            target = target[..., None]
        q = xp.asarray(qs, dtype=input.dtype)
    # With d = x - y = -r: under-prediction (d <= 0) costs q |d|, over-prediction
    # (d > 0) costs (1 - q) d.
    d = _difference(input, target, "quantile_loss")
    return reduce(where(raw(d) <= 0, d * -q, d * (1 - q)), reduction)
