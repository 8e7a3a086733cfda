"""RNN/LSTM/GRU (and cells), MultiheadAttention, TransformerEncoderLayer against torch.nn.

Each parity test builds the torch layer and ours with the same arguments, loads
torch's state_dict arrays into ours (so the key names and shapes must match),
runs both on the same float64 inputs, back-propagates the same random
cotangents through every output, and compares outputs, input gradients and
every parameter's gradient.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neural_arch as na
import neural_arch.nn as nn
from neural_arch import backend
from neural_arch.autograd import gradcheck, gradgradcheck
from tests import fake_cupy
from tests.helpers import requires_torch, torch

pytestmark = requires_torch
F64 = "float64"


# ==== helpers ==============================================================================

def _flat(out):
    """Nested tuples of outputs -> a flat list (None entries dropped)."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [] if out is None else [out]


def _pair(ours, theirs):
    """Load torch's weights into our module; the state_dict keys must be torch's, in order."""
    tsd = theirs.state_dict()
    assert list(ours.state_dict()) == list(tsd)
    for k, v in ours.state_dict().items():
        assert tuple(v.shape) == tuple(tsd[k].shape), k
    ours.load_state_dict({k: v.detach().numpy() for k, v in tsd.items()})
    return ours, theirs


def _parity(ours, theirs, call, arrays, atol=1e-10, rtol=1e-8, seed=1):
    """``call(module, *inputs)`` on both; compare outputs and all gradients.

    Float arrays become inputs that require grad; bool arrays (masks) are passed
    as plain arrays to ours and as tensors to torch.
    """
    xs = [na.Tensor(a.copy(), requires_grad=True) if a.dtype.kind == "f" else a.copy()
          for a in arrays]
    ts = [torch.tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in arrays]
    outs, touts = _flat(call(ours, *xs)), _flat(call(theirs, *ts))
    assert len(outs) == len(touts)
    rng = np.random.default_rng(seed)
    loss, tloss = 0.0, 0.0
    for o, t in zip(outs, touts):
        assert o.shape == tuple(t.shape)
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), atol=atol, rtol=rtol,
                                   err_msg="forward differs from torch")
        w = rng.standard_normal(o.shape)
        loss = loss + (o * na.Tensor(w)).sum()
        tloss = tloss + (t * torch.tensor(w)).sum()
    with na.autograd.grad_clip(None):
        loss.backward()
    tloss.backward()
    for i, (x, t) in enumerate(zip(xs, ts)):
        if isinstance(x, na.Tensor):
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=atol, rtol=rtol,
                                       err_msg=f"gradient of input {i} differs from torch")
    tparams = dict(theirs.named_parameters())
    params = dict(ours.named_parameters())
    assert params.keys() == tparams.keys()
    for k, p in params.items():
        np.testing.assert_allclose(p.grad.numpy(), tparams[k].grad.numpy(), atol=atol,
                                   rtol=rtol, err_msg=f"gradient of {k} differs from torch")
    return outs


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ==== state_dict keys =====================================================================

KEY_CASES = [
    ("LSTM", dict(input_size=3, hidden_size=4, num_layers=2)),
    ("LSTM", dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True,
                  proj_size=2)),
    ("GRU", dict(input_size=3, hidden_size=4, num_layers=3, bias=False)),
    ("RNN", dict(input_size=3, hidden_size=4, nonlinearity="relu", bidirectional=True)),
    ("RNNCell", dict(input_size=3, hidden_size=4)),
    ("LSTMCell", dict(input_size=3, hidden_size=4, bias=False)),
    ("GRUCell", dict(input_size=3, hidden_size=4)),
    ("MultiheadAttention", dict(embed_dim=8, num_heads=2)),
    ("MultiheadAttention", dict(embed_dim=8, num_heads=2, bias=False, add_bias_kv=True)),
    ("MultiheadAttention", dict(embed_dim=8, num_heads=4, kdim=3, vdim=5)),
    ("TransformerEncoderLayer", dict(d_model=8, nhead=2, dim_feedforward=16)),
    ("TransformerEncoderLayer", dict(d_model=8, nhead=2, dim_feedforward=16, bias=False,
                                     norm_first=True)),
]


