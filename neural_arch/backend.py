"""The array-module switch: NumPy on the CPU, CuPy on the GPU.

This is the only module of neural_arch that imports CuPy. Everything else asks it
for the array module of the data at hand::

    xp = get_array_module(x)      # numpy or cupy
    y = xp.exp(x)

and for the few helpers whose spelling differs between the two libraries
(:func:`scatter_add`, :func:`sliding_window_view`, random generators).

Backends are kept in a small registry keyed by array type. NumPy and CuPy are
registered here; the test suite registers a strict CPU stand-in for CuPy through
:func:`register_backend`, so code that mixes NumPy arrays into device arrays is
caught on machines without a GPU.
"""
from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np

try:  # CuPy is optional: the GPU extra installs it.
    import cupy as _cupy
    import cupyx as _cupyx
    _cupy.cuda.runtime.getDeviceCount()
    CUPY_AVAILABLE = True
except Exception:  # ImportError, or CuPy present without a usable GPU
    _cupy = None
    _cupyx = None
    CUPY_AVAILABLE = False

#: ``cupy`` itself when available, else a sentinel that no array module equals,
#: so ``xp is backend.cupy`` is always a legal test.
cupy = _cupy if CUPY_AVAILABLE else object()

__all__ = [
    "CUPY_AVAILABLE", "cupy", "cupy_available", "require_cupy", "get_array_module",
    "asnumpy", "to_device", "device_of", "array_module_for", "set_default_device",
    "get_default_device", "use_device", "register_backend", "Backend",
    "scatter_add", "sliding_window_view", "default_generator", "manual_seed",
    "cached_kernel", "elementwise_kernel", "is_cupy_array", "DeviceError", "erf",
]


class DeviceError(RuntimeError):
    """A device was asked for that this machine cannot provide, or devices were mixed."""


def cupy_available() -> bool:
    """Return True when CuPy imports and sees at least one GPU."""
    return CUPY_AVAILABLE


def require_cupy() -> None:
    """Raise :class:`DeviceError` with an install hint unless CuPy and a GPU are present."""
    if not CUPY_AVAILABLE:
        raise DeviceError(
            "device 'cuda' was requested, but CuPy with a working GPU is not available; "
            "install the GPU extra (pip install 'neural_arch[gpu]') on a machine with "
            "an NVIDIA GPU, or use device='cpu'")


class Backend:
    """One entry of the backend registry.

    Parameters
    ----------
    name : str
        Device kind, e.g. ``'cpu'`` or ``'cuda'``.
    array_type : type
        The array class of this backend.
    xp : module
        The NumPy-like module holding its functions.
    to_host : callable
        Copies one of its arrays to a NumPy array.
    from_host : callable
        ``from_host(ndarray, index)`` copies a NumPy array onto device ``index``.
    device_index : callable
        Returns the device index an array lives on.
    """

    __slots__ = ("name", "array_type", "xp", "to_host", "from_host", "device_index")

    def __init__(self, name, array_type, xp, to_host, from_host, device_index):
        self.name = name
        self.array_type = array_type
        self.xp = xp
        self.to_host = to_host
        self.from_host = from_host
        self.device_index = device_index


_BY_TYPE: dict = {}
_BY_NAME: dict = {}


def register_backend(backend: Backend) -> None:
    """Add (or replace) a backend; used for CuPy and for the test suite's CuPy stand-in."""
    _BY_TYPE[backend.array_type] = backend
    _BY_NAME[backend.name] = backend


register_backend(Backend("cpu", np.ndarray, np, lambda a: a,
                         lambda a, index: a, lambda a: 0))
if CUPY_AVAILABLE:
    def _cupy_from_host(a, index):
        with _cupy.cuda.Device(index):
            return _cupy.asarray(a)
    register_backend(Backend("cuda", _cupy.ndarray, _cupy, _cupy.asnumpy,
                             _cupy_from_host, lambda a: a.device.id))


def _backend_of(x):
    b = _BY_TYPE.get(type(x))
    if b is None:
        for t, cand in _BY_TYPE.items():
            if isinstance(x, t):
                return cand
    return b


