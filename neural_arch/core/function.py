"""Function: one node of the graph, the only place that records it."""
from __future__ import annotations

import itertools
import os
import traceback
import weakref

import numpy as np

from .. import backend
from .grad_mode import config
from .tensor import Tensor

__all__ = ["Function", "AnomalyError"]

_make = Tensor._make
_new = object.__new__
_generic = np.generic
_ref = weakref.ref
# Creation order of recorded Functions: a consumer always has a larger number than
# the producers of its inputs, which is the order the engine's heap relies on.
_next_seq = itertools.count().__next__


class AnomalyError(FloatingPointError):
    """Raised in anomaly mode at the first NaN or inf, naming the op and where it was made."""


class Function:
    """A differentiable operation.

    Subclasses implement

    * ``forward(self, *xs)`` on raw arrays (NumPy or CuPy; begin with
      ``xp = get_array_module(...)``), returning one array or a tuple of arrays;
    * ``backward(self, *gys)`` on Tensors, returning one Tensor (or None) per input,
      written with neural_arch operations. The engine runs it without recording,
      unless ``create_graph=True``, in which case the same formula records a graph
      and gives higher-order derivatives. A first-order backward (``config.grad_enabled``
      False) may instead return raw arrays, computed with the same formula on the
      arrays (``Mul`` and ``Tanh`` do, to spare a node per product on the hot path).

    Attributes available in ``backward``: ``self.inputs`` (the Tensors and constants
    passed in), ``self.output(i)`` (the i-th output Tensor), ``self.needs_input_grad``.
    The engine reduces broadcast gradients to each input's shape, so ``backward``
    may return a gradient of the broadcast shape.

    Class attribute ``grad_bounded``: True when every local derivative is at most 1
    in magnitude and no input gradient is a sum (tanh, relu, add, reshape, ...);
    the engine then skips the clamp check, which cannot fire.
    """

    __slots__ = ("inputs", "outputs", "_seq", "_stack", "__dict__", "__weakref__")
    grad_bounded = False

    def __call__(self, *inputs):
        # Unwrap Tensors to arrays and note whether any input requires grad. Unary
        # and binary ops (nearly all of them) take the unrolled path: this is the
        # per-op overhead that the benchmarks measure.
        if config.autocast is not None:     # mixed precision: amp casts the inputs
            inputs = config.autocast(self, inputs)
        n = len(inputs)
        try:
            if n == 2:
                x0, x1 = inputs
                rg = False
                if isinstance(x0, Tensor):
                    rg = x0._rg
                    x0 = x0.data
                if isinstance(x1, Tensor):
                    rg = rg or x1._rg
                    x1 = x1.data
                ys = self.forward(x0, x1)
            elif n == 1:
                x0 = inputs[0]
                if isinstance(x0, Tensor):
                    rg = x0._rg
                    x0 = x0.data
                else:
                    rg = False
                ys = self.forward(x0)
            else:
                xs = []
                rg = False
                for x in inputs:
                    if isinstance(x, Tensor):
                        xs.append(x.data)
                        rg = rg or x._rg
                    else:
                        xs.append(x)
                ys = self.forward(*xs)
        except TypeError:
            _check_devices(self, [x.data if isinstance(x, Tensor) else x for x in inputs])
            raise
        except ValueError as e:
            # NumPy's shape messages name the shapes; say which op raised them.
            raise ValueError(f"{type(self).__name__}: {e}") from None
        record = rg and config.grad_enabled
        if type(ys) is tuple:
            outs = tuple(_make(y if not isinstance(y, _generic) else np.asarray(y),
                               self if record else None) for y in ys)
            if record:
                self.inputs = inputs
                self.outputs = tuple(_ref(o) for o in outs)
                self._seq = _next_seq()
        else:
            if isinstance(ys, _generic):
                ys = np.asarray(ys)
            # Tensor._make, inlined on the hot path.
            outs = _new(Tensor)
            outs.data = ys
            outs.grad = None
            outs._hooks = None
            if record:
                outs._rg = True
                outs.creator = self
                self.inputs = inputs
                self.outputs = (_ref(outs),)
                self._seq = _next_seq()
            else:
                outs._rg = False
                outs.creator = None
        if config.anomaly:
            self._stack = _user_frames() if record else None
            _check_finite(self, outs if type(outs) is tuple else (outs,), "forward")
        return outs

    def forward(self, *xs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *gys):
        raise NotImplementedError(f"{type(self).__name__} is not differentiable")

    def output(self, i: int = 0) -> Tensor:
        """The i-th output Tensor (held weakly, so reading it keeps no cycle alive)."""
        return self.outputs[i]()

    @property
    def needs_input_grad(self):
        """Tuple of bools: which inputs need a gradient."""
        return tuple(isinstance(x, Tensor) and x._rg for x in self.inputs)

    def __repr__(self):
        return f"<{type(self).__name__}>"


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_frames():
    """The current call stack without neural_arch's own frames (anomaly mode only)."""
    frames = [fr for fr in traceback.extract_stack()
              if not os.path.abspath(fr.filename).startswith(_PACKAGE_DIR + os.sep)]
    return traceback.format_list(frames[-3:])


def where_created(fn) -> str:
    """The source lines that created ``fn`` (recorded in anomaly mode only)."""
    stack = getattr(fn, "_stack", None)
    if not stack:
        return "(creation site unknown: enable na.autograd.detect_anomaly() before forward)"
    return "".join(stack).rstrip()


def _check_finite(fn, tensors, phase):
    for i, t in enumerate(tensors):
        a = t.data if isinstance(t, Tensor) else t
        if a is None or a.dtype.kind not in "fc":
            continue
        xp = backend.get_array_module(a)
        if not bool(xp.isfinite(a).all()):
            bad = "NaN" if bool(xp.isnan(a).any()) else "inf"
            raise AnomalyError(
                f"{type(fn).__name__}.{phase} produced {bad} in its output {i} "
                f"(shape {tuple(a.shape)}); the op was created at:\n{where_created(fn)}")


def _check_devices(fn, xs):
    devs = {backend.device_of(x) for x in xs
            if x is not None and not isinstance(x, (int, float, complex, bool, _generic))
            and hasattr(x, "shape")}
    if len(devs) > 1:
        raise backend.DeviceError(
            f"{type(fn).__name__} got inputs on different devices: {sorted(devs)}; "
            "move them to one device with .to(device)")
