"""Run under ``mpirun -n 4``: seed 001's DistributedOptimizer block, as written there.

Rank 0 prints one JSON line: whether the four replicas hold the same parameters
after a few steps on different data, and the optimizer's class names.
"""
from __future__ import annotations

import json

import numpy as np

import neural_arch as na
from neural_arch import distributed as dist
from neural_arch.optimizers import DistributedOptimizer

na.manual_seed(dist.rank())          # different initial weights on every rank
model = na.nn.Sequential(na.nn.Linear(6, 5), na.nn.ReLU(), na.nn.Linear(5, 2))

# Create distributed optimizer
dist_optimizer = DistributedOptimizer(
    model=model,
    optimizer_type='adamw',
    learning_rate=1e-4,
    world_size=4
)

rng = np.random.default_rng(dist.rank())
for _ in range(3):
    x = na.Tensor(rng.standard_normal((4, 6)).astype(np.float32))
    loss = (model(x) ** 2).mean()
    dist_optimizer.zero_grad()
    loss.backward()
    dist_optimizer.step()

mine = [p.data for p in model.parameters()]
everyone = dist.group().allgather_object(mine)
if dist.rank() == 0:
    print(json.dumps({
        "world_size": dist.world_size(),
        "replicas_equal": all(np.array_equal(a, b) for other in everyone for a, b in
                              zip(everyone[0], other)),
        "base": type(dist_optimizer.base_optimizer).__name__,
        "lr": float(dist_optimizer.lr),
        "step_count": dist_optimizer.step_count}))
