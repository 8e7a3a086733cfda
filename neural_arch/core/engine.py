"""The backward engine: reverse-mode accumulation over the recorded graph.

One pass, no recursion and no re-sorting. Every recorded Function carries a
sequence number from a global counter, so a Function's consumers always carry
larger numbers than it does. Functions that have received a gradient wait in a
max-heap on that number; popping the largest one guarantees that every consumer
which can still contribute to its gradients has already run, so its gradients
are complete. Its ``backward`` then sends gradients to its inputs' creators,
which enter the heap on their first gradient.

Every gradient that flows along an edge is reduced to its input's shape
(``sum_to``), cast to its dtype, and clamped elementwise to ``[-c, c]`` when the
automatic clamp is on (:func:`neural_arch.autograd.set_grad_clip`). The clamp
check is skipped where it cannot fire: for the outputs of a ``grad_bounded`` op
whose incoming gradients are each a single, already clamped edge.
"""
from __future__ import annotations

import heapq

import numpy as np

from .. import backend
from .function import AnomalyError, _check_finite, where_created
from .grad_mode import config
from .tensor import _RETAIN, Tensor

__all__ = ["run_backward", "clamp_gradient", "last_clamped_count", "where_created"]

_make = Tensor._make
_ndarray = np.ndarray
_generic = np.generic
_absmax = np.maximum.reduce
_abs = np.abs
_vdot = np.vdot
_SMALL = 4096
# Up to this size a float32 sum of squares is accurate to far better than the
# factor-4 margin of the cheap clamp test.
_VDOT_MAX = 1 << 22
_f32 = np.dtype(np.float32)
_f64 = np.dtype(np.float64)
_push = heapq.heappush
_pop = heapq.heappop


def last_clamped_count() -> int:
    """Number of gradient elements the automatic clamp changed in the last backward."""
    return int(config.clamped)


def clamp_gradient(g: Tensor, c: float, create_graph: bool) -> Tensor:
    """Clamp one edge's gradient to ``[-c, c]`` and count the elements changed.

    On NumPy the (rare) clamp is preceded by a cheap range check, so an in-range
    gradient costs one reduction and is returned as is. On other backends the clamp
    runs unconditionally and the count stays on the device until read, so backward
    never waits for the GPU. Under ``create_graph`` the differentiable ``clip`` op
    does the clamping, so higher-order gradients see its mask.
    """
    a = g.data
    if a.dtype.kind not in "fc" or a.size == 0:
        return g
    xp = backend.get_array_module(a)
    # A dtype whose largest value is below c (float16 and the default c) can only
    # exceed it with infinities; clamp those to the largest finite value.
    c = min(c, float(xp.finfo(a.dtype).max))
    if xp is np:
        if a.size <= _SMALL:
            if _absmax(_abs(a), None) <= c:
                return g
        elif a.max() <= c and a.min() >= -c:
            return g
        config.clamped += int(np.count_nonzero(np.abs(a) > c))
    else:
        config.clamped = config.clamped + xp.count_nonzero(xp.abs(a) > c)
    if create_graph:
        return F.clip(g, -c, c)
    return _make(xp.clip(a, -c, c))


def _seed(out, grad):
    if not isinstance(out, Tensor):
        raise TypeError(f"backward expects Tensors, got {type(out).__name__}")
    if not out._rg:
        raise RuntimeError("backward was called on a tensor that does not require grad "
                           "and has no creator; did you forget requires_grad=True, or "
                           "compute it under no_grad()?")
    if grad is None:
        if out.data.size != 1:
            raise RuntimeError(
                f"grad can be created implicitly only for outputs with one element; this "
                f"output has shape {tuple(out.shape)}, so pass grad= of that shape")
        return _make(backend.get_array_module(out.data).ones_like(out.data)), True
    g = grad if isinstance(grad, Tensor) else Tensor(grad, dtype=out.dtype,
                                                      device=out.device)
    if tuple(g.shape) != tuple(out.shape):
        raise ValueError(f"grad has shape {tuple(g.shape)} but the output has shape "
                         f"{tuple(out.shape)}; they must match")
    if g.data.dtype != out.data.dtype:
        g = g.astype(out.dtype)
    return g, False


def _run_hooks(t, g):
    """Apply ``t``'s hooks to its gradient; returns (gradient, replaced?)."""
    replaced = False
    for h in t._hooks:
        if h is _RETAIN:
            t.grad = g
        else:
            r = h(g)
            if r is not None:
                g = r if isinstance(r, Tensor) else Tensor(r)
                replaced = True
    return g, replaced


