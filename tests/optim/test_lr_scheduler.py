"""Learning-rate schedulers against torch.optim.lr_scheduler, step by step.

Every PyTorch scheduler runs 300 steps beside its PyTorch twin (ours on our
optimizer, PyTorch's on ``torch.optim.SGD``/``Adam`` with a dummy parameter)
for seeded random settings, with several parameter groups; the learning rates
(and, for CyclicLR/OneCycleLR, the momentum or ``betas[0]``) must be *equal*,
not merely close. Each run is also cut at a random step, its state saved, and
continued in a fresh optimizer + scheduler that loaded it. WarmupCosineLR is
held to its formula written out here.
"""
from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import lr_scheduler as ls
from tests.helpers import requires_torch, torch

STEPS = 300


# ---- callables with state (saved in state_dict, as PyTorch does for objects) ----------

class InvSqrt:
    """epoch -> (1 + a * epoch) ** -0.5."""

    def __init__(self, a):
        self.a = a

    def __call__(self, epoch):
        return (1 + self.a * epoch) ** -0.5


class EveryThird:
    """epoch -> f on every third epoch, else 1."""

    def __init__(self, f):
        self.f = f

    def __call__(self, epoch):
        return self.f if epoch % 3 == 0 else 1.0


class HalfLife:
    """A CyclicLR scale_fn: x -> 0.5 ** (x / h)."""

    def __init__(self, h):
        self.h = h

    def __call__(self, x):
        return 0.5 ** (x / self.h)


# ---- the pair of optimizers and the traces ----------------------------------------------

def make_optimizers(lrs, kind="SGD", **kw):
    """Our optimizer and PyTorch's, one group (one dummy parameter) per lr."""
    ours = getattr(na.optim, kind)(
        [{"params": [na.Parameter(np.zeros(1))], "lr": lr} for lr in lrs], **kw)
    theirs = None
    if torch is not None:
        theirs = getattr(torch.optim, kind)(
            [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs], **kw)
    return ours, theirs


def snapshot(opt, sched):
    groups = opt.param_groups
    return (tuple(sched.get_last_lr()), tuple(g["lr"] for g in groups),
            tuple(g.get("momentum") for g in groups),
            tuple(g["betas"][0] if "betas" in g else None for g in groups))


