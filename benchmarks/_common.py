"""Pieces shared by the step benchmarks (optim_step, mlp_step, conv_step).

Importing this module pins every BLAS/OpenMP pool to one thread through the
environment, so it must be imported before NumPy (the benchmarks import it first);
if NumPy was already imported the pin may come too late, and a warning says so.
Machine information and library versions come from :mod:`benchmarks.op_overhead`,
so every benchmark's JSON names the machine the same way.
"""
from __future__ import annotations

import os
import sys
import warnings

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_one_thread():
    """Set the thread-count variables of OpenMP, MKL, OpenBLAS, ... to 1."""
    if "numpy" in sys.modules:
        warnings.warn("numpy was imported before benchmarks._common: its BLAS may use "
                      "several threads", RuntimeWarning, stacklevel=2)
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"


pin_one_thread()

import json  # noqa: E402
import time  # noqa: E402

from .op_overhead import calibrated_timer, library_version, machine_info  # noqa: E402,F401


def import_torch():
    """PyTorch on one CPU thread, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def time_round_robin(cases, repeat, min_time):
    """Best-of-``repeat`` seconds per call of every case.

    ``cases`` maps a key to a callable. Each timing run calls a case enough times
    to last ``min_time`` seconds (calibrated once); the runs go round the cases in
    turn, so a change of load on a shared machine touches all of them alike. The
    garbage collector stays on, as in real use.
    """
    timers = {key: calibrated_timer(fn, min_time) for key, fn in cases.items()}
    best = {key: float("inf") for key in cases}
    for _ in range(repeat):
        for key, (timer, number) in timers.items():
            best[key] = min(best[key], timer.timeit(number) / number)
    return best


def ratio_rows(rows, baselines):
    """Add ``vs_<base>`` (time over the baseline's time) to every row of ``rows``."""
    for base in baselines:
        if base in rows:
            for r in rows.values():
                r[f"vs_{base}"] = r["ms"] / rows[base]["ms"]
    return rows


# ---- the training-step benchmarks (mlp_step, conv_step) -----------------------------------

def build_steps(makers, libraries, *args, rtol=1e-4, wtol=1e-3):
    """Step callables of ``libraries``, checked against each other after one step.

    ``makers[name](*args)`` returns ``(step, read)``: ``step()`` runs one training
    step and returns the loss, ``read()`` the parameters as arrays. The first
    library (NumPy by hand when present) is the reference for the loss and the
    updated parameters. Returns ``(steps, skipped)``.
    """
    import numpy as np
    steps, losses, weights, skipped = {}, {}, {}, {}
    for name in libraries:
        if name == "torch" and import_torch() is None:
            skipped[name] = "torch is not installed"
            continue
        step, read = makers[name](*args)
        losses[name] = float(step())
        weights[name] = [np.array(a) for a in read()]
        steps[name] = step
    ref = next(iter(steps))
    for name in steps:
        if not np.isclose(losses[name], losses[ref], rtol=rtol):
            raise AssertionError(f"{name}: loss {losses[name]} differs from {ref}'s "
                                 f"{losses[ref]}")
        for i, (a, b) in enumerate(zip(weights[name], weights[ref])):
            if a.shape != b.shape or not np.allclose(a, b, rtol=wtol, atol=1e-5):
                raise AssertionError(f"{name}: parameter {i} after one step differs from "
                                     f"{ref}'s")
    return steps, skipped


def neural_arch_training_step(model, x, y, kind, hyper):
    """``(step, read)`` for one cross-entropy training step of a neural_arch ``model``.

    ``kind`` is ``'sgd'`` or ``'adam'`` with hyper-parameters ``hyper[kind]``; ``read()``
    returns the parameters' arrays (to check the libraries against each other).
    """
    import neural_arch as na
    loss_fn = na.losses.CrossEntropyLoss()
    cls = na.optim.SGD if kind == "sgd" else na.optim.Adam
    opt = cls(model.parameters(), **hyper[kind])
    xt = na.Tensor(x)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(xt), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step, lambda: [p.data for p in model.parameters()]


def torch_training_step(model, x, y, kind, hyper):
    """The same step for a torch ``model`` (see :func:`neural_arch_training_step`)."""
    torch = import_torch()
    loss_fn = torch.nn.CrossEntropyLoss()
    cls = torch.optim.SGD if kind == "sgd" else torch.optim.Adam
    opt = cls(model.parameters(), **hyper[kind])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.item()

    return step, lambda: [p.detach().numpy() for p in model.parameters()]


def run_steps(configs, libraries, makers, repeat, min_time):
    """Time every (config, library) step round-robin; ``configs`` maps key -> args."""
    cases, skipped = {}, {}
    for key, args in configs.items():
        steps, skip = build_steps(makers, libraries, *args)
        skipped.update({f"{key}/{k}": v for k, v in skip.items()})
        cases.update({(key, name): fn for name, fn in steps.items()})
    results = {}
    for (key, name), t in time_round_robin(cases, repeat, min_time).items():
        results.setdefault(key, {})[name] = {"ms": t * 1e3}
    for rows in results.values():
        ratio_rows(rows, ("numpy", "torch"))
    return results, skipped


def step_table(results, labels):
    body = [[key, labels[name], f"{r['ms']:.3f}",
             f"{r['vs_numpy']:.2f}" if "vs_numpy" in r else "-",
             f"{r['vs_torch']:.2f}" if "vs_torch" in r else "-"]
            for key, rows in results.items() for name, r in rows.items()]
    return markdown_table(["case", "library", "ms", "× NumPy", "× PyTorch"], body)


def step_targets(results, limit, keys=None):
    """neural_arch's ratio to NumPy by hand against ``limit`` for ``keys`` (default all)."""
    out = []
    for key, rows in results.items():
        if (keys is None or key in keys) and "neural_arch" in rows:
            ratio = rows["neural_arch"].get("vs_numpy")
            out.append({"case": key, "implementation": "neural_arch", "baseline": "numpy",
                        "target": limit, "ratio": ratio,
                        "met": None if ratio is None else ratio <= limit})
    for t in out:
        ratio = "n/a" if t["ratio"] is None else f"{t['ratio']:.2f}"
        print(f"target {t['case']}: neural_arch / NumPy by hand = {ratio} (<= {limit})"
              f"{'' if t['met'] in (None, True) else '  MISSED'}")
    return out


def timing_arguments(prog, description, repeat=7,
                     quick="3 runs of 0.05 s: a smoke test, not a result"):
    """A command line with the options every timing benchmark has: ``--repeat``,
    ``--min-time``, ``--quick`` (its help text: ``quick``) and ``--out``."""
    import argparse
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--repeat", type=int, default=repeat,
                   help=f"timing runs per case; the best counts (default {repeat})")
    p.add_argument("--min-time", type=float, default=0.2,
                   help="seconds each timing run lasts at least (default 0.2)")
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--out", help="write the results as JSON to this path")
    return p


