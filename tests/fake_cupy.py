"""A strict CPU stand-in for CuPy, so backend mistakes show up on machines without a GPU.

It copies CuPy where NumPy-only code breaks on a GPU:

* :class:`FakeArray` *wraps* a NumPy array (it is not a subclass):
  ``isinstance(a, numpy.ndarray)`` is False, as for ``cupy.ndarray``.
* Implicit conversion to NumPy is refused: ``numpy.asarray(a)`` raises
  ``TypeError``. Host copies are explicit: ``a.get()`` or ``fakecupy.asnumpy(a)``.
* Every ``fakecupy`` function and ufunc refuses a NumPy array with ``ndim > 0``
  (``TypeError``), and so does every operator, in either order: ``fake + ndarray``
  and ``ndarray + fake`` both raise. Python and NumPy scalars are fine, as on CuPy;
  so are NumPy arrays given to ``fakecupy.asarray`` (an explicit upload), used as
  indices, or assigned into a FakeArray (CuPy uploads those too).
* NumPy functions dispatch to ``fakecupy`` through ``__array_ufunc__`` and
  ``__array_function__``: ``numpy.exp(a)`` returns a FakeArray, and a NumPy
  function that ``fakecupy`` lacks raises ``TypeError``.
* Reductions and integer indexing give 0-d arrays, never NumPy scalars.
* ``a.data`` is a memory pointer, not an array (``cupy.ndarray.data`` is a
  ``MemoryPointer``), so code that looks through ``.data`` to unwrap a Tensor
  must not look through device arrays.
* For one seed, the random generators draw other numbers than NumPy's (CuPy's
  do too), so nothing can rely on CPU and GPU drawing the same values.

Usage::

    from tests import fake_cupy
    fake_cupy.register()                    # adds the device 'fake' (index 0 only)
    t = na.Tensor([1.0, 2.0]).to("fake")    # t.device == 'fake:0'
"""
from __future__ import annotations

import math
import operator
import types

import numpy as np

__all__ = ["FakeArray", "fakecupy", "register", "to_host", "from_host", "device_index"]

