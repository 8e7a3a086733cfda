"""One small-CNN training step: neural_arch against NumPy written by hand and PyTorch.

The model, float32, on a fixed random batch of 64 images 1 x 28 x 28 with labels
0..9::

    conv 1->16 3x3 (padding 1), relu, maxpool 2,
    conv 16->32 3x3 (padding 1), relu, maxpool 2, flatten, linear 1568->10

One step is forward -> cross-entropy (mean) -> backward -> SGD step
(``lr=0.01, momentum=0.9``; ``--optimizers sgd,adam`` adds Adam), for

* neural_arch: ``nn.Conv2d``, ``nn.ReLU``, ``nn.MaxPool2d``, ``nn.Flatten``,
  ``nn.Linear`` in an ``nn.Sequential``, ``losses.CrossEntropyLoss``, ``optim``,
  with its automatic gradient clamp on, as users run it;
* NumPy by hand: im2col convolutions (the windows of the padded input copied
  once into columns, one matmul; col2im adds the column gradients back with one
  strided add per kernel offset), 2 x 2 max pooling through four strided views,
  the gradients derived by hand, and the optimizer as in-place ufuncs;
* PyTorch on the CPU: ``torch.nn`` and ``torch.optim`` with their defaults.

All three start from the same weights; before timing, one step of each is checked
against the others (loss and updated weights). One thread throughout (BLAS/OpenMP
variables set to 1 before NumPy is imported, ``torch.set_num_threads(1)``). A
figure is the best of ``--repeat`` timing runs taken round-robin over the cases.

Run from the repository root::

    python -m benchmarks.conv_step --out benchmarks/results/conv_step.json
"""
from __future__ import annotations

from . import _common  # noqa: F401  (first: pins the thread pools to one thread)

import sys  # noqa: E402

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

from ._common import (HYPER, NumpyOptimizer, import_torch, now,  # noqa: E402
                      neural_arch_training_step, parse_step_arguments, run_steps,
                      step_arguments, step_table, step_targets, torch_training_step,
                      write_report)

BATCH = 64
CHANNELS = (1, 16, 32)
SIDE = 28
CLASSES = 10
LIBRARIES = ("numpy", "neural_arch", "torch")
LABELS = {"numpy": "NumPy (by hand)", "neural_arch": "neural_arch", "torch": "PyTorch (CPU)"}
FLAT = CHANNELS[-1] * (SIDE // 4) ** 2          # 32 x 7 x 7 = 1568 features


def init_weights(seed=0):
    """[conv1 w, b, conv2 w, b, linear w, b] float32, drawn like PyTorch's defaults."""
    rng = np.random.default_rng(seed)
    out = []
    for c_in, c_out in zip(CHANNELS[:-1], CHANNELS[1:]):
        bound = 1 / np.sqrt(c_in * 9)
        out += [rng.uniform(-bound, bound, (c_out, c_in, 3, 3)).astype(np.float32),
                rng.uniform(-bound, bound, c_out).astype(np.float32)]
    bound = 1 / np.sqrt(FLAT)
    out += [rng.uniform(-bound, bound, (CLASSES, FLAT)).astype(np.float32),
            rng.uniform(-bound, bound, CLASSES).astype(np.float32)]
    return out


def make_batch(batch=BATCH, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, CHANNELS[0], SIDE, SIDE), np.float32),
            rng.integers(0, CLASSES, batch))


# ---- NumPy by hand ------------------------------------------------------------------------
# Activations are kept channel-major, (C, N, H, W): the columns of a convolution
# are then (C*9, N*H*W) and its output (O, N*H*W) reshapes to (O, N, H, W) without
# a transpose. The input and the flattened features are the only transposed copies.

def conv_forward(x, w, b):
    """3x3 convolution, padding 1, of ``x (C, N, H, W)``: returns ``(y, cols)``."""
    c, n, h, wd = x.shape
    xpad = np.zeros((c, n, h + 2, wd + 2), x.dtype)
    xpad[:, :, 1:-1, 1:-1] = x
    win = sliding_window_view(xpad, (3, 3), axis=(2, 3))          # (C, N, H, W, 3, 3)
    cols = win.transpose(0, 4, 5, 1, 2, 3).reshape(c * 9, n * h * wd)   # the one copy
    y = w.reshape(w.shape[0], -1) @ cols
    y += b[:, None]
    return y.reshape(w.shape[0], n, h, wd), cols


def conv_backward(gy, w, cols, need_x):
    """Gradients of :func:`conv_forward`: ``(gw, gb, gx or None)``."""
    o, n, h, wd = gy.shape
    g2 = gy.reshape(o, -1)
    gw = (g2 @ cols.T).reshape(w.shape)
    gb = g2.sum(axis=1)
    if not need_x:
        return gw, gb, None
    c = w.shape[1]
    dcols = (w.reshape(o, -1).T @ g2).reshape(c, 3, 3, n, h, wd)
    gpad = np.zeros((c, n, h + 2, wd + 2), gy.dtype)
    for i in range(3):                                # col2im: one add per kernel offset
        for j in range(3):
            gpad[:, :, i:i + h, j:j + wd] += dcols[:, i, j]
    return gw, gb, gpad[:, :, 1:-1, 1:-1]


