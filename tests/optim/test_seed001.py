"""Seed 001 (an optimizer factory's README): its code blocks, run.

Every block about optimizers, schedulers, clipping and configs runs as written,
with ``neural_arch.optim`` in place of ``optimizers``, a small model in place of
the user's, and a short loop over random batches in place of the user's
dataloader (``loss = model(batch)`` becomes a forward pass and an MSE loss). The
monitor blocks are run by ``test_monitor.py``, the ``MixedPrecisionOptimizer``
and ``DistributedOptimizer`` blocks by ``test_mixed_precision.py`` and
``tests/test_distributed.py`` (its ``world_size=4`` needs four MPI processes);
here only their configs, which come from the same registry.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

import neural_arch as na
from neural_arch.optim import (AdamW, CosineAnnealingLR, CosineAnnealingWarmRestarts,
                               GradientClipper, OneCycleLR, OptimizerFactory, ReduceLROnPlateau,
                               WarmupCosineLR, create_optimizer, create_optimizer_and_scheduler,
                               create_scheduler)


class Model(na.nn.Module):
    """The user's model, small: batch -> prediction."""

    def __init__(self):
        super().__init__()
        self.body = na.Linear(6, 8)
        self.head = na.Linear(8, 2)

    def forward(self, x):
        return self.head(na.tanh(self.body(x)))


def make_model():
    na.manual_seed(0)
    return Model().double()


def dataloader(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [(na.Tensor(rng.standard_normal((4, 6))), na.Tensor(rng.standard_normal((4, 2))))
            for _ in range(n)]


def loss_of(model, batch):
    x, y = batch
    return na.mse_loss(model(x), y)


@pytest.fixture
def model():
    return make_model()


# ---- Supported Optimizers ------------------------------------------------------------------

def test_adam(model):
    optimizer = create_optimizer(
        model.parameters(),
        optimizer_name='adam',
        lr=1e-4,
        weight_decay=1e-5
    )
    assert type(optimizer) is na.optim.Adam
    assert optimizer.param_groups[0]["lr"] == 1e-4
    assert optimizer.param_groups[0]["weight_decay"] == 1e-5


def test_adamw(model):
    optimizer = create_optimizer(
        model.parameters(),
        optimizer_name='adamw',
        lr=1e-4,
        weight_decay=1e-4
    )
    assert type(optimizer) is AdamW and optimizer.param_groups[0]["weight_decay"] == 1e-4


def test_sgd(model):
    optimizer = create_optimizer(
        model.parameters(),
        optimizer_name='sgd',
        lr=1e-3,
        weight_decay=1e-4,
        momentum=0.9
    )
    g = optimizer.param_groups[0]
    assert type(optimizer) is na.optim.SGD and (g["lr"], g["momentum"]) == (1e-3, 0.9)


def test_rmsprop(model):
    optimizer = create_optimizer(
        model=model,
        optimizer_type='rmsprop',
        learning_rate=1e-3,
        alpha=0.99,
        eps=1e-8,
        weight_decay=1e-4
    )
    g = optimizer.param_groups[0]
    assert type(optimizer) is na.optim.RMSprop
    assert (g["lr"], g["alpha"], g["eps"], g["weight_decay"]) == (1e-3, 0.99, 1e-8, 1e-4)


# ---- Learning Rate Schedulers ---------------------------------------------------------------

@pytest.fixture
def optimizer(model):
    return create_optimizer(model.parameters(), optimizer_name='sgd', lr=1e-3, momentum=0.9)


def lrs_over(optimizer, scheduler, steps):
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_cosine(optimizer):
    scheduler = create_scheduler(
        optimizer=optimizer,
        scheduler_name='cosine',
        epochs=100,
        eta_min=1e-7
    )
    assert type(scheduler) is CosineAnnealingLR
    lrs = lrs_over(optimizer, scheduler, 101)
    assert lrs[0] == 1e-3 and lrs[50] == pytest.approx((1e-3 + 1e-7) / 2)
    assert lrs[100] == pytest.approx(1e-7)


def test_cosine_warm_restarts(optimizer):
    scheduler = create_scheduler(
        optimizer=optimizer,
        scheduler_name='cosine_warm_restarts',
        epochs=100,
        T_0=25,  # Restart every 25 epochs
        T_mult=2,  # Double the restart period
        eta_min=1e-7
    )
    assert type(scheduler) is CosineAnnealingWarmRestarts
    lrs = lrs_over(optimizer, scheduler, 76)
    assert lrs[25] == lrs[75] == pytest.approx(1e-3)       # restarts at 25 and 25 + 50
    assert lrs[24] < 1e-5


def test_onecycle(optimizer):
    scheduler = create_scheduler(
        optimizer=optimizer,
        scheduler_name='onecycle',
        epochs=100,
        max_lr=1e-3,  # Peak learning rate
        steps_per_epoch=100,
        pct_start=0.3  # 30% of training for warmup
    )
    assert type(scheduler) is OneCycleLR and scheduler.total_steps == 10000
    lrs = lrs_over(optimizer, scheduler, 3001)
    assert lrs[0] == pytest.approx(1e-3 / 25)
    assert lrs[2999] == pytest.approx(1e-3)


def test_plateau(optimizer):
    scheduler = create_scheduler(
        optimizer=optimizer,
        scheduler_type='plateau',
        mode='max',
        factor=0.5,
        patience=10,
        threshold=1e-4
    )
    assert type(scheduler) is ReduceLROnPlateau
    for _ in range(12):
        optimizer.step()
        scheduler.step(0.5)                         # accuracy stuck at 0.5
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)