@pytest.mark.parametrize("name,kw", KEY_CASES)
def test_state_dict_keys_and_shapes_equal_torchs(name, kw):
    ours = getattr(nn, name)(**kw, dtype=F64)
    theirs = getattr(torch.nn, name)(**kw)
    tsd = theirs.state_dict()
    assert list(ours.state_dict()) == list(tsd)
    assert [tuple(v.shape) for v in ours.state_dict().values()] == \
        [tuple(v.shape) for v in tsd.values()]
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU, nn.LSTMCell])
def test_default_init_is_uniform_within_one_over_sqrt_hidden(cls):
    na.manual_seed(0)
    m = cls(30, 25)
    values = np.concatenate([p.numpy().ravel() for p in m.parameters()])
    assert np.abs(values).max() <= 1 / np.sqrt(25)
    assert np.abs(values).max() > 0.9 / np.sqrt(25)      # spread over the whole range
    assert abs(values.mean()) < 0.01


def test_mha_default_init_matches_torchs_choices():
    na.manual_seed(0)
    m = nn.MultiheadAttention(16, 4, add_bias_kv=True)
    assert not m.in_proj_bias.numpy().any() and not m.out_proj.bias.numpy().any()
    bound = np.sqrt(6 / (16 + 48))                         # Xavier-uniform on (3E, E)
    w = m.in_proj_weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert m.bias_k.numpy().any() and m.bias_v.numpy().any()


# ==== recurrent layers =====================================================================

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_two_layer_lstm_matches_torch(batch_first, with_state):
    t, n = 4, 3
    ours, theirs = _pair(nn.LSTM(3, 5, num_layers=2, batch_first=batch_first, dtype=F64),
                         torch.nn.LSTM(3, 5, num_layers=2, batch_first=batch_first))
    x = _randn(*((n, t, 3) if batch_first else (t, n, 3)))
    if with_state:
        outs = _parity(ours, theirs, lambda m, x, h, c: m(x, (h, c)),
                       [x, _randn(2, n, 5, seed=1), _randn(2, n, 5, seed=2)])
    else:
        outs = _parity(ours, theirs, lambda m, x: m(x), [x])
    assert outs[0].shape == ((n, t, 5) if batch_first else (t, n, 5))
    assert outs[1].shape == outs[2].shape == (2, n, 5)


def test_bidirectional_lstm_with_projection_matches_torch():
    kw = dict(num_layers=2, bidirectional=True, proj_size=2)
    ours, theirs = _pair(nn.LSTM(3, 4, **kw, dtype=F64), torch.nn.LSTM(3, 4, **kw))
    outs = _parity(ours, theirs, lambda m, x, h, c: m(x, (h, c)),
                   [_randn(5, 2, 3), _randn(4, 2, 2, seed=1), _randn(4, 2, 4, seed=2)])
    assert [o.shape for o in outs] == [(5, 2, 4), (4, 2, 2), (4, 2, 4)]


@pytest.mark.parametrize("kw", [dict(num_layers=2), dict(num_layers=2, bidirectional=True,
                                                         batch_first=True, bias=False)])