def trace(opt, sched, steps, metrics=None, start=0):
    out = []
    for i in range(start, start + steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        out.append(snapshot(opt, sched))
    return out


def assert_same_traces(ours, theirs, what):
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"{what}: step {i + 1} differs: ours {a}, torch {b}"


# ---- the table of PyTorch schedulers with seeded random settings ------------------------
# sample(rng) -> (optimizer kind, optimizer kwargs, scheduler kwargs); it is called twice
# with equal seeds for a resume, so it must build fresh callables each time.

def _lambda(rng):
    a = rng.uniform(0.01, 0.5, size=3)
    fns = [InvSqrt(x) for x in a]
    return "SGD", {}, {"lr_lambda": fns if rng.random() < 0.5 else fns[0]}


def _multiplicative(rng):
    f = rng.uniform(0.8, 0.99, size=3)
    fns = [EveryThird(x) for x in f]
    return "SGD", {}, {"lr_lambda": fns if rng.random() < 0.5 else fns[0]}


def _step(rng):
    return "SGD", {}, {"step_size": int(rng.integers(1, 60)),
                       "gamma": float(rng.uniform(0.1, 0.99))}


def _multistep(rng):
    milestones = sorted(rng.integers(0, STEPS, size=int(rng.integers(1, 6))).tolist())
    milestones.append(milestones[-1])          # a repeated milestone decays twice
    return "Adam", {}, {"milestones": milestones, "gamma": float(rng.uniform(0.1, 0.99))}


def _constant(rng):
    return "SGD", {}, {"factor": float(rng.uniform(0.05, 1.0)),
                       "total_iters": int(rng.integers(1, 120))}


def _linear(rng):
    return "SGD", {}, {"start_factor": float(rng.uniform(0.01, 1.0)),
                       "end_factor": float(rng.uniform(0.0, 1.0)),
                       "total_iters": int(rng.integers(1, 200))}


def _exponential(rng):
    return "Adam", {}, {"gamma": float(rng.uniform(0.9, 1.0))}


def _polynomial(rng):
    return "SGD", {}, {"total_iters": int(rng.integers(1, 400)),
                       "power": float(rng.uniform(0.0, 3.0))}


def _cosine(rng):
    return "SGD", {}, {"T_max": int(rng.integers(1, 120)),
                       "eta_min": float(rng.uniform(0.0, 1e-3))}


def _warm_restarts(rng):
    return "SGD", {}, {"T_0": int(rng.integers(1, 50)), "T_mult": int(rng.integers(1, 4)),
                       "eta_min": float(rng.uniform(0.0, 1e-3))}


def _cyclic(rng):
    kind = "SGD" if rng.random() < 0.5 else "Adam"
    mode = ["triangular", "triangular2", "exp_range"][int(rng.integers(3))]
    kw = {"base_lr": float(rng.uniform(1e-4, 1e-3)),
          "max_lr": [float(x) for x in rng.uniform(1e-2, 1e-1, size=3)],
          "step_size_up": int(rng.integers(1, 40)),
          "step_size_down": None if rng.random() < 0.5 else int(rng.integers(1, 40)),
          "mode": mode, "gamma": float(rng.uniform(0.99, 1.0)),
          "cycle_momentum": bool(rng.random() < 0.8),
          "base_momentum": float(rng.uniform(0.7, 0.85)),
          "max_momentum": float(rng.uniform(0.85, 0.95))}
    if rng.random() < 0.3:
        kw.update(scale_fn=HalfLife(float(rng.uniform(1, 5))),
                  scale_mode=["cycle", "iterations"][int(rng.integers(2))])
    return kind, {}, kw


def _onecycle(rng):
    kind = "SGD" if rng.random() < 0.5 else "Adam"
    kw = {"max_lr": float(rng.uniform(0.01, 1.0)),
          "pct_start": float(rng.uniform(0.05, 0.45)),
          "anneal_strategy": ["cos", "linear"][int(rng.integers(2))],
          "cycle_momentum": bool(rng.random() < 0.8),
          "base_momentum": float(rng.uniform(0.7, 0.85)),
          "max_momentum": float(rng.uniform(0.85, 0.98)),
          "div_factor": float(rng.uniform(5, 50)),
          "final_div_factor": float(rng.uniform(1e2, 1e5)),
          "three_phase": bool(rng.random() < 0.5)}
    if rng.random() < 0.5:
        kw["total_steps"] = int(rng.integers(STEPS, STEPS + 100))
    else:
        kw.update(epochs=int(rng.integers(10, 15)), steps_per_epoch=30)
    return kind, {}, kw


TABLE = {
    "LambdaLR": _lambda, "MultiplicativeLR": _multiplicative, "StepLR": _step,
    "MultiStepLR": _multistep, "ConstantLR": _constant, "LinearLR": _linear,
    "ExponentialLR": _exponential, "PolynomialLR": _polynomial,
    "CosineAnnealingLR": _cosine, "CosineAnnealingWarmRestarts": _warm_restarts,
    "CyclicLR": _cyclic, "OneCycleLR": _onecycle,
}
SEEDS = (0, 1, 2)


def _build(name, seed, lrs):
    kind, opt_kw, kw = TABLE[name](np.random.default_rng(seed))
    opt, topt = make_optimizers(lrs, kind, **opt_kw)
    sched = getattr(ls, name)(opt, **kw)
    kind2, opt_kw2, kw2 = TABLE[name](np.random.default_rng(seed))
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw2) if topt is not None else None
    return opt, sched, topt, tsched