def _unwrap(x):
    # A Tensor (anything that is not itself a registered array type but holds an
    # array in ``.data``) is looked through. CuPy arrays have a ``.data`` attribute
    # too (a memory pointer), so registered array types are returned as they are.
    if type(x) in _BY_TYPE or _backend_of(x) is not None:
        return x
    data = getattr(x, "data", None)
    return x if data is None else data


def get_array_module(*values):
    """Return the array module (``numpy``, ``cupy``, ...) of the given arrays or Tensors.

    Values that are not device arrays (Python numbers, None) are ignored; with no
    device array at all the answer is ``numpy``.
    """
    for v in values:
        if type(v) is np.ndarray:
            continue
        v = _unwrap(v)
        if type(v) is np.ndarray or v is None or isinstance(v, (int, float, complex, np.generic)):
            continue
        b = _backend_of(v)
        if b is not None and b.xp is not np:
            return b.xp
    return np


def _parse_device(device):
    """Split ``'cuda:1'`` into ``('cuda', 1)``; ``'cpu'`` into ``('cpu', 0)``."""
    if device is None:
        return _parse_device(get_default_device())
    if not isinstance(device, str):
        raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {device!r}")
    name, _, idx = device.partition(":")
    if name == "cuda" and name not in _BY_NAME:
        require_cupy()
    if name not in _BY_NAME:
        raise DeviceError(f"unknown device {device!r}; expected one of "
                          f"{sorted(_BY_NAME)} (optionally with ':N')")
    try:
        index = int(idx) if idx else 0
    except ValueError:
        raise DeviceError(f"bad device index in {device!r}; expected e.g. 'cuda:0'") from None
    return name, index


def array_module_for(device=None):
    """Return the array module that holds arrays for ``device`` (default: the default device)."""
    return _BY_NAME[_parse_device(device)[0]].xp


def device_of(x) -> str:
    """Return the device of an array or Tensor as ``'cpu'`` or ``'cuda:N'``."""
    x = _unwrap(x)
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return "cpu"
    b = _backend_of(x)
    if b is None:
        raise TypeError(f"expected an array, got {type(x).__name__}")
    return f"{b.name}:{b.device_index(x)}"


def asnumpy(x) -> np.ndarray:
    """Return a NumPy copy (or the array itself, when already on the host)."""
    x = _unwrap(x)
    if isinstance(x, np.ndarray):
        return x
    b = _backend_of(x)
    if b is None:
        return np.asarray(x)
    return b.to_host(x)


def to_device(x, device):
    """Return ``x`` (an array) on ``device``; no copy when it is already there."""
    name, index = _parse_device(device)
    x = _unwrap(x)
    src = _backend_of(x)
    if src is not None and src.name == name and (name == "cpu" or src.device_index(x) == index):
        return x
    host = asnumpy(x) if src is not None else np.asarray(x)
    return _BY_NAME[name].from_host(host, index)


_state = threading.local()
_DEFAULT_DEVICE = ["cpu"]


def get_default_device() -> str:
    """Return the device new tensors are created on when none is named."""
    return getattr(_state, "device", None) or _DEFAULT_DEVICE[0]


def set_default_device(device: str) -> None:
    """Set the device (``'cpu'``, ``'cuda'`` or ``'cuda:N'``) new tensors are created on."""
    _parse_device(device)
    _DEFAULT_DEVICE[0] = device


@contextlib.contextmanager
def use_device(device: str):
    """Context manager: create new tensors on ``device`` inside the block."""
    _parse_device(device)
    old = getattr(_state, "device", None)
    _state.device = device
    try:
        yield
    finally:
        _state.device = old


# --- helpers whose spelling differs between NumPy and CuPy -------------------

def scatter_add(target, indices, values):
    """In place: ``target[indices] += values``, accumulating repeated indices."""
    xp = get_array_module(target)
    if xp is np:
        np.add.at(target, indices, values)
    elif xp is cupy:
        _cupyx.scatter_add(target, indices, values)
    else:
        xp.add.at(target, indices, values)
    return target