def test_gru_matches_torch(kw):
    ours, theirs = _pair(nn.GRU(3, 4, **kw, dtype=F64), torch.nn.GRU(3, 4, **kw))
    d = 2 if kw.get("bidirectional") else 1
    n = 4 if kw.get("batch_first") else 3                  # the input is (4, 3, 3)
    _parity(ours, theirs, lambda m, x, h: m(x, h), [_randn(4, 3, 3), _randn(2 * d, n, 4, seed=1)])


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_matches_torch(nonlinearity):
    kw = dict(num_layers=2, nonlinearity=nonlinearity, bidirectional=True)
    ours, theirs = _pair(nn.RNN(3, 4, **kw, dtype=F64), torch.nn.RNN(3, 4, **kw))
    _parity(ours, theirs, lambda m, x: m(x), [_randn(5, 2, 3)])


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_unbatched_input_matches_torch(name):
    ours, theirs = _pair(getattr(nn, name)(3, 4, num_layers=2, batch_first=True, dtype=F64),
                         getattr(torch.nn, name)(3, 4, num_layers=2, batch_first=True))
    if name == "LSTM":
        outs = _parity(ours, theirs, lambda m, x, h, c: m(x, (h, c)),
                       [_randn(5, 3), _randn(2, 4, seed=1), _randn(2, 4, seed=2)])
    else:
        outs = _parity(ours, theirs, lambda m, x, h: m(x, h), [_randn(5, 3), _randn(2, 4)])
    assert outs[0].shape == (5, 4) and outs[1].shape == (2, 4)


def test_inter_layer_dropout_is_used_in_training_only():
    ours, theirs = _pair(nn.LSTM(3, 4, num_layers=2, dropout=1.0, dtype=F64),
                         torch.nn.LSTM(3, 4, num_layers=2, dropout=1.0))
    # dropout=1 zeroes layer 0's output deterministically, in torch too.
    _parity(ours, theirs, lambda m, x: m(x), [_randn(4, 2, 3)])
    ours.eval(), theirs.eval()
    _parity(ours, theirs, lambda m, x: m(x), [_randn(4, 2, 3)])

    gru = nn.GRU(3, 4, num_layers=2, dropout=0.5, dtype=F64)
    x = na.Tensor(_randn(6, 2, 3))
    na.manual_seed(3)
    a = gru(x)[0].numpy()
    na.manual_seed(3)
    b = gru(x)[0].numpy()
    np.testing.assert_array_equal(a, b)                  # seeded: reproducible
    gru.eval()
    assert not np.allclose(a, gru(x)[0].numpy())         # training differs from eval


def test_single_layer_dropout_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers=1"):
        nn.GRU(3, 4, dropout=0.2)


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(["RNN", "LSTM", "GRU"]), steps=st.integers(1, 3),
       n=st.integers(1, 3), sizes=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       num_layers=st.integers(1, 2), bidirectional=st.booleans(), batch_first=st.booleans())
def test_recurrent_shapes_and_values_match_torch(name, steps, n, sizes, num_layers,
                                                 bidirectional, batch_first):
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    ours, theirs = _pair(getattr(nn, name)(*sizes, **kw, dtype=F64),
                         getattr(torch.nn, name)(*sizes, **kw))
    x = _randn(*((n, steps, sizes[0]) if batch_first else (steps, n, sizes[0])))
    _parity(ours, theirs, lambda m, x: m(x), [x])


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch(name, batched):
    ours, theirs = _pair(getattr(nn, name)(3, 4, dtype=F64), getattr(torch.nn, name)(3, 4))
    lead = (2,) if batched else ()
    x, h, c = _randn(*lead, 3), _randn(*lead, 4, seed=1), _randn(*lead, 4, seed=2)
    if name == "LSTMCell":
        outs = _parity(ours, theirs, lambda m, x, h, c: m(x, (h, c)), [x, h, c])
        _parity(*_pair(nn.LSTMCell(3, 4, dtype=F64), torch.nn.LSTMCell(3, 4)),
                lambda m, x: m(x), [x])                    # zero state by default
    else:
        outs = _parity(ours, theirs, lambda m, x, h: m(x, h), [x, h])
    assert outs[0].shape == lead + (4,)


