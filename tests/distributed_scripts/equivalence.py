"""Run under ``mpirun -n 2``: data-parallel training against one process on the whole batch.

Every check trains a fresh float64 model for a few steps in one of the
distributed set-ups, and, in the same process, a reference copy of the model
on the concatenation of all ranks' batches. Rank 0 writes one JSON object,
``{check: {...numbers...}}``, to the path given as the first argument; the
assertions are in tests/test_distributed.py.
"""
from __future__ import annotations

import json
import sys

import numpy as np

import neural_arch as na
from neural_arch import distributed as dist
from neural_arch import nn
from neural_arch.losses.functional import mse_loss
from neural_arch.optim import DistributedOptimizer

B, D_IN, D_OUT, STEPS = 6, 5, 3, 4
g = dist.init(timeout=60)
R, W = g.rank, g.size
assert W == 2, "run with mpirun -n 2"


def make_model(seed=0, bn=False, extra=False):
    na.manual_seed(seed)
    layers = [nn.Linear(D_IN, 8)]
    if bn:
        layers.append(nn.BatchNorm1d(8))
    layers += [nn.Tanh(), nn.Linear(8, D_OUT)]
    m = nn.Sequential(*layers).double()
    if extra:
        m.unused = nn.Parameter(np.ones(3))
        m.rank0_only = nn.Parameter(np.full(2, 0.5))
    return m


def batches(step, n_ranks=W, seed=1):
    """The whole batch of one step: n_ranks * B examples; rank r reads rows r*B:(r+1)*B."""
    rng = np.random.default_rng([seed, step])
    return rng.standard_normal((n_ranks * B, D_IN)), rng.standard_normal((n_ranks * B, D_OUT))


def mine(a):
    return a[R * B:(R + 1) * B]


def params(m):
    return [p.data.copy() for p in m.parameters()]


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def replicas_equal(ps):
    everyone = g.allgather_object([na.backend.asnumpy(p) for p in ps])
    return all(all(np.array_equal(x, y) for x, y in zip(everyone[0], other))
               for other in everyone[1:])


def loss_of(model, x, y):
    return mse_loss(model(na.Tensor(x)), na.Tensor(y))


def reference(make_opt, steps=STEPS, **model_kw):
    model = make_model(**model_kw)
    opt = make_opt(model.parameters())
    for t in range(steps):
        x, y = batches(t)
        opt.zero_grad()
        loss_of(model, x, y).backward()
        opt.step()
    return params(model)


def report(name, got, ref, **extra):
    results[name] = {"max_diff": max_diff(got, ref), "replicas_equal": replicas_equal(got),
                     **extra}


results = {}

# 1-2. DDP with a plain optimizer (SGD with momentum; seed 000's LARS).
for name, make_opt in [
        ("ddp_sgd", lambda ps: na.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True)),
        ("ddp_lars", lambda ps: na.optim.LARS(ps, lr=1e-3, momentum=0.9, weight_decay=1e-4))]:
    model = dist.DistributedDataParallel(make_model(seed=R))      # rank 1 starts elsewhere
    opt = make_opt(model.parameters())
    for t in range(STEPS):
        x, y = batches(t)
        opt.zero_grad()
        loss_of(model, mine(x), mine(y)).backward()
        opt.step()
    report(name, params(model), reference(make_opt))

# 3. DistributedOptimizer on a plain model (seed 001's spelling), and 4. with ZeRO-1.
adamw = lambda ps: na.optim.AdamW(ps, lr=1e-2, weight_decay=1e-2)  # noqa: E731
finals, opts = {}, {}
for stage in (0, 1):
    model = make_model(seed=R)
    opt = DistributedOptimizer(model=model, optimizer_type="adamw", learning_rate=1e-2,
                               weight_decay=1e-2, world_size=W, zero_stage=stage)
    for t in range(STEPS):
        x, y = batches(t)
        opt.zero_grad()
        loss_of(model, mine(x), mine(y)).backward()
        opt.step()
    finals[stage], opts[stage] = params(model), opt
    report(f"distopt_zero{stage}", finals[stage], reference(adamw),
           state_bytes=opt.state_bytes(), step_count=opt.step_count)
results["zero1_vs_plain"] = {
    "identical": all(np.array_equal(a, b) for a, b in zip(finals[0], finals[1]))}
