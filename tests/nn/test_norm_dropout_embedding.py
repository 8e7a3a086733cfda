"""Normalisation, dropout and embedding: ops and layers, against torch where it has them."""
import numpy as np
import pytest

import neural_arch as na
import neural_arch.functional as F
from neural_arch import nn
from neural_arch.autograd import grad, gradcheck, gradgradcheck
from tests import fake_cupy
from tests.helpers import check_op, requires_torch, torch
from tests.nn.parity import check_layer

if torch is not None:
    import torch.nn.functional as TF

F64 = "float64"


# ==== batch norm: the op ======================================================================

@requires_torch
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2), (2, 3, 2, 2)])
def test_batch_norm_op_in_training_matches_torch(shape):
    def ours(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True)

    def theirs(x, w, b):
        return TF.batch_norm(x, None, None, w, b, training=True)
    check_op(ours, [shape, (3,), (3,)], torch_fn=theirs, atol=1e-6, rtol=1e-5)


@requires_torch
def test_batch_norm_op_without_affine_and_with_eps():
    check_op(lambda x: F.batch_norm(x, None, None, training=True, eps=0.1), [(6, 2)],
             torch_fn=lambda x: TF.batch_norm(x, None, None, training=True, eps=0.1))


@requires_torch
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 2)])
def test_batch_norm_op_in_eval_uses_running_stats(shape):
    rm = np.array([0.3, -0.2, 0.1])
    rv = np.array([0.5, 2.0, 1.5])

    def ours(x, w, b):
        return F.batch_norm(x, na.Tensor(rm), na.Tensor(rv), w, b, training=False)

    def theirs(x, w, b):
        return TF.batch_norm(x, torch.tensor(rm), torch.tensor(rv), w, b, training=False)
    check_op(ours, [shape, (3,), (3,)], torch_fn=theirs, gradgrad=False)


@requires_torch
@pytest.mark.parametrize("momentum", [0.1, 0.6])
def test_batch_norm_op_updates_running_stats_as_torch(momentum):
    rng = np.random.default_rng(0)
    rm, rv = na.zeros(3, dtype=F64), na.ones(3, dtype=F64)
    trm, trv = torch.zeros(3), torch.ones(3)
    arr = rm.data
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5)) * 2 + 1
        F.batch_norm(na.Tensor(x), rm, rv, training=True, momentum=momentum)
        TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=momentum)
    assert rm.data is arr                                    # updated in place
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-12)   # unbiased variance


@requires_torch
@pytest.mark.parametrize("which", ["batch", "layer", "group"])
def test_norm_second_derivatives_match_torch(which):
    # A Hessian-vector product: differentiate <grad_x sum(w * y), v> once more. The
    # first backward runs with create_graph=True, where Standardize rebuilds xhat
    # from recorded ops; the plain backward uses the arrays saved by forward.
    ops = {"batch": (lambda x, g: F.batch_norm(x, None, None, g, None, training=True),
                     lambda x, g: TF.batch_norm(x, None, None, g, None, training=True)),
           "layer": (lambda x, g: F.layer_norm(x, 3, g), lambda x, g: TF.layer_norm(x, (3,), g)),
           "group": (lambda x, g: F.group_norm(x, 3, g), lambda x, g: TF.group_norm(x, 3, g))}
    ours, theirs = ops[which]
    rng = np.random.default_rng(4)
    shape = (4, 2, 3) if which == "layer" else (4, 3, 2)
    x, g, w, v = (rng.standard_normal(s) for s in [shape, (3,), shape, shape])
    xs, gs = na.Tensor(x, requires_grad=True), na.Tensor(g, requires_grad=True)
    xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(g, requires_grad=True)
    with na.autograd.grad_clip(None):       # some second derivatives here exceed 1e6
        gx, = grad([(ours(xs, gs) * na.Tensor(w)).sum()], [xs], create_graph=True)
        hx, hg = grad([(gx * na.Tensor(v)).sum()], [xs, gs])
    tgx, = torch.autograd.grad((theirs(xt, gt) * torch.tensor(w)).sum(), [xt],
                               create_graph=True)
    np.testing.assert_allclose(gx.numpy(), tgx.detach().numpy(), atol=1e-10)
    thx, thg = torch.autograd.grad((tgx * torch.tensor(v)).sum(), [xt, gt])
    np.testing.assert_allclose(hx.numpy(), thx.numpy(), atol=1e-10)
    np.testing.assert_allclose(hg.numpy(), thg.numpy(), atol=1e-10)


