"""Seed 002 (optimization module guide): its optimizer_builder code, run.

Every block of the guide that builds an optimizer runs as written, with
``neural_arch.optim`` in place of ``dl_techniques.optimization`` and a small
model in place of the user's. Keras's ``model.compile``/``fit`` become a short
loop; its ``tape.gradient`` + ``optimizer.apply_gradients`` become
``na.autograd.grad`` + the same ``apply_gradients``: ``optimizer_builder``
returns an optimizer that, like Keras's, is built on the parameters it first
receives. The schedule and deep-supervision blocks are run by
``test_seed002_schedules.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import (ConfigError, DeferredOptimizer, create_optimizer,
                               deep_supervision_schedule_builder, get_config,
                               learning_rate_schedule_builder, optimizer_builder)


class Classifier(na.nn.Module):
    """Stands in for the guide's ``keras.Sequential`` of Dense layers."""

    def __init__(self):
        super().__init__()
        self.hidden = na.Linear(6, 8)
        self.out = na.Linear(8, 3)

    def forward(self, x):
        return self.out(na.relu(self.hidden(x)))


def make_model():
    na.manual_seed(0)
    return Classifier().double()


def batches(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(na.Tensor(rng.standard_normal((8, 6))), rng.integers(0, 3, 8)) for _ in range(n)]


def fit(model, optimizer, steps=6):
    """Keras's ``model.fit``: gradients of each batch handed to ``apply_gradients``."""
    params = list(model.parameters())
    losses = []
    for x, labels in batches(steps):
        loss = na.cross_entropy_loss(model(x), labels)
        gradients = na.autograd.grad(loss, params)
        optimizer.apply_gradients(zip(gradients, params))
        losses.append(float(loss.data))
    return losses


# ---- Quick Start -----------------------------------------------------------------------------

def test_quick_start():
    # 1. Configure learning rate schedule with warmup
    lr_config = {
        "type": "cosine_decay",
        "warmup_steps": 1000,
        "warmup_start_lr": 1e-8,
        "learning_rate": 0.001,
        "decay_steps": 10000,
        "alpha": 0.0001
    }

    # 2. Configure optimizer
    optimizer_config = {
        "type": "adam",
        "beta_1": 0.9,
        "beta_2": 0.999,
        "gradient_clipping_by_norm": 1.0
    }

    # 3. Build components
    lr_schedule = learning_rate_schedule_builder(lr_config)
    optimizer = optimizer_builder(optimizer_config, lr_schedule)

    # 4. Use with your model
    model = make_model()
    assert isinstance(optimizer, DeferredOptimizer) and not optimizer.built
    fit(model, optimizer, 3)
    assert type(optimizer.optimizer) is na.optim.Adam and optimizer.step_count == 3
    g = optimizer.param_groups[0]
    assert g["betas"] == (0.9, 0.999) and g["eps"] == 1e-7            # Keras's epsilon
    assert optimizer.lr == pytest.approx(lr_schedule(3))
    assert get_config(optimizer.optimizer)["gradient_clipping"]["max_norm"] == 1.0


# ---- Optimizer Builder -----------------------------------------------------------------------

def test_minimal_and_full_configuration():
    lr_schedule = learning_rate_schedule_builder({"type": "cosine_decay", "learning_rate": 1e-3,
                                                  "decay_steps": 100})
    # Minimal configuration (uses defaults)
    config = {
        "type": "adam"
    }
    optimizer = optimizer_builder(config, learning_rate=0.001)
    assert optimizer.to_config() == {
        "type": "adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999,
        "epsilon": 1e-7, "weight_decay": 0.0, "amsgrad": False, "maximize": False,
        "fused": None}

    # Full configuration
    config = {
        "type": "adam",
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
        "gradient_clipping_by_value": 0.5,
        "gradient_clipping_by_norm_local": 1.0,
        "gradient_clipping_by_norm": 1.0
    }
    optimizer = optimizer_builder(config, lr_schedule)
    exported = optimizer.to_config()
    for key in ("gradient_clipping_by_value", "gradient_clipping_by_norm_local",
                "gradient_clipping_by_norm"):
        assert exported[key] == config[key]
    assert optimizer_builder(exported).to_config() == exported       # config -> object -> config
    fit(make_model(), optimizer, 2)


