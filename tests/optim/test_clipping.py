"""Explicit gradient clipping (neural_arch.optim.clipping) and optimizer-level max_grad_norm.

Against torch.nn.utils.clip_grad_norm_/clip_grad_value_ (values, return values,
inf norm, non-finite gradients), AGC against its formula written here in NumPy,
the fixed order of the Keras-style keys, GradientClipper, and the seed-001
clipping code run as written with a small model.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import neural_arch as na
from neural_arch import backend
from neural_arch.optim import (SAM, SGD, Adam, AdamW, GradientClipper, adaptive_clip_grad_,
                               apply_gradient_clipping, clip_grad_norm_,
                               clip_grad_norm_per_tensor_, clip_grad_value_)
from neural_arch.optim import clipping

SHAPES = [(3, 4), (5,), (), (2, 1, 3)]


def make_pair(rng, shapes=SHAPES, scale=3.0, no_grad=(1,)):
    """Our parameters and torch's with equal gradients; indices in no_grad get none."""
    ours, theirs = [], []
    for i, s in enumerate(shapes):
        w = np.asarray(rng.normal(size=s))
        p = na.Parameter(w.copy())
        t = torch.tensor(w.copy(), requires_grad=True)
        if i not in no_grad:
            g = np.asarray(rng.normal(size=s) * scale)
            p.grad = na.Tensor(g.copy())
            t.grad = torch.tensor(g.copy())
        ours.append(p)
        theirs.append(t)
    return ours, theirs


def assert_grads_equal(ours, theirs, rtol=1e-12):
    for p, t in zip(ours, theirs):
        if t.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=rtol, atol=1e-15,
                                       equal_nan=True)


# ---- clip_grad_norm_ against torch ---------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1, 3.0, 0.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 4.0, 1e3, 0.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(0)
    ours, theirs = make_pair(rng)
    got = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(got, na.Tensor) and got.shape == ()
    np.testing.assert_allclose(float(got), want.item(), rtol=1e-12)
    assert_grads_equal(ours, theirs)


def test_clip_grad_norm_takes_a_single_tensor_and_a_generator():
    rng = np.random.default_rng(1)
    ours, theirs = make_pair(rng, shapes=[(4, 3)], no_grad=())
    got = clip_grad_norm_(ours[0], 1.0)
    want = torch.nn.utils.clip_grad_norm_(theirs[0], 1.0)
    np.testing.assert_allclose(float(got), want.item(), rtol=1e-12)
    assert_grads_equal(ours, theirs)
    ours, theirs = make_pair(rng)
    got = clip_grad_norm_((p for p in ours), 2.0, norm_type=1)
    want = torch.nn.utils.clip_grad_norm_((t for t in theirs), 2.0, norm_type=1)
    np.testing.assert_allclose(float(got), want.item(), rtol=1e-12)
    assert_grads_equal(ours, theirs)


def test_clip_grad_norm_is_in_place_and_later_backward_accumulates_into_it():
    w = na.Parameter(np.array([3.0, 4.0]))
    tw = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    (w * w).sum().backward()
    (tw * tw).sum().backward()
    buffer = w.grad.data
    clip_grad_norm_([w], 1.0)
    torch.nn.utils.clip_grad_norm_([tw], 1.0)
    assert w.grad.data is buffer                       # the same array, scaled in place
    np.testing.assert_allclose(buffer, [0.6, 0.8], rtol=1e-5)
    (w * w).sum().backward()                           # accumulates onto the clipped one
    (tw * tw).sum().backward()
    np.testing.assert_allclose(w.grad.data, tw.grad.numpy(), rtol=1e-12)


def test_no_gradients_give_a_zero_norm_and_change_nothing():
    p = na.Parameter(np.ones(3))
    out = clip_grad_norm_([p], 1.0)
    assert float(out) == 0.0 and p.grad is None
    assert float(torch.nn.utils.clip_grad_norm_([torch.ones(3, requires_grad=True)],
                                               1.0)) == 0.0
    assert float(clip_grad_norm_([], 1.0)) == 0.0


