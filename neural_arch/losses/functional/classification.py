"""Classification losses: functional form.

Names, arguments, defaults and semantics follow ``torch.nn.functional``; focal
loss follows torchvision's ``sigmoid_focal_loss`` for binary targets (see its
docstring for the multi-class form). Class scores have their classes on axis 1
(``(N, C)`` or ``(N, C, d1, d2, ...)``) or on axis 0 for one unbatched sample
``(C,)``, as in PyTorch.

Cross-entropy is one fused node (:class:`SoftmaxCrossEntropy`); everything else
is composed from differentiable ops, so second derivatives come for free.
"""
from __future__ import annotations

from numbers import Real

import numpy as np

from ...backend import get_array_module
from ...core.function import Function
from ...core.grad_mode import config
from ...functional import (clip, exp, expm1, log, log_softmax, minimum, norm, sigmoid,
                           softplus, sqrt, squeeze, take_along_axis, unsqueeze, where)
from ...functional import pow as _pow
from ...functional import sum as _sum
from ...functional._util import needs_grad, raw
from ...functional.activation import Softmax
from .._reduction import check_reduction, reduce

__all__ = ["cross_entropy", "cross_entropy_loss", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "focal_loss", "margin_ranking_loss",
           "hinge_embedding_loss", "cosine_embedding_loss", "triplet_margin_loss"]

_INF = float("inf")
_NAN = float("nan")
# PyTorch's floor for the denominator x (1 - x) of the BCE gradient.
_BCE_EPS = 1e-12
# PyTorch clamps the logarithms of BCE at -100, so that probabilities of exactly 0 or 1
# give a finite loss.
_LOG_FLOOR = -100.0


# ==== argument checks (shared with the Module forms) =================================

def check_label_smoothing(label_smoothing, name="cross_entropy"):
    """Return ``label_smoothing`` if it lies in [0, 1], else raise a ValueError."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{name}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    return label_smoothing


def check_gamma(gamma, name="focal_loss"):
    """Return ``gamma`` if it is non-negative, else raise a ValueError."""
    if not gamma >= 0:
        raise ValueError(f"{name}: gamma must be non-negative, got {gamma}")
    return gamma


def _class_axis(input, name):
    """The class axis of ``input``: 0 for one sample ``(C,)``, else 1."""
    nd = input.ndim
    if nd == 0:
        raise ValueError(f"{name}: input must have a class axis, with shape (C,), (N, C) or "
                         "(N, C, d1, ...); got a 0-d tensor")
    return 0 if nd == 1 else 1


def _without_axis(shape, axis):
    return tuple(shape[:axis]) + tuple(shape[axis + 1:])


def _check_index_target(t, input, axis, name, ignore_index=None):
    """Validate class indices ``t`` (an array) for ``input``; ignore_index is exempt."""
    expected = _without_axis(input.shape, axis)
    if t.dtype.kind not in "iu":
        if t.dtype.kind == "f" and tuple(t.shape) == expected:
            raise TypeError(f"{name}: target holds class indices (shape {expected}) but has "
                            f"dtype {t.dtype}; class indices must be integers (cast with "
                            ".astype('int64')), and class probabilities must have the "
                            f"input's shape {tuple(input.shape)}")
        raise TypeError(f"{name}: expected a target of class indices with an integer dtype, "
                        f"got dtype {t.dtype}")
    if tuple(t.shape) != expected:
        raise ValueError(f"{name}: expected a target of shape {expected} (the input's shape "
                         f"{tuple(input.shape)} without its class axis {axis}), got "
                         f"{tuple(t.shape)}")
    n_classes = input.shape[axis]
    outside = (t < 0) | (t >= n_classes)
    if ignore_index is not None:
        outside &= t != ignore_index
    if bool(outside.any()):
        bad = int(t[outside].ravel()[0])
        extra = "" if ignore_index is None else f" (or ignore_index={ignore_index})"
        raise IndexError(f"{name}: target holds the class index {bad}, outside [0, "
                         f"{n_classes}){extra}")


def _as_array(x, xp):
    """The array inside a Tensor, or ``x`` uploaded with ``xp`` (lists, tuples)."""
    x = raw(x)
    return x if hasattr(x, "dtype") else xp.asarray(x)


def _class_weight(weight, input, axis, name):
    """``weight`` as an array of the input's dtype, shaped to broadcast along ``axis``."""
    xp = get_array_module(input)
    w = _as_array(weight, xp)
    n_classes = input.shape[axis]
    if tuple(w.shape) != (n_classes,):
        raise ValueError(f"{name}: weight must have one entry per class, shape "
                         f"({n_classes},), got {tuple(w.shape)}")
    w = w.astype(input.dtype, copy=False)
    return w.reshape((n_classes,) + (1,) * (input.ndim - axis - 1))


# ==== cross-entropy and NLL ==========================================================

