"""Mixed precision: autocast's op table and casts, GradScaler against torch.amp.GradScaler,
overflow skipping, the gradient clamp under loss scaling, every optimizer (closures
included), the seed-000 AMP loop, the fake device, and float16 training on the digits."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import neural_arch as na
import neural_arch.functional as F
from neural_arch.amp import GradScaler, autocast, get_autocast_dtype, is_autocast_enabled
from tests import fake_cupy

torch = pytest.importorskip("torch")

fake_cupy.register()

F16, F32, F64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")


def param(shape, seed=0, dtype=np.float32, scale=1.0):
    return na.Parameter((np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype))


def const(shape, seed=1, dtype=np.float32):
    return na.Tensor(np.random.default_rng(seed).normal(size=shape).astype(dtype))


# ==== autocast ===========================================================================

def test_autocast_runs_products_low_and_reductions_softmax_norms_losses_in_float32():
    x, w, b = const((4, 3)), param((5, 3)), param((5,), seed=2)
    img, k = const((2, 1, 5, 5)), param((2, 1, 3, 3), seed=3)
    with autocast():
        h = F.linear(x, w, b)
        low = {"linear": h, "matmul": x @ w.T, "einsum": F.einsum("ij,kj->ik", x, w),
               "conv2d": F.conv2d(img, k),
               "conv_transpose2d": F.conv_transpose2d(img, k.transpose(1, 0, 2, 3)),
               "relu (follows its input)": F.relu(h), "tanh": F.tanh(h), "h * 2.0": h * 2.0}
        high = {"sum": h.sum(), "mean": h.mean(1), "var": h.var(), "logsumexp": h.logsumexp(1),
                "norm": h.norm(), "softmax": F.softmax(h), "log_softmax": F.log_softmax(h),
                "exp": F.exp(h), "log": F.log(F.relu(h) + 1.0), "pow": h ** 2,
                "layer_norm": F.layer_norm(h, 5),
                "cross_entropy": na.cross_entropy_loss(h, np.array([0, 1, 2, 3])),
                "mse": na.mse_loss(h, na.Tensor(np.zeros((4, 5), np.float32)))}
        mixed = h + const((4, 5))                       # float16 + float32: NumPy promotes
        x64 = const((2, 3), dtype=np.float64)
        untouched = x64 @ const((3, 2), dtype=np.float64)
    assert {k: v.dtype for k, v in low.items()} == {k: F16 for k in low}
    assert {k: v.dtype for k, v in high.items()} == {k: F32 for k in high}
    assert mixed.dtype == F32 and untouched.dtype == F64
    assert (x @ w.T).dtype == F32                       # outside the block: no casting
    assert w.dtype == F32 and b.dtype == F32            # master weights untouched


def test_casts_are_differentiable_and_gradients_reach_float32_leaves_in_float32():
    x, w = const((6, 4)), param((3, 4))
    with autocast():
        y = F.linear(x, w)
        loss = (y * y).mean()
    loss.backward()
    assert y.dtype == F16 and loss.dtype == F32 and w.grad.dtype == F32
    # The same computation written with explicit casts, in torch (float16 product).
    xt, wt = torch.tensor(x.data), torch.tensor(w.data, requires_grad=True)
    yt = (xt.half() @ wt.half().T).float()
    (yt * yt).mean().backward()
    np.testing.assert_allclose(w.grad.data, wt.grad.numpy(), rtol=2e-3, atol=1e-4)


def test_second_derivatives_flow_through_the_casts():
    x, w = const((5, 3), dtype=np.float32), param((3, 2))
    with autocast():
        loss = ((x @ w) ** 2).sum()
    (g,) = na.autograd.grad(loss, [w], create_graph=True)
    (h,) = na.autograd.grad(g.sum(), [w])
    # d/dw sum_ij (2 x^T x w)_ij = 2 x^T x 1, computed in float32 from the float16 inputs.
    x16 = x.data.astype(np.float16).astype(np.float32)
    expected = 2 * x16.T @ x16 @ np.ones((3, 2), np.float32)
    assert g.dtype == F32 and h.dtype == F32
    np.testing.assert_allclose(h.data, expected, rtol=5e-3)


def test_the_engine_hook_is_set_only_inside_autocast():
    from neural_arch.core.grad_mode import config
    assert config.autocast is None
    with autocast():
        assert config.autocast is not None and is_autocast_enabled()
        with autocast():
            pass
        assert config.autocast is not None
    assert config.autocast is None and not is_autocast_enabled()
    with pytest.raises(ZeroDivisionError):
        with autocast():
            1 / 0
    assert config.autocast is None and get_autocast_dtype() is None


def test_nested_disabled_block_stops_casting_and_decorator_form():
    x, w = const((2, 3)), param((3, 2))
    with autocast():
        with autocast(enabled=False):
            assert (x @ w).dtype == F32 and get_autocast_dtype() is None
        assert (x @ w).dtype == F16 and get_autocast_dtype() == F16

    @autocast()
    def forward(a):
        return a @ w

    assert forward(x).dtype == F16 and (x @ w).dtype == F32


def test_autocast_arguments_are_checked():
    with pytest.raises(TypeError, match="NumPy, which has none"):
        autocast(dtype="bfloat16")
    autocast(dtype="bfloat16", enabled=False)            # nothing runs low: allowed
    with pytest.raises(ValueError, match="'float16' or 'bfloat16', got 'float32'"):
        autocast(dtype="float32")
    with pytest.raises(TypeError, match="enabled must be True or False"):
        autocast(enabled=1)
    assert autocast(np.float16).dtype == F16 and autocast(na.float16).dtype == F16


def test_autocast_and_scaler_on_the_fake_device():
    x = na.Tensor(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)).to("fake")
    w = na.Parameter(np.random.default_rng(1).normal(size=(2, 3)).astype(np.float32)).to("fake")
    w = na.Parameter(w.data)
    opt = na.optim.SGD([w], lr=0.1)
    scaler = GradScaler(init_scale=2.0 ** 10)
    with autocast():
        y = F.linear(x, w)
        loss = F.log_softmax(y).mean() * -1.0
    assert y.dtype == F16 and loss.dtype == F32 and y.device == "fake:0"
    scaler.scale(loss).backward()
    before = w.data.get().copy()
    scaler.step(opt)
    scaler.update()
    assert w.grad.device == "fake:0" and w.grad.dtype == F32
    np.testing.assert_allclose(w.data.get(), before - 0.1 * w.grad.data.get(), rtol=1e-6)
    # An overflow on the device: skipped, scale backed off.
    opt.zero_grad()
    scaler.scale(loss.detach() + (w * w).sum()).backward()
    w.grad.data[0, 0] = np.inf
    kept = w.data.get().copy()
    assert scaler.step(opt) is None
    scaler.update()
    np.testing.assert_array_equal(w.data.get(), kept)
    assert scaler.get_scale() == 2.0 ** 9


# ==== GradScaler against torch.amp.GradScaler ============================================

PATTERNS = [
    dict(init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2,
         infs=[0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]),
    dict(init_scale=1000.0, growth_factor=1.7, backoff_factor=0.3, growth_interval=3,
         infs=[0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]),
    dict(init_scale=3.0e38, growth_factor=4.0, backoff_factor=0.9, growth_interval=1,
         infs=[0, 0, 1, 0, 0]),                       # growth past float32's max is refused
]


@pytest.mark.parametrize("case", PATTERNS, ids=["defaults", "odd-factors", "near-max"])
def test_scale_sequence_equals_torch_for_the_same_inf_pattern(case):
    case = dict(case)
    infs = case.pop("infs")
    p = param((3,))
    pt = torch.nn.Parameter(torch.tensor(p.data))
    opt, opt_t = na.optim.SGD([p], lr=1e-3), torch.optim.SGD([pt], lr=1e-3)
    ours, theirs = GradScaler(**case), torch.amp.GradScaler("cpu", **case)
    seq, seq_t = [], []
    for bad in infs:
        opt.zero_grad()
        opt_t.zero_grad()
        ours.scale((p * p).sum()).backward()
        theirs.scale((pt * pt).sum()).backward()
        if bad:
            value = np.inf if bad == 1 else np.nan
            p.grad.data[1] = value
            pt.grad[1] = value
        ours.step(opt)
        theirs.step(opt_t)
        ours.update()
        theirs.update()
        seq.append((ours.get_scale(), ours.state_dict()["_growth_tracker"]))
        seq_t.append((theirs.get_scale(), theirs.state_dict()["_growth_tracker"]))
    assert seq == seq_t
    assert ours.state_dict() == theirs.state_dict()
    np.testing.assert_array_equal(p.data, pt.detach().numpy())


def test_unscale_arithmetic_equals_torch_for_a_scale_that_is_not_a_power_of_two():
    g = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32) * 1e3
    p, pt = param((4, 3)), torch.nn.Parameter(torch.zeros(4, 3, dtype=torch.float32))
    ours, theirs = GradScaler(init_scale=3.0), torch.amp.GradScaler("cpu", init_scale=3.0)
    theirs.scale(torch.zeros(()))                        # torch makes its scale lazily
    p.grad = na.Tensor(g.copy())
    pt.grad = torch.tensor(g.copy())
    ours.unscale_(na.optim.SGD([p], lr=0.1))
    theirs.unscale_(torch.optim.SGD([pt], lr=0.1))
    np.testing.assert_array_equal(p.grad.data, pt.grad.numpy())


def test_state_dict_has_torchs_keys_and_round_trips():
    ours = GradScaler(init_scale=512.0, growth_interval=7)
    theirs = torch.amp.GradScaler("cpu", init_scale=512.0, growth_interval=7)
    theirs.scale(torch.ones(()))
    assert ours.state_dict() == theirs.state_dict()
    other = GradScaler()
    other.load_state_dict(ours.state_dict())
    assert other.state_dict() == ours.state_dict()
    loaded = GradScaler()
    loaded.load_state_dict(theirs.state_dict())          # a torch checkpoint loads too
    assert loaded.get_scale() == 512.0 and loaded.get_growth_interval() == 7
    with pytest.raises(RuntimeError, match="empty"):
        GradScaler().load_state_dict({})
    bad = dict(ours.state_dict(), backoff_factor=1.5)
    with pytest.raises(ValueError, match="backoff_factor"):
        other.load_state_dict(bad)
    assert other.get_backoff_factor() == 0.5             # nothing changed
    with pytest.raises(ValueError, match=r"lacks \['_growth_tracker'\]"):
        other.load_state_dict({k: v for k, v in ours.state_dict().items()
                               if k != "_growth_tracker"})


@pytest.mark.parametrize("kwargs, match", [
    (dict(init_scale=-1.0), "init_scale must be a positive finite number"),
    (dict(init_scale=math.inf), "init_scale"),
    (dict(growth_factor=1.0), r"growth_factor must be a finite number > 1.0"),
    (dict(backoff_factor=1.0), r"backoff_factor must be a number in \(0, 1\)"),
    (dict(backoff_factor=0.0), "backoff_factor"),
    (dict(growth_interval=0), "growth_interval must be a positive integer"),
    (dict(growth_interval=2.5), "growth_interval"),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradScaler(**kwargs)
    with pytest.raises(TypeError, match="enabled"):
        GradScaler(enabled="yes")


def test_call_order_errors_are_torchs():
    p = param((2,))
    opt = na.optim.SGD([p], lr=0.1)
    s = GradScaler()
    with pytest.raises(RuntimeError, match="No inf checks were recorded"):
        s.update()
    s.scale(p.sum()).backward()
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called on this optimizer"):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        s.unscale_(opt)
    s.update()
    s.scale(p.sum()).backward()
    s.step(opt)                                          # a fresh iteration is fine
    s.update()
    with pytest.raises(TypeError, match="expects a Tensor or a list/tuple"):
        s.scale(3.0)
    with pytest.raises(TypeError, match="floating-point"):
        s.scale(na.Tensor(np.arange(3)))
    with pytest.raises(TypeError, match="expects an optimizer"):
        s.step(object())


def test_update_with_a_new_scale_sets_it_and_keeps_the_growth_counter():
    p = param((2,))
    opt = na.optim.SGD([p], lr=0.1)
    s, t = GradScaler(growth_interval=5), torch.amp.GradScaler("cpu", growth_interval=5)
    pt = torch.nn.Parameter(torch.tensor(p.data))
    opt_t = torch.optim.SGD([pt], lr=0.1)
    for new in (None, 100.0, None, na.Tensor(np.array(7.0, np.float32))):
        s.scale(p.sum()).backward()
        t.scale(pt.sum()).backward()
        s.step(opt)
        t.step(opt_t)
        s.update(new)
        t.update(None if new is None else
                 (new if isinstance(new, float) else torch.tensor(new.data)))
        assert s.state_dict() == t.state_dict()
    assert s.get_scale() == 7.0 and s.state_dict()["_growth_tracker"] == 2
    for bad in (0.0, -2.0, math.nan, na.Tensor(np.ones(2, np.float32))):
        s.scale(p.sum()).backward()
        s.step(opt)
        with pytest.raises(ValueError, match="new_scale"):
            s.update(bad)
        s.update()


def test_scale_of_lists_and_the_disabled_scaler():
    a, b = param((2,)), param((2,), seed=1)
    s = GradScaler(init_scale=8.0)
    la, lb = s.scale([a.sum(), b.sum()])
    assert float(la.item()) == 8.0 * float(a.data.sum()) and isinstance(s.scale((a.sum(),)), tuple)
    off = GradScaler(enabled=False)
    loss = a.sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    opt = na.optim.SGD([a], lr=0.5)
    loss.backward()
    off.unscale_(opt)                                    # no-op
    off.step(opt)
    off.update()
    np.testing.assert_allclose(a.data, param((2,)).data - 0.5)
    assert not off.is_enabled() and "enabled=False" in repr(off)


def test_float16_overflow_makes_step_skip_and_halves_the_scale():
    x, w = const((8, 4)), param((3, 4))
    opt = na.optim.Adam([w], lr=1e-2)
    scaler = GradScaler()                                # S = 65536
    w0 = w.data.copy()

    def iteration():
        opt.zero_grad()
        with autocast():
            loss = F.linear(x, w).sum()                  # d loss / d y = S > 65504: inf
        scaler.scale(loss).backward()
        out = scaler.step(opt)
        scaler.update()
        return out

    assert iteration() is None                           # skipped
    assert not np.isfinite(w.grad.data).all()            # the overflow was seen, not clamped
    np.testing.assert_array_equal(w.data, w0)
    assert opt.step_count == 0 and not opt.state and scaler.get_scale() == 32768.0
    iteration()                                          # S = 32768 fits: a real step
    assert opt.step_count == 1 and not np.array_equal(w.data, w0)
    assert scaler.get_scale() == 32768.0 and np.isfinite(w.grad.data).all()


# ==== the automatic gradient clamp under loss scaling ===================================

def test_plain_backward_of_a_scaled_loss_would_be_clamped_so_the_scaler_lifts_the_clamp():
    w = param((3,))
    loss_fn = lambda: (w * 100.0).sum()                 # d/dw = 100, scaled: 6.5e6 > 1e6
    (loss_fn() * 65536.0).backward()                     # without the scaler: clamped
    assert float(w.grad.data.max()) == 1e6 and na.autograd.last_clamped_count() == 3
    w.grad = None
    opt = na.optim.SGD([w], lr=0.0)
    scaler = GradScaler()
    scaler.scale(loss_fn()).backward()
    np.testing.assert_array_equal(w.grad.data, 100.0 * 65536.0)
    scaler.unscale_(opt)
    np.testing.assert_array_equal(w.grad.data, 100.0)
    assert na.autograd.last_clamped_count() == 0


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_plain_backward_hides_a_float16_overflow_under_the_clamp():
    x, w = const((8, 4)), param((3, 4))
    with autocast():
        loss = F.linear(x, w).sum()
    (loss * 65536.0).backward()                          # the engine clamps inf to 65504
    assert np.isfinite(w.grad.data).all()                # ... which a scaler could not see


def test_scaler_clamps_the_unscaled_gradients_at_the_bound_of_the_backward():
    w = param((4,))
    big = na.Tensor(np.array([5e6, -3e6, 10.0, 0.5], np.float32))
    opt = na.optim.SGD([w], lr=0.0)
    scaler = GradScaler(init_scale=4.0)
    scaler.scale((w * big).sum()).backward()
    scaler.unscale_(opt)
    np.testing.assert_array_equal(w.grad.data, [1e6, -1e6, 10.0, 0.5])
    assert na.autograd.last_clamped_count() == 2
    scaler.step(opt)
    scaler.update()
    # A bound scoped around the backward is the one applied; None: no clamp.
    for bound, expected in ((5.0, [5.0, -5.0, 5.0, 0.5]), (None, [5e6, -3e6, 10.0, 0.5])):
        w.grad = None
        with na.autograd.grad_clip(bound):
            scaler.scale((w * big).sum()).backward()
        scaler.unscale_(opt)
        np.testing.assert_array_equal(w.grad.data, expected)
        scaler.step(opt)
        scaler.update()


def test_clip_grad_norm_after_unscale_equals_clipping_the_true_gradients():
    def train(use_scaler):
        na.manual_seed(0)
        model = na.nn.Sequential(na.nn.Linear(4, 8), na.nn.Tanh(), na.nn.Linear(8, 2))
        opt = na.optim.Adam(model.parameters(), lr=0.05)
        scaler = GradScaler(init_scale=2.0 ** 12, enabled=use_scaler)
        norms = []
        for i in range(4):
            x, t = const((16, 4), seed=i), const((16, 2), seed=10 + i)
            opt.zero_grad()
            loss = ((model(x) - t) ** 2).mean() * 50.0
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            norms.append(float(na.optim.clip_grad_norm_(model.parameters(), 1.0)))
            scaler.step(opt)
            scaler.update()
        return [p.data.copy() for p in model.parameters()], norms

    (p1, n1), (p2, n2) = train(True), train(False)
    assert n1 == n2 and all(n > 1.0 for n in n1)         # clipping was active
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)              # power-of-two scale: bit for bit


# ==== every optimizer ===================================================================

def _problem():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 4)).astype(np.float32)
    t = rng.normal(size=(12, 2)).astype(np.float32)
    params = [na.Parameter(rng.normal(size=(4, 2)).astype(np.float32) * 0.5),
              na.Parameter(np.zeros(2, np.float32))]

    def loss_fn():
        return ((na.Tensor(x) @ params[0] + params[1] - t) ** 2).mean()
    return params, loss_fn


STANDARD = ["adadelta", "adagrad", "adam", "adamax", "adamw", "asgd", "lamb", "lars", "lion",
            "nadam", "radam", "rmsprop", "rprop", "sgd", "shampoo", "lookahead"]
CLOSURE = ["lbfgs", "sam", "asam"]


def _build(name, params):
    kwargs = {"lookahead": dict(base_optimizer="adam", lr=0.01),
              "lbfgs": dict(lr=0.5, max_iter=4)}.get(name, dict(lr=0.01))
    return na.optim.create_optimizer(params, optimizer_name=name, **kwargs)


def test_the_optimizer_table_covers_the_registry():
    # Not scaled here: PCGrad/GradNorm differentiate their task losses themselves,
    # the gradient-free searches use no gradient, and the mixed-precision and
    # distributed wrappers hold an optimizer of the table (the former is the scaler).
    known = set(STANDARD) | set(CLOSURE) | {"pcgrad", "gradnorm", "cmaes",
                                             "differential_evolution", "particle_swarm",
                                             "mixed_precision", "distributed"}
    assert set(na.optim.available_optimizers()) == known


@pytest.mark.parametrize("name", STANDARD + CLOSURE)
def test_every_optimizer_gives_bit_identical_steps_with_the_scaler(name):
    def run(use_scaler):
        params, loss_fn = _problem()
        opt = _build(name, params)
        scaler = GradScaler(init_scale=2.0 ** 14, enabled=use_scaler)
        for _ in range(3):
            if name in CLOSURE:
                def closure():
                    opt.zero_grad()
                    loss = loss_fn()
                    scaler.scale(loss).backward()
                    return loss
                scaler.step(opt, closure)
            else:
                opt.zero_grad()
                scaler.scale(loss_fn()).backward()
                scaler.step(opt)
            scaler.update()
        return [p.data.copy() for p in params]

    scaled, plain = run(True), run(False)
    for a, b in zip(scaled, plain):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(scaled[0], _problem()[0][0].data)     # it did move


def test_optimizers_that_differentiate_task_losses_are_refused():
    params, loss_fn = _problem()
    opt = na.optim.create_optimizer(params, optimizer_name="pcgrad", lr=0.01)
    with pytest.raises(TypeError, match="task losses"):
        GradScaler().step(opt, [loss_fn(), loss_fn() * 2.0])


def _closure_with_overflow_at(call, opt, scaler, loss_fn, params, counter):
    def closure():
        counter[0] += 1
        opt.zero_grad()
        loss = loss_fn()
        scaler.scale(loss).backward()
        if counter[0] == call:
            params[0].grad.data[0, 0] = np.inf
        return loss
    return closure


@pytest.mark.parametrize("name, call", [("lbfgs", 1), ("lbfgs", 3), ("sam", 1), ("sam", 2)])
def test_overflow_inside_a_closure_step_undoes_the_whole_step(name, call):
    params, loss_fn = _problem()
    opt = _build(name, params)
    scaler = GradScaler(init_scale=2.0 ** 14)
    # One clean step first, so the state has something to put back.
    counter = [0]
    scaler.step(opt, _closure_with_overflow_at(-1, opt, scaler, loss_fn, params, counter))
    scaler.update()
    weights = [p.data.copy() for p in params]
    state = opt.state_dict()
    counter = [0]
    out = scaler.step(opt, _closure_with_overflow_at(call, opt, scaler, loss_fn, params, counter))
    scaler.update()
    assert out is None and counter[0] == call and scaler.get_scale() == 2.0 ** 13
    for p, w in zip(params, weights):
        np.testing.assert_array_equal(p.data, w)
    after = opt.state_dict()
    assert after["step_count"] == state["step_count"]
    for k, s in state["state"].items():
        for key, v in s.items():
            np.testing.assert_array_equal(np.asarray(after["state"][k][key]), np.asarray(v))
    if name == "sam":
        assert not opt.perturbed
    # ... and the next step runs normally.
    counter = [0]
    assert scaler.step(opt, _closure_with_overflow_at(-1, opt, scaler, loss_fn, params,
                                                      counter)) is not None
    scaler.update()
    assert not np.array_equal(params[0].data, weights[0])


def test_closure_misuse_is_reported():
    params, loss_fn = _problem()
    opt = _build("lbfgs", params)
    scaler = GradScaler()

    def unscaled_closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="must compute its gradients with scaler.scale"):
        scaler.step(opt, unscaled_closure)
    scaler = GradScaler()
    scaler.scale(loss_fn()).backward()
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="do not call unscale_ first"):
        scaler.step(opt, closure=unscaled_closure)


def test_float16_gradients_are_refused_as_torch_does():
    p = na.Parameter(np.ones(3, np.float16))
    s = GradScaler()
    s.scale(p.sum().astype("float32")).backward()
    with pytest.raises(ValueError, match="Attempting to unscale float16 gradients"):
        s.unscale_(na.optim.SGD([p], lr=0.1))


# ==== seed 000's loop, and the digits proof =============================================

def test_seed_000_amp_loop_runs_as_written():
    na.manual_seed(0)
    model = na.nn.Sequential(na.nn.Linear(6, 8), na.nn.ReLU(), na.nn.Linear(8, 3))
    criterion = na.losses.CrossEntropyLoss()
    optimizer = na.optim.AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    dataloader = [SimpleNamespace(input=na.Tensor(rng.normal(size=(16, 6)).astype(np.float32)),
                                  target=rng.integers(0, 3, 16)) for _ in range(3)]
    from neural_arch.amp import autocast, GradScaler  # noqa: F811  (the seed's import line)

    scaler = GradScaler()

    for epoch in range(2):
        for batch in dataloader:
            optimizer.zero_grad()

            with autocast():
                output = model(batch.input)
                loss = criterion(output, batch.target)

            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    assert output.dtype == F16 and loss.dtype == F32
    assert optimizer.step_count == 6 and all(p.dtype == F32 for p in model.parameters())


def _digits_accuracy(use_amp, epochs=8, batch_size=64):
    X, y = na.data.load_digits()
    idx = np.random.default_rng(0).permutation(len(X))
    train, test = idx[:1437], idx[1437:]
    na.manual_seed(0)
    model = na.nn.Sequential(na.nn.Linear(64, 64), na.nn.ReLU(), na.nn.Linear(64, 10))
    opt = na.optim.Adam(model.parameters(), lr=1e-2)
    scaler = GradScaler(enabled=use_amp)
    order = np.random.default_rng(1)
    dtypes = set()
    for _ in range(epochs):
        perm = order.permutation(train)
        for i in range(0, len(perm), batch_size):
            b = perm[i:i + batch_size]
            opt.zero_grad()
            with autocast(enabled=use_amp):
                logits = model(na.Tensor(X[b]))
                loss = na.cross_entropy_loss(logits, y[b])
            dtypes.add(logits.dtype)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    with na.no_grad(), autocast(enabled=use_amp):
        pred = model(na.Tensor(X[test])).data.argmax(axis=1)
    return 100.0 * float((pred == y[test]).mean()), dtypes


def test_float16_autocast_training_on_digits_matches_float32_within_half_a_point():
    acc32, d32 = _digits_accuracy(False)
    acc16, d16 = _digits_accuracy(True)
    assert d32 == {F32} and d16 == {F16}
    assert acc32 > 95.0
    assert abs(acc16 - acc32) <= 0.5, (acc16, acc32)
