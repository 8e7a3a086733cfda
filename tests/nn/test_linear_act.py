"""Linear, Bilinear, Identity, Flatten and the activation modules, against torch.nn."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neural_arch as na
import neural_arch.functional as F
from neural_arch import nn
from tests import fake_cupy
from tests.helpers import check_op, requires_torch, torch
from tests.nn.parity import check_layer

if torch is not None:
    import torch.nn.functional as TF

F64 = "float64"


# ---- functional linear / bilinear ------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("xs", [(4, 3), (2, 5, 3), (3,), (2, 1, 2, 3)])
def test_linear_op_against_torch(xs):
    check_op(F.linear, [xs, (6, 3), (6,)], torch_fn=TF.linear)
    check_op(F.linear, [xs, (6, 3)], torch_fn=TF.linear)


@requires_torch
@pytest.mark.parametrize("grad_inputs", [(0,), (1,), (2,), (1, 2)])
def test_linear_op_with_some_inputs_constant(grad_inputs):
    check_op(F.linear, [(4, 3), (2, 3), (2,)], torch_fn=TF.linear, grad_inputs=grad_inputs)


@requires_torch
@pytest.mark.parametrize("lead", [(4,), (2, 3), ()])
def test_bilinear_op_against_torch(lead):
    check_op(F.bilinear, [lead + (3,), lead + (2,), (4, 3, 2), (4,)], torch_fn=TF.bilinear)
    check_op(F.bilinear, [lead + (3,), lead + (2,), (4, 3, 2)], torch_fn=TF.bilinear)


def test_linear_op_names_the_mismatch():
    x, w = na.randn(4, 3), na.randn(5, 2)
    with pytest.raises(ValueError, match=r"last dim \(3\) must equal in_features \(2\)"):
        F.linear(x, w)
    with pytest.raises(ValueError, match="weight must be 2-d"):
        F.linear(x, na.randn(5, 3, 1))
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\).*got \(2, 5\)"):
        F.linear(x, na.randn(5, 3), na.randn(2, 5))
    with pytest.raises(ValueError, match=r"bilinear: expected inputs.*\(4, 3\), \(5, 2\)"):
        F.bilinear(x, na.randn(5, 2), na.randn(2, 3, 2))


# ---- Linear ------------------------------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xshape", [(5, 4), (2, 3, 4), (4,)])
def test_linear_layer_matches_torch(bias, xshape):
    torch.manual_seed(0)
    check_layer(nn.Linear(4, 3, bias=bias, dtype=F64), torch.nn.Linear(4, 3, bias=bias),
                [xshape])


@settings(max_examples=15, deadline=None)
@given(lead=st.lists(st.integers(0, 3), max_size=3), fin=st.integers(1, 4),
       fout=st.integers(1, 4))
def test_linear_shapes_and_gradient_shapes(lead, fin, fout):
    layer = nn.Linear(fin, fout, dtype=F64)
    x = na.randn(*lead, fin, dtype=F64, requires_grad=True)
    y = layer(x)
    assert y.shape == tuple(lead) + (fout,)
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert layer.weight.grad.shape == (fout, fin) and layer.bias.grad.shape == (fout,)
    # d sum(y) / d b counts the rows; d sum(y) / d W = column sums of x.
    n = math.prod(lead)
    np.testing.assert_allclose(layer.bias.grad.numpy(), np.full(fout, n))
    np.testing.assert_allclose(layer.weight.grad.numpy(),
                               np.tile(x.numpy().reshape(-1, fin).sum(0), (fout, 1)),
                               atol=1e-12)


def test_linear_default_init_is_torchs():
    na.manual_seed(0)
    layer = nn.Linear(400, 300)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    bound = 1 / math.sqrt(400)
    assert layer.weight.dtype == np.float32 and w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    assert np.abs(b).max() <= bound and b.std() == pytest.approx(bound / math.sqrt(3), rel=0.15)
    assert isinstance(layer.weight, nn.Parameter) and layer.weight.requires_grad
    na.manual_seed(0)
    np.testing.assert_array_equal(nn.Linear(400, 300).weight.numpy(), w)   # seeded


def test_linear_reset_parameters_redraws_in_place():
    layer = nn.Linear(3, 2)
    arr, before = layer.weight.data, layer.weight.numpy().copy()
    layer.reset_parameters()
    assert layer.weight.data is arr and not np.array_equal(before, arr)


def test_linear_arguments_and_errors():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match="in_features must be a non-negative int, got 2.5"):
        nn.Linear(2.5, 3)
    with pytest.raises(ValueError, match="out_features"):
        nn.Linear(3, -1)
    with pytest.raises(ValueError, match=r"last dim \(4\) must equal in_features \(3\)"):
        layer(na.randn(2, 4))
    with pytest.raises(TypeError):
        nn.Linear(3, 2, bias=True, biased=True)          # unknown keyword


def test_linear_on_the_fake_device():
    fake_cupy.register()
    layer = nn.Linear(3, 2, device="fake", dtype=F64)
    cpu = nn.Linear(3, 2, dtype=F64)
    cpu.load_state_dict({k: fake_cupy.to_host(v) for k, v in layer.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 3))
    y = layer(na.Tensor(x).to("fake"))
    assert y.device == "fake:0"
    np.testing.assert_allclose(y.numpy(), cpu(na.Tensor(x)).numpy(), atol=1e-12)
    y.sum().backward()
    assert layer.weight.grad.device == "fake:0"


@requires_torch
def test_linear_state_dict_keys_and_torch_arrays_load():
    torch.manual_seed(1)
    tl = torch.nn.Linear(3, 2)
    layer = nn.Linear(3, 2)
    assert list(layer.state_dict()) == list(tl.state_dict())
    layer.load_state_dict({k: v.numpy() for k, v in tl.state_dict().items()})
    np.testing.assert_allclose(layer.weight.numpy(), tl.weight.detach().numpy(), rtol=1e-6)
    assert layer.weight.dtype == np.float32          # cast to the layer's dtype


# ---- Bilinear, Identity, Flatten --------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_layer_matches_torch(bias):
    torch.manual_seed(0)
    check_layer(nn.Bilinear(3, 2, 4, bias=bias, dtype=F64), torch.nn.Bilinear(3, 2, 4, bias=bias),
                [(5, 3), (5, 2)])


def test_bilinear_default_init():
    na.manual_seed(0)
    layer = nn.Bilinear(16, 5, 40)
    bound = 1 / math.sqrt(16)
    assert layer.weight.shape == (40, 16, 5) and layer.bias.shape == (40,)
    w = layer.weight.numpy()
    assert np.abs(w).max() <= bound and w.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert np.abs(layer.bias.numpy()).max() <= bound


def test_identity_returns_its_input_and_ignores_arguments():
    x = na.randn(2, 3)
    assert nn.Identity(54, unused="x")(x) is x
    assert list(nn.Identity().parameters()) == []


@requires_torch
@pytest.mark.parametrize("start,end", [(1, -1), (0, -1), (1, 2), (-3, -2), (2, 2)])
def test_flatten_matches_torch(start, end):
    check_layer(nn.Flatten(start, end), torch.nn.Flatten(start, end), [(2, 3, 2, 2)])


def test_flatten_rejects_non_int_dims():
    with pytest.raises(TypeError, match="start_dim must be an int"):
        nn.Flatten(1.0)


# ---- activation modules -----------------------------------------------------------------------

# (neural_arch module, torch module): same arguments on both sides.
def _activation_pairs():
    t = torch.nn
    return [
        (nn.ReLU(), t.ReLU()),
        (nn.LeakyReLU(), t.LeakyReLU()),
        (nn.LeakyReLU(0.2), t.LeakyReLU(0.2)),
        (nn.ELU(), t.ELU()),
        (nn.ELU(alpha=0.5), t.ELU(alpha=0.5)),
        (nn.SELU(), t.SELU()),
        (nn.GELU(), t.GELU()),
        (nn.GELU(approximate="tanh"), t.GELU(approximate="tanh")),
        (nn.SiLU(), t.SiLU()),
        (nn.Mish(), t.Mish()),
        (nn.Hardtanh(), t.Hardtanh()),
        (nn.Hardtanh(-0.5, 2.0), t.Hardtanh(-0.5, 2.0)),
        (nn.Sigmoid(), t.Sigmoid()),
        (nn.Tanh(), t.Tanh()),
        (nn.Softplus(), t.Softplus()),
        (nn.Softplus(beta=2.0, threshold=1.0), t.Softplus(beta=2.0, threshold=1.0)),
        (nn.Softmax(dim=1), t.Softmax(dim=1)),
        (nn.Softmax(dim=-1), t.Softmax(dim=-1)),
        (nn.LogSoftmax(dim=0), t.LogSoftmax(dim=0)),
        (nn.LogSoftmax(dim=2), t.LogSoftmax(dim=2)),
    ]


@requires_torch
def test_activation_modules_match_torch_and_print_alike():
    for i, (m, tm) in enumerate(_activation_pairs()):
        check_layer(m, tm, [(3, 4, 5)], seed=i, copy_weights=False)
        assert repr(m) == repr(tm)
        assert list(m.parameters()) == [] and m.state_dict() == {}


@requires_torch
def test_inplace_flag_is_shown_but_the_input_is_kept():
    pairs = [(nn.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
             (nn.LeakyReLU(0.1, inplace=True), torch.nn.LeakyReLU(0.1, inplace=True)),
             (nn.ELU(inplace=True), torch.nn.ELU(inplace=True)),
             (nn.SELU(True), torch.nn.SELU(True)),
             (nn.SiLU(inplace=True), torch.nn.SiLU(inplace=True)),
             (nn.Mish(inplace=True), torch.nn.Mish(inplace=True)),
             (nn.Hardtanh(inplace=True), torch.nn.Hardtanh(inplace=True))]
    for m, tm in pairs:
        assert repr(m) == repr(tm)
        x = na.tensor([-1.0, 2.0])
        m(x)
        np.testing.assert_array_equal(x.numpy(), [-1.0, 2.0])


def test_softmax_dim_axis_alias_and_default():
    x = na.randn(2, 3, 4, dtype=F64)
    np.testing.assert_allclose(nn.Softmax(axis=1)(x).numpy(), F.softmax(x, 1).numpy())
    np.testing.assert_allclose(nn.LogSoftmax(axis=0)(x).numpy(), F.log_softmax(x, 0).numpy())
    assert nn.Softmax(1, axis=1).dim == 1
    for cls in (nn.Softmax, nn.LogSoftmax):
        m = cls()
        assert m.dim == -1 and repr(m) == f"{cls.__name__}(dim=-1)"
        np.testing.assert_allclose(m(x).numpy(), cls(dim=2)(x).numpy())
        with pytest.raises(TypeError, match="both dim=1 and axis=2"):
            cls(1, axis=2)
        with pytest.raises(TypeError, match="dim must be an int"):
            cls(dim=1.5)
    np.testing.assert_allclose(nn.Softmax()(x).numpy().sum(-1), 1.0)


def test_activation_arguments_are_checked():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'erf'"):
        nn.GELU("erf")
    with pytest.raises(ValueError, match="max_val .* must not be below min_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(ValueError, match="beta must be non-zero"):
        nn.Softplus(beta=0)
    with pytest.raises(TypeError, match="inplace must be a bool"):
        nn.ReLU("yes")
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        nn.LeakyReLU("0.1")


def test_activation_module_in_a_network_trains():
    na.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2), nn.LogSoftmax(dim=1))
    x = na.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    labels = np.array([0, 1, 1, 0])
    losses = []
    for _ in range(200):
        out = net(x)
        loss = -(out[np.arange(4), labels]).mean()
        net.zero_grad()
        loss.backward()
        for p in net.parameters():
            p.data -= 0.5 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.1 < losses[0]