sd0, sd1 = opts[0].state_dict(), opts[1].state_dict()       # ZeRO's is a collective
results["zero1_state_dict"] = {
    "same_keys": sorted(sd0["state"]) == sorted(sd1["state"]),
    "identical": all(np.array_equal(na.backend.asnumpy(sd0["state"][k][key]), v)
                     if hasattr(v, "shape") else sd0["state"][k][key] == v
                     for k in sd1["state"] for key, v in sd1["state"][k].items()),
    "step_count": sd1["step_count"]}
# A ZeRO optimizer resumed from the unsharded state dict continues like the unsharded one.
model_a, model_b = make_model(seed=5), make_model(seed=5)
opt_a = DistributedOptimizer(model=model_a, optimizer_type="adamw", learning_rate=1e-2,
                             weight_decay=1e-2)
opt_b = DistributedOptimizer(model=model_b, optimizer_type="adamw", learning_rate=1e-2,
                             weight_decay=1e-2, zero_stage=1)
for o, m in ((opt_a, model_a), (opt_b, model_b)):
    for p, v in zip(m.parameters(), finals[0]):
        p.data[...] = v
    o.load_state_dict(sd0)
    x, y = batches(99)
    o.zero_grad()
    loss_of(m, mine(x), mine(y)).backward()
    o.step()
results["zero1_resume"] = {
    "identical": all(np.array_equal(p.data, q.data)
                     for p, q in zip(model_a.parameters(), model_b.parameters())),
    "step_count": opt_b.step_count}

# 5. DDP with LARS (per-tensor trust ratios), plain and through a ZeRO-1 DistributedOptimizer.
lars = lambda ps: na.optim.LARS(ps, lr=1e-2, momentum=0.9, weight_decay=1e-4)  # noqa: E731
finals = {}
for stage in (0, 1):
    model = dist.DistributedDataParallel(make_model(seed=R))
    if stage:
        opt = DistributedOptimizer(model=model, optimizer_type=na.optim.LARS,
                                   learning_rate=1e-2, momentum=0.9, weight_decay=1e-4,
                                   zero_stage=1)
    else:
        opt = lars(model.parameters())
    for t in range(STEPS):
        x, y = batches(t)
        opt.zero_grad()
        loss_of(model, mine(x), mine(y)).backward()
        opt.step()
    finals[stage] = params(model)
report("ddp_zero1_lars", finals[1], reference(lars),
       identical_to_ddp=all(np.array_equal(a, b) for a, b in zip(finals[0], finals[1])))

# 5b. A group added after construction: ZeRO-1 shards it too, and still equals plain.
finals = {}
for stage in (0, 1):
    model = make_model(seed=R)
    opt = DistributedOptimizer(model[0].parameters(), "adam", 1e-2, zero_stage=stage)
    opt.add_param_group({"params": model[2].parameters(), "lr": 3e-2})
    for t in range(STEPS):
        x, y = batches(t)
        opt.zero_grad()
        loss_of(model, mine(x), mine(y)).backward()
        opt.step()
    finals[stage] = params(model)
results["zero1_added_group"] = {
    "identical": all(np.array_equal(a, b) for a, b in zip(finals[0], finals[1])),
    "replicas_equal": replicas_equal(finals[1])}

# 6. One module call per half-batch before a single backward (two sync points).
sgd = lambda ps: na.optim.SGD(ps, lr=0.1)  # noqa: E731
model = dist.DistributedDataParallel(make_model())
opt = sgd(model.parameters())
for t in range(STEPS):
    x, y = batches(t)
    xs, ys = mine(x), mine(y)
    opt.zero_grad()
    h = B // 2
    loss = (loss_of(model, xs[:h], ys[:h]) + loss_of(model, xs[h:], ys[h:])) * 0.5
    loss.backward()
    opt.step()
report("ddp_two_calls", params(model), reference(sgd))

# 7. Gradient accumulation: half a batch under no_sync(), the other half synced.
model = dist.DistributedDataParallel(make_model())
opt = sgd(model.parameters())
for t in range(STEPS):
    x, y = batches(t)
    xs, ys = mine(x), mine(y)
    opt.zero_grad()
    h = B // 2
    with model.no_sync():
        (loss_of(model, xs[:h], ys[:h]) * 0.5).backward()
    local = [p.grad.data.copy() for p in model.parameters()]
    (loss_of(model, xs[h:], ys[h:]) * 0.5).backward()
    opt.step()
report("ddp_no_sync", params(model), reference(sgd),
       local_differ=not replicas_equal(local))

# 8. LBFGS through DistributedOptimizer: gradients and loss averaged per closure call.
lbfgs = lambda ps: na.optim.LBFGS(ps, lr=1, max_iter=5, line_search_fn="strong_wolfe")  # noqa
model = make_model()
opt = DistributedOptimizer(model.parameters(), na.optim.LBFGS, lr=1, max_iter=5,
                           line_search_fn="strong_wolfe")