def test_batch_norm_op_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(na.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"shape \(N, C, \*\), got shape \(3,\)"):
        F.batch_norm(na.randn(3), None, None, training=True)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\), got \(4,\)"):
        F.batch_norm(na.randn(2, 3), None, None, na.ones(4), training=True)
    with pytest.raises(ValueError, match="running_mean and running_var are needed"):
        F.batch_norm(na.randn(2, 3), None, None, training=False)
    with pytest.raises(ValueError, match="eps must be a non-negative number"):
        F.batch_norm(na.randn(2, 3), None, None, training=True, eps=-1.0)


# ==== batch norm: the layers ==================================================================

def _bn_pair(cls, *args, **kwargs):
    return getattr(nn, cls)(*args, dtype=F64, **kwargs), getattr(torch.nn, cls)(*args, **kwargs)


def _randomize_affine(tm, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + 1.0)


@requires_torch
@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (6, 4)), ("BatchNorm1d", (3, 4, 5)),
                                       ("BatchNorm2d", (3, 4, 2, 3))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_layers_match_torch_in_training_then_eval(cls, shape, momentum):
    m, tm = _bn_pair(cls, 4, momentum=momentum)
    _randomize_affine(tm)
    check_layer(m, tm, [shape], seed=1)                          # copies torch's state
    for step in range(2, 5):                                     # more training steps
        check_layer(m, tm, [shape], seed=step, copy_weights=False)
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(m.state_dict()[k], v.numpy(), rtol=1e-10, err_msg=k)
    assert int(m.num_batches_tracked.data) == 4 and m.num_batches_tracked.dtype == np.int64
    m.eval()
    tm.eval()
    check_layer(m, tm, [shape], seed=9, copy_weights=False)
    assert int(m.num_batches_tracked.data) == 4                  # eval does not count


@requires_torch
@pytest.mark.parametrize("affine,track,bias", [(False, True, True), (True, False, True),
                                               (False, False, True), (True, True, False)])
def test_batch_norm_layer_flags_match_torch(affine, track, bias):
    m, tm = _bn_pair("BatchNorm1d", 3, affine=affine, track_running_stats=track, bias=bias)
    assert list(m.state_dict()) == list(tm.state_dict())
    assert repr(m) == repr(tm)
    check_layer(m, tm, [(5, 3)])
    m.eval()
    tm.eval()
    check_layer(m, tm, [(5, 3)], seed=2, copy_weights=False)


