"""Run under ``mpirun -n 2``: one rank fails; the job must end, not hang.

``python failure.py raise``: rank 1 raises in the middle of training while rank 0
waits in the gradient all-reduce. ``python failure.py timeout``: rank 1 stops
taking part (it sleeps) and rank 0's all-reduce hits its 2-second deadline.
"""
from __future__ import annotations

import sys
import time

import numpy as np

import neural_arch as na
from neural_arch import distributed as dist
from neural_arch import nn
from neural_arch.losses.functional import mse_loss

mode = sys.argv[1]
g = dist.init(timeout=2 if mode == "timeout" else 60)
na.manual_seed(0)
model = dist.DistributedDataParallel(nn.Sequential(nn.Linear(4, 4), nn.Tanh(),
                                                   nn.Linear(4, 1)).double())
opt = na.optim.SGD(model.parameters(), lr=0.1)
rng = np.random.default_rng(g.rank)
for step in range(5):
    if step == 2 and g.rank == 1:
        if mode == "raise":
            raise ValueError("rank 1 failed on purpose at step 2")
        time.sleep(60)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 1))
    opt.zero_grad()
    mse_loss(model(na.Tensor(x)), na.Tensor(y)).backward()
    opt.step()
print("finished", g.rank, flush=True)
