"""cross_entropy's fast path for (N, C) logits with in-range class indices.

The common case runs through one IndexCrossEntropy node; it must give exactly what
the general (one-hot) path gives, first and second derivatives included, and the
other cases must still take the general path.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch.autograd import gradcheck, gradgradcheck
from neural_arch.losses.functional import cross_entropy
from neural_arch.losses.functional.classification import (IndexCrossEntropy,
                                                          SoftmaxCrossEntropy)

REDUCTIONS = ("mean", "sum", "none")


def _case(seed=0, n=5, c=4):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=2.0, size=(n, c)), rng.integers(0, c, n)


def _general(x, t, c, reduction):
    """The same loss through the general path: one-hot probabilities (mean over N)."""
    return cross_entropy(x, np.eye(c)[t], reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_the_common_case_takes_the_index_node(reduction):
    x, t = _case()
    loss = cross_entropy(na.Tensor(x, requires_grad=True), t, reduction=reduction)
    assert isinstance(loss.creator, IndexCrossEntropy)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_index_node_equals_the_general_path_with_gradients_and_hvp(reduction):
    x0, t = _case(1)
    v = np.random.default_rng(2).normal(size=x0.shape)
    out = []
    for fast in (True, False):
        x = na.Tensor(x0, requires_grad=True)
        loss = cross_entropy(x, t, reduction=reduction) if fast else \
            _general(x, t, x0.shape[1], reduction)
        s = loss if reduction != "none" else (loss * na.Tensor(np.arange(1.0, 6.0))).sum()
        (g,) = na.autograd.grad(s, [x], create_graph=True)
        (hv,) = na.autograd.grad((g * na.Tensor(v)).sum(), [x])
        out.append((loss.numpy(), g.numpy(), hv.numpy()))
    for fast, general in zip(*out):
        np.testing.assert_allclose(fast, general, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_third_derivatives_equal_the_general_path(reduction):
    x0, t = _case(8)
    rng = np.random.default_rng(9)
    v, w = rng.normal(size=(2,) + x0.shape)
    out = []
    for fast in (True, False):
        x = na.Tensor(x0, requires_grad=True)
        loss = cross_entropy(x, t, reduction=reduction) if fast else \
            _general(x, t, x0.shape[1], reduction)
        s = loss if reduction != "none" else (loss * na.Tensor(np.arange(1.0, 6.0))).sum()
        (g,) = na.autograd.grad(s, [x], create_graph=True)
        (h,) = na.autograd.grad((g * na.Tensor(v)).sum(), [x], create_graph=True)
        (k,) = na.autograd.grad((h * na.Tensor(w)).sum(), [x])
        out.append(k.numpy())
    np.testing.assert_allclose(out[0], out[1], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradient_is_differentiable_in_the_output_gradient(reduction):
    x0, t = _case(10)
    v = np.random.default_rng(11).normal(size=x0.shape)
    gy0 = np.arange(1.0, 6.0) if reduction == "none" else np.array(1.7)
    out = []
    for fast in (True, False):
        x = na.Tensor(x0, requires_grad=True)
        gy = na.Tensor(gy0, requires_grad=True)
        loss = cross_entropy(x, t, reduction=reduction) if fast else \
            _general(x, t, x0.shape[1], reduction)
        (g,) = na.autograd.grad(loss, [x], grad_outputs=[gy], create_graph=True)
        gx, ggy = na.autograd.grad((g * na.Tensor(v)).sum(), [x, gy])
        out.append((gx.numpy(), ggy.numpy()))
    for fast, general in zip(*out):
        np.testing.assert_allclose(fast, general, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_index_node_gradcheck_and_gradgradcheck(reduction):
    x0, t = _case(3, n=3, c=5)
    xs = [na.Tensor(x0, requires_grad=True)]
    fn = lambda x: cross_entropy(x, t, reduction=reduction)     # noqa: E731
    assert gradcheck(fn, xs)
    assert gradgradcheck(fn, xs)


def test_index_node_keeps_large_logits_finite():
    x = na.Tensor(np.array([[1e4, -1e4, 0.0], [0.0, 1e4, 1e4]]), requires_grad=True)
    loss = cross_entropy(x, np.array([1, 2]))
    loss.backward()
    assert isinstance(loss.creator, IndexCrossEntropy)
    np.testing.assert_allclose(loss.item(), (2e4 + np.log(2)) / 2)
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("kwargs, target", [
    (dict(weight=np.array([1.0, 2.0, 0.5, 1.0])), None),
    (dict(label_smoothing=0.1), None),
    (dict(ignore_index=2), None),                       # an index that can occur
    (dict(), np.array([0, 1, -100, 3, 2])),             # an ignored target
])
def test_other_index_cases_take_the_general_path(kwargs, target):
    x, t = _case(4)
    t = t if target is None else target
    loss = cross_entropy(na.Tensor(x, requires_grad=True), t, **kwargs)
    assert isinstance(loss.creator, SoftmaxCrossEntropy)


def test_spatial_and_unbatched_inputs_take_the_general_path():
    rng = np.random.default_rng(5)
    x = na.Tensor(rng.normal(size=(2, 3, 4)), requires_grad=True)
    assert not isinstance(cross_entropy(x, rng.integers(0, 3, (2, 4))).creator,
                          IndexCrossEntropy)
    x1 = na.Tensor(rng.normal(size=3), requires_grad=True)
    assert not isinstance(cross_entropy(x1, np.array(1)).creator, IndexCrossEntropy)


@pytest.mark.parametrize("bad", [4, -1])
def test_out_of_range_indices_still_raise(bad):
    x, t = _case(6)
    t[2] = bad
    with pytest.raises(IndexError, match=f"class index {bad}, outside"):
        cross_entropy(na.Tensor(x), t)


def test_float32_logits_give_a_float32_loss_and_gradient():
    x0, t = _case(7)
    x = na.Tensor(x0.astype(np.float32), requires_grad=True)
    loss = cross_entropy(x, t)
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    ref = _general(na.Tensor(x0), t, 4, "mean").item()
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-6)