@pytest.mark.parametrize("norm_type", [1.0, 2.0, math.inf])
def test_an_empty_gradient_has_norm_zero(norm_type):
    e, w = na.Parameter(np.zeros((0, 3))), na.Parameter(np.zeros(2))
    e.grad, w.grad = na.Tensor(np.zeros((0, 3))), na.Tensor(np.array([3.0, 4.0]))
    assert float(clip_grad_norm_([e], 1.0, norm_type)) == 0.0
    expect = {1.0: 7.0, 2.0: 5.0, math.inf: 4.0}[norm_type]
    assert float(clip_grad_norm_([e, w], 1.0, norm_type)) == pytest.approx(expect)


def test_a_parameter_listed_twice_is_clipped_once():
    w = na.Parameter(np.zeros(2))
    w.grad = na.Tensor(np.array([3.0, 4.0]))
    assert float(clip_grad_norm_([w, w], 1.0)) == pytest.approx(5.0)
    np.testing.assert_allclose(w.grad.data, [0.6, 0.8], rtol=1e-5)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_non_finite_gradients_error_or_scale_as_torch_does(bad, norm_type):
    rng = np.random.default_rng(2)
    ours, theirs = make_pair(rng)
    ours[0].grad.data[1, 2] = bad
    theirs[0].grad[1, 2] = bad
    before = [p.grad.data.copy() for p in ours if p.grad is not None]
    with pytest.raises(RuntimeError, match="non-finite") as ours_err:
        clip_grad_norm_(ours, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type,
                                       error_if_nonfinite=True)
    assert "error_if_nonfinite=False" in str(ours_err.value)
    for b, p in zip(before, [p for p in ours if p.grad is not None]):
        np.testing.assert_array_equal(p.grad.data, b)      # the error changed nothing
    with np.errstate(invalid="ignore"):
        got = clip_grad_norm_(ours, 1.0, norm_type=norm_type, error_if_nonfinite=False)
    want = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type,
                                          error_if_nonfinite=False)
    np.testing.assert_allclose(float(got), want.item(), equal_nan=True)
    assert_grads_equal(ours, theirs)


@settings(max_examples=15, deadline=None)
@given(shapes=st.lists(st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
                       min_size=1, max_size=4),
       max_norm=st.floats(0.0, 10.0), norm_type=st.sampled_from([1.0, 2.0, 2.5, math.inf]),
       seed=st.integers(0, 2 ** 16))
def test_clip_grad_norm_matches_torch_for_any_shapes(shapes, max_norm, norm_type, seed):
    # torch refuses the inf-norm of an empty tensor; ours is 0 (tested below)
    assume(not (norm_type == math.inf and any(0 in s for s in shapes)))
    ours, theirs = make_pair(np.random.default_rng(seed), shapes=shapes, no_grad=())
    got = clip_grad_norm_(ours, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    np.testing.assert_allclose(float(got), want.item(), rtol=1e-12, atol=1e-300)
    assert_grads_equal(ours, theirs)


def test_float32_gradients_stay_float32_and_match_torch():
    rng = np.random.default_rng(3)
    g = rng.normal(size=(4, 5)).astype(np.float32) * 10
    p = na.Parameter(np.zeros((4, 5), np.float32))
    p.grad = na.Tensor(g.copy())
    t = torch.zeros(4, 5, dtype=torch.float32, requires_grad=True)
    t.grad = torch.tensor(g.copy())
    got = clip_grad_norm_([p], 1.0)
    want = torch.nn.utils.clip_grad_norm_([t], 1.0)
    assert p.grad.data.dtype == np.float32 and got.data.dtype == np.float32
    np.testing.assert_allclose(float(got), want.item(), rtol=1e-6)
    np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-6)


def test_a_raw_array_set_as_grad_is_clipped_too():
    p = na.Parameter(np.zeros(2))
    p.grad = np.array([3.0, 4.0])
    clip_grad_norm_([p], 1.0)
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-5)


