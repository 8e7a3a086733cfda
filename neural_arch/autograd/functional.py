"""Gradients as functions: grad, vjp, hvp, jacobian, hessian."""
from __future__ import annotations

from ..core.engine import run_backward
from ..core.tensor import Tensor

__all__ = ["grad"]


def _as_list(x):
    if isinstance(x, Tensor):
        return [x], True
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
    ins, _ = _as_list(inputs)
    if grad_outputs is None:
        gos = [None] * len(outs)
    else:
        gos, _ = _as_list(grad_outputs) if not isinstance(grad_outputs, Tensor) \
            else ([grad_outputs], True)
    if len(gos) != len(outs):
        raise ValueError(f"got {len(gos)} grad_outputs for {len(outs)} outputs")
    res = run_backward(outs, gos, retain_graph=retain_graph, create_graph=create_graph,
                       inputs=ins, accumulate=False, allow_unused=allow_unused)
    return tuple(res)
