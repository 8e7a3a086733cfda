"""The autograd API: grad, vjp/jvp/hvp, jacobian/hessian, gradient checks, anomaly mode."""
import numpy as np
import pytest

import neural_arch as na
from neural_arch.autograd import (AnomalyError, GradcheckError, detect_anomaly, grad,
                                  gradcheck, gradgradcheck, hessian, hvp, jacobian, jvp,
                                  vhp, vjp)
from neural_arch.core.function import Function
from tests.helpers import requires_torch, torch

if torch is not None:
    from torch.autograd import functional as TF


def leaf(values):
    return na.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def t64(values):
    return na.Tensor(np.asarray(values, dtype=np.float64))


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- grad -----------------------------------------------------------------------------

def test_grad_returns_gradients_and_leaves_dot_grad_alone():
    x, w = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    gx, gw = grad((x * w).sum(), [x, w])
    np.testing.assert_allclose(gx.numpy(), [3.0, -1.0])
    np.testing.assert_allclose(gw.numpy(), [1.0, 2.0])
    assert x.grad is None and w.grad is None


def test_grad_of_single_tensor_returns_a_one_tuple():
    x = leaf([2.0])
    res = grad((x * x).sum(), x)
    assert isinstance(res, tuple) and len(res) == 1
    np.testing.assert_allclose(res[0].numpy(), [4.0])


def test_grad_with_grad_outputs_and_several_outputs():
    x = leaf([1.0, 2.0])
    y1, y2 = x * 2.0, x * x
    (g,) = grad([y1, y2], x, [t64([1.0, 1.0]), t64([0.5, -1.0])])
    np.testing.assert_allclose(g.numpy(), [2.0 + 1.0, 2.0 - 4.0])


def test_grad_with_respect_to_an_intermediate():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    (gh,) = grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())


def test_grad_create_graph_gives_second_derivative():
    x = leaf([0.3, -1.2])
    (g,) = grad(na.tanh(x).sum(), x, create_graph=True)
    assert g.requires_grad
    (h,) = grad(g.sum(), x)
    th = np.tanh(x.numpy())
    np.testing.assert_allclose(h.numpy(), -2 * th * (1 - th ** 2))


def test_grad_without_create_graph_frees_the_graph():
    x = leaf([1.0])
    y = (x.exp() * 2.0).sum()
    grad(y, x)
    with pytest.raises(RuntimeError, match="retain_graph"):
        grad(y, x)


def test_grad_retain_graph_allows_reuse():
    x = leaf([1.0])
    y = (x.exp() * 2.0).sum()
    (a,) = grad(y, x, retain_graph=True)
    (b,) = grad(y, x)
    np.testing.assert_allclose(a.numpy(), b.numpy())


def test_grad_allow_unused():
    x, unused = leaf([1.0]), leaf([5.0])
    y = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        grad(y, [x, unused], retain_graph=True)
    gx, gu = grad(y, [x, unused], allow_unused=True)
    np.testing.assert_allclose(gx.numpy(), [2.0])
    assert gu is None


def test_grad_wrong_number_of_grad_outputs():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        grad(x * 2.0, x, [t64([1.0, 1.0]), t64([1.0, 1.0])])


# ---- vjp / jvp / hvp against torch.autograd.functional -----------------------------

def mlp_loss(xv, yv):
    """A two-layer tanh MLP's squared error as a function of its weights."""
    def na_loss(w1, b1, w2):
        h = na.tanh(na.Tensor(xv) @ w1 + b1)
        return ((h @ w2 - na.Tensor(yv)) ** 2).mean()

    def torch_loss(w1, b1, w2):
        h = torch.tanh(torch.tensor(xv) @ w1 + b1)
        return ((h @ w2 - torch.tensor(yv)) ** 2).mean()
    return na_loss, torch_loss


@requires_torch
def test_hvp_of_small_mlp_loss_matches_torch():
    xv, yv = rand(6, 4, seed=1), rand(6, 2, seed=2)
    params = [rand(4, 3, seed=3), rand(3, seed=4), rand(3, 2, seed=5)]
    vs = [rand(4, 3, seed=6), rand(3, seed=7), rand(3, 2, seed=8)]
    f, tf = mlp_loss(xv, yv)
    out, hv = hvp(f, tuple(t64(p) for p in params), tuple(t64(v) for v in vs))
    tout, thv = TF.hvp(tf, tuple(torch.tensor(p) for p in params),
                       tuple(torch.tensor(v) for v in vs))
    np.testing.assert_allclose(out.item(), tout.item(), rtol=1e-12)
    assert isinstance(hv, tuple) and len(hv) == 3
    for a, b in zip(hv, thv):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    assert not out.requires_grad and not any(h.requires_grad for h in hv)