def _reduce_to_input(f, gx, shape):
    """Sum a broadcast gradient down to its input's shape, or name the culprit."""
    given = gx.data.shape
    try:
        gx = F.sum_to(gx, shape)
    except ValueError:
        gx = None
    if gx is None or gx.data.shape != shape:
        raise RuntimeError(f"{type(f).__name__}.backward gave a gradient of shape "
                           f"{tuple(given)} for an input of shape {tuple(shape)}")
    return gx


def _backward_in_anomaly_mode(f, gys):
    """Run ``f.backward``; a NaN/inf made by the ops inside it is reported as ``f``'s."""
    try:
        return f.backward(*gys)
    except AnomalyError as e:
        raise AnomalyError(f"{type(f).__name__}.backward produced a non-finite value "
                           f"({e.args[0].splitlines()[0]}); {type(f).__name__} was created "
                           f"at:\n{where_created(f)}") from e


def _accumulate(x, g):
    """Add ``g`` into the existing ``x.grad`` in place, as PyTorch does: a gradient
    buffer kept across backward calls (``zero_grad(set_to_none=False)``, contiguous
    optimizers) stays the same array."""
    acc = x.grad.data
    try:
        acc += g.data
    except (TypeError, ValueError):   # a read-only or non-castable buffer
        x.grad = _make(acc + g.data)


def _raise_freed(f):
    raise RuntimeError(
        f"trying to backward through {type(f).__name__} a second time: its saved "
        "arrays were freed by the first backward; pass retain_graph=True to the "
        "first call if you need to run backward twice")


def _output_index(f, x):
    for i, wr in enumerate(f.outputs):
        if wr() is x:
            return i
    raise RuntimeError(f"tensor is not an output of its creator {type(f).__name__}")


