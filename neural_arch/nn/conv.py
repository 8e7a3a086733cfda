"""Convolution layers: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d (as ``torch.nn``)."""
from __future__ import annotations

import math
import numbers

from .. import functional as F
from ..core import creation
from ..functional.conv import conv_pads, spatial_args
from . import init
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _channels(value, what, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{owner}: {what} must be a positive int, got {value!r}")
    return int(value)


class _ConvNd(Module):
    """What the convolution layers share: arguments, parameters, initialisation, repr."""

    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 output_padding, groups, bias, padding_mode, device, dtype):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        self.in_channels = _channels(in_channels, "in_channels", name)
        self.out_channels = _channels(out_channels, "out_channels", name)
        self.groups = _channels(groups, "groups", name)
        for what, n in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if n % self.groups:
                raise ValueError(f"{name}: {what} ({n}) must be divisible by groups "
                                 f"({self.groups})")
        self.kernel_size = spatial_args(kernel_size, nd, "kernel_size", name, 1)
        self.stride = spatial_args(stride, nd, "stride", name, 1)
        self.dilation = spatial_args(dilation, nd, "dilation", name, 1)
        if isinstance(padding, str):
            # Checked now (unknown strings, 'same' with a stride) rather than at forward.
            conv_pads(padding, self.kernel_size, self.stride, self.dilation, name)
            self.padding = padding
        else:
            self.padding = spatial_args(padding, nd, "padding", name, 0)
        self.output_padding = spatial_args(output_padding, nd, "output_padding", name, 0)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {list(_PADDING_MODES)}, "
                             f"got {padding_mode!r}")
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(creation.empty(shape, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(creation.empty((self.out_channels,), dtype=dtype,
                                                 device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw fresh values with PyTorch's default initialisation.

        The weight gets ``kaiming_uniform_(a=sqrt(5))``, i.e.
        ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and the bias the same bounds, where
        ``fan_in = weight.shape[1] * prod(kernel_size)`` (for the transposed layers
        that is ``out_channels / groups * prod(kernel_size)``, as in PyTorch).
        """
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        nd = self._nd
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    _fn = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         0, groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        fn = type(self)._fn
        if self.padding_mode == "zeros":
            return fn(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)
        # Other modes pad explicitly (the same amounts), then convolve without padding.
        pads = conv_pads(self.padding, self.kernel_size, self.stride, self.dilation,
                         type(self).__name__)
        lead = ((0, 0),) * (input.ndim - self._nd)
        x = F.pad(input, lead + pads, mode=self.padding_mode)
        return fn(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Conv1d(_Conv):
    """1-D convolution layer over ``(N, C_in, L)`` inputs, as ``torch.nn.Conv1d``.

    See :func:`neural_arch.functional.conv1d` for the output size.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    kernel_size : int or tuple of one int
    stride, dilation : int or tuple, default 1
    padding : int, tuple, 'valid' or 'same', default 0
    groups : int, default 1
        Both channel counts must be divisible by it.
    bias : bool, default True
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, default 'zeros'
    device, dtype : optional
        Where the parameters live and their dtype.

    Attributes
    ----------
    weight : Parameter
        Shape ``(out_channels, in_channels / groups, kernel_size)``.
    bias : Parameter or None
        Shape ``(out_channels,)``.
    """

    _nd = 1
    _fn = staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-D convolution layer over ``(N, C_in, H, W)`` inputs, as ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    kernel_size : int or (int, int)
    stride, dilation : int or (int, int), default 1
    padding : int, (int, int), 'valid' or 'same', default 0
        ``'same'`` keeps the spatial size (stride 1 only).
    groups : int, default 1
        Both channel counts must be divisible by it.
    bias : bool, default True
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, default 'zeros'
    device, dtype : optional
        Where the parameters live and their dtype.

    Attributes
    ----------
    weight : Parameter
        Shape ``(out_channels, in_channels / groups, kH, kW)``; PyTorch's default
        initialisation (see :meth:`reset_parameters`).
    bias : Parameter or None
        Shape ``(out_channels,)``.

    Examples
    --------
    >>> conv = na.nn.Conv2d(1, 16, 3, padding=1)
    >>> conv(na.randn(64, 1, 28, 28)).shape
    (64, 16, 28, 28)
    """

    _nd = 2
    _fn = staticmethod(F.conv2d)


class _ConvTranspose(_ConvNd):
    _transposed = True
    _fn = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of "
                             f"ints, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, groups, bias, padding_mode, device, dtype)

    def forward(self, input, output_size=None):
        """Apply the layer; ``output_size`` picks the output padding, as in PyTorch."""
        extra = self.output_padding if output_size is None else \
            self._output_padding(input, output_size)
        return type(self)._fn(input, self.weight, self.bias, self.stride, self.padding, extra,
                              self.groups, self.dilation)

    def _output_padding(self, input, output_size):
        nd, name = self._nd, type(self).__name__
        size = tuple(output_size)
        if len(size) > nd:
            size = size[-nd:]       # (N, C, *spatial) is accepted too
        if len(size) != nd:
            raise ValueError(f"{name}: output_size must have {nd} (or {nd + 2}) entries, "
                             f"got {tuple(output_size)}")
        extra = []
        for i in range(nd):
            smallest = ((input.shape[-nd + i] - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            largest = smallest + self.stride[i] - 1
            if not smallest <= size[i] <= largest:
                raise ValueError(f"{name}: requested output_size {tuple(output_size)} is not "
                                 f"reachable: dim {i} must lie in [{smallest}, {largest}] for "
                                 f"input shape {tuple(input.shape)}")
            extra.append(size[i] - smallest)
        return tuple(extra)


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution layer, as ``torch.nn.ConvTranspose1d``.

    Parameters are as for :class:`ConvTranspose2d` with one spatial dim.
    """

    _nd = 1
    _fn = staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution layer, as ``torch.nn.ConvTranspose2d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride, padding, dilation : int or (int, int)
        Those of the convolution this layer transposes.
    output_padding : int or (int, int), default 0
        Extra rows/columns at the bottom/right of the output; smaller than the
        stride or the dilation.
    groups : int, default 1
    bias : bool, default True
    padding_mode : 'zeros'
        The only mode PyTorch supports here.
    device, dtype : optional

    Attributes
    ----------
    weight : Parameter
        Shape ``(in_channels, out_channels / groups, kH, kW)`` (PyTorch's order).
    bias : Parameter or None
        Shape ``(out_channels,)``.

    Notes
    -----
    ``forward(input, output_size=None)``: an ``output_size`` chooses the output
    padding that gives exactly that size.
    """

    _nd = 2
    _fn = staticmethod(F.conv_transpose2d)
