"""Configs: config -> object -> config round trips, the config forms, YAML files.

Every registered optimizer and scheduler is built from a config with non-default
values, its config is read back (:func:`get_config`), and an object built from
that config must be equal: same class, hyper-parameters and groups, and the same
updates / learning rates when both are driven the same way.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import yaml

import neural_arch as na
import neural_arch.optim as optim
from neural_arch.optim import (ConfigError, OptimizerFactory, build_optimizer, build_scheduler,
                               create_optimizer, create_scheduler, get_config, load_config,
                               save_config)
from neural_arch.optim.gradient_free import GradientFreeOptimizer

CONFIGS = pathlib.Path(__file__).parent / "configs"


class Net(na.nn.Module):
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


RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 4))
Y = RNG.standard_normal((6, 2))


def loss_of(m, k=0):
    """Task ``k``'s loss (the tasks differ by their target)."""
    return na.mse_loss(m(na.Tensor(X)), na.Tensor(Y * (1 + k)))


def drive(opt, m, steps=2):
    """Take ``steps`` updates the way the optimizer's kind wants them."""
    for _ in range(steps):
        if isinstance(opt, (optim.PCGrad, optim.GradNorm)):
            opt.zero_grad()
            opt.step([loss_of(m, k) for k in range(opt.num_tasks or 2)]
                     if isinstance(opt, optim.GradNorm) else [loss_of(m, 0), loss_of(m, 1)])
        elif isinstance(opt, GradientFreeOptimizer):
            opt.step(lambda: loss_of(m))
        elif isinstance(opt, (optim.LBFGS, optim.SAM)):
            def closure():
                opt.zero_grad()
                loss = loss_of(m)
                loss.backward()
                return loss
            opt.step(closure)
        else:
            opt.zero_grad()
            loss_of(m).backward()
            opt.step()


def assert_same_optimizer(a, b):
    assert type(a) is type(b)
    assert a.defaults == b.defaults
    assert a.max_grad_norm == b.max_grad_norm
    assert len(a.param_groups) == len(b.param_groups)
    for ga, gb in zip(a.param_groups, b.param_groups):
        assert len(ga["params"]) == len(gb["params"])
        assert {k: v for k, v in ga.items() if k != "params"} == \
            {k: v for k, v in gb.items() if k != "params"}
    if hasattr(a, "base_optimizer"):
        assert_same_optimizer(a.base_optimizer, b.base_optimizer)
        for key in ("k", "alpha", "reduction", "seed", "num_tasks", "weight_lr", "use_amp",
                    "zero_stage"):
            assert getattr(a, key, None) == getattr(b, key, None), key
    if isinstance(a, GradientFreeOptimizer):
        assert a._hyper == b._hyper and a.seed == b.seed


