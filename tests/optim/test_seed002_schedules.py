"""Seed 002 (optimization module guide): its schedule and deep-supervision code, run.

Every code block of the guide that builds a learning-rate schedule or a
deep-supervision schedule runs here as written, with ``neural_arch.optim`` in
place of ``dl_techniques.optimization`` and a small model in place of the
user's (Keras's ``model.compile``/``fit`` become a short training loop with an
optimizer whose ``lr`` is the schedule). The ``optimizer_builder`` calls and the
gradient-clipping keys of those blocks belong to the builders' tests.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import (Adam, AdamW, CosineDecay, CosineDecayRestarts, ExponentialDecay,
                               Warmup, deep_supervision_schedule_builder,
                               learning_rate_schedule_builder)


# ---- small stand-ins for the guide's models ------------------------------------------------

class MultiScaleNet(na.nn.Module):
    """A toy 'U-Net': output i predicts the target averaged over blocks of 2**i (16 >> i values)."""

    def __init__(self, num_outputs=5, width=16):
        super().__init__()
        self.trunk = na.Linear(8, width)
        self.heads = na.nn.ModuleList([na.Linear(width, width >> i) for i in range(num_outputs)])

    def forward(self, x):
        h = na.tanh(self.trunk(x))
        return [head(h) for head in self.heads]


def resize(y, size):
    """The target at a coarser scale: means over blocks (the guide's ``tf.image.resize``)."""
    return na.Tensor(y.reshape(y.shape[0], size, -1).mean(axis=-1))


def batch(seed, n=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8))
    return x, np.tanh(x @ rng.standard_normal((8, 16)) * 0.3)


def train(model, optimizer, steps):
    """The guide's ``model.fit``: a few steps of a classifier on random data."""
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        x = na.Tensor(rng.standard_normal((8, 6)))
        labels = rng.integers(0, 3, 8)
        loss = na.cross_entropy_loss(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.data))
    return losses


# ---- Quick Start -------------------------------------------------------------------------------

def test_quick_start_basic_setup():
    # 1. Configure learning rate schedule with warmup
    lr_config = {
        "type": "cosine_decay",
        "warmup_steps": 1000,
        "warmup_start_lr": 1e-8,
        "learning_rate": 0.001,
        "decay_steps": 10000,
        "alpha": 0.0001
    }
    # 3. Build components
    lr_schedule = learning_rate_schedule_builder(lr_config)
    # 4. Use with your model (Keras compiles; here the optimizer takes the schedule)
    model = na.Sequential(na.Linear(6, 16), na.ReLU(), na.Linear(16, 3))
    optimizer = Adam(model.parameters(), lr=lr_schedule)
    train(model, optimizer, 5)
    assert optimizer.step_count == 5
    assert float(optimizer.lr) == lr_schedule(5)
    assert lr_schedule(0) == pytest.approx(1e-8) and lr_schedule(1000) == pytest.approx(1e-3)


def test_quick_start_training_with_deep_supervision():
    # Configure deep supervision weights
    ds_config = {
        "type": "linear_low_to_high",
        "config": {}
    }
    # Build scheduler for 5 output scales
    ds_scheduler = deep_supervision_schedule_builder(ds_config, 5)

    model = MultiScaleNet()
    x, y = batch(0)
    model_outputs = model(na.Tensor(x))
    targets = [resize(y, out.shape[1]) for out in model_outputs]
    loss_function = na.mse_loss

    # Use during training
    def train_step(batch_data, epoch_progress):
        # Get current weights for this training progress
        supervision_weights = ds_scheduler(epoch_progress)  # [0.0, 1.0]

        # Apply weights to multiple outputs
        total_loss = 0
        for i, (output, weight) in enumerate(zip(model_outputs, supervision_weights)):
            scale_loss = loss_function(targets[i], output)
            total_loss += weight * scale_loss

        return total_loss

    per_scale = [float(loss_function(t, o).data) for t, o in zip(targets, model_outputs)]
    for progress in (0.0, 0.3, 1.0):
        total = train_step((x, y), progress)
        assert isinstance(total, na.Tensor)
        assert float(total.data) == pytest.approx(float(np.dot(ds_scheduler(progress),
                                                               per_scale)))
    total.backward()
    assert all(p.grad is not None for p in model.parameters())