def test_optimizer_specific_parameters():
    adam_config = {
        "type": "adam",  # or "adamw"
        "beta_1": 0.9,          # First moment decay rate
        "beta_2": 0.999,        # Second moment decay rate
        "epsilon": 1e-7,        # Numerical stability constant
        "amsgrad": False        # Use AMSGrad variant
    }
    rmsprop_config = {
        "type": "rmsprop",
        "rho": 0.9,             # Decay factor for moving average
        "momentum": 0.0,        # Momentum factor
        "epsilon": 1e-7,        # Numerical stability constant
        "centered": False       # Use centered RMSprop
    }
    adadelta_config = {
        "type": "adadelta",
        "rho": 0.9,             # Decay rate for gradient accumulation
        "epsilon": 1e-7         # Numerical stability constant
    }
    model = make_model()
    adam = optimizer_builder(adam_config, 1e-3, params=model.parameters())
    rmsprop = optimizer_builder(rmsprop_config, 1e-3, params=model.parameters())
    adadelta = optimizer_builder(adadelta_config, 1.0, params=model.parameters())
    assert type(adam) is na.optim.Adam and adam.param_groups[0]["amsgrad"] is False
    g = rmsprop.param_groups[0]
    assert type(rmsprop) is na.optim.RMSprop
    assert (g["alpha"], g["momentum"], g["eps"], g["centered"]) == (0.9, 0.0, 1e-7, False)
    g = adadelta.param_groups[0]
    assert type(adadelta) is na.optim.Adadelta and (g["rho"], g["eps"]) == (0.9, 1e-7)


def test_gradient_clipping_options_apply_in_a_fixed_order():
    config = {
        "type": "adam",
        # Clip gradients by absolute value (clips to [-0.5, 0.5])
        "gradient_clipping_by_value": 0.5,

        # Clip gradients by L2 norm per variable
        "gradient_clipping_by_norm_local": 1.0,

        # Clip gradients by global L2 norm
        "gradient_clipping_by_norm": 1.0
    }
    optimizer_builder(config, 1e-3)
    # The order shows on an SGD step of lr 1: value first, then the norms.
    w = na.Parameter(np.zeros(2))
    v = na.Parameter(np.zeros(2))
    sgd = optimizer_builder({"type": "sgd", "gradient_clipping_by_value": 1.0,
                             "gradient_clipping_by_norm_local": 1.0,
                             "gradient_clipping_by_norm": 0.5}, 1.0, params=[w, v])
    w.grad = na.Tensor(np.array([3.0, 4.0]))       # by value: [1, 1]; local norm: [1, 1]/√2
    v.grad = na.Tensor(np.array([0.0, 0.5]))       # by value and local norm: unchanged
    sgd.step()
    first = np.array([1.0, 1.0]) / (np.sqrt(2.0) + 1e-6)
    second = np.array([0.0, 0.5])
    total = np.sqrt((first ** 2).sum() + (second ** 2).sum())
    scale = 0.5 / (total + 1e-6)
    np.testing.assert_allclose(w.data, -first * scale, rtol=1e-12)
    np.testing.assert_allclose(v.data, -second * scale, rtol=1e-12)


# ---- Configuration Reference: the Keras defaults ---------------------------------------------

