"""Pieces of update rules written once and shared by the optimizer kernels.

Every function works in place on raw arrays (NumPy or CuPy) and takes its array
module from the data (``xp = get_array_module(param)``). Temporaries go into a
caller-supplied scratch array (``out=``), so a whole update needs at most one
parameter-sized scratch buffer.

Conventions, the same in every kernel:

* ``g`` is the *effective* gradient: the loss gradient, negated under
  ``maximize``, plus the L2 term ``λθ`` when weight decay means L2 (Adam, SGD);
* moving averages are ``avg ← β·avg + (1-β)·x`` (PyTorch's ``lerp`` form has the
  same value up to rounding);
* bias corrections are ``1 - β^t`` with ``t`` the 1-based step.
"""
from __future__ import annotations

from ..backend import get_array_module

__all__ = ["scratch_like", "effective_grad", "moving_average_", "bias_correction",
           "decoupled_weight_decay_", "descend_"]


def scratch_like(param, scratch=None):
    """The scratch buffer of one update: ``scratch`` when given, else a new empty array."""
    if scratch is None:
        return get_array_module(param).empty_like(param)
    if scratch.shape != param.shape or scratch.dtype != param.dtype:
        raise ValueError(f"scratch buffer has shape {scratch.shape} and dtype {scratch.dtype}; "
                         f"expected those of the parameter, {param.shape} and {param.dtype}")
    return scratch


def effective_grad(grad, param, weight_decay, maximize, out):
    """``g = ±grad + λ·param`` (``-`` under ``maximize``; L2 weight decay ``λ``).

    Returns ``grad`` itself, uncopied, when there is nothing to add or negate;
    otherwise writes into ``out`` and returns it. ``grad`` is never modified (it
    is the user-visible ``.grad``).
    """
    xp = get_array_module(param)
    if weight_decay == 0:
        return xp.negative(grad, out=out) if maximize else grad
    xp.multiply(param, weight_decay, out=out)
    if maximize:
        out -= grad
    else:
        out += grad
    return out


def moving_average_(avg, x, beta, out):
    """In place: ``avg ← β·avg + (1-β)·x``. ``x`` may be ``out`` (it is used up)."""
    get_array_module(avg).multiply(x, 1 - beta, out=out)
    avg *= beta
    avg += out
    return avg


def bias_correction(beta, step):
    """``1 - β^t``: the mass a zero-initialised moving average lacks after ``t`` steps."""
    return 1 - beta ** step


def decoupled_weight_decay_(param, lr, weight_decay):
    """In place: ``θ ← θ·(1 - lr·λ)``, weight decay apart from the gradient (AdamW)."""
    if weight_decay != 0:
        param *= 1 - lr * weight_decay
    return param


def descend_(param, direction, step_size, out):
    """In place: ``θ ← θ - step_size·direction``. ``direction`` may be ``out``."""
    get_array_module(param).multiply(direction, step_size, out=out)
    param -= out
    return param