def sliding_window_view(x, window_shape, axis=None):
    """Read-only view of all windows of ``x`` (``numpy.lib.stride_tricks`` semantics)."""
    xp = get_array_module(x)
    if xp is np:
        return np.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)
    return xp.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)


_GENERATORS: dict = {}
_SEED = [None]


def default_generator(xp):
    """The seeded random generator of an array module (created on first use)."""
    gen = _GENERATORS.get(xp)
    if gen is None:
        gen = _GENERATORS[xp] = xp.random.default_rng(_SEED[0])
    return gen


def manual_seed(seed: int) -> None:
    """Seed the random generators of every backend: same seed, same numbers."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _SEED[0] = int(seed)
    _GENERATORS.clear()


def cached_kernel(builder):
    """Decorator for functions that build a CuPy kernel: built once, on first GPU use.

    Modules can define fused kernels at import time on machines without CuPy;
    calling the builder there raises :class:`DeviceError`.
    """
    cached = functools.lru_cache(maxsize=None)(builder)

    @functools.wraps(builder)
    def get(*args):
        require_cupy()
        return cached(*args)
    return get


def elementwise_kernel(in_params, out_params, operation, name, preamble="", **options):
    """Build a ``cupy.ElementwiseKernel`` (raises :class:`DeviceError` without CuPy).

    Parameters
    ----------
    in_params, out_params : str
        CuPy's argument lists, e.g. ``'T grad, float64 lr, int32 maximize'`` and
        ``'T param, raw T buffer'``.
    operation : str
        The CUDA-C loop body, run once per element index ``i``.
    name : str
        The kernel's name (shown by profilers).
    preamble : str, optional
        CUDA-C code placed before the kernel (helper ``__device__`` functions).
    **options
        Further keyword arguments of ``cupy.ElementwiseKernel`` (``no_return``,
        ``reduce_dims``, ...).

    Notes
    -----
    CuPy compiles the kernel at its first call, for the dtypes it is called with,
    and caches the binary; combine with :func:`cached_kernel` to build the Python
    object once.
    """
    require_cupy()
    return _cupy.ElementwiseKernel(in_params, out_params, operation, name=name,
                                   preamble=preamble, **options)


def is_cupy_array(x) -> bool:
    """Return True only for a real ``cupy.ndarray`` (False without CuPy, for Tensors, ...)."""
    return CUPY_AVAILABLE and isinstance(x, _cupy.ndarray)


# --- erf: NumPy has none ---------------------------------------------------------

_erf_numpy = None   # the host implementation, chosen on first use (SciPy or fallback)


def _erf_fallback(x):
    """Pure-NumPy erf: ``math.erf`` per element (exact to double precision, but slow)."""
    import math
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"erf expects a real array, got dtype {x.dtype}")
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    out = np.frompyfunc(math.erf, 1, 1)(x.astype(np.float64))
    return np.asarray(out, dtype=np.float64).astype(dtype, copy=False)


def _resolve_numpy_erf():
    global _erf_numpy
    try:
        from scipy.special import erf as impl
    except ImportError:
        impl = _erf_fallback
    _erf_numpy = impl
    return impl


def erf(x):
    """The error function, elementwise, on the array's own backend.

    NumPy arrays use :func:`scipy.special.erf` when SciPy is installed and an exact
    (slower) pure-NumPy fallback otherwise; CuPy arrays use
    :func:`cupyx.scipy.special.erf`; any other registered backend must provide
    ``xp.erf``. Floating dtypes are kept; integers give float64.
    """
    xp = get_array_module(x)
    if xp is np:
        y = (_erf_numpy or _resolve_numpy_erf())(x)
        dt = getattr(x, "dtype", None)
        # SciPy computes float16 in float64; keep the input's float dtype.
        return y.astype(dt) if dt is not None and dt.kind == "f" and y.dtype != dt else y
    if xp is cupy:
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
    return xp.erf(x)