@pytest.mark.parametrize("call, match", [
    (lambda ps: clip_grad_norm_(ps, -1.0), "max_norm"),
    (lambda ps: clip_grad_norm_(ps, math.nan), "max_norm"),
    (lambda ps: clip_grad_norm_(ps, True), "max_norm"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=0), "norm_type"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type="two"), "norm_type"),
    (lambda ps: clip_grad_norm_(ps, 1.0, error_if_nonfinite="yes"), "error_if_nonfinite"),
    (lambda ps: clip_grad_norm_(ps + [np.ones(2)], 1.0), "element 1 .*ndarray"),
    (lambda ps: clip_grad_norm_(3.0, 1.0), "iterable of Tensors"),
    (lambda ps: clip_grad_norm_({"w": ps[0]}, 1.0), r"\.values\(\)"),
    (lambda ps: clip_grad_value_(ps, -0.1), "clip_value"),
    (lambda ps: adaptive_clip_grad_(ps, clip_factor=0), "clip_factor"),
    (lambda ps: adaptive_clip_grad_(ps, eps=-1), "eps"),
    (lambda ps: clip_grad_norm_per_tensor_(ps, -2), "max_norm"),
])
def test_bad_arguments_are_named_in_the_error(call, match):
    p = na.Parameter(np.ones(2))
    p.grad = na.Tensor(np.ones(2))
    with pytest.raises((TypeError, ValueError), match=match):
        call([p])
    np.testing.assert_array_equal(p.grad.data, np.ones(2))


# ---- clip_grad_value_ ----------------------------------------------------------------------

@pytest.mark.parametrize("clip_value", [0.0, 0.3, 1.5, 100.0])
def test_clip_grad_value_matches_torch(clip_value):
    rng = np.random.default_rng(4)
    ours, theirs = make_pair(rng)
    ours[0].grad.data[0, 0] = np.nan
    theirs[0].grad[0, 0] = np.nan
    assert clip_grad_value_(ours, clip_value) is None
    assert torch.nn.utils.clip_grad_value_(theirs, clip_value) is None
    assert_grads_equal(ours, theirs, rtol=0)
    assert np.isnan(ours[0].grad.data[0, 0])


# ---- per-tensor norm -------------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_per_tensor_clipping_scales_each_gradient_by_its_own_norm(norm_type):
    rng = np.random.default_rng(5)
    ours, _ = make_pair(rng)
    before = [None if p.grad is None else p.grad.data.copy() for p in ours]
    norms = clip_grad_norm_per_tensor_(ours, 1.0, norm_type)
    with_grad = [b for b in before if b is not None]
    assert len(norms) == len(with_grad)
    for b, n, p in zip(with_grad, norms, [p for p in ours if p.grad is not None]):
        expect_norm = np.linalg.norm(b.ravel(), ord=norm_type) if b.size else 0.0
        assert float(n) == pytest.approx(expect_norm, rel=1e-12)
        np.testing.assert_allclose(p.grad.data, b * min(1.0, 1.0 / (expect_norm + 1e-6)),
                                   rtol=1e-12)
    assert ours[1].grad is None


