"""Reductions: sum, mean, var, std, max, min, prod, logsumexp, norm, cumsum, argmax/argmin."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neural_arch as na
from neural_arch.autograd import gradcheck, gradgradcheck
from tests.helpers import check_op, requires_torch, torch

inf = math.inf
SHAPE = (2, 3, 4)
AXES = [None, 0, -1, (0, 2), (-1, 1)]


def _dim(axis, ndim=len(SHAPE)):
    """torch's spelling of ``axis``: a full reduction names every dim."""
    return tuple(range(ndim)) if axis is None else axis


def _t(a, requires_grad=False):
    return torch.tensor(np.array(a, dtype=np.float64), requires_grad=requires_grad)


# ---- torch parity, gradcheck and gradgradcheck ----------------------------------------

@requires_torch
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
def test_sum_and_mean_match_torch(axis, keepdims):
    check_op(lambda x: na.sum(x, axis, keepdims), [SHAPE],
             torch_fn=lambda x: torch.sum(x, dim=_dim(axis), keepdim=keepdims))
    check_op(lambda x: na.mean(x, axis, keepdims), [SHAPE],
             torch_fn=lambda x: torch.mean(x, dim=_dim(axis), keepdim=keepdims))


@requires_torch
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (1, False), ((0, 2), True),
                                           (-1, True)])
def test_var_and_std_match_torch(axis, keepdims, correction):
    check_op(lambda x: na.var(x, axis, correction=correction, keepdims=keepdims), [SHAPE],
             torch_fn=lambda x: torch.var(x, dim=_dim(axis), correction=correction,
                                          keepdim=keepdims))
    check_op(lambda x: na.std(x, axis, correction=correction, keepdims=keepdims), [SHAPE],
             torch_fn=lambda x: torch.std(x, dim=_dim(axis), correction=correction,
                                          keepdim=keepdims))


def test_var_default_is_unbiased_and_methods_delegate():
    a = np.arange(6.0).reshape(2, 3) ** 2
    x = na.Tensor(a)
    np.testing.assert_allclose(na.var(x).numpy(), a.var(ddof=1))
    np.testing.assert_allclose(x.var(axis=0, correction=0).numpy(), a.var(axis=0))
    np.testing.assert_allclose(x.std(axis=1, keepdims=True).numpy(),
                               a.std(axis=1, ddof=1, keepdims=True))


@requires_torch
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
def test_max_and_min_match_torch_amax_amin(axis, keepdims):
    check_op(lambda x: na.max(x, axis, keepdims), [SHAPE],
             torch_fn=lambda x: torch.amax(x, dim=_dim(axis), keepdim=keepdims))
    check_op(lambda x: na.min(x, axis, keepdims), [SHAPE],
             torch_fn=lambda x: torch.amin(x, dim=_dim(axis), keepdim=keepdims))


@requires_torch
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
def test_prod_matches_torch(axis, keepdims):
    def tfn(x):
        # torch.prod takes a single dim; reduce several one at a time.
        d = _dim(axis)
        dims = sorted((i % 3 for i in (d if isinstance(d, tuple) else (d,))), reverse=True)
        for d in dims:
            x = torch.prod(x, dim=d, keepdim=keepdims)
        return x
    check_op(lambda x: na.prod(x, axis, keepdims), [SHAPE], torch_fn=tfn,
             bounds={0: (0.5, 1.5)})


@requires_torch
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
def test_logsumexp_matches_torch(axis, keepdims):
    check_op(lambda x: na.logsumexp(x, axis, keepdims), [SHAPE],
             torch_fn=lambda x: torch.logsumexp(x, dim=_dim(axis), keepdim=keepdims))


VECTOR_ORDS = [2, 1, 3, 0.5, inf, -inf]


@requires_torch
@pytest.mark.parametrize("ord,axis,keepdims",
                         [(None, None, False), (None, (0, 2), False), (None, -1, True)]
                         + [(o, -1, False) for o in VECTOR_ORDS]
                         + [(o, 1, True) for o in VECTOR_ORDS])
