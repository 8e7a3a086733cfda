"""Optimizer step time: Adam and SGD with momentum, against PyTorch, NumPy and memory bandwidth.

Two workloads of float32 parameters, each with a fixed random gradient:

* ``10M/100``: 100 tensors of 250 x 400 (10,000,000 parameters): the arrays are far
  larger than the caches, so the step is bound by memory bandwidth;
* ``1M/1000``: 1,000 tensors of 25 x 40 (1,000,000 parameters): per-tensor overhead
  dominates.

Each step (``lr=1e-3``; Adam ``betas=(0.9, 0.999), eps=1e-8``; SGD ``momentum=0.9``)
is timed for

* neural_arch, per tensor (the default) and with ``contiguous=True`` (one flat
  buffer per group; the step includes gathering the gradients into it);
* NumPy written by hand: the same update as in-place ufuncs, tensor by tensor,
  with a preallocated scratch array per tensor;
* ``torch.optim`` with ``foreach=False``, ``foreach=True`` and ``fused=True``;
* the *compute floor*: NumPy by hand over the same number of tensors that are all
  one tensor, so that its data stays in the cache: what the ufunc passes cost
  without any memory traffic (the update it computes is not a real one);
* the *bandwidth bound*: NumPy kernels over as many bytes as the update must move
  at least (Adam reads θ, g, m, v and writes θ, m, v: 7 arrays; SGD with momentum
  5): the triad ``a = b + s*c`` (two ufunc passes) and the one-pass ``a = b + c``
  on three arrays holding those bytes; the faster of the two counts. An update
  cannot beat it by much, since it has to stream those bytes at least once.

Everything runs on one thread (the BLAS/OpenMP variables are set to 1 before NumPy
is imported, and ``torch.set_num_threads(1)``). Before timing, every implementation
takes three steps from the same start and is checked against the hand-written NumPy
parameters. A timing figure is the best of ``--repeat`` runs taken round-robin over
the implementations. The memory each neural_arch step allocates is measured with
``tracemalloc`` (peak over one step, after a first step has created the state) and
reported against the size of the model.

Run from the repository root::

    python -m benchmarks.optim_step --out benchmarks/results/optim_step.json
"""
from __future__ import annotations

from . import _common  # noqa: F401  (first: pins the thread pools to one thread)

import sys  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

from ._common import (import_torch, markdown_table, now, time_round_robin,  # noqa: E402
                      timing_arguments, write_report)

WORKLOADS = {"10M/100": (100, (250, 400)), "1M/1000": (1000, (25, 40))}
QUICK_WORKLOADS = {"10M/100": (10, (250, 400)), "1M/1000": (100, (25, 40))}
OPTIMIZERS = ("adam", "sgd")
HYPER = {"adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8),
         "sgd": dict(lr=1e-3, momentum=0.9)}
CHECK_STEPS = 3                        # steps every implementation takes before the check
ARRAYS_MOVED = {"adam": 7, "sgd": 5}   # arrays read + written by one step, at least
IMPLEMENTATIONS = ("neural_arch", "neural_arch_contiguous", "numpy", "numpy_in_cache",
                   "torch_foreach_false", "torch_foreach", "torch_fused", "bound")
LABELS = {"neural_arch": "neural_arch (per tensor)",
          "neural_arch_contiguous": "neural_arch (contiguous=True)",
          "numpy": "NumPy by hand (in-place ufuncs)",
          "numpy_in_cache": "NumPy by hand, data in cache (compute floor)",
          "torch_foreach_false": "torch (foreach=False)",
          "torch_foreach": "torch (foreach=True)",
          "torch_fused": "torch (fused=True)",
          "bound": "bandwidth bound (NumPy, same bytes)"}


# ---- NumPy written by hand ---------------------------------------------------------------