# ---- Learning Rate Schedule Builder ----------------------------------------------------------

def test_flattened_configuration_format():
    # Simple cosine decay with warmup
    config = {
        "type": "cosine_decay",
        "warmup_steps": 1000,
        "warmup_start_lr": 1e-8,
        "learning_rate": 0.001,
        "decay_steps": 10000,
        "alpha": 0.0001
    }
    lr_schedule = learning_rate_schedule_builder(config)
    assert lr_schedule.to_config() == config


def test_schedule_types():
    cosine = {
        "type": "cosine_decay",
        "learning_rate": 0.001,      # Initial learning rate
        "decay_steps": 10000,        # Steps to decay over
        "alpha": 0.0001,             # Minimum LR as fraction of initial (optional)
        "warmup_steps": 1000,        # Warmup period (optional)
        "warmup_start_lr": 1e-8      # Starting warmup LR (optional)
    }
    exponential = {
        "type": "exponential_decay",
        "learning_rate": 0.001,      # Initial learning rate
        "decay_steps": 1000,         # Steps between decay applications
        "decay_rate": 0.9,           # Multiplicative decay factor
        "warmup_steps": 500,         # Warmup period (optional)
        "warmup_start_lr": 1e-8      # Starting warmup LR (optional)
    }
    restarts = {
        "type": "cosine_decay_restarts",
        "learning_rate": 0.001,      # Initial learning rate
        "decay_steps": 5000,         # Steps in first decay period
        "t_mul": 2.0,                # Factor to multiply period after restart (optional)
        "m_mul": 0.9,                # Factor to multiply LR after restart (optional)
        "alpha": 0.001,              # Minimum LR as fraction (optional)
        "warmup_steps": 1000,        # Warmup period (optional)
        "warmup_start_lr": 1e-8      # Starting warmup LR (optional)
    }
    c, e, r = (learning_rate_schedule_builder(k) for k in (cosine, exponential, restarts))
    assert c(1000 + 10000) == pytest.approx(1e-7)
    assert e(500 + 1000) == pytest.approx(0.9e-3) and e(500 + 3000) == pytest.approx(0.729e-3)
    # the first restart comes 5000 steps after warmup, at 0.9 of the initial rate
    assert r(1000 + 5000) == pytest.approx(1e-3 * (0.001 + 0.999 * 0.9))
    assert r(1000 + 5000 - 1) < 1.1e-6
    assert c.to_config() == cosine and r.to_config() == restarts
    assert e.to_config() == dict(exponential, staircase=False)      # default filled in


def test_warmup_behavior_comment():
    target_lr, warmup_start_lr, warmup_steps = 1e-3, 1e-8, 1000
    schedule = learning_rate_schedule_builder({
        "type": "exponential_decay", "learning_rate": target_lr, "decay_steps": 100,
        "decay_rate": 0.5, "warmup_steps": warmup_steps, "warmup_start_lr": warmup_start_lr})
    primary_schedule = ExponentialDecay(target_lr, 100, 0.5)
    for step in (0, 1, 250, 999):
        # During warmup: lr = warmup_start_lr + (target_lr - warmup_start_lr) * (step / warmup_steps)
        lr = warmup_start_lr + (target_lr - warmup_start_lr) * (step / warmup_steps)
        assert schedule(step) == pytest.approx(lr, rel=1e-12)
    for step in (1000, 1100, 5000):
        # After warmup: lr = primary_schedule(step), counted from the end of the warmup
        assert schedule(step) == primary_schedule(step - warmup_steps)
    # Default: no warmup
    plain = learning_rate_schedule_builder({"type": "exponential_decay", "learning_rate": 1e-3,
                                            "decay_steps": 100, "decay_rate": 0.5})
    assert plain(0) == 1e-3 and not isinstance(plain, Warmup)


# ---- Deep Supervision Schedule Builder ---------------------------------------------------------