# Non-default values for every registered optimizer.
OPTIMIZERS = {
    "sgd": dict(lr=0.05, momentum=0.8, dampening=0.1, weight_decay=1e-3, maximize=True),
    "adam": dict(lr=3e-3, betas=(0.8, 0.95), eps=1e-6, weight_decay=1e-2, amsgrad=True),
    "adamw": dict(lr=2e-3, weight_decay=0.05, contiguous=True),
    "adamax": dict(lr=1e-2, betas=(0.7, 0.9)),
    "nadam": dict(momentum_decay=5e-3, decoupled_weight_decay=True, weight_decay=0.01),
    "radam": dict(decoupled_weight_decay=True, weight_decay=0.1),
    "lion": dict(lr=3e-4, betas=(0.95, 0.98), weight_decay=0.1),
    "lamb": dict(eps=1e-7, bias_correction=False, max_grad_norm=0.5),
    "lars": dict(momentum=0.5, trust_coefficient=0.01, exclude_1d=False),
    "rmsprop": dict(alpha=0.9, centered=True, momentum=0.5),
    "adagrad": dict(lr_decay=1e-3, initial_accumulator_value=0.1),
    "adadelta": dict(rho=0.95, lr=0.5),
    "rprop": dict(etas=(0.4, 1.3), step_sizes=(1e-5, 10.0)),
    "asgd": dict(lambd=1e-3, alpha=0.5, t0=100.0),
    "lbfgs": dict(lr=0.5, max_iter=5, history_size=7, line_search_fn="strong_wolfe"),
    "shampoo": dict(lr=0.05, momentum=0.5, update_freq=2, max_precond_dim=3),
    "sam": dict(rho=0.1, adaptive=True, base_optimizer="adam", lr=1e-3),
    "asam": dict(rho=0.3, eta=0.05, lr=0.2, momentum=0.9),
    "lookahead": dict(base_optimizer={"type": "radam", "lr": 1e-3}, k=3, alpha=0.7),
    "pcgrad": dict(reduction="mean", seed=7, lr=1e-2),
    "gradnorm": dict(alpha=0.5, num_tasks=3, shared_parameters=["fc.weight", "fc.bias"],
                     weight_lr=0.1, weight_optimizer="sgd", lr=1e-2),
    "cmaes": dict(population_size=8, sigma=0.3, max_generations=50, seed=1),
    "differential_evolution": dict(population_size=10, mutation_factor=0.6,
                                   strategy="rand1bin", seed=2),
    "particle_swarm": dict(swarm_size=7, topology="ring", seed=3),
    "mixed_precision": dict(base_optimizer="sgd", lr=0.1, use_amp=False, init_scale=1024.0,
                            growth_interval=10),
    "distributed": dict(base_optimizer="adam", lr=1e-2, zero_stage=1, bucket_cap_mb=1.0),
}


def test_every_registered_optimizer_has_a_round_trip_case():
    assert set(OPTIMIZERS) == set(optim.available_optimizers())


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_config_round_trip(name, tmp_path):
    m1, m2 = model(), model()
    opt = create_optimizer(model=m1, optimizer_name=name, **OPTIMIZERS[name])
    config = get_config(opt)
    assert config["type"] == name
    assert json.loads(json.dumps(config)) == config            # plain data
    again = build_optimizer(m2, config)
    assert_same_optimizer(opt, again)
    assert get_config(again) == config                          # config -> object -> config
    save_config(config, tmp_path / "opt.yaml")
    assert load_config(tmp_path / "opt.yaml") == config
    drive(opt, m1)
    drive(again, m2)
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    assert get_config(opt) == config                            # training does not change it


@pytest.mark.parametrize("cls, kwargs", [
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (optim.Adam, dict(lr=1e-2, betas=(0.5, 0.6))),
    (optim.RMSprop, dict(lr=1e-2, centered=True)),
    (optim.Rprop, dict(etas=(0.3, 1.5))),
])
def test_config_of_an_optimizer_built_by_hand(cls, kwargs):
    m = model()
    hand = cls(m.parameters(), **kwargs)
    config = get_config(hand)
    assert config == get_config(create_optimizer(m.parameters(), cls.__name__, **kwargs))
    assert_same_optimizer(hand, build_optimizer(model().parameters(), config))


def test_groups_and_schedules_round_trip():
    m = model()
    opt = create_optimizer(
        m, "adamw", lr={"type": "cosine_decay", "learning_rate": 0.1, "decay_steps": 50},
        param_groups=[{"params": ["fc.weight", "bn.weight", "head.weight"], "betas": [0.5, 0.9]},
                      {"params": ["fc.bias", "bn.bias", "head.bias"], "weight_decay": 0.0,
                       "lr": 0.01}],
        gradient_clipping={"clip_value": 1.0, "max_norm": 2.0})
    config = get_config(opt)
    assert config["lr"] == {"type": "cosine_decay", "learning_rate": 0.1, "decay_steps": 50,
                            "alpha": 1e-4}
    assert config["param_groups"] == [
        {"params": ["fc.weight", "bn.weight", "head.weight"], "betas": [0.5, 0.9]},
        {"params": ["fc.bias", "bn.bias", "head.bias"], "lr": 0.01, "weight_decay": 0.0}]
    assert config["gradient_clipping"]["clip_value"] == 1.0
    again = build_optimizer(model(), config)
    assert_same_optimizer(opt, again)
    assert get_config(again) == config