def step_arguments(prog, description, libraries, repeat=15):
    """The command line shared by the training-step benchmarks."""
    p = timing_arguments(prog, description, repeat)
    p.add_argument("--libs", default=",".join(libraries),
                   help=f"comma-separated subset of {','.join(libraries)}")
    return p


def parse_step_arguments(p, argv, libraries):
    args = p.parse_args(argv)
    libs = [s.strip() for s in args.libs.split(",") if s.strip()]
    if not libs or sorted(set(libs) - set(libraries)):
        p.error(f"choose libraries from {list(libraries)}")
    if args.repeat < 1 or args.min_time < 0:
        p.error("--repeat must be at least 1 and --min-time at least 0")
    if args.quick:
        args.repeat, args.min_time = 3, 0.05
    args.libs = libs
    return args


# ---- the optimizers of the training-step benchmarks, written by hand ----------------------

#: Hyper-parameters of the training-step benchmarks (mlp_step, conv_step).
HYPER = {"sgd": dict(lr=0.01, momentum=0.9), "adam": dict(lr=1e-3)}


class NumpyOptimizer:
    """SGD with momentum or Adam (PyTorch's defaults otherwise) as in-place NumPy ufuncs.

    ``step(grads)`` updates the arrays ``params`` in place, tensor by tensor, with a
    preallocated scratch array each: the update a hand-written NumPy training loop
    would make.
    """

    def __init__(self, kind, params):
        import numpy as np
        self.np, self.kind, self.params = np, kind, params
        self.scratch = [np.empty_like(p) for p in params]
        self.state = [None] * len(params)
        self.t = 0

    def step(self, grads):
        np, h = self.np, HYPER[self.kind]
        self.t += 1
        if self.kind == "sgd":
            lr, mu = h["lr"], h["momentum"]
            for i, (p, g, s) in enumerate(zip(self.params, grads, self.scratch)):
                b = self.state[i]
                if b is None:
                    b = self.state[i] = g.copy()       # the first buffer is the gradient
                else:
                    b *= mu
                    b += g
                np.multiply(b, lr, out=s)
                p -= s
            return
        lr, b1, b2, eps = h["lr"], 0.9, 0.999, 1e-8
        step_size, bc2_sqrt = lr / (1 - b1 ** self.t), (1 - b2 ** self.t) ** 0.5
        for i, (p, g, s) in enumerate(zip(self.params, grads, self.scratch)):
            if self.state[i] is None:
                self.state[i] = (np.zeros_like(p), np.zeros_like(p))
            m, v = self.state[i]
            m *= b1
            np.multiply(g, 1 - b1, out=s)
            m += s
            v *= b2
            np.multiply(g, g, out=s)
            s *= 1 - b2
            v += s
            np.sqrt(v, out=s)
            s /= bc2_sqrt
            s += eps
            np.divide(m, s, out=s)
            s *= step_size
            p -= s


def versions(names=("numpy", "torch", "neural_arch")):
    return {name: library_version(name) for name in names}


def write_report(path, benchmark, config, results, **extra):
    """Write ``results`` with the machine, versions and config as JSON to ``path``."""
    report = {"benchmark": benchmark, "started": extra.pop("started", None) or now(),
              "config": config, "machine": machine_info(), "versions": versions(),
              "threads": {name: os.environ.get(name) for name in THREAD_VARIABLES},
              "results": results}
    report.update(extra)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def markdown_table(header, rows):
    """A Markdown table: ``header`` a list of column titles, ``rows`` lists of cells."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
