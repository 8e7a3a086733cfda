"""Convolution and pooling (functional and layers) against torch, plus gradchecks and errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neural_arch as na
import neural_arch.functional as F
from neural_arch import backend, nn
from neural_arch.autograd import gradcheck, gradgradcheck
from tests import fake_cupy
from tests.helpers import check_op, requires_torch, torch
from tests.nn.parity import check_layer

if torch is not None:
    import torch.nn.functional as TF

F64 = "float64"
# torch warns that its own 'same' padding with even kernels copies the input.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def parity(fn, tfn, arrays, atol=1e-10, seed=1):
    """Forward and first-order gradients of ``fn`` and ``tfn`` on the same float64 arrays."""
    xs = [na.Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    y, ty = fn(*xs), tfn(*ts)
    assert y.shape == tuple(ty.shape), f"shape {y.shape}, torch {tuple(ty.shape)}"
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), atol=atol, rtol=1e-8,
                               err_msg="forward differs from torch")
    w = np.random.default_rng(seed).standard_normal(y.shape)
    with na.autograd.grad_clip(None):
        y.backward(na.Tensor(w))
    ty.backward(torch.tensor(w))
    for i, (x, t) in enumerate(zip(xs, ts)):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=atol, rtol=1e-8,
                                   err_msg=f"gradient of input {i} differs from torch")
    return y


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ==== conv2d / conv1d =====================================================================

CONV2D = [  # (x shape, weight shape, keyword arguments)
    ((2, 3, 7, 6), (4, 3, 3, 3), {}),
    ((2, 3, 7, 6), (4, 3, 3, 2), dict(stride=2, padding=1)),
    ((2, 3, 9, 8), (5, 3, 2, 3), dict(stride=(2, 1), padding=(0, 2), dilation=(2, 1))),
    ((2, 4, 8, 7), (6, 2, 3, 3), dict(groups=2, padding=1, dilation=2)),
    ((2, 4, 6, 6), (8, 1, 3, 3), dict(groups=4, padding="same")),          # depthwise
    ((1, 2, 6, 7), (3, 2, 4, 2), dict(padding="same")),                    # even: asymmetric
    ((1, 2, 7, 7), (3, 2, 2, 3), dict(padding="same", dilation=(3, 2))),
    ((2, 3, 5, 6), (4, 3, 3, 3), dict(padding="valid")),
    ((2, 3, 7, 6), (4, 3, 1, 1), dict(stride=3)),                           # 1x1, strided
    ((2, 3, 5, 4), (2, 3, 5, 4), {}),                                       # kernel == input
    ((2, 3, 6, 5), (4, 3, 2, 2), dict(stride=3, padding=1)),               # windows apart
    ((3, 7, 6), (4, 3, 3, 3), dict(padding=1)),                            # unbatched
]


@requires_torch
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs, ws, kw", CONV2D)
def test_conv2d_matches_torch(xs, ws, kw, bias):
    arrays = [randn(*xs), randn(*ws, seed=1)] + ([randn(ws[0], seed=2)] if bias else [])
    parity(lambda *a: F.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw), arrays)


CONV1D = [
    ((2, 3, 9), (4, 3, 3), {}),
    ((2, 3, 9), (4, 3, 3), dict(stride=2, padding=2)),
    ((2, 4, 10), (6, 2, 2), dict(groups=2, dilation=3, padding="same")),
    ((2, 4, 10), (4, 1, 4), dict(groups=4, padding="same")),
    ((3, 8), (2, 3, 3), dict(padding=(1,), stride=(3,))),                  # unbatched
]


@requires_torch
@pytest.mark.parametrize("xs, ws, kw", CONV1D)
def test_conv1d_matches_torch(xs, ws, kw):
    arrays = [randn(*xs), randn(*ws, seed=1), randn(ws[0], seed=2)]
    parity(lambda *a: F.conv1d(*a, **kw), lambda *a: TF.conv1d(*a, **kw), arrays)


@requires_torch
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 2), groups=st.sampled_from([1, 2, 3]), cg=st.integers(1, 2),
       og=st.integers(1, 2), kh=st.integers(1, 3), kw=st.integers(1, 3),
       h=st.integers(3, 8), w=st.integers(3, 8), stride=st.integers(1, 3),
       pad=st.integers(0, 2), dil=st.integers(1, 2), bias=st.booleans())
def test_conv2d_random_configurations_match_torch(n, groups, cg, og, kh, kw, h, w, stride, pad,
                                                  dil, bias):
    if h + 2 * pad < dil * (kh - 1) + 1 or w + 2 * pad < dil * (kw - 1) + 1:
        return      # kernel larger than the input: an error (tested below)
    ws = (og * groups, cg, kh, kw)
    arrays = [randn(n, cg * groups, h, w), randn(*ws, seed=1)] + \
        ([randn(ws[0], seed=2)] if bias else [])
    kwargs = dict(stride=stride, padding=pad, dilation=dil, groups=groups)
    parity(lambda *a: F.conv2d(*a, **kwargs), lambda *a: TF.conv2d(*a, **kwargs), arrays)


# ==== transposed convolutions =============================================================

CONVT2D = [  # weight shape is (C_in, C_out / groups, kH, kW)
    ((2, 4, 4, 3), (4, 3, 3, 3), {}),
    ((2, 4, 4, 3), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 4, 5), (4, 2, 3, 2), dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2),
                                      groups=2, dilation=(1, 2))),
    ((1, 2, 4, 4), (2, 3, 3, 3), dict(output_padding=1, dilation=2)),      # extra >= stride
    ((1, 3, 3, 4), (3, 2, 1, 1), dict(stride=2)),                          # 1x1 kernel
    ((2, 4, 3, 3), (4, 1, 2, 2), dict(stride=2, groups=4)),                 # windows disjoint
    ((4, 3, 3), (4, 2, 3, 3), dict(stride=2, padding=1)),                  # unbatched
]


@requires_torch
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs, ws, kw", CONVT2D)
def test_conv_transpose2d_matches_torch(xs, ws, kw, bias):
    groups = kw.get("groups", 1)
    arrays = [randn(*xs), randn(*ws, seed=1)] + ([randn(ws[1] * groups, seed=2)] if bias else [])
    parity(lambda *a: F.conv_transpose2d(*a, **kw), lambda *a: TF.conv_transpose2d(*a, **kw),
           arrays)


@requires_torch
@pytest.mark.parametrize("kw", [{}, dict(stride=3, padding=1, output_padding=2),
                                dict(groups=2, dilation=2, stride=2, output_padding=1)])
def test_conv_transpose1d_matches_torch(kw):
    arrays = [randn(2, 4, 5), randn(4, 3, 3, seed=1), randn(3 * kw.get("groups", 1), seed=2)]
    parity(lambda *a: F.conv_transpose1d(*a, **kw), lambda *a: TF.conv_transpose1d(*a, **kw),
           arrays)


def test_conv_transpose_is_the_adjoint_of_conv():
    # <conv(x, w), y> == <x, conv_transpose(y, w)> for the same geometry.
    x, w = na.Tensor(randn(2, 4, 7, 6)), na.Tensor(randn(6, 2, 3, 2, seed=1))
    kw = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    y = F.conv2d(x, w, **kw)
    g = na.Tensor(randn(*y.shape, seed=2))
    xt = F.conv_transpose2d(g, w, **kw, output_padding=(0, 0))
    assert xt.shape == x.shape
    lhs = float((y.numpy() * g.numpy()).sum())
    assert lhs == pytest.approx(float((x.numpy() * xt.numpy()).sum()), rel=1e-10)


# ==== gradcheck and second derivatives ====================================================

SMALL = [  # tiny shapes: finite differences touch every element
    (F.conv2d, (1, 2, 4, 4), (2, 2, 2, 2), dict(stride=1, padding=1)),
    (F.conv2d, (2, 4, 5, 4), (4, 2, 3, 2), dict(stride=(2, 1), padding=1, dilation=(1, 2),
                                                groups=2)),
    (F.conv2d, (1, 2, 4, 5), (2, 2, 2, 3), dict(padding="same")),
    (F.conv1d, (2, 2, 6), (3, 2, 3), dict(stride=2, padding=1)),
    (F.conv_transpose2d, (1, 4, 3, 3), (4, 1, 3, 2), dict(stride=2, padding=1, output_padding=1,
                                                          groups=2)),
    (F.conv_transpose1d, (2, 2, 3), (2, 3, 2), dict(stride=2, dilation=2)),
]


@requires_torch
@pytest.mark.parametrize("op, xs, ws, kw", SMALL)
def test_conv_gradcheck_and_gradgradcheck(op, xs, ws, kw):
    tfn = getattr(TF, op.__name__)
    out_channels = ws[1] * kw.get("groups", 1) if "transpose" in op.__name__ else ws[0]
    check_op(lambda x, w, b: op(x, w, b, **kw), [xs, ws, (out_channels,)],
             torch_fn=lambda x, w, b: tfn(x, w, b, **kw))


@requires_torch
@pytest.mark.parametrize("op, xs, ws, kw", [SMALL[1], SMALL[4]])
def test_conv_double_backward_matches_torch(op, xs, ws, kw):
    """A gradient penalty: differentiate a function of both first gradients, against torch."""
    tfn = getattr(TF, op.__name__)
    x0, w0 = randn(*xs), randn(*ws, seed=1)
    y_shape = tuple(tfn(torch.tensor(x0), torch.tensor(w0), **kw).shape)
    c, vx, vw = randn(*y_shape, seed=2), randn(*xs, seed=3), randn(*ws, seed=4)

    def run(lib, fn, x, w, c, vx, vw):
        y = fn(x, w, **kw)
        gx, gw = lib.grad((y * c).sum(), (x, w), create_graph=True)
        return ((gx * vx).sum() + (gw * vw).sum() + (gw * gw).sum()) * (y * y).sum()

    xs_na = [na.Tensor(a, requires_grad=True) for a in (x0, w0, c)]
    out = run(na.autograd, op, *xs_na, na.Tensor(vx), na.Tensor(vw))
    got = na.autograd.grad(out, xs_na)
    xs_t = [torch.tensor(a, requires_grad=True) for a in (x0, w0, c)]
    tout = run(torch.autograd, tfn, *xs_t, torch.tensor(vx), torch.tensor(vw))
    want = torch.autograd.grad(tout, xs_t)
    assert out.item() == pytest.approx(tout.item(), rel=1e-9)
    for g, t in zip(got, want):
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-8, atol=1e-9)


def test_weight_gradient_is_differentiable_in_input_and_cotangent():
    # The weight gradient conv_w^T(x, gy) as a function of x and of gy.
    w = na.Tensor(randn(4, 2, 3, 2), requires_grad=True)
    kw = dict(stride=(2, 1), padding=1, groups=2)

    def weight_grad(x, gy):
        with na.enable_grad():
            y = F.conv2d(x, w, **kw)
            return na.autograd.grad(y, w, gy, create_graph=True)[0]

    x = na.Tensor(randn(1, 4, 4, 3, seed=1), requires_grad=True)
    gy = na.Tensor(randn(*F.conv2d(x, w, **kw).shape, seed=2), requires_grad=True)
    assert gradcheck(weight_grad, [x, gy])
    assert gradgradcheck(weight_grad, [x, gy])


def test_conv_keeps_float32():
    x = na.Tensor(randn(2, 3, 6, 6).astype("float32"), requires_grad=True)
    w = na.Tensor(randn(4, 3, 3, 3).astype("float32"), requires_grad=True)
    b = na.Tensor(np.zeros(4, "float32"), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    t = F.conv_transpose2d(y, w, stride=1, padding=1)
    p = F.max_pool2d(t, 2) + F.avg_pool2d(t, 2) + F.adaptive_avg_pool2d(t, (3, 3))
    p.sum().backward()
    assert {y.dtype, t.dtype, p.dtype, x.grad.dtype, w.grad.dtype, b.grad.dtype} == \
        {np.dtype("float32")}


def test_conv_does_not_mutate_inputs_and_output_is_fresh():
    x0, w0, b0 = randn(2, 3, 5, 5), randn(3, 3, 1, 1, seed=1), randn(3, seed=2)
    x, w, b = (na.Tensor(a.copy(), requires_grad=True) for a in (x0, w0, b0))
    y = F.conv_transpose2d(F.conv2d(x, w, b), w, b)
    y.sum().backward()
    for t, a in ((x, x0), (w, w0), (b, b0)):
        np.testing.assert_array_equal(t.numpy(), a)
    assert not np.shares_memory(y.numpy(), x.numpy())


# ==== pooling =============================================================================

MAXPOOL = [  # (op, x shape, positional args, keyword args)
    ("max_pool2d", (2, 3, 7, 6), (2,), {}),
    ("max_pool2d", (2, 3, 7, 6), (3, 2, 1), {}),
    ("max_pool2d", (2, 3, 7, 6), (3, 2, 1), dict(ceil_mode=True)),
    ("max_pool2d", (2, 3, 9, 8), ((3, 2), (2, 1), (1, 1)), dict(dilation=(2, 1))),
    ("max_pool2d", (2, 2, 5, 5), (2, 1), {}),                               # overlapping
    ("max_pool2d", (3, 7, 7), (3,), dict(stride=3, ceil_mode=True)),        # unbatched
    ("max_pool1d", (2, 3, 9), (3, 2, 1), dict(ceil_mode=True)),
    ("max_pool1d", (2, 3, 10), (2,), dict(dilation=3)),
]


@requires_torch
@pytest.mark.parametrize("name, xs, args, kw", MAXPOOL)
def test_max_pool_matches_torch_with_indices(name, xs, args, kw):
    x = randn(*xs)
    parity(lambda t: getattr(F, name)(t, *args, **kw),
           lambda t: getattr(TF, name)(t, *args, **kw), [x])
    y, idx = getattr(F, name)(na.Tensor(x), *args, **kw, return_indices=True)
    ty, tidx = getattr(TF, name)(torch.tensor(x), *args, **kw, return_indices=True)
    assert idx.dtype == np.int64 and not idx.requires_grad
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@requires_torch
@pytest.mark.parametrize("stride", [1, 2])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(stride):
    x = np.random.default_rng(0).integers(0, 2, size=(2, 2, 6, 6)).astype(F64)
    x[0, 0] = 1.0                                     # a whole plane of ties
    y = parity(lambda t: F.max_pool2d(t, 3, stride, 1), lambda t: TF.max_pool2d(t, 3, stride, 1),
               [x])
    g = na.Tensor(x, requires_grad=True)
    F.max_pool2d(g, 2).sum().backward()
    assert g.grad.numpy()[0, 0, ::2, ::2].all() and g.grad.numpy()[0, 0].sum() == 9
    assert y.shape == (2, 2, 6 // stride, 6 // stride)


def test_max_pool_propagates_nan():
    x = randn(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    y = F.max_pool2d(na.Tensor(x), 2).numpy()
    assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 0, 1:, :]).any() \
        and not np.isnan(y[0, 0, :, 1:]).any()


AVGPOOL = [
    ("avg_pool2d", (2, 3, 7, 6), (2,), {}),
    ("avg_pool2d", (2, 3, 7, 6), (3, 2, 1), {}),
    ("avg_pool2d", (2, 3, 7, 6), (3, 2, 1), dict(count_include_pad=False)),
    ("avg_pool2d", (2, 3, 7, 6), (3, 2, 1), dict(ceil_mode=True)),
    ("avg_pool2d", (2, 3, 7, 6), (3, 2, 1), dict(ceil_mode=True, count_include_pad=False)),
    ("avg_pool2d", (2, 3, 8, 6), ((3, 2), (2, 1), (1, 1)), dict(divisor_override=5)),
    ("avg_pool2d", (3, 5, 5), (2, 1), {}),                                  # unbatched
    ("avg_pool1d", (2, 3, 9), (4, 3, 2), dict(ceil_mode=True)),
    ("avg_pool1d", (2, 3, 9), (4, 3, 2), dict(ceil_mode=True, count_include_pad=False)),
]


@requires_torch
@pytest.mark.parametrize("name, xs, args, kw", AVGPOOL)
def test_avg_pool_matches_torch(name, xs, args, kw):
    parity(lambda t: getattr(F, name)(t, *args, **kw),
           lambda t: getattr(TF, name)(t, *args, **kw), [randn(*xs)])


ADAPTIVE = [
    ("adaptive_avg_pool2d", (2, 3, 7, 6), (3, 4)),          # uneven, overlapping windows
    ("adaptive_avg_pool2d", (2, 3, 8, 6), (4, 3)),          # even: a plain average pool
    ("adaptive_avg_pool2d", (2, 3, 7, 6), 1),               # global
    ("adaptive_avg_pool2d", (2, 3, 7, 6), (None, 4)),
    ("adaptive_avg_pool2d", (2, 3, 3, 2), (5, 4)),          # larger than the input
    ("adaptive_avg_pool2d", (3, 5, 7), (2, 3)),             # unbatched
    ("adaptive_avg_pool1d", (2, 3, 7), 3),
    ("adaptive_avg_pool1d", (2, 3, 5), 5),
]


@requires_torch
@pytest.mark.parametrize("name, xs, size", ADAPTIVE)
def test_adaptive_avg_pool_matches_torch(name, xs, size):
    parity(lambda t: getattr(F, name)(t, size), lambda t: getattr(TF, name)(t, size),
           [randn(*xs)])


@pytest.mark.parametrize("fn", [
    lambda x: F.max_pool2d(x, 3, 1, 1),
    lambda x: F.max_pool2d(x, 2, ceil_mode=True),
    lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda x: F.avg_pool2d(x, 2, 1),
    lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
    lambda x: F.max_pool1d(F.avg_pool1d(x.reshape(1, 2, 25), 3, 2, 1), 2, 1),
], ids=["max-overlap", "max-ceil", "avg-ceil-nopad", "avg-overlap", "adaptive", "1d"])
def test_pool_gradcheck_and_gradgradcheck(fn):
    x = na.Tensor(randn(1, 2, 5, 5), requires_grad=True)
    assert gradcheck(fn, [x])
    assert gradgradcheck(fn, [x])


def test_pool_gradients_are_differentiable_in_the_cotangent():
    # The backward of each pooling is linear in the upstream gradient; its own
    # backward (scatter <-> gather, spread <-> sum) must be right too.
    x = na.Tensor(randn(1, 2, 5, 5))
    for pool in (lambda t: F.max_pool2d(t, 3, 1, 1), lambda t: F.avg_pool2d(t, 2, 1, 1)):
        def vjp(gy, pool=pool):
            with na.enable_grad():
                xr = na.Tensor(x.data, requires_grad=True)
                return na.autograd.grad(pool(xr), xr, gy, create_graph=True)[0]
        gy = na.Tensor(randn(*pool(x).shape, seed=1), requires_grad=True)
        assert gradcheck(vjp, [gy])


# ==== errors ==============================================================================

def test_conv_errors_name_the_shapes():
    x, w = na.randn(2, 3, 8, 8), na.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"input has 5 channels \(shape \(2, 5, 8, 8\)\).*"
                                         r"weight \(shape \(4, 3, 3, 3\)\).*expects 3"):
        F.conv2d(na.randn(2, 5, 8, 8), w)
    with pytest.raises(ValueError, match=r"4 output channels .* divisible by groups=3"):
        F.conv2d(na.randn(2, 3, 8, 8), na.randn(4, 1, 3, 3), groups=3)
    with pytest.raises(ValueError, match="groups must be a positive int, got 0"):
        F.conv2d(x, w, groups=0)
    with pytest.raises(ValueError, match=r"kernel \(5, 5\).*larger than the padded input "
                                         r"\(4, 4\).*\(2, 3, 4, 4\)"):
        F.conv2d(na.randn(2, 3, 4, 4), na.randn(4, 3, 5, 5))
    with pytest.raises(ValueError, match=r"spans \(5, 5\)"):
        F.conv2d(na.randn(2, 3, 4, 4), w, dilation=2)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="'valid' or 'same'; got 'full'"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match=r"expected a 4-d input \(N, C, H, W\).*\(8, 8\)"):
        F.conv2d(na.randn(8, 8), w)
    with pytest.raises(ValueError, match=r"4-d weight, got shape \(4, 3, 3\)"):
        F.conv2d(x, na.randn(4, 3, 3))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\).*got \(3,\)"):
        F.conv2d(x, w, na.randn(3))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="padding must be an int or a tuple of 2 ints"):
        F.conv2d(x, w, padding=(1, 1, 1))
    with pytest.raises(ValueError, match=r"conv1d: expected a 3-d input \(N, C, L\)"):
        F.conv1d(x, w)


def test_conv_transpose_errors():
    x, w = na.randn(2, 4, 5, 5), na.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"input has 3 channels.*expects weight.shape\[0\] = 4"):
        F.conv_transpose2d(na.randn(2, 3, 5, 5), w)
    with pytest.raises(ValueError, match="output_padding must be smaller than the stride or "
                                         "the dilation"):
        F.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="no string padding"):
        F.conv_transpose2d(x, w, padding="same")
    with pytest.raises(ValueError, match=r"output size \(-5, -5\) would not be positive"):
        F.conv_transpose2d(x, w, padding=6)
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\)"):
        F.conv_transpose2d(x, na.randn(4, 3, 3, 3), na.randn(3), groups=2)


def test_pool_errors():
    x = na.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"kernel \(5, 5\).*larger than the padded input.*"
                                         r"\(2, 3, 4, 4\)"):
        F.max_pool2d(x, 5)
    with pytest.raises(ValueError, match="padding must be at most half the kernel size"):
        F.avg_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"expected a 4-d input .*got shape \(4, 4\)"):
        F.max_pool2d(na.randn(4, 4), 2)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        F.max_pool2d(x, 0)
    with pytest.raises(ValueError, match="divisor_override must be a non-zero int"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match="output_size must be a positive int or a tuple of 2"):
        F.adaptive_avg_pool2d(x, (2, 0))
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_avg_pool2d(x, (1, 2, 3))
    with pytest.raises(TypeError, match="expected a Tensor"):
        F.max_pool2d(np.zeros((1, 1, 4, 4)), 2)


# ==== layers ==============================================================================

@requires_torch
@pytest.mark.parametrize("args, kw, xs", [
    ((3, 4, 3), {}, (2, 3, 7, 6)),
    ((4, 6, (3, 2)), dict(stride=2, padding=1, groups=2, bias=False), (2, 4, 7, 6)),
    ((2, 4, 4), dict(padding="same", dilation=2), (2, 2, 9, 8)),
    ((2, 3, 3), dict(padding=2, padding_mode="reflect"), (2, 2, 6, 5)),
    ((2, 3, (3, 2)), dict(padding=(1, 2), padding_mode="replicate", stride=2), (2, 2, 6, 5)),
    ((2, 3, 4), dict(padding="same", padding_mode="circular"), (2, 2, 6, 5)),
])
def test_conv2d_layer_matches_torch(args, kw, xs):
    torch.manual_seed(0)
    check_layer(nn.Conv2d(*args, **kw, dtype=F64), torch.nn.Conv2d(*args, **kw), [xs])


@requires_torch
@pytest.mark.parametrize("args, kw, xs", [
    ((3, 4, 3), {}, (2, 3, 9)),
    ((4, 2, 2), dict(stride=2, padding=1, groups=2, padding_mode="reflect"), (2, 4, 9)),
    ((2, 3, 4), dict(padding="same", dilation=2), (3, 2, 10)),
])
def test_conv1d_layer_matches_torch(args, kw, xs):
    torch.manual_seed(0)
    check_layer(nn.Conv1d(*args, **kw, dtype=F64), torch.nn.Conv1d(*args, **kw), [xs])


@requires_torch
@pytest.mark.parametrize("cls, args, kw, xs", [
    ("ConvTranspose2d", (4, 3, 3), {}, (2, 4, 4, 3)),
    ("ConvTranspose2d", (4, 6, (3, 2)), dict(stride=2, padding=1, output_padding=1, groups=2,
                                             dilation=(1, 2)), (2, 4, 4, 3)),
    ("ConvTranspose1d", (3, 2, 3), dict(stride=3, output_padding=2, bias=False), (2, 3, 5)),
])
def test_conv_transpose_layers_match_torch(cls, args, kw, xs):
    torch.manual_seed(0)
    check_layer(getattr(nn, cls)(*args, **kw, dtype=F64), getattr(torch.nn, cls)(*args, **kw),
                [xs])


@requires_torch
def test_conv_transpose_layer_output_size_picks_the_output_padding():
    layer, tl = nn.ConvTranspose2d(2, 3, 3, stride=3, dtype=F64), torch.nn.ConvTranspose2d(2, 3,
                                                                                           3, 3)
    layer.load_state_dict({k: v.detach().numpy() for k, v in tl.state_dict().items()})
    x = randn(1, 2, 4, 4)
    for size in [(12, 12), (13, 14), (1, 2, 14, 12)]:
        y = layer(na.Tensor(x), output_size=size)
        ty = tl(torch.tensor(x), output_size=size)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), atol=1e-12)
    with pytest.raises(ValueError, match=r"dim 0 must lie in \[12, 14\]"):
        layer(na.Tensor(x), output_size=(15, 12))


@requires_torch
@pytest.mark.parametrize("cls, args, kw, xs", [
    ("MaxPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True), (2, 3, 7, 6)),
    ("MaxPool2d", ((2, 3),), dict(dilation=(1, 2)), (2, 3, 7, 8)),
    ("MaxPool1d", (3,), dict(stride=1, padding=1), (2, 3, 7)),
    ("AvgPool2d", (3, 2, 1), dict(count_include_pad=False), (2, 3, 7, 6)),
    ("AvgPool2d", (2,), dict(divisor_override=3), (2, 3, 6, 6)),
    ("AvgPool1d", (3, 2, 1), dict(ceil_mode=True), (2, 3, 8)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (2, 3, 7, 6)),
    ("AdaptiveAvgPool2d", (1,), {}, (2, 3, 7, 6)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 7)),
])
def test_pool_layers_match_torch_and_print_alike(cls, args, kw, xs):
    layer, tl = getattr(nn, cls)(*args, **kw), getattr(torch.nn, cls)(*args, **kw)
    check_layer(layer, tl, [xs])
    assert repr(layer) == repr(tl)


@requires_torch
@pytest.mark.parametrize("cls, args, kw", [
    ("Conv2d", (1, 16, 3), {}),
    ("Conv2d", (4, 8, (3, 2)), dict(stride=2, padding=1, dilation=2, groups=2, bias=False)),
    ("Conv2d", (4, 8, 3), dict(padding="same", padding_mode="reflect")),
    ("Conv1d", (2, 4, 5), dict(padding="valid", stride=(2,))),
    ("ConvTranspose2d", (4, 2, 3), dict(stride=2, output_padding=1, groups=2)),
    ("ConvTranspose1d", (4, 2, 3), dict(dilation=2)),
])
def test_conv_layers_print_like_torch(cls, args, kw):
    assert getattr(nn, cls)(*args, **kw).extra_repr() == \
        getattr(torch.nn, cls)(*args, **kw).extra_repr()


@pytest.mark.parametrize("cls, args, fan_in", [
    ("Conv2d", (6, 32, (5, 4)), 6 * 20),
    ("Conv2d", (6, 30, 5, 1, 0, 1, 3), 2 * 25),                 # groups=3
    ("Conv1d", (8, 64, 7), 8 * 7),
    ("ConvTranspose2d", (32, 12, 5, 1, 0, 0, 2), 6 * 25),       # fan_in: out / groups * k
])
def test_conv_layers_start_with_torchs_default_init(cls, args, fan_in):
    na.manual_seed(0)
    layer = getattr(nn, cls)(*args)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    bound = 1 / math.sqrt(fan_in)
    assert w.dtype == np.float32 and isinstance(layer.weight, nn.Parameter)
    assert bound * 0.97 < np.abs(w).max() <= bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert np.abs(b).max() <= bound and np.abs(b).max() > bound * 0.5
    na.manual_seed(0)
    np.testing.assert_array_equal(getattr(nn, cls)(*args).weight.numpy(), w)


@requires_torch
def test_conv_layer_state_dict_keys_and_torch_arrays_load():
    tl = torch.nn.Conv2d(3, 4, 3)
    layer = nn.Conv2d(3, 4, 3, dtype=F64)
    assert list(layer.state_dict()) == ["weight", "bias"] == list(tl.state_dict())
    layer.load_state_dict({k: v.detach().numpy() for k, v in tl.state_dict().items()})
    np.testing.assert_array_equal(layer.weight.numpy(), tl.weight.detach().numpy())
    assert list(nn.Conv2d(3, 4, 3, bias=False).state_dict()) == ["weight"]
    assert nn.ConvTranspose2d(3, 4, 2, groups=1).weight.shape == (3, 4, 2, 2)


def test_layer_arguments_are_checked_at_construction():
    with pytest.raises(ValueError, match=r"Conv2d: in_channels \(3\) must be divisible by "
                                         r"groups \(2\)"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be a positive int"):
        nn.Conv2d(3, 0, 3)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="only padding_mode='zeros'"):
        nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="kernel_size must be an int or a tuple of 2 ints"):
        nn.Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(ValueError, match="padding must be at most half the kernel size"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="output_size"):
        nn.AdaptiveAvgPool2d((2, -1))
    with pytest.raises(ValueError, match=r"input has 2 channels.*expects 3"):
        nn.Conv2d(3, 4, 3)(na.randn(1, 2, 5, 5))


def test_small_cnn_trains():
    na.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3, padding="same"), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 8, 8)).astype("float32")
    labels = (x[:, 0, :4].mean(axis=(1, 2)) > x[:, 0, 4:].mean(axis=(1, 2))).astype(int)
    x[labels == 1, 0, :4] += 1.0
    target = na.Tensor(np.eye(2, dtype="float32")[labels])
    opt = na.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((model(na.Tensor(x)) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ==== the fake CuPy device ================================================================

DEVICE_CASES = {
    "conv2d": (lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1, groups=2),
               (2, 4, 5, 4), (4, 2, 3, 2)),
    "conv2d-same": (lambda x, w: F.conv2d(x, w, padding="same"), (1, 2, 4, 5), (3, 2, 2, 2)),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1),
                         (1, 2, 3, 3), (2, 3, 3, 3)),
    "conv1d": (lambda x, w: F.conv1d(x, w, dilation=2), (2, 2, 7), (3, 2, 2)),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), (2, 2, 5, 5)),
    "max_pool2d-indices": (lambda x: F.max_pool2d(x, 2, return_indices=True)[0] *
                           F.max_pool2d(x, 2, return_indices=True)[1].astype(F64),
                           (1, 2, 4, 4)),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                   (2, 2, 5, 5)),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)), (2, 2, 5, 5)),
}


def _on(device, a):
    return na.Tensor(backend.to_device(a, device), requires_grad=True)


def _run(device, fn, arrays):
    """Output, gradients and second-order gradients of ``fn`` on ``device``, on the host."""
    xs = [_on(device, a) for a in arrays]
    y = fn(*xs)
    c = na.Tensor(backend.to_device(randn(*y.shape, seed=5), device))
    gs = na.autograd.grad(y, xs, c, create_graph=True)
    out = [y] + list(gs)
    total = sum((g * g).sum() for g in gs)
    if total.requires_grad:     # (a max pool's gradient does not depend on its input)
        out += [g for g in na.autograd.grad(total, xs, allow_unused=True) if g is not None]
    for t in out:
        assert t.device == backend.device_of(xs[0].data)
    return [t.numpy() for t in out]


@pytest.mark.parametrize("name", sorted(DEVICE_CASES))
def test_ops_on_the_fake_device_match_the_cpu(name):
    fake_cupy.register()
    fn, *shapes = DEVICE_CASES[name]
    arrays = [randn(*s, seed=i) for i, s in enumerate(shapes)]
    with na.autograd.grad_clip(None):
        want = _run("cpu", fn, arrays)
        got = _run("fake", fn, arrays)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_conv_layer_on_the_fake_device():
    fake_cupy.register()
    layer = nn.Conv2d(2, 3, 3, padding=1, device="fake", dtype=F64)
    y = layer(na.Tensor(randn(2, 2, 5, 5)).to("fake"))
    y.sum().backward()
    assert y.device == layer.weight.grad.device == layer.bias.grad.device == "fake:0"


def test_max_pool_backward_keeps_a_nan_gradient_at_the_max_position_only():
    x = na.Tensor(np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4), requires_grad=True)
    y = na.max_pool2d(x, 2)
    g = np.ones((1, 1, 2, 2))
    g[0, 0, 0, 0] = np.nan
    y.backward(na.Tensor(g))
    gx = x.grad.numpy()[0, 0]
    assert np.isnan(gx[1, 1]) and np.isnan(gx).sum() == 1     # only the window's max
    assert gx[0, 0] == 0 and gx[3, 3] == 1