def test_vector_norm_matches_torch(ord, axis, keepdims):
    check_op(lambda x: na.norm(x, ord, axis, keepdims), [SHAPE],
             torch_fn=lambda x: torch.linalg.vector_norm(
                 x, 2 if ord is None else ord, dim=_dim(axis), keepdim=keepdims))


@requires_torch
@pytest.mark.parametrize("ord", ["fro", 1, -1, inf, -inf, 2, -2, "nuc"])
@pytest.mark.parametrize("axis,keepdims", [((-2, -1), False), ((2, 0), True)])
def test_matrix_norm_matches_torch(ord, axis, keepdims):
    # ord 2 / -2 / 'nuc' have first derivatives only (see test below).
    check_op(lambda x: na.norm(x, ord, axis, keepdims), [SHAPE],
             torch_fn=lambda x: torch.linalg.matrix_norm(x, ord, dim=axis, keepdim=keepdims),
             gradgrad=ord not in (2, -2, "nuc"))


@requires_torch
@pytest.mark.parametrize("ord", [None, 1, 2, inf, -inf, "fro", "nuc"])
def test_norm_without_axis_follows_torch_linalg_norm(ord):
    shape = (3, 4)
    check_op(lambda x: na.norm(x, ord), [shape], torch_fn=lambda x: torch.linalg.norm(x, ord),
             gradgrad=ord not in (2, "nuc"))
    check_op(lambda x: na.norm(x, ord if ord not in ("fro", "nuc") else None), [(5,)],
             torch_fn=lambda x: torch.linalg.norm(x, ord if ord not in ("fro", "nuc")
                                                  else None))
    x = na.Tensor(np.ones((2, 3, 4)))
    if ord is None:
        np.testing.assert_allclose(na.norm(x).item(), np.sqrt(24.0))
    else:
        with pytest.raises(ValueError, match="1-D or 2-D"):
            na.norm(x, ord)


def test_singular_value_norms_refuse_second_derivatives_clearly():
    x = na.Tensor(np.random.default_rng(0).standard_normal((3, 3)), requires_grad=True)
    (g,) = na.autograd.grad([na.norm(x, 2)], [x], create_graph=True)
    with pytest.raises(NotImplementedError, match="second derivatives"):
        na.autograd.grad([na.sum(g * g)], [x])


def test_norm_l0_counts_nonzeros():
    x = na.Tensor(np.array([[0.0, 2.0, -1.0], [0.0, 0.0, 3.0]]), requires_grad=True)
    np.testing.assert_array_equal(na.norm(x, 0, axis=1).numpy(), [2.0, 1.0])
    assert not na.norm(x, 0, axis=1).requires_grad


@requires_torch
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cumsum_matches_torch(axis):
    check_op(lambda x: na.cumsum(x, axis), [SHAPE],
             torch_fn=lambda x: torch.cumsum(x, dim=axis))


@requires_torch
def test_cumsum_without_axis_flattens_like_numpy():
    check_op(lambda x: na.cumsum(x), [SHAPE],
             torch_fn=lambda x: torch.cumsum(x.reshape(-1), dim=0))
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(na.Tensor(a).cumsum().numpy(), np.cumsum(a))


# ---- max/min ties ---------------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("name,tname", [("max", "amax"), ("min", "amin")])
@pytest.mark.parametrize("axis", [None, 1])
def test_extreme_ties_share_the_gradient_evenly_like_torch(name, tname, axis):
    a = np.array([[3.0, 1.0, 3.0, 3.0], [-1.0, -1.0, 2.0, 0.5]])
    if name == "min":
        a = -a
    x = na.Tensor(a.copy(), requires_grad=True)
    t = _t(a, requires_grad=True)
    getattr(na, name)(x, axis).sum().backward()
    getattr(torch, tname)(t, dim=_dim(axis, 2)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())
    if axis is None:
        expect = np.zeros_like(a)
        expect[0, [0, 2, 3]] = 1 / 3
        np.testing.assert_allclose(x.grad.numpy(), expect)