def test_warmup_cosine(optimizer):
    scheduler = create_scheduler(
        optimizer=optimizer,
        scheduler_type='warmup_cosine',
        warmup_epochs=10,
        max_epochs=100,
        eta_min=1e-6
    )
    assert type(scheduler) is WarmupCosineLR
    lrs = lrs_over(optimizer, scheduler, 101)
    assert lrs[5] == pytest.approx(5e-4) and lrs[10] == pytest.approx(1e-3)
    assert lrs[100] == pytest.approx(1e-6)


# ---- Combined Optimizer and Scheduler --------------------------------------------------------

def test_recommended_usage(model):
    optimizer, scheduler = create_optimizer_and_scheduler(
        model.parameters(),
        optimizer_name='adamw',
        lr=1e-4,
        weight_decay=1e-4,
        scheduler_name='cosine',
        epochs=100,
        eta_min=1e-7
    )
    assert type(optimizer) is AdamW and type(scheduler) is CosineAnnealingLR
    assert (scheduler.T_max, scheduler.eta_min) == (100, 1e-7)


def test_advanced_configuration(model):
    optimizer, scheduler = create_optimizer_and_scheduler(
        model.parameters(),
        optimizer_name='adamw',
        lr=1e-4,
        weight_decay=1e-4,
        scheduler_name='cosine_warm_restarts',
        epochs=100,
        T_0=25,
        T_mult=2,
        eta_min=1e-7
    )
    assert (scheduler.T_0, scheduler.T_mult, scheduler.eta_min) == (25, 2, 1e-7)


# ---- Configuration Examples ----------------------------------------------------------------

FLAT_YAML = """
# config.yaml
training:
  optimizer: "adamw"
  scheduler: "cosine"
  learning_rate: 1e-4
  weight_decay: 1e-4
  eta_min: 1e-7
  max_grad_norm: 1.0
  amp: true
  compile: true
"""


def test_flat_yaml_configuration(model):
    config = yaml.safe_load(FLAT_YAML)
    factory = OptimizerFactory(epochs=100)       # the file leaves the training length out
    optimizer, scheduler = factory.create_optimizer_and_scheduler(model=model, config=config)
    assert type(optimizer) is AdamW and optimizer.max_grad_norm == 1.0
    assert optimizer.param_groups[0]["lr"] == 1e-4
    assert (scheduler.T_max, scheduler.eta_min) == (100, 1e-7)


