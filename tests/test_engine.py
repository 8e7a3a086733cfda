"""The backward engine: accumulation, graph lifetime, hooks, grad modes, graph shapes."""
import time
import weakref

import numpy as np
import pytest

import neural_arch as na
from neural_arch.core.function import Function
from tests.helpers import requires_torch, torch


def leaf(values):
    return na.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# ---- accumulation and graph lifetime ---------------------------------------------------

def test_gradients_accumulate_across_two_backward_calls():
    x = leaf([1.0, 2.0, 3.0])
    (x * 2.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0 + 2 * x.numpy())


def test_zero_grad_starts_accumulation_afresh():
    x = leaf([1.0, -1.0])
    (x * 3.0).sum().backward()
    x.zero_grad()
    assert x.grad is None
    (x * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_retain_graph_allows_a_second_backward():
    x = leaf([0.5, 1.5])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    np.testing.assert_allclose(first, np.exp(x.numpy()) * (1 + x.numpy()))


def test_second_backward_without_retain_graph_raises_clear_error():
    x = leaf([0.5, 1.5])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_backward_frees_the_graph_and_its_saved_arrays():
    x = leaf(np.linspace(-1, 1, 6))
    h = x * 2.0
    saved = weakref.ref(h.data)
    y = (h * h).sum()
    mul_node = y.creator.inputs[0].creator
    del h
    assert saved() is not None, "the graph must keep its saved arrays until backward"
    y.backward()
    assert y.creator.inputs is None
    assert mul_node.inputs is None
    assert saved() is None, "a saved intermediate array outlived backward"


def test_retain_graph_keeps_saved_arrays():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    saved = weakref.ref(h.data)
    y = (h * h).sum()
    del h
    y.backward(retain_graph=True)
    assert saved() is not None
    assert y.creator.inputs is not None


def test_deep_chain_backpropagates_without_recursion():
    n = 100_000
    x = na.Tensor(np.float64(0.5), requires_grad=True)
    y = x
    with na.autograd.grad_clip(None):
        for _ in range(n // 2):
            y = y * 1.0
            y = y + 0.0
        start = time.perf_counter()
        y.backward()
    assert time.perf_counter() - start < 30
    assert x.grad.item() == 1.0


# ---- simple graphs -------------------------------------------------------------------

def test_x_times_x_gives_two_x():
    x = leaf([-1.5, 0.0, 2.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())


def test_tensor_used_twice_in_one_op_with_broadcasting():
    x = leaf([[1.0, 2.0, 3.0]])
    (x + x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 + 2 * x.numpy())


@requires_torch

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_dim_products_give_array_gradients(dtype):
    # Mul's and tanh's first-order backward runs on the arrays, where NumPy turns 0-d
    # products into scalars; the gradients must still be 0-d arrays of the input dtype.
    a = na.Tensor(np.array(2.0, dtype), requires_grad=True)
    b = na.Tensor(np.array(-0.5, dtype), requires_grad=True)
    na.tanh(a * b * a).backward()
    for t, expected in ((a, 2 * a.item() * b.item()), (b, a.item() ** 2)):
        assert type(t.grad.data) is np.ndarray and t.grad.data.shape == ()
        assert t.grad.dtype == dtype
        np.testing.assert_allclose(t.grad.item(), expected * (1 - np.tanh(-2.0) ** 2),
                                   rtol=1e-6)


def test_first_order_backward_records_no_nodes_but_create_graph_does():
    x = leaf([0.3, -0.7])
    w = leaf([1.5, 2.0])
    (na.tanh(x * w)).sum().backward()
    assert x.grad.creator is None and w.grad.creator is None
    x.grad = w.grad = None
    (gx,) = na.autograd.grad(na.tanh(x * w).sum(), [x], create_graph=True)
    assert gx.creator is not None          # d/dx = w (1 - tanh^2(xw)): differentiable
    (gw,) = na.autograd.grad(gx.sum(), [w])
    t = np.tanh(x.numpy() * w.numpy())
    expected = (1 - t ** 2) - 2 * t * (1 - t ** 2) * x.numpy() * w.numpy()
    np.testing.assert_allclose(gw.numpy(), expected, rtol=1e-12)
def test_diamond_graph_matches_torch():
    xv = np.array([0.3, -0.7, 1.1])
    x = leaf(xv)
    a = x * 2.0
    b = a.exp()
    c = a * 3.0
    d = na.tanh(a)
    (b * c + d).sum().backward()

    tx = torch.tensor(xv, requires_grad=True)
    ta = tx * 2.0
    (ta.exp() * (ta * 3.0) + torch.tanh(ta)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


@requires_torch
def test_small_mlp_gradients_match_torch():
    rng = np.random.default_rng(3)
    xv, w1v, w2v = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), \
        rng.standard_normal((3, 2))
    x, w1, w2 = na.Tensor(xv), leaf(w1v), leaf(w2v)
    (na.tanh(x @ w1) @ w2).mean().backward()
    tw1 = torch.tensor(w1v, requires_grad=True)
    tw2 = torch.tensor(w2v, requires_grad=True)
    (torch.tanh(torch.tensor(xv) @ tw1) @ tw2).mean().backward()
    np.testing.assert_allclose(w1.grad.numpy(), tw1.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w2.grad.numpy(), tw2.grad.numpy(), rtol=1e-12)


def test_backward_of_non_scalar_takes_a_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    y.backward(na.Tensor(np.array([1.0, -2.0])))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -6.0])


def test_backward_on_a_leaf_sets_its_grad():
    x = leaf([2.0])
    x.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0])