@pytest.mark.parametrize("name, expected, torch_dialect", [
    ("adam", dict(betas=(0.9, 0.999), eps=1e-7, amsgrad=False, weight_decay=0.0),
     dict(eps=1e-8)),
    ("adamw", dict(betas=(0.9, 0.999), eps=1e-7, amsgrad=False, weight_decay=0.004),
     dict(eps=1e-8, weight_decay=0.01)),
    ("rmsprop", dict(alpha=0.9, momentum=0.0, eps=1e-7, centered=False),
     dict(alpha=0.99, eps=1e-8)),
    ("adadelta", dict(rho=0.9, eps=1e-7), dict(eps=1e-6)),
    ("adagrad", dict(initial_accumulator_value=0.1, eps=1e-7),
     dict(initial_accumulator_value=0.0, eps=1e-10)),
])
def test_keras_dialect_defaults(name, expected, torch_dialect):
    model = make_model()
    keras = optimizer_builder({"type": name}, params=model.parameters())
    group = keras.param_groups[0]
    for key, value in expected.items():
        assert group[key] == value, key
    assert group["lr"] == 1e-3                                       # Keras's learning rate
    torch_group = create_optimizer(model.parameters(), name).param_groups[0]
    for key, value in torch_dialect.items():
        assert torch_group[key] == value, key


def test_keras_names_and_torch_names_are_one_argument():
    model = make_model()
    opt = optimizer_builder({"type": "rmsprop", "rho": 0.8, "epsilon": 1e-5}, 0.01,
                            params=model.parameters())
    assert opt.param_groups[0]["alpha"] == 0.8 and opt.param_groups[0]["eps"] == 1e-5
    with pytest.raises(ConfigError, match="'alpha' and its Keras name 'rho'"):
        optimizer_builder({"type": "rmsprop", "rho": 0.8, "alpha": 0.8}, 0.01)
    with pytest.raises(ConfigError, match="given both as an argument and in the config"):
        optimizer_builder({"type": "adam", "learning_rate": 0.1}, 0.01)
    opt = optimizer_builder({"type": "adam", "learning_rate": 0.1}, params=model.parameters())
    assert opt.param_groups[0]["lr"] == 0.1


# ---- Complete Integration Examples -----------------------------------------------------------

def test_example_1_basic_training_setup():
    # Configure learning rate schedule
    lr_config = {
        "type": "cosine_decay",
        "warmup_steps": 1000,
        "warmup_start_lr": 1e-8,
        "learning_rate": 0.001,
        "decay_steps": 10000,
        "alpha": 0.0001
    }

    # Configure optimizer
    opt_config = {
        "type": "adamw",
        "beta_1": 0.9,
        "beta_2": 0.999,
        "gradient_clipping_by_norm": 1.0
    }

    # Build components
    lr_schedule = learning_rate_schedule_builder(lr_config)
    optimizer = optimizer_builder(opt_config, lr_schedule)

    # Create and compile model, train model
    model = make_model()
    fit(model, optimizer, 4)
    assert type(optimizer.optimizer) is na.optim.AdamW
    assert optimizer.param_groups[0]["weight_decay"] == 0.004
    assert optimizer.step_count == 4


class UNet(na.nn.Module):
    """Five outputs at different scales (output 0 the finest), as the guide's U-Net."""

    def __init__(self):
        super().__init__()
        self.trunk = na.Linear(6, 16)
        self.heads = na.nn.ModuleList([na.Linear(16, 16 >> i) for i in range(5)])

    def forward(self, x):
        h = na.tanh(self.trunk(x))
        return [head(h) for head in self.heads]