def test_python_configuration(model):
    config = {
        'optimizer_name': 'adamw',
        'lr': 1e-4,
        'weight_decay': 1e-4,
        'scheduler_name': 'cosine',
        'epochs': 100,
        'eta_min': 1e-7
    }

    optimizer, scheduler = create_optimizer_and_scheduler(
        model.parameters(),
        **config
    )
    assert type(optimizer) is AdamW and scheduler.T_max == 100


def test_fine_tuning_configuration(model):
    finetune_config = {
        'optimizer': {
            'type': 'adamw',
            'learning_rate': 1e-5,  # Lower LR for fine-tuning
            'weight_decay': 1e-4
        },
        'scheduler': {
            'type': 'warmup_cosine',
            'warmup_epochs': 5,
            'max_epochs': 50
        },
        'gradient_clipping': {
            'enabled': True,
            'max_norm': 0.5
        }
    }
    optimizer, scheduler = OptimizerFactory().create_optimizer_and_scheduler(
        model=model, config=finetune_config)
    assert optimizer.param_groups[0]["lr"] == 0.0           # warmup starts at 0
    assert (scheduler.warmup_epochs, scheduler.max_epochs) == (5, 50)
    # the clipping runs before every step: gradients of a huge loss move the weights little
    before = [p.data.copy() for p in model.parameters()]
    for _ in range(5):
        optimizer.zero_grad()
        (loss_of(model, dataloader(1)[0]) * 1e6).backward()
        optimizer.step()
        scheduler.step()
    total = math.sqrt(sum(float(((p.grad.data) ** 2).sum()) for p in model.parameters()))
    assert total <= 0.5 + 1e-9
    assert any(not np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))


def test_large_model_configuration(model):
    large_model_config = {
        'optimizer': {
            'type': 'adamw',
            'learning_rate': 1e-4,
            'weight_decay': 1e-4,
            'betas': [0.9, 0.95]  # Adjusted betas for large models
        },
        'scheduler': {
            'type': 'cosine',
            'T_max': 200,
            'eta_min': 1e-6
        },
        'gradient_clipping': {
            'enabled': True,
            'max_norm': 1.0
        }
    }
    optimizer, scheduler = OptimizerFactory().create_optimizer_and_scheduler(
        model=model, config=large_model_config)
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.95)
    assert scheduler.T_max == 200


NESTED_YAML = """
# config.yaml
optimizer:
  type: 'adamw'
  learning_rate: 1e-4
  weight_decay: 1e-4
  betas: [0.9, 0.999]
  eps: 1e-8

scheduler:
  type: 'cosine'
  T_max: 100
  eta_min: 1e-6

gradient_clipping:
  enabled: true
  max_norm: 1.0
"""


def test_nested_yaml_configuration(model, tmp_path):
    (tmp_path / "config.yaml").write_text(NESTED_YAML)
    config = na.optim.load_config(tmp_path / "config.yaml")
    optimizer, scheduler = OptimizerFactory().create_optimizer_and_scheduler(
        model=model, config=config)
    g = optimizer.param_groups[0]
    assert (g["lr"], g["weight_decay"], g["eps"]) == (1e-4, 1e-4, 1e-8)
    assert (scheduler.T_max, scheduler.eta_min) == (100, 1e-6)


def test_python_nested_configuration(model):
    config = {
        'optimizer': {
            'type': 'adamw',
            'learning_rate': 1e-4,
            'weight_decay': 1e-4
        },
        'scheduler': {
            'type': 'cosine',
            'T_max': 100
        }
    }
    optimizer, scheduler = OptimizerFactory().create_optimizer_and_scheduler(
        model=model, config=config)
    assert type(optimizer) is AdamW and scheduler.T_max == 100


# ---- Gradient Clipping ---------------------------------------------------------------------

def test_automatic_gradient_clipping(model):
    optimizer = create_optimizer(model.parameters(), optimizer_name='sgd', lr=0.1)

    # Create gradient clipper
    clipper = GradientClipper(
        max_norm=1.0,
        norm_type=2
    )

    # Use in training loop
    for batch in dataloader():
        optimizer.zero_grad()
        loss = loss_of(model, batch) * 100.0
        loss.backward()

        # Clip gradients
        clipper.clip_gradients(model.parameters())
        norm = math.sqrt(sum(float((p.grad.data ** 2).sum()) for p in model.parameters()))
        assert norm <= 1.0 + 1e-9

        optimizer.step()
    assert clipper.calls == 3 and clipper.clip_rate == 1.0