@requires_torch
def test_hvp_and_vhp_agree_on_a_single_input():
    xv, vv = rand(5, seed=9), rand(5, seed=10)

    def f(x):
        return (na.tanh(x) * x.exp()).sum()

    def tf(x):
        return (torch.tanh(x) * x.exp()).sum()
    _, hv = hvp(f, t64(xv), t64(vv))
    _, vh = vhp(f, t64(xv), t64(vv))
    _, thv = TF.hvp(tf, torch.tensor(xv), torch.tensor(vv))
    assert isinstance(hv, na.Tensor)
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-12)
    np.testing.assert_allclose(vh.numpy(), thv.numpy(), rtol=1e-12)


@requires_torch
def test_vjp_matches_torch():
    wv, xv, uv = rand(3, 4, seed=11), rand(4, seed=12), rand(3, seed=13)
    out, g = vjp(lambda x: na.tanh(t64(wv) @ x), t64(xv), t64(uv))
    tout, tg = TF.vjp(lambda x: torch.tanh(torch.tensor(wv) @ x), torch.tensor(xv),
                      torch.tensor(uv))
    np.testing.assert_allclose(out.numpy(), tout.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12)


@requires_torch
def test_jvp_matches_torch_for_several_inputs_and_outputs():
    av, bv, va, vb = rand(3, seed=14), rand(3, seed=15), rand(3, seed=16), rand(3, seed=17)

    def f(a, b):
        return a * b.exp(), na.tanh(a - b).sum()

    def tf(a, b):
        return a * b.exp(), torch.tanh(a - b).sum()
    out, jv = jvp(f, (t64(av), t64(bv)), (t64(va), t64(vb)))
    tout, tjv = TF.jvp(tf, (torch.tensor(av), torch.tensor(bv)),
                       (torch.tensor(va), torch.tensor(vb)))
    assert isinstance(out, tuple) and isinstance(jv, tuple) and len(jv) == 2
    for a, b in zip(out + jv, tout + tjv):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)


def test_jvp_of_a_linear_map_is_the_matrix_times_v():
    m = rand(4, 3, seed=18)
    v = rand(3, seed=19)
    _, jv = jvp(lambda x: t64(m) @ x, t64(rand(3, seed=20)), t64(v))
    np.testing.assert_allclose(jv.numpy(), m @ v, rtol=1e-12)


def test_vjp_v_may_be_omitted_for_scalar_outputs_only():
    out, g = vjp(lambda x: (x * x).sum(), t64([1.0, 2.0]))
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    with pytest.raises(ValueError, match="one element"):
        vjp(lambda x: x * 2.0, t64([1.0, 2.0]))