def test_per_tensor_clipping_raises_on_a_non_finite_norm_before_changing_anything():
    a, b = na.Parameter(np.zeros(2)), na.Parameter(np.zeros(2))
    a.grad = na.Tensor(np.array([30.0, 40.0]))
    b.grad = na.Tensor(np.array([np.inf, 1.0]))
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_per_tensor_([a, b], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(a.grad.data, [30.0, 40.0])


# ---- adaptive gradient clipping ---------------------------------------------------------------

def agc_reference(w, g, clip_factor, eps):
    """AGC written out unit by unit (rows along axis 0; 1-D and 0-d: one unit)."""
    g = g.copy()
    units = [(Ellipsis,)] if w.ndim <= 1 else [(i,) for i in range(w.shape[0])]
    for u in units:
        w_norm = max(math.sqrt(float(np.sum(w[u] ** 2))), eps)
        g_norm = math.sqrt(float(np.sum(g[u] ** 2)))
        ratio = g_norm / w_norm if w_norm > 0 else math.inf
        if ratio > clip_factor:
            g[u] = g[u] * (clip_factor * w_norm / g_norm)
    return g


@pytest.mark.parametrize("clip_factor, eps", [(0.01, 1e-3), (0.1, 1e-3), (0.5, 0.0),
                                              (1e3, 1e-3)])
def test_agc_matches_its_formula(clip_factor, eps):
    rng = np.random.default_rng(6)
    shapes = [(4, 3), (3, 2, 3, 3), (4,), (), (5, 2)]
    params, refs = [], []
    for s in shapes:
        w = np.asarray(rng.normal(size=s))
        g = np.asarray(rng.normal(size=s) * rng.choice([0.001, 1.0, 100.0], size=s))
        if s == (5, 2):
            w[1] = 0.0            # a unit with zero weights: eps sets its bound
        p = na.Parameter(w)
        p.grad = na.Tensor(g.copy())
        params.append(p)
        refs.append(agc_reference(w, g, clip_factor, eps))
    total_before = math.sqrt(sum(float(np.sum(p.grad.data ** 2)) for p in params))
    out = adaptive_clip_grad_(params, clip_factor=clip_factor, eps=eps)
    assert float(out) == pytest.approx(total_before, rel=1e-12)
    for p, r in zip(params, refs):
        np.testing.assert_allclose(p.grad.data, r, rtol=1e-12, atol=1e-300)


def test_agc_bounds_each_unit_ratio_and_leaves_small_units_alone():
    w = na.Parameter(np.array([[3.0, 4.0], [1.0, 0.0]]))
    w.grad = na.Tensor(np.array([[30.0, 40.0], [0.001, 0.0]]))
    adaptive_clip_grad_([w], clip_factor=0.1)
    np.testing.assert_allclose(w.grad.data[0], [0.3, 0.4], rtol=1e-12)   # ratio 10 -> 0.1
    np.testing.assert_array_equal(w.grad.data[1], [0.001, 0.0])         # ratio 0.001: kept
    b = na.Parameter(np.zeros(3))                                         # zero bias: eps
    b.grad = na.Tensor(np.array([1.0, 0.0, 0.0]))
    adaptive_clip_grad_([b], clip_factor=0.01, eps=1e-3)
    np.testing.assert_allclose(b.grad.data, [1e-5, 0.0, 0.0], rtol=1e-12)


# ---- the fixed order of the three Keras-style keys --------------------------------------------

def test_value_clipping_comes_before_local_norm_clipping():
    p = na.Parameter(np.zeros(2))
    p.grad = na.Tensor(np.array([3.0, 4.0]))
    assert apply_gradient_clipping([p], clipvalue=1.0, clipnorm=1.0) is None
    # value first: [1, 1], then norm sqrt(2) -> 1. The other order would give [0.6, 0.8].
    np.testing.assert_allclose(p.grad.data, [1 / math.sqrt(2)] * 2, rtol=1e-5)


def test_local_norm_clipping_comes_before_global_norm_clipping():
    a, b = na.Parameter(np.zeros(1)), na.Parameter(np.zeros(1))
    a.grad, b.grad = na.Tensor(np.array([4.0])), na.Tensor(np.array([1.0]))
    total = apply_gradient_clipping([a, b], clipnorm=2.0, global_clipnorm=2.0)
    # Local first: a -> 2, b stays 1, then the global norm sqrt(5) -> 2, so a/b = 2.
    # Global first would scale both by 2/sqrt(17) and leave a/b = 4.
    a_local = 4.0 * 2.0 / (4.0 + 1e-6)
    assert float(total) == pytest.approx(math.hypot(a_local, 1.0), rel=1e-12)
    scale = 2.0 / (math.hypot(a_local, 1.0) + 1e-6)
    np.testing.assert_allclose([a.grad.data[0], b.grad.data[0]], [a_local * scale, scale],
                               rtol=1e-12)


def test_all_three_keys_in_seed_002_spelling():
    rng = np.random.default_rng(7)
    g1, g2 = rng.normal(size=(3, 3)) * 5, rng.normal(size=4) * 5
    a, b = na.Parameter(np.zeros((3, 3))), na.Parameter(np.zeros(4))
    a.grad, b.grad = na.Tensor(g1.copy()), na.Tensor(g2.copy())
    config = {"gradient_clipping_by_value": 0.5, "gradient_clipping_by_norm_local": 1.0,
              "gradient_clipping_by_norm": 1.0}
    apply_gradient_clipping([a, b], **config)
    expect = [np.clip(g, -0.5, 0.5) for g in (g1, g2)]
    expect = [e * min(1.0, 1.0 / (np.linalg.norm(e) + 1e-6)) for e in expect]
    total = math.sqrt(sum(np.sum(e ** 2) for e in expect))
    expect = [e * min(1.0, 1.0 / (total + 1e-6)) for e in expect]
    np.testing.assert_allclose(a.grad.data, expect[0], rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, expect[1], rtol=1e-12)
    assert clipping.KERAS_CLIPPING_KEYS == {
        "gradient_clipping_by_value": "clipvalue",
        "gradient_clipping_by_norm_local": "clipnorm",
        "gradient_clipping_by_norm": "global_clipnorm"}


def test_apply_gradient_clipping_refuses_unknown_and_doubled_keys():
    p = na.Parameter(np.zeros(2))
    with pytest.raises(TypeError, match="gradient_clipping_by_norms.*accepts clipvalue"):
        apply_gradient_clipping([p], gradient_clipping_by_norms=1.0)
    with pytest.raises(TypeError, match="both 'clipnorm' and"):
        apply_gradient_clipping([p], clipnorm=1.0, gradient_clipping_by_norm_local=1.0)
    with pytest.raises(ValueError, match="clipvalue"):
        apply_gradient_clipping([p], clipvalue=-1)


# ---- GradientClipper --------------------------------------------------------------------------

def test_gradient_clipper_is_clip_grad_norm_and_counts_clipped_calls():
    rng = np.random.default_rng(8)
    clipper = GradientClipper(max_norm=1.0, norm_type=2)
    for scale, expect_clipped in [(10.0, True), (1e-3, False), (10.0, True), (1e-3, False)]:
        ours, theirs = make_pair(rng, scale=scale)
        got = clipper.clip_gradients(ours)
        want = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
        np.testing.assert_allclose(float(got), want.item(), rtol=1e-12)
        assert clipper.last_norm == pytest.approx(want.item(), rel=1e-12)
        assert (want.item() > 1.0) == expect_clipped
        assert_grads_equal(ours, theirs)
    assert clipper.calls == 4 and clipper.clipped_calls == 2 and clipper.clip_rate == 0.5


def test_adaptive_clipper_runs_agc_then_the_global_norm():
    rng = np.random.default_rng(9)
    shapes = [(4, 3), (4,)]
    ws = [rng.normal(size=s) for s in shapes]
    gs = [rng.normal(size=s) * 3 for s in shapes]
    params = []
    for w, g in zip(ws, gs):
        p = na.Parameter(w.copy())
        p.grad = na.Tensor(g.copy())
        params.append(p)
    clipper = GradientClipper(max_norm=0.05, adaptive=True, clip_factor=0.1)
    before = clipper.clip_gradients(params)
    assert float(before) == pytest.approx(math.sqrt(sum(np.sum(g ** 2) for g in gs)))
    expect = [agc_reference(w, g, 0.1, 1e-3) for w, g in zip(ws, gs)]
    total = math.sqrt(sum(np.sum(e ** 2) for e in expect))
    expect = [e * min(1.0, 0.05 / (total + 1e-6)) for e in expect]
    for p, e in zip(params, expect):
        np.testing.assert_allclose(p.grad.data, e, rtol=1e-12)
    assert clipper.clipped_calls == 1


def test_gradient_clipper_config_round_trips_and_validates():
    clipper = GradientClipper(max_norm=1.0, adaptive=True, clip_factor=0.1, clip_value=2.0)
    again = GradientClipper(**clipper.to_config())
    assert again.to_config() == clipper.to_config()
    assert "clip_factor=0.1" in repr(clipper)
    with pytest.raises(ValueError, match="nothing to do"):
        GradientClipper()
    with pytest.raises(ValueError, match="clip_factor"):
        GradientClipper(adaptive=True, clip_factor=-0.1)
    with pytest.raises(TypeError, match="adaptive"):
        GradientClipper(max_norm=1.0, adaptive="yes")


class TinyModel(na.nn.Module):
    """A model whose call on a batch returns the loss, as the seed's loop expects."""

    def __init__(self):
        super().__init__()
        self.fc = na.nn.Linear(3, 2)

    def forward(self, batch):
        x, y = batch
        return ((self.fc(x) - y) ** 2).mean() * 100.0


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [(na.Tensor(rng.normal(size=(5, 3))), na.Tensor(rng.normal(size=(5, 2)) * 10))
            for _ in range(n)]


def test_seed_001_gradient_clipper_blocks_run_as_written():
    na.manual_seed(0)
    model = TinyModel()
    optimizer = na.optim.AdamW(model.parameters(), lr=1e-3)
    dataloader = batches()
    from neural_arch.optim import GradientClipper

    # Create gradient clipper
    clipper = GradientClipper(
        max_norm=1.0,
        norm_type=2
    )

    # Use in training loop
    for batch in dataloader:
        loss = model(batch)
        loss.backward()

        # Clip gradients
        clipper.clip_gradients(model.parameters())

        total = math.sqrt(sum(float((p.grad.data ** 2).sum()) for p in model.parameters()))
        assert total <= 1.0 + 1e-6
        optimizer.step()
        optimizer.zero_grad()
    assert clipper.calls == 4 and clipper.clip_rate == 1.0

    # Adaptive gradient clipping
    adaptive_clipper = GradientClipper(
        max_norm=1.0,
        adaptive=True,
        clip_factor=0.1
    )
    model(dataloader[0]).backward()
    adaptive_clipper.clip_gradients(model.parameters())
    for p in model.parameters():
        rows = p.grad.data.reshape(p.shape[0], -1) if p.ndim > 1 else p.grad.data[None]
        ws = p.data.reshape(p.shape[0], -1) if p.ndim > 1 else p.data[None]
        ratio = np.linalg.norm(rows, axis=1) / np.maximum(np.linalg.norm(ws, axis=1), 1e-3)
        assert np.all(ratio <= 0.1 * (1 + 1e-9))


def test_seed_000_clipping_loop_with_our_clip_grad_norm():
    na.manual_seed(0)
    model = TinyModel()
    optimizer = AdamW(model.parameters(), lr=1e-3)

    def train_with_clipping(model, optimizer, dataloader, max_norm=1.0):
        norms = []
        for batch in dataloader:
            optimizer.zero_grad()
            loss = model(batch)
            loss.backward()
            norms.append(float(na.optim.clip_grad_norm_(model.parameters(), max_norm)))
            optimizer.step()
        return norms

    norms = train_with_clipping(model, optimizer, batches())
    assert all(n > 1.0 for n in norms) and optimizer.step_count == 4


# ---- optimizer-level max_grad_norm -------------------------------------------------------------

def _params(rng, shapes=((3, 2), (2,))):
    return [rng.normal(size=s) for s in shapes]


@pytest.mark.parametrize("cls, kwargs, torch_cls", [
    (SGD, dict(lr=0.1, momentum=0.9), torch.optim.SGD),
    (Adam, dict(lr=0.01), torch.optim.Adam),
    (AdamW, dict(lr=0.01, weight_decay=0.1), torch.optim.AdamW),
])
def test_max_grad_norm_equals_clipping_by_hand_then_stepping(cls, kwargs, torch_cls):
    rng = np.random.default_rng(10)
    init = _params(rng)
    grads = [[rng.normal(size=w.shape) * s for w in init] for s in (5.0, 0.01, 5.0, 1.0)]
    auto = [na.Parameter(w.copy()) for w in init]
    hand = [na.Parameter(w.copy()) for w in init]
    ref = [torch.tensor(w.copy(), requires_grad=True) for w in init]
    opt_auto = cls(auto, max_grad_norm=1.0, **kwargs)
    opt_hand = cls(hand, **kwargs)
    opt_ref = torch_cls(ref, **kwargs)
    assert opt_auto.max_grad_norm == 1.0 and opt_hand.max_grad_norm is None
    for step_grads in grads:
        for p, q, t, g in zip(auto, hand, ref, step_grads):
            p.grad, q.grad, t.grad = na.Tensor(g.copy()), na.Tensor(g.copy()), torch.tensor(g)
        opt_auto.step()
        clip_grad_norm_(hand, 1.0)
        opt_hand.step()
        torch.nn.utils.clip_grad_norm_(ref, 1.0)
        opt_ref.step()
        for p, q, t in zip(auto, hand, ref):
            np.testing.assert_array_equal(p.data, q.data)
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12)