def test_adaptive_gradient_clipping(model):
    adaptive_clipper = GradientClipper(
        max_norm=1.0,
        adaptive=True,
        clip_factor=0.1
    )
    (loss_of(model, dataloader(1)[0]) * 1e3).backward()
    adaptive_clipper.clip_gradients(model.parameters())
    w = model.body.weight
    ratio = np.linalg.norm(w.grad.data, axis=1) / np.maximum(np.linalg.norm(w.data, axis=1),
                                                             1e-3)
    assert np.all(ratio <= 0.1 + 1e-9)


# ---- Integration with Training ---------------------------------------------------------------

CONFIG = {
    'optimizer': {'type': 'adamw', 'learning_rate': 1e-2, 'weight_decay': 1e-4},
    'scheduler': {'type': 'cosine', 'T_max': 100},
}


def test_training_loop_integration(model):
    config = CONFIG
    num_epochs = 3

    # Create optimizer and scheduler
    factory = OptimizerFactory()
    optimizer, scheduler = factory.create_optimizer_and_scheduler(
        model=model,
        config=config
    )

    # Training loop
    first = sum(float(loss_of(model, b).data) for b in dataloader())
    for epoch in range(num_epochs):
        for batch in dataloader():
            optimizer.zero_grad()
            loss = loss_of(model, batch)
            loss.backward()
            optimizer.step()

        # Update learning rate
        scheduler.step()
    assert sum(float(loss_of(model, b).data) for b in dataloader()) < first
    assert scheduler.last_epoch == 3


def test_experiment_configuration(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(NESTED_YAML)
    factory = OptimizerFactory()

    # Load configuration from YAML
    import yaml

    with open('config.yaml', 'r') as f:
        config = yaml.safe_load(f)

    # Create optimizer from config
    optimizer, scheduler = factory.create_optimizer_and_scheduler(
        model=model,
        config=config
    )
    assert optimizer.param_groups[0]["lr"] == 1e-4        # '1e-4' read as a string by YAML 1.1
    assert scheduler.eta_min == 1e-6


# ---- Testing ---------------------------------------------------------------------------------

def test_optimizer_creation(model):
    from neural_arch.optim import OptimizerFactory

    factory = OptimizerFactory()
    optimizer = factory.create_optimizer(
        model=model,
        config={'type': 'adam', 'learning_rate': 1e-4}
    )

    assert optimizer is not None
    assert optimizer.param_groups[0]['lr'] == 1e-4


def test_optimizer_training(model):
    from neural_arch.optim import OptimizerFactory
    config = CONFIG
    batch = dataloader(1)[0]

    factory = OptimizerFactory()
    optimizer, scheduler = factory.create_optimizer_and_scheduler(
        model=model,
        config=config
    )

    # Test training step
    loss = loss_of(model, batch)
    loss.backward()
    optimizer.step()
    scheduler.step()

    assert not np.isnan(float(loss.data))
    assert optimizer.step_count == 1 and scheduler.last_epoch == 1


# ---- Performance Optimization: the wrappers' configs -----------------------------------------

def test_mixed_precision_and_distributed_optimizers_have_configs(model):
    from neural_arch.optim import DistributedOptimizer, MixedPrecisionOptimizer

    config = {"type": "mixed_precision", "base_optimizer": "adamw", "learning_rate": 1e-4,
              "use_amp": True}
    mp_optimizer = na.optim.build_optimizer(model, config)
    assert type(mp_optimizer) is MixedPrecisionOptimizer and mp_optimizer.use_amp
    assert na.optim.get_config(mp_optimizer)["base_optimizer"]["lr"] == 1e-4
    dist_optimizer = create_optimizer(model=model, optimizer_type="distributed",
                                      base_optimizer="adamw", learning_rate=1e-4)
    assert type(dist_optimizer) is DistributedOptimizer
    assert type(dist_optimizer.base_optimizer) is AdamW