def make_numpy(kind, params, grads, xp=np):
    """A step function over ``params`` (updated in place) written with in-place ufuncs.

    PyTorch's update rules; ``xp`` is the array module (NumPy, or CuPy for the
    report's GPU sweep).
    """
    h = HYPER[kind]
    scratch = [xp.empty_like(p) for p in params]
    if kind == "sgd":
        lr, mu = h["lr"], h["momentum"]
        bufs = [None] * len(params)

        def step():
            for i, (p, g, s) in enumerate(zip(params, grads, scratch)):
                b = bufs[i]
                if b is None:
                    b = bufs[i] = g.copy()          # the first buffer is the gradient
                else:
                    b *= mu
                    b += g
                xp.multiply(b, lr, out=s)
                p -= s
        return step

    lr, (b1, b2), eps = h["lr"], h["betas"], h["eps"]
    ms = [xp.zeros_like(p) for p in params]
    vs = [xp.zeros_like(p) for p in params]
    t = [0]

    def step():
        t[0] += 1
        bc1, bc2_sqrt = 1 - b1 ** t[0], (1 - b2 ** t[0]) ** 0.5
        for p, g, m, v, s in zip(params, grads, ms, vs, scratch):
            m *= b1
            xp.multiply(g, 1 - b1, out=s)
            m += s
            v *= b2
            xp.multiply(g, g, out=s)
            s *= 1 - b2
            v += s
            xp.sqrt(v, out=s)
            s /= bc2_sqrt
            s += eps
            xp.divide(m, s, out=s)
            s *= lr / bc1
            p -= s
    return step


def make_in_cache(kind, n_tensors, shape):
    """NumPy by hand with the memory traffic taken away: the compute floor.

    The step of :func:`make_numpy` over ``n_tensors`` tensors that are all the
    same one tensor (same parameter, gradient and state arrays), so after its
    first pass everything is found in the cache. What is left is the cost of the
    ufunc passes themselves: no NumPy kernel that takes one pass per operation
    can beat it, however its memory traffic is arranged.
    """
    rng = np.random.default_rng(1)
    p = rng.standard_normal(shape, np.float32)
    g = rng.standard_normal(shape, np.float32)
    one = make_numpy(kind, [p], [g])

    def step():
        for _ in range(n_tensors):
            one()
    return step


# ---- neural_arch and torch ---------------------------------------------------------------

def make_neural_arch(kind, params0, grads, contiguous):
    import neural_arch as na
    params = [na.Parameter(p.copy()) for p in params0]
    for p, g in zip(params, grads):
        p.grad = na.Tensor(g)
    cls = na.optim.Adam if kind == "adam" else na.optim.SGD
    opt = cls(params, contiguous=contiguous, **HYPER[kind])
    return opt.step, lambda: [p.data for p in params], opt


def make_torch(kind, params0, grads, **flags):
    torch = import_torch()
    params = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params0]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(g)
    cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
    opt = cls(params, **HYPER[kind], **flags)
    return opt.step, lambda: [p.detach().numpy() for p in params]