ref_model = make_model()
ref_opt = lbfgs(ref_model.parameters())
x, y = batches(0)
for _ in range(2):
    def closure():
        opt.zero_grad()
        loss = loss_of(model, mine(x), mine(y))
        loss.backward()
        return loss

    def ref_closure():
        ref_opt.zero_grad()
        loss = loss_of(ref_model, x, y)
        loss.backward()
        return loss
    loss = opt.step(closure)
    ref_loss = ref_opt.step(ref_closure)
report("distopt_lbfgs", params(model), params(ref_model),
       loss_diff=abs(float(loss.item()) - float(ref_loss.item())))

# 9. Unused parameters: one used by no rank, one only by rank 0.
model = make_model(extra=True)
ddp = dist.DistributedDataParallel(model)
x, y = batches(0)
out = ddp(na.Tensor(mine(x)))
loss = mse_loss(out, na.Tensor(mine(y)))
if R == 0:
    loss = loss + (ddp.module.rank0_only ** 2).sum()
loss.backward()
results["unused_params"] = {
    "unused_is_none": model.unused.grad is None,
    "rank0_only_grad": na.backend.asnumpy(model.rank0_only.grad.data).tolist(),
    "replicas_equal": replicas_equal([p.grad.data for p in model.parameters()
                                      if p.grad is not None])}

# 10. Batch-norm buffers follow rank 0; tiny buckets (one tensor each) give the same result.
model = dist.DistributedDataParallel(make_model(bn=True), bucket_cap_mb=1e-6)
opt = sgd(model.parameters())
for t in range(STEPS):
    x, y = batches(t)
    opt.zero_grad()
    loss_of(model, mine(x), mine(y)).backward()
    opt.step()
local_stats = [b.data.copy() for b in model.module.buffers() if b.dtype.kind == "f"]
x, y = batches(STEPS)
with na.no_grad():
    model(na.Tensor(x))          # the same input everywhere, after rank 0's buffers came
results["ddp_batchnorm"] = {
    "buckets": len(model._buckets.buckets),
    "replicas_equal": replicas_equal(params(model)),
    "local_stats_differ": not replicas_equal(local_stats),
    "buffers_equal": replicas_equal([b.data for b in model.module.buffers()])}

# 11. Device arrays through host copies (the strict fake CuPy of the test suite).
from tests import fake_cupy  # noqa: E402

fake_cupy.register()
model = make_model(seed=R).to("fake")
ddp = dist.DistributedDataParallel(model)
opt = sgd(ddp.parameters())
for t in range(STEPS):
    x, y = batches(t)
    opt.zero_grad()
    out = ddp(na.Tensor(mine(x)).to("fake"))
    mse_loss(out, na.Tensor(mine(y)).to("fake")).backward()
    opt.step()
got = [na.backend.asnumpy(p.data) for p in model.parameters()]
report("ddp_fake_device", got, reference(sgd),
       device=na.backend.device_of(model[0].weight.data), gpu_aware=g.gpu_aware)

# 12. Collectives on Tensors.
t = na.Tensor(np.array([1.0, 2.0]) * (R + 1))
dist.all_reduce(t, op="mean")
m = na.Tensor(np.array([float(R)]))
dist.all_reduce(m, op="max")
b = np.arange(3.0) + 10 * R
dist.broadcast(b, src=1)
objs = [None] * W
dist.all_gather_object(objs, {"rank": R})
results["collectives"] = {"mean": t.data.tolist(), "max": m.data.tolist(),
                          "broadcast": b.tolist(), "objects": objs}

# 13. DistributedSampler with a DataLoader: disjoint shares that cover the data.
from neural_arch.data import DataLoader, Subset, TensorDataset  # noqa: E402

ds = TensorDataset(np.arange(11.0).reshape(11, 1), np.arange(11))
sampler = dist.DistributedSampler(ds, shuffle=True, seed=3)
seen = []
for epoch in range(2):
    sampler.set_epoch(epoch)
    loader = DataLoader(Subset(ds, list(sampler)), batch_size=4)
    seen.append([int(v) for _, tb in loader for v in na.backend.asnumpy(tb.data)])
results["sampler"] = {"shares": g.allgather_object(seen)}

dist.barrier()
if R == 0:
    with open(sys.argv[1], "w") as f:
        json.dump(results, f, indent=1)