def test_example_2_unet_with_deep_supervision():
    # Configure all components
    lr_config = {
        "type": "cosine_decay_restarts",
        "warmup_steps": 2000,
        "learning_rate": 0.001,
        "decay_steps": 8000,
        "t_mul": 2.0,
        "m_mul": 0.8
    }

    opt_config = {
        "type": "adam",
        "gradient_clipping_by_norm": 0.5
    }

    ds_config = {
        "type": "linear_low_to_high",
        "config": {}
    }

    # Build components
    lr_schedule = learning_rate_schedule_builder(lr_config)
    optimizer = optimizer_builder(opt_config, lr_schedule)
    ds_scheduler = deep_supervision_schedule_builder(ds_config, 5)

    # Create model
    na.manual_seed(0)
    model = UNet().double()
    params = list(model.parameters())

    # Custom training loop with deep supervision (GradientTape -> autograd.grad)
    def train_step(x_batch, y_batch, epoch_progress):
        supervision_weights = ds_scheduler(epoch_progress)
        outputs = model(x_batch)
        total_loss = 0
        for i, (output, weight) in enumerate(zip(outputs, supervision_weights)):
            size = output.shape[1]
            target = na.Tensor(y_batch.reshape(y_batch.shape[0], size, -1).mean(axis=-1))
            total_loss = total_loss + float(weight) * na.mse_loss(output, target)
        gradients = na.autograd.grad(total_loss, params)
        optimizer.apply_gradients(zip(gradients, params))
        return total_loss, gradients

    rng = np.random.default_rng(0)
    epochs = 3
    for epoch in range(epochs):
        epoch_progress = epoch / epochs
        for step in range(2):
            x = na.Tensor(rng.standard_normal((4, 6)))
            y = rng.standard_normal((4, 16)) * 100.0          # large losses: clipping acts
            loss, gradients = train_step(x, y, epoch_progress)
            clipped = np.sqrt(sum(float((p.grad.data ** 2).sum()) for p in params))
            assert clipped <= 0.5 + 1e-9
    assert optimizer.step_count == 6
    assert optimizer.lr == pytest.approx(lr_schedule(6))


def test_example_3_transformer_training():
    lr_config = {
        "type": "cosine_decay_restarts",
        "warmup_steps": 4000,           # Longer warmup for transformers
        "warmup_start_lr": 1e-9,        # Very low starting LR
        "learning_rate": 0.0005,        # Conservative peak LR
        "decay_steps": 20000,
        "t_mul": 1.5,
        "m_mul": 0.95,
        "alpha": 0.01
    }

    opt_config = {
        "type": "adamw",                # AdamW better for transformers
        "beta_1": 0.9,
        "beta_2": 0.98,                 # Higher beta_2 for transformers
        "epsilon": 1e-9,
        "gradient_clipping_by_norm": 1.0
    }

    # Build and use
    lr_schedule = learning_rate_schedule_builder(lr_config)
    optimizer = optimizer_builder(opt_config, lr_schedule)
    model = make_model()
    optimizer.build(model.parameters())
    g = optimizer.param_groups[0]
    assert g["betas"] == (0.9, 0.98) and g["eps"] == 1e-9 and g["lr"] == 1e-9


# ---- Troubleshooting -------------------------------------------------------------------------

def test_training_instability_config_mixes_schedule_keys_which_the_builder_names():
    config = {
        "type": "adam",
        "gradient_clipping_by_norm": 0.5,  # Reduce clipping threshold
        "warmup_steps": 2000,              # Increase warmup
        "warmup_start_lr": 1e-9,           # Lower starting LR
        "learning_rate": 0.0001            # Reduce peak LR
    }
    with pytest.raises(ConfigError, match="unknown key 'warmup_steps' for optimizer 'adam'"):
        optimizer_builder(config)
    optimizer_keys = {k: v for k, v in config.items() if not k.startswith("warmup")}
    opt = optimizer_builder(optimizer_keys, params=make_model().parameters())
    assert opt.param_groups[0]["lr"] == 0.0001


def test_memory_issues_config():
    config = {
        "type": "adamw",
        "gradient_clipping_by_value": 0.1,  # Use value clipping instead of norm
        # Remove global norm clipping to save memory
    }
    model = make_model()
    optimizer = optimizer_builder(config, 1e-3)
    fit(model, optimizer, 1)
    assert max(float(np.abs(p.grad.data).max()) for p in model.parameters()) <= 0.1


def test_error_messages():
    supported_optimizers = ["adam", "adamw", "rmsprop", "adadelta"]
    for name in supported_optimizers:
        assert optimizer_builder({"type": name}, 1e-3).to_config()["type"] == name
    with pytest.raises(ConfigError, match="unknown optimizer 'adamx'; known optimizers: "
                                          "adadelta, adagrad, adam"):
        optimizer_builder({"type": "adamx"}, 1e-3)
    with pytest.raises(ConfigError, match="needs a 'type'"):
        optimizer_builder({"beta_1": 0.9}, 1e-3)


