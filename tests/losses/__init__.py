"""Tests of the loss library, with one shared parity check.

``assert_parity`` runs a neural_arch loss and its PyTorch counterpart (function or
Module) on the same float64 inputs, then compares the values and the gradients of
the chosen inputs, using one random cotangent when the loss is not a scalar.
"""
from __future__ import annotations

import numpy as np

import neural_arch as na
from tests.helpers import torch

RTOL = 1e-9
ATOL = 1e-12


def _tensors(arrays, grad):
    nas, ts = [], []
    for i, a in enumerate(arrays):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            nas.append(na.Tensor(a.copy(), requires_grad=i in grad))
            ts.append(torch.tensor(a.copy(), requires_grad=i in grad))
        elif isinstance(a, np.ndarray):
            nas.append(a.copy())                    # integer targets: plain arrays
            ts.append(torch.from_numpy(a.copy()))
        else:
            nas.append(a)
            ts.append(a)
    return nas, ts


def assert_parity(na_fn, torch_fn, arrays, grad=(0,), rtol=RTOL, atol=ATOL, seed=0):
    """Values and gradients of ``na_fn(*arrays)`` equal those of ``torch_fn(*arrays)``.

    Float arrays become tensors (requiring grad when their index is in ``grad``),
    integer arrays are passed as they are. Returns the neural_arch output.
    """
    nas, ts = _tensors(arrays, grad)
    with na.autograd.grad_clip(None):
        out = na_fn(*nas)
    ref = torch_fn(*ts)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=rtol, atol=atol,
                               err_msg="loss value differs from torch")
    assert out.shape == tuple(ref.shape)
    w = np.random.default_rng(seed).standard_normal(out.shape)
    with na.autograd.grad_clip(None):
        out.backward(na.Tensor(w))
    ref.backward(torch.tensor(w))
    for i in grad:
        np.testing.assert_allclose(nas[i].grad.numpy(), ts[i].grad.numpy(), rtol=rtol,
                                   atol=atol, err_msg=f"gradient of input {i} differs from torch")
    return out


def grad_tensors(arrays, grad=(0,)):
    """float64 Tensors for gradcheck (requiring grad where listed); other arrays as they are."""
    return [na.Tensor(a.copy(), requires_grad=i in grad)
            if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
            for i, a in enumerate(arrays)]
