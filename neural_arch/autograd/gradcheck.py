"""Finite-difference checks of first and second derivatives."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..core.grad_mode import enable_grad, grad_clip, no_grad
from ..core.tensor import Tensor
from .functional import grad

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """The analytical gradient differs from the finite-difference one."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    return [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]


def _weights(outs, rng):
    """A fixed random cotangent per output, so one scalar stands for all outputs."""
    return [rng.standard_normal(o.shape) for o in outs]


def _scalar(outs, ws):
    total = 0.0
    for o, w in zip(outs, ws):
        total += float(np.sum(backend.asnumpy(o.data).astype(np.float64) * w))
    return total


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Compare backward's gradients with central finite differences.

    ``fn(*inputs)`` may return a Tensor or a tuple of Tensors. The outputs are
    contracted with a fixed random cotangent ``w`` (so every output element
    counts), and for every element of every input that requires grad the
    analytical ``d(sum(w * fn))/dx`` is compared with
    ``(f(x + eps) - f(x - eps)) / (2 eps)``. Run it in float64. The automatic
    gradient clamp is switched off inside.

    Returns
    -------
    bool
        True when all gradients agree; otherwise raises :class:`GradcheckError`
        (or returns False with ``raise_exception=False``).
    """
    inputs = list(inputs)
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck needs at least one input Tensor with requires_grad=True")
    for x in diff:
        if x.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs for accuracy, got {x.dtype}")
    rng = np.random.default_rng(seed)
    with grad_clip(None):
        outs = _outputs(fn, inputs)
        ws = _weights(outs, rng)
        go = [Tensor(backend.to_device(w.astype(o.dtype), o.device)) for o, w in zip(outs, ws)]
        # Outputs that do not depend on any input (a constant derivative, say)
        # contribute nothing to the analytical gradient.
        live = [(o, g) for o, g in zip(outs, go) if o.requires_grad]
        analytic = grad([o for o, _ in live], diff, [g for _, g in live],
                        allow_unused=True) if live else [None] * len(diff)
        with no_grad():
            for k, (x, ga) in enumerate(zip(diff, analytic)):
                flat = x.data.reshape(-1)
                num = np.zeros(flat.size)
                for j in range(flat.size):
                    orig = flat[j].item()
                    flat[j] = orig + eps
                    fp = _scalar(_outputs(fn, inputs), ws)
                    flat[j] = orig - eps
                    fm = _scalar(_outputs(fn, inputs), ws)
                    flat[j] = orig
                    num[j] = (fp - fm) / (2 * eps)
                ana = np.zeros(flat.size) if ga is None else \
                    backend.asnumpy(ga.data).reshape(-1).astype(np.float64)
                if not np.allclose(ana, num, atol=atol, rtol=rtol):
                    j = int(np.argmax(np.abs(ana - num) - rtol * np.abs(num)))
                    msg = (f"gradient of input {k} (shape {tuple(x.shape)}) disagrees with "
                           f"finite differences: at flat index {j} analytical {ana[j]!r}, "
                           f"numerical {num[j]!r} (max abs diff "
                           f"{np.max(np.abs(ana - num)):.3g})")
                    if raise_exception:
                        raise GradcheckError(msg)
                    return False
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Check second derivatives: gradcheck of the (graph-recording) gradient of ``fn``.

    The first derivative ``x -> d(sum(w * fn(x)))/dx`` is built with
    ``create_graph=True`` and then checked by :func:`gradcheck` against finite
    differences, which exercises every ``backward`` as a differentiable function.
    """
    inputs = list(inputs)
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    rng = np.random.default_rng(seed + 1)
    with grad_clip(None):
        outs = _outputs(fn, inputs)
    ws = [Tensor(backend.to_device(w.astype(o.dtype), o.device))
          for o, w in zip(outs, _weights(outs, rng))]

    def first_grad(*xs):
        with grad_clip(None), enable_grad():
            o = _outputs(fn, xs)
            d = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
            gs = grad(o, d, ws, create_graph=True, allow_unused=True)
        return tuple(g if g is not None else (x * 0.0) for g, x in zip(gs, d))

    return gradcheck(first_grad, inputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, seed=seed)
