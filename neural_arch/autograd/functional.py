"""Gradients as functions: grad, vjp, jvp, hvp, vhp, jacobian, hessian.

The higher-level helpers follow ``torch.autograd.functional``: they take a
function and its inputs (a Tensor or a tuple of Tensors), run the function on
fresh leaves (so the caller's ``.grad`` is never touched) and return results
shaped like the inputs and outputs they were given. Everything is built on
:func:`grad`; forward-mode products (:func:`jvp`) use the double-vjp trick, and
second derivatives come from backward formulas recorded with ``create_graph``.
"""
from __future__ import annotations

from .. import backend
from ..core.engine import run_backward
from ..core.grad_mode import enable_grad
from ..core.tensor import Tensor

__all__ = ["grad", "vjp", "jvp", "hvp", "vhp", "jacobian", "hessian"]


def _as_list(x, what="outputs"):
    if isinstance(x, Tensor):
        return [x], True
    if not isinstance(x, (tuple, list)):
        raise TypeError(f"grad: {what} must be a Tensor or a sequence of Tensors, got "
                        f"{type(x).__name__}")
    return list(x), False


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Return the gradients of ``outputs`` with respect to ``inputs``; ``.grad`` is untouched.

    Parameters
    ----------
    outputs : Tensor or sequence of Tensor
        What to differentiate.
    inputs : Tensor or sequence of Tensor
        With respect to what (tensors that require grad).
    grad_outputs : Tensor or sequence, optional
        The vector of the vector-Jacobian product, one per output; may be None for
        one-element outputs.
    retain_graph : bool, optional
        Keep the graph for another backward; defaults to ``create_graph``.
    create_graph : bool, default False
        Record the computation, so the result can be differentiated again.
    allow_unused : bool, default False
        Return None for inputs the outputs do not depend on instead of raising.

    Returns
    -------
    tuple of Tensor
        One gradient per input.
    """
    outs, _ = _as_list(outputs)
    ins, _ = _as_list(inputs, "inputs")
    if grad_outputs is None:
        gos = [None] * len(outs)
    elif isinstance(grad_outputs, (tuple, list)):
        gos = list(grad_outputs)
    else:
        gos = [grad_outputs]      # one Tensor or array for a single output
    if len(gos) != len(outs):
        raise ValueError(f"got {len(gos)} grad_outputs for {len(outs)} outputs")
    res = run_backward(outs, gos, retain_graph=retain_graph, create_graph=create_graph,
                       inputs=ins, accumulate=False, allow_unused=allow_unused)
    return tuple(res)


# ---- shared plumbing of the functional API ---------------------------------------

def _inputs(inputs, what):
    """Normalise ``inputs`` to a list of float Tensors; remember whether it was a tuple."""
    if isinstance(inputs, Tensor):
        xs, single = [inputs], True
    elif isinstance(inputs, (tuple, list)):
        xs, single = list(inputs), False
    else:
        raise TypeError(f"{what}: inputs must be a Tensor or a tuple of Tensors, got "
                        f"{type(inputs).__name__}")
    for i, x in enumerate(xs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{what}: input {i} must be a Tensor, got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"{what}: input {i} must have a floating dtype, got {x.dtype}")
    return xs, single


def _leaves(xs, create_graph):
    """The tensors the function runs on.

    Without ``create_graph`` they are fresh detached leaves, so nothing leaks into
    the caller's graph. With it, inputs that already require grad are used as they
    are, so the result can be differentiated back to them.
    """
    out = []
    for x in xs:
        if create_graph and x.requires_grad:
            out.append(x)
        else:
            out.append(Tensor._make(x.data).requires_grad_(True))
    return out


def _call(func, xs, what):
    """Run ``func`` with grad recording on; return (outputs as a list, was it single)."""
    with enable_grad():
        res = func(*xs)
    if isinstance(res, Tensor):
        return [res], True
    if isinstance(res, (tuple, list)) and all(isinstance(r, Tensor) for r in res):
        return list(res), False
    raise TypeError(f"{what}: the function must return a Tensor or a tuple of Tensors, "
                    f"got {type(res).__name__}")


def _vectors(v, refs, what, kind):
    """Match ``v`` to ``refs`` (the inputs or outputs), one tensor each, same shapes."""
    if v is None:
        for i, r in enumerate(refs):
            if r.size != 1:
                raise ValueError(f"{what}: v may be omitted only when every {kind} has one "
                                 f"element; {kind} {i} has shape {tuple(r.shape)}")
        return [Tensor._make(backend.get_array_module(r.data).ones_like(r.data))
                for r in refs]
    vs = [v] if not isinstance(v, (tuple, list)) else list(v)
    if len(vs) != len(refs):
        raise ValueError(f"{what}: got {len(vs)} tensors in v for {len(refs)} {kind}s")
    out = []
    for i, (a, r) in enumerate(zip(vs, refs)):
        a = a if isinstance(a, Tensor) else Tensor(a, dtype=r.dtype, device=r.device)
        if tuple(a.shape) != tuple(r.shape):
            raise ValueError(f"{what}: v[{i}] has shape {tuple(a.shape)} but {kind} {i} has "
                             f"shape {tuple(r.shape)}; they must match")
        out.append(a)
    return out


def _grads(outs, xs, gos, create_graph, strict, what):
    """``grad`` that gives zeros (not None) for unused inputs and skips constant outputs.

    The graph is always kept, because the callers may take several passes over it.
    """
    live = [(o, g) for o, g in zip(outs, gos) if o.requires_grad]
    res = [None] * len(xs)
    if live:
        res = list(grad([o for o, _ in live], xs, [g for _, g in live], retain_graph=True,
                        create_graph=create_graph, allow_unused=True))
    for i, (g, x) in enumerate(zip(res, xs)):
        if g is None:
            if strict:
                raise RuntimeError(f"{what}: the output does not depend on input {i}; "
                                   "strict=True forbids that")
            res[i] = Tensor._make(backend.get_array_module(x.data).zeros_like(x.data))
    return res


def _scalar_output(outs, single, what):
    if not single or outs[0].size != 1:
        shape = tuple(outs[0].shape) if single else f"a tuple of {len(outs)}"
        raise ValueError(f"{what}: the function must return a Tensor with one element, "
                         f"got {shape}")
    return outs[0]


def _detach_all(ts, create_graph):
    return ts if create_graph else [t.detach() for t in ts]


def _pack(ts, single):
    return ts[0] if single else tuple(ts)


# ---- products with a vector -------------------------------------------------------

def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """Vector-Jacobian product ``v^T J`` of ``func`` at ``inputs``.

    Parameters
    ----------
    func : callable
        Takes the input Tensors as positional arguments, returns a Tensor or a
        tuple of Tensors.
    inputs : Tensor or tuple of Tensor
        Where to evaluate.
    v : Tensor or tuple of Tensor, optional
        One tensor per output, shaped like it; may be omitted when every output
        has one element.
    create_graph : bool, default False
        Record the computation so the result can be differentiated again (also
        back to ``inputs`` that require grad).
    strict : bool, default False
        Raise if the outputs do not depend on some input, instead of giving zeros.

    Returns
    -------
    (outputs, vjp)
        ``func(*inputs)`` and the product, shaped like ``inputs`` (a Tensor for a
        Tensor, a tuple for a tuple).
    """
    xs, single_in = _inputs(inputs, "vjp")
    xs = _leaves(xs, create_graph)
    outs, single_out = _call(func, xs, "vjp")
    vs = _vectors(v, outs, "vjp", "output")
    res = _grads(outs, xs, vs, create_graph, strict, "vjp")
    return (_pack(_detach_all(outs, create_graph), single_out),
            _pack(_detach_all(res, create_graph), single_in))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """Jacobian-vector product ``J v`` of ``func`` at ``inputs`` (forward-mode derivative).

    Computed with two reverse passes: ``g(u) = J^T u`` is linear in a dummy
    cotangent ``u``, so differentiating ``g(u) . v`` with respect to ``u`` gives
    ``J v``. Every op's backward is written with differentiable ops, so this
    works for all of them.

    Parameters
    ----------
    func : callable
        Takes the input Tensors, returns a Tensor or a tuple of Tensors.
    inputs : Tensor or tuple of Tensor
        Where to evaluate.
    v : Tensor or tuple of Tensor, optional
        The direction, one tensor per input, shaped like it; may be omitted when
        every input has one element.
    create_graph, strict : bool
        As in :func:`vjp`.

    Returns
    -------
    (outputs, jvp)
        ``func(*inputs)`` and the product, shaped like the outputs.
    """
    xs, single_in = _inputs(inputs, "jvp")
    vs = _vectors(v, xs, "jvp", "input")
    xs = _leaves(xs, create_graph)
    outs, single_out = _call(func, xs, "jvp")
    with enable_grad():
        us = [Tensor._make(backend.get_array_module(o.data).zeros_like(o.data))
              .requires_grad_(True) for o in outs]
        gs = _grads(outs, xs, us, True, strict, "jvp")
    res = _grads(gs, us, vs, create_graph, False, "jvp")
    return (_pack(_detach_all(outs, create_graph), single_out),
            _pack(_detach_all(res, create_graph), single_out))


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """Vector-Hessian product ``v^T H`` of a scalar function at ``inputs``.

    Parameters
    ----------
    func : callable
        Takes the input Tensors, returns a Tensor with one element.
    inputs : Tensor or tuple of Tensor
        Where to evaluate.
    v : Tensor or tuple of Tensor, optional
        One tensor per input, shaped like it; may be omitted for one-element inputs.
    create_graph, strict : bool
        As in :func:`vjp`.

    Returns
    -------
    (output, vhp)
        ``func(*inputs)`` and the product, shaped like ``inputs``.
    """
    xs, single_in = _inputs(inputs, "vhp")
    vs = _vectors(v, xs, "vhp", "input")
    xs = _leaves(xs, create_graph)
    outs, single_out = _call(func, xs, "vhp")
    y = _scalar_output(outs, single_out, "vhp")
    with enable_grad():
        gs = _grads([y], xs, [None], True, strict, "vhp")
    res = _grads(gs, xs, vs, create_graph, strict, "vhp")
    return (_detach_all([y], create_graph)[0], _pack(_detach_all(res, create_graph), single_in))


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """Hessian-vector product ``H v`` of a scalar function, like ``torch.autograd.functional.hvp``.

    The gradient ``g = df/dx`` is built with a recorded graph, then ``g . v`` is
    differentiated once more. For twice continuously differentiable functions
    the Hessian is symmetric, so this equals :func:`vhp`.

    Parameters
    ----------
    func : callable
        Takes the input Tensors, returns a Tensor with one element.
    inputs : Tensor or tuple of Tensor
        Where to evaluate.
    v : Tensor or tuple of Tensor, optional
        One tensor per input, shaped like it; may be omitted for one-element inputs.
    create_graph, strict : bool
        As in :func:`vjp`.

    Returns
    -------
    (output, hvp)
        ``func(*inputs)`` and the product, shaped like ``inputs``.

    Examples
    --------
    >>> import neural_arch as na
    >>> x = na.tensor([1.0, 2.0])
    >>> _, hv = na.autograd.hvp(lambda x: (x ** 3).sum(), x, na.tensor([1.0, 0.0]))
    >>> hv.tolist()   # H = diag(6 x)
    [6.0, 0.0]
    """
    return vhp(func, inputs, v, create_graph=create_graph, strict=strict)


# ---- full matrices ----------------------------------------------------------------

def _stack_rows(rows, shape, create_graph):
    """Stack ``rows`` (each a Tensor of ``shape[1:]``) into a Tensor of ``shape``."""
    if create_graph:
        from .. import functional as F
        return F.reshape(F.stack(rows, 0), shape)
    xp = backend.get_array_module(rows[0].data)
    return Tensor._make(xp.stack([r.data for r in rows]).reshape(shape))


def jacobian(func, inputs, create_graph=False, strict=False):
    """The Jacobian of ``func`` at ``inputs``, one reverse pass per output element.

    Parameters
    ----------
    func : callable
        Takes the input Tensors, returns a Tensor or a tuple of Tensors.
    inputs : Tensor or tuple of Tensor
        Where to evaluate.
    create_graph : bool, default False
        Record the computation so the Jacobian can be differentiated again.
    strict : bool, default False
        Raise if an output does not depend on an input, instead of giving zeros.

    Returns
    -------
    Tensor, tuple of Tensor, or tuple of tuples of Tensor
        ``J[i][j]`` has shape ``outputs[i].shape + inputs[j].shape``; levels of
        nesting are dropped where the function was given a single Tensor or
        returned one, as in ``torch.autograd.functional.jacobian``.
    """
    xs, single_in = _inputs(inputs, "jacobian")
    xs = _leaves(xs, create_graph)
    outs, single_out = _call(func, xs, "jacobian")
    table = []
    for i, o in enumerate(outs):
        xp = backend.get_array_module(o.data)
        flat = xp.zeros(o.size, dtype=o.dtype)
        rows = [[] for _ in xs]
        for k in range(o.size):
            flat[k] = 1
            e = Tensor._make(flat.reshape(o.shape).copy())
            flat[k] = 0
            for j, g in enumerate(_grads([o], xs, [e], create_graph, strict, "jacobian")):
                rows[j].append(g)
        table.append([
            _stack_rows(r, tuple(o.shape) + tuple(x.shape), create_graph) if r else
            Tensor._make(backend.get_array_module(x.data).zeros(
                tuple(o.shape) + tuple(x.shape), dtype=x.dtype))
            for r, x in zip(rows, xs)])
    per_out = [_pack(r, single_in) for r in table]
    return _pack(per_out, single_out)


def hessian(func, inputs, create_graph=False, strict=False):
    """The Hessian of a scalar function at ``inputs``: the Jacobian of its gradient.

    Parameters
    ----------
    func : callable
        Takes the input Tensors, returns a Tensor with one element.
    inputs : Tensor or tuple of Tensor
        Where to evaluate.
    create_graph, strict : bool
        As in :func:`jacobian`.

    Returns
    -------
    Tensor or tuple of tuples of Tensor
        ``H`` of shape ``x.shape + x.shape`` for a single input; for a tuple of
        inputs ``H[i][j]`` of shape ``inputs[i].shape + inputs[j].shape``.
    """
    xs, single_in = _inputs(inputs, "hessian")

    def gradient(*leaves):
        outs, single = _call(func, leaves, "hessian")
        y = _scalar_output(outs, single, "hessian")
        return tuple(_grads([y], list(leaves), [None], True, strict, "hessian"))

    h = jacobian(gradient, tuple(xs), create_graph=create_graph, strict=strict)
    return h[0][0] if single_in else h