def test_grad_is_not_shared_between_leaves():
    # y = a + b hands the same incoming gradient to both; their .grad must not alias.
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    a.grad.data[0] = 100.0
    assert b.grad.numpy()[0] == 1.0


class TwoOutputs(Function):
    """(2x, 3x); records the gradients it receives, for the test below."""

    seen = None

    def forward(self, x):
        return x * 2, x * 3

    def backward(self, g0, g1):
        TwoOutputs.seen = (g0, g1)
        total = 0
        if g0 is not None:
            total = total + g0 * 2
        if g1 is not None:
            total = total + g1 * 3
        return total


def test_unused_output_of_a_multi_output_op_gets_none():
    x = leaf([1.0, 2.0])
    first, _ = TwoOutputs()(x)
    first.sum().backward()
    g0, g1 = TwoOutputs.seen
    assert g1 is None
    np.testing.assert_allclose(g0.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_both_outputs_used_of_a_multi_output_op():
    x = leaf([1.0, 2.0])
    a, b = TwoOutputs()(x)
    (a + b * b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 + 2 * 9 * x.numpy())


def test_dropped_output_tensor_still_backpropagates():
    x = leaf([1.0, 2.0])
    _, b = TwoOutputs()(x)          # the first output is garbage at once
    b.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_backward_inputs_restricts_accumulation():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])


def test_backward_inputs_must_require_grad():
    x = leaf([1.0])
    c = na.Tensor(np.array([2.0]))
    with pytest.raises(RuntimeError, match="inputs="):
        (x * c).sum().backward(inputs=[c])


# ---- higher order -------------------------------------------------------------------

def test_create_graph_gives_second_and_third_derivative_of_cube():
    xv = np.array([-1.0, 0.5, 2.0])
    x = leaf(xv)
    (g,) = na.autograd.grad((x ** 3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), 3 * xv ** 2)
    (h,) = na.autograd.grad(g.sum(), x, create_graph=True)
    np.testing.assert_allclose(h.numpy(), 6 * xv)
    (t,) = na.autograd.grad(h.sum(), x)
    np.testing.assert_allclose(t.numpy(), [6.0, 6.0, 6.0])


def test_backward_create_graph_leaves_differentiable_grad():
    x = leaf([1.0, 3.0])
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    gx = x.grad
    x.grad = None
    gx.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([1.0, 3.0]))


def test_without_create_graph_gradients_carry_no_graph():
    x = leaf([1.0, 3.0])
    (x ** 3).sum().backward()
    assert not x.grad.requires_grad and x.grad.creator is None


