"""Per-op overhead of small elementwise operations, against PyTorch and hand-written NumPy.

The workload is the one where framework overhead dominates: a chain of ``--ops``
(default 200) elementwise operations, repeating ``add, mul, tanh``, on a 16-element
float32 vector ``x`` with a second 16-element leaf ``w``::

    y = x
    repeat: y = y + w;  y = y * w;  y = tanh(y)

Two modes are timed for every library:

* ``fwd+bwd``: the forward chain with graph recording, then backward from ``y`` with a
  gradient of ones (gradients with respect to ``x`` and ``w``);
* ``fwd``: the forward chain only, with recording switched off (``no_grad``).

Libraries: neural_arch (automatic gradient clamp on, as users run it), PyTorch on the
CPU with one thread, NumPy written by hand (forward, and the backward derived by hand
with the intermediates kept in a list), DeZero and MyGrad (each skipped, with a note
in the JSON, when it is not installed). Before timing, every library's output and
gradients are checked against the hand-written NumPy ones.

The figure reported is microseconds per op: the best of ``--repeat`` timing runs,
each of which runs the chain enough times to last at least ``--min-time`` seconds,
divided by the number of ops. The runs go round-robin over the libraries, so a change
of load on a shared machine touches all of them alike. The garbage collector stays
on, as it is in real use.

Run from the repository root::

    python -m benchmarks.op_overhead --out benchmarks/results/op_overhead.json
"""
from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import sys
import time
import timeit

import numpy as np

LIBRARIES = ("numpy", "neural_arch", "torch", "dezero", "mygrad")
LABELS = {"numpy": "NumPy (by hand)", "neural_arch": "neural_arch", "torch": "PyTorch (CPU)",
          "dezero": "DeZero", "mygrad": "MyGrad"}


# ---- the workload ----------------------------------------------------------------------