@requires_torch
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(TABLE))
def test_sequence_equals_torch_and_resumes(name, seed):
    lrs = [0.1, 0.03, 0.5]
    opt, sched, topt, tsched = _build(name, seed, lrs)
    assert snapshot(opt, sched) == snapshot(topt, tsched), "after construction"
    cut = int(np.random.default_rng(seed + 100).integers(1, STEPS - 1))
    head = trace(opt, sched, cut)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    tail = trace(opt, sched, STEPS - cut)
    expected = trace(topt, tsched, STEPS)
    assert_same_traces(head + tail, expected, name)

    # A fresh optimizer (other lrs) and scheduler that load the state continue identically.
    assert "optimizer" not in sched_state
    pickle.dumps(sched_state)
    opt2, sched2, _, _ = _build(name, seed, [1.0, 2.0, 3.0])
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = trace(opt2, sched2, STEPS - cut)
    assert_same_traces(resumed, expected[cut:], f"{name} resumed at {cut}")


@requires_torch
@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
                                  "ExponentialLR", "PolynomialLR", "CosineAnnealingLR"])
def test_deprecated_step_epoch_uses_the_closed_form_as_torch(name):
    opt, sched, topt, tsched = _build(name, 5, [0.1, 0.2, 0.3])
    epochs = np.random.default_rng(3).integers(0, STEPS, size=40).tolist()
    for e in epochs:
        opt.step()
        topt.step()
        with pytest.warns(UserWarning, match="deprecated"):
            sched.step(e)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tsched.step(e)
        assert sched.get_last_lr() == tsched.get_last_lr(), f"{name} at epoch {e}"
        assert sched.last_epoch == e


@requires_torch
@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "LambdaLR", "OneCycleLR"])
def test_constructing_with_last_epoch_resumes_as_torch(name):
    opt, sched, topt, tsched = _build(name, 7, [0.1, 0.2, 0.3])
    trace(opt, sched, 40)
    trace(topt, tsched, 40)
    kind, opt_kw, kw = TABLE[name](np.random.default_rng(7))
    opt2, topt2 = make_optimizers([0.1, 0.2, 0.3], kind, **opt_kw)
    opt2.load_state_dict(opt.state_dict())
    topt2.load_state_dict(topt.state_dict())
    sched2 = getattr(ls, name)(opt2, last_epoch=40, **kw)
    kind, opt_kw, kw = TABLE[name](np.random.default_rng(7))
    tsched2 = getattr(torch.optim.lr_scheduler, name)(topt2, last_epoch=40, **kw)
    assert_same_traces(trace(opt2, sched2, 100), trace(topt2, tsched2, 100), name)


def test_resuming_without_initial_lr_is_a_key_error():
    opt, _ = make_optimizers([0.1])
    with pytest.raises(KeyError, match="initial_lr"):
        ls.StepLR(opt, 5, last_epoch=3)


# ---- ReduceLROnPlateau --------------------------------------------------------------------

def _plateau(rng):
    groups = 3
    kw = {"mode": ["min", "max"][int(rng.integers(2))],
          "factor": float(rng.uniform(0.1, 0.9)),
          "patience": int(rng.integers(0, 8)),
          "threshold": float(rng.uniform(0, 0.05)),
          "threshold_mode": ["rel", "abs"][int(rng.integers(2))],
          "cooldown": int(rng.integers(0, 5)),
          "eps": float(10 ** rng.uniform(-9, -4))}
    kw["min_lr"] = ([float(x) for x in rng.uniform(0, 1e-3, size=groups)]
                    if rng.random() < 0.5 else float(rng.uniform(0, 1e-3)))
    # A noisy, slowly improving metric, rounded so it stalls for stretches.
    drift = -0.003 if kw["mode"] == "min" else 0.003
    metrics = np.round(1 + np.cumsum(rng.normal(drift, 0.02, STEPS)), 2).tolist()
    return kw, metrics


@requires_torch
@pytest.mark.parametrize("seed", range(6))
def test_reduce_on_plateau_equals_torch_and_resumes(seed):
    kw, metrics = _plateau(np.random.default_rng(seed))
    opt, topt = make_optimizers([0.1, 0.05, 1.0], "SGD", momentum=0.9)
    sched = ls.ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    cut = 120
    head = trace(opt, sched, cut, metrics)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    tail = trace(opt, sched, STEPS - cut, metrics, start=cut)
    expected = trace(topt, tsched, STEPS, metrics)
    assert_same_traces(head + tail, expected, f"plateau {kw}")
    assert len({s[1] for s in expected}) > 1, "the metric never triggered a reduction"
    opt2, _ = make_optimizers([1.0, 1.0, 1.0], "SGD", momentum=0.9)
    sched2 = ls.ReduceLROnPlateau(opt2, **kw)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    resumed = trace(opt2, sched2, STEPS - cut, metrics, start=cut)
    assert_same_traces(resumed, expected[cut:], "plateau resumed")