def test_max_grad_norm_clips_the_gradients_a_closure_computes():
    rng = np.random.default_rng(11)
    init = _params(rng)
    auto = [na.Parameter(w.copy()) for w in init]
    hand = [na.Parameter(w.copy()) for w in init]

    def closure_for(params, clip):
        def closure():
            for p in params:
                p.grad = None
            loss = sum(((p * 10.0) ** 2).sum() for p in params)
            loss.backward()
            if clip:
                clip_grad_norm_(params, 0.5)
            return loss
        return closure

    opt_auto = SGD(auto, lr=0.1, max_grad_norm=0.5)
    opt_hand = SGD(hand, lr=0.1)
    for _ in range(3):
        loss_a = opt_auto.step(closure_for(auto, False))
        loss_h = opt_hand.step(closure=closure_for(hand, True))
        assert float(loss_a) == float(loss_h)
        for p, q in zip(auto, hand):
            np.testing.assert_array_equal(p.data, q.data)
    total = math.sqrt(sum(float((p.grad.data ** 2).sum()) for p in auto))
    assert total == pytest.approx(0.5, rel=1e-5)


def test_max_grad_norm_is_an_optimizer_setting_not_a_group_entry():
    p = na.Parameter(np.ones(3))
    opt = Adam([p], lr=0.1, max_grad_norm=2)
    assert opt.max_grad_norm == 2.0 and isinstance(opt.max_grad_norm, float)
    assert "max_grad_norm" not in opt.param_groups[0] and "max_grad_norm" not in opt.defaults
    p.grad = na.Tensor(np.full(3, 10.0))
    opt.step()
    assert "max_grad_norm" not in str(opt.state_dict())
    opt.max_grad_norm = None
    p.grad = na.Tensor(np.full(3, 10.0))
    opt.step()
    np.testing.assert_array_equal(p.grad.data, np.full(3, 10.0))   # off: untouched
    opt.max_grad_norm = 0.5
    p.grad = na.Tensor(np.full(3, 10.0))
    opt.step()
    assert np.linalg.norm(p.grad.data) == pytest.approx(0.5, rel=1e-5)


