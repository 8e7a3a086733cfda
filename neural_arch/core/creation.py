"""Creation functions: new tensors from data, constants, ranges and random draws.

They follow ``torch``'s names and keywords: every one takes ``dtype=``, ``device=``
and ``requires_grad=``, and shapes may be given as ``zeros(2, 3)`` or
``zeros((2, 3))``. Arrays are made directly by the array module of the target
device (NumPy for ``'cpu'``, CuPy for ``'cuda'``), so nothing is built on the host
and copied over. Random tensors draw from the seeded generator of that array
module (:func:`neural_arch.manual_seed`), so one seed gives the same numbers on
one backend.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from .dtypes import get_default_dtype, to_dtype
from .tensor import Tensor

__all__ = ["tensor", "zeros", "ones", "full", "empty", "arange", "linspace", "eye",
           "rand", "randn", "randint", "zeros_like", "ones_like", "full_like",
           "rand_like", "randn_like"]

_int64 = np.dtype(np.int64)
_bool = np.dtype(np.bool_)


# ---- helpers ---------------------------------------------------------------------

def _target(device):
    """Resolve ``device`` (None: the default device) to ``(array module, device)``."""
    if device is None:
        device = backend.get_default_device()
    return backend.array_module_for(device), device


def _place(arr, device):
    """Move ``arr`` to a non-default device index (``'cuda:1'``); a no-op otherwise."""
    if ":" in device and not device.endswith(":0"):
        arr = backend.to_device(arr, device)
    return arr


def _finish(arr, requires_grad):
    """Wrap a freshly made array as a leaf Tensor."""
    if isinstance(arr, np.generic):
        arr = np.asarray(arr)
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad = True   # raises a clear TypeError for non-float dtypes
    return t


def _size(args, what):
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])``; return a tuple of ints."""
    if not args:
        raise TypeError(f"{what}() needs a size, e.g. {what}(2, 3) or {what}((2, 3))")
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    elif len(args) == 1 and hasattr(args[0], "__len__") and not isinstance(args[0], str):
        args = tuple(args[0])  # a torch.Size-like or 1-D array of sizes
    shape = []
    for n in args:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"{what}: sizes must be integers, got {n!r} in {tuple(args)!r}")
        if n < 0:
            raise ValueError(f"{what}: sizes must be non-negative, got {tuple(args)!r}")
        shape.append(int(n))
    return tuple(shape)


def _float_dtype(dtype, what):
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"{what} draws floating-point numbers; got dtype {d}")
    return d


def _scalar_dtype(value):
    """The dtype torch infers for a Python scalar: bool, int64 or the default float."""
    if isinstance(value, (bool, np.bool_)):
        return _bool
    if isinstance(value, numbers.Integral):
        return _int64
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        return np.dtype(np.complex64 if get_default_dtype() == np.float32 else np.complex128)
    return get_default_dtype()


def _draw_float(gen, kind, shape, d):
    # The generators draw float32 and float64 natively; other floats are cast.
    if d == np.float32 or d == np.float64:
        return getattr(gen, kind)(shape, dtype=d)
    return getattr(gen, kind)(shape).astype(d)


# ---- from data -------------------------------------------------------------------