def test_lstm_gradcheck_and_gradgradcheck_through_inputs_state_and_weights():
    na.manual_seed(0)
    m = nn.LSTM(2, 2, num_layers=2, dtype=F64)
    rng = np.random.default_rng(0)
    x, h0, c0 = (na.Tensor(rng.standard_normal(s), requires_grad=True)
                 for s in [(3, 1, 2), (2, 1, 2), (2, 1, 2)])
    inputs = [x, h0, c0] + list(m.parameters())          # perturbed in place by the check

    def fn(x, h0, c0, *params):
        out, (h, c) = m(x, (h0, c0))
        return out, c

    assert gradcheck(fn, inputs)
    small = nn.LSTMCell(2, 2, dtype=F64)
    cell_inputs = [x[0], h0[0], c0[0]] + list(small.parameters())
    cell_inputs[:3] = [na.Tensor(t.numpy(), requires_grad=True) for t in cell_inputs[:3]]
    assert gradgradcheck(lambda x, h, c, *p: small(x, (h, c)), cell_inputs)


def test_gru_gradcheck_bidirectional():
    na.manual_seed(1)
    m = nn.GRU(2, 2, bidirectional=True, dtype=F64)
    x = na.Tensor(np.random.default_rng(1).standard_normal((3, 2, 2)), requires_grad=True)
    assert gradcheck(lambda x, *p: m(x), [x] + list(m.parameters()))


# ==== attention ==============================================================================

def _masks(n, tgt, src, seed=0):
    rng = np.random.default_rng(seed)
    am = rng.random((tgt, src)) < 0.4
    am[:, 0] = False                                     # every query sees some key
    kpm = rng.random((n, src)) < 0.4
    kpm[:, 0] = False
    return am, kpm


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("average", [True, False])
def test_mha_self_attention_with_bool_masks_matches_torch(batch_first, average):
    n, length, e = 2, 4, 8
    ours, theirs = _pair(nn.MultiheadAttention(e, 2, batch_first=batch_first, dtype=F64),
                         torch.nn.MultiheadAttention(e, 2, batch_first=batch_first))
    am, kpm = _masks(n, length, length)
    x = _randn(*((n, length, e) if batch_first else (length, n, e)))
    outs = _parity(ours, theirs, lambda m, x, am, kpm: m(
        x, x, x, key_padding_mask=kpm, attn_mask=am, average_attn_weights=average),
        [x, am, kpm])
    assert outs[1].shape == ((n, length, length) if average else (n, 2, length, length))


def test_mha_cross_attention_with_float_and_3d_masks_matches_torch():
    n, tgt, src, e, heads = 2, 3, 5, 8, 4
    ours, theirs = _pair(nn.MultiheadAttention(e, heads, dtype=F64),
                         torch.nn.MultiheadAttention(e, heads))
    am = _randn(n * heads, tgt, src, seed=5)                  # float masks are added
    kpm = _randn(n, src, seed=6)
    # The masks go in as constants (no gradient) on both sides.
    _parity(ours, theirs, lambda m, q, k, v: m(
        q, k, v, key_padding_mask=_const(m, kpm), attn_mask=_const(m, am)),
        [_randn(tgt, n, e), _randn(src, n, e, seed=1), _randn(src, n, e, seed=2)])


def _const(module, a):
    return torch.tensor(a) if isinstance(module, torch.nn.Module) else na.Tensor(a)


@pytest.mark.parametrize("kw", [dict(kdim=3, vdim=5), dict(add_bias_kv=True, add_zero_attn=True),
                                dict(bias=False, batch_first=True)])
def test_mha_variants_match_torch(kw):
    n, tgt, src, e = 2, 3, 4, 8
    ours, theirs = _pair(nn.MultiheadAttention(e, 2, **kw, dtype=F64),
                         torch.nn.MultiheadAttention(e, 2, **kw))
    bf = kw.get("batch_first", False)
    am, kpm = _masks(n, tgt, src)

    def shape(length, dim):
        return (n, length, dim) if bf else (length, n, dim)

    _parity(ours, theirs, lambda m, q, k, v, am, kpm: m(q, k, v, key_padding_mask=kpm,
                                                          attn_mask=am),
            [_randn(*shape(tgt, e)), _randn(*shape(src, kw.get("kdim", e)), seed=1),
             _randn(*shape(src, kw.get("vdim", e)), seed=2), am, kpm])