def test_groups_by_position_when_the_parameters_have_no_names():
    m = model()
    params = list(m.parameters())
    opt = optim.SGD([{"params": params[:2]}, {"params": params[2:], "momentum": 0.5}], lr=0.1)
    config = get_config(opt)
    assert config["param_groups"] == [{"params": [0, 1]},
                                      {"params": [2, 3, 4, 5], "momentum": 0.5}]
    assert_same_optimizer(opt, build_optimizer(params, config))
    with pytest.raises(ConfigError, match="position 9 is out of range"):
        build_optimizer(params, {**config, "param_groups": [{"params": [9]}]})
    with pytest.raises(ConfigError, match="leave 4 parameter"):
        build_optimizer(params, {**config, "param_groups": [{"params": [0, 1]}]})
    with pytest.raises(ConfigError, match="repeats a parameter"):
        build_optimizer(params, {**config, "param_groups": [{"params": [0, 1]},
                                                            {"params": [1, 2, 3, 4, 5]}]})
    with pytest.raises(ConfigError, match="pass the model"):
        build_optimizer(params, {"type": "sgd", "param_groups": [{"params": ["fc.weight"]}]})


def test_a_wrapper_with_per_group_settings_round_trips():
    m = model()
    opt = build_optimizer(m, load_config(CONFIGS / "sam_groups.yaml")["optimizer"]
                          | {"gradient_clipping": {"clipvalue": 0.5}})
    assert [g["rho"] for g in opt.param_groups] == [0.1, 0.2]
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-4, 0.0]
    config = get_config(opt)
    assert config["param_groups"][1] == {"params": ["fc.bias", "bn.bias", "head.bias"],
                                         "weight_decay": 0.0, "rho": 0.2}
    again = build_optimizer(model(), config)
    assert_same_optimizer(opt, again)
    assert get_config(again) == config


def test_the_config_is_the_recipe_even_after_a_scheduler_moved_lr_and_momentum():
    m = model()
    opt = create_optimizer(m, "adam", lr=0.01)
    config = get_config(opt)
    sched = create_scheduler(opt, "onecycle", total_steps=10)
    for _ in range(3):
        drive(opt, m, 1)
        sched.step()
    assert opt.param_groups[0]["betas"][0] != 0.9
    assert get_config(opt) == config


# Non-default values for every registered scheduler.
SCHEDULERS = {
    "step": dict(step_size=3, gamma=0.5),
    "multistep": dict(milestones=[2, 5, 5], gamma=0.3),
    "exponential": dict(gamma=0.9),
    "cosine": dict(T_max=10, eta_min=1e-3),
    "cosine_warm_restarts": dict(T_0=3, T_mult=2, eta_min=1e-4),
    "onecycle": dict(max_lr=0.5, total_steps=20, pct_start=0.25, anneal_strategy="linear",
                     three_phase=True, div_factor=10.0),
    "plateau": dict(mode="max", factor=0.5, patience=1, threshold=0.01, threshold_mode="abs",
                    cooldown=1, min_lr=1e-3),
    "warmup_cosine": dict(warmup_epochs=3, max_epochs=12, eta_min=1e-3, warmup_start_lr=1e-2),
    "linear": dict(start_factor=0.2, end_factor=0.9, total_iters=6),
    "polynomial": dict(total_iters=8, power=2.0),
    "constant": dict(factor=0.5, total_iters=3),
    "cyclic": dict(base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=5,
                   mode="triangular2"),
    "sequential": dict(milestones=[3], schedulers=[
        {"type": "linear", "start_factor": 0.1, "total_iters": 3},
        {"type": "cosine", "T_max": 10}]),
    "chained": dict(schedulers=[{"type": "constant", "factor": 0.5, "total_iters": 2},
                                {"type": "exponential", "gamma": 0.9}]),
}


def test_every_registered_scheduler_has_a_round_trip_case():
    assert set(SCHEDULERS) == set(optim.available_schedulers())


def run(sched, opt, steps=16):
    """The lr before each of ``steps`` epochs (plateau fed a fixed metric sequence)."""
    lrs, metrics = [], [1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0] * 2
    for i in range(steps):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        if isinstance(sched, optim.ReduceLROnPlateau):
            sched.step(metrics[i])
        else:
            sched.step()
    return lrs