def tensor(data, dtype=None, device=None, requires_grad=False):
    """Make a new leaf tensor holding a copy of ``data``.

    Parameters
    ----------
    data : array_like, Tensor or scalar
        Nested lists, a number, a NumPy/CuPy array or a Tensor (its values are
        copied; the result is detached from any graph).
    dtype : dtype, optional
        Defaults to what the data implies, as in ``torch.tensor``: arrays keep
        their dtype; Python booleans give ``bool``, integers ``int64`` and floats
        the default float dtype.
    device : str, optional
        ``'cpu'``, ``'cuda'``, ``'cuda:N'``. When omitted, device arrays and
        Tensors stay on their device; everything else goes to the default device.
    requires_grad : bool, default False
        Record operations on the result (floating dtypes only).

    Returns
    -------
    Tensor

    Notes
    -----
    Unlike the :class:`~neural_arch.Tensor` constructor, which turns Python
    integers into the default float dtype and shares NumPy arrays, this function
    always copies and keeps integer data integer.
    """
    if isinstance(data, Tensor):
        data = data.data
    d = None if dtype is None else to_dtype(dtype)
    if isinstance(data, np.generic):
        data = np.asarray(data)
    if isinstance(data, np.ndarray) or (hasattr(data, "shape") and hasattr(data, "dtype")):
        # Device arrays stay where they are unless a device is named, as in torch.
        if device is None:
            device = backend.get_default_device() if isinstance(data, np.ndarray) \
                else backend.device_of(data)
        arr = backend.to_device(data, device)
        if d is not None and arr.dtype != d:
            arr = arr.astype(d)          # a new array
        elif arr is data:
            arr = arr.copy()             # to_device made no copy: make one
    else:
        try:
            host = np.array(data, dtype=d)
        except ValueError as e:
            raise ValueError(f"tensor() needs rectangular data (nested lists of equal "
                             f"lengths) of numbers: {e}") from None
        if host.dtype.kind not in "biufc":
            raise TypeError(f"tensor() holds numbers only; got {type(data).__name__} "
                            f"giving dtype {host.dtype}")
        if d is None and host.dtype.kind == "f":
            host = host.astype(get_default_dtype(), copy=False)
        elif d is None and host.dtype.kind == "i":
            host = host.astype(_int64, copy=False)
        arr = backend.to_device(host, device or backend.get_default_device())
    return _finish(arr, requires_grad)


# ---- constants -------------------------------------------------------------------

