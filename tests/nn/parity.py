"""Layer parity with torch.nn: same weights, same inputs, same outputs and gradients."""
from __future__ import annotations

import numpy as np

import neural_arch as na
from tests.helpers import torch


def load_from_torch(module, torch_module):
    """Copy a torch module's state_dict arrays into ``module`` (the keys must match)."""
    module.load_state_dict({k: v.detach().numpy() for k, v in
                            torch_module.state_dict().items()})
    return module


def check_layer(module, torch_module, shapes, seed=0, atol=1e-10, rtol=1e-8, inputs=None,
                copy_weights=True):
    """Run both layers on the same float64 inputs; compare outputs and every gradient.

    The torch module's weights are copied into ``module`` first (so this also
    checks that a torch state_dict loads directly), a random cotangent is
    back-propagated through both, and the gradients of the inputs and of every
    named parameter must agree. Returns ``(na_output, torch_output)``.
    """
    if copy_weights:
        load_from_torch(module, torch_module)
    rng = np.random.default_rng(seed)
    arrays = inputs if inputs is not None else [rng.standard_normal(s) for s in shapes]
    xs = [na.Tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in arrays]
    ts = [torch.tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in arrays]
    y = module(*xs)
    ty = torch_module(*ts)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), atol=atol, rtol=rtol,
                               err_msg="forward differs from torch")
    w = rng.standard_normal(ty.shape)
    with na.autograd.grad_clip(None):
        y.backward(na.Tensor(w))
    ty.backward(torch.tensor(w))
    for i, (x, t) in enumerate(zip(xs, ts)):
        if t.grad is not None:
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=atol, rtol=rtol,
                                       err_msg=f"gradient of input {i} differs from torch")
    tparams = dict(torch_module.named_parameters())
    params = dict(module.named_parameters())
    assert params.keys() == tparams.keys()
    for k, p in params.items():
        tg = tparams[k].grad
        if tg is None:
            assert p.grad is None or not p.grad.numpy().any(), k
            continue
        np.testing.assert_allclose(p.grad.numpy(), tg.numpy(), atol=atol, rtol=rtol,
                                   err_msg=f"gradient of {k} differs from torch")
    return y, ty