# ---- Advanced Usage: hyperparameter sweeps ---------------------------------------------------

def create_sweep_configs():
    """Generate configurations for hyperparameter sweeps."""
    base_config = {
        "type": "adam",
        "warmup_steps": 1000,
        "decay_steps": 10000
    }

    sweep_configs = []

    # Sweep learning rates
    for lr in [0.0001, 0.0003, 0.001, 0.003]:
        # Sweep optimizer types
        for opt_type in ["adam", "adamw"]:
            # Sweep gradient clipping
            for clip_norm in [0.5, 1.0, 2.0]:
                config = base_config.copy()
                config.update({
                    "learning_rate": lr,
                    "type": opt_type,
                    "gradient_clipping_by_norm": clip_norm
                })
                sweep_configs.append(config)

    return sweep_configs


def test_hyperparameter_sweeps():
    configs = create_sweep_configs()
    assert len(configs) == 24
    for config in configs:
        with pytest.raises(ConfigError, match="unknown key 'warmup_steps'"):
            optimizer_builder(config)            # schedule keys are not the optimizer's
        schedule = learning_rate_schedule_builder({"type": "cosine_decay", **{
            k: config[k] for k in ("learning_rate", "warmup_steps", "decay_steps")}})
        optimizer = optimizer_builder({k: config[k] for k in ("type",
                                                              "gradient_clipping_by_norm")},
                                      schedule)
        exported = optimizer.to_config()
        assert exported["type"] == config["type"]
        assert exported["gradient_clipping_by_norm"] == config["gradient_clipping_by_norm"]
        assert exported["learning_rate"]["warmup_steps"] == 1000


# ---- the deferred optimizer ------------------------------------------------------------------

def test_a_deferred_optimizer_is_built_once():
    optimizer = optimizer_builder({"type": "sgd"}, 0.1)
    with pytest.raises(AttributeError, match="no parameters yet"):
        optimizer.param_groups
    with pytest.raises(RuntimeError, match="no parameters yet"):
        optimizer.optimizer
    model, other = make_model(), make_model()
    built = optimizer.build(model.parameters())
    assert optimizer.build(model.parameters()) is built
    with pytest.raises(RuntimeError, match="already built on other parameters"):
        optimizer.build(other.parameters())
    optimizer.lr = 0.05                                   # attributes reach the optimizer
    assert built.param_groups[0]["lr"] == 0.05
    assert optimizer.to_config()["learning_rate"] == 0.1  # the recipe
    assert "not built" in repr(optimizer_builder({"type": "sgd"}, 0.1))


def test_apply_gradients_steps_only_the_listed_parameters():
    a, b = na.Parameter(np.ones(2)), na.Parameter(np.ones(3))
    optimizer = optimizer_builder({"type": "sgd"}, 0.5)
    optimizer.build([a, b])
    b.grad = na.Tensor(np.ones(3))                        # stale: not part of this call
    optimizer.apply_gradients([(na.Tensor(np.array([2.0, 4.0])), a)])
    np.testing.assert_array_equal(a.data, [0.0, -1.0])
    np.testing.assert_array_equal(b.data, np.ones(3))
    with pytest.raises(TypeError, match="pairs"):
        optimizer.apply_gradients([a])


def test_out_of_range_values_are_refused_when_the_builder_is_called():
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optimizer_builder({"type": "adam", "beta_2": 1.5}, 1e-3)
    with pytest.raises(ConfigError, match="'beta_1' must be a number"):
        optimizer_builder({"type": "adam", "beta_1": "0.9x"}, 1e-3)
    with pytest.raises(ConfigError, match="gradient-free"):
        optimizer_builder({"type": "cmaes"}, 1e-3)