def chain(y, w, tanh, n_ops, add=operator.add, mul=operator.mul):
    """Apply ``n_ops`` ops to ``y``, repeating add-w, mul-w, tanh."""
    for _ in range(n_ops // 3):
        y = tanh(mul(add(y, w), w))
    rest = n_ops % 3
    if rest >= 1:
        y = add(y, w)
    if rest == 2:
        y = mul(y, w)
    return y


def numpy_forward_backward(x, w, n_ops, xp=np):
    """The chain and its backward written by hand: the floor every framework is held to.

    Returns ``(y, gx, gw)`` for the seed gradient ``dL/dy = 1``. ``xp`` is the array
    module (NumPy, or CuPy for the report's GPU sweep).
    """
    tape = []                      # what backward needs: mul's input, tanh's output
    y = x
    for i in range(n_ops):
        k = i % 3
        if k == 0:
            y = y + w
        elif k == 1:
            tape.append(y)
            y = y * w
        else:
            y = xp.tanh(y)
            tape.append(y)
    gy = xp.ones_like(y)
    gw = xp.zeros_like(w)
    for i in reversed(range(n_ops)):
        k = i % 3
        if k == 0:                 # y = a + w:  da = gy, dw += gy
            gw += gy
        elif k == 1:               # y = a * w:  da = gy * w, dw += gy * a
            a = tape.pop()
            gw += gy * a
            gy = gy * w
        else:                      # y = tanh(a): da = gy * (1 - y^2)
            t = tape.pop()
            gy = gy * (1 - t * t)
    return y, gy, gw


# ---- one runner per library ------------------------------------------------------------
# Each make_* returns (train, infer, check): train() runs forward+backward, infer() runs
# the forward chain without recording, check() returns (y, gx, gw) as NumPy arrays.

def make_numpy(x0, w0, n_ops):
    def train():
        return numpy_forward_backward(x0, w0, n_ops)

    def infer():
        return chain(x0, w0, np.tanh, n_ops)

    return train, infer, train


def make_neural_arch(x0, w0, n_ops):
    import neural_arch as na
    x = na.Tensor(x0, requires_grad=True)
    w = na.Tensor(w0, requires_grad=True)
    seed = na.Tensor(np.ones_like(x0))
    tanh = na.tanh

    def train():
        x.grad = None
        w.grad = None
        y = chain(x, w, tanh, n_ops)
        y.backward(seed)
        return y

    def infer():
        with na.no_grad():
            return chain(x, w, tanh, n_ops)

    def check():
        y = train()
        return y.numpy(), x.grad.numpy(), w.grad.numpy()

    return train, infer, check


def make_torch(x0, w0, n_ops):
    import torch
    torch.set_num_threads(1)
    x = torch.tensor(x0, requires_grad=True)
    w = torch.tensor(w0, requires_grad=True)
    seed = torch.ones_like(x)
    tanh = torch.tanh

    def train():
        x.grad = None
        w.grad = None
        y = chain(x, w, tanh, n_ops)
        y.backward(seed)
        return y

    def infer():
        with torch.no_grad():
            return chain(x, w, tanh, n_ops)

    def check():
        y = train()
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy()

    return train, infer, check


def import_dezero():
    """Import DeZero 0.0.13, which still uses ``np.int`` (removed in NumPy 1.24).

    The alias is put back only while DeZero imports (it is read as a default argument
    at import time) and removed again afterwards.
    """
    added = "int" not in np.__dict__
    if added:
        np.int = int
    try:
        import dezero
        import dezero.functions
    finally:
        if added:
            del np.int
    return dezero


def make_dezero(x0, w0, n_ops):
    dezero = import_dezero()
    x = dezero.Variable(x0.copy())
    w = dezero.Variable(w0.copy())
    tanh = dezero.functions.tanh

    def train():
        x.cleargrad()
        w.cleargrad()
        y = chain(x, w, tanh, n_ops)
        y.backward()             # DeZero seeds ones of y's shape itself
        return y

    def infer():
        with dezero.no_grad():
            return chain(x, w, tanh, n_ops)

    def check():
        y = train()
        return y.data, x.grad.data, w.grad.data

    return train, infer, check


def make_mygrad(x0, w0, n_ops):
    import mygrad as mg
    x = mg.tensor(x0.copy())
    w = mg.tensor(w0.copy())
    seed = np.ones_like(x0)
    tanh = mg.tanh

    def train():
        y = chain(x, w, tanh, n_ops)
        y.backward(seed)         # MyGrad replaces (does not accumulate) .grad
        return y

    def infer():
        with mg.no_autodiff:
            return chain(x, w, tanh, n_ops)

    def check():
        y = train()
        return np.array(y.data), np.array(x.grad), np.array(w.grad)

    return train, infer, check


MAKERS = {"numpy": make_numpy, "neural_arch": make_neural_arch, "torch": make_torch,
          "dezero": make_dezero, "mygrad": make_mygrad}


# ---- timing and reporting -------------------------------------------------------------

def calibrated_timer(fn, min_time):
    """A timer for ``fn`` and the call count that makes one timing run last ``min_time``.

    The garbage collector stays on while timing, as it is in real use.
    """
    timer = timeit.Timer(fn, setup="gc.enable()")
    number = 1
    while timer.timeit(number) < min_time and number < 1 << 20:
        number *= 2
    return timer, number


def time_round_robin(cases, n_ops, repeat, min_time):
    """Best-of-``repeat`` microseconds per op for every case.

    ``cases`` maps a key to a callable. The timing runs go round the cases in turn
    (all cases once, then all again, ...), so a change of load on a shared machine
    touches every library alike instead of whichever one was running at the time.
    """
    timers = {key: calibrated_timer(fn, min_time) for key, fn in cases.items()}
    best = {key: float("inf") for key in cases}
    for _ in range(repeat):
        for key, (timer, number) in timers.items():
            best[key] = min(best[key], timer.timeit(number) / number)
    return {key: t / n_ops * 1e6 for key, t in best.items()}


def library_version(name):
    try:
        if name == "dezero":
            return import_dezero().__version__
        if name == "numpy":
            return np.__version__
        module = __import__(name)
        return getattr(module, "__version__", "unknown")
    except ImportError:
        return None


def machine_info():
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "cpu_model": cpu,
            "cpu_count": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    return info


def check_against_numpy(name, check, reference):
    got = check()
    for what, a, b in zip(("output", "grad x", "grad w"), got, reference):
        a = np.asarray(a, dtype=np.float64)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-4, atol=1e-5):
            raise AssertionError(f"{name}: {what} differs from the hand-written NumPy result")