def sgd(momentum=0.9):
    return optim.SGD(model().parameters(), lr=0.1, momentum=momentum)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_config_round_trip(name, tmp_path):
    opt1, opt2 = sgd(), sgd()
    sched = create_scheduler(opt1, name, **SCHEDULERS[name])
    config = get_config(sched)
    assert config["type"] == name
    assert json.loads(json.dumps(config)) == config
    again = build_scheduler(opt2, config)
    assert type(again) is type(sched)
    assert get_config(again) == config
    assert again.state_dict() == sched.state_dict()
    assert run(again, opt2) == run(sched, opt1)
    assert again.state_dict() == sched.state_dict()
    save_config(config, tmp_path / "s.yaml")
    assert load_config(tmp_path / "s.yaml") == config


@pytest.mark.parametrize("make", [
    lambda o: optim.StepLR(o, 2, gamma=0.7),
    lambda o: optim.MultiStepLR(o, [1, 3], gamma=0.5),
    lambda o: optim.CosineAnnealingWarmRestarts(o, 2, T_mult=3, eta_min=0.01),
    lambda o: optim.ReduceLROnPlateau(o, mode="max", patience=0, min_lr=[0.05]),
    lambda o: optim.CyclicLR(o, 0.01, 0.2, step_size_up=3, step_size_down=4, mode="exp_range",
                             gamma=0.9, base_momentum=0.7),
    lambda o: optim.WarmupCosineLR(o, 2, 9, eta_min=0.001),
    lambda o: optim.SequentialLR(o, [optim.ConstantLR(o, 0.5, 2), optim.ExponentialLR(o, 0.8)],
                                 milestones=[2]),
])
def test_config_of_a_scheduler_built_by_hand(make):
    opt1, opt2 = sgd(), sgd()
    hand = make(opt1)
    again = build_scheduler(opt2, get_config(hand))
    assert type(again) is type(hand)
    assert run(again, opt2) == run(hand, opt1)


def test_a_scheduler_whose_arguments_are_not_kept_has_no_config_unless_the_factory_built_it():
    with pytest.raises(ConfigError, match="cannot all be read off"):
        get_config(optim.OneCycleLR(sgd(), max_lr=0.1, total_steps=10))
    with pytest.raises(ConfigError, match="function"):
        get_config(optim.CyclicLR(sgd(), 0.01, 0.1, scale_fn=lambda x: 1.0))
    built = create_scheduler(sgd(), "cyclic", base_lr=0.01, max_lr=0.1, scale_fn=lambda x: 1.0)
    with pytest.raises(ConfigError, match="function"):
        get_config(built)
    with pytest.raises(ConfigError, match="get_config expects"):
        get_config(3)


def test_schedule_and_clipper_configs():
    schedule = optim.learning_rate_schedule_builder({"type": "exponential_decay",
                                                     "learning_rate": 1.0, "decay_steps": 2,
                                                     "decay_rate": 0.5})
    assert get_config(schedule) == schedule.to_config()
    clipper = optim.GradientClipper(max_norm=1.0, adaptive=True)
    assert optim.GradientClipper(**get_config(clipper)).to_config() == clipper.to_config()


# ---- the config forms ------------------------------------------------------------------------