def zeros(*size, dtype=None, device=None, requires_grad=False):
    """Tensor of zeros of the given shape (``zeros(2, 3)`` or ``zeros((2, 3))``).

    Parameters
    ----------
    *size : int or sequence of int
        The shape.
    dtype : dtype, optional
        Default: the default float dtype.
    device : str, optional
        Default: the default device.
    requires_grad : bool, default False
        Make the result a leaf that records operations.
    """
    shape = _size(size, "zeros")
    xp, device = _target(device)
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    return _finish(_place(xp.zeros(shape, dtype=d), device), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """Tensor of ones of the given shape; keywords as :func:`zeros`."""
    shape = _size(size, "ones")
    xp, device = _target(device)
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    return _finish(_place(xp.ones(shape, dtype=d), device), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    """Tensor of the given shape with unspecified contents; keywords as :func:`zeros`."""
    shape = _size(size, "empty")
    xp, device = _target(device)
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    return _finish(_place(xp.empty(shape, dtype=d), device), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """Tensor of shape ``size`` filled with ``fill_value``.

    The dtype defaults to the one ``fill_value`` implies, as in ``torch.full``:
    ``bool`` for booleans, ``int64`` for integers, the default float for floats.
    """
    shape = _size((size,), "full")
    value = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
    d = _scalar_dtype(value) if dtype is None else to_dtype(dtype)
    xp, device = _target(device)
    return _finish(_place(xp.full(shape, value, dtype=d), device), requires_grad)


# ---- ranges ----------------------------------------------------------------------

def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` (inclusive) to ``end`` (exclusive) spaced by ``step``.

    ``arange(n)`` counts ``0 .. n-1``. As in ``torch.arange``, integer arguments
    give ``int64`` and any float argument gives the default float dtype.
    """
    if end is None:
        start, end = 0, start
    for name, v in (("start", start), ("end", end), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"arange: {name} must be a real number, got {v!r}")
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: the range from {start} to {end} never ends with "
                         f"step {step}; flip the sign of step")
    if dtype is not None:
        d = to_dtype(dtype)
    elif all(isinstance(v, numbers.Integral) for v in (start, end, step)):
        d = _int64
    else:
        d = get_default_dtype()
    xp, device = _target(device)
    return _finish(_place(xp.arange(start, end, step, dtype=d), device), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end``, both included."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative integer, got {steps!r}")
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    xp, device = _target(device)
    arr = xp.linspace(start, end, int(steps)).astype(d, copy=False)
    return _finish(_place(arr, device), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The ``n x m`` identity matrix (``m`` defaults to ``n``)."""
    n, m = _size((n, n if m is None else m), "eye")
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    xp, device = _target(device)
    return _finish(_place(xp.eye(n, m, dtype=d), device), requires_grad)


# ---- random ----------------------------------------------------------------------

def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform random numbers in ``[0, 1)`` of the given shape.

    They come from the array module's seeded generator, so after
    ``na.manual_seed(s)`` the same calls give the same numbers.
    """
    shape = _size(size, "rand")
    d = _float_dtype(dtype, "rand")
    xp, device = _target(device)
    arr = _draw_float(backend.default_generator(xp), "random", shape, d)
    return _finish(_place(arr, device), requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal random numbers of the given shape (seeded as :func:`rand`)."""
    shape = _size(size, "randn")
    d = _float_dtype(dtype, "randn")
    xp, device = _target(device)
    arr = _draw_float(backend.default_generator(xp), "standard_normal", shape, d)
    return _finish(_place(arr, device), requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None, requires_grad=False):
    """Random integers in ``[low, high)``; ``randint(high, size)`` draws from ``[0, high)``.

    Parameters
    ----------
    low, high : int
        The half-open range. Called as ``randint(high, size)`` like ``torch.randint``.
    size : int or sequence of int
        The shape.
    dtype : dtype, optional
        Default ``int64``.
    """
    if size is None:
        if high is None:
            raise TypeError("randint needs a size: randint(low, high, size) or "
                            "randint(high, size)")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"randint: {name} must be an integer, got {v!r}")
    if high <= low:
        raise ValueError(f"randint: high must be greater than low, got low={low}, "
                         f"high={high}")
    shape = _size((size,), "randint")
    d = _int64 if dtype is None else to_dtype(dtype)
    xp, device = _target(device)
    arr = backend.default_generator(xp).integers(low, high, size=shape)
    if arr.dtype != d:
        arr = arr.astype(d)
    return _finish(_place(arr, device), requires_grad)


# ---- like another tensor --------------------------------------------------------

def _like(x, dtype, device, what):
    if not isinstance(x, Tensor) and not hasattr(x, "shape"):
        raise TypeError(f"{what} expects a Tensor or an array, got {type(x).__name__}")
    a = x.data if isinstance(x, Tensor) else x
    return (tuple(a.shape), a.dtype if dtype is None else to_dtype(dtype),
            backend.device_of(a) if device is None else device)


def zeros_like(input, dtype=None, device=None, requires_grad=False):
    """Zeros with the shape of ``input`` (and its dtype and device unless given)."""
    shape, d, device = _like(input, dtype, device, "zeros_like")
    return zeros(shape, dtype=d, device=device, requires_grad=requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False):
    """Ones with the shape of ``input`` (and its dtype and device unless given)."""
    shape, d, device = _like(input, dtype, device, "ones_like")
    return ones(shape, dtype=d, device=device, requires_grad=requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    """``fill_value`` in the shape of ``input`` (and its dtype and device unless given)."""
    shape, d, device = _like(input, dtype, device, "full_like")
    return full(shape, fill_value, dtype=d, device=device, requires_grad=requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False):
    """Uniform ``[0, 1)`` numbers in the shape of ``input``; a float dtype is needed."""
    shape, d, device = _like(input, dtype, device, "rand_like")
    _float_dtype(d, "rand_like")
    return rand(shape, dtype=d, device=device, requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False):
    """Standard normal numbers in the shape of ``input``; a float dtype is needed."""
    shape, d, device = _like(input, dtype, device, "randn_like")
    _float_dtype(d, "randn_like")
    return randn(shape, dtype=d, device=device, requires_grad=requires_grad)