def run(libraries, n_ops, n_elements, repeat, min_time, seed=0):
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1.0, 1.0, n_elements).astype(np.float32)
    w0 = rng.uniform(0.5, 1.0, n_elements).astype(np.float32)
    reference = [a.astype(np.float64) for a in numpy_forward_backward(x0, w0, n_ops)]
    cases, skipped = {}, {}
    for name in libraries:
        try:
            train, infer, check = MAKERS[name](x0, w0, n_ops)
        except ImportError as e:
            skipped[name] = f"not installed ({e})"
            continue
        check_against_numpy(name, check, reference)
        cases[name, "fwd_bwd"] = train
        cases[name, "fwd_no_grad"] = infer
    times = time_round_robin(cases, n_ops, repeat, min_time)
    results = {}
    for (name, mode), us in times.items():
        results.setdefault(name, {})[f"{mode}_us_per_op"] = us
    for mode in ("fwd_bwd", "fwd_no_grad"):
        for base, tag in (("torch", "vs_torch"), ("numpy", "vs_numpy")):
            if base not in results:
                continue
            ref = results[base][f"{mode}_us_per_op"]
            for r in results.values():
                r[f"{mode}_{tag}"] = r[f"{mode}_us_per_op"] / ref
    return results, skipped


def markdown_table(results):
    """The results as a Markdown table (the one README.md shows)."""
    lines = ["| library | fwd+bwd µs/op | × PyTorch | × NumPy "
             "| fwd no_grad µs/op | × PyTorch | × NumPy |",
             "|---|---:|---:|---:|---:|---:|---:|"]

    def ratio(r, key):
        return f"{r[key]:.2f}" if key in r else "-"

    for name, r in results.items():
        cells = [LABELS[name]]
        for mode in ("fwd_bwd", "fwd_no_grad"):
            cells += [f"{r[mode + '_us_per_op']:.2f}", ratio(r, mode + "_vs_torch"),
                      ratio(r, mode + "_vs_numpy")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


README_BEGIN = "<!-- op-overhead-table: begin -->"
README_END = "<!-- op-overhead-table: end -->"


def update_readme(path, table):
    """Replace the table between the two marker comments of ``path``."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    i, j = text.find(README_BEGIN), text.find(README_END)
    if i < 0 or j < i:
        raise SystemExit(f"{path} has no {README_BEGIN} ... {README_END} block to update")
    text = text[:i + len(README_BEGIN)] + "\n" + table + "\n" + text[j:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.op_overhead",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", type=int, default=200, help="ops in the chain (default 200)")
    p.add_argument("--elements", type=int, default=16, help="vector length (default 16)")
    p.add_argument("--repeat", type=int, default=25,
                   help="timing runs per case; the best counts (default 25)")
    p.add_argument("--min-time", type=float, default=0.05,
                   help="seconds each timing run lasts at least (default 0.05)")
    p.add_argument("--libs", default=",".join(LIBRARIES),
                   help=f"comma-separated subset of {','.join(LIBRARIES)}")
    p.add_argument("--out", help="write the results as JSON to this path")
    p.add_argument("--update-readme", metavar="PATH",
                   help="also write the table into PATH (README.md) between its markers")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: --repeat 2 --min-time 0.005 (numbers are rough)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeat, args.min_time = 2, 0.005
    libs = [s.strip() for s in args.libs.split(",") if s.strip()]
    unknown = sorted(set(libs) - set(LIBRARIES))
    if unknown:
        p.error(f"unknown libraries {unknown}; choose from {list(LIBRARIES)}")
    if args.ops < 1 or args.elements < 1 or args.repeat < 1 or args.min_time < 0:
        p.error("--ops, --elements and --repeat must be at least 1, --min-time at least 0")

    config = {"n_ops": args.ops, "n_elements": args.elements, "dtype": "float32",
              "pattern": ["add", "mul", "tanh"], "repeat": args.repeat, "quick": args.quick,
              "min_time_s": args.min_time,
              "timer": "timeit, best of repeat, runs taken round-robin over the libraries, "
                       "gc enabled"}
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results, skipped = run(libs, args.ops, args.elements, args.repeat, args.min_time)
    print(f"Per-op overhead: chain of {args.ops} ops (add, mul, tanh) on {args.elements} "
          f"float32 elements; microseconds per op, best of {args.repeat}\n")
    table = markdown_table(results)
    print(table)
    for name, why in skipped.items():
        print(f"skipped {LABELS[name]}: {why}")
    if args.out:
        report = {
            "benchmark": "op_overhead", "started": started, "config": config,
            "machine": machine_info(),
            "versions": {name: library_version(name) for name in LIBRARIES},
            "results": results, "skipped": skipped,
            "notes": ["neural_arch runs with its automatic gradient clamp on (1e6)",
                      "PyTorch runs on the CPU with torch.set_num_threads(1)",
                      "MyGrad runs with its default memory guarding",
                      "ratios divide the library's time by PyTorch's or by hand NumPy's "
                      "time from the same run"],
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        print(f"wrote {args.out}")
    if args.update_readme:
        update_readme(args.update_readme, table)
        print(f"updated the table in {args.update_readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
