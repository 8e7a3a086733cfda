"""Tensor: an array plus what reverse-mode autograd needs to know about it."""
from __future__ import annotations

import numpy as np

from .. import backend
from .dtypes import get_default_dtype, to_dtype
from .grad_mode import config

__all__ = ["Tensor", "Parameter", "as_tensor"]

_ndarray = np.ndarray
_generic = np.generic


def _as_array(data, dtype=None, device=None):
    """Turn user data into an array of the requested dtype on the requested device."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = to_dtype(dtype)
    xp_src = backend.get_array_module(data)
    if isinstance(data, _ndarray) or xp_src is not np:
        arr = data if dtype is None or data.dtype == dtype else data.astype(dtype)
    else:
        # Python numbers and (nested) lists become the default float dtype unless
        # they hold booleans or a dtype is given.
        arr = np.asarray(data, dtype=dtype)
        if dtype is None and arr.dtype.kind in "iuf":
            arr = arr.astype(get_default_dtype())
        if arr.dtype == object:
            raise TypeError(f"cannot make a tensor from {type(data).__name__} holding objects")
    if device is not None or (xp_src is np and backend.get_default_device() != "cpu"):
        arr = backend.to_device(arr, device or backend.get_default_device())
    return arr


def _check_float(dtype, what="requires_grad=True"):
    if dtype.kind not in "fc":
        raise TypeError(f"only floating-point tensors can have {what}; "
                        f"got dtype {dtype} (cast with .astype('float32') first)")


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    Parameters
    ----------
    data : array_like or Tensor
        The values. Python numbers and lists become the default float dtype
        (float32 unless :func:`neural_arch.set_default_dtype` changed it); NumPy and
        CuPy arrays keep their dtype and are not copied.
    requires_grad : bool, default False
        Whether gradients with respect to this tensor are computed by backward.
        Only floating-point tensors can require gradients.
    dtype : dtype, optional
        Cast the data to this dtype.
    device : str, optional
        ``'cpu'``, ``'cuda'`` or ``'cuda:N'``; the default device when omitted.
    name : str, optional
        A label shown in ``repr`` and in anomaly reports.

    Attributes
    ----------
    data : ndarray
        The values (a NumPy or CuPy array).
    grad : Tensor or None
        The accumulated gradient after :meth:`backward`.
    creator : Function or None
        The operation that produced this tensor; None for leaves.
    """

    __slots__ = ("data", "grad", "_rg", "creator", "_hooks", "name", "__weakref__")
    # ndarray (op) Tensor must reach the Tensor's reflected operator, not NumPy's loop.
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None, device=None, name=None):
        arr = _as_array(data, dtype, device)
        if isinstance(arr, _generic):
            arr = np.asarray(arr)
        self.data = arr
        self.grad = None
        self._rg = False
        self.creator = None
        self._hooks = None
        self.name = name
        if requires_grad:
            self.requires_grad = True

    # -- fast construction used by Function.__call__ --------------------------
    @classmethod
    def _make(cls, data, creator=None):
        t = _new(cls)
        t.data = data
        t.grad = None
        t._rg = creator is not None
        t.creator = creator
        t._hooks = None
        return t        # the optional ``name`` slot stays unset (read with getattr)

    # -- autograd attributes ---------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        """Whether backward computes a gradient for this tensor."""
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag:
            _check_float(self.data.dtype)
            if self.creator is not None:
                return
        elif self.creator is not None:
            raise RuntimeError("requires_grad can only be switched off on leaf tensors; "
                               "use .detach() for a non-leaf")
        self._rg = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set :attr:`requires_grad` in place and return self."""
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded operation."""
        return self.creator is None

    def backward(self, grad=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute the gradients of this tensor with respect to the graph's leaves.

        Parameters
        ----------
        grad : Tensor or array_like, optional
            The gradient of some scalar with respect to this tensor. May be omitted
            only when this tensor holds a single element (then it is 1).
        retain_graph : bool, optional
            Keep the graph (and its saved arrays) for another backward. Defaults to
            ``create_graph``.
        create_graph : bool, default False
            Record the backward computation itself, so the gradients can be
            differentiated again (Hessian-vector products, double backprop).
        inputs : sequence of Tensor, optional
            Accumulate gradients only into these leaves.

        Notes
        -----
        Gradients accumulate into ``.grad`` until zeroed, as in PyTorch. Every
        gradient flowing along an edge is clamped elementwise to ``[-c, c]``
        (``c = 1e6`` by default; see :func:`neural_arch.autograd.set_grad_clip`).
        """
        from .engine import run_backward
        run_backward([self], [grad], retain_graph=retain_graph, create_graph=create_graph,
                     inputs=inputs, accumulate=True)

    def register_hook(self, hook):
        """Register ``hook(grad) -> Tensor or None``, called with this tensor's gradient.

        A returned tensor replaces the gradient. Returns a handle with ``remove()``.
        """
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.creator is None:
            return
        if self._hooks is None:
            self._hooks = []
        if _RETAIN not in self._hooks:
            self._hooks.append(_RETAIN)

    @property
    def retains_grad(self) -> bool:
        """True when :meth:`retain_grad` was called on this non-leaf tensor."""
        return self._hooks is not None and _RETAIN in self._hooks

    def detach(self) -> "Tensor":
        """Return a new leaf sharing this tensor's data, outside any graph."""
        return Tensor._make(self.data)

    def detach_(self) -> "Tensor":
        """Cut this tensor from its graph in place."""
        self.creator = None
        self._rg = False
        return self

    def zero_grad(self) -> None:
        """Drop the accumulated gradient (set ``.grad`` to None)."""
        self.grad = None

    # -- array attributes --------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def device(self) -> str:
        """``'cpu'`` or ``'cuda:N'``."""
        return backend.device_of(self.data)

    @property
    def T(self) -> "Tensor":
        return F.transpose(self)

    @property
    def mT(self) -> "Tensor":
        return F.swapaxes(self, -1, -2)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def item(self):
        """Return the single element as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """Return the data as a NumPy array (a host copy for GPU tensors)."""
        return backend.asnumpy(self.data)

    def tolist(self):
        return self.numpy().tolist()

    def __array__(self, dtype=None, copy=None):
        a = backend.asnumpy(self.data)
        return a if dtype is None else a.astype(dtype)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is "
                             "ambiguous; use .any() or .all()")
        return bool(self.data.item())

    def __repr__(self):
        body = np.array2string(backend.asnumpy(self.data), separator=", ", prefix="tensor(")
        extra = []
        if self.data.dtype != get_default_dtype():
            extra.append(f"dtype={self.data.dtype}")
        dev = self.device
        if dev != "cpu":
            extra.append(f"device='{dev}'")
        if self.creator is not None:
            extra.append(f"grad_fn=<{type(self.creator).__name__}>")
        elif self._rg:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    # -- devices and dtypes ------------------------------------------------------
    def to(self, device=None, dtype=None) -> "Tensor":
        """Return this tensor on ``device`` and/or cast to ``dtype`` (differentiable)."""
        out = self
        if dtype is not None and to_dtype(dtype) != self.data.dtype:
            out = F.astype(out, dtype)
        if device is not None and backend.device_of(out.data) != _full_device(device):
            out = F.to_device(out, device)
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Tensor":
        return self.to(f"cuda:{index}")

    def astype(self, dtype) -> "Tensor":
        return F.astype(self, dtype)

    def float(self) -> "Tensor":
        return F.astype(self, "float32")

    def double(self) -> "Tensor":
        return F.astype(self, "float64")

    def half(self) -> "Tensor":
        return F.astype(self, "float16")

    # -- operators ---------------------------------------------------------------
    # The arithmetic operators call their Function directly (what F.add etc. do),
    # one Python call fewer on the hottest path of every model.
    def __add__(self, other): return _Add()(self, other)
    def __radd__(self, other): return _Add()(other, self)
    def __sub__(self, other): return _Sub()(self, other)
    def __rsub__(self, other): return _Sub()(other, self)
    def __mul__(self, other): return _Mul()(self, other)
    def __rmul__(self, other): return _Mul()(other, self)
    def __truediv__(self, other): return _Div()(self, other)
    def __rtruediv__(self, other): return _Div()(other, self)
    def __pow__(self, other): return F.pow(self, other)
    def __rpow__(self, other): return F.pow(other, self)
    def __matmul__(self, other): return F.matmul(self, other)
    def __rmatmul__(self, other): return F.matmul(other, self)
    def __neg__(self): return F.neg(self)
    def __pos__(self): return self
    def __abs__(self): return F.abs(self)
    def __getitem__(self, index): return F.getitem(self, index)

    # Comparisons give boolean tensors (no gradient), as in NumPy and PyTorch.
    def __eq__(self, other): return Tensor._make(self.data == _raw(other))
    def __ne__(self, other): return Tensor._make(self.data != _raw(other))
    def __lt__(self, other): return Tensor._make(self.data < _raw(other))
    def __le__(self, other): return Tensor._make(self.data <= _raw(other))
    def __gt__(self, other): return Tensor._make(self.data > _raw(other))
    def __ge__(self, other): return Tensor._make(self.data >= _raw(other))
    # An elementwise __eq__ would make the class unhashable; optimizer state is keyed
    # by the tensor object itself, so identity hashing is restored.
    __hash__ = object.__hash__

    def __setitem__(self, index, value):
        if self._rg and config.grad_enabled:
            raise RuntimeError("in-place assignment to a tensor that requires grad would "
                               "corrupt its gradient; do it under na.no_grad() or on .data")
        self.data[_raw_index(index)] = _raw(value)

    # -- methods that delegate to neural_arch.functional --------------------------
    def reshape(self, *shape): return F.reshape(self, _shape_args(shape))
    def view(self, *shape): return F.reshape(self, _shape_args(shape))
    def transpose(self, *axes): return F.transpose(self, _shape_args(axes) if axes else None)
    def permute(self, *axes): return F.transpose(self, _shape_args(axes))
    def swapaxes(self, a, b): return F.swapaxes(self, a, b)
    def flatten(self, start_dim=0, end_dim=-1): return F.flatten(self, start_dim, end_dim)
    def squeeze(self, axis=None): return F.squeeze(self, axis)
    def unsqueeze(self, axis): return F.unsqueeze(self, axis)
    def expand(self, *shape): return F.broadcast_to(self, _shape_args(shape))
    def broadcast_to(self, shape): return F.broadcast_to(self, shape)
    def repeat(self, repeats, axis=None): return F.repeat(self, repeats, axis)
    def tile(self, reps): return F.tile(self, reps)
    def flip(self, axis=None): return F.flip(self, axis)
    def sum(self, axis=None, keepdims=False): return F.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return F.mean(self, axis, keepdims)
    def var(self, axis=None, correction=1, keepdims=False):
        return F.var(self, axis, correction=correction, keepdims=keepdims)
    def std(self, axis=None, correction=1, keepdims=False):
        return F.std(self, axis, correction=correction, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return F.max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return F.min(self, axis, keepdims)
    def prod(self, axis=None, keepdims=False): return F.prod(self, axis, keepdims)
    def logsumexp(self, axis=None, keepdims=False): return F.logsumexp(self, axis, keepdims)
    def norm(self, ord=None, axis=None, keepdims=False): return F.norm(self, ord, axis, keepdims)
    def cumsum(self, axis=None): return F.cumsum(self, axis)
    def argmax(self, axis=None, keepdims=False): return F.argmax(self, axis, keepdims)
    def argmin(self, axis=None, keepdims=False): return F.argmin(self, axis, keepdims)
    def any(self, axis=None, keepdims=False):
        return Tensor._make(self.data.any(axis=axis, keepdims=keepdims))
    def all(self, axis=None, keepdims=False):
        return Tensor._make(self.data.all(axis=axis, keepdims=keepdims))
    def matmul(self, other): return F.matmul(self, other)
    def dot(self, other): return F.matmul(self, other)
    def abs(self): return F.abs(self)
    def sign(self): return F.sign(self)
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def log1p(self): return F.log1p(self)
    def expm1(self): return F.expm1(self)
    def sqrt(self): return F.sqrt(self)
    def square(self): return F.square(self)
    def sin(self): return F.sin(self)
    def cos(self): return F.cos(self)
    def tanh(self): return F.tanh(self)
    def sigmoid(self): return F.sigmoid(self)
    def relu(self): return F.relu(self)
    def softmax(self, axis=-1): return F.softmax(self, axis)
    def log_softmax(self, axis=-1): return F.log_softmax(self, axis)
    def clip(self, min=None, max=None): return F.clip(self, min, max)
    clamp = clip
    def pow(self, exponent): return F.pow(self, exponent)
    def maximum(self, other): return F.maximum(self, other)
    def minimum(self, other): return F.minimum(self, other)


_new = object.__new__


def _full_device(device):
    return device if ":" in device else device + ":0" if device != "cpu" else "cpu"


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


def _shape_args(args):
    """Accept both ``f(2, 3)`` and ``f((2, 3))``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


class _Retain:
    """Marker hook: keep ``.grad`` on a non-leaf tensor (see Tensor.retain_grad)."""

    def __repr__(self):
        return "retain_grad"


_RETAIN = _Retain()


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks = hooks
        self._hook = hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class Parameter(Tensor):
    """A leaf tensor that is a trainable parameter: ``requires_grad`` is on by default.

    Modules find their parameters by attribute assignment of Parameters, and
    optimizers key their state by the Parameter object itself.
    """

    __slots__ = ()

    def __init__(self, data, requires_grad=True, dtype=None, device=None, name=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, device=device,
                         name=name)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def as_tensor(x, dtype=None, device=None) -> Tensor:
    """Return ``x`` if it is already a Tensor (cast if asked), else wrap it."""
    if isinstance(x, Tensor):
        return x if dtype is None else x.to(device=device, dtype=dtype)
    return Tensor(x, dtype=dtype, device=device)


# The methods above delegate to neural_arch.functional, which itself builds on this
# module; importing it last breaks the cycle (see docs/architecture.rst).
from .. import functional as F  # noqa: E402
from ..functional.math import Add as _Add, Div as _Div, Mul as _Mul, Sub as _Sub  # noqa: E402