def test_reduce_on_plateau_takes_tensors_and_arrays():
    opt, _ = make_optimizers([1.0])
    sched = ls.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    sched.step(na.Tensor(np.array(1.0)))
    sched.step(np.array(2.0))
    assert sched.get_last_lr() == [0.5]
    with pytest.raises(TypeError, match="metric"):
        sched.step("high")


# ---- chaining and composition -----------------------------------------------------------

def _both(build):
    """build(module, optimizer) -> scheduler, for ours and PyTorch's."""
    opt, topt = make_optimizers([0.1, 0.3])
    return opt, build(ls, opt), topt, build(torch.optim.lr_scheduler, topt)


class _Many:
    """Several schedulers on one optimizer, all stepped each epoch (the chainable use)."""

    def __init__(self, scheds):
        self.scheds = scheds

    def step(self):
        for s in self.scheds:
            s.step()

    def get_last_lr(self):
        return self.scheds[-1].get_last_lr()

    def state_dict(self):
        return [s.state_dict() for s in self.scheds]

    def load_state_dict(self, states):
        for s, st in zip(self.scheds, states):
            s.load_state_dict(st)


COMPOSITIONS = {
    "two-on-one: exp + multistep": lambda m, o: _Many(
        [m.ExponentialLR(o, gamma=0.98), m.MultiStepLR(o, milestones=[30, 80, 200], gamma=0.3)]),
    "two-on-one: linear warmup + cosine": lambda m, o: _Many(
        [m.LinearLR(o, start_factor=0.1, total_iters=20), m.CosineAnnealingLR(o, T_max=70)]),
    "three-on-one: constant + step + polynomial": lambda m, o: _Many(
        [m.ConstantLR(o, factor=0.5, total_iters=15), m.StepLR(o, 40, 0.7),
         m.PolynomialLR(o, total_iters=250, power=1.5)]),
    "ChainedScheduler: cosine + exp": lambda m, o: m.ChainedScheduler(
        [m.CosineAnnealingLR(o, T_max=50, eta_min=1e-4), m.ExponentialLR(o, gamma=0.995)]),
    "ChainedScheduler: multiplicative + linear": lambda m, o: m.ChainedScheduler(
        [m.MultiplicativeLR(o, EveryThird(0.97)), m.LinearLR(o, 0.2, 0.8, 100)]),
    "SequentialLR: linear -> cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.05, total_iters=25), m.CosineAnnealingLR(o, 200)],
        milestones=[25]),
    "SequentialLR: constant -> exp -> step": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, 0.1, 10), m.ExponentialLR(o, 0.97), m.StepLR(o, 20, 0.5)],
        milestones=[10, 90]),
    "SequentialLR: lambda -> warm restarts -> multiplicative": lambda m, o: m.SequentialLR(
        o, [m.LambdaLR(o, InvSqrt(0.2)), m.CosineAnnealingWarmRestarts(o, 10, 2),
            m.MultiplicativeLR(o, EveryThird(0.9))], milestones=[30, 200]),
    "ChainedScheduler of SequentialLR and exp": lambda m, o: m.ChainedScheduler(
        [m.SequentialLR(o, [m.ConstantLR(o, 0.5, 5), m.CosineAnnealingLR(o, 60)], [40]),
         m.ExponentialLR(o, 0.999)]),
}


@requires_torch
@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
def test_compositions_equal_torch_and_resume(name):
    build = COMPOSITIONS[name]
    opt, sched, topt, tsched = _both(build)
    assert sched.get_last_lr() == tsched.get_last_lr()
    head = trace(opt, sched, 110)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    tail = trace(opt, sched, STEPS - 110)
    expected = trace(topt, tsched, STEPS)
    assert_same_traces(head + tail, expected, name)
    opt2, _ = make_optimizers([1.0, 1.0])
    sched2 = build(ls, opt2)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert_same_traces(trace(opt2, sched2, STEPS - 110), expected[110:], name + " resumed")