_HOST_MSG = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` "
             "(or fakecupy.asnumpy) to construct a NumPy array explicitly.")
_SCALARS = (bool, int, float, complex, np.generic)
_new = object.__new__


def _host_array_error(x, where):
    return TypeError(
        f"Unsupported type {type(x)}: {where} got a NumPy array of shape {x.shape} on a "
        "device computation; fake CuPy (like CuPy) does not mix host arrays into device "
        "arrays. Make it with the array module of the data (xp = get_array_module(x)).")


def _fa(a):
    """Wrap the NumPy array ``a`` (no copy)."""
    o = _new(FakeArray)
    o._a = a
    return o


def _wrap(r):
    """Turn what a NumPy call returned into what CuPy would return."""
    t = type(r)
    if t is np.ndarray:
        return _fa(r)
    if isinstance(r, np.generic):
        return _fa(np.asarray(r))
    if t is tuple or t is list:
        return t(_wrap(v) for v in r)
    if isinstance(r, tuple) and hasattr(r, "_fields"):      # named results (svd, ...)
        return t(*(_wrap(v) for v in r))
    return r


def _dev(x, where):
    """The NumPy value behind one argument of a fake function; refuse host arrays."""
    t = type(x)
    if t is FakeArray:
        return x._a
    if t is np.ndarray:
        if x.ndim == 0:
            return x
        raise _host_array_error(x, where)
    if t is list or t is tuple:
        return t(_dev(v, where) for v in x)
    if t is dict:
        return {k: _dev(v, where) for k, v in x.items()}
    if x is None or isinstance(x, _SCALARS) or isinstance(x, (str, slice, type, np.dtype)):
        return x
    if hasattr(x, "__array__") or hasattr(x, "__array_interface__"):
        raise TypeError(f"Unsupported type {type(x)}: {where} takes fake device arrays, "
                        f"not {type(x).__name__} (pass the array inside it)")
    return x


def _ufunc_arg(x, where):
    """One operand of a ufunc: a FakeArray or a scalar, nothing else (as on CuPy)."""
    t = type(x)
    if t is FakeArray:
        return x._a
    if t is np.ndarray:
        if x.ndim == 0:
            return x
        raise _host_array_error(x, where)
    if isinstance(x, _SCALARS):
        return x
    raise TypeError(f"Unsupported type {type(x)} given to {where}")


def _loose(x):
    """Unwrap FakeArrays (nested in lists/tuples) and let everything else through."""
    t = type(x)
    if t is FakeArray:
        return x._a
    if t is list or t is tuple:
        return t(_loose(v) for v in x)
    return x


def _split_out(kwargs, where):
    """Take ``out=`` from ``kwargs``: (the fake array(s) given, their NumPy arrays)."""
    out = kwargs.pop("out", None)
    if out is None:
        return None, None
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        if type(o) is not FakeArray:
            raise TypeError(f"{where}: out= must be a fake device array, got {type(o)}")
    return out, (tuple(o._a for o in outs) if isinstance(out, tuple) else out._a)


# ==== the array ======================================================================

class _Device:
    """The one fake device (``cupy.cuda.Device`` look-alike)."""

    __slots__ = ("id",)

    def __init__(self, index=0):
        self.id = index

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return hash(("fake", self.id))

    def __repr__(self):
        return f"<Fake CUDA Device {self.id}>"


_DEVICE0 = _Device(0)


class _MemoryPointer:
    """What ``.data`` gives, as on CuPy: a pointer into device memory, not an array."""

    __slots__ = ("ptr", "device_id")

    def __init__(self, a):
        self.ptr = a.ctypes.data
        self.device_id = 0

    def __repr__(self):
        return f"<fake MemoryPointer 0x{self.ptr:x} on device {self.device_id}>"


class _Flags:
    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, a):
        self.c_contiguous = a.flags.c_contiguous
        self.f_contiguous = a.flags.f_contiguous
        self.owndata = a.flags.owndata

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]

    def __repr__(self):
        return (f"  C_CONTIGUOUS : {self.c_contiguous}\n  F_CONTIGUOUS : "
                f"{self.f_contiguous}\n  OWNDATA : {self.owndata}")


def _index(key):
    """An index for a FakeArray: device arrays unwrapped; host arrays allowed (uploaded)."""
    if type(key) is tuple:
        return tuple(k._a if type(k) is FakeArray else k for k in key)
    return key._a if type(key) is FakeArray else key


class FakeArray:
    """A device array of the fake CuPy: a NumPy array behind a CuPy-like face.

    ``FakeArray(shape, dtype=float)`` makes an uninitialised array, as
    ``cupy.ndarray(shape, dtype)`` does. Everything that works on a
    ``cupy.ndarray`` and that neural_arch uses works here; mixing with NumPy
    arrays raises ``TypeError`` (see the module docstring).
    """

    __slots__ = ("_a", "__weakref__")

    def __init__(self, shape, dtype=float, order="C"):
        self._a = np.empty(shape, dtype=dtype, order=order)

    # -- attributes ---------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: _fa(self._a.T))
    mT = property(lambda self: _fa(self._a.mT))
    real = property(lambda self: _fa(self._a.real))
    imag = property(lambda self: _fa(self._a.imag))
    flags = property(lambda self: _Flags(self._a))
    device = property(lambda self: _DEVICE0)

    @property
    def data(self):
        """A memory pointer (as ``cupy.ndarray.data``), not the values."""
        return _MemoryPointer(self._a)

    @property
    def base(self):
        """The array this one is a view of, or None when it owns its memory."""
        b = self._a.base
        if b is None:
            return None
        return _fa(b) if isinstance(b, np.ndarray) else self

    # -- explicit host transfers (allowed, as on CuPy) ---------------------------------
    def get(self, stream=None, order="C", out=None):
        """Copy to a NumPy array (the explicit device-to-host transfer)."""
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr):
        """Copy the NumPy array ``arr`` into this array (host-to-device transfer)."""
        self._a[...] = np.asarray(arr)

    def item(self, *args):
        return self._a.item(*args)

    def tolist(self):
        return self._a.tolist()

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_HOST_MSG)

    # -- NumPy dispatch ----------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fu = _UFUNC_OF.get(ufunc)
        if fu is None:
            return NotImplemented
        for x in inputs + tuple(kwargs.get("out", None) or ()):
            if getattr(type(x), "__array_ufunc__", 0) is None:
                return NotImplemented
        if method == "__call__":
            return fu(*inputs, **kwargs)
        return getattr(fu, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        fn = _FUNC_OF.get(func)
        if fn is None:
            return NotImplemented
        return fn(*args, **kwargs)

    # -- Python protocols ----------------------------------------------------------------
    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __getitem__(self, key):
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key, value):
        if type(value) is FakeArray:
            value = value._a
        elif hasattr(value, "__array__") and not isinstance(value, (np.ndarray, np.generic)):
            raise TypeError(f"Unsupported type {type(value)} assigned into a fake device array")
        self._a[_index(key)] = value

    def __bool__(self):
        return bool(self._a)

    def __int__(self):
        return int(self._a)

    def __float__(self):
        return float(self._a)

    def __complex__(self):
        return complex(self._a)

    def __index__(self):
        return operator.index(self._a)

    def __format__(self, spec):
        return format(self._a.item(), spec) if self._a.ndim == 0 else format(str(self), spec)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __copy__(self):
        return _fa(self._a.copy())

    def __deepcopy__(self, memo):
        return _fa(self._a.copy())

    def __reduce__(self):
        return _fa, (self._a.copy(),)


def _method(name):
    def method(self, *args, **kwargs):
        where = f"FakeArray.{name}"
        out, raw_out = _split_out(kwargs, where)
        kw = _dev(kwargs, where)
        if out is not None:
            kw["out"] = raw_out
        r = getattr(self._a, name)(*_dev(args, where), **kw)
        return out if out is not None else _wrap(r)
    method.__name__ = name
    method.__doc__ = f"As ``numpy.ndarray.{name}``, on the fake device."
    return method


for _name in ("all", "any", "argmax", "argmin", "argsort", "astype", "clip", "conj",
              "conjugate", "copy", "cumprod", "cumsum", "diagonal", "dot", "fill", "flatten",
              "max", "mean", "min", "nonzero", "prod", "put", "ravel", "repeat", "reshape",
              "round", "sort", "squeeze", "std", "sum", "swapaxes", "take", "trace",
              "transpose", "var", "view", "partition", "argpartition"):
    setattr(FakeArray, _name, _method(_name))


# ==== ufuncs ===========================================================================

class _FakeUfunc:
    """A NumPy ufunc that takes and gives fake device arrays (and refuses host arrays)."""

    def __init__(self, uf, name=None):
        self._uf = uf
        self.__name__ = name or uf.__name__
        self.nin, self.nout, self.nargs = uf.nin, uf.nout, uf.nargs
        self.__doc__ = f"``{self.__name__}`` on the fake device."

    def _call(self, method, args, kwargs, where):
        out, raw_out = _split_out(kwargs, where)
        if out is not None:
            kwargs["out"] = raw_out
        if "where" in kwargs:
            kwargs["where"] = _ufunc_arg(kwargs["where"], where)
        r = method(*(_ufunc_arg(a, where) for a in args), **kwargs)
        return out if out is not None else _wrap(r)

    def __call__(self, *args, **kwargs):
        return self._call(self._uf, args, kwargs, f"fakecupy.{self.__name__}")

    def reduce(self, *args, **kwargs):
        return self._call(self._uf.reduce, args, kwargs, f"fakecupy.{self.__name__}.reduce")

    def accumulate(self, *args, **kwargs):
        return self._call(self._uf.accumulate, args, kwargs,
                          f"fakecupy.{self.__name__}.accumulate")

    def outer(self, *args, **kwargs):
        return self._call(self._uf.outer, args, kwargs, f"fakecupy.{self.__name__}.outer")

    def at(self, a, indices, b=None):
        """Unbuffered in-place operation (``cupyx.scatter_add`` for ``add``)."""
        where = f"fakecupy.{self.__name__}.at"
        if type(a) is not FakeArray:
            raise TypeError(f"{where} works in place on a fake device array, got {type(a)}")
        if b is None:
            self._uf.at(a._a, _index(indices))
        else:
            self._uf.at(a._a, _index(indices), _ufunc_arg(b, where))

    def __repr__(self):
        return f"<fake ufunc '{self.__name__}'>"


# ==== module functions =================================================================

def _wrap_function(fn, name):
    """``fn`` on fake arrays: host arrays refused, results wrapped."""
    where = f"fakecupy.{name}"

    def f(*args, **kwargs):
        out, raw_out = _split_out(kwargs, where)
        kw = _dev(kwargs, where)
        if out is not None:
            kw["out"] = raw_out
        r = fn(*_dev(args, where), **kw)
        return out if out is not None else _wrap(r)
    f.__name__ = name
    f.__doc__ = f"``numpy.{name}`` on the fake device."
    return f


def _passthrough(fn, name):
    """Functions about dtypes and shapes: fake arrays looked through, result as is."""
    def f(*args, **kwargs):
        return fn(*_loose(args), **{k: _loose(v) for k, v in kwargs.items()})
    f.__name__ = name
    return f


def _upload(obj, dtype=None, copy=True, order="K"):
    if type(obj) is FakeArray:
        a = obj._a
        if dtype is not None and a.dtype != np.dtype(dtype):
            return _fa(a.astype(dtype, order=order))
        return _fa(np.array(a, order=order, copy=True)) if copy else obj
    # A host object (NumPy array, list, scalar, something with __array__): copied over.
    return _fa(np.array(_loose(obj), dtype=dtype, order=order, copy=True))


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    """Make a device array (copying host data over), as ``cupy.array``."""
    r = _upload(obj, dtype, copy, order)
    if r._a.ndim < ndmin:
        r = _fa(r._a.reshape((1,) * (ndmin - r._a.ndim) + r._a.shape))
    return r


def asarray(obj, dtype=None, order=None):
    """Return ``obj`` as a device array, copying only host data (``cupy.asarray``)."""
    return _upload(obj, dtype, copy=False, order=order or "K")


def ascontiguousarray(obj, dtype=None):
    r = _upload(obj, dtype, copy=False)
    return r if r._a.flags.c_contiguous else _fa(np.ascontiguousarray(r._a))


def asnumpy(a, stream=None, order="C", out=None):
    """Copy a device array to the host (NumPy arrays and scalars come back as arrays)."""
    if type(a) is FakeArray:
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def get_array_module(*args):
    """``fakecupy`` when any argument is a fake device array, else ``numpy``."""
    for a in args:
        if type(a) is FakeArray:
            return fakecupy
    return np


# ---- random: same API, a different stream from NumPy's for the same seed -------------

class _FakeGenerator:
    """``cupy.random.Generator`` look-alike: NumPy's Generator API on a Philox stream."""

    def __init__(self, seed=None):
        self._g = np.random.Generator(np.random.Philox(seed))

    def __getattr__(self, name):
        if name == "_g":
            raise AttributeError(name)
        f = getattr(self._g, name)
        if not callable(f):
            return f
        return _wrap_function(f, f"random.Generator.{name}")

    def __repr__(self):
        return "fakecupy.random.Generator(Philox)"


class _FakeRandomState(_FakeGenerator):
    """``cupy.random.RandomState`` look-alike (the legacy API)."""

    def __init__(self, seed=None):
        self._g = np.random.RandomState(np.random.Philox(seed))


def _build_random():
    random = types.ModuleType("fakecupy.random", "Random numbers on the fake device.")
    random.Generator = _FakeGenerator
    random.RandomState = _FakeRandomState
    random.default_rng = lambda seed=None: _FakeGenerator(seed)
    state = [_FakeRandomState()]

    def seed(s=None):
        state[0] = _FakeRandomState(s)
    random.seed = seed
    random.get_random_state = lambda: state[0]
    for name in ("rand", "randn", "random", "random_sample", "uniform", "normal",
                 "standard_normal", "randint", "permutation", "shuffle", "choice",
                 "binomial", "poisson", "exponential", "gamma", "beta"):
        setattr(random, name, (lambda n: lambda *a, **k: getattr(state[0], n)(*a, **k))(name))
    return random


def _erf_host(x):
    """erf on NumPy arrays: SciPy's ufunc when installed, else ``math.erf`` per element."""
    x = np.asarray(x)
    out = np.frompyfunc(math.erf, 1, 1)(x.astype(np.float64))
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    return np.asarray(out, dtype=np.float64).astype(dtype)


# ---- assembling the module -------------------------------------------------------------

_UFUNC_OF: dict = {}     # numpy ufunc -> its fake
_FUNC_OF: dict = {}      # numpy function -> its fake (for __array_function__)

# About dtypes and shapes, not data: looked through, results unwrapped.
_PASSTHROUGH = {"result_type", "promote_types", "can_cast", "min_scalar_type", "ndim",
                "shape", "size", "isscalar", "issubdtype", "broadcast_shapes", "iterable",
                "isdtype", "common_type", "mintypecode", "typename"}
# Made by hand above, or absent from CuPy (text I/O, matrices, Python-level loops).
_SKIP = {"ndarray", "array", "asarray", "asanyarray", "ascontiguousarray", "asfortranarray",
         "frompyfunc", "vectorize", "errstate", "seterr", "geterr", "seterrcall",
         "geterrcall", "asmatrix", "bmat", "matrix", "memmap", "loadtxt", "savetxt",
         "genfromtxt", "fromregex", "recarray", "get_array_module", "asnumpy", "nditer",
         "ndenumerate", "flatiter", "poly1d", "busdaycalendar", "broadcast", "ufunc",
         "get_include", "show_config", "show_runtime", "info", "test"}


def _fill(module, source, names, prefix=""):
    for name in names:
        if name.startswith("_") or name in _SKIP:
            continue
        obj = getattr(source, name, None)
        if isinstance(obj, np.ufunc):
            fu = _UFUNC_OF.get(obj)
            if fu is None:
                fu = _UFUNC_OF[obj] = _FakeUfunc(obj)
            setattr(module, name, fu)
        elif isinstance(obj, type):
            if issubclass(obj, (np.generic, BaseException)) or obj in (np.dtype, np.finfo,
                                                                         np.iinfo):
                setattr(module, name, obj)
        elif isinstance(obj, (int, float)) or obj is None:
            setattr(module, name, obj)                      # pi, e, inf, nan, newaxis
        elif callable(obj) and not isinstance(obj, types.ModuleType):
            if name in _PASSTHROUGH:
                fn = _passthrough(obj, name)
            else:
                fn = _wrap_function(obj, prefix + name)
            setattr(module, name, fn)
            try:
                _FUNC_OF[obj] = fn
            except TypeError:   # an unhashable callable: never dispatched to anyway
                pass


fakecupy = types.ModuleType("fakecupy", "A strict CPU stand-in for the cupy module.")
_fill(fakecupy, np, dir(np))
for _f in (array, asarray, ascontiguousarray, asnumpy, get_array_module):
    setattr(fakecupy, _f.__name__, _f)
fakecupy.asanyarray = asarray
fakecupy.ndarray = FakeArray
for _np_f, _f in ((np.array, array), (np.asarray, asarray), (np.asanyarray, asarray),
                  (np.ascontiguousarray, ascontiguousarray)):
    _FUNC_OF[_np_f] = _f

fakecupy.linalg = types.ModuleType("fakecupy.linalg", "Linear algebra on the fake device.")
_fill(fakecupy.linalg, np.linalg, np.linalg.__all__, "linalg.")
fakecupy.linalg.LinAlgError = np.linalg.LinAlgError

fakecupy.lib = types.ModuleType("fakecupy.lib")
fakecupy.lib.stride_tricks = types.ModuleType("fakecupy.lib.stride_tricks")
_fill(fakecupy.lib.stride_tricks, np.lib.stride_tricks, ("sliding_window_view", "as_strided"),
      "lib.stride_tricks.")

fakecupy.random = _build_random()

try:  # CuPy has erf in cupyx.scipy.special; neural_arch asks other backends for xp.erf.
    from scipy.special import erf as _scipy_erf
    fakecupy.erf = _UFUNC_OF[_scipy_erf] = _FakeUfunc(_scipy_erf)
except ImportError:
    fakecupy.erf = _wrap_function(_erf_host, "erf")


# Operators go through the fake ufuncs, so ``fake + ndarray`` raises like CuPy. An operand
# that opts out of NumPy's ufuncs (a Tensor: ``__array_ufunc__ = None``) gets its turn
# through NotImplemented, so ``fake + tensor`` reaches ``Tensor.__radd__``.
def _binary(ufname):
    def op(self, other):
        if getattr(type(other), "__array_ufunc__", 0) is None:
            return NotImplemented
        return getattr(fakecupy, ufname)(self, other)

    def rop(self, other):
        if getattr(type(other), "__array_ufunc__", 0) is None:
            return NotImplemented
        return getattr(fakecupy, ufname)(other, self)

    def iop(self, other):
        if getattr(type(other), "__array_ufunc__", 0) is None:
            return NotImplemented
        getattr(fakecupy, ufname)(self, other, out=self)
        return self
    return op, rop, iop


for _op, _uf in (("add", "add"), ("sub", "subtract"), ("mul", "multiply"),
                 ("truediv", "true_divide"), ("floordiv", "floor_divide"),
                 ("mod", "remainder"), ("pow", "power"), ("matmul", "matmul"),
                 ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor"),
                 ("lshift", "left_shift"), ("rshift", "right_shift")):
    _f, _rf, _if = _binary(_uf)
    setattr(FakeArray, f"__{_op}__", _f)
    setattr(FakeArray, f"__r{_op}__", _rf)
    setattr(FakeArray, f"__i{_op}__", _if)
FakeArray.__divmod__, FakeArray.__rdivmod__, _ = _binary("divmod")
for _op, _uf in (("eq", "equal"), ("ne", "not_equal"), ("lt", "less"),
                 ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal")):
    setattr(FakeArray, f"__{_op}__", _binary(_uf)[0])
FakeArray.__hash__ = None    # unhashable, like every ndarray
for _op, _uf in (("neg", "negative"), ("pos", "positive"), ("abs", "absolute"),
                 ("invert", "invert")):
    setattr(FakeArray, f"__{_op}__", (lambda n: lambda self: getattr(fakecupy, n)(self))(_uf))


# ==== the backend entry ==================================================================

def to_host(a):
    """Copy a fake device array to a new NumPy array."""
    return a._a.copy()


def from_host(a, index=0):
    """Copy the NumPy array ``a`` onto the fake device (only index 0 exists)."""
    if index != 0:
        from neural_arch.backend import DeviceError
        raise DeviceError(f"the fake device has only index 0, got 'fake:{index}'")
    return _fa(np.array(a, copy=True))


def device_index(a):
    """Every fake array lives on device 0."""
    return 0


def register():
    """Register the device ``'fake'`` with neural_arch's backend registry (idempotent)."""
    from neural_arch import backend
    backend.register_backend(backend.Backend("fake", FakeArray, fakecupy, to_host,
                                             from_host, device_index))