class _KnownSoftmax(Softmax):
    """Softmax whose value was already computed: its forward returns it as is.

    The backward is Softmax's, so a gradient built on it still differentiates
    correctly with respect to the logits.
    """

    def __init__(self, axis, p):
        self.axis = axis
        self.p = p

    def forward(self, x):
        return self.p


class SoftmaxCrossEntropy(Function):
    """``-sum_c t_c log_softmax(x)_c`` along ``axis``: the fused core of cross-entropy.

    ``t`` is a dense array (or Tensor) of target weights with ``x``'s shape: a
    one-hot row for a class index, times class weights and blended with label
    smoothing as needed. With ``total=True`` the per-sample losses are also summed
    into a scalar (cross_entropy scales ``t`` by the normaliser for a mean).

    Fused rather than composed (log_softmax, product, sum, then the reduction)
    because cross-entropy is the hot loss of classification: the forward computes
    the softmax anyway, and keeping it turns the backward into one expression,
    ``gx = gy (p sum_c t_c - t)``, with no second exponential, no scatter and two
    fewer graph nodes. That expression is made of differentiable ops on a softmax
    node of ``x``, so second derivatives still work.
    """

    def __init__(self, axis, total):
        self.axis = axis
        self.total = total

    def forward(self, x, t):
        xp = get_array_module(x, t)
        ax = self.axis
        s = x - x.max(axis=ax, keepdims=True)       # shifted: exp cannot overflow
        e = xp.exp(s)
        z = e.sum(axis=ax, keepdims=True)
        s -= xp.log(z)                                # s is now log_softmax(x)
        e /= z
        self.p = e                                    # softmax(x), kept for backward
        ts = t * s
        return -(ts.sum() if self.total else ts.sum(axis=ax))

    def backward(self, gy):
        x, t = self.inputs
        ax = self.axis
        g = gy if self.total else unsqueeze(gy, ax)   # a 0-d gy broadcasts as it is
        p = _KnownSoftmax(ax, self.p)(x)
        if needs_grad(t):
            t_sum = _sum(t, ax, keepdims=True)
        else:
            t_sum = raw(t).sum(axis=ax, keepdims=True)
        gx = g * (p * t_sum - t) if needs_grad(x) else None
        gt = -(g * log_softmax(x, ax)) if needs_grad(t) else None
        return gx, gt


class IndexCrossEntropy(Function):
    """Cross-entropy of logits ``x`` of shape ``(N, C)`` against class indices ``t``
    of shape ``(N,)``, every one in ``[0, C)``: the common case of classification.

    The loss of row ``n`` is ``log sum_c e^(x_nc) - x_(n, t_n)``; with a
    ``divisor`` the losses are summed and divided by it (``N`` for the mean, 1 for
    the sum), without one they are returned per row. The same loss as
    :class:`SoftmaxCrossEntropy` with a one-hot target, but it picks the target
    logits by index instead of multiplying by a one-hot array, and
    :func:`cross_entropy` reaches it after two range checks instead of building
    that array, a validity mask and a normaliser: per step of a small classifier
    that work cost as much as the softmax itself. Its backward is one
    :class:`IndexCrossEntropyGrad` node.
    """

    def __init__(self, divisor):
        self.divisor = divisor

    def forward(self, x, t):
        xp = get_array_module(x, t)
        s = x - x.max(axis=1, keepdims=True)          # shifted: exp cannot overflow
        e = xp.exp(s)
        z = e.sum(axis=1, keepdims=True)
        loss = xp.log(z[:, 0])
        loss -= s[xp.arange(len(t)), t]               # log_softmax(x)[n, t_n], negated
        e /= z
        self.p = e                                    # softmax(x), kept for backward
        if self.divisor is None:
            return loss
        return loss.sum() / self.divisor

    def backward(self, gy):
        x, t = self.inputs
        return IndexCrossEntropyGrad(self.p, raw(t), self.divisor)(x, gy), None