def run_backward(outputs, grad_outputs, retain_graph=None, create_graph=False,
                 inputs=None, accumulate=True, allow_unused=True):
    """Back-propagate from ``outputs``.

    With ``accumulate=True`` gradients are added into the leaves' ``.grad`` (only the
    leaves in ``inputs`` when given). With ``accumulate=False`` nothing is written to
    ``.grad``; the gradients with respect to ``inputs`` are returned as a list.
    """
    if retain_graph is None:
        retain_graph = create_graph
    c = config.clip
    c_sq4 = None if c is None else 0.25 * c * c
    config.clamped = 0
    targets = captured = None
    if inputs is not None:
        inputs = list(inputs)
        for t in inputs:
            if not isinstance(t, Tensor) or not t._rg:
                raise RuntimeError("every tensor in inputs= must be a Tensor that requires grad")
        targets = {id(t): i for i, t in enumerate(inputs)}
        captured = [None] * len(inputs)
    capture_nonleaf = targets is not None and not accumulate
    plain_leaves = targets is None and not create_graph
    # Arrays already handed to some .grad in this pass: a second leaf gets a copy.
    assigned = set()

    def deliver_leaf(x, g, gys):
        # A leaf's gradient: hooks, then capture or accumulation into .grad. The
        # engine owns g's array unless it is one of the incoming gradients ``gys``
        # passed straight through (or a view), or a hook replaced it.
        owned = not any(g is gy for gy in gys)
        if x._hooks:
            g, replaced = _run_hooks(x, g)
            owned = owned and not replaced
        if targets is not None:
            i = targets.get(id(x))
            if i is None:
                return
            if not accumulate:
                prev = captured[i]
                captured[i] = g if prev is None else (
                    prev + g if create_graph else _make(prev.data + g.data))
                return
        if x.grad is None:
            if not create_graph:
                a = g.data
                if not owned or id(a) in assigned or a.base is not None:
                    a = a.copy()
                assigned.add(id(a))
                g = _make(a)
            x.grad = g
        elif create_graph:
            x.grad = x.grad + g
        else:
            _accumulate(x, g)

    seeds = []
    for out, grad in zip(outputs, grad_outputs):
        g, ok = _seed(out, grad)
        seeds.append((out, g, ok and (c is None or c >= 1)))

    # Pending gradients, keyed by the Function that produced the tensor. An entry is
    # [gradient, known to lie in [-c, c], the tensor]; holding the tensor keeps it
    # alive after its consumers are released. Multi-output Functions get a list of
    # entries, one per output.
    grads = {}

    heap = []   # (-sequence number, Function) of the Functions that hold gradients

    def add_pending(x, p, g, ok):
        outs = p.outputs
        if outs is None:
            _raise_freed(p)
        n_out = len(outs)
        if n_out == 1:
            e = grads.get(p)
            if e is None:
                grads[p] = [g, ok, x]
                _push(heap, (-p._seq, p))
                return
        else:
            slots = grads.get(p)
            if slots is None:
                slots = grads[p] = [None] * n_out
                _push(heap, (-p._seq, p))
            i = _output_index(p, x)
            e = slots[i]
            if e is None:
                slots[i] = [g, ok, x]
                return
        e[0] = e[0] + g if create_graph else _make(e[0].data + g.data)
        e[1] = False

    for out, g, ok in seeds:
        if out.creator is None:
            deliver_leaf(out, g, (g,))
        else:
            add_pending(out, out.creator, g, ok)

    anomaly = config.anomaly
    prev_mode = config.grad_enabled
    config.grad_enabled = create_graph
    try:
        while heap:
            f = _pop(heap)[1]
            e = grads.pop(f)
            bounded = f.grad_bounded
            if len(f.outputs) == 1:
                g, ok, y = e
                if y._hooks:
                    g, replaced = _run_hooks(y, g)
                    ok = ok and not replaced
                if capture_nonleaf:
                    i = targets.get(id(y))
                    if i is not None:
                        captured[i] = g
                bounded = bounded and ok
                gys = (g,)
            else:
                gys = []
                for ent in e:
                    if ent is None:
                        gys.append(None)
                        continue
                    g, ok, y = ent
                    if y._hooks:
                        g, replaced = _run_hooks(y, g)
                        ok = ok and not replaced
                    if capture_nonleaf:
                        i = targets.get(id(y))
                        if i is not None:
                            captured[i] = g
                    bounded = bounded and ok
                    gys.append(g)
            xs = f.inputs
            if anomaly:
                gxs = _backward_in_anomaly_mode(f, gys)
            else:
                gxs = f.backward(*gys)
            if type(gxs) is not tuple:
                gxs = (gxs,)
            if len(gxs) != len(xs):
                raise RuntimeError(f"{type(f).__name__}.backward returned {len(gxs)} "
                                   f"gradients for {len(xs)} inputs")
            for x, gx in zip(xs, gxs):
                if gx is not None and isinstance(x, Tensor) and x._rg:
                    p = x.creator
                    if not isinstance(gx, Tensor):
                        # A backward may return arrays when no graph is recorded;
                        # NumPy turns 0-d results into scalars.
                        gx = _make(gx if not isinstance(gx, _generic) else np.asarray(gx))
                    ok = bounded
                    a = gx.data
                    xd = x.data
                    if a.shape != xd.shape:
                        gx = _reduce_to_input(f, gx, xd.shape)
                        ok = False
                        a = gx.data
                    if a.dtype is not xd.dtype and a.dtype != xd.dtype:
                        gx = F.astype(gx, xd.dtype)
                        a = gx.data
                    if c is not None and not ok:
                        # Cheap sufficient test first: sum(g^2) <= c^2/4 means every
                        # |g_i| <= c/2 (the margin absorbs rounding in the sum); only
                        # gradients that fail it get the exact check.
                        if not (type(a) is _ndarray and (a.dtype is _f32 or a.dtype is _f64)
                                and a.size <= _VDOT_MAX and _vdot(a, a) <= c_sq4):
                            gx = clamp_gradient(gx, c, create_graph)
                        ok = True
                    if anomaly:
                        _check_finite(f, (gx,), "backward")
                    if p is None:
                        if plain_leaves and x.grad is not None and not x._hooks:
                            _accumulate(x, gx)      # deliver_leaf's common case
                        else:
                            deliver_leaf(x, gx, gys)
                    elif p not in grads and p.outputs is not None and len(p.outputs) == 1:
                        grads[p] = [gx, ok, x]         # add_pending's common case, inlined
                        _push(heap, (-p._seq, p))
                    else:
                        add_pending(x, p, gx, ok)
            if not retain_graph:
                # Free f's inputs and saved arrays: backward no longer needs them.
                f.inputs = f.outputs = None
                d = f.__dict__
                if d:
                    d.clear()
    finally:
        config.grad_enabled = prev_mode

    if captured is not None and not allow_unused:
        for i, g in enumerate(captured):
            if g is None:
                raise RuntimeError(f"input {i} of grad() was not used to compute the outputs; "
                                   "pass allow_unused=True to get None for it")
    return captured


from .. import functional as F  # noqa: E402  (engine uses sum_to/clip/astype ops)