# ---- CosineAnnealingWarmRestarts with fractional epochs ------------------------------------

@requires_torch
@pytest.mark.parametrize("T_0, T_mult", [(5, 1), (3, 2), (2, 3)])
def test_warm_restarts_fractional_epochs_equal_torch(T_0, T_mult):
    opt, topt = make_optimizers([0.1, 0.02])
    sched = ls.CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min=1e-4)
    tsched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, T_0, T_mult, 1e-4)
    iters = 7
    for epoch in range(40):
        for i in range(iters):
            opt.step()
            topt.step()
            sched.step(epoch + i / iters)
            tsched.step(epoch + i / iters)
            assert sched.get_last_lr() == tsched.get_last_lr(), (epoch, i)
            assert (sched.T_i, sched.T_cur, sched.last_epoch) == \
                (tsched.T_i, tsched.T_cur, tsched.last_epoch)


def test_warm_restarts_epoch_on_a_restart_starts_the_new_cycle():
    # With T_0=1, T_mult=3 cycles start at 0, 1, 4, 13, 40, 121, 364; PyTorch's float
    # logarithm puts 121 at the end of the cycle that began at 40.
    opt, _ = make_optimizers([0.5])
    sched = ls.CosineAnnealingWarmRestarts(opt, T_0=1, T_mult=3, eta_min=0.01)
    opt.step()
    for start, length in [(1, 3), (4, 9), (13, 27), (40, 81), (121, 243), (364, 729)]:
        sched.step(start)
        assert (sched.T_cur, sched.T_i) == (0, length)
        assert sched.get_last_lr() == [0.5]
        sched.step(start - 0.5)
        assert sched.T_i == length // 3 and sched.T_cur == pytest.approx(length // 3 - 0.5)


# ---- momentum cycling with several groups of their own bounds ---------------------------------

@requires_torch
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_cycled_momentum_per_group_equals_torch(kind):
    def both(build):
        opt, topt = make_optimizers([0.1, 0.2], kind)
        return opt, build(ls, opt), topt, build(torch.optim.lr_scheduler, topt)

    cyc = both(lambda m, o: m.CyclicLR(o, [0.001, 0.002], [0.1, 0.05], 13, 7,
                                       base_momentum=[0.8, 0.7], max_momentum=[0.9, 0.95]))
    one = both(lambda m, o: m.OneCycleLR(o, [0.3, 0.1], total_steps=STEPS, three_phase=True,
                                         base_momentum=[0.8, 0.75], max_momentum=0.9))
    for opt, sched, topt, tsched in (cyc, one):
        ours, theirs = trace(opt, sched, STEPS), trace(topt, tsched, STEPS)
        assert_same_traces(ours, theirs, type(sched).__name__)
        momenta = {s[3 if kind == "Adam" else 2] for s in ours}
        assert len(momenta) > 10
        if kind == "Adam":
            assert all(g["betas"][1] == 0.999 for g in opt.param_groups)


def test_onecycle_past_total_steps_is_an_error():
    opt, _ = make_optimizers([0.1])
    sched = ls.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    for _ in range(10):
        opt.step()
        sched.step()
    opt.step()
    with pytest.raises(ValueError, match="total_steps=10"):
        sched.step()


# ---- WarmupCosineLR -----------------------------------------------------------------------

def warmup_cosine_reference(t, base, W, T, eta_min, start):
    """The documented formula, written independently of the implementation."""
    if t < W:
        return start + (base - start) * t / W
    p = (min(t, T) - W) / (T - W)
    return eta_min + (base - eta_min) * 0.5 * (1 + math.cos(math.pi * p))


@pytest.mark.parametrize("W, T, eta_min, start", [(10, 100, 1e-6, 0.0), (0, 50, 0.0, 0.0),
                                                  (7, 8, 1e-3, 1e-4), (25, 200, 0.0, 0.02)])