@pytest.mark.parametrize("bad, err", [(-1.0, ValueError), (0.0, ValueError),
                                      (math.nan, ValueError), ("1", TypeError),
                                      (True, TypeError)])
def test_max_grad_norm_is_validated_before_anything_is_built(bad, err):
    p = na.Parameter(np.ones(2))
    with pytest.raises(err, match="max_grad_norm"):
        AdamW([p], lr=1e-3, max_grad_norm=bad)
    opt = SGD([p], lr=0.1)
    with pytest.raises(err, match="max_grad_norm"):
        opt.max_grad_norm = bad
    assert opt.max_grad_norm is None


def test_seed_000_built_in_clipping_optimizer():
    model = TinyModel()
    optimizer = na.optim.AdamW(
        model.parameters(),
        lr=1e-3,
        max_grad_norm=1.0  # Built-in gradient clipping
    )
    model(batches(1)[0]).backward()
    optimizer.step()
    total = math.sqrt(sum(float((p.grad.data ** 2).sum()) for p in model.parameters()))
    assert total <= 1.0 + 1e-6


def test_a_wrapper_passes_max_grad_norm_to_its_base_which_clips():
    rng = np.random.default_rng(12)
    w = na.Parameter(rng.normal(size=4))
    sam = SAM([w], lr=0.1, rho=0.05, max_grad_norm=0.5)
    assert sam.base_optimizer.max_grad_norm == 0.5 and sam.max_grad_norm == 0.5
    sam.max_grad_norm = 0.25
    assert sam.base_optimizer.max_grad_norm == 0.25

    def closure():
        loss = ((w * 100.0) ** 2).sum()
        loss.backward()
        return loss
    sam.step(closure)
    assert np.linalg.norm(w.grad.data) == pytest.approx(0.25, rel=1e-5)


