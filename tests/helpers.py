"""Shared test helpers: one op check instead of a test factory.

``check_op`` draws float64 inputs, then checks, for one op:

* forward against a reference (PyTorch when installed, else a NumPy formula);
* backward against the reference's gradients (same random cotangent);
* gradcheck (finite differences) and, unless ``gradgrad=False``, gradgradcheck;
* that neither the inputs nor the upstream gradient were mutated.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch.autograd import gradcheck, gradgradcheck

try:
    import torch
    torch.set_default_dtype(torch.float64)
except ImportError:  # parity checks are skipped, not failed, without torch
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def make_inputs(shapes, bounds=None, seed=0, requires_grad=True):
    """Random float64 arrays, one per shape; ``bounds`` maps index -> (low, high)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for i, shape in enumerate(shapes):
        lo, hi = (bounds or {}).get(i, (-2.0, 2.0))
        arrays.append(rng.uniform(lo, hi, size=shape))
    return arrays


def check_op(fn, shapes, torch_fn=None, numpy_fn=None, bounds=None, gradgrad=True,
             seed=0, atol=1e-7, rtol=1e-6, grad_inputs=None):
    """Check one op end to end (see the module docstring).

    Parameters
    ----------
    fn : callable
        ``fn(*tensors) -> Tensor`` using neural_arch.
    shapes : list of tuple
        One shape per input.
    torch_fn : callable, optional
        The same computation on torch tensors (parity of values and gradients).
    numpy_fn : callable, optional
        The forward on NumPy arrays, when torch has no equivalent.
    grad_inputs : sequence of int, optional
        Which inputs require grad (default: all).
    """
    arrays = make_inputs(shapes, bounds, seed)
    idx = range(len(arrays)) if grad_inputs is None else grad_inputs
    xs = [na.Tensor(a.copy(), requires_grad=i in idx) for i, a in enumerate(arrays)]
    with na.autograd.grad_clip(None):
        out = fn(*xs)
    assert isinstance(out, na.Tensor)
    y = out.numpy()
    if torch_fn is not None and torch is not None:
        ts = [torch.tensor(a.copy(), requires_grad=i in idx) for i, a in enumerate(arrays)]
        ty = torch_fn(*ts)
        np.testing.assert_allclose(y, ty.detach().numpy(), atol=atol, rtol=rtol,
                                   err_msg="forward differs from torch")
        w = np.random.default_rng(seed + 7).standard_normal(y.shape)
        wt = w.copy()
        with na.autograd.grad_clip(None):
            out.backward(na.Tensor(w))
        ty.backward(torch.tensor(wt))
        np.testing.assert_array_equal(w, wt, err_msg="backward mutated the upstream grad")
        for i in idx:
            g = xs[i].grad
            tg = ts[i].grad
            if tg is None:
                assert g is None or np.all(g.numpy() == 0)
                continue
            np.testing.assert_allclose(g.numpy(), tg.numpy(), atol=atol, rtol=rtol,
                                       err_msg=f"gradient of input {i} differs from torch")
    elif numpy_fn is not None:
        np.testing.assert_allclose(y, numpy_fn(*arrays), atol=atol, rtol=rtol)
    for a, x in zip(arrays, xs):
        np.testing.assert_array_equal(a, x.numpy(), err_msg="the op mutated its input")
    xs = [na.Tensor(a.copy(), requires_grad=i in idx) for i, a in enumerate(arrays)]
    assert gradcheck(fn, xs)
    if gradgrad:
        assert gradgradcheck(fn, xs)