# ---- prod with zeros ------------------------------------------------------------------

PROD_CASES = {
    "one zero": np.array([[0.0, 1.5, -0.7, 1.2], [0.8, -1.3, 0.6, 1.1]]),
    "two zeros": np.array([[0.0, 1.5, 0.0, 1.2], [0.8, -1.3, 0.6, 1.1]]),
    "three zeros": np.array([[0.0, 0.0, 0.0, 1.2], [0.0, -1.3, 0.6, 1.1]]),
    "all zero": np.zeros((2, 4)),
}


@requires_torch
@pytest.mark.parametrize("case", list(PROD_CASES))
@pytest.mark.parametrize("axis", [None, 1, 0])
def test_prod_gradient_with_zeros_matches_torch_to_second_order(case, axis):
    a = PROD_CASES[case]
    dim = axis if axis is not None else None

    def ours(x):
        return na.prod(x, axis)

    def theirs(x):
        return torch.prod(x) if dim is None else torch.prod(x, dim=dim)

    x = na.Tensor(a.copy(), requires_grad=True)
    t = _t(a, requires_grad=True)
    y, ty = ours(x), theirs(t)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy())
    w = np.random.default_rng(1).standard_normal(y.shape)
    (g,) = na.autograd.grad([y], [x], [na.Tensor(w)], create_graph=True)
    (tg,) = torch.autograd.grad(ty, t, torch.tensor(w), create_graph=True)
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), atol=1e-12)
    # A Hessian-vector product checks the second derivative at the zeros.
    v = np.random.default_rng(2).standard_normal(a.shape)
    (h,) = na.autograd.grad([na.sum(g * na.Tensor(v))], [x])
    (th,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), t)
    np.testing.assert_allclose(h.numpy(), th.numpy(), atol=1e-12)
    xs = [na.Tensor(a.copy(), requires_grad=True)]
    assert gradcheck(ours, xs)
    assert gradgradcheck(ours, xs)


def test_prod_single_zero_gets_the_product_of_the_others():
    x = na.Tensor(np.array([2.0, 0.0, 3.0, -1.0]), requires_grad=True)
    na.prod(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, -6.0, 0.0, 0.0])
    x = na.Tensor(np.array([2.0, 0.0, 3.0, 0.0]), requires_grad=True)
    na.prod(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 0.0])


# ---- logsumexp stability --------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("scale", [1e4, -1e4, 1e300])
def test_logsumexp_is_stable_for_huge_inputs(scale):
    a = np.array([[1.0, 0.5, 1.0], [0.0, -2.0, 0.25]]) * scale
    x = na.Tensor(a.copy(), requires_grad=True)
    t = _t(a, requires_grad=True)
    y = na.logsumexp(x, axis=1)
    ty = torch.logsumexp(t, dim=1)
    assert np.all(np.isfinite(y.numpy()))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=1e-12)


def test_logsumexp_handles_infinities():
    x = na.Tensor(np.array([[-inf, -inf], [inf, 1.0], [-inf, 0.0]]))
    with np.errstate(divide="ignore"):
        y = na.logsumexp(x, axis=1).numpy()
    np.testing.assert_array_equal(y, [-inf, inf, 0.0])


# ---- norms and std at zero ------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("ord,axis", [(None, None), (2, 1), (3, 1), (inf, 1), (1, 1),
                                      ("fro", (0, 1))])
def test_norm_gradient_at_zero_is_zero_like_torch(ord, axis):
    a = np.zeros((2, 3))
    a[1] = [1.0, -2.0, 0.5]       # row 0 is all zeros: the norm is not differentiable there
    x = na.Tensor(a.copy(), requires_grad=True)
    t = _t(a, requires_grad=True)
    na.sum(na.norm(x, ord, axis)).backward()
    if axis is None:
        torch.linalg.norm(t).backward()
    elif ord == "fro":
        torch.linalg.matrix_norm(t, ord, dim=axis).sum().backward()
    else:
        torch.linalg.vector_norm(t, ord, dim=axis).sum().backward()
    g = x.grad.numpy()
    assert not np.isnan(g).any()
    np.testing.assert_allclose(g, t.grad.numpy(), atol=1e-12)
    if axis == 1:
        np.testing.assert_array_equal(g[0], 0.0)