def test_max_grad_norm_runs_after_step_pre_hooks():
    p = na.Parameter(np.zeros(2))
    opt = SGD([p], lr=1.0, max_grad_norm=1.0)
    opt.register_step_pre_hook(lambda o, a, k: clip_grad_value_([p], 1.0))
    p.grad = na.Tensor(np.array([3.0, 4.0]))
    opt.step()
    # value clip ([1, 1]) by the hook, then the global norm (sqrt 2 -> 1)
    np.testing.assert_allclose(p.data, [-1 / math.sqrt(2)] * 2, rtol=1e-5)


# ---- device discipline -------------------------------------------------------------------------

def test_clipping_on_the_fake_cupy_device_equals_the_cpu():
    from tests import fake_cupy
    fake_cupy.register()
    rng = np.random.default_rng(13)
    ws = [np.asarray(rng.normal(size=s)) for s in [(3, 4), (4,), ()]]
    gs = [np.asarray(rng.normal(size=w.shape) * 3) for w in ws]
    results = {}
    for device in ("cpu", "fake"):
        params = []
        for w, g in zip(ws, gs):
            p = na.Parameter(backend.to_device(w.copy(), device))
            p.grad = na.Tensor(backend.to_device(g.copy(), device))
            params.append(p)
        out = [clip_grad_norm_(params, 2.0), clip_grad_norm_(params, 1.0, norm_type="inf")]
        clip_grad_value_(params, 0.4)
        out += clip_grad_norm_per_tensor_(params, 0.5, norm_type=3)
        out.append(adaptive_clip_grad_(params, clip_factor=0.05))
        clipper = GradientClipper(max_norm=0.3, adaptive=True, clip_value=0.2)
        out.append(clipper.clip_gradients(params))
        opt = SGD(params, lr=0.1, max_grad_norm=0.1)
        opt.step()
        results[device] = [backend.asnumpy(t.data) for t in out] + \
            [backend.asnumpy(p.grad.data) for p in params] + \
            [backend.asnumpy(p.data) for p in params]
        if device == "fake":
            assert all(not isinstance(p.grad.data, np.ndarray) for p in params)
    for a, b in zip(results["cpu"], results["fake"]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)


def test_lbfgs_sees_only_clipped_gradients_and_still_converges_with_line_search():
    from neural_arch.optim.lbfgs import LBFGS
    w = na.Parameter(np.array([30.0, 40.0]))
    opt = LBFGS([w], lr=1, max_iter=20, max_grad_norm=1.0, line_search_fn="strong_wolfe")
    seen = []

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        seen.append(w.grad)
        return loss
    opt.step(closure)
    first = seen[0].data
    np.testing.assert_allclose(first, [0.6, 0.8], rtol=1e-6)   # clipped as it returned
    opt.step(closure)
    assert np.linalg.norm(w.data) < 1e-6