def test_mha_unbatched_and_need_weights_false_match_torch():
    ours, theirs = _pair(nn.MultiheadAttention(8, 2, dtype=F64),
                         torch.nn.MultiheadAttention(8, 2))
    am, kpm = _masks(1, 3, 4)
    outs = _parity(ours, theirs, lambda m, q, k, v, kpm: m(q, k, v, key_padding_mask=kpm,
                                                            average_attn_weights=False),
                   [_randn(3, 8), _randn(4, 8, seed=1), _randn(4, 8, seed=2), kpm[0]])
    assert outs[0].shape == (3, 8) and outs[1].shape == (2, 3, 4)
    out, weights = ours(na.Tensor(_randn(3, 8)), na.Tensor(_randn(4, 8)),
                        na.Tensor(_randn(4, 8)), need_weights=False)
    assert weights is None and out.shape == (3, 8)


def test_mha_masked_keys_get_zero_weight():
    mha = nn.MultiheadAttention(4, 2, dtype=F64)
    x = na.Tensor(_randn(5, 2, 4))
    kpm = np.zeros((2, 5), dtype=bool)
    kpm[0, 3:] = True
    causal = np.triu(np.ones((5, 5), dtype=bool), k=1)
    _, w = mha(x, x, x, key_padding_mask=kpm, attn_mask=causal, is_causal=True)
    w = w.numpy()
    assert np.all(w[0][:, 3:] == 0)
    assert np.all(w[:, np.triu_indices(5, 1)[0], np.triu_indices(5, 1)[1]] == 0)
    np.testing.assert_allclose(w.sum(-1), 1.0)


def test_mha_attention_dropout_only_in_training():
    mha = nn.MultiheadAttention(4, 2, dropout=0.5, dtype=F64).eval()
    x = na.Tensor(_randn(6, 2, 4))
    _, w_eval = mha(x, x, x, average_attn_weights=False)
    np.testing.assert_allclose(w_eval.numpy().sum(-1), 1.0)
    mha.train()
    _, w = mha(x, x, x, average_attn_weights=False)
    w, w_eval = w.numpy(), w_eval.numpy()
    dropped = w == 0
    assert 0 < dropped.mean() < 1
    np.testing.assert_allclose(w[~dropped], 2 * w_eval[~dropped])   # kept ones scaled 1/(1-p)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch_in_eval_mode(norm_first, activation):
    kw = dict(dim_feedforward=16, activation=activation, norm_first=norm_first)
    ours, theirs = _pair(nn.TransformerEncoderLayer(8, 2, **kw, dtype=F64),
                         torch.nn.TransformerEncoderLayer(8, 2, **kw))
    ours.eval(), theirs.eval()
    _, kpm = _masks(3, 5, 5)
    _parity(ours, theirs, lambda m, x, kpm: m(x, src_key_padding_mask=kpm),
            [_randn(5, 3, 8), kpm])


def test_encoder_layer_batch_first_with_causal_mask_matches_torch():
    kw = dict(dim_feedforward=12, batch_first=True, dropout=0.0)
    ours, theirs = _pair(nn.TransformerEncoderLayer(8, 4, **kw, dtype=F64),
                         torch.nn.TransformerEncoderLayer(8, 4, **kw))
    causal = np.triu(np.ones((5, 5), dtype=bool), k=1)
    _parity(ours, theirs, lambda m, x, mask: m(x, src_mask=mask, is_causal=True),
            [_randn(2, 5, 8), causal])


def test_encoder_layer_takes_a_module_activation():
    layer = nn.TransformerEncoderLayer(8, 2, 16, activation=nn.GELU(), dtype=F64)
    ref = nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", dtype=F64)
    ref.load_state_dict(layer.state_dict())
    layer.eval(), ref.eval()
    x = na.Tensor(_randn(4, 2, 8))
    np.testing.assert_allclose(layer(x).numpy(), ref(x).numpy())