@requires_torch
def test_batch_norm_state_dict_keys_repr_and_torch_state_loads():
    m, tm = nn.BatchNorm2d(3, eps=1e-3, momentum=0.2), torch.nn.BatchNorm2d(3, eps=1e-3,
                                                                          momentum=0.2)
    assert list(m.state_dict()) == list(tm.state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert repr(m) == repr(tm)
    assert repr(nn.BatchNorm1d(5, momentum=None)) == repr(torch.nn.BatchNorm1d(5, momentum=None))
    tm.train()
    tm(torch.randn(4, 3, 2, 2))
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    np.testing.assert_allclose(m.running_var.numpy(), tm.running_var.numpy(), rtol=1e-6)
    assert int(m.num_batches_tracked.data) == 1 and m.running_var.dtype == np.float32
    assert [n for n, _ in m.named_buffers()] == ["running_mean", "running_var",
                                                 "num_batches_tracked"]


def test_batch_norm_layer_defaults_and_errors():
    m = nn.BatchNorm1d(3)
    np.testing.assert_array_equal(m.weight.numpy(), 1)
    np.testing.assert_array_equal(m.bias.numpy(), 0)
    np.testing.assert_array_equal(m.running_var.numpy(), 1)
    with pytest.raises(ValueError, match=r"BatchNorm1d expects 2-d \(N, C\) or 3-d"):
        m(na.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"BatchNorm2d expects 4-d"):
        nn.BatchNorm2d(3)(na.randn(2, 3))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\) expects 3 channels on dim 1"):
        m(na.randn(2, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        m(na.randn(1, 3))
    with pytest.raises(ValueError, match="momentum must be a number in"):
        nn.BatchNorm1d(3, momentum=2.0)
    with pytest.raises(ValueError, match="num_features must be a positive int"):
        nn.BatchNorm2d(0)


def test_batch_norm_reset_and_no_grad_training():
    m = nn.BatchNorm1d(2)
    with na.no_grad():
        y = m(na.randn(8, 2) * 3 + 5)
    assert y.creator is None and int(m.num_batches_tracked.data) == 1
    assert abs(m.running_mean.numpy() - 0.5).max() < 0.4        # 0.1 of a mean near 5
    m.reset_running_stats()
    np.testing.assert_array_equal(m.running_mean.numpy(), 0)
    assert int(m.num_batches_tracked.data) == 0


# ==== layer norm and group norm ===============================================================

@requires_torch
@pytest.mark.parametrize("shape,ns", [((3, 4), (4,)), ((2, 3, 4), (3, 4)), ((2, 3, 4), 4)])
def test_layer_norm_op_matches_torch(shape, ns):
    tns = (ns,) if isinstance(ns, int) else ns
    check_op(lambda x, w, b: F.layer_norm(x, ns, w, b), [shape, tns, tns],
             torch_fn=lambda x, w, b: TF.layer_norm(x, tns, w, b), atol=1e-6, rtol=1e-5)
    check_op(lambda x: F.layer_norm(x, ns, eps=1e-2), [shape],
             torch_fn=lambda x: TF.layer_norm(x, tns, eps=1e-2), atol=1e-6, rtol=1e-5)


@requires_torch
@pytest.mark.parametrize("kwargs", [{}, {"elementwise_affine": False}, {"bias": False},
                                    {"eps": 1e-3}])
def test_layer_norm_layer_matches_torch(kwargs):
    m, tm = nn.LayerNorm((3, 4), dtype=F64, **kwargs), torch.nn.LayerNorm((3, 4), **kwargs)
    _randomize_affine(tm)
    check_layer(m, tm, [(2, 3, 4)])
    assert list(m.state_dict()) == list(tm.state_dict())
    assert repr(m) == repr(tm)


def test_layer_norm_errors():
    with pytest.raises(ValueError, match=r"trailing dims are normalized_shape \(4,\), got "
                                         r"shape \(2, 3\)"):
        F.layer_norm(na.randn(2, 3), 4)
    with pytest.raises(ValueError, match="normalized_shape must be a positive int"):
        nn.LayerNorm((3, 0))


@requires_torch
@pytest.mark.parametrize("shape,groups", [((2, 4, 3), 2), ((2, 6, 2, 2), 3), ((3, 4), 4),
                                          ((2, 4, 3), 1)])
def test_group_norm_op_matches_torch(shape, groups):
    c = shape[1]
    check_op(lambda x, w, b: F.group_norm(x, groups, w, b), [shape, (c,), (c,)],
             torch_fn=lambda x, w, b: TF.group_norm(x, groups, w, b), atol=1e-6, rtol=1e-5)


@requires_torch
@pytest.mark.parametrize("affine,bias", [(True, True), (False, True), (True, False)])
def test_group_norm_layer_matches_torch(affine, bias):
    m = nn.GroupNorm(2, 6, affine=affine, dtype=F64, bias=bias)
    tm = torch.nn.GroupNorm(2, 6, affine=affine, bias=bias)
    if affine:
        _randomize_affine(tm)
    check_layer(m, tm, [(3, 6, 2, 2)])
    assert list(m.state_dict()) == list(tm.state_dict())
    assert repr(m) == repr(tm)


def test_group_norm_errors():
    with pytest.raises(ValueError, match=r"num_channels \(6\) must be divisible by num_groups"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"num_groups must be a positive int dividing the "
                                         r"number of channels \(6\), got 4"):
        F.group_norm(na.randn(2, 6), 4)
    with pytest.raises(ValueError, match=r"expects an input of shape \(N, 6, \*\)"):
        nn.GroupNorm(2, 6)(na.randn(2, 4, 3))


def test_norm_layers_on_the_fake_device():
    fake_cupy.register()
    x = np.random.default_rng(0).standard_normal((4, 6, 3))
    for make in (lambda: nn.BatchNorm1d(6, dtype=F64), lambda: nn.LayerNorm(3, dtype=F64),
                 lambda: nn.GroupNorm(3, 6, dtype=F64)):
        cpu, dev = make(), make().to("fake")
        for train in (True, False):
            cpu.train(train)
            dev.train(train)
            y, yd = cpu(na.Tensor(x)), dev(na.Tensor(x).to("fake"))
            assert yd.device == "fake:0"
            np.testing.assert_allclose(yd.numpy(), y.numpy(), atol=1e-12)
        for k, v in dev.state_dict().items():
            np.testing.assert_allclose(fake_cupy.to_host(v), cpu.state_dict()[k], atol=1e-12)


# ==== dropout ==================================================================================

@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_zeroes_a_fraction_p_and_rescales_the_rest(p):
    na.manual_seed(0)
    x = na.Tensor(np.random.default_rng(1).uniform(1, 2, (200, 100)), requires_grad=True)
    y = F.dropout(x, p)
    yv, xv = y.numpy(), x.numpy()
    kept = yv != 0
    assert kept.mean() == pytest.approx(1 - p, abs=0.015)
    np.testing.assert_allclose(yv[kept], xv[kept] / (1 - p), rtol=1e-12)
    y.backward(na.ones_like(y))
    np.testing.assert_allclose(x.grad.numpy(), kept / (1 - p), rtol=1e-12)
    assert y.dtype == x.dtype


def test_dropout_reproducible_with_manual_seed_and_keeps_float32():
    x = na.ones(50, 20)
    na.manual_seed(3)
    a = F.dropout(x, 0.3).numpy()
    na.manual_seed(3)
    b = F.dropout(x, 0.3).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert not np.array_equal(a, F.dropout(x, 0.3).numpy())    # a fresh mask each call


def test_dropout_identity_cases():
    x = na.randn(3, 4, requires_grad=True)
    before = x.numpy().copy()
    F.dropout(x, 0.5, True, True)                  # inplace is accepted, never done
    np.testing.assert_array_equal(x.numpy(), before)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 1.0)
    assert not y.numpy().any()
    y.sum().backward()
    assert not x.grad.numpy().any()


def test_dropout_gradients_by_finite_differences():
    def fn(x):
        na.manual_seed(7)                # the same mask at every evaluation
        return F.dropout(x, 0.4)
    x = na.randn(4, 5, dtype=F64, requires_grad=True)
    assert gradcheck(fn, [x])
    # The backward is itself differentiable (in the upstream gradient).

    def input_grad(v):
        with na.enable_grad():
            return grad(fn(x), [x], [v], create_graph=True)[0]
    assert gradcheck(input_grad, [na.randn(4, 5, dtype=F64, requires_grad=True)])


def test_dropout_errors():
    for p in (-0.1, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match="between 0 and 1"):
            F.dropout(na.randn(2), p)
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(p)
    with pytest.raises(TypeError, match="floating-point input"):
        F.dropout(na.tensor([1, 2], dtype="int64"), 0.5)


@requires_torch
def test_dropout_module_train_and_eval():
    m = nn.Dropout(0.25)
    assert repr(m) == repr(torch.nn.Dropout(0.25))
    assert repr(nn.Dropout()) == repr(torch.nn.Dropout())
    x = na.ones(100, 100)
    assert m.training and (m(x).numpy() == 0).mean() == pytest.approx(0.25, abs=0.02)
    m.eval()
    assert m(x) is x
    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    net.eval()
    assert not net[1].training


def test_dropout_on_the_fake_device():
    fake_cupy.register()
    x = na.ones(20, 10).to("fake")
    y = F.dropout(x, 0.5)
    assert y.device == "fake:0"
    v = y.numpy()
    assert set(np.unique(v)) <= {0.0, 2.0} and 0 < (v == 0).sum() < v.size


# ==== embedding ===============================================================================

IDX = np.array([[1, 3, 1], [0, 4, 1]])


@requires_torch
def test_embedding_op_matches_torch():
    check_op(lambda w: F.embedding(na.tensor(IDX, dtype="int64"), w), [(5, 3)],
             torch_fn=lambda w: TF.embedding(torch.tensor(IDX), w), gradgrad=False)


@requires_torch
@pytest.mark.parametrize("padding_idx", [1, -1, 0])
def test_embedding_op_with_padding_matches_torch(padding_idx):
    # No finite-difference check here: the padding row is looked up but, by design,
    # gets no gradient, so finite differences and the gradient disagree on it.
    rng = np.random.default_rng(0)
    w, v = rng.standard_normal((5, 3)), rng.standard_normal(IDX.shape + (3,))
    x = na.Tensor(w.copy(), requires_grad=True)
    t = torch.tensor(w.copy(), requires_grad=True)
    y = F.embedding(na.tensor(IDX, dtype="int64"), x, padding_idx)
    ty = TF.embedding(torch.tensor(IDX), t, padding_idx)
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    y.backward(na.Tensor(v))
    ty.backward(torch.tensor(v))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-14)