def test_functional_api_checks_v_shapes():
    with pytest.raises(ValueError, match=r"v\[0\] has shape \(3,\).*\(2,\)"):
        hvp(lambda x: (x * x).sum(), t64([1.0, 2.0]), t64([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="1 tensors in v for 2 inputs"):
        jvp(lambda a, b: a * b, (t64([1.0]), t64([2.0])), (t64([1.0]),))


def test_functional_api_rejects_bad_inputs_and_outputs():
    with pytest.raises(TypeError, match="floating dtype"):
        vjp(lambda x: x, na.tensor([1, 2]))
    with pytest.raises(TypeError, match="Tensor or a tuple"):
        vjp(lambda x: x, 3.0)
    with pytest.raises(TypeError, match="must return a Tensor"):
        jacobian(lambda x: 3.0, t64([1.0]))
    with pytest.raises(ValueError, match="one element"):
        hessian(lambda x: x * 2.0, t64([1.0, 2.0]))


def test_functional_api_leaves_caller_tensors_untouched():
    x = leaf([1.0, 2.0])
    hvp(lambda t: (t ** 3).sum(), x, t64([1.0, 1.0]))
    jacobian(lambda t: t * t, x)
    assert x.grad is None


def test_strict_mode_reports_independent_inputs():
    f = lambda a, b: a * 2.0  # noqa: E731
    _, g = vjp(f, (t64([1.0]), t64([2.0])), t64([1.0]))
    np.testing.assert_array_equal(g[1].numpy(), [0.0])
    with pytest.raises(RuntimeError, match="input 1"):
        vjp(f, (t64([1.0]), t64([2.0])), t64([1.0]), strict=True)


def test_hvp_create_graph_can_be_differentiated_to_the_inputs():
    # f = sum(x^4): H v = 12 x^2 v; d/dx sum(H v) = 24 x v.
    x = leaf([1.0, -2.0])
    v = t64([0.5, 3.0])
    _, hv = hvp(lambda t: (t ** 4).sum(), x, v, create_graph=True)
    np.testing.assert_allclose(hv.numpy(), 12 * x.numpy() ** 2 * v.numpy())
    hv.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 24 * x.numpy() * v.numpy())


# ---- jacobian / hessian ---------------------------------------------------------------

@requires_torch
def test_jacobian_single_input_single_output_matches_torch():
    wv, xv = rand(3, 4, seed=21), rand(4, seed=22)
    j = jacobian(lambda x: na.tanh(t64(wv) @ x), t64(xv))
    tj = TF.jacobian(lambda x: torch.tanh(torch.tensor(wv) @ x), torch.tensor(xv))
    assert isinstance(j, na.Tensor) and j.shape == (3, 4)
    np.testing.assert_allclose(j.numpy(), tj.numpy(), rtol=1e-12)


@requires_torch
def test_jacobian_nesting_matches_torch():
    av, bv = rand(2, 3, seed=23), rand(3, seed=24)

    def f(a, b):
        return a * b, (a ** 2).sum(axis=0)

    def tf(a, b):
        return a * b, (a ** 2).sum(dim=0)
    j = jacobian(f, (t64(av), t64(bv)))
    tj = TF.jacobian(tf, (torch.tensor(av), torch.tensor(bv)))
    assert len(j) == 2 and all(len(row) == 2 for row in j)
    for row, trow in zip(j, tj):
        for a, b in zip(row, trow):
            assert a.shape == tuple(b.shape)
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    # a single input with several outputs: one Tensor per output
    j1 = jacobian(lambda a: (a * 2.0, a.sum()), t64(av))
    assert isinstance(j1, tuple) and j1[0].shape == (2, 3, 2, 3) and j1[1].shape == (2, 3)
    # several inputs, one output: one Tensor per input
    j2 = jacobian(lambda a, b: (a * b).sum(), (t64(av), t64(bv)))
    assert isinstance(j2, tuple) and j2[0].shape == (2, 3) and j2[1].shape == (3,)


@requires_torch
def test_jacobian_create_graph_is_differentiable_like_torch():
    xv = np.array([1.0, -2.0, 0.5])
    x = leaf(xv)
    j = jacobian(lambda t: t ** 3 * t.sum(), x, create_graph=True)
    assert j.requires_grad
    j.sum().backward()
    tx = torch.tensor(xv, requires_grad=True)
    TF.jacobian(lambda t: t ** 3 * t.sum(), tx, create_graph=True).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_jacobian_of_output_independent_of_an_input_is_zero():
    j = jacobian(lambda a, b: a * 3.0, (t64([1.0, 2.0]), t64([4.0])))
    np.testing.assert_array_equal(j[0].numpy(), 3.0 * np.eye(2))
    np.testing.assert_array_equal(j[1].numpy(), np.zeros((2, 1)))


@requires_torch
def test_hessian_matches_torch():
    xv = rand(4, seed=25)
    h = hessian(lambda x: (na.tanh(x) * x.sum()).sum(), t64(xv))
    th = TF.hessian(lambda x: (torch.tanh(x) * x.sum()).sum(), torch.tensor(xv))
    assert h.shape == (4, 4)
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-12, atol=1e-14)


@requires_torch
def test_hessian_of_several_inputs_matches_torch():
    xv, yv = rand(3, seed=26), rand(2, seed=27)

    def f(x, y):
        return (x.exp().sum() * na.tanh(y)).sum() + (x * x).sum()

    def tf(x, y):
        return (x.exp().sum() * torch.tanh(y)).sum() + (x * x).sum()
    h = hessian(f, (t64(xv), t64(yv)))
    th = TF.hessian(tf, (torch.tensor(xv), torch.tensor(yv)))
    for row, trow in zip(h, th):
        for a, b in zip(row, trow):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)