def test_warmup_cosine_follows_its_formula_and_resumes(W, T, eta_min, start):
    lrs = [0.1, 0.004]
    opt, _ = make_optimizers(lrs, "Adam")
    sched = ls.WarmupCosineLR(opt, warmup_epochs=W, max_epochs=T, eta_min=eta_min,
                              warmup_start_lr=start)
    seen = [sched.get_last_lr()]
    for _ in range(T + 20):
        opt.step()
        sched.step()
        seen.append(sched.get_last_lr())
    for t, got in enumerate(seen):
        want = [warmup_cosine_reference(t, b, W, T, eta_min, start) for b in lrs]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-16, err_msg=f"epoch {t}")
    assert seen[W] == pytest.approx(lrs) and seen[T] == pytest.approx([eta_min] * 2)
    assert seen[-1] == seen[T]
    # resume: a fresh optimizer and scheduler continue from the saved state
    opt2, _ = make_optimizers([9.0, 9.0], "Adam")
    sched2 = ls.WarmupCosineLR(opt2, W, T, eta_min, start)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    opt2.step()
    sched2.step()
    assert sched2.get_last_lr() == pytest.approx(
        [warmup_cosine_reference(T + 21, b, W, T, eta_min, start) for b in lrs])


def test_warmup_cosine_matches_seed_000_lambda_schedule():
    # Seed 000 writes warmup + cosine as a LambdaLR factor; the defaults reproduce it.
    W, T = 10, 100

    def factor(epoch):
        if epoch < W:
            return epoch / W
        return 0.5 * (1 + math.cos(math.pi * (epoch - W) / (T - W)))

    opt, _ = make_optimizers([0.01])
    opt_l, _ = make_optimizers([0.01])
    sched = ls.WarmupCosineLR(opt, warmup_epochs=W, max_epochs=T)
    lam = ls.LambdaLR(opt_l, factor)
    for _ in range(T):
        assert sched.get_last_lr() == pytest.approx(lam.get_last_lr(), rel=1e-14, abs=1e-20)
        opt.step(), opt_l.step(), sched.step(), lam.step()


def test_seed_001_warmup_cosine_call():
    opt, _ = make_optimizers([1e-3], "AdamW")
    sched = ls.WarmupCosineLR(opt, warmup_epochs=10, max_epochs=100, eta_min=1e-6)
    lrs = []
    for _ in range(100):
        lrs.append(opt.lr)
        opt.step()
        sched.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(5e-4) and lrs[10] == pytest.approx(1e-3)
    assert np.all(np.diff(lrs[:11]) > 0) and np.all(np.diff(lrs[10:]) < 0)
    assert opt.lr == pytest.approx(1e-6)


# ---- the contract: warnings, state_dict, lambdas ------------------------------------------------

def test_warns_when_the_scheduler_steps_before_the_optimizer():
    opt, _ = make_optimizers([0.1])
    sched = ls.StepLR(opt, 2)
    with pytest.warns(UserWarning, match=r"before optimizer\.step\(\)"):
        sched.step()
    opt2, _ = make_optimizers([0.1])
    sched2 = ls.CosineAnnealingWarmRestarts(opt2, 3)
    with pytest.warns(UserWarning, match=r"before optimizer\.step\(\)"):
        sched2.step()


def test_no_warning_in_the_right_order():
    opt, _ = make_optimizers([0.1])
    sched = ls.ExponentialLR(opt, 0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            opt.step()
            sched.step()
    assert sched.get_last_lr() == [0.1 * 0.9 * 0.9 * 0.9]


def test_get_lr_outside_step_warns_and_get_last_lr_is_a_copy():
    opt, _ = make_optimizers([0.1])
    sched = ls.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    last = sched.get_last_lr()
    last[0] = 5.0
    assert sched.get_last_lr() == [0.1]


def test_initial_lr_and_base_lrs():
    opt, _ = make_optimizers([0.1, 0.2])
    sched = ls.ExponentialLR(opt, 0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.2]
    assert sched.base_lrs == [0.1, 0.2] and sched.last_epoch == 0
    opt.step()
    sched.step()
    assert opt.lr.per_group == (0.05, 0.1)


def test_lambdas_in_state_dict_as_torch():
    opt, _ = make_optimizers([0.1, 0.1])
    fn = InvSqrt(0.3)
    sched = ls.LambdaLR(opt, [fn, lambda e: 0.9 ** e])
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"a": 0.3}, None]
    pickle.dumps(state)
    fresh = InvSqrt(7.0)
    sched2 = ls.LambdaLR(opt, [fresh, lambda e: 1.0])
    sched2.load_state_dict(state)
    assert fresh.a == 0.3