@requires_torch
def test_std_of_a_constant_slice_has_zero_gradient_like_torch():
    a = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])
    x = na.Tensor(a.copy(), requires_grad=True)
    t = _t(a, requires_grad=True)
    na.std(x, axis=1).sum().backward()
    torch.std(t, dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())
    np.testing.assert_array_equal(x.grad.numpy()[0], 0.0)


# ---- argmax / argmin ------------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argmax_argmin_match_torch(name, axis, keepdims):
    a = np.random.default_rng(3).standard_normal(SHAPE)
    a[0, 1, :2] = a.max() + 1 if name == "argmax" else a.min() - 1   # a tie: first wins
    x = na.Tensor(a, requires_grad=True)
    out = getattr(na, name)(x, axis, keepdims)
    expect = getattr(torch, name)(_t(a), dim=axis, keepdim=keepdims)
    assert out.dtype == np.int64
    assert not out.requires_grad
    assert out.shape == tuple(expect.shape)
    np.testing.assert_array_equal(out.numpy(), expect.numpy())
    assert getattr(x, name)(axis, keepdims).tolist() == out.tolist()


def test_argmax_errors():
    x = na.Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="single int"):
        na.argmax(x, (0, 1))
    with pytest.raises(ValueError, match="out of range"):
        na.argmin(x, 2)
    with pytest.raises(ValueError, match="empty"):
        na.argmax(na.Tensor(np.ones((0,))))


# ---- axes, keepdims, 0-d inputs, dtypes, errors ---------------------------------------

REDUCTIONS = ["sum", "mean", "var", "std", "max", "min", "prod", "logsumexp", "norm"]


def _call(name, x, axis, keepdims=False):
    if name == "norm":
        return na.norm(x, None, axis, keepdims)
    return getattr(na, name)(x, axis, keepdims=keepdims)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_bad_axes_raise_clear_errors(name):
    x = na.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"axis 2 is out of range for a tensor with 2 dims"):
        _call(name, x, 2)
    with pytest.raises(ValueError, match=r"axis -3 is out of range"):
        _call(name, x, (0, -3))
    with pytest.raises(ValueError, match=r"appears more than once"):
        _call(name, x, (1, -1))
    with pytest.raises(TypeError, match=r"axis must be an int, a tuple of ints or None"):
        _call(name, x, 0.5)
    with pytest.raises(TypeError, match=r"expects a Tensor"):
        _call(name, [1.0, 2.0], 0)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_keepdims_shapes_and_numpy_integer_axes(name):
    x = na.Tensor(np.random.default_rng(4).uniform(0.5, 1.5, (2, 3, 4)))
    assert _call(name, x, (0, 2), keepdims=True).shape == (1, 3, 1)
    assert _call(name, x, np.int64(-1)).shape == (2, 3)
    assert _call(name, x, [0, 1]).shape == (4,)
    assert _call(name, x, None, keepdims=True).shape == (1, 1, 1)
    assert _call(name, x, None).shape == ()


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "logsumexp"])
def test_zero_dim_input_reduces_to_itself(name):
    for axis in (None, 0, -1):
        x = na.Tensor(np.array(1.5), requires_grad=True)
        y = _call(name, x, axis)
        assert y.shape == ()
        np.testing.assert_allclose(y.item(), 1.5)
        y.backward()
        np.testing.assert_allclose(x.grad.item(), 1.0)


