"""The backward engine: reverse-mode accumulation over the recorded graph.

Two passes, no recursion and no sorting:

1. walk the graph from the roots (iterative DFS) and count, for every Function,
   how many edges lead into it;
2. process Functions whose count has dropped to zero (Kahn's algorithm), calling
   their ``backward`` with the complete gradients of their outputs.

Every gradient that flows along an edge is reduced to its input's shape
(``sum_to``), cast to its dtype, and clamped elementwise to ``[-c, c]`` when the
automatic clamp is on (:func:`neural_arch.autograd.set_grad_clip`).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .function import _check_finite, where_created
from .grad_mode import config
from .tensor import _RETAIN, Tensor

__all__ = ["run_backward", "clamp_gradient", "last_clamped_count"]

_make = Tensor._make
_SMALL = 4096


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
    if a.dtype.kind != "f" or a.size == 0:
        return g
    xp = backend.get_array_module(a)
    if xp is np:
        if a.size < _SMALL:
            if np.abs(a).max() <= c:
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
    config.clamped = 0
    targets = None
    if inputs is not None:
        inputs = list(inputs)
        for t in inputs:
            if not isinstance(t, Tensor) or not t._rg:
                raise RuntimeError("every tensor in inputs= must be a Tensor that requires grad")
        targets = {id(t): i for i, t in enumerate(inputs)}
    captured = [None] * len(inputs) if inputs is not None else None
    assigned = set()

    def deliver_leaf(x, g, owned):
        # A leaf's gradient: hooks, then capture or accumulation into .grad.
        if x._hooks:
            for h in x._hooks:
                if h is not _RETAIN:
                    r = h(g)
                    if r is not None:
                        g, owned = r, False
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
            x.grad = _make(x.grad.data + g.data)

    # Pass 1: count the edges into every Function reachable from the roots.
    deps = {}
    stack = []
    seeds = []
    for out, grad in zip(outputs, grad_outputs):
        g, ok = _seed(out, grad)
        if not out._rg:
            raise RuntimeError("backward was called on a tensor that does not require grad "
                               "and has no creator; did you forget requires_grad=True, or "
                               "compute it under no_grad()?")
        seeds.append((out, g, ok and (c is None or c >= 1)))
        f = out.creator
        if f is not None and f not in deps:
            deps[f] = 0
            stack.append(f)
    while stack:
        f = stack.pop()
        if f.inputs is None:
            raise RuntimeError(
                f"trying to backward through {type(f).__name__} a second time: its saved "
                "arrays were freed by the first backward; pass retain_graph=True to the "
                "first call if you need to run backward twice")
        for x in f.inputs:
            if isinstance(x, Tensor) and x._rg:
                p = x.creator
                if p is not None:
                    if p in deps:
                        deps[p] += 1
                    else:
                        deps[p] = 1
                        stack.append(p)

    # Pass 2: run backward in dependency order.
    grads = {}   # id(non-leaf tensor) -> [gradient, known to lie in [-c, c], the tensor]
    ready = []
    for out, g, ok in seeds:
        if out.creator is None:
            deliver_leaf(out, g, False)
            continue
        e = grads.get(id(out))
        if e is None:
            grads[id(out)] = [g, ok, out]
        else:
            e[0] = e[0] + g
            e[1] = False
    for f, n in deps.items():
        if n == 0:
            ready.append(f)

    prev_mode = config.grad_enabled
    config.grad_enabled = create_graph
    try:
        while ready:
            f = ready.pop()
            gys = []
            bounded = f.grad_bounded
            any_grad = False
            for wr in f.outputs:
                y = wr()
                e = grads.pop(id(y), None) if y is not None else None
                if e is None:
                    gys.append(None)
                    continue
                g = e[0]
                if not e[1]:
                    bounded = False
                if y._hooks:
                    for h in y._hooks:
                        if h is _RETAIN:
                            y.grad = g
                            assigned.add(id(g.data))
                        else:
                            r = h(g)
                            if r is not None:
                                g = r
                                bounded = False
                if targets is not None and not accumulate:
                    i = targets.get(id(y))
                    if i is not None:
                        captured[i] = g
                gys.append(g)
                any_grad = True
            xs = f.inputs
            if any_grad:
                gxs = f.backward(*gys)
                if type(gxs) is not tuple:
                    gxs = (gxs,)
                if len(gxs) != len(xs):
                    raise RuntimeError(f"{type(f).__name__}.backward returned {len(gxs)} "
                                       f"gradients for {len(xs)} inputs")
            else:
                gxs = (None,) * len(xs)
            for x, gx in zip(xs, gxs):
                if not (isinstance(x, Tensor) and x._rg):
                    continue
                p = x.creator
                if gx is not None:
                    if not isinstance(gx, Tensor):
                        gx = _make(gx)
                    ok = bounded
                    xd = x.data
                    if gx.data.shape != xd.shape:
                        gx = F.sum_to(gx, xd.shape)
                        ok = False
                        if gx.data.shape != xd.shape:
                            raise RuntimeError(
                                f"{type(f).__name__}.backward gave a gradient of shape "
                                f"{gx.shape} for an input of shape {x.shape}")
                    if gx.data.dtype != xd.dtype:
                        gx = F.astype(gx, xd.dtype)
                    if c is not None and not ok:
                        gx = clamp_gradient(gx, c, create_graph)
                        ok = True
                    if config.anomaly:
                        _check_finite(f, (gx,), "backward")
                    if p is None:
                        deliver_leaf(x, gx, not any(gx is gy for gy in gys))
                    else:
                        e = grads.get(id(x))
                        if e is None:
                            # x itself is kept in the entry: once this Function is
                            # released, nothing else may hold it until its creator runs.
                            grads[id(x)] = [gx, ok, x]
                        else:
                            e[0] = e[0] + gx if create_graph else _make(e[0].data + gx.data)
                            e[1] = False
                if p is not None:
                    n = deps[p] - 1
                    deps[p] = n
                    if n == 0:
                        ready.append(p)
            if not retain_graph:
                f._release()
    finally:
        config.grad_enabled = prev_mode

    if captured is not None and not allow_unused:
        for i, g in enumerate(captured):
            if g is None:
                raise RuntimeError(f"input {i} of grad() was not used to compute the outputs; "
                                   "pass allow_unused=True to get None for it")
    return captured


__all__ += ["where_created"]

from .. import functional as F  # noqa: E402  (engine uses sum_to/clip/astype ops)