def test_state_dict_is_a_snapshot_and_mismatches_are_refused():
    opt, _ = make_optimizers([0.1])
    sched = ls.MultiStepLR(opt, [2, 4])
    state = sched.state_dict()
    for _ in range(5):
        opt.step()
        sched.step()
    assert state["last_epoch"] == 0 and state["_last_lr"] == [0.1]
    other = ls.StepLR(opt, 3)
    before = other.state_dict()
    with pytest.raises(ValueError, match=r"does not belong to a StepLR"):
        other.load_state_dict(state)
    assert other.state_dict() == before
    with pytest.raises(TypeError, match="expects a dict"):
        other.load_state_dict([1, 2])


def test_exported_from_neural_arch_optim():
    for name in ls.__all__:
        assert getattr(na.optim, name) is getattr(ls, name)
    assert na.optim.lr_scheduler is ls


# ---- bad input -----------------------------------------------------------------------------

class _NoMomentum:
    """A minimal optimizer without momentum or betas."""

    def __init__(self):
        self.param_groups = [{"lr": 0.1}]
        self.defaults = {"lr": 0.1}


def _opt(n=1):
    return make_optimizers([0.1] * n)[0]


BAD = [
    (lambda: ls.StepLR(object(), 5), TypeError, "needs an optimizer"),
    (lambda: ls.StepLR(_opt(), 0), ValueError, "step_size 0"),
    (lambda: ls.StepLR(_opt(), 2.5), TypeError, "step_size must be an integer"),
    (lambda: ls.StepLR(_opt(), 5, gama=0.1), TypeError, "gama"),
    (lambda: ls.StepLR(_opt(), 5, gamma=-1), ValueError, "gamma"),
    (lambda: ls.StepLR(_opt(), 5, last_epoch=-2), ValueError, "last_epoch"),
    (lambda: ls.ExponentialLR(_opt(), "0.9"), TypeError, "gamma must be a real number"),
    (lambda: ls.ExponentialLR(_opt(), float("nan")), ValueError, "gamma"),
    (lambda: ls.MultiStepLR(_opt(), 5), TypeError, "milestones"),
    (lambda: ls.MultiStepLR(_opt(), [3, -1]), ValueError, "milestone"),
    (lambda: ls.ConstantLR(_opt(), factor=0.0), ValueError, "factor"),
    (lambda: ls.ConstantLR(_opt(), factor=1.5), ValueError, "factor"),
    (lambda: ls.LinearLR(_opt(), start_factor=0.0), ValueError, "start_factor"),
    (lambda: ls.LinearLR(_opt(), end_factor=2.0), ValueError, "end_factor"),
    (lambda: ls.LinearLR(_opt(), total_iters=0), ValueError, "total_iters"),
    (lambda: ls.PolynomialLR(_opt(), power=-1.0), ValueError, "power"),
    (lambda: ls.CosineAnnealingLR(_opt(), T_max=0), ValueError, "T_max"),
    (lambda: ls.CosineAnnealingLR(_opt(), 10, eta_min=-1e-3), ValueError, "eta_min"),
    (lambda: ls.CosineAnnealingWarmRestarts(_opt(), T_0=0), ValueError, "T_0"),
    (lambda: ls.CosineAnnealingWarmRestarts(_opt(), 5, T_mult=1.5), TypeError, "T_mult"),
    (lambda: ls.CosineAnnealingWarmRestarts(_opt(), 5).step(-1.0), ValueError, "epoch -1.0"),
    (lambda: ls.WarmupCosineLR(_opt(), 10, 10), ValueError, "max_epochs"),
    (lambda: ls.WarmupCosineLR(_opt(), -1, 10), ValueError, "warmup_epochs"),
    (lambda: ls.LambdaLR(_opt(), 3), TypeError, "callable"),
    (lambda: ls.LambdaLR(_opt(2), [InvSqrt(1)]), ValueError, "1 lr_lambdas for 2"),
    (lambda: ls.CyclicLR(_opt(), 0.1, 1.0, mode="square"), ValueError, "mode 'square'"),
    (lambda: ls.CyclicLR(_opt(), 0.1, 1.0, step_size_up=0), ValueError, "step_size_up"),
    (lambda: ls.CyclicLR(_opt(2), [0.1] * 3, 1.0), ValueError, "base_lr has 3 values"),
    (lambda: ls.CyclicLR(_NoMomentum(), 0.1, 1.0), ValueError, "cycle_momentum"),
    (lambda: ls.CyclicLR(_opt(), 0.1, 1.0, scale_fn=HalfLife(1), scale_mode="x"),
     ValueError, "scale_mode"),
    (lambda: ls.OneCycleLR(_opt(), 1.0), ValueError, "total_steps"),
    (lambda: ls.OneCycleLR(_opt(), 1.0, epochs=0, steps_per_epoch=5), ValueError, "epochs"),
    (lambda: ls.OneCycleLR(_opt(), 1.0, 100, pct_start=1.5), ValueError, "pct_start"),
    (lambda: ls.OneCycleLR(_opt(), 1.0, 10, pct_start=0.1), ValueError, "empty"),
    (lambda: ls.OneCycleLR(_opt(), 1.0, 100, anneal_strategy="exp"), ValueError,
     "anneal_strategy"),
    (lambda: ls.OneCycleLR(_opt(), 0.0, 100), ValueError, "max_lr"),
    (lambda: ls.OneCycleLR(_opt(), 1.0, 100, div_factor=0), ValueError, "div_factor"),
    (lambda: ls.ReduceLROnPlateau(_opt(), factor=1.0), ValueError, "factor"),
    (lambda: ls.ReduceLROnPlateau(_opt(), mode="avg"), ValueError, "mode 'avg'"),
    (lambda: ls.ReduceLROnPlateau(_opt(), threshold_mode="pct"), ValueError,
     "threshold_mode"),
    (lambda: ls.ReduceLROnPlateau(_opt(), patience=-1), ValueError, "patience"),
    (lambda: ls.ReduceLROnPlateau(_opt(2), min_lr=[0, 0, 0]), ValueError, "min_lr has 3"),
    (lambda: ls.ReduceLROnPlateau(_opt(), verbose=True), TypeError, "verbose"),
    (lambda: ls.ChainedScheduler([]), ValueError, "at least one"),
]