# ---- hooks ------------------------------------------------------------------------------

def test_leaf_hook_sees_the_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * 4.0).sum().backward()
    np.testing.assert_allclose(seen[0], [4.0, 4.0])
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0])


def test_leaf_hook_can_replace_the_gradient():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10.0)
    (x * 4.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [40.0, 40.0])


def test_non_leaf_hook_replacement_flows_upstream():
    x = leaf([1.0, 2.0])
    h = x * 2.0
    h.register_hook(lambda g: g * 0.0 + 1.0)
    (h * h).sum().backward()     # dL/dh = 2h, replaced by ones
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    assert h.grad is None


def test_hook_handle_remove_stops_the_hook():
    x = leaf([1.0])
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    (x * 1.0).sum().backward()
    handle.remove()
    (x * 1.0).sum().backward()
    assert calls == [1]
    handle.remove()              # a second remove is harmless


def test_hooks_run_in_registration_order_and_chain():
    x = leaf([1.0])
    x.register_hook(lambda g: g + 1.0)
    x.register_hook(lambda g: g * 3.0)
    (x * 1.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0])


def test_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        na.Tensor([1.0]).register_hook(lambda g: g)


def test_retain_grad_keeps_non_leaf_gradient():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    k = x * 4.0
    h.retain_grad()
    assert h.retains_grad and not k.retains_grad
    (h * k).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), k.numpy())
    assert k.grad is None


def test_retain_grad_on_leaf_is_a_no_op():
    x = leaf([1.0])
    x.retain_grad()
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0])


# ---- detach and grad modes -----------------------------------------------------------

def test_detach_shares_data_and_stops_gradients():
    x = leaf([1.0, 2.0])
    h = x * 2.0
    d = h.detach()
    assert d.is_leaf and not d.requires_grad
    assert d.data is h.data
    (h.sum() + (d * x).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0 + d.numpy())


def test_detach_in_place():
    x = leaf([1.0])
    h = x * 2.0
    h.detach_()
    assert h.is_leaf and not h.requires_grad


def test_no_grad_as_context_records_nothing():
    x = leaf([1.0])
    with na.no_grad():
        y = x * 2.0
        assert not na.is_grad_enabled()
    assert na.is_grad_enabled()
    assert y.creator is None and not y.requires_grad


def test_no_grad_as_decorator():
    x = leaf([1.0])

    @na.no_grad()
    def f(t):
        return t * 2.0

    assert not f(x).requires_grad
    assert na.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf([1.0])
    with na.no_grad():
        with na.enable_grad():
            y = x * 2.0
        z = x * 2.0

        @na.enable_grad()
        def f(t):
            return t * 2.0

        w = f(x)
    assert y.requires_grad and not z.requires_grad and w.requires_grad


def test_set_grad_enabled_as_function_context_and_decorator():
    x = leaf([1.0])
    na.set_grad_enabled(False)
    assert not (x * 1.0).requires_grad
    na.set_grad_enabled(True)
    assert (x * 1.0).requires_grad
    with na.set_grad_enabled(False):
        assert not (x * 1.0).requires_grad
    assert na.is_grad_enabled()

    @na.set_grad_enabled(False)
    def f(t):
        return t * 1.0

    assert not f(x).requires_grad
    assert na.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(KeyError):
        with na.no_grad():
            raise KeyError("boom")
    assert na.is_grad_enabled()


def test_set_grad_enabled_rejects_non_bool():
    with pytest.raises(TypeError, match="bool"):
        na.set_grad_enabled("yes")


def test_backward_restores_grad_mode():
    x = leaf([1.0])
    (x * 2.0).sum().backward(create_graph=True)
    assert na.is_grad_enabled()
    z = (x * 3.0).sum()
    with na.no_grad():
        z.backward()            # a graph recorded earlier can be run under no_grad
        assert not na.is_grad_enabled()
    np.testing.assert_allclose(x.grad.numpy(), [5.0])
