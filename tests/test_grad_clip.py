"""The automatic elementwise gradient clamp of the backward pass."""
import numpy as np
import pytest

import neural_arch as na
from neural_arch.autograd import (get_grad_clip, grad_clip, gradcheck, last_clamped_count,
                                  set_grad_clip)


def leaf(values):
    return na.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def test_default_bound_is_one_million():
    assert get_grad_clip() == 1e6


def test_huge_gradient_arrives_clamped_by_default():
    x = leaf([1.0, 2.0])
    (x * 1e9).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1e6, 1e6])
    assert last_clamped_count() == 2


def test_negative_huge_gradient_is_clamped_to_minus_bound():
    x = leaf([1.0])
    (x * -1e9).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-1e6])


def test_clamp_switched_off_lets_the_gradient_through():
    set_grad_clip(None)
    assert get_grad_clip() is None
    x = leaf([1.0, 2.0])
    (x * 1e9).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1e9, 1e9])
    assert last_clamped_count() == 0


def test_set_grad_clip_changes_the_bound():
    set_grad_clip(5)
    x = leaf([1.0, 2.0])
    (x * 4.0 * x.detach()).sum().backward()    # 4x = [4, 8] along one edge
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 5.0])


def test_grad_clip_context_scopes_and_restores():
    x = leaf([1.0])
    with grad_clip(10.0):
        assert get_grad_clip() == 10.0
        (x * 1e9).sum().backward()
        with grad_clip(None):
            assert get_grad_clip() is None
        assert get_grad_clip() == 10.0
    assert get_grad_clip() == 1e6
    np.testing.assert_array_equal(x.grad.numpy(), [10.0])


def test_grad_clip_context_restores_after_an_exception():
    with pytest.raises(KeyError):
        with grad_clip(3.0):
            raise KeyError("boom")
    assert get_grad_clip() == 1e6


def test_clamped_count_is_per_backward():
    x = leaf([1.0, 1.0, 1.0, 1.0, 1.0])
    w = na.Tensor(np.array([1e9, 1.0, -1e9, 1.0, 1e7]))
    (x * w).sum().backward()
    assert last_clamped_count() == 3
    np.testing.assert_array_equal(x.grad.numpy(), [1e6, 1.0, -1e6, 1.0, 1e6])
    (x * 2.0).sum().backward()
    assert last_clamped_count() == 0


def test_gradient_equal_to_the_bound_is_not_counted():
    x = leaf([1.0, 1.0])
    (x * 1e6).sum().backward()
    assert last_clamped_count() == 0
    np.testing.assert_array_equal(x.grad.numpy(), [1e6, 1e6])


def test_clamp_applies_on_every_edge_not_only_at_leaves():
    # (1e9 * x) * 1e-3: the edge into h = 1e9 * x carries 1e-3, the edge into x
    # carries 1e-3 * 1e9 = 1e6, which a bound of 10 cuts to 10.
    x = leaf([1.0])
    with grad_clip(10.0):
        ((x * 1e9) * 1e-3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [10.0])
    # Clamping happens on the edge where the big value appears, so a later small
    # factor cannot bring an already exploded gradient back:
    y = leaf([1.0])
    with grad_clip(10.0):
        ((y * 1e-3) * 1e9).sum().backward()   # edge into y*1e-3 carries 1e9 -> 10
    np.testing.assert_allclose(y.grad.numpy(), [10.0 * 1e-3])


def test_clamping_is_off_inside_gradcheck():
    def f(x):
        return x * 1e9
    x = leaf([0.5, -0.25])
    assert gradcheck(f, [x])
    assert get_grad_clip() == 1e6        # and restored afterwards


def test_same_function_is_clamped_outside_gradcheck():
    x = leaf([0.5])
    (g,) = na.autograd.grad((x * 1e9).sum(), x)
    assert g.item() == 1e6


