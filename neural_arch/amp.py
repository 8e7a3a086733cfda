r"""Mixed precision: :class:`autocast` and :class:`GradScaler`.

Mixed-precision training runs the heavy products of a model (matrix products,
linear layers, convolutions) in a 16-bit float and keeps everything whose
accuracy depends on range or on long sums (reductions, softmax, norms, losses)
in float32. The parameters -- the *master weights* -- stay float32: the casts
to 16 bits are ordinary graph ops (``astype``), so the gradients flow back
through them and reach the float32 leaves as float32, and the optimizer updates
float32 weights. The loop is PyTorch's::

    scaler = na.amp.GradScaler()
    for x, y in loader:
        optimizer.zero_grad()
        with na.amp.autocast():                   # float16 by default
            loss = criterion(model(x), y)
        scaler.scale(loss).backward()             # backward of loss * S
        scaler.step(optimizer)                    # unscale; skip the step on inf/NaN
        scaler.update()                           # adapt S

On NumPy, float16 is slow but correct: NumPy has no float16 BLAS, so a float16
matrix product runs in a generic loop (about 100x slower than float32 on a
CPU). The point of this module is CuPy, where 16-bit products halve the memory
traffic and run on tensor cores; on the CPU it serves to develop and test the
same code. NumPy has no bfloat16 dtype, so ``autocast(dtype='bfloat16')`` is
refused there with an error naming the backend.

Which ops run in which dtype
----------------------------
Inside ``autocast`` the inputs of the listed ops are cast before the op runs;
every other op runs in the dtype of its inputs, as in PyTorch (the elementwise
ops and activations after a linear layer therefore run in the low dtype, and
a binary op that meets float16 and float32 gives float32, by NumPy's promotion).
float64 tensors are never cast.

================================  ==========================================================
runs in the low dtype             ``matmul`` (``@``), ``einsum`` (and so ``bilinear``),
(float32 inputs are cast down)    ``linear``, ``conv1d``, ``conv2d``, ``conv_transpose1d``,
                                  ``conv_transpose2d``
runs in float32                   reductions: ``sum``, ``mean``, ``var``, ``std``, ``prod``,
(16-bit inputs are cast up)       ``cumsum``, ``logsumexp``, ``norm``; ``softmax``,
                                  ``log_softmax``; ``exp``, ``log``, ``log1p``, ``expm1``,
                                  ``pow``, ``square``, ``softplus``; the norms
                                  ``batch_norm``, ``layer_norm``, ``group_norm``; the
                                  losses with their own op (``cross_entropy_loss``,
                                  ``binary_cross_entropy``, ``log_cosh_loss``) -- the
                                  other losses are built from the ops above and end in a
                                  float32 reduction
================================  ==========================================================

The table is consulted in one place, the call of a graph node
(:class:`~neural_arch.core.function.Function`), keyed by the node's class (see
:data:`LOWER_PRECISION_OPS`, :data:`FLOAT32_OPS`). Entering the outermost
``autocast`` sets the engine's autocast hook (``config.autocast``), which
``Function.__call__`` consults before unwrapping its inputs; outside ``autocast``
the hook is None and an op pays one attribute check. The switch is process-wide,
like grad mode.
Run ``backward`` outside the ``autocast`` block, as in PyTorch (a backward under
:meth:`GradScaler.scale` does so by itself).

Loss scaling and the automatic gradient clamp
---------------------------------------------
Small gradients underflow in float16 (below about 6e-8 they become 0), so
:class:`GradScaler` multiplies the loss by a large factor ``S`` before
backward, divides the gradients by ``S`` before the update, and skips updates
whose gradients overflowed (inf/NaN), halving ``S``; after ``growth_interval``
clean steps it doubles ``S``.

The engine clamps every gradient edge to ``[-c, c]`` (``c = 1e6`` by default,
:func:`neural_arch.autograd.set_grad_clip`), which clashes with scaling twice:
scaled gradients are ``S`` times larger (with ``S = 65536`` a true gradient of
16 would be clamped), and on a float16 edge an overflow to inf would be
clamped to 65504, so the overflow that the scaler must see would be hidden and
the scale would never come down. Therefore the backward of a tensor returned
by :meth:`GradScaler.scale` runs **with the clamp off**, and the scaler applies
the clamp once, to the *unscaled* gradients of the parameters, in
:meth:`GradScaler.unscale_` (with the bound in force when that backward ran;
the clamped elements are counted in
:func:`neural_arch.autograd.last_clamped_count`). Overflows are skipped, not
clamped, which is the scaler's own safety net. Call ``backward`` on the
tensor that ``scale`` returns (scale the final loss, after any division for
gradient accumulation); with :func:`neural_arch.autograd.grad` on a scaled loss
(gradient penalties), scope the clamp yourself with
``na.autograd.grad_clip(None)``.

Recipes
-------
* **Gradient clipping** -- unscale first, as in PyTorch::

      scaler.scale(loss).backward()
      scaler.unscale_(optimizer)
      na.optim.clip_grad_norm_(params, max_norm=1.0)
      scaler.step(optimizer)            # does not unscale a second time
      scaler.update()

  ``max_grad_norm=`` of an optimizer clips inside its ``step``, which the scaler
  calls after unscaling, so it needs nothing extra.
* **Closure optimizers** (LBFGS, and SAM/ASAM with both passes in one call):
  pass the closure to :meth:`GradScaler.step`; the closure calls
  ``scaler.scale(loss).backward()`` and returns the (unscaled) loss::

      def closure():
          optimizer.zero_grad()
          with na.amp.autocast():
              loss = criterion(model(x), y)
          scaler.scale(loss).backward()
          return loss
      scaler.step(optimizer, closure)
      scaler.update()

  The scaler unscales and checks the gradients after *every* evaluation, so
  LBFGS's line search and SAM's second pass see true gradients. An overflow in
  any evaluation skips the whole step: the parameters and the optimizer's state
  are put back as they were before it (a copy of both is taken at the start of
  each closure step). SAM's two-pass loop written out by hand
  (``first_step``/``second_step``) cannot be guarded between its passes; use
  the closure form ``scaler.step(sam, closure)`` under a scaler.
* Optimizers that differentiate task losses themselves (PCGrad, GradNorm) take
  no scaler: :meth:`GradScaler.step` refuses their loss lists. Gradient-free
  optimizers need none.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import numbers

import numpy as np

from . import backend
from .core.function import Function
from .core.grad_mode import config, grad_clip
from .core.tensor import Tensor
from . import functional as F

# (LOWER_PRECISION_OPS and FLOAT32_OPS are attributes too, made on first use.)
__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "get_autocast_dtype"]

_F32 = np.dtype(np.float32)
_F16 = np.dtype(np.float16)


# ==== autocast ============================================================================

def _op_tables():
    """(LOWER_PRECISION_OPS, FLOAT32_OPS): the Function classes of each policy."""
    def module(name):     # by full name: F.linear and F.conv... are also functions
        return importlib.import_module(f"{__package__}.{name}")
    activation, conv, linalg, linear, fmath, normalization, reduce = (
        module(f"functional.{m}") for m in ("activation", "conv", "linalg", "linear", "math",
                                            "normalization", "reduce"))
    classification, regression = (module(f"losses.functional.{m}")
                                  for m in ("classification", "regression"))
    lower = (linalg.MatMul, linalg.Einsum, linear.Linear, conv.Conv, conv.ConvTranspose)
    float32 = (reduce.Sum, reduce.Mean, reduce.Var, reduce.Std, reduce.Prod,
               reduce.Cumsum, reduce.LogSumExp, reduce.VectorNorm, reduce.SingularNorm,
               activation.Softmax, activation.LogSoftmax, activation.Softplus,
               fmath.Exp, fmath.Log, fmath.Log1p, fmath.Expm1, fmath.Pow, fmath.Square,
               normalization.Standardize, classification.SoftmaxCrossEntropy,
               classification.BinaryCrossEntropy, regression.LogCosh)
    return lower, float32


_LOWER, _UP = 1, 2
_POLICY = {}   # Function class -> _LOWER or _UP; filled when autocast is first entered


def _policy():
    # Built lazily: the loss ops live in neural_arch.losses, which importing this
    # module (from neural_arch.optim) must not pull in.
    if not _POLICY:
        lower, float32 = _op_tables()
        _POLICY.update({cls: _LOWER for cls in lower})
        _POLICY.update({cls: _UP for cls in float32})
    return _POLICY


def __getattr__(name):
    # LOWER_PRECISION_OPS: graph-node classes whose float32 inputs are cast to the
    # autocast dtype; FLOAT32_OPS: those whose 16-bit float inputs are cast to float32.
    if name == "LOWER_PRECISION_OPS":
        return _op_tables()[0]
    if name == "FLOAT32_OPS":
        return _op_tables()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _State:
    """The autocast switch: the low dtype in force (None: off) and the saved outer ones."""

    dtype = None
    stack = []


def _is_16bit(dt):
    return dt.itemsize == 2 and (dt.kind == "f" or dt.name == "bfloat16")


def _cast(x, dtype):
    # Tensors through the differentiable astype (the gradient comes back in the
    # input's dtype); raw arrays given as constants are cast directly.
    return F.astype(x, dtype) if isinstance(x, Tensor) else x.astype(dtype)


def _cast_inputs(inputs, policy, low):
    out = None
    for i, x in enumerate(inputs):
        dt = getattr(x, "dtype", None)
        if dt is None:
            continue
        if policy is _LOWER:
            if dt != _F32:
                continue
            y = _cast(x, low)
        else:
            if not _is_16bit(dt):
                continue
            y = _cast(x, _F32)
        if out is None:
            out = list(inputs)
        out[i] = y
    return inputs if out is None else tuple(out)


def _autocast_inputs(fn, inputs):
    # The engine's autocast hook (core config.autocast), called by Function.__call__
    # while an autocast block is open: cast the inputs of the listed ops.
    policy = _POLICY.get(type(fn))
    if policy is not None:
        low = _State.dtype
        if low is not None:
            inputs = _cast_inputs(inputs, policy, low)
    return inputs


def _push(dtype):
    if not _State.stack:
        _policy()
        config.autocast = _autocast_inputs
    _State.stack.append(_State.dtype)
    _State.dtype = dtype


def _pop():
    _State.dtype = _State.stack.pop()
    if not _State.stack:
        config.autocast = None


def _low_dtype(dtype, check_backend):
    """The numpy dtype of an autocast dtype spelling; bfloat16 only where the backend has it."""
    if isinstance(dtype, str):
        name = dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = getattr(dtype, "__name__", repr(dtype))
    if name in ("float16", "half"):
        return _F16
    if name == "bfloat16":
        device = backend.get_default_device()
        xp = backend.array_module_for(device)
        bf16 = getattr(xp, "bfloat16", None)
        if bf16 is None:
            if not check_backend:
                return None
            lib = "NumPy" if xp is np else getattr(xp, "__name__", repr(xp))
            raise TypeError(f"autocast(dtype='bfloat16') needs a backend with a bfloat16 "
                            f"dtype, but the default device {device!r} runs on {lib}, which "
                            f"has none; use dtype='float16'")
        return np.dtype(bf16)
    raise ValueError(f"autocast dtype must be 'float16' or 'bfloat16', got {dtype!r}")


class autocast(contextlib.ContextDecorator):
    """Run the listed ops in a 16-bit float inside a ``with`` block (or a decorated function).

    Matrix products and convolutions take the low dtype; reductions, softmax,
    norms and losses take float32; every other op follows its inputs (see the
    module docstring for the op list). Parameters stay float32; the casts are
    differentiable, so gradients reach them in float32. On NumPy float16 is slow
    but correct (no float16 BLAS); the speed is CuPy's.

    Parameters
    ----------
    dtype : {'float16', 'bfloat16'} or dtype, default 'float16'
        The low dtype. ``'bfloat16'`` needs a backend that has it (NumPy has none:
        a ``TypeError`` names the backend).
    enabled : bool, default True
        False makes the block a no-op; inside an enclosing autocast it switches
        the casting off.

    Notes
    -----
    The switch is process-wide (like ``no_grad``), and blocks nest: the
    innermost one decides. Call ``backward`` after the block.

    Examples
    --------
    >>> import neural_arch as na
    >>> from neural_arch.amp import autocast
    >>> x, w = na.ones((2, 3)), na.Parameter(na.ones((3, 4)).data)
    >>> with autocast():
    ...     y = x @ w
    ...     s = y.sum()
    >>> str(y.dtype), str(s.dtype), str(w.dtype)
    ('float16', 'float32', 'float32')
    """

    def __init__(self, dtype="float16", enabled=True):
        if not isinstance(enabled, bool):
            raise TypeError(f"autocast: enabled must be True or False, got {enabled!r}")
        self.dtype = _low_dtype(dtype, check_backend=enabled)
        self.enabled = enabled

    def __enter__(self):
        _push(self.dtype if self.enabled else None)
        return self

    def __exit__(self, *exc):
        _pop()
        return False

    def __repr__(self):
        name = None if self.dtype is None else self.dtype.name
        return f"autocast(dtype={name!r}, enabled={self.enabled})"


def is_autocast_enabled() -> bool:
    """True inside an enabled :class:`autocast` block."""
    return _State.dtype is not None


def get_autocast_dtype():
    """The dtype of the innermost enabled :class:`autocast` block (None outside)."""
    return _State.dtype


@contextlib.contextmanager
def _autocast_suspended():
    """No casting inside (backward of a scaled loss runs in the forward's dtypes)."""
    saved = _State.dtype
    _State.dtype = None
    try:
        yield
    finally:
        _State.dtype = saved


# ==== GradScaler ==========================================================================

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"


class _Overflow(Exception):
    """An evaluation inside a closure step gave inf/NaN gradients (the step is undone)."""


class _Scale(Function):
    """``x * factor`` for a Python float ``factor`` (keeps the dtype of ``x``)."""

    def __init__(self, factor, scaler):
        self.factor = factor
        self.scaler = scaler

    def forward(self, x):
        return x * self.factor

    def backward(self, gy):
        return gy * self.factor


class _ScaledTensor(Tensor):
    """A tensor returned by :meth:`GradScaler.scale`: its backward runs without the clamp.

    The clamp is applied by the scaler to the unscaled gradients instead (see the
    module docstring), autocast is suspended during the backward, and NumPy's
    overflow warnings are silenced (an overflow is the scaler's business).
    """

    __slots__ = ()

    def backward(self, grad=None, retain_graph=None, create_graph=False, inputs=None):
        f = self.creator
        scaler = getattr(f, "scaler", None)     # read now: backward frees the node
        bound = config.clip
        # Overflow is expected here now and then: the scaler detects it and skips the
        # step, so NumPy's warnings about it would only be noise.
        with _autocast_suspended(), grad_clip(None), np.errstate(over="ignore",
                                                                  invalid="ignore"):
            Tensor.backward(self, grad, retain_graph=retain_graph, create_graph=create_graph,
                            inputs=inputs)
        if scaler is not None:
            scaler._scaled_backwards += 1
            scaler._clamp_bound = bound


def _f32(x):
    """``x`` rounded to float32, as a Python float (the scale is a float32, as in PyTorch)."""
    with np.errstate(over="ignore"):
        return float(np.float32(x))


def _check_factor(name, value, test, expected):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or not test(value):
        raise ValueError(f"GradScaler: {name} must be {expected}, got {value!r}")
    return float(value)


def _check_interval(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"GradScaler: growth_interval must be a positive integer, got "
                         f"{value!r}")
    return int(value)


def _check_scale(value, what="init_scale"):
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        if value.size != 1:
            raise ValueError(f"GradScaler: {what} must hold one number, got shape "
                             f"{tuple(value.shape)}")
        value = backend.asnumpy(value).reshape(()).item()
    return _check_factor(what, value, lambda v: v > 0, "a positive finite number")


def _closure_of(args, kwargs):
    """Where ``step``'s closure is: (closure, 0 | 'closure') or (None, None)."""
    if args and callable(args[0]):
        return args[0], 0
    if callable(kwargs.get("closure")):
        return kwargs["closure"], "closure"
    return None, None


class GradScaler:
    """Dynamic loss scaling for float16 training, with PyTorch's semantics.

    ``scale(loss)`` multiplies the loss by the scale ``S``; ``step(optimizer)``
    divides the gradients by ``S`` (unless :meth:`unscale_` did already) and
    skips the update when any gradient is inf or NaN; ``update()`` halves ``S``
    (``backoff_factor``) after a skipped step and multiplies it by
    ``growth_factor`` after ``growth_interval`` steps in a row without one. The
    scale is held as a float32, and its sequence equals
    ``torch.amp.GradScaler``'s for the same pattern of overflows.

    Parameters
    ----------
    init_scale : float, default 2.0**16
        The first scale.
    growth_factor : float, default 2.0
        Factor (> 1) applied after ``growth_interval`` clean steps.
    backoff_factor : float, default 0.5
        Factor (in (0, 1)) applied after a step with inf/NaN gradients.
    growth_interval : int, default 2000
        Clean steps between growths.
    enabled : bool, default True
        False makes every method a pass-through (``scale`` returns the loss,
        ``step`` calls ``optimizer.step``), so one loop serves both precisions.

    Notes
    -----
    * The backward of the tensor ``scale`` returns runs with the engine's gradient
      clamp off; the clamp is applied to the unscaled parameter gradients in
      :meth:`unscale_` instead (module docstring).
    * Works with every optimizer whose update reads ``.grad`` (wrappers such as
      Lookahead included) and, through ``step(optimizer, closure)``, with closure
      optimizers (LBFGS; SAM/ASAM doing both passes): see the module docstring
      for the recipes, and for ``clip_grad_norm_`` after ``unscale_``.
    * The scale, the unscaling and the inf check run on each gradient's own
      device; one host synchronisation per step decides whether to update.

    Examples
    --------
    >>> import neural_arch as na
    >>> w = na.Parameter(na.ones(3).data)
    >>> opt = na.optim.SGD([w], lr=0.1)
    >>> scaler = na.amp.GradScaler(init_scale=1024.0)
    >>> scaler.scale((w * w).sum()).backward()
    >>> float(w.grad.data[0])                 # scaled gradient: 2 * 1024
    2048.0
    >>> scaler.step(opt)                      # unscales (2.0), then steps
    >>> scaler.update()
    >>> float(w.data[0]), scaler.get_scale()
    (0.800000011920929, 1024.0)
    """

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if not isinstance(enabled, bool):
            raise TypeError(f"GradScaler: enabled must be True or False, got {enabled!r}")
        self._enabled = enabled
        self._scale = _f32(_check_scale(init_scale))
        self._growth_factor = _check_factor("growth_factor", growth_factor,
                                            lambda v: v > 1, "a finite number > 1.0")
        self._backoff_factor = _check_factor("backoff_factor", backoff_factor,
                                             lambda v: 0 < v < 1, "a number in (0, 1)")
        self._growth_interval = _check_interval(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer = {}        # optimizer -> {'stage': ..., 'found_inf': bool}
        self._scaled_backwards = 0      # backward passes run through scale()'s tensors
        self._clamp_bound = None        # clamp bound in force at the last such backward

    # ---- the loop ---------------------------------------------------------------------
    def scale(self, outputs):
        """Multiply ``outputs`` by the scale (a Tensor, or a list/tuple of them).

        The result's ``backward`` runs with the gradient clamp off (module docstring).
        With the scaler disabled, ``outputs`` is returned as it is.
        """
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return self._scale_one(outputs)
        if isinstance(outputs, (list, tuple)):
            scaled = [self.scale(o) for o in outputs]
            return scaled if isinstance(outputs, list) else tuple(scaled)
        raise TypeError(f"GradScaler.scale expects a Tensor or a list/tuple of Tensors, got "
                        f"{type(outputs).__name__}")

    def _scale_one(self, t):
        if t.data.dtype.kind != "f" and not _is_16bit(t.data.dtype):
            raise TypeError(f"GradScaler.scale expects floating-point tensors, got dtype "
                            f"{t.data.dtype}")
        out = _Scale(self._scale, self)(t)
        out.__class__ = _ScaledTensor
        return out

    def unscale_(self, optimizer):
        """Divide the gradients of ``optimizer``'s parameters by the scale, in place.

        Also records whether any of them is inf/NaN (for :meth:`step` and
        :meth:`update`) and, when they are all finite, applies the gradient clamp
        to them (module docstring). Call it at most once per optimizer between
        updates, before gradient clipping.

        Raises
        ------
        RuntimeError
            Called twice since the last :meth:`update`, or after :meth:`step`.
        ValueError
            A float16 gradient (the parameters must stay float32).
        """
        if not self._enabled:
            return
        state = self._state_of(optimizer)
        if state["stage"] is _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update().")
        if state["stage"] is _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        state["found_inf"] = self._unscale_grads(optimizer)
        state["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale (if not done yet) and step ``optimizer`` unless a gradient is inf/NaN.

        Parameters
        ----------
        optimizer : Optimizer
        *args, **kwargs
            Passed to ``optimizer.step``. A closure (first positional argument or
            ``closure=``) must call ``scaler.scale(loss).backward()`` and return the
            loss; its gradients are unscaled and checked after every evaluation,
            and an overflow in any of them undoes the whole step.

        Returns
        -------
        What ``optimizer.step`` returned, or None when the step was skipped.

        Raises
        ------
        RuntimeError
            ``step`` twice since the last :meth:`update`; a closure after
            :meth:`unscale_`; a closure that did not backward a scaled loss.
        TypeError
            Non-callable positional arguments (task losses for PCGrad, GradNorm),
            which the optimizer would differentiate without the scale.
        """
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        state = self._state_of(optimizer)
        if state["stage"] is _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        closure, where = _closure_of(args, kwargs)
        if closure is not None:
            if state["stage"] is _UNSCALED:
                raise RuntimeError("GradScaler.step(optimizer, closure) after unscale_(): the "
                                   "closure computes new gradients, which step unscales "
                                   "after each evaluation itself; do not call unscale_ first")
            return self._step_with_closure(optimizer, state, closure, where, args, kwargs)
        if args:
            raise TypeError(f"GradScaler.step: {type(optimizer).__name__}.step got "
                            f"{type(args[0]).__name__} arguments that it differentiates "
                            f"itself (task losses); they would be differentiated without the "
                            f"loss scale, so such optimizers run without a GradScaler")
        if state["stage"] is _READY:
            self.unscale_(optimizer)
        out = None if state["found_inf"] else optimizer.step(**kwargs)
        state["stage"] = _STEPPED
        return out

    def _step_with_closure(self, optimizer, state, closure, where, args, kwargs):
        def unscaling_closure():
            before = self._scaled_backwards
            loss = closure()
            if self._scaled_backwards == before:
                raise RuntimeError("the closure given to GradScaler.step must compute its "
                                   "gradients with scaler.scale(loss).backward()")
            if self._unscale_grads(optimizer):
                raise _Overflow
            return loss

        if where == 0:
            args = (unscaling_closure,) + tuple(args[1:])
        else:
            kwargs = {**kwargs, "closure": unscaling_closure}
        params = _params_of(optimizer)
        saved_params = [p.data.copy() for p in params]
        saved_state = optimizer.state_dict()
        try:
            out = optimizer.step(*args, **kwargs)
            state["found_inf"] = False
        except _Overflow:
            for p, saved in zip(params, saved_params):
                backend.get_array_module(saved).copyto(p.data, saved)
            optimizer.load_state_dict(saved_state)
            state["found_inf"] = True
            out = None
        state["stage"] = _STEPPED
        return out

    def update(self, new_scale=None):
        """Adapt the scale after the step(s) of this iteration; reset the per-step records.

        Parameters
        ----------
        new_scale : float or one-element Tensor/array, optional
            Set the scale to this instead (the growth counter is kept).

        Raises
        ------
        RuntimeError
            No :meth:`step` or :meth:`unscale_` since the last update.
        """
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = _f32(_check_scale(new_scale, "new_scale"))
        else:
            found = [s["found_inf"] for s in self._per_optimizer.values() if "found_inf" in s]
            if not found:
                raise RuntimeError("No inf checks were recorded prior to update(): call "
                                   "scaler.step(optimizer) (or unscale_) after "
                                   "scaler.scale(loss).backward()")
            if any(found):
                self._scale = _f32(self._scale * self._backoff_factor)
                self._growth_tracker = 0
            else:
                successful = self._growth_tracker + 1
                if successful == self._growth_interval:
                    grown = _f32(self._scale * self._growth_factor)
                    if math.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
                else:
                    self._growth_tracker = successful
        self._per_optimizer = {}

    # ---- the gradients ----------------------------------------------------------------
    def _state_of(self, optimizer):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"GradScaler expects an optimizer, got {type(optimizer).__name__}")
        state = self._per_optimizer.get(optimizer)
        if state is None:
            state = self._per_optimizer[optimizer] = {"stage": _READY}
        return state

    def _unscale_grads(self, optimizer):
        """Multiply every gradient by 1/S in place; True when any is inf/NaN.

        When all are finite, the clamp bound of the last scaled backward is
        applied to them and the clamped elements are counted.
        """
        inv = _f32(1.0 / self._scale)       # as PyTorch: reciprocal in float64, then float32
        grads, extremes = [], {}
        for p in _params_of(optimizer):
            g = p.grad
            if g is None:
                continue
            a = g.data if isinstance(g, Tensor) else g
            if _is_16bit(a.dtype):
                raise ValueError(f"Attempting to unscale {a.dtype} gradients: keep the "
                                 f"parameters (the master weights) in float32 and let "
                                 f"autocast cast them")
            if a.size == 0:
                continue
            try:
                a *= inv
            except ValueError:            # a read-only gradient array: replace it
                a = a * inv
                p.grad = Tensor._make(a) if isinstance(g, Tensor) else a
            dev = backend.device_of(a)
            values = extremes.setdefault(dev, [])
            grads.append((a, dev, len(values)))
            values.extend((a.min(), a.max()))
        if not grads:
            return False
        # One host copy per device of everyone's (min, max): NaN and inf show in them.
        host = {}
        for dev, values in extremes.items():
            xp = backend.get_array_module(values[0])
            host[dev] = backend.asnumpy(xp.stack(values)).astype(np.float64)
        if not all(np.isfinite(v).all() for v in host.values()):
            return True
        c = self._clamp_bound
        if c is not None:
            clamped = 0
            for a, dev, i in grads:
                lo, hi = host[dev][i:i + 2]
                if lo < -c or hi > c:
                    xp = backend.get_array_module(a)
                    clamped += int(xp.count_nonzero(xp.abs(a) > c))
                    xp.clip(a, -c, c, out=a)
            if clamped:
                config.clamped = config.clamped + clamped
        return False

    # ---- settings and state -------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def is_enabled(self) -> bool:
        """Whether the scaler is enabled."""
        return self._enabled

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        self._growth_factor = _check_factor("growth_factor", new_factor, lambda v: v > 1,
                                            "a finite number > 1.0")

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        self._backoff_factor = _check_factor("backoff_factor", new_factor,
                                             lambda v: 0 < v < 1, "a number in (0, 1)")

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        self._growth_interval = _check_interval(new_interval)

    def state_dict(self) -> dict:
        """``{'scale', 'growth_factor', 'backoff_factor', 'growth_interval',
        '_growth_tracker'}`` as plain numbers (PyTorch's keys); ``{}`` when disabled."""
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict`; checks everything before changing anything.

        Raises
        ------
        RuntimeError
            An empty dict (saved from a disabled scaler).
        ValueError
            A missing key or an invalid value.
        """
        if not self._enabled:
            return
        if not isinstance(state_dict, dict):
            raise TypeError(f"GradScaler.load_state_dict expects a dict, got "
                            f"{type(state_dict).__name__}")
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was "
                               "saved from a disabled instance of GradScaler.")
        keys = ("scale", "growth_factor", "backoff_factor", "growth_interval",
                "_growth_tracker")
        missing = [k for k in keys if k not in state_dict]
        if missing:
            raise ValueError(f"GradScaler.load_state_dict: the state dict lacks {missing}")
        scale = _f32(_check_scale(state_dict["scale"], "scale"))
        growth = _check_factor("growth_factor", state_dict["growth_factor"],
                               lambda v: v > 1, "a finite number > 1.0")
        backoff = _check_factor("backoff_factor", state_dict["backoff_factor"],
                                lambda v: 0 < v < 1, "a number in (0, 1)")
        interval = _check_interval(state_dict["growth_interval"])
        tracker = state_dict["_growth_tracker"]
        if isinstance(tracker, bool) or not isinstance(tracker, numbers.Integral) \
                or tracker < 0:
            raise ValueError(f"GradScaler: _growth_tracker must be a non-negative integer, "
                             f"got {tracker!r}")
        self._scale, self._growth_factor, self._backoff_factor = scale, growth, backoff
        self._growth_interval, self._growth_tracker = interval, int(tracker)

    def __repr__(self):
        if not self._enabled:
            return "GradScaler(enabled=False)"
        return (f"GradScaler(scale={self._scale!r}, growth_factor={self._growth_factor!r}, "
                f"backoff_factor={self._backoff_factor!r}, "
                f"growth_interval={self._growth_interval!r})")


def _params_of(optimizer):
    return [p for group in optimizer.param_groups for p in group["params"]]
