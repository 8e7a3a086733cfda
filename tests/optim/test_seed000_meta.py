"""Seed 000, "Meta-Optimizers" and "Gradient Surgery Methods": the examples as written.

The seed's code with ``neural_arch`` (``na``) in place of the library it names and
``na.nn`` for ``torch.nn``; the names the seed leaves undefined (``x``, ``y``,
``criterion``, ...) are defined here on small data. Each example runs its loop
and the test checks that it trained.
"""
from __future__ import annotations

import numpy as np

import neural_arch as na

nn = na.nn

rng = np.random.default_rng(0)
x = na.Tensor(rng.normal(size=(16, 10)).astype(np.float32))
y = na.Tensor((x.data @ rng.normal(size=(10, 1)) * 0.5).astype(np.float32))
y1 = na.Tensor(np.tanh(x.data[:, :1]).astype(np.float32))
y2 = na.Tensor((x.data[:, :5].argmax(axis=1)).astype(np.int64))
criterion = na.losses.MSELoss()
criterion1 = na.losses.MSELoss()
criterion2 = na.losses.CrossEntropyLoss()


def test_sam_example_runs_as_written():
    na.manual_seed(0)
    model = nn.Linear(10, 1)
    start = float(criterion(model(x), y).item())

    # Basic SAM
    optimizer = na.optim.SAM(
        model.parameters(),
        lr=1e-3,
        rho=0.05,  # Perturbation radius
        adaptive=False
    )

    # Training loop with SAM
    for epoch in range(100):
        # First forward pass
        output = model(x)
        loss = criterion(output, y)
        loss.backward()

        # SAM perturbation step
        optimizer.first_step(zero_grad=True)

        # Second forward pass
        output = model(x)
        loss = criterion(output, y)
        loss.backward()

        # SAM update step
        optimizer.second_step(zero_grad=True)

    assert optimizer.step_count == 100 and model.weight.grad is None
    assert float(criterion(model(x), y).item()) < start
    assert isinstance(optimizer.base_optimizer, na.optim.SGD)
    assert optimizer.param_groups[0]["rho"] == 0.05


def test_asam_example_runs_as_written():
    na.manual_seed(1)
    model = nn.Linear(10, 1)
    optimizer = na.optim.ASAM(
        model.parameters(),
        lr=1e-3,
        rho=0.5,  # Initial perturbation radius
        eta=0.01  # Adaptation rate
    )
    start = float(criterion(model(x), y).item())
    for _ in range(20):
        criterion(model(x), y).backward()
        optimizer.first_step(zero_grad=True)
        criterion(model(x), y).backward()
        optimizer.second_step(zero_grad=True)
    assert float(criterion(model(x), y).item()) < start
    assert optimizer.param_groups[0]["eta"] == 0.01


class MultiTaskModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(10, 64)
        self.task1 = nn.Linear(64, 1)
        self.task2 = nn.Linear(64, 5)


def task_losses(model):
    shared_features = model.shared(x)
    return (criterion1(model.task1(shared_features), y1),
            criterion2(model.task2(shared_features), y2))


def test_pcgrad_example_runs_as_written():
    na.manual_seed(2)
    model = MultiTaskModel()
    start = [float(v.item()) for v in task_losses(model)]

    # Use PCGrad for gradient surgery
    optimizer = na.optim.PCGrad(
        model.parameters(),
        lr=1e-3
    )

    # Training with multiple tasks
    for epoch in range(100):
        optimizer.zero_grad()

        # Forward passes for different tasks
        shared_features = model.shared(x)
        task1_output = model.task1(shared_features)
        task2_output = model.task2(shared_features)

        # Compute losses
        loss1 = criterion1(task1_output, y1)
        loss2 = criterion2(task2_output, y2)

        # PCGrad handles gradient conflicts
        optimizer.step([loss1, loss2])

    end = [float(v.item()) for v in task_losses(model)]
    assert end[0] < start[0] and end[1] < start[1]
    assert optimizer.step_count == 100


def test_gradnorm_example_runs_as_written():
    na.manual_seed(3)
    model = MultiTaskModel()
    start = [float(v.item()) for v in task_losses(model)]

    optimizer = na.optim.GradNorm(
        model.parameters(),
        lr=1e-3,
        alpha=1.5  # Restoring force hyperparameter
    )

    for _ in range(50):
        optimizer.zero_grad()
        optimizer.step(list(task_losses(model)))
    end = [float(v.item()) for v in task_losses(model)]
    assert end[0] < start[0] and end[1] < start[1]
    w = optimizer.task_weights
    assert w.shape == (2,) and abs(w.sum() - 2.0) < 1e-9 and not np.array_equal(w, [1, 1])