def test_clamp_under_create_graph_is_differentiable():
    # g(x) = clip(2x, -1, 1): dg/dx = 0 where clamped, 2 elsewhere.
    x = leaf([2.0, 0.25, -3.0])
    with grad_clip(1.0):
        (g,) = na.autograd.grad((x ** 2).sum(), x, create_graph=True)
        assert last_clamped_count() == 2
    np.testing.assert_array_equal(g.numpy(), [1.0, 0.5, -1.0])
    assert g.requires_grad
    (h,) = na.autograd.grad(g.sum(), x)
    np.testing.assert_array_equal(h.numpy(), [0.0, 2.0, 0.0])


@pytest.mark.parametrize("op", ["tanh", "add", "sub", "reshape"])
def test_bounded_op_fed_a_sum_of_gradients_is_still_clamped(op):
    # t receives 0.9 + 0.9 = 1.8 from two consumers; each edge is within the bound 1,
    # their sum is not. The bounded op that made t must not skip the clamp check.
    x = leaf([0.0, 0.0])
    if op == "tanh":
        t = na.tanh(x)
    elif op == "add":
        t = x + 1.0
    elif op == "sub":
        t = x - 1.0
    else:
        t = x.reshape(2, 1).reshape(2)
    with grad_clip(1.0):
        ((t * 0.9).sum() + (t * 0.9).sum()).backward()
        assert last_clamped_count() == 2
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_bounded_op_used_twice_by_one_op_is_still_clamped():
    # t + t hands t two gradients of 1 from one Function: 2 > bound 1.5.
    x = leaf([0.0])
    t = na.tanh(x)
    with grad_clip(1.5):
        (t + t).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.5])


def test_broadcast_reduction_is_clamped():
    # x of shape (3,) broadcast over 4 rows: its gradient is a sum of 4 ones.
    x = leaf([0.0, 0.0, 0.0])
    with grad_clip(2.0):
        (x + na.Tensor(np.zeros((4, 3)))).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_bounded_op_fed_an_unchecked_seed_is_clamped():
    # A user-given seed of 5 is not known to lie within the bound, so the edge out of
    # tanh (5 * (1 - tanh(1)^2) = 2.1) must still be checked and cut to 1.
    x = leaf([1.0, 2.0])
    y = na.tanh(x)
    with grad_clip(1.0):
        y.backward(na.Tensor(np.array([5.0, 0.5])))
    expected = np.clip(np.array([5.0, 0.5]) * (1 - np.tanh([1.0, 2.0]) ** 2), -1, 1)
    assert expected[0] == 1.0
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_clamp_does_not_touch_in_range_gradients_or_the_inputs():
    xv = np.array([1e5, -3.0, 0.0])
    x = leaf(xv.copy())
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * xv)
    np.testing.assert_array_equal(x.numpy(), xv)


def test_clamp_on_float32_gradients():
    x = na.Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    (x * 1e9).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), np.float32([1e6, 1e6]))


def test_nan_gradients_are_left_for_anomaly_mode():
    # Clamping must not turn NaN into a finite number and hide the problem.
    x = leaf([0.0])
    with np.errstate(invalid="ignore", divide="ignore"):
        (na.sqrt(x) * 0.0).sum().backward()
    assert np.isnan(x.grad.numpy()[0])


@pytest.mark.parametrize("bad", [0, 0.0, -1, -1e-3, "x", float("nan"), True, [1.0]])
def test_invalid_bounds_give_a_clear_value_error(bad):
    with pytest.raises(ValueError, match="positive number or None"):
        set_grad_clip(bad)
    with pytest.raises(ValueError, match="positive number or None"):
        with grad_clip(bad):
            pass
    assert get_grad_clip() == 1e6


def test_infinite_bound_is_allowed_and_never_clamps():
    set_grad_clip(float("inf"))
    x = leaf([1.0])
    (x * 1e300).sum().backward()
    assert x.grad.item() == 1e300
    assert last_clamped_count() == 0


def test_top_level_names_are_the_same_functions():
    assert na.set_grad_clip is set_grad_clip
    assert na.grad_clip is grad_clip
    assert na.last_clamped_count is last_clamped_count