class IndexCrossEntropyGrad(Function):
    """``gx = gy (softmax(x) - onehot(t)) / divisor``: the gradient of
    :class:`IndexCrossEntropy` as one node of ``(x, gy)``.

    One node where the general path needs four (a softmax node, a one-hot
    constant, a subtraction and two products): this is the backward of the loss
    of every classification step. ``gy`` is 0-d for a summed loss, one value per
    row without a divisor. The node's own backward, written with differentiable
    ops on a softmax node of ``x``, gives second (and higher) derivatives:
    with ``G = gy / divisor`` (per row) and ``h = ggx G``,

    * ``d x = p (h - sum_c h p)``, the softmax's vector-Jacobian product;
    * ``d gy = sum ggx (p - onehot) / divisor``, over the classes (per row) or
      over everything (0-d ``gy``).
    """

    def __init__(self, p, t, divisor):
        self.p, self.t, self.divisor = p, t, divisor

    def forward(self, x, gy):
        xp = get_array_module(self.p)
        d = self.p.copy()
        d[xp.arange(len(self.t)), self.t] -= 1        # p - onehot (exact where p ~ 1)
        g = gy if self.divisor is None else gy / self.divisor
        d *= g if g.ndim == 0 else g[:, None]
        return d

    def _onehot(self):
        xp = get_array_module(self.p)
        onehot = xp.zeros_like(self.p)
        onehot[xp.arange(len(self.t)), self.t] = 1
        return onehot

    def backward(self, ggx):
        x, gy = self.inputs
        p = _KnownSoftmax(1, self.p)(x)
        per_row = self.divisor is None
        g = gy if per_row else gy / self.divisor
        if per_row:
            g = unsqueeze(g, 1)
        gx = ggy = None
        if needs_grad(x):
            h = ggx * g
            gx = p * (h - _sum(h * p, 1, keepdims=True))
        if needs_grad(gy):
            ggy = _sum(ggx * (p - self._onehot()), 1 if per_row else None)
            if not per_row:
                ggy = ggy / self.divisor
        return gx, ggy


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy between logits and class indices or class probabilities.

    For a class-index target :math:`y_n`, with class weights :math:`w` (all ones by
    default), label smoothing :math:`\\varepsilon` and ``C`` classes:

    .. math::

        \\ell_n = -(1 - \\varepsilon)\\, w_{y_n} \\log p_{n, y_n}
                  - \\frac{\\varepsilon}{C} \\sum_c w_c \\log p_{n, c},
        \\qquad p_n = \\mathrm{softmax}(x_n)

    and :math:`\\ell_n = 0` where :math:`y_n` equals ``ignore_index``. For a
    probability target :math:`t_n` (a float tensor of the input's shape), with
    :math:`t' = (1 - \\varepsilon) t + \\varepsilon / C`:

    .. math:: \\ell_n = -\\sum_c w_c\\, t'_{n, c} \\log p_{n, c}

    Parameters
    ----------
    input : Tensor
        Unnormalised scores (logits) of shape ``(C,)``, ``(N, C)`` or
        ``(N, C, d1, ..., dk)``: the classes are on axis 1 (axis 0 for one sample).
    target : Tensor or array
        Either class indices of an integer dtype and the input's shape without its
        class axis (``()``, ``(N,)`` or ``(N, d1, ..., dk)``), with values in
        ``[0, C)`` or equal to ``ignore_index``; or class probabilities of a float
        dtype and the input's shape.
    weight : Tensor or array, optional
        A weight per class, shape ``(C,)``.
    ignore_index : int, default -100
        Class-index targets equal to it contribute nothing, neither to the loss nor
        to the normaliser of ``'mean'``. Not used with probability targets.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns :math:`\\ell` of shape ``(N, d1, ..., dk)``. ``'mean'``
        divides the sum by :math:`\\sum_n w_{y_n}` over the non-ignored targets
        (the count of them without ``weight``) for class indices, and by the number
        of samples ``N d1 ... dk`` for probabilities, as PyTorch does.
    label_smoothing : float, default 0.0
        :math:`\\varepsilon \\in [0, 1]`: the share of the target spread evenly over
        all classes.

    Returns
    -------
    Tensor

    Raises
    ------
    TypeError
        When class indices come with a float dtype (or the target dtype fits
        neither form).
    ValueError
        For a target or ``weight`` of the wrong shape, a ``label_smoothing`` outside
        ``[0, 1]`` or an unknown ``reduction``.
    IndexError
        When a class index lies outside ``[0, C)`` and is not ``ignore_index``.

    Notes
    -----
    The log-softmax is computed with the maximum subtracted, so logits of any
    finite size (``1e4`` included) give finite losses and gradients. Logits of
    ``-inf`` are not supported (mask with a large negative number instead). With
    every target ignored, ``'mean'`` gives NaN (0 / 0) with a zero gradient, as in
    PyTorch.
    PyTorch equivalent: ``torch.nn.functional.cross_entropy``.

    Examples
    --------
    >>> import numpy as np, neural_arch as na
    >>> logits = na.Tensor([[2.0, 0.0, 0.0]])
    >>> round(na.losses.functional.cross_entropy(logits, np.array([0])).item(), 4)
    0.2395
    """
    check_reduction(reduction)
    check_label_smoothing(label_smoothing)
    name = "cross_entropy"
    axis = _class_axis(input, name)
    xp = get_array_module(input)
    n_classes = input.shape[axis]
    w = None if weight is None else _class_weight(weight, input, axis, name)
    eps = label_smoothing
    t = _as_array(target, xp)

    if t.dtype.kind == "f" and tuple(t.shape) == tuple(input.shape):
        # Class probabilities: the target itself is the dense weight (a Tensor stays one,
        # so a target that requires grad gets its gradient).
        dense = target if needs_grad(target) else t
        if eps > 0:
            dense = dense * (1.0 - eps) + eps / n_classes
        if w is not None:
            dense = dense * w
        if reduction == "mean":               # the mean over the N d1 ... dk samples
            dense = dense * (n_classes / input.size)
        return SoftmaxCrossEntropy(axis, reduction != "none")(input, dense)

    if (input.ndim == 2 and w is None and eps == 0 and config.autocast is None
            and t.dtype.kind in "iu"
            and t.shape == (input.shape[0],) and t.size
            and not 0 <= ignore_index < n_classes
            and 0 <= t.min() and t.max() < n_classes):
        # The common case (a batch of logits, class indices all in range, no class
        # weights, no smoothing): one fused node, no one-hot array. The mean is then
        # over all N rows, since none of them can be ignored. (Under autocast the
        # general path runs: its node is the one autocast's float32 policy lists.)
        divisor = {"mean": t.size, "sum": 1, "none": None}[reduction]
        return IndexCrossEntropy(divisor)(input, t)
    _check_index_target(t, input, axis, name, ignore_index)
    valid = t != ignore_index
    classes = xp.arange(n_classes).reshape((n_classes,) + (1,) * (input.ndim - axis - 1))
    dense = (xp.expand_dims(t, axis) == classes).astype(input.dtype)   # one-hot rows
    if eps > 0:
        dense *= 1.0 - eps
        dense += eps / n_classes
    if w is not None:
        dense *= w
    if eps > 0 or 0 <= ignore_index < n_classes:
        # Otherwise the one-hot rows of ignored targets are already all zero.
        dense *= xp.expand_dims(valid, axis)
    if reduction == "mean":
        total = _weight_total(w, t, valid, input.dtype, xp)
        if not bool(total > 0):
            # Nothing to average (every target ignored): NaN as in PyTorch, with its
            # zero gradient (the target rows are all zero).
            return SoftmaxCrossEntropy(axis, True)(input, dense) + _NAN
        dense /= total
    # The reduction happens inside the fused node (see SoftmaxCrossEntropy): summing
    # the losses of the scaled targets gives PyTorch's weighted mean.
    return SoftmaxCrossEntropy(axis, reduction != "none")(input, dense)


cross_entropy_loss = cross_entropy   # the top-level spelling na.cross_entropy_loss


def _weight_total(w, t, valid, dtype, xp):
    """The normaliser of a 'mean' over class indices: sum of w[y] over valid targets."""
    if w is None:
        return valid.sum(dtype=dtype)
    return (w.reshape(-1)[xp.where(valid, t, 0)] * valid).sum(dtype=dtype)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of class indices, given log-probabilities.

    .. math:: \\ell_n = -w_{y_n}\\, x_{n, y_n}

    and :math:`\\ell_n = 0` where :math:`y_n` equals ``ignore_index``.

    Parameters
    ----------
    input : Tensor
        Log-probabilities (e.g. from :func:`~neural_arch.functional.log_softmax`) of
        shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``, classes on axis 1.
    target : Tensor or array
        Class indices of an integer dtype and shape ``()``, ``(N,)`` or
        ``(N, d1, ..., dk)``, with values in ``[0, C)`` or equal to ``ignore_index``.
    weight : Tensor or array, optional
        A weight per class, shape ``(C,)``.
    ignore_index : int, default -100
        Targets equal to it contribute nothing, neither to the loss nor to the
        normaliser of ``'mean'``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'mean'`` divides the sum by :math:`\\sum_n w_{y_n}` over the non-ignored
        targets (their count without ``weight``); with every target ignored it is
        NaN, with a zero gradient, as in PyTorch.

    Returns
    -------
    Tensor

    Raises
    ------
    TypeError, ValueError, IndexError
        As :func:`cross_entropy` for class-index targets.

    Notes
    -----
    ``cross_entropy(x, y)`` equals ``nll_loss(log_softmax(x, axis=1), y)``. Only the
    picked entries are read, so ``-inf`` log-probabilities of other classes are
    harmless. PyTorch equivalent: ``torch.nn.functional.nll_loss``.
    """
    check_reduction(reduction)
    name = "nll_loss"
    axis = _class_axis(input, name)
    xp = get_array_module(input)
    w = None if weight is None else _class_weight(weight, input, axis, name)
    t = _as_array(target, xp)
    _check_index_target(t, input, axis, name, ignore_index)
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)           # ignored targets read class 0, masked below
    picked = squeeze(take_along_axis(input, xp.expand_dims(safe, axis), axis), axis)
    if w is not None:
        picked = picked * w.reshape(-1)[safe]
    loss = where(valid, -picked, 0.0)
    if reduction != "mean":
        return reduce(loss, reduction)
    total = _weight_total(w, t, valid, input.dtype, xp)
    if not bool(total > 0):
        # Nothing to average (every target ignored): NaN with a zero gradient, as in
        # PyTorch, and without dividing by zero.
        return reduce(loss, "sum") + _NAN
    return reduce(loss, "sum") / total