# ==== the fake CuPy device: no stray NumPy ===================================================

def test_layers_run_on_the_fake_device():
    fake_cupy.register()

    def dev(a):
        return na.Tensor(backend.to_device(a, "fake"), requires_grad=a.dtype.kind == "f")

    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=F64).to("fake")
    x = dev(_randn(5, 2, 3))
    out, (h, c) = lstm(x)
    (out.sum() + h.sum() + c.sum()).backward()
    assert out.device == x.grad.device == lstm.weight_hh_l1_reverse.grad.device == "fake:0"
    gru = nn.GRUCell(3, 4, dtype=F64).to("fake")
    assert gru(x[0]).device == "fake:0"

    enc = nn.TransformerEncoderLayer(8, 2, 16, dtype=F64).to("fake")
    mha = nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True,
                                dtype=F64).to("fake")
    x = dev(_randn(4, 2, 8))
    am, kpm = (backend.to_device(m, "fake") for m in _masks(2, 4, 4))
    o, w = mha(x, x, x, key_padding_mask=kpm, attn_mask=am)
    (o.sum() + w.sum() + enc(x, src_key_padding_mask=kpm).sum()).backward()
    assert o.device == w.device == x.grad.device == enc.linear1.weight.grad.device == "fake:0"


# ==== bad input ================================================================================

def test_recurrent_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="only by LSTM"):
        nn.rnn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(3, 4, num_layers=2, dropout=1.5)
    lstm = nn.LSTM(3, 4, num_layers=2, dtype=F64)
    with pytest.raises(ValueError, match="input_size=3"):
        lstm(na.Tensor(_randn(5, 2, 4)))
    with pytest.raises(ValueError, match="2-d .* or 3-d"):
        lstm(na.Tensor(_randn(5, 2, 1, 3)))
    with pytest.raises(ValueError, match=r"h_0 of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        lstm(na.Tensor(_randn(5, 2, 3)), (na.Tensor(_randn(1, 2, 4)), na.Tensor(_randn(2, 2, 4))))
    with pytest.raises(TypeError, match="pair"):
        lstm(na.Tensor(_randn(5, 2, 3)), na.Tensor(_randn(2, 2, 4)))
    with pytest.raises(TypeError, match="float32"):
        lstm(na.Tensor(_randn(5, 2, 3).astype(np.float32)))
    with pytest.raises(TypeError, match="one Tensor"):
        nn.GRU(3, 4)(na.randn(5, 2, 3), (na.randn(1, 2, 4),))
    with pytest.raises(ValueError, match=r"hx of shape \(4,\)"):
        nn.GRUCell(3, 4)(na.randn(3), na.randn(2, 4))


def test_attention_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    mha = nn.MultiheadAttention(8, 2, dtype=F64)
    x = na.Tensor(_randn(4, 2, 8))
    with pytest.raises(ValueError, match="last dim of key to be 8"):
        mha(x, na.Tensor(_randn(4, 2, 6)), x)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(4, 4\)"):
        mha(x, x, x, attn_mask=np.zeros((4, 5), dtype=bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 4\)"):
        mha(x, x, x, key_padding_mask=np.zeros((4, 2), dtype=bool))
    with pytest.raises(TypeError, match="bool or floating-point"):
        mha(x, x, x, attn_mask=np.zeros((4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="is_causal"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match="activation"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")


def test_reprs_show_the_settings():
    assert repr(nn.LSTM(3, 4, num_layers=2, batch_first=True)) == \
        "LSTM(3, 4, num_layers=2, batch_first=True)"
    assert "num_heads=2" in repr(nn.MultiheadAttention(8, 2))
    r = repr(nn.TransformerEncoderLayer(8, 2, 16))
    assert "(self_attn): MultiheadAttention" in r and "(linear1): Linear" in r