def test_hessian_of_a_linear_function_is_zero():
    h = hessian(lambda x: (x * 2.0).sum(), t64([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(h.numpy(), np.zeros((3, 3)))


# ---- gradcheck / gradgradcheck catch wrong formulas -----------------------------------

class WrongSquare(Function):
    """x^2 with a backward that forgets the factor 2."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * self.inputs[0]


class FrozenCube(Function):
    """x^3 whose backward is right in value but uses raw arrays, so it has no graph."""

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        return gy * (3 * self.inputs[0].data ** 2)


class BadSecondCube(Function):
    """x^3 whose first derivative is right but whose derivative of that is wrong."""

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        x = self.inputs[0]
        return gy * 3 * (x * x.detach())     # d/dx of this is 3 x, not 6 x


def test_gradcheck_passes_correct_ops():
    x = leaf(rand(2, 3, seed=28))
    assert gradcheck(lambda t: na.tanh(t) * t.exp(), [x])
    assert gradgradcheck(lambda t: na.tanh(t) * t.exp(), [x])


def test_gradcheck_detects_a_wrong_backward():
    x = leaf([0.5, -1.5, 2.0])
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda t: WrongSquare()(t), [x])
    assert gradcheck(lambda t: WrongSquare()(t), [x], raise_exception=False) is False


@pytest.mark.parametrize("op", [FrozenCube, BadSecondCube])
def test_gradgradcheck_detects_a_wrong_second_derivative(op):
    x = leaf([0.5, -1.5, 2.0])
    assert gradcheck(lambda t: op()(t), [x])          # first derivative is right
    with pytest.raises(GradcheckError):
        gradgradcheck(lambda t: op()(t), [x])
    assert gradgradcheck(lambda t: op()(t), [x], raise_exception=False) is False


def test_gradcheck_insists_on_float64():
    x = na.Tensor(np.float32([1.0]), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2.0, [x])


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda t: t * 2.0, [t64([1.0])])


# ---- anomaly mode ---------------------------------------------------------------------

def test_anomaly_log_of_zero_names_op_and_source_line():
    x = leaf([1.0, 0.0])
    with detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(AnomalyError) as info:
            y = na.log(x)  # noqa: F841  (the line the report must point at)
    msg = str(info.value)
    assert "Log.forward" in msg and "inf" in msg
    assert "test_autograd.py" in msg and "y = na.log(x)" in msg


def test_anomaly_zero_over_zero_names_div():
    x = leaf([0.0, 1.0])
    with detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(AnomalyError, match=r"Div\.forward produced NaN"):
            x / x.detach()


class NaNBackward(Function):
    """Identity forward; its backward hands back NaN directly (no inner op)."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return na.Tensor(np.full(gy.shape, np.nan))


def nan_backward(x):
    return NaNBackward()(x)


def test_anomaly_nan_returned_by_a_backward_names_the_op_and_line():
    x = leaf([1.0, 2.0])
    with detect_anomaly():
        y = nan_backward(x).sum()
        with pytest.raises(AnomalyError) as info:
            y.backward()
    msg = str(info.value)
    assert "NaNBackward.backward produced NaN" in msg
    assert "y = nan_backward(x).sum()" in msg


def test_anomaly_names_the_line_of_a_custom_function_called_directly():
    # Users call their own Functions as ``MyOp()(x)``, without a wrapper function.
    x = leaf([1.0, 2.0])
    with detect_anomaly():
        y = NaNBackward()(x).sum()
        with pytest.raises(AnomalyError) as info:
            y.backward()
    assert "y = NaNBackward()(x).sum()" in str(info.value)


def test_anomaly_nan_computed_inside_a_backward_names_the_op_and_line():
    # sqrt(0) = 0 is fine forward; its backward 0 / (2 * 0) is NaN, computed by ops
    # that run inside Sqrt.backward. The report must name Sqrt's backward and the
    # line that created the sqrt, not only the anonymous inner division.
    x = leaf([0.0, 4.0])
    with detect_anomaly():
        y = (na.sqrt(x) * 0.0).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            with pytest.raises(AnomalyError) as info:
                y.backward()
    msg = str(info.value)
    assert "Sqrt.backward" in msg
    assert "y = (na.sqrt(x) * 0.0).sum()" in msg


def test_without_anomaly_mode_nan_passes_silently():
    x = leaf([1.0, 0.0])
    with np.errstate(divide="ignore"):
        y = na.log(x)
    assert np.isneginf(y.numpy()[1])


def test_detect_anomaly_restores_the_mode():
    assert not na.autograd.is_anomaly_enabled()
    with pytest.raises(KeyError):
        with detect_anomaly():
            assert na.autograd.is_anomaly_enabled()
            raise KeyError("boom")
    assert not na.autograd.is_anomaly_enabled()


# ---- the functional API on the strict fake CuPy device ------------------------------

@pytest.mark.parametrize("name", ["hvp", "vjp", "jvp", "jacobian", "hessian"])
def test_functional_api_runs_on_the_fake_device(name):
    fake_cupy = pytest.importorskip("tests.fake_cupy")
    fake_cupy.register()
    xv, vv = rand(3, seed=30), rand(3, seed=31)

    def f(t):
        return (na.tanh(t) * t.exp()).sum() if name in ("hvp", "hessian") \
            else na.tanh(t) * t.sum()

    def run(device):
        x = na.tensor(xv, device=device)
        v = na.tensor(vv, device=device)
        fn = getattr(na.autograd, name)
        res = fn(f, x) if name in ("jacobian", "hessian") else fn(f, x, v)[1]
        return res

    on_fake, on_cpu = run("fake"), run("cpu")
    assert type(on_fake.data) is fake_cupy.FakeArray
    np.testing.assert_allclose(on_fake.numpy(), on_cpu.numpy(), rtol=1e-12)