def test_deep_supervision_basic_usage():
    # Configure schedule
    config = {
        "type": "linear_low_to_high",
        "config": {}  # Schedule-specific parameters (if any)
    }

    # Build scheduler for 5 output scales
    num_outputs = 5
    scheduler = deep_supervision_schedule_builder(config, num_outputs)

    # Use during training
    training_progress = 0.3  # 30% through training
    weights = scheduler(training_progress)  # Returns array of 5 weights summing to 1.0
    assert weights.shape == (5,) and weights.sum() == pytest.approx(1.0)
    # N(0.7 u + 0.3 d) with u = [1..5], d = [5..1]
    np.testing.assert_allclose(weights, np.array([2.2, 2.6, 3.0, 3.4, 3.8]) / 15.0, rtol=1e-12)


@pytest.mark.parametrize("config", [
    {
        "type": "linear_low_to_high",
        "config": {}
    },
    {
        "type": "custom_sigmoid_low_to_high",
        "config": {
            "k": 10.0,                    # Sigmoid steepness
            "x0": 0.5,                    # Sigmoid midpoint
            "transition_point": 0.25      # When transition begins
        }
    },
    {
        "type": "cosine_annealing",
        "config": {
            "frequency": 3.0,             # Number of cycles during training
            "final_ratio": 0.8            # Ratio between final and initial weights
        }
    },
    {
        "type": "curriculum",
        "config": {
            "max_active_outputs": 3,      # Maximum simultaneously active outputs
            "activation_strategy": "linear"  # or "exp" for exponential
        }
    },
], ids=lambda c: c["type"])
def test_schedule_examples(config):
    scheduler = deep_supervision_schedule_builder(config, 5)
    for progress in np.linspace(0, 1, 11):
        w = scheduler(progress)
        assert w.shape == (5,) and (w >= 0).all() and w.sum() == pytest.approx(1.0)
    if config["type"] == "curriculum":
        assert np.count_nonzero(scheduler(1.0)) == 3
    else:           # ends favouring output 0, the final high-resolution output
        assert scheduler(1.0)[0] > scheduler(1.0)[-1]


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
    lr_schedule = learning_rate_schedule_builder(lr_config)
    # Create and "compile" model (Dense 128-64-10, scaled down)
    model = na.Sequential(na.Linear(6, 12), na.ReLU(), na.Linear(12, 8), na.ReLU(),
                          na.Linear(8, 3))
    optimizer = AdamW(model.parameters(), lr=lr_schedule, betas=(0.9, 0.999))
    # Train model
    losses = train(model, optimizer, 3)
    assert all(math.isfinite(v) for v in losses)
    assert [g["lr"] for g in optimizer.param_groups] == [lr_schedule(3)]


def test_example_2_unet_with_deep_supervision(capsys):
    # Configure all components
    lr_config = {
        "type": "cosine_decay_restarts",
        "warmup_steps": 2000,
        "learning_rate": 0.001,
        "decay_steps": 8000,
        "t_mul": 2.0,
        "m_mul": 0.8
    }
    ds_config = {
        "type": "linear_low_to_high",
        "config": {}
    }
    # Build components
    lr_schedule = learning_rate_schedule_builder(lr_config)
    ds_scheduler = deep_supervision_schedule_builder(ds_config, 5)
    assert isinstance(lr_schedule.schedule, CosineDecayRestarts)
    assert lr_schedule.warmup_start_lr == 1e-8 and lr_schedule.schedule.alpha == 1e-3

    # Create model
    model = MultiScaleNet()
    optimizer = Adam(model.parameters(), lr=lr_schedule)
    train_dataset = [batch(seed) for seed in range(3)]

    # Custom training loop with deep supervision
    def train_step(x_batch, y_batch, epoch_progress):
        # Get current supervision weights
        supervision_weights = ds_scheduler(epoch_progress)
        # Forward pass - model returns 5 outputs
        outputs = model(na.Tensor(x_batch))
        # Compute weighted loss
        total_loss = 0
        for i, (output, weight) in enumerate(zip(outputs, supervision_weights)):
            # Each output corresponds to a different scale
            target = resize(y_batch, output.shape[1])
            scale_loss = na.mse_loss(output, target)
            total_loss += weight * scale_loss
        # Backward pass
        optimizer.zero_grad()
        total_loss.backward()
        optimizer.step()
        return float(total_loss.data)

    # Training loop
    epochs = 4
    steps_per_epoch = len(train_dataset)
    for epoch in range(epochs):
        epoch_progress = epoch / epochs
        for step, (x_batch, y_batch) in enumerate(train_dataset):
            loss = train_step(x_batch, y_batch, epoch_progress)
            if step % 100 == 0:
                weights = ds_scheduler(epoch_progress)
                print(f"Epoch {epoch}, Step {step}, Loss: {loss:.4f}")
                print(f"Supervision weights: {weights}")
    out = capsys.readouterr().out
    assert out.count("Supervision weights:") == epochs
    assert optimizer.step_count == epochs * steps_per_epoch
    assert float(optimizer.lr) == lr_schedule(epochs * steps_per_epoch)