@pytest.mark.parametrize("name", REDUCTIONS + ["cumsum"])
def test_float32_stays_float32(name):
    x = na.Tensor(np.linspace(0.5, 1.5, 12).reshape(3, 4), dtype="float32",
                  requires_grad=True)
    y = na.cumsum(x, 1) if name == "cumsum" else _call(name, x, 1)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_norm_rejects_bad_orders():
    x = na.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="invalid ord='fro' for a vector norm"):
        na.norm(x, "fro", axis=1)
    with pytest.raises(ValueError, match="invalid ord=-1 for a vector norm"):
        na.norm(x, -1, axis=0)
    with pytest.raises(ValueError, match="invalid ord=3 for a matrix norm"):
        na.norm(x, 3, axis=(0, 1))
    with pytest.raises(ValueError, match="one axis .* or two"):
        na.norm(na.Tensor(np.ones((2, 2, 2))), 2, axis=(0, 1, 2))


def test_var_rejects_non_numeric_correction():
    with pytest.raises(TypeError, match="correction must be a number"):
        na.var(na.Tensor(np.ones(3)), correction="1")


def test_cumsum_rejects_several_axes():
    with pytest.raises(TypeError, match="single int"):
        na.cumsum(na.Tensor(np.ones((2, 2))), (0, 1))


def test_reductions_of_integer_tensors_keep_working():
    x = na.Tensor(np.arange(6).reshape(2, 3))
    assert na.sum(x, 0).tolist() == [3, 5, 7]
    assert na.max(x).item() == 5
    assert na.cumsum(x, 1).tolist() == [[0, 1, 3], [3, 7, 12]]


# ---- hypothesis: random shapes and axes ----------------------------------------------

@st.composite
def shape_and_axis(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    nd = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-nd, nd - 1))
    else:
        picked = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
        axis = tuple(a - nd if draw(st.booleans()) else a for a in picked)
    return shape, axis, draw(st.booleans())


TORCH_OPS = {
    "sum": lambda t, d, k: torch.sum(t, dim=d, keepdim=k),
    "mean": lambda t, d, k: torch.mean(t, dim=d, keepdim=k),
    "var": lambda t, d, k: torch.var(t, dim=d, correction=0, keepdim=k),
    "max": lambda t, d, k: torch.amax(t, dim=d, keepdim=k),
    "min": lambda t, d, k: torch.amin(t, dim=d, keepdim=k),
    "logsumexp": lambda t, d, k: torch.logsumexp(t, dim=d, keepdim=k),
    "norm": lambda t, d, k: torch.linalg.vector_norm(t, dim=d, keepdim=k),
}


@requires_torch
@settings(max_examples=20, deadline=None)
@given(shape_and_axis(), st.sampled_from(sorted(TORCH_OPS)), st.integers(0, 2 ** 16))
def test_random_shapes_and_axes_match_torch(sa, name, seed):
    shape, axis, keepdims = sa
    a = np.random.default_rng(seed).uniform(-2, 2, shape)
    x = na.Tensor(a.copy(), requires_grad=True)
    t = _t(a, requires_grad=True)
    if name == "var":
        y = na.var(x, axis, correction=0, keepdims=keepdims)
    else:
        y = _call(name, x, axis, keepdims)
    ty = TORCH_OPS[name](t, _dim(axis, len(shape)), keepdims)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(seed + 1).standard_normal(y.shape)
    y.backward(na.Tensor(w))
    ty.backward(torch.tensor(w))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(shape_and_axis(), st.integers(0, 2 ** 16))
def test_random_shapes_prod_and_cumsum_pass_gradcheck(sa, seed):
    shape, axis, keepdims = sa
    a = np.random.default_rng(seed).uniform(-2, 2, shape)
    a.reshape(-1)[0] = 0.0            # a zero in the input exercises the zero-safe gradient
    xs = [na.Tensor(a, requires_grad=True)]
    assert gradcheck(lambda x: na.prod(x, axis, keepdims), xs)
    ax = axis if isinstance(axis, int) else None
    assert gradcheck(lambda x: na.cumsum(x, ax), xs)
