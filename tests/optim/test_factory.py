"""optim.factory: the registry, create_optimizer / create_scheduler and their errors.

Round trips of configs and the YAML files are in ``test_configs.py``; the seeds'
code blocks in ``test_seed001.py`` and ``test_seed002_builders.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
import neural_arch.optim as optim
from neural_arch.optim import factory
from neural_arch.optim import (ConfigError, create_optimizer, create_optimizer_and_scheduler,
                               create_optimizer_with_groups, create_scheduler, get_config)
from neural_arch.optim._meta import MetaOptimizer
from neural_arch.optim.gradient_free import GradientFreeOptimizer
from neural_arch.optim.lr_scheduler import LRScheduler


class Net(na.nn.Module):
    """Named parameters like a real network: a linear layer, a norm-ish gain, a head."""

    def __init__(self):
        super().__init__()
        self.fc = na.Linear(4, 3)
        self.bn = na.Linear(3, 3)
        self.head = na.Linear(3, 2)

    def forward(self, x):
        return self.head(na.tanh(self.bn(na.tanh(self.fc(x)))))


def model(seed=0):
    na.manual_seed(seed)
    return Net().double()


def backward(m, seed=0):
    rng = np.random.default_rng(seed)
    x = na.Tensor(rng.standard_normal((5, 4)))
    loss = na.mse_loss(m(x), na.Tensor(rng.standard_normal((5, 2))))
    loss.backward()
    return loss


# ---- the registry ---------------------------------------------------------------------------

# Abstract bases exported for subclassing, and the schedulers driven by user functions
# (a config cannot hold a function).
NOT_REGISTERED = {optim.Optimizer, MetaOptimizer, GradientFreeOptimizer, LRScheduler,
                  optim.LambdaLR, optim.MultiplicativeLR}


def exported(base):
    return {getattr(optim, n) for n in optim.__all__
            if isinstance(getattr(optim, n), type) and issubclass(getattr(optim, n), base)}


def test_every_exported_optimizer_is_registered():
    missing = [c.__name__ for c in exported(optim.Optimizer) - NOT_REGISTERED
               if factory._OPTIMIZERS.name_of(c) is None]
    assert not missing, f"add these to the registry in optim/factory.py: {missing}"


def test_every_exported_scheduler_is_registered():
    missing = [c.__name__ for c in exported(LRScheduler) - NOT_REGISTERED
               if factory._SCHEDULERS.name_of(c) is None]
    assert not missing, f"add these to the registry in optim/factory.py: {missing}"


def test_every_registered_name_resolves_to_an_exported_class():
    for registry, base in ((factory._OPTIMIZERS, optim.Optimizer),
                           (factory._SCHEDULERS, LRScheduler)):
        for name, entry in registry.entries.items():
            cls = entry.resolve()
            assert cls is not None, f"{name}: {entry.target} does not exist"
            assert issubclass(cls, base)
            assert getattr(optim, cls.__name__) is cls, f"{cls.__name__} is not exported"


def test_the_issue_names_are_registered():
    for name in ["adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
                 "radam", "lion", "lamb", "lars", "rprop", "asgd", "lbfgs", "shampoo", "sam"]:
        assert name in optim.available_optimizers()
    for name in ["cosine", "cosine_warm_restarts", "onecycle", "plateau", "step", "multistep",
                 "exponential", "linear", "polynomial", "warmup_cosine"]:
        assert name in optim.available_schedulers()


@pytest.mark.parametrize("spelling, cls", [
    ("adamw", optim.AdamW), ("AdamW", optim.AdamW), ("adam_w", optim.AdamW),
    ("ADAM-W", optim.AdamW), ("rms_prop", optim.RMSprop), ("RMSprop", optim.RMSprop),
    ("NAdam", optim.NAdam), ("l-bfgs", optim.LBFGS), ("pso", optim.ParticleSwarmOptimization),
    ("ParticleSwarmOptimization", optim.ParticleSwarmOptimization),
    ("de", optim.DifferentialEvolution), ("CMA-ES", optim.CMAES)])
def test_optimizer_names_are_case_and_separator_insensitive(spelling, cls):
    assert optim.get_optimizer_class(spelling) is cls


@pytest.mark.parametrize("spelling, cls", [
    ("cosine", optim.CosineAnnealingLR), ("CosineAnnealingLR", optim.CosineAnnealingLR),
    ("sgdr", optim.CosineAnnealingWarmRestarts), ("one_cycle", optim.OneCycleLR),
    ("1cycle", optim.OneCycleLR), ("ReduceLROnPlateau", optim.ReduceLROnPlateau),
    ("Warmup-Cosine", optim.WarmupCosineLR), ("multi_step", optim.MultiStepLR)])
def test_scheduler_names_and_aliases(spelling, cls):
    assert optim.get_scheduler_class(spelling) is cls


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown optimizer 'adamz'.*adadelta, adagrad, adam,"):
        create_optimizer(model().parameters(), "adamz")
    with pytest.raises(ValueError, match="unknown scheduler 'cosinus'.*chained, constant, cosine"):
        create_scheduler(create_optimizer(model().parameters(), "sgd"), "cosinus")


def test_a_keras_schedule_name_given_as_a_scheduler_says_where_it_belongs():
    opt = create_optimizer(model().parameters(), "sgd")
    with pytest.raises(ConfigError, match="step-based schedule.*learning_rate_schedule_builder"):
        create_scheduler(opt, "cosine_decay")


def test_a_name_that_is_not_a_string_is_refused():
    with pytest.raises(TypeError, match="given by name"):
        create_optimizer(model().parameters(), 3)


def test_register_a_new_optimizer_and_scheduler():
    class Halving(optim.SGD):
        pass

    class Frozen(optim.StepLR):
        pass

    try:
        optim.register_optimizer("halving_sgd", Halving, aliases=["hsgd"])
        optim.register_scheduler("frozen_step", Frozen, length_argument="step_size")
        m = model()
        opt = create_optimizer(m.parameters(), "HSGD", lr=0.5)
        assert type(opt) is Halving and get_config(opt)["type"] == "halving_sgd"
        sched = create_scheduler(opt, "frozen-step", epochs=4, gamma=0.5)
        assert type(sched) is Frozen and sched.step_size == 4
        assert get_config(sched)["type"] == "frozen_step"
        with pytest.raises(ConfigError, match="already"):
            optim.register_optimizer("adam", Halving)
        with pytest.raises(ConfigError, match="already stand for"):
            optim.register_optimizer("other", Halving, aliases=["adamw"])
        with pytest.raises(ConfigError, match="Optimizer subclass"):
            optim.register_optimizer("bad", dict)
    finally:
        factory._OPTIMIZERS.remove("halving_sgd")
        factory._SCHEDULERS.remove("frozen_step")
    assert "halving_sgd" not in optim.available_optimizers()


# ---- create_optimizer ------------------------------------------------------------------------

def test_create_optimizer_first_spelling():
    m = model()
    opt = create_optimizer(m.parameters(), optimizer_name="adam", lr=1e-4, weight_decay=1e-5)
    assert type(opt) is optim.Adam
    g = opt.param_groups[0]
    assert (g["lr"], g["weight_decay"], g["eps"], g["betas"]) == (1e-4, 1e-5, 1e-8, (0.9, 0.999))
    assert "param_names" not in g


def test_create_optimizer_second_spelling_names_the_parameters():
    m = model()
    opt = create_optimizer(model=m, optimizer_type="rmsprop", learning_rate=1e-3, alpha=0.99,
                           eps=1e-8, weight_decay=1e-4)
    assert type(opt) is optim.RMSprop
    g = opt.param_groups[0]
    assert (g["lr"], g["alpha"], g["eps"], g["weight_decay"]) == (1e-3, 0.99, 1e-8, 1e-4)
    assert g["param_names"] == [n for n, _ in m.named_parameters()]


def test_both_spellings_build_the_same_optimizer_and_take_the_same_steps():
    m1, m2 = model(1), model(1)
    a = create_optimizer(m1.parameters(), optimizer_name="adamw", lr=0.01, weight_decay=0.1,
                         betas=(0.8, 0.9))
    b = create_optimizer(model=m2, optimizer_type="AdamW", learning_rate=0.01, weight_decay=0.1,
                         beta1=0.8, beta_2=0.9)
    for _ in range(3):
        for m, opt in ((m1, a), (m2, b)):
            opt.zero_grad()
            backward(m)
            opt.step()
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_create_optimizer_takes_a_module_positionally_and_a_schedule_config_as_lr():
    m = model()
    opt = create_optimizer(m, "sgd", lr={"type": "exponential_decay", "learning_rate": 0.1,
                                         "decay_steps": 2, "decay_rate": 0.5})
    assert opt.param_groups[0]["param_names"][0] == "fc.weight"
    assert opt.lr == pytest.approx(0.1)
    backward(m)
    opt.step()
    opt.step()
    assert opt.lr == pytest.approx(0.05)
    assert get_config(opt)["lr"]["type"] == "exponential_decay"


def test_create_optimizer_passes_parameter_groups_through():
    m = model()
    opt = create_optimizer([{"params": m.fc.parameters()},
                            {"params": m.head.parameters(), "lr": 0.5}], "sgd", lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]


@pytest.mark.parametrize("kwargs, match", [
    (dict(optimizer_name="adam", optimizer_type="adam"), "two spellings"),
    (dict(optimizer_name="adam", lr=1.0, learning_rate=1.0), "two spellings"),
    (dict(), "needs optimizer_name"),
    (dict(optimizer_name="adam", momentum=0.9), "unknown key 'momentum'.*valid keys: amsgrad"),
    (dict(optimizer_name="adam", lr="fast"), "'lr' must be a number, got 'fast'"),
    (dict(optimizer_name="adam", amsgrad=1), "'amsgrad' must be true or false"),
    (dict(optimizer_name="adam", betas=0.9), "'betas' must be a list"),
    (dict(optimizer_name="adam", beta1=0.8, betas=(0.9, 0.9)), "both 'betas' and its alias"),
    (dict(optimizer_name="adam", lr=-1.0), r"create_optimizer \(optimizer 'adam'\): Invalid "
                                           r"learning rate: -1.0"),
    (dict(optimizer_name="sgd", max_grad_norm=-1.0), "max_grad_norm"),
    (dict(optimizer_name="cmaes", max_grad_norm=1.0), "unknown key 'max_grad_norm'"),
])
def test_create_optimizer_errors_name_the_key(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        create_optimizer(model().parameters(), **kwargs)


def test_params_and_model_together_or_neither_are_errors():
    m = model()
    with pytest.raises(ConfigError, match="not both"):
        create_optimizer(m.parameters(), "sgd", model=m)
    with pytest.raises(ConfigError, match="needs the parameters"):
        create_optimizer(optimizer_name="sgd")


def test_max_grad_norm_is_set_on_any_optimizer():
    m = model()
    opt = create_optimizer(m.parameters(), "lamb", max_grad_norm=0.5)
    assert opt.max_grad_norm == 0.5
    assert get_config(opt)["max_grad_norm"] == 0.5


# ---- wrappers and gradient-free optimizers by name -------------------------------------------

def test_sam_by_name_builds_its_base_from_the_remaining_arguments():
    m = model()
    opt = create_optimizer(m.parameters(), "sam", lr=0.1, rho=0.1, momentum=0.9)
    assert type(opt) is optim.SAM and type(opt.base_optimizer) is optim.SGD
    assert opt.param_groups[0]["rho"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9
    opt2 = create_optimizer(m.parameters(), "sam", base_optimizer="adam", lr=1e-3)
    assert type(opt2.base_optimizer) is optim.Adam
    opt3 = create_optimizer(m.parameters(), "sam",
                            base_optimizer={"type": "adamw", "weight_decay": 0.5}, lr=1e-3)
    assert opt3.param_groups[0]["weight_decay"] == 0.5 and opt3.param_groups[0]["lr"] == 1e-3


def test_a_wrapper_lists_its_own_and_its_base_keys_when_a_key_is_unknown():
    with pytest.raises(ConfigError, match="unknown key 'nesterov'.*adaptive.*amsgrad.*rho"):
        create_optimizer(model().parameters(), "sam", base_optimizer="adam", nesterov=True)


def test_lookahead_needs_a_base_optimizer():
    m = model()
    with pytest.raises(ConfigError, match="give base_optimizer"):
        create_optimizer(m.parameters(), "lookahead")
    opt = create_optimizer(m.parameters(), "lookahead", base_optimizer="sgd", lr=0.1, k=2)
    assert opt.k == 2 and type(opt.base_optimizer) is optim.SGD
    built = optim.Adam(m.parameters())
    opt = create_optimizer(m.parameters(), "lookahead", base_optimizer=built)
    assert opt.base_optimizer is built
    with pytest.raises(ConfigError, match="already built"):
        create_optimizer(m.parameters(), "lookahead", base_optimizer=optim.Adam(
            m.parameters()), lr=0.1)


def test_gradnorm_shared_parameters_by_name():
    m = model()
    opt = create_optimizer(model=m, optimizer_name="gradnorm", lr=1e-3, num_tasks=2,
                           shared_parameters=["fc.weight"], weight_optimizer="sgd")
    assert opt.shared_parameters == [m.fc.weight] and opt.weight_optimizer_class is optim.SGD
    with pytest.raises(ConfigError, match="no parameter named 'nope'"):
        create_optimizer(model=m, optimizer_name="gradnorm", shared_parameters=["nope"])


def test_gradient_free_optimizer_by_name_runs_its_loop():
    m = model()
    x = na.Tensor(np.random.default_rng(0).standard_normal((5, 4)))

    def closure():
        return (m(x) ** 2).mean()

    opt = create_optimizer(m.parameters(), "pso", swarm_size=6, seed=0, closure=closure)
    start = float(closure().data)
    for _ in range(5):
        opt.step()
    assert float(closure().data) <= start
    assert "closure" not in get_config(opt)


# ---- gradient clipping sections --------------------------------------------------------------

def clip_by_hand(grads, value=None, local=None, total=None):
    """The fixed order, written out in NumPy: value, per-tensor norm, global norm."""
    grads = [g.copy() for g in grads]
    if value is not None:
        grads = [np.clip(g, -value, value) for g in grads]
    if local is not None:
        grads = [g * min(1.0, local / (np.linalg.norm(g) + 1e-6)) for g in grads]
    if total is not None:
        norm = np.sqrt(sum(float((g ** 2).sum()) for g in grads))
        grads = [g * min(1.0, total / (norm + 1e-6)) for g in grads]
    return grads


@pytest.mark.parametrize("section, expected", [
    ({"max_norm": 0.3}, dict(total=0.3)),
    ({"enabled": True, "clipvalue": 0.05, "clipnorm": 0.2, "global_clipnorm": 0.25},
     dict(value=0.05, local=0.2, total=0.25)),
    ({"gradient_clipping_by_norm_local": 0.1}, dict(local=0.1)),
])
def test_a_gradient_clipping_section_clips_before_each_step(section, expected):
    m = model(3)
    opt = create_optimizer(m.parameters(), "sgd", lr=1.0, gradient_clipping=section)
    backward(m, seed=3)
    before = [p.data.copy() for p in m.parameters()]
    clipped = clip_by_hand([p.grad.data for p in m.parameters()], **expected)
    opt.step()
    for p, b, g in zip(m.parameters(), before, clipped):
        np.testing.assert_allclose(p.data, b - g, rtol=1e-12, atol=1e-15)


def test_clipping_disabled_leaves_gradients_alone_and_adaptive_uses_agc():
    m = model(4)
    opt = create_optimizer(m.parameters(), "sgd", lr=1.0,
                           gradient_clipping={"enabled": False, "max_norm": 1e-9})
    backward(m, seed=4)
    grads = [p.grad.data.copy() for p in m.parameters()]
    opt.step()
    np.testing.assert_array_equal(m.fc.weight.grad.data, grads[0])
    assert "gradient_clipping" not in get_config(opt)

    m = model(4)
    opt = create_optimizer(m.parameters(), "sgd", lr=1.0,
                           gradient_clipping={"adaptive": True, "clip_factor": 0.01})
    backward(m, seed=4)
    ref = [p.grad.data.copy() for p in m.parameters()]
    w = [p.data.copy() for p in m.parameters()]
    twin = [na.Parameter(x.copy()) for x in w]
    for t, g in zip(twin, ref):
        t.grad = na.Tensor(g.copy())
    optim.adaptive_clip_grad_(twin, clip_factor=0.01)
    opt.step()
    for p, x, t in zip(m.parameters(), w, twin):
        np.testing.assert_allclose(p.data, x - t.grad.data, rtol=1e-12)


def test_clipping_also_clips_what_a_closure_computes():
    m = model(5)
    x = na.Tensor(np.random.default_rng(5).standard_normal((5, 4)))

    def closure():
        opt.zero_grad()
        loss = (m(x) ** 2).sum() * 100.0
        loss.backward()
        return loss

    opt = create_optimizer(m.parameters(), "lbfgs", lr=1.0, max_iter=1,
                           gradient_clipping={"max_norm": 1e-3})
    before = np.concatenate([p.data.ravel() for p in m.parameters()])
    opt.step(closure)
    after = np.concatenate([p.data.ravel() for p in m.parameters()])
    # LBFGS's first step is lr * min(1, 1/|g|_1) * g: with |g| clipped to 1e-3, a tiny move.
    assert 0 < np.linalg.norm(after - before) <= 1e-3 + 1e-12


@pytest.mark.parametrize("section, match", [
    ({"max_nrm": 1.0}, "unknown key 'max_nrm'.*valid keys: adaptive, clip_factor"),
    ({"max_norm": "big"}, "'max_norm' must be a number"),
    ({"enabled": "yes", "max_norm": 1.0}, "'enabled' must be true or false"),
    ({"enabled": True}, "nothing to do"),
    ({"clipnorm": 1.0, "per_tensor_max_norm": 2.0}, "given twice"),
    ([1.0], "must be a dict"),
])
def test_bad_clipping_sections(section, match):
    with pytest.raises((TypeError, ValueError), match=match):
        create_optimizer(model().parameters(), "sgd", gradient_clipping=section)


# ---- create_optimizer_with_groups (seed 000) -------------------------------------------------

def test_no_decay_groups_by_name():
    m = model()
    opt = create_optimizer_with_groups(m, "adamw", lr=1e-3, weight_decay=1e-4,
                                       no_decay=["bias", "bn", "ln"])
    decay, plain = opt.param_groups
    assert decay["param_names"] == ["fc.weight", "head.weight"]
    assert plain["param_names"] == ["fc.bias", "bn.weight", "bn.bias", "head.bias"]
    assert (decay["weight_decay"], plain["weight_decay"]) == (1e-4, 0.0)
    assert decay["lr"] == plain["lr"] == 1e-3
    assert decay["params"] == [m.fc.weight, m.head.weight]


def test_no_decay_parameters_do_not_decay():
    m = model()
    opt = create_optimizer_with_groups(m, "adamw", lr=0.1, weight_decay=0.5)
    for p in m.parameters():
        p.grad = na.Tensor(np.zeros_like(p.data))
    bias, weight = m.fc.bias.data.copy(), m.fc.weight.data.copy()
    opt.step()
    np.testing.assert_array_equal(m.fc.bias.data, bias)               # weight_decay 0
    np.testing.assert_allclose(m.fc.weight.data, weight * (1 - 0.1 * 0.5))


def test_groups_with_one_side_empty_and_a_single_string():
    m = model()
    opt = create_optimizer_with_groups(m, "sgd", lr=0.1, weight_decay=0.1, no_decay="zzz")
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 0.1
    opt = create_optimizer_with_groups(m, "sgd", lr=0.1, weight_decay=0.1, no_decay=["."])
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 0.0


@pytest.mark.parametrize("args, kwargs, match", [
    (("rprop",), {}, "has no weight_decay"),
    (("sgd",), {"no_decay": [3]}, "no_decay must be a list"),
    (("sgd",), {"momentum": "x"}, "'momentum' must be a number"),
])
def test_grouping_errors(args, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        create_optimizer_with_groups(model(), *args, **kwargs)


def test_grouping_needs_names():
    with pytest.raises(ConfigError, match="with their names"):
        create_optimizer_with_groups(list(model().parameters()), "sgd")


# ---- create_scheduler ------------------------------------------------------------------------

def sgd(lr=0.1, momentum=0.9):
    return create_optimizer(model().parameters(), "sgd", lr=lr, momentum=momentum)


@pytest.mark.parametrize("name, kwargs, attrs", [
    ("cosine", dict(epochs=100, eta_min=1e-7), dict(T_max=100, eta_min=1e-7)),
    ("cosine", dict(epochs=10, steps_per_epoch=5), dict(T_max=50)),
    ("cosine", dict(T_max=7, epochs=100), dict(T_max=7)),
    ("cosine", dict(t_max=7), dict(T_max=7)),
    ("cosine_warm_restarts", dict(epochs=100, T_0=25, T_mult=2, eta_min=1e-7),
     dict(T_0=25, T_mult=2)),
    ("cosine_warm_restarts", dict(epochs=30), dict(T_0=30, T_mult=1)),
    ("onecycle", dict(epochs=100, max_lr=1e-3, steps_per_epoch=100, pct_start=0.3),
     dict(total_steps=10000)),
    ("warmup_cosine", dict(warmup_epochs=10, max_epochs=100, eta_min=1e-6),
     dict(warmup_epochs=10, max_epochs=100, eta_min=1e-6)),
    ("warmup_cosine", dict(warmup_epochs=2, epochs=20), dict(max_epochs=20)),
    ("linear", dict(epochs=8, start_factor=0.5), dict(total_iters=8)),
    ("polynomial", dict(epochs=8, power=2.0), dict(total_iters=8, power=2.0)),
    ("step", dict(step_size=3, gamma=0.5, epochs=10), dict(step_size=3, gamma=0.5)),
    ("exponential", dict(gamma=0.9), dict(gamma=0.9)),
    ("constant", dict(), dict(factor=1.0 / 3, total_iters=5)),
    ("plateau", dict(mode="max", factor=0.5, patience=10, threshold=1e-4),
     dict(mode="max", factor=0.5, patience=10)),
])
def test_create_scheduler(name, kwargs, attrs):
    sched = create_scheduler(sgd(), scheduler_name=name, **kwargs)
    assert type(sched) is optim.get_scheduler_class(name)
    for key, value in attrs.items():
        assert getattr(sched, key) == pytest.approx(value), key


def test_onecycle_without_max_lr_peaks_at_the_optimizer_lr():
    opt = sgd(lr=0.2)
    sched = create_scheduler(opt, "onecycle", total_steps=10, pct_start=0.5)
    peaks = []
    for _ in range(9):
        opt.step()
        sched.step()
        peaks.append(opt.param_groups[0]["lr"])
    assert max(peaks) == pytest.approx(0.2)


def test_scheduler_type_spelling_and_none():
    opt = sgd()
    assert type(create_scheduler(optimizer=opt, scheduler_type="plateau")) is \
        optim.ReduceLROnPlateau
    assert create_scheduler(opt, "none") is None
    with pytest.raises(ConfigError, match="no scheduler was named"):
        create_scheduler(opt, "none", gamma=0.1)


@pytest.mark.parametrize("name, kwargs, match", [
    ("cosine", {}, "needs 'T_max', or the training length"),
    ("onecycle", {"max_lr": 0.1}, "needs 'total_steps'"),
    ("step", {}, "needs 'step_size'"),
    ("cosine", {"epochs": 10, "tmax": 3}, "unknown key 'tmax'.*valid keys: T_max, epochs"),
    ("cosine", {"epochs": 10, "T_max": 3, "t_max": 4}, "given twice"),
    ("cosine", {"epochs": 0}, "'epochs' must be a positive integer"),
    ("cosine", {"epochs": 2.5}, "'epochs' must be a positive integer"),
    ("step", {"step_size": 2, "gamma": "half"}, "'gamma' must be a number"),
    ("plateau", {"mode": 1}, "'mode' must be a string"),
    ("plateau", {"mode": "up"}, "unknown mode 'up'"),
    ("cosine", {"T_max": 2.0}, "T_max must be an integer"),
    ("cyclic", {"base_lr": 0.1}, "needs 'max_lr'"),
])
def test_create_scheduler_errors(name, kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        create_scheduler(sgd(), name, **kwargs)


def test_sequential_and_chained_from_configs():
    opt = sgd(lr=1.0)
    sched = create_scheduler(opt, "sequential", milestones=[2], schedulers=[
        {"type": "linear", "start_factor": 0.5, "total_iters": 2},
        {"type": "exponential", "gamma": 0.5}])
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5, 0.75, 1.0, 0.5, 0.25])
    opt = sgd(lr=1.0)
    chained = create_scheduler(opt, "chained", schedulers=[
        {"type": "step", "step_size": 1, "gamma": 0.5}, {"type": "exponential", "gamma": 0.5}])
    opt.step()
    chained.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25)
    with pytest.raises(ConfigError, match=r"schedulers\[0\] must be a dict with a 'type'"):
        create_scheduler(sgd(), "chained", schedulers=[{"gamma": 0.5}])


# ---- create_optimizer_and_scheduler ----------------------------------------------------------

def test_keywords_are_shared_out_between_optimizer_and_scheduler():
    opt, sched = create_optimizer_and_scheduler(
        model().parameters(), optimizer_name="adamw", lr=1e-4, weight_decay=1e-4,
        scheduler_name="cosine_warm_restarts", epochs=100, T_0=25, T_mult=2, eta_min=1e-7)
    assert type(opt) is optim.AdamW and opt.param_groups[0]["weight_decay"] == 1e-4
    assert (sched.T_0, sched.T_mult, sched.eta_min) == (25, 2, 1e-7)
    assert sched.optimizer is opt


def test_second_spelling_and_no_scheduler():
    m = model()
    opt, sched = create_optimizer_and_scheduler(model=m, optimizer_type="sgd",
                                                learning_rate=0.1, momentum=0.5)
    assert sched is None and opt.param_groups[0]["momentum"] == 0.5
    opt, sched = create_optimizer_and_scheduler(model=m, optimizer_type="sgd",
                                                scheduler_type="step", step_size=2)
    assert type(sched) is optim.StepLR


def test_a_key_both_take_or_neither_takes_is_an_error():
    m = model()
    with pytest.raises(ConfigError, match="'eps' is an argument of both"):
        create_optimizer_and_scheduler(m.parameters(), optimizer_name="adam",
                                       scheduler_name="plateau", eps=1e-8)
    with pytest.raises(ConfigError, match="unknown key 'gama'; the optimizer takes .*; the "
                                          "scheduler takes .*gamma"):
        create_optimizer_and_scheduler(m.parameters(), optimizer_name="sgd",
                                       scheduler_name="step", step_size=2, gama=0.1)


def test_a_wrapper_setting_that_is_not_per_group_is_refused_in_a_group():
    m = model()
    with pytest.raises(ConfigError, match="'k' is one setting of the Lookahead"):
        create_optimizer(m, "lookahead", base_optimizer="sgd", param_groups=[
            {"params": ["fc.weight", "fc.bias", "bn.weight", "bn.bias"]},
            {"params": ["head.weight", "head.bias"], "k": 3}])
    opt = create_optimizer(m, "sam", param_groups=[
        {"params": ["fc.weight", "fc.bias", "bn.weight", "bn.bias"]},
        {"params": ["head.weight", "head.bias"], "rho": 0.5, "lr": 0.01}])
    assert [(g["rho"], g["lr"]) for g in opt.param_groups] == [(0.05, 1e-3), (0.5, 0.01)]