def test_embedding_gradient_accumulates_repeats_and_skips_padding():
    w = na.randn(5, 2, dtype=F64, requires_grad=True)
    y = F.embedding(na.tensor(IDX, dtype="int64"), w, padding_idx=4)
    y.backward(na.ones_like(y))
    counts = np.bincount(IDX.ravel(), minlength=5).astype(float)
    counts[4] = 0
    np.testing.assert_array_equal(w.grad.numpy(), np.repeat(counts[:, None], 2, axis=1))
    np.testing.assert_array_equal(y.numpy()[1, 1], w.numpy()[4])   # still looked up


def test_embedding_backward_is_differentiable():
    idx = np.array([[0, 2, 2], [3, 0, 1]])
    w = na.randn(4, 3, dtype=F64, requires_grad=True)
    def weight_grad(v, pad):
        with na.enable_grad():
            return grad(F.embedding(idx, w, pad), [w], [v], create_graph=True)[0]
    for pad in (None, 2):
        assert gradcheck(lambda v: weight_grad(v, pad),
                         [na.randn(2, 3, 3, dtype=F64, requires_grad=True)])
    assert gradgradcheck(lambda w: F.embedding(idx, w) ** 2, [w])


def test_embedding_accepts_index_forms():
    w = na.randn(6, 2, dtype=F64)
    expected = w.numpy()[[1, 5]]
    for idx in ([1, 5], (1, 5), np.array([1, 5], dtype=np.int32), na.tensor([1, 5], dtype="int64")):
        np.testing.assert_array_equal(F.embedding(idx, w).numpy(), expected)
    assert F.embedding(3, w).shape == (2,)