@pytest.mark.parametrize("build, exc, match", BAD, ids=[m for _, _, m in BAD])
def test_bad_arguments_give_named_errors(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_composition_errors():
    opt, opt_b = _opt(), _opt()
    a, b = ls.StepLR(opt, 3), ls.ExponentialLR(opt, 0.9)
    with pytest.raises(ValueError, match="one milestone fewer"):
        ls.SequentialLR(opt, [a, b], milestones=[3, 6])
    with pytest.raises(ValueError, match="strictly increasing"):
        ls.SequentialLR(opt, [a, b, ls.StepLR(opt, 2)], milestones=[6, 6])
    with pytest.raises(ValueError, match="another optimizer"):
        ls.SequentialLR(opt_b, [a, b], milestones=[3])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        ls.ChainedScheduler([a, ls.ReduceLROnPlateau(opt)])
    with pytest.raises(TypeError, match="not a scheduler"):
        ls.ChainedScheduler([a, "cosine"])


def test_added_param_group_is_reported():
    opt = _opt()
    sched = ls.LambdaLR(opt, InvSqrt(1.0))
    opt.add_param_group({"params": [na.Parameter(np.zeros(1))]})
    opt.step()
    with pytest.raises(RuntimeError, match="2 parameter groups"):
        sched.step()