FORMS = {
    "nested": {"optimizer": {"type": "adamw", "learning_rate": 1e-4, "weight_decay": 1e-4},
               "scheduler": {"type": "cosine", "eta_min": 1e-7},
               "gradient_clipping": {"enabled": True, "max_norm": 1.0}, "epochs": 10},
    "flat": {"training": {"optimizer": "adamw", "scheduler": "cosine", "learning_rate": 1e-4,
                          "weight_decay": 1e-4, "eta_min": 1e-7, "epochs": 10,
                          "gradient_clipping": {"max_norm": 1.0}, "amp": False}},
    "flat section": {"optimizer": "adamw", "scheduler": "cosine", "lr": 1e-4,
                     "weight_decay": 1e-4, "eta_min": 1e-7, "epochs": 10,
                     "gradient_clipping": {"max_norm": 1.0}},
    "keywords": {"optimizer_name": "adamw", "lr": 1e-4, "weight_decay": 1e-4,
                 "scheduler_name": "cosine", "epochs": 10, "eta_min": 1e-7,
                 "gradient_clipping": {"max_norm": 1.0}},
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_config_form_builds_the_same_pair(form):
    factory = OptimizerFactory()
    opt, sched = factory.create_optimizer_and_scheduler(model=model(), config=FORMS[form])
    assert get_config(opt) == {
        "type": "adamw", "lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-4,
        "amsgrad": False, "maximize": False, "fused": None,
        "gradient_clipping": optim.GradientClipper(max_norm=1.0).to_config()}
    assert get_config(sched) == {"type": "cosine", "T_max": 10, "eta_min": 1e-7}
    nested = OptimizerFactory.get_config(opt, sched)
    opt2, sched2 = factory.create_optimizer_and_scheduler(model=model(), config=nested)
    assert OptimizerFactory.get_config(opt2, sched2) == nested


def test_an_optimizer_section_alone_and_the_factory_default_config():
    factory = OptimizerFactory(config={"type": "sgd", "lr": 0.3}, epochs=5)
    assert factory.create_optimizer(model()).param_groups[0]["lr"] == 0.3
    opt, sched = factory.create_optimizer_and_scheduler(model())
    assert sched is None
    assert factory.create_scheduler(opt, {"optimizer": {"type": "sgd"},
                                          "scheduler": {"type": "linear"}}).total_iters == 5
    assert factory.create_scheduler(opt, {"optimizer": {"type": "sgd"},
                                          "scheduler": "cosine"}).T_max == 5
    with pytest.raises(ConfigError, match="needs a config"):
        OptimizerFactory().create_optimizer(model())


def test_epochs_from_the_config_the_factory_or_the_call():
    config = {"optimizer": {"type": "sgd"}, "scheduler": {"type": "cosine"}}
    factory = OptimizerFactory(epochs=7)
    assert factory.create_optimizer_and_scheduler(model(), config)[1].T_max == 7
    assert factory.create_optimizer_and_scheduler(model(), config, epochs=3)[1].T_max == 3
    assert OptimizerFactory().create_optimizer_and_scheduler(
        model(), {**config, "epochs": 4, "steps_per_epoch": 5})[1].T_max == 20
    with pytest.raises(ConfigError, match="epochs=4 in the config but 3"):
        OptimizerFactory().create_optimizer_and_scheduler(model(), {**config, "epochs": 4},
                                                          epochs=3)
    with pytest.raises(ConfigError, match="needs 'T_max', or the training length"):
        OptimizerFactory().create_optimizer_and_scheduler(model(), config)


@pytest.mark.parametrize("config, match", [
    ({"optimizer": {"type": "sgd"}, "schedular": {}}, "unknown key 'schedular'"),
    ({"optimizer": {"lr": 0.1}}, "needs a 'type'"),
    ({"optimizer": {"type": "sgd"}, "scheduler": {"T_max": 3}}, "'scheduler' section needs"),
    ({"optimizer": {"type": "sgd", "gradient_clipping": {"max_norm": 1.0}},
      "gradient_clipping": {"max_norm": 1.0}}, "give it once"),
    ({"training": {"optimizer": "sgd"}, "model": {}}, "unknown top-level key 'model'"),
    ({"training": {"optimizer": "sgd", "amp": "yes"}}, "'amp' must be true or false"),
    ({"training": {"scheduler": "cosine"}}, "needs 'optimizer'"),
    ({"training": {"optimizer": "sgd", "lr": 0.1, "learning_rate": 0.1}}, "two spellings"),
    ({"foo": 1}, "cannot tell the form"),
    ({"optimizer": "sgd", "scheduler": "step", "step_size": 2, "gama": 1},
     "unknown key 'gama'.*the flat form also takes"),
    ([("type", "sgd")], "must be a dict"),
])
def test_bad_configs_name_the_key(config, match):
    with pytest.raises(ConfigError, match=match):
        OptimizerFactory().create_optimizer(model(), config)


def test_exponent_strings_from_a_plain_safe_load_are_numbers_but_other_strings_are_not():
    text = (CONFIGS / "seed001_nested.yaml").read_text()
    raw = yaml.safe_load(text)
    assert raw["optimizer"]["learning_rate"] == "1e-4"            # YAML 1.1's reading
    opt = OptimizerFactory().create_optimizer(model(), raw)
    assert opt.param_groups[0]["lr"] == 1e-4 and opt.param_groups[0]["eps"] == 1e-8
    with pytest.raises(ConfigError, match="'learning_rate' must be a number, got '0.001'"):
        build_optimizer(model(), {"type": "sgd", "learning_rate": "0.001"})


# ---- YAML files ------------------------------------------------------------------------------

def test_the_seed_yaml_files_load_as_numbers_and_build():
    nested = load_config(CONFIGS / "seed001_nested.yaml")
    assert nested["optimizer"]["learning_rate"] == 1e-4
    assert nested["scheduler"]["eta_min"] == 1e-6
    opt, sched = OptimizerFactory().create_optimizer_and_scheduler(model(), nested)
    assert type(opt) is optim.AdamW and sched.T_max == 100
    flat = load_config(CONFIGS / "seed001_flat.yaml")
    opt, sched = OptimizerFactory(epochs=100).create_optimizer_and_scheduler(model(), flat)
    assert opt.max_grad_norm == 1.0 and (sched.T_max, sched.eta_min) == (100, 1e-7)


def test_a_run_file_with_a_one_cycle_over_epochs_of_steps():
    opt, sched = OptimizerFactory().create_optimizer_and_scheduler(
        model(), load_config(CONFIGS / "cosine_run.yaml"))
    assert sched.total_steps == 100 and opt.max_grad_norm == 1.0
    lrs = run(sched, opt, 100)
    assert max(lr[0] for lr in lrs) == pytest.approx(3e-3)


@pytest.mark.parametrize("name, match", [
    ("bad_optimizer_key", "unknown key 'weight_decai' for optimizer 'adamw'; valid keys: "
                          "amsgrad, beta1"),
    ("bad_optimizer_type", "'learning_rate' must be a number, got 'fast'"),
    ("bad_betas_type", "'betas' must be a list"),
    ("bad_scheduler_key", "unknown key 'eta_mim' for scheduler 'cosine'; valid keys: T_max"),
    ("bad_scheduler_type", "'patience' must be a number, got 'ten'"),
    ("bad_clipping_key", "gradient_clipping: unknown key 'max_nrom'; valid keys: "),
    ("bad_top_level_key", "unknown key 'schedular' for the nested config; valid keys: "
                          "epochs, gradient_clipping, optimizer"),
    ("bad_flat_key", "unknown key 'batch_sise'"),
    ("bad_optimizer_name", "unknown optimizer 'adamx'; known optimizers: adadelta"),
])
def test_a_bad_yaml_file_is_refused_naming_the_key(name, match):
    path = CONFIGS / f"{name}.yaml"
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert str(path) in str(info.value)
    raw = load_config(path, check=False)
    with pytest.raises(ConfigError, match=match):
        OptimizerFactory(epochs=3).create_optimizer_and_scheduler(model(), raw)


def test_load_config_refuses_what_is_not_a_mapping_or_not_yaml(tmp_path):
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("optimizer: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "broken.yaml")
    (tmp_path / "code.yaml").write_text("optimizer: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "code.yaml")


def test_a_nested_config_survives_a_yaml_file(tmp_path):
    factory = OptimizerFactory()
    opt, sched = factory.create_optimizer_and_scheduler(
        model(), {"optimizer": {"type": "lookahead", "base_optimizer": "nadam", "lr": 1e-3,
                                "k": 4},
                  "scheduler": {"type": "warmup_cosine", "warmup_epochs": 2, "max_epochs": 9}})
    nested = factory.get_config(opt, sched)
    save_config(nested, tmp_path / "run.yaml")
    opt2, sched2 = factory.create_optimizer_and_scheduler(model(),
                                                          load_config(tmp_path / "run.yaml"))
    assert factory.get_config(opt2, sched2) == nested
    assert_same_optimizer(opt, opt2)