QUARTERS = [(slice(None), slice(None), slice(i, None, 2), slice(j, None, 2))
            for i in (0, 1) for j in (0, 1)]


def pool_forward(a):
    """2x2 max pooling (stride 2) of ``a (C, N, H, W)`` with even H and W."""
    q = [a[s] for s in QUARTERS]
    return np.maximum(np.maximum(q[0], q[1]), np.maximum(q[2], q[3]))


def pool_backward(gp, a, m):
    """Route each pooled gradient to the window elements equal to the max.

    Ties can only be zeros left by the relu before the pool (random inputs make
    positive ties impossible), and the relu's backward zeroes those anyway, so
    this matches routing to the first maximum.
    """
    ga = np.empty_like(a)
    for s in QUARTERS:
        np.multiply(gp, a[s] == m, out=ga[s])
    return ga


def make_numpy(weights, x, y, kind):
    params = [a.copy() for a in weights]
    opt = NumpyOptimizer(kind, params)
    rows = np.arange(len(y))
    x_cn = np.ascontiguousarray(x.transpose(1, 0, 2, 3))          # (C, N, H, W)

    def step():
        w1, b1, w2, b2, w3, b3 = params
        n = len(y)
        h1, cols1 = conv_forward(x_cn, w1, b1)
        a1 = np.maximum(h1, 0)
        p1 = pool_forward(a1)
        h2, cols2 = conv_forward(p1, w2, b2)
        a2 = np.maximum(h2, 0)
        p2 = pool_forward(a2)
        f = p2.transpose(1, 0, 2, 3).reshape(n, -1)               # (N, C*7*7) as torch flattens
        z = f @ w3.T
        z += b3
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = np.log(s[:, 0]).mean() - z[rows, y].mean()
        e /= s
        e[rows, y] -= 1
        e /= n
        g_w3, g_b3 = e.T @ f, e.sum(axis=0)
        gf = e @ w3
        gp2 = gf.reshape(n, p2.shape[0], *p2.shape[2:]).transpose(1, 0, 2, 3)
        ga2 = pool_backward(gp2, a2, p2)
        ga2 *= h2 > 0
        g_w2, g_b2, gp1 = conv_backward(ga2, w2, cols2, need_x=True)
        ga1 = pool_backward(gp1, a1, p1)
        ga1 *= h1 > 0
        g_w1, g_b1, _ = conv_backward(ga1, w1, cols1, need_x=False)
        opt.step([g_w1, g_b1, g_w2, g_b2, g_w3, g_b3])
        return loss

    return step, lambda: params


# ---- neural_arch and torch ---------------------------------------------------------------

def make_neural_arch(weights, x, y, kind):
    import neural_arch as na
    nn = na.nn
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(FLAT, CLASSES))
    for p, a in zip(model.parameters(), weights):
        p.data[...] = a
    return neural_arch_training_step(model, x, y, kind, HYPER)


def make_torch(weights, x, y, kind):
    torch = import_torch()
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(FLAT, CLASSES))
    with torch.no_grad():
        for p, a in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(a))
    return torch_training_step(model, x, y, kind, HYPER)


MAKERS = {"numpy": make_numpy, "neural_arch": make_neural_arch, "torch": make_torch}


def main(argv=None):
    p = step_arguments("python -m benchmarks.conv_step", __doc__.split("\n\n")[0], LIBRARIES)
    p.add_argument("--optimizers", default="sgd",
                   help="comma-separated subset of sgd,adam (default sgd)")
    args = parse_step_arguments(p, argv, LIBRARIES)
    kinds = [k.strip() for k in args.optimizers.split(",") if k.strip()]
    if not kinds or sorted(set(kinds) - set(HYPER)):
        p.error(f"choose optimizers from {sorted(HYPER)}")
    weights = init_weights()
    x, y = make_batch()
    configs = {f"batch{BATCH}/{kind}": (weights, x, y, kind) for kind in kinds}
    started = now()
    results, skipped = run_steps(configs, args.libs, MAKERS, args.repeat, args.min_time)
    print(f"CNN training step (batch {BATCH}, 1x{SIDE}x{SIDE}), float32, one thread; "
          f"milliseconds per step, best of {args.repeat}\n")
    print(step_table(results, LABELS))
    targets = step_targets(results, 1.5)
    for key, why in skipped.items():
        print(f"skipped {key}: {why}")
    if args.out:
        config = {"model": "conv 1->16 3x3 p1, relu, maxpool 2, conv 16->32 3x3 p1, relu, "
                           "maxpool 2, flatten, linear 1568->10",
                  "batch": BATCH, "input": [CHANNELS[0], SIDE, SIDE], "dtype": "float32",
                  "optimizers": {k: HYPER[k] for k in kinds}, "repeat": args.repeat,
                  "min_time_s": args.min_time, "quick": args.quick,
                  "timer": "timeit, best of repeat, runs round-robin over all cases, "
                           "gc enabled"}
        write_report(args.out, "conv_step", config, results, started=started,
                     targets=targets, skipped=skipped,
                     notes=["neural_arch runs with its automatic gradient clamp on",
                            "torch.set_num_threads(1); OMP/MKL/OpenBLAS threads 1",
                            "NumPy by hand keeps activations channel-major (C, N, H, W)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