def test_example_3_transformer_schedule():
    # Transformer-optimized configuration
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
    lr_schedule = learning_rate_schedule_builder(lr_config)
    assert lr_schedule(0) == 1e-9 and lr_schedule(4000) == pytest.approx(5e-4)
    # restarts after 20000 and 20000 + 30000 steps of decay, at 0.95 and 0.95**2
    for start, peak in ((4000 + 20000, 0.95), (4000 + 50000, 0.95 ** 2)):
        assert lr_schedule(start) == pytest.approx(5e-4 * (0.01 + 0.99 * peak), rel=1e-12)
        assert lr_schedule(start - 1) < 5e-4 * 0.0101
    assert lr_schedule.to_config() == lr_config


# ---- Best Practices, Troubleshooting, Advanced Usage --------------------------------------------

def test_best_practices_warmup():
    total_steps, model_params = 100_000, 3_000_000
    config = {"type": "cosine_decay", "learning_rate": 1e-3, "decay_steps": total_steps,
              "warmup_steps": max(1000, total_steps // 20)}  # 5% of training
    assert learning_rate_schedule_builder(config).warmup_steps == 5000
    # Larger models need longer warmup
    warmup_steps = min(10000, max(1000, model_params // 1000))
    config["warmup_steps"] = warmup_steps
    assert learning_rate_schedule_builder(config)(warmup_steps) == pytest.approx(1e-3)


def test_best_practices_monitor_weight_distribution(caplog):
    import logging
    logger = logging.getLogger("seed002")
    ds_scheduler = deep_supervision_schedule_builder({"type": "curriculum", "config": {}}, 5)
    epoch_progress = 0.4
    with caplog.at_level(logging.INFO, logger="seed002"):
        for step in range(201):
            # Log weights during training
            if step % 100 == 0:
                weights = ds_scheduler(epoch_progress)
                logger.info(f"DS weights: {weights}")
    assert len(caplog.records) == 3 and "0.5" in caplog.records[0].getMessage()


def test_troubleshooting_slow_convergence_config():
    config = {
        "type": "cosine_decay_restarts",
        "learning_rate": 0.003,            # Increase peak LR
        "warmup_steps": 500,               # Reduce warmup
        "t_mul": 2.0,                      # Add restarts
        "decay_steps": 5000
    }
    s = learning_rate_schedule_builder(config)
    assert s(500) == pytest.approx(0.003) and s(500 + 5000) == pytest.approx(
        0.003 * (0.001 + 0.999 * 0.9))


def test_troubleshooting_deep_supervision_not_working(capsys):
    ds_scheduler = deep_supervision_schedule_builder({"type": "linear_low_to_high"}, 5)
    # Check weight distribution
    weights = ds_scheduler(0.5)  # Mid-training
    print(f"Weights sum: {np.sum(weights)}")  # Should be 1.0
    print(f"Weights: {weights}")
    assert "Weights sum: 1.0" in capsys.readouterr().out

    # If weights are too extreme, try:
    config = {
        "type": "custom_sigmoid_low_to_high",
        "config": {
            "k": 5.0,                      # Reduce steepness
            "transition_point": 0.1        # Start transition earlier
        }
    }
    softer = deep_supervision_schedule_builder(config, 5)
    sharp = deep_supervision_schedule_builder({"type": "custom_sigmoid_low_to_high"}, 5)
    assert softer(0.95)[0] < sharp(0.95)[0]
    assert softer(0.2)[0] > sharp(0.2)[0]


def test_error_messages_section():
    # Ensure all required parameters are provided
    config = {
        "type": "cosine_decay",
        "learning_rate": 0.001,  # Required
        "decay_steps": 10000,    # Required
        # Optional parameters can be omitted
    }
    assert learning_rate_schedule_builder(config) == CosineDecay(0.001, 10000, 0.0001)
    with pytest.raises(ValueError, match="Missing required parameters"):
        learning_rate_schedule_builder({"type": "cosine_decay", "learning_rate": 0.001})

    # Check spelling and supported types
    supported_schedules = ["cosine_decay", "exponential_decay", "cosine_decay_restarts"]
    with pytest.raises(ValueError, match="Unknown") as info:
        learning_rate_schedule_builder({"type": "cosine_decy", "learning_rate": 0.001,
                                        "decay_steps": 10})
    assert all(name in str(info.value) for name in supported_schedules)


def test_custom_learning_rate_curves():
    # Create custom multi-phase training
    phase1_config = {
        "type": "exponential_decay",
        "warmup_steps": 1000,
        "learning_rate": 0.001,
        "decay_steps": 5000,
        "decay_rate": 0.8
    }
    phase2_config = {
        "type": "cosine_decay",
        "warmup_steps": 0,  # No warmup for second phase
        "learning_rate": 0.0005,  # Lower starting LR
        "decay_steps": 10000,
        "alpha": 0.0001
    }
    # Use different schedules for different training phases
    phase1 = learning_rate_schedule_builder(phase1_config)
    phase2 = learning_rate_schedule_builder(phase2_config)
    assert phase1(6000) == pytest.approx(0.0008)
    assert phase2(0) == 0.0005 and phase2(10000) == pytest.approx(0.0005 * 0.0001)

    # one optimizer, switching schedule between phases
    model = na.Sequential(na.Linear(6, 4), na.ReLU(), na.Linear(4, 3))
    optimizer = Adam(model.parameters(), lr=phase1)
    train(model, optimizer, 2)
    optimizer.lr = phase2
    assert float(optimizer.lr) == phase2(2)


def test_dynamic_deep_supervision_callback():
    class AdaptiveSupervisionCallback:           # keras.callbacks.Callback in the guide
        def __init__(self, ds_scheduler, base_config):
            self.ds_scheduler = ds_scheduler
            self.base_config = base_config
            self.best_val_loss = float('inf')

        def on_epoch_end(self, epoch, logs=None):
            val_loss = logs.get('val_loss', 0)

            if val_loss < self.best_val_loss:
                self.best_val_loss = val_loss
            else:
                # Adapt schedule if validation loss plateaus
                # Switch to more aggressive schedule
                new_config = self.base_config.copy()
                new_config['type'] = 'curriculum'
                self.ds_scheduler = deep_supervision_schedule_builder(new_config, 5)

    base_config = {"type": "linear_low_to_high", "config": {}}
    callback = AdaptiveSupervisionCallback(
        deep_supervision_schedule_builder(base_config, 5), base_config)
    callback.on_epoch_end(0, {"val_loss": 1.0})
    assert callback.ds_scheduler.type == "linear_low_to_high"
    callback.on_epoch_end(1, {"val_loss": 1.2})
    assert callback.ds_scheduler.type == "curriculum"
    np.testing.assert_array_equal(callback.ds_scheduler(0.4), [0, 0, 0, 0.5, 0.5])


@pytest.mark.parametrize("num_gpus", [1, 4])
def test_multi_gpu_scaling(num_gpus):
    config = {
        "type": "cosine_decay",
        "learning_rate": 0.001 * num_gpus,  # Scale LR with batch size
        "warmup_steps": 1000 * num_gpus,    # Scale warmup proportionally
        "decay_steps": 10000
    }
    s = learning_rate_schedule_builder(config)
    assert s(1000 * num_gpus) == pytest.approx(0.001 * num_gpus)