# ==== binary cross-entropy ============================================================

def _same_shape(input, target, name):
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{name}: target must have the input's shape {tuple(input.shape)}, "
                         f"got {tuple(target.shape)}")


class BinaryCrossEntropy(Function):
    """``-(t log x + (1 - t) log(1 - x))`` with each log clamped at -100 (PyTorch's rule)."""

    def forward(self, x, t):
        xp = get_array_module(x, t)
        # The logs are taken of values floored at the smallest positive number, so
        # log(0) (and its warning) never happens; the -100 clamp then applies.
        tiny = np.finfo(x.dtype).smallest_subnormal
        log_x = xp.maximum(xp.log(xp.maximum(x, tiny)), _LOG_FLOOR)
        log_1mx = xp.maximum(xp.log(xp.maximum(1 - x, tiny)), _LOG_FLOOR)
        return -(t * log_x + (1 - t) * log_1mx)

    def backward(self, gy):
        # PyTorch's gradient, (x - t) / max(x (1 - x), 1e-12): finite at x = 0 and 1,
        # where the exact derivative of the clamped loss is not.
        x, t = self.inputs
        gx = gt = None
        if needs_grad(x):
            gx = gy * (x - t) / clip(x * (1 - x), _BCE_EPS)
        if needs_grad(t):
            tiny = float(np.finfo(x.dtype).smallest_subnormal)
            gt = gy * (clip(log(clip(1 - x, tiny)), _LOG_FLOOR)
                       - clip(log(clip(x, tiny)), _LOG_FLOOR))
        return gx, gt


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy between probabilities and binary (or soft) targets.

    .. math:: \\ell_i = -w_i \\left[ y_i \\log x_i + (1 - y_i) \\log(1 - x_i) \\right]

    with each logarithm clamped below at -100, so probabilities of exactly 0 or 1
    give a finite loss (PyTorch's convention).

    Parameters
    ----------
    input : Tensor
        Probabilities ``x`` in ``[0, 1]``, any shape.
    target : Tensor or array
        Targets ``y`` in ``[0, 1]``, the input's shape.
    weight : Tensor or array, optional
        Rescaling weights, broadcastable against the input.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise losses.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        When the target's shape differs from the input's, or an input lies outside
        ``[0, 1]`` (or is NaN).

    Notes
    -----
    The gradient is PyTorch's :math:`w (x - y) / \\max(x (1 - x), 10^{-12})`.
    Prefer :func:`binary_cross_entropy_with_logits` on logits: it is more accurate
    and needs no clamp. PyTorch equivalent:
    ``torch.nn.functional.binary_cross_entropy``.
    """
    check_reduction(reduction)
    name = "binary_cross_entropy"
    y = _as_array(target, get_array_module(input))
    _same_shape(input, y, name)
    x = raw(input)
    if not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError(f"{name}: every element of input must be a probability in [0, 1] "
                         "(apply sigmoid to logits, or use binary_cross_entropy_with_logits)")
    loss = BinaryCrossEntropy()(input, target if needs_grad(target) else y)
    if weight is not None:
        loss = loss * weight
    return reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Binary cross-entropy on logits, computed without overflow.

    With :math:`\\sigma` the sigmoid and positive-class weight :math:`p_c`:

    .. math::

        \\ell_i = -w_i \\left[ p_c\\, y_i \\log \\sigma(x_i)
                              + (1 - y_i) \\log(1 - \\sigma(x_i)) \\right]
                = w_i \\left[ (1 - y_i)\\, x_i
                              + (1 + (p_c - 1) y_i) \\log(1 + e^{-x_i}) \\right]

    Parameters
    ----------
    input : Tensor
        Logits ``x``, any shape.
    target : Tensor or array
        Targets ``y`` in ``[0, 1]``, the input's shape.
    weight : Tensor or array, optional
        Rescaling weights, broadcastable against the input.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise losses.
    pos_weight : Tensor or array, optional
        Weight of the positive term, broadcastable against the input (typically one
        per class along the last axis); above 1 it raises recall.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        When the target's shape differs from the input's.

    Notes
    -----
    The right-hand form uses :math:`-\\log\\sigma(x) = \\log(1 + e^{-x})`, evaluated
    as a softplus that never overflows, so logits of ``+-1e4`` give finite losses
    and gradients. PyTorch equivalent:
    ``torch.nn.functional.binary_cross_entropy_with_logits``.
    """
    check_reduction(reduction)
    y = _as_array(target, get_array_module(input))
    _same_shape(input, y, "binary_cross_entropy_with_logits")
    if needs_grad(target):
        y = target
    neg_log_sigmoid = softplus(-input, threshold=_INF)        # -log sigma(x), exact
    if pos_weight is None:
        loss = input * (1 - y) + neg_log_sigmoid
    else:
        loss = input * (1 - y) + neg_log_sigmoid * (1 + (pos_weight - 1) * y)
    if weight is not None:
        loss = loss * weight
    return reduce(loss, reduction)


# ==== KL divergence =====================================================================

def _xlogx(t):
    """``t log t`` with the limit 0 at ``t = 0`` (and no log(0) evaluated)."""
    pos = raw(t) > 0
    return where(pos, t * log(where(pos, t, 1.0)), 0.0)


def kl_div(input, target, reduction="mean", log_target=False):
    """Kullback-Leibler divergence of the target from the input distribution.

    With ``input`` holding log-probabilities :math:`x = \\log q`:

    .. math:: \\ell_i = y_i (\\log y_i - x_i)

    (0 where :math:`y_i = 0`), or with ``log_target=True`` (``target`` holding
    :math:`\\log y`): :math:`\\ell_i = e^{y_i} (y_i - x_i)`. Summed over a whole
    distribution this is :math:`KL(y \\,\\|\\, q)`.

    Parameters
    ----------
    input : Tensor
        Log-probabilities, any shape.
    target : Tensor or array
        Probabilities (or log-probabilities with ``log_target=True``),
        broadcastable against the input.
    reduction : {'mean', 'batchmean', 'sum', 'none'}, default 'mean'
        ``'batchmean'`` divides the sum by the batch size ``input.shape[0]``, which
        gives the true KL divergence per sample; ``'mean'`` divides by the number of
        elements (PyTorch's default too, though rarely what is meant).
    log_target : bool, default False
        Whether ``target`` holds log-probabilities.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        For an unknown ``reduction``.

    Notes
    -----
    PyTorch equivalent: ``torch.nn.functional.kl_div``.
    """
    if reduction != "batchmean":
        check_reduction(reduction)
    if log_target:
        loss = exp(target) * (target - input)
    else:
        loss = _xlogx(target) - target * input
    if reduction == "batchmean":
        total = reduce(loss, "sum")
        return total / input.shape[0] if input.ndim else total
    return reduce(loss, reduction)


# ==== focal loss ========================================================================

def focal_loss(input, target, alpha=0.25, gamma=2.0, reduction="mean"):
    """Focal loss (Lin et al., 2017), binary or multi-class, from logits.

    It scales the cross-entropy of each element by :math:`(1 - p_t)^\\gamma`, where
    :math:`p_t` is the predicted probability of the true class, so that confidently
    right predictions contribute little and training focuses on the hard ones.

    **Binary** (one logit per element; torchvision's ``sigmoid_focal_loss``):

    .. math::

        \\ell_i = \\alpha_t\\, (1 - p_t)^\\gamma\\,
                  \\mathrm{BCE}(x_i, y_i), \\qquad
        p_t = p\\, y + (1 - p)(1 - y), \\quad
        \\alpha_t = \\alpha\\, y + (1 - \\alpha)(1 - y), \\quad p = \\sigma(x_i)

    **Multi-class** (logits over ``C`` classes and integer class indices):

    .. math:: \\ell_n = -\\alpha_{y_n}\\, (1 - p_{n, y_n})^\\gamma \\log p_{n, y_n},
              \\qquad p_n = \\mathrm{softmax}(x_n)

    where :math:`\\alpha_{y_n}` is ``alpha`` itself for a number, or
    ``alpha[y_n]`` for a per-class sequence.

    Parameters
    ----------
    input : Tensor
        Logits. Binary: any shape, or ``(N, 1, d1, ...)``. Multi-class: ``(N, C)``,
        ``(N, C, d1, ...)`` or ``(C,)``, classes on axis 1 (axis 0 for ``(C,)``).
    target : Tensor or array
        Which form applies is read off the shapes:

        * the input's shape: binary targets in ``[0, 1]`` (any dtype; soft labels
          allowed);
        * the input's shape without its class axis, with one class (``C = 1``):
          binary targets for that single channel (e.g. ``(N, H, W)`` masks for
          ``(N, 1, H, W)`` logits);
        * the input's shape without its class axis, with ``C > 1`` classes: class
          indices of an integer dtype in ``[0, C)``.
    alpha : float, sequence of float or None, default 0.25
        Binary: the weight of the positive class (negatives get ``1 - alpha``).
        Multi-class: a factor for every class, or one factor per class. ``None`` or
        a negative number switches the weighting off (torchvision uses ``-1``).
    gamma : float, default 2.0
        The focusing exponent, non-negative; ``gamma = 0`` gives the (alpha-weighted)
        cross-entropy.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise losses. (torchvision's ``sigmoid_focal_loss``
        defaults to ``'none'``.)

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        For a negative ``gamma``, a target shape that fits neither form, or a
        per-class ``alpha`` of the wrong length.
    TypeError
        For multi-class targets that are not integers.
    IndexError
        For class indices outside ``[0, C)``.

    Notes
    -----
    ``1 - p_t`` is computed directly (as :math:`\\sigma(-x)` or
    :math:`-\\mathrm{expm1}(\\log p)`) rather than by subtraction, so it keeps its
    precision for confident predictions. PyTorch itself has no focal loss.

    References
    ----------
    T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, "Focal Loss for Dense Object
    Detection", ICCV 2017 (arXiv:1708.02002).
    """
    check_reduction(reduction)
    check_gamma(gamma)
    name = "focal_loss"
    xp = get_array_module(input)
    t = _as_array(target, xp)
    weighted = alpha is not None and (not isinstance(alpha, Real) or alpha >= 0)
    if tuple(t.shape) == tuple(input.shape):
        return reduce(_binary_focal(input, target, t, alpha if weighted else None, gamma),
                      reduction)
    axis = _class_axis(input, name)
    if tuple(t.shape) != _without_axis(input.shape, axis):
        raise ValueError(f"{name}: target of shape {tuple(t.shape)} fits neither binary "
                         f"targets (the input's shape {tuple(input.shape)}) nor class "
                         "indices (the input's shape without its class axis, "
                         f"{_without_axis(input.shape, axis)})")
    if input.shape[axis] == 1:      # one channel of logits: binary targets per pixel
        target = unsqueeze(target, axis) if needs_grad(target) else xp.expand_dims(t, axis)
        return reduce(squeeze(_binary_focal(input, target, raw(target),
                                            alpha if weighted else None, gamma), axis),
                      reduction)
    _check_index_target(t, input, axis, name)
    logp = log_softmax(input, axis)
    logp_y = squeeze(take_along_axis(logp, xp.expand_dims(t, axis), axis), axis)
    loss = -logp_y
    if gamma != 0:
        loss = loss * _pow(-expm1(logp_y), gamma)             # (1 - p_y)^gamma
    if weighted:
        if isinstance(alpha, Real):
            loss = loss * alpha
        else:
            a = _as_array(alpha, xp)
            if tuple(a.shape) != (input.shape[axis],):
                raise ValueError(f"{name}: a per-class alpha needs {input.shape[axis]} "
                                 f"entries, got shape {tuple(a.shape)}")
            loss = loss * a.astype(input.dtype, copy=False)[t]
    return reduce(loss, reduction)


def _binary_focal(x, target, t, alpha, gamma):
    """Elementwise binary focal loss (torchvision semantics); ``t`` is the raw target."""
    if alpha is not None and not isinstance(alpha, Real):
        raise ValueError("focal_loss: binary targets take one number as alpha (the weight "
                         f"of the positive class), got {alpha!r}")
    if not needs_grad(target):
        target = t if t.dtype == x.dtype else t.astype(x.dtype)
    loss = binary_cross_entropy_with_logits(x, target, reduction="none")
    if gamma != 0:
        # 1 - p_t = p (1 - y) + (1 - p) y, with 1 - p taken as sigmoid(-x).
        one_minus_pt = sigmoid(x) * (1 - target) + sigmoid(-x) * target
        loss = loss * _pow(one_minus_pt, gamma)
    if alpha is not None:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss


# ==== margin and embedding losses ====================================================

def _broadcast_check(name, **tensors):
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    try:
        np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{k} {s}" for k, s in shapes.items())
        raise ValueError(f"{name}: the shapes of {listed} cannot be broadcast "
                         "together") from None


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """Margin ranking loss: ``input1`` should rank above ``input2`` where ``target`` is 1.

    .. math:: \\ell_i = \\max(0,\\ -y_i (x_{1,i} - x_{2,i}) + \\mathrm{margin})

    Parameters
    ----------
    input1, input2 : Tensor
        Scores to compare, broadcastable together.
    target : Tensor or array
        ``1`` where ``input1`` should be larger, ``-1`` where ``input2`` should.
    margin : float, default 0.0
        How far apart the two scores must be to cost nothing.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise losses.

    Returns
    -------
    Tensor

    Notes
    -----
    PyTorch equivalent: ``torch.nn.functional.margin_ranking_loss``.
    """
    check_reduction(reduction)
    y = _as_array(target, get_array_module(input1))
    _broadcast_check("margin_ranking_loss", input1=input1, input2=input2, target=y)
    return reduce(clip((input1 - input2) * -y + margin, 0.0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, reduction="mean"):
    """Hinge embedding loss, for inputs that measure dissimilarity (e.g. distances).

    .. math::

        \\ell_i = \\begin{cases} x_i & y_i = 1 \\\\
                                 \\max(0, \\mathrm{margin} - x_i) & y_i = -1 \\end{cases}

    Parameters
    ----------
    input : Tensor
        The dissimilarities ``x``.
    target : Tensor or array
        ``1`` (similar pair) or ``-1`` (dissimilar pair), broadcastable against the
        input. Other values get both terms, as in PyTorch.
    margin : float, default 1.0
        Dissimilar pairs farther apart than this cost nothing.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise losses.

    Returns
    -------
    Tensor

    Notes
    -----
    PyTorch equivalent: ``torch.nn.functional.hinge_embedding_loss``.
    """
    check_reduction(reduction)
    y = _as_array(target, get_array_module(input))
    _broadcast_check("hinge_embedding_loss", input=input, target=y)
    loss = (where(y != 1, clip(margin - input, 0.0), 0.0)
            + where(y != -1, input, 0.0))
    return reduce(loss, reduction)


# PyTorch's guard against zero-length vectors in the cosine similarity.
_COSINE_EPS = 1e-12


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """Cosine embedding loss: pull similar pairs together, push dissimilar ones apart.

    .. math::

        \\ell_n = \\begin{cases} 1 - \\cos(a_n, b_n) & y_n = 1 \\\\
                                 \\max(0, \\cos(a_n, b_n) - \\mathrm{margin}) & y_n = -1
                  \\end{cases}

    with :math:`\\cos(a, b) = a \\cdot b / \\sqrt{(\\|a\\|^2 + \\epsilon)
    (\\|b\\|^2 + \\epsilon)}`, :math:`\\epsilon = 10^{-12}` (PyTorch's form).

    Parameters
    ----------
    input1, input2 : Tensor
        Embeddings of shape ``(N, D)``, or ``(D,)`` for one pair.
    target : Tensor or array
        ``1`` or ``-1`` per pair: shape ``(N,)``, or ``()`` for one pair.
    margin : float, default 0.0
        Dissimilar pairs with a cosine below it cost nothing; between -1 and 1
        (0 to 0.5 is typical).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the per-pair losses.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        For inputs that are not 1-D or 2-D, or a target of the wrong shape.

    Notes
    -----
    PyTorch equivalent: ``torch.nn.functional.cosine_embedding_loss``.
    """
    check_reduction(reduction)
    name = "cosine_embedding_loss"
    y = _as_array(target, get_array_module(input1))
    if input1.ndim not in (1, 2) or tuple(input1.shape) != tuple(input2.shape):
        raise ValueError(f"{name}: input1 and input2 must share one shape, (N, D) or (D,); "
                         f"got {tuple(input1.shape)} and {tuple(input2.shape)}")
    if tuple(y.shape) != tuple(input1.shape[:-1]):
        raise ValueError(f"{name}: expected a target of shape {tuple(input1.shape[:-1])} "
                         f"(one label per pair), got {tuple(y.shape)}")
    axis = input1.ndim - 1
    dot = _sum(input1 * input2, axis)
    sq1 = _sum(input1 * input1, axis) + _COSINE_EPS
    sq2 = _sum(input2 * input2, axis) + _COSINE_EPS
    cos = dot / sqrt(sq1 * sq2)
    loss = where(y == 1, 1 - cos, 0.0) + where(y == -1, clip(cos - margin, 0.0), 0.0)
    return reduce(loss, reduction)


def _pairwise_distance(a, b, p, eps):
    """``||a - b + eps||_p`` along the last axis (PyTorch's pairwise_distance)."""
    return norm(a - b + eps, ord=p, axis=-1)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6,
                        swap=False, reduction="mean"):
    """Triplet margin loss: the anchor should be nearer the positive than the negative.

    .. math:: \\ell_n = \\max(0,\\ d(a_n, p_n) - d(a_n, n_n) + \\mathrm{margin}),
              \\qquad d(u, v) = \\|u - v + \\epsilon\\|_p

    Parameters
    ----------
    anchor, positive, negative : Tensor
        Embeddings of shape ``(N, D)``, or ``(D,)`` for one triplet.
    margin : float, default 1.0
        The required gap between the two distances.
    p : float, default 2.0
        The norm degree of the distance.
    eps : float, default 1e-6
        Added to the difference before taking the norm, which keeps the gradient
        finite when two embeddings coincide.
    swap : bool, default False
        Use :math:`\\min(d(a, n), d(p, n))` as the negative distance (the "distance
        swap" of Balntas et al., BMVC 2016).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the per-triplet losses.

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        When the three inputs differ in number of dims or are not 1-D or 2-D.

    Notes
    -----
    PyTorch equivalent: ``torch.nn.functional.triplet_margin_loss``.
    """
    check_reduction(reduction)
    dims = (anchor.ndim, positive.ndim, negative.ndim)
    if len(set(dims)) != 1 or dims[0] not in (1, 2):
        raise ValueError("triplet_margin_loss: anchor, positive and negative must all be "
                         f"(N, D) or all (D,); got shapes {tuple(anchor.shape)}, "
                         f"{tuple(positive.shape)} and {tuple(negative.shape)}")
    d_pos = _pairwise_distance(anchor, positive, p, eps)
    d_neg = _pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = minimum(d_neg, _pairwise_distance(positive, negative, p, eps))
    return reduce(clip(d_pos - d_neg + margin, 0.0), reduction)
