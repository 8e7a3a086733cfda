"""One MLP training step: neural_arch against NumPy written by hand and PyTorch.

The model is an MLP 784-256-256-10 with ReLU, float32, trained on a fixed random
batch (64 or 512 samples, class labels 0..9). One step is

    forward -> cross-entropy (mean) -> backward -> optimizer step

with SGD (``lr=0.01, momentum=0.9``) or Adam (``lr=1e-3``), for

* neural_arch: ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU``,
  ``losses.CrossEntropyLoss``, ``optim.SGD`` / ``optim.Adam``, ``zero_grad``,
  ``loss.backward()``, ``step()``, with its automatic gradient clamp on, as users
  run it;
* NumPy by hand: the same ops written out, forward and backward (the gradients
  derived by hand), and the optimizer as in-place ufuncs: what a framework on
  NumPy can at best reach;
* PyTorch on the CPU: ``torch.nn`` and ``torch.optim`` with their defaults.

All three start from the same weights, and before timing one step of each is
checked against the others (loss and updated weights). Everything runs on one
thread (BLAS/OpenMP variables set to 1 before NumPy is imported,
``torch.set_num_threads(1)``). A figure is the best of ``--repeat`` timing runs
taken round-robin over the cases.

Run from the repository root::

    python -m benchmarks.mlp_step --out benchmarks/results/mlp_step.json
"""
from __future__ import annotations

from . import _common  # noqa: F401  (first: pins the thread pools to one thread)

import sys  # noqa: E402

import numpy as np  # noqa: E402

from ._common import (HYPER, NumpyOptimizer, import_torch, now,  # noqa: E402
                      neural_arch_training_step, parse_step_arguments, run_steps,
                      step_arguments, step_table, step_targets, torch_training_step,
                      write_report)

SIZES = (784, 256, 256, 10)
BATCHES = (64, 512)
OPTIMIZERS = ("sgd", "adam")
LIBRARIES = ("numpy", "neural_arch", "torch")
LABELS = {"numpy": "NumPy (by hand)", "neural_arch": "neural_arch", "torch": "PyTorch (CPU)"}


def init_weights(seed=0):
    """[(W, b), ...] float32, drawn like PyTorch's default Linear initialisation."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(n_in)
        layers.append((rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32),
                       rng.uniform(-bound, bound, n_out).astype(np.float32)))
    return layers


def make_batch(batch, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, SIZES[0]), np.float32),
            rng.integers(0, SIZES[-1], batch))


# ---- NumPy by hand ------------------------------------------------------------------------

def make_numpy(layers, x, y, kind):
    params = [a.copy() for wb in layers for a in wb]
    opt = NumpyOptimizer(kind, params)
    rows = np.arange(len(y))

    def step():
        (w1, b1, w2, b2, w3, b3), n = params, len(y)
        # forward: linear, relu, linear, relu, linear
        h1 = x @ w1.T
        h1 += b1
        a1 = np.maximum(h1, 0)
        h2 = a1 @ w2.T
        h2 += b2
        a2 = np.maximum(h2, 0)
        z = a2 @ w3.T
        z += b3
        # cross-entropy (mean) through a shifted log-softmax
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = np.log(s[:, 0]).mean() - z[rows, y].mean()
        # backward: dL/dz = (softmax - onehot) / n, then the layers in reverse
        e /= s
        e[rows, y] -= 1
        e /= n
        dz = e
        g_w3, g_b3 = dz.T @ a2, dz.sum(axis=0)
        d2 = dz @ w3
        d2 *= h2 > 0
        g_w2, g_b2 = d2.T @ a1, d2.sum(axis=0)
        d1 = d2 @ w2
        d1 *= h1 > 0
        g_w1, g_b1 = d1.T @ x, d1.sum(axis=0)
        opt.step([g_w1, g_b1, g_w2, g_b2, g_w3, g_b3])
        return loss

    return step, lambda: params


# ---- neural_arch and torch ---------------------------------------------------------------

def make_neural_arch(layers, x, y, kind):
    import neural_arch as na
    model = na.nn.Sequential(na.nn.Linear(784, 256), na.nn.ReLU(), na.nn.Linear(256, 256),
                             na.nn.ReLU(), na.nn.Linear(256, 10))
    for layer, (w, b) in zip(model[::2], layers):
        layer.weight.data[...] = w
        layer.bias.data[...] = b
    return neural_arch_training_step(model, x, y, kind, HYPER)


def make_torch(layers, x, y, kind):
    torch = import_torch()
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    with torch.no_grad():
        for layer, (w, b) in zip(model[::2], layers):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    return torch_training_step(model, x, y, kind, HYPER)


MAKERS = {"numpy": make_numpy, "neural_arch": make_neural_arch, "torch": make_torch}


def configs(batches=BATCHES, optimizers=OPTIMIZERS):
    """key -> maker arguments (weights, batch, labels, optimizer) of every case."""
    layers = init_weights()
    out = {}
    for batch in batches:
        x, y = make_batch(batch)
        for kind in optimizers:
            out[f"batch{batch}/{kind}"] = (layers, x, y, kind)
    return out


def main(argv=None):
    p = step_arguments("python -m benchmarks.mlp_step", __doc__.split("\n\n")[0], LIBRARIES)
    args = parse_step_arguments(p, argv, LIBRARIES)
    started = now()
    results, skipped = run_steps(configs(), args.libs, MAKERS, args.repeat, args.min_time)
    print(f"MLP {'-'.join(map(str, SIZES))} training step, float32, one thread; "
          f"milliseconds per step, best of {args.repeat}\n")
    print(step_table(results, LABELS))
    targets = step_targets(results, 1.15, keys=[f"batch64/{k}" for k in OPTIMIZERS])
    for key, why in skipped.items():
        print(f"skipped {key}: {why}")
    if args.out:
        config = {"sizes": SIZES, "batches": BATCHES, "dtype": "float32",
                  "optimizers": {k: HYPER[k] for k in OPTIMIZERS}, "repeat": args.repeat,
                  "min_time_s": args.min_time, "quick": args.quick,
                  "timer": "timeit, best of repeat, runs round-robin over all cases, "
                           "gc enabled"}
        write_report(args.out, "mlp_step", config, results, started=started,
                     targets=targets, skipped=skipped,
                     notes=["neural_arch runs with its automatic gradient clamp on",
                            "torch.set_num_threads(1); OMP/MKL/OpenBLAS threads 1",
                            "one step = zero_grad, forward, cross-entropy (mean), "
                            "backward, optimizer step"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