def make_bound(n_bytes):
    """The faster of two NumPy kernels that move ``n_bytes`` through memory.

    Both work on three float32 arrays of ``n_bytes / 12`` elements (two read, one
    written): the triad ``a = b + s*c``, which NumPy runs as two passes (a multiply
    into ``a``, then an add into it), and ``a = b + c``, one pass. The one-pass
    kernel is usually the faster: its time is what streaming the bytes once costs.
    """
    n = max(1, n_bytes // (3 * 4))
    a = np.zeros(n, np.float32)
    b = np.ones(n, np.float32)
    c = np.ones(n, np.float32)

    def triad():
        np.multiply(c, 0.5, out=a)
        np.add(a, b, out=a)

    def one_pass():
        np.add(b, c, out=a)
    return {"triad": triad, "one_pass": one_pass}


# ---- the measurements ------------------------------------------------------------------

def step_allocation(opt):
    """(peak bytes allocated during one step, bytes of the parameters)."""
    opt.step()                                     # state exists from here on
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        opt.step()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    model = sum(p.data.nbytes for g in opt.param_groups for p in g["params"])
    return peak, model


def state_arrays(opt):
    """The number of arrays in each parameter's state (a set: one value if all agree)."""
    return sorted({sum(hasattr(v, "shape") and getattr(v, "ndim", 0) > 0 for v in s.values())
                   for s in opt.state.values()})


def build(kind, n_tensors, shape, implementations, seed=0):
    """The step callables of every implementation, checked against NumPy by hand."""
    rng = np.random.default_rng(seed)
    params0 = [rng.standard_normal(shape, np.float32) for _ in range(n_tensors)]
    grads = [rng.standard_normal(shape, np.float32) for _ in range(n_tensors)]
    ref = [p.copy() for p in params0]
    ref_step = make_numpy(kind, ref, grads)
    for _ in range(CHECK_STEPS):
        ref_step()
    steps, memory, skipped = {}, {}, {}
    for name in implementations:
        if name == "bound":
            continue
        if name == "numpy_in_cache":               # not a correct update: not checked
            steps[name] = make_in_cache(kind, n_tensors, shape)
            continue
        taken = 0                                  # steps taken before the check
        if name == "numpy":
            mine = [p.copy() for p in params0]
            step, read = make_numpy(kind, mine, grads), (lambda mine=mine: mine)
        elif name.startswith("neural_arch"):
            contiguous = name.endswith("contiguous")
            step, read, opt = make_neural_arch(kind, params0, grads, contiguous)
            peak, model = step_allocation(opt)
            taken = 2
            memory[name] = {"peak_step_allocation_bytes": peak, "model_bytes": model,
                            "peak_over_model": peak / model,
                            "state_arrays_per_parameter": state_arrays(opt)}
        else:
            if import_torch() is None:
                skipped[name] = "torch is not installed"
                continue
            flags = {"torch_foreach_false": dict(foreach=False),
                     "torch_foreach": dict(foreach=True),
                     "torch_fused": dict(fused=True)}[name]
            try:
                step, read = make_torch(kind, params0, grads, **flags)
            except (RuntimeError, TypeError, ValueError) as e:
                skipped[name] = f"{flags}: {e}"
                continue
        for _ in range(CHECK_STEPS - taken):
            step()
        for a, b in zip(read(), ref):
            if not np.allclose(a, b, rtol=1e-5, atol=1e-6):
                raise AssertionError(f"{name} {kind}: parameters differ from NumPy by hand")
        steps[name] = step
    if "bound" in implementations:
        n_elements = n_tensors * int(np.prod(shape))
        for k, fn in make_bound(ARRAYS_MOVED[kind] * n_elements * 4).items():
            steps[f"bound_{k}"] = fn
    return steps, memory, skipped


def run(workloads, implementations, repeat, min_time):
    results, memory, skipped = {}, {}, {}
    for wname, (n_tensors, shape) in workloads.items():
        for kind in OPTIMIZERS:
            steps, mem, skip = build(kind, n_tensors, shape, implementations)
            times = time_round_robin(steps, repeat, min_time)
            if "bound_triad" in times:
                bounds = {k: times.pop(f"bound_{k}") for k in ("triad", "one_pass")}
                times["bound"] = min(bounds.values())
            key = f"{wname}/{kind}"
            results[key] = {name: {"ms": t * 1e3} for name, t in times.items()}
            if "bound" in times:
                results[key]["bound"].update({f"{k}_ms": t * 1e3 for k, t in bounds.items()})
            memory[key] = mem
            skipped.update({f"{key}/{k}": v for k, v in skip.items()})
            for base in ("torch_foreach_false", "torch_foreach", "torch_fused", "numpy",
                         "bound"):
                if base in times:
                    for name, r in results[key].items():
                        r[f"vs_{base}"] = times[name] / times[base]
            del steps
    return results, memory, skipped


TARGETS = [
    # (workload/optimizer, implementation, baseline, at most): the targets
    ("10M/100/adam", "neural_arch", "torch_foreach_false", 1.0),
    ("10M/100/adam", "neural_arch", "torch_fused", 2.0),
    ("1M/1000/adam", "neural_arch_contiguous", "torch_fused", 1.0),
    ("1M/1000/adam", "neural_arch_contiguous", "torch_foreach", 0.25),
]


def targets(results):
    out = []
    for key, name, base, limit in TARGETS:
        r = results.get(key, {}).get(name, {})
        ratio = r.get(f"vs_{base}")
        out.append({"case": key, "implementation": name, "baseline": base, "target": limit,
                    "ratio": ratio, "met": None if ratio is None else ratio <= limit})
    return out


def tables(results):
    text = []
    for key, rows in results.items():
        header = [key, "ms", "× torch foreach=False", "× torch fused", "× torch foreach",
                  "× NumPy", "× bound"]
        body = []
        for name, r in rows.items():
            cells = [LABELS[name], f"{r['ms']:.2f}"]
            for base in ("torch_foreach_false", "torch_fused", "torch_foreach", "numpy",
                         "bound"):
                v = r.get(f"vs_{base}")
                cells.append("-" if v is None else f"{v:.2f}")
            body.append(cells)
        text.append(markdown_table(header, body))
    return "\n\n".join(text)


def main(argv=None):
    p = timing_arguments("python -m benchmarks.optim_step", __doc__.split("\n\n")[0],
                         quick="a tenth of the tensors, 3 runs of 0.05 s: a smoke test, "
                               "not a result")
    p.add_argument("--only", default=",".join(IMPLEMENTATIONS),
                   help=f"comma-separated subset of {','.join(IMPLEMENTATIONS)}")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated subset of {','.join(WORKLOADS)}")
    args = p.parse_args(argv)
    names = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(names) - set(IMPLEMENTATIONS))
    if unknown:
        p.error(f"unknown implementations {unknown}; choose from {list(IMPLEMENTATIONS)}")
    if args.repeat < 1 or args.min_time < 0:
        p.error("--repeat must be at least 1 and --min-time at least 0")
    chosen = [s.strip() for s in args.workloads.split(",") if s.strip()]
    if sorted(set(chosen) - set(WORKLOADS)):
        p.error(f"unknown workloads in {chosen}; choose from {list(WORKLOADS)}")
    workloads = {k: v for k, v in (QUICK_WORKLOADS if args.quick else WORKLOADS).items()
                 if k in chosen}
    repeat, min_time = (3, 0.05) if args.quick else (args.repeat, args.min_time)

    started = now()
    results, memory, skipped = run(workloads, names, repeat, min_time)
    print("Optimizer step, float32, one thread; milliseconds per step, best of "
          f"{repeat}\n")
    print(tables(results))
    met = targets(results)
    print("\nTargets:")
    for t in met:
        ratio = "n/a" if t["ratio"] is None else f"{t['ratio']:.2f}"
        print(f"  {t['case']}: {t['implementation']} / {t['baseline']} = {ratio} "
              f"(target <= {t['target']}){'' if t['met'] in (None, True) else '  MISSED'}")
    print("\nMemory allocated by one neural_arch step (peak, tracemalloc):")
    for key, mem in memory.items():
        for name, m in mem.items():
            print(f"  {key} {name}: {m['peak_step_allocation_bytes'] / 2**20:.2f} MiB "
                  f"= {m['peak_over_model']:.3f} x the model; state arrays per parameter: "
                  f"{m['state_arrays_per_parameter']}")
    for key, why in skipped.items():
        print(f"skipped {key}: {why}")
    if args.out:
        config = {"workloads": {k: {"tensors": n, "shape": list(s),
                                    "parameters": n * int(np.prod(s))}
                                for k, (n, s) in workloads.items()},
                  "dtype": "float32", "hyperparameters": HYPER, "repeat": repeat,
                  "min_time_s": min_time, "quick": args.quick,
                  "timer": "timeit, best of repeat, runs round-robin over the "
                           "implementations, gc enabled"}
        write_report(args.out, "optim_step", config, results, started=started,
                     targets=met, memory=memory, skipped=skipped,
                     notes=["bound: the faster of the NumPy triad a = b + s*c (two "
                            "passes) and a = b + c (one pass) over the bytes the update "
                            "must move (Adam 7 arrays, SGD with momentum 5)",
                            "numpy_in_cache: NumPy by hand over one tensor repeated "
                            "(data stays in the cache): the cost of the ufunc passes alone",
                            "neural_arch contiguous includes copying the gradients into "
                            "the flat buffer",
                            "torch.set_num_threads(1); OMP/MKL/OpenBLAS threads 1"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
