"""Pooling layers: MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d (as ``torch.nn``).

The layers hold their settings and call :mod:`neural_arch.functional.pool`;
the arguments are checked when the layer is built, so a bad kernel size fails
at construction rather than at the first batch.
"""
from __future__ import annotations

from .. import functional as F
from ..functional.conv import spatial_args
from ..functional.pool import adaptive_output_size
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d"]


def _check(owner, nd, kernel_size, stride, padding, dilation=1):
    """Validate pooling arguments (the values are kept as given, as PyTorch keeps them)."""
    kernel = spatial_args(kernel_size, nd, "kernel_size", owner, 1)
    if stride is not None:
        spatial_args(stride, nd, "stride", owner, 1)
    pad = spatial_args(padding, nd, "padding", owner, 0)
    spatial_args(dilation, nd, "dilation", owner, 1)
    if any(p > k // 2 for p, k in zip(pad, kernel)):
        raise ValueError(f"{owner}: padding must be at most half the kernel size, got "
                         f"padding {padding!r} for kernel_size {kernel_size!r}")


class _MaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        _check(type(self).__name__, self._nd, kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = bool(return_indices)
        self.ceil_mode = bool(ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling layer; see :func:`neural_arch.functional.max_pool1d`."""

    _nd = 1

    def forward(self, input):
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling layer, as ``torch.nn.MaxPool2d``.

    See :func:`neural_arch.functional.max_pool2d`.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        The kernel size when None.
    padding : int or (int, int), default 0
        At most half the kernel size.
    dilation : int or (int, int), default 1
    return_indices : bool, default False
        Also return the flat positions of the maxima.
    ceil_mode : bool, default False
    """

    _nd = 2

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool1d(Module):
    """1-D average pooling layer, as ``torch.nn.AvgPool1d``.

    Parameters are as for :class:`AvgPool2d` (without ``divisor_override``); as in
    PyTorch, they are stored as 1-tuples.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        _check("AvgPool1d", 1, kernel_size, stride, padding)
        self.kernel_size = spatial_args(kernel_size, 1, "kernel_size", "AvgPool1d", 1)
        self.stride = self.kernel_size if stride is None else \
            spatial_args(stride, 1, "stride", "AvgPool1d", 1)
        self.padding = spatial_args(padding, 1, "padding", "AvgPool1d", 0)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """2-D average pooling layer, as ``torch.nn.AvgPool2d``.

    See :func:`neural_arch.functional.avg_pool2d`.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        The kernel size when None.
    padding : int or (int, int), default 0
        At most half the kernel size.
    ceil_mode : bool, default False
    count_include_pad : bool, default True
        Count padded zeros in each window's divisor.
    divisor_override : int, optional
        Divide every window's sum by this number instead.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        _check("AvgPool2d", 2, kernel_size, stride, padding)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptiveAvgPoolNd(Module):
    _nd = 2

    def __init__(self, output_size):
        super().__init__()
        # Validated against a stand-in input size (None entries are allowed).
        adaptive_output_size(output_size, (1,) * self._nd, type(self).__name__)
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-D adaptive average pooling to ``output_size`` positions, as in PyTorch."""

    _nd = 1

    def forward(self, input):
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling to a fixed ``(H_out, W_out)``, as ``torch.nn.AdaptiveAvgPool2d``.

    See :func:`neural_arch.functional.adaptive_avg_pool2d`.

    Parameters
    ----------
    output_size : int or (int or None, int or None)
        None keeps that input size.
    """

    _nd = 2

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)
