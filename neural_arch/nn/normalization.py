"""Normalisation layers: BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm.

Parameter and buffer names (``weight``, ``bias``, ``running_mean``,
``running_var``, ``num_batches_tracked``) and their order are PyTorch's, so a
torch model's state_dict loads directly.
"""
from __future__ import annotations

import numbers

from .. import functional as F
from ..core import creation
from . import init
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"]


def _check_positive_int(value, what, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {what} must be a positive int, got {value!r}")
    return int(value)


def _check_eps(eps, owner):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or eps < 0:
        raise ValueError(f"{owner}: eps must be a non-negative number, got {eps!r}")
    return eps


def _param(shape, fill, dtype, device):
    return Parameter(creation.full(shape, fill, dtype=dtype, device=device))


def _reset_affine(module):
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _BatchNorm(Module):
    """Shared body of BatchNorm1d/2d; subclasses say which input ranks they take."""

    _ranks = ()
    _layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        owner = type(self).__name__
        self.num_features = _check_positive_int(num_features, "num_features", owner)
        self.eps = _check_eps(eps, owner)
        if momentum is not None and (isinstance(momentum, bool)
                                     or not isinstance(momentum, numbers.Real)
                                     or not 0 <= momentum <= 1):
            raise ValueError(f"{owner}: momentum must be a number in [0, 1] or None "
                             f"(cumulative average), got {momentum!r}")
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        c = self.num_features
        self.register_parameter("weight", _param((c,), 1.0, dtype, device)
                                if self.affine else None)
        self.register_parameter("bias", _param((c,), 0.0, dtype, device)
                                if self.affine and bias else None)
        if self.track_running_stats:
            self.register_buffer("running_mean", creation.zeros(c, dtype=dtype, device=device))
            self.register_buffer("running_var", creation.ones(c, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked",
                                 creation.zeros((), dtype="int64", device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self):
        """Reset the running statistics, and the affine parameters to 1 and 0."""
        self.reset_running_stats()
        _reset_affine(self)

    def forward(self, input):
        if input.ndim not in self._ranks:
            raise ValueError(f"{type(self).__name__} expects {self._layout} input, got shape "
                             f"{tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects "
                             f"{self.num_features} channels on dim 1, got shape "
                             f"{tuple(input.shape)}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:      # cumulative moving average
                factor = 1.0 / int(self.num_batches_tracked.data)
        # Batch statistics in training, and in eval when no running ones are kept.
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None,
                            self.running_var if track else None, self.weight, self.bias,
                            use_batch, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` inputs, per channel ``C``.

    In training mode the batch mean and (biased) variance normalise the input and
    update the running estimates; in eval mode the running estimates are used.
    See :func:`neural_arch.functional.batch_norm` for the formulas.

    Parameters
    ----------
    num_features : int
        The number of channels ``C``.
    eps : float, default 1e-5
        Added to the variance.
    momentum : float or None, default 0.1
        Weight of each new batch in the running averages; None gives the plain
        cumulative average of all batches seen.
    affine : bool, default True
        Learn a per-channel scale ``weight`` (starts at 1) and shift ``bias`` (0).
    track_running_stats : bool, default True
        Keep the buffers ``running_mean``, ``running_var`` and
        ``num_batches_tracked``; without them batch statistics are used in eval
        mode too.
    device, dtype : optional
        Where and in which float dtype parameters and buffers are made.
    bias : bool, default True
        (Keyword only.) With ``affine``, also learn the shift; False keeps only
        the scale, as PyTorch's ``bias=False``.
    """

    _ranks = (2, 3)
    _layout = "2-d (N, C) or 3-d (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` inputs, per channel ``C``.

    The same as :class:`BatchNorm1d` (see it for the parameters), with the
    statistics taken over the batch and both spatial dims.
    """

    _ranks = (4,)
    _layout = "4-d (N, C, H, W)"


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` dims of each sample.

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The trailing shape to normalise over.
    eps : float, default 1e-5
    elementwise_affine : bool, default True
        Learn an elementwise ``weight`` (starts at 1) of shape ``normalized_shape``.
    bias : bool, default True
        With ``elementwise_affine``, also learn an elementwise ``bias`` (starts at 0).
    device, dtype : optional
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        ns = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) \
            else tuple(normalized_shape)
        for n in ns:
            _check_positive_int(n, "every entry of normalized_shape", "LayerNorm")
        if not ns:
            raise ValueError("LayerNorm: normalized_shape must name at least one dim")
        self.normalized_shape = tuple(int(n) for n in ns)
        self.eps = _check_eps(eps, "LayerNorm")
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight = _param(self.normalized_shape, 1.0, dtype, device)
            if bias:
                self.bias = _param(self.normalized_shape, 0.0, dtype, device)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self):
        """Weight 1 and bias 0."""
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalisation: per sample, over groups of ``num_channels / num_groups`` channels.

    Parameters
    ----------
    num_groups : int
        Must divide ``num_channels``.
    num_channels : int
        The number of channels ``C`` of the ``(N, C, *)`` input.
    eps : float, default 1e-5
    affine : bool, default True
        Learn a per-channel ``weight`` (starts at 1) and ``bias`` (starts at 0).
    device, dtype : optional
    bias : bool, default True
        (Keyword only.) With ``affine``, also learn the shift.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        self.num_groups = _check_positive_int(num_groups, "num_groups", "GroupNorm")
        self.num_channels = _check_positive_int(num_channels, "num_channels", "GroupNorm")
        if self.num_channels % self.num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.eps = _check_eps(eps, "GroupNorm")
        self.affine = bool(affine)
        c = self.num_channels
        self.register_parameter("weight", _param((c,), 1.0, dtype, device)
                                if self.affine else None)
        self.register_parameter("bias", _param((c,), 0.0, dtype, device)
                                if self.affine and bias else None)

    def reset_parameters(self):
        """Weight 1 and bias 0."""
        _reset_affine(self)

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}) expects an "
                             f"input of shape (N, {self.num_channels}, *), got shape "
                             f"{tuple(input.shape)}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")