def test_embedding_errors():
    w = na.randn(5, 2)
    with pytest.raises(TypeError, match="integer indices, got float"):
        F.embedding(na.tensor([1.0, 2.0]), w)
    with pytest.raises(IndexError, match=r"\[0, 5\).*from 0 to 5"):
        F.embedding(np.array([0, 5]), w)
    with pytest.raises(IndexError, match=r"from -1 to 2"):
        F.embedding(np.array([-1, 2]), w)
    with pytest.raises(ValueError, match="2-d weight"):
        F.embedding(np.array([0]), na.randn(5))
    with pytest.raises(ValueError, match=r"padding_idx must be an int in \[-5, 5\), got 5"):
        F.embedding(np.array([0]), w, padding_idx=5)
    with pytest.raises(ValueError, match="padding_idx must be an int"):
        nn.Embedding(5, 2, padding_idx=7)
    with pytest.raises(ValueError, match="embedding_dim must be a non-negative int"):
        nn.Embedding(5, 2.0)


@requires_torch
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_layer_matches_torch(padding_idx):
    torch.manual_seed(0)
    m = nn.Embedding(5, 3, padding_idx=padding_idx, dtype=F64)
    tm = torch.nn.Embedding(5, 3, padding_idx=padding_idx)
    assert repr(m) == repr(tm) and m.padding_idx == tm.padding_idx
    assert list(m.state_dict()) == list(tm.state_dict())
    check_layer(m, tm, None, inputs=[IDX])


def test_embedding_layer_init_and_from_pretrained():
    na.manual_seed(0)
    m = nn.Embedding(300, 100, padding_idx=3)
    w = m.weight.numpy()
    assert m.weight.dtype == np.float32 and not w[3].any()
    rest = np.delete(w, 3, axis=0)
    assert abs(rest.mean()) < 0.01 and rest.std() == pytest.approx(1.0, rel=0.02)
    table = np.arange(6.0).reshape(3, 2)
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and frozen.weight.data is not table
    np.testing.assert_array_equal(frozen(np.array([2, 0])).numpy(), table[[2, 0]])
    assert repr(frozen) == "Embedding(3, 2)"
    assert nn.Embedding.from_pretrained(na.Tensor(table), freeze=False).weight.requires_grad


def test_embedding_on_the_fake_device_with_host_indices():
    fake_cupy.register()
    m = nn.Embedding(5, 2, padding_idx=0).to("fake")
    y = m(np.array([[0, 1], [4, 4]]))
    assert y.device == "fake:0"
    y.sum().backward()
    g = m.weight.grad.numpy()
    np.testing.assert_array_equal(g[:, 0], [0, 1, 0, 0, 2])
