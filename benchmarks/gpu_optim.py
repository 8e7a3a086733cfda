"""GPU optimizer step: Adam and SGD with momentum on CuPy and PyTorch CUDA, against the CPU.

Two workloads of float32 parameters in 100 tensors each, with a fixed random gradient:

* ``10M/100``: 100 tensors of 250 x 400 (10,000,000 parameters);
* ``100M/100``: 100 tensors of 1000 x 1000 (100,000,000 parameters; Adam holds
  about 1.6 GB of parameters, gradients and moments per library).

``--quick`` uses ``1M/100`` (100 x 100 each) and ``10M/100`` instead. Each step
(``lr=1e-3``; Adam ``betas=(0.9, 0.999), eps=1e-8``; SGD ``momentum=0.9``) is
timed, in one run, for

* ``neural_arch_cpu``: neural_arch on NumPy, on the CPU, tensor by tensor (one
  thread);
* ``cupy_xp``: neural_arch on CuPy with ``fused=False``: the NumPy kernel written
  against ``xp``, run per tensor (several CuPy launches per tensor);
* ``cupy_fused``: neural_arch on CuPy with ``fused=None`` (the default): the fused
  elementwise kernel, one launch per tensor;
* ``cupy_contiguous``: neural_arch on CuPy with ``contiguous=True``: the fused
  kernel over one flat buffer per group (gathering the gradients into it is part
  of the step);
* ``torch_cuda_foreach`` and ``torch_cuda_fused``: ``torch.optim`` on CUDA with
  ``foreach=True`` and with ``fused=True``.

Every GPU step callable ends with a device synchronize, so a timed call includes
the kernels it launched and nothing launched before it. Before timing, every
implementation takes three steps (which also compiles the CuPy kernels and fills
the optimizer state) and is checked against neural_arch on the CPU. The timing
runs go round-robin over the implementations of one case, best of ``--repeat``;
when the implementations of a case would not fit in the device's free memory
together, each is timed on its own instead. Device memory is handed back between
cases (CuPy's memory pool, PyTorch's caching allocator).

Ratios are to ``torch_cuda_fused`` and to ``neural_arch_cpu``; the JSON records the
issue's targets (fused CuPy Adam at most 1.3x PyTorch's fused CUDA Adam, and at
least 20x faster than neural_arch on the CPU) and whether each is met. Without
CuPy or a GPU the CPU row is still measured and every GPU row is marked
``"skipped": "no GPU: <why>"``; the script still writes its JSON and exits 0.

Run from the repository root::

    python -m benchmarks.gpu_optim --out benchmarks/results/gpu_optim.json
"""
from __future__ import annotations

from . import _common  # noqa: F401  (first: pins the thread pools to one thread)

import gc  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

from ._common import (import_torch, library_version, markdown_table, now,  # noqa: E402
                      time_round_robin, timing_arguments, write_report)
from .optim_step import HYPER  # noqa: E402  (the same hyper-parameters as the CPU benchmark)

WORKLOADS = {"10M/100": (100, (250, 400)), "100M/100": (100, (1000, 1000))}
QUICK_WORKLOADS = {"1M/100": (100, (100, 100)), "10M/100": (100, (250, 400))}
OPTIMIZERS = ("adam", "sgd")
CHECK_STEPS = 3            # steps every implementation takes (warm-up) before the check
CUPY_IMPLEMENTATIONS = ("cupy_xp", "cupy_fused", "cupy_contiguous")
TORCH_IMPLEMENTATIONS = ("torch_cuda_foreach", "torch_cuda_fused")
IMPLEMENTATIONS = ("neural_arch_cpu",) + CUPY_IMPLEMENTATIONS + TORCH_IMPLEMENTATIONS
LABELS = {"neural_arch_cpu": "neural_arch, NumPy CPU (per tensor)",
          "cupy_xp": "neural_arch, CuPy fused=False (xp kernel, per tensor)",
          "cupy_fused": "neural_arch, CuPy fused=None (fused kernel, per tensor)",
          "cupy_contiguous": "neural_arch, CuPy contiguous=True (fused, per group)",
          "torch_cuda_foreach": "torch CUDA (foreach=True)",
          "torch_cuda_fused": "torch CUDA (fused=True)"}
#: The optimizer options of each neural_arch implementation.
NEURAL_ARCH_OPTIONS = {"neural_arch_cpu": {}, "cupy_xp": dict(fused=False),
                       "cupy_fused": dict(fused=None), "cupy_contiguous": dict(contiguous=True)}
TORCH_FLAGS = {"torch_cuda_foreach": dict(foreach=True), "torch_cuda_fused": dict(fused=True)}
BASELINES = ("torch_cuda_fused", "neural_arch_cpu")
#: (optimizer, implementation, baseline, rule, limit): the issue's targets, checked
#: on every workload. ``at_most``: time / baseline's time <= limit; ``speedup``:
#: baseline's time / time >= limit.
TARGETS = [("adam", "cupy_fused", "torch_cuda_fused", "at_most", 1.3),
           ("adam", "cupy_fused", "neural_arch_cpu", "speedup", 20.0)]
#: Parameter-sized float32 arrays one implementation keeps on the device (parameters,
#: gradients, state), for the memory estimate; contiguous mode adds its flat gradient
#: and scratch buffers.
DEVICE_ARRAYS = {"adam": 4, "sgd": 3}
CONTIGUOUS_EXTRA_ARRAYS = 2
MEMORY_HEADROOM = 0.8      # use at most this share of the free device memory at once


# ---- where the GPU rows run ---------------------------------------------------------------

class Target:
    """A device for one family of GPU rows.

    ``xp`` is the array module (CuPy, or a stand-in in the tests), ``name`` the
    neural_arch device name (``'cuda'``); ``sync()`` waits for the device,
    ``free()`` hands cached memory back, ``free_bytes()`` is the free device
    memory in bytes (None when unknown). ``torch`` is set for the PyTorch rows.
    """

    def __init__(self, name, sync, xp=None, free=None, free_bytes=None, torch=None):
        self.name, self.sync, self.xp, self.torch = name, sync, xp, torch
        self.free = free or (lambda: None)
        self.free_bytes = free_bytes or (lambda: None)


def cupy_target():
    """``(Target, None)`` for CuPy's device 0, or ``(None, why not)``."""
    from neural_arch import backend
    if not backend.cupy_available():
        if importlib.util.find_spec("cupy") is None:
            return None, "no GPU: CuPy is not installed"
        return None, "no GPU: CuPy is installed but finds no usable CUDA device"
    cp = backend.cupy
    pool = cp.get_default_memory_pool()
    return Target("cuda", lambda: cp.cuda.Device().synchronize(), xp=cp,
                  free=pool.free_all_blocks,
                  free_bytes=lambda: cp.cuda.runtime.memGetInfo()[0]), None


def torch_target(device="cuda"):
    """``(Target, None)`` for PyTorch on ``device``, or ``(None, why not)``.

    ``device='cuda'`` is the benchmark; the tests pass ``'cpu'`` to run the same
    code paths without a GPU.
    """
    torch = import_torch()
    if torch is None:
        return None, "torch is not installed"
    if device == "cpu":
        return Target("cpu", lambda: None, torch=torch), None
    if not torch.cuda.is_available():
        build = " (a CPU-only build)" if torch.version.cuda is None else ""
        return None, f"no GPU: torch {torch.__version__}{build} sees no CUDA device"
    return Target(device, torch.cuda.synchronize, torch=torch, free=torch.cuda.empty_cache,
                  free_bytes=lambda: torch.cuda.mem_get_info()[0]), None


def device_names(cupy, torch):
    """What the GPU rows ran on: device names and versions, for the JSON."""
    info = {"cupy": None, "cupy_version": library_version("cupy"), "torch_cuda": None,
            "torch_cuda_version": None}
    if cupy is not None and cupy.name == "cuda":
        props = cupy.xp.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        info["cupy"] = name.decode() if isinstance(name, bytes) else str(name)
    elif cupy is not None:
        info["cupy"] = f"stand-in device {cupy.name!r}"
    if torch is not None and torch.name != "cpu":
        info["torch_cuda"] = torch.torch.cuda.get_device_name(0)
        info["torch_cuda_version"] = torch.torch.version.cuda
    elif torch is not None:
        info["torch_cuda"] = "stand-in device 'cpu'"
    return info


# ---- the implementations ---------------------------------------------------------------------

def make_neural_arch(kind, params0, grads0, target=None, **options):
    """``(step, read)`` of neural_arch's Adam or SGD on ``target`` (the CPU when None).

    ``read()`` gives the parameters as arrays on their device.
    """
    import neural_arch as na
    name = "cpu" if target is None else target.name
    sync = (lambda: None) if target is None else target.sync
    params = [na.Parameter(p.copy() if name == "cpu" else p, device=name) for p in params0]
    for p, g in zip(params, grads0):
        p.grad = na.Tensor(g.copy() if name == "cpu" else g, device=name)
    cls = na.optim.Adam if kind == "adam" else na.optim.SGD
    opt = cls(params, **HYPER[kind], **options)

    def step():
        opt.step()
        sync()

    return (opt.step if target is None else step), (lambda: [p.data for p in params])


def make_torch(kind, params0, grads0, target, **flags):
    """``(step, read)`` of ``torch.optim`` Adam or SGD on ``target``."""
    torch = target.torch
    params = [torch.nn.Parameter(torch.tensor(p, device=target.name)) for p in params0]
    for p, g in zip(params, grads0):
        p.grad = torch.tensor(g, device=target.name)
    cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
    opt = cls(params, **HYPER[kind], **flags)

    def step():
        opt.step()
        target.sync()

    return step, lambda: [p.detach() for p in params]


def build(impl, kind, params0, grads0, cupy, torch):
    """``(step, read)`` of one GPU implementation (see :data:`IMPLEMENTATIONS`)."""
    if impl in TORCH_FLAGS:
        return make_torch(kind, params0, grads0, torch, **TORCH_FLAGS[impl])
    return make_neural_arch(kind, params0, grads0, cupy, **NEURAL_ARCH_OPTIONS[impl])


def to_host(a):
    """A NumPy copy of one parameter of any implementation."""
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    from neural_arch import backend
    return backend.asnumpy(a)


def check(name, kind, read, ref):
    """Raise AssertionError unless ``read()`` matches the reference parameters ``ref``.

    The parameters are copied to the host one tensor at a time, so the check needs
    no second copy of a large model.
    """
    for i, (a, b) in enumerate(zip(read(), ref)):
        a = to_host(a)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6):
            raise AssertionError(f"{name} {kind}: parameter {i} after {CHECK_STEPS} steps "
                                 "differs from neural_arch on the CPU")


def device_bytes(impl, kind, n_params):
    """Bytes of device memory ``impl`` holds for ``n_params`` float32 parameters, roughly."""
    if impl == "neural_arch_cpu":
        return 0
    arrays = DEVICE_ARRAYS[kind] + (CONTIGUOUS_EXTRA_ARRAYS if impl == "cupy_contiguous"
                                    else 0)
    return arrays * n_params * 4


def timing_groups(impls, kind, n_params, free_bytes):
    """The implementations timed together, round-robin: one group when they fit.

    ``free_bytes`` is the free device memory (None when unknown: assumed enough).
    When the GPU implementations need more than :data:`MEMORY_HEADROOM` of it
    together, each is timed on its own (freed before the next), the CPU row last.
    """
    need = sum(device_bytes(i, kind, n_params) for i in impls)
    if free_bytes is None or need <= MEMORY_HEADROOM * free_bytes:
        return [list(impls)]
    gpu = [[i] for i in impls if i != "neural_arch_cpu"]
    return gpu + ([["neural_arch_cpu"]] if "neural_arch_cpu" in impls else [])


def release(*targets):
    """Drop unreachable arrays and hand the devices' cached memory back."""
    gc.collect()
    for t in targets:
        if t is not None:
            t.free()


# ---- the measurements ------------------------------------------------------------------

def measure_case(kind, params0, grads0, impls, repeat, min_time, cupy, torch, reasons):
    """Milliseconds per step of ``impls`` for one workload and optimizer.

    Returns ``(rows, timing)``: ``rows[impl]`` is ``{"ms": ...}`` or ``{"skipped":
    why}``; ``timing`` says whether the rows were timed round-robin together.
    """
    rows = {i: {"skipped": reasons[i]} for i in impls if reasons.get(i)}
    ref_step, ref_read = make_neural_arch(kind, params0, grads0)
    for _ in range(CHECK_STEPS):
        ref_step()
    ref = ref_read()                   # neural_arch on the CPU: the reference, not copied
    runnable = [i for i in impls if i not in rows]
    n_params = sum(p.size for p in params0)
    free = None
    if any(i in CUPY_IMPLEMENTATIONS for i in runnable) and cupy is not None:
        free = cupy.free_bytes()
    elif any(i in TORCH_IMPLEMENTATIONS for i in runnable) and torch is not None:
        free = torch.free_bytes()
    groups = timing_groups(runnable, kind, n_params, free)
    times = {}
    for group in groups:
        cases = {}
        for impl in group:
            if impl == "neural_arch_cpu":
                cases[impl] = ref_step
                continue
            try:
                step, read = build(impl, kind, params0, grads0, cupy, torch)
            except (MemoryError, RuntimeError) as e:   # CuPy / CUDA out of memory
                rows[impl] = {"skipped": f"{e.__class__.__name__}: {e}"}
                release(cupy, torch)
                continue
            for _ in range(CHECK_STEPS):               # warm-up: kernels compile here
                step()
            check(impl, kind, read, ref)
            cases[impl] = step
            del step, read
        times.update(time_round_robin(cases, repeat, min_time))
        cases.clear()
        release(cupy, torch)
    for impl in impls:
        if impl in times:
            rows[impl] = {"ms": times[impl] * 1e3}
    for base in BASELINES:
        if base in times:
            for impl, r in rows.items():
                if impl in times:
                    r[f"vs_{base}"] = times[impl] / times[base]
    timing = ("round-robin over the implementations" if len(groups) <= 1 else
              "one implementation at a time (they do not fit in device memory together)")
    return {i: rows[i] for i in impls}, timing


def run(workloads, implementations, repeat, min_time, seed=0, cupy=None, torch=None):
    """Measure every workload and optimizer; see the module docstring.

    ``cupy`` and ``torch`` are the :class:`Target` of the CuPy and the PyTorch rows;
    when None, CuPy's device 0 and ``torch`` on ``'cuda'`` are used where present,
    and the rows that have no device are skipped with the reason. (The tests pass
    a CPU stand-in for CuPy and ``torch_target('cpu')`` to run the GPU code paths.)

    Returns ``(results, timing, gpu)``: ``results[workload/optimizer][impl]``,
    how each case was timed, and what the GPU rows ran on.
    """
    reasons = {}
    if cupy is None:
        cupy, why = cupy_target()
        reasons.update(dict.fromkeys(CUPY_IMPLEMENTATIONS, why))
    if torch is None:
        torch, why = torch_target()
        reasons.update(dict.fromkeys(TORCH_IMPLEMENTATIONS, why))
    results, timing = {}, {}
    for wname, (n_tensors, shape) in workloads.items():
        rng = np.random.default_rng(seed)
        params0 = [rng.standard_normal(shape, np.float32) for _ in range(n_tensors)]
        grads0 = [rng.standard_normal(shape, np.float32) for _ in range(n_tensors)]
        for kind in OPTIMIZERS:
            key = f"{wname}/{kind}"
            results[key], timing[key] = measure_case(kind, params0, grads0, implementations,
                                                     repeat, min_time, cupy, torch, reasons)
            print(f"measured {key}", flush=True)
        del params0, grads0
    return results, timing, device_names(cupy, torch)


def targets(results):
    """The issue's targets (:data:`TARGETS`) on every workload: ratio, and whether met."""
    out = []
    for key, rows in results.items():
        kind = key.rsplit("/", 1)[1]
        for t_kind, impl, base, rule, limit in TARGETS:
            if t_kind != kind or impl not in rows:
                continue
            ratio = rows[impl].get(f"vs_{base}")
            entry = {"case": key, "implementation": impl, "baseline": base,
                     "target": (f"at most {limit:g}x the baseline's time" if rule == "at_most"
                                else f"at least {limit:g}x faster than the baseline"),
                     "ratio": ratio,
                     "speedup": None if not ratio else 1.0 / ratio}
            if ratio is None:
                entry["met"] = None
                why = [rows[i]["skipped"] for i in (impl, base)
                       if "skipped" in rows.get(i, {})]
                entry["why"] = why[0] if why else "not measured"
            else:
                entry["met"] = ratio <= limit if rule == "at_most" else 1.0 / ratio >= limit
            out.append(entry)
    return out


def tables(results):
    text = []
    for key, rows in results.items():
        header = [key, "ms", "× torch fused CUDA", "× neural_arch CPU"]
        body = []
        for name, r in rows.items():
            if "skipped" in r:
                body.append([LABELS[name], f"skipped: {r['skipped']}", "-", "-"])
                continue
            cells = [LABELS[name], f"{r['ms']:.3f}"]
            for base in BASELINES:
                v = r.get(f"vs_{base}")
                cells.append("-" if v is None else f"{v:.3g}")
            body.append(cells)
        text.append(markdown_table(header, body))
    return "\n\n".join(text)


def main(argv=None):
    p = timing_arguments("python -m benchmarks.gpu_optim", __doc__.split("\n\n")[0],
                         quick="workloads 1M/100 and 10M/100, 3 runs of 0.05 s: a smoke test")
    p.add_argument("--only", default=",".join(IMPLEMENTATIONS),
                   help=f"comma-separated subset of {','.join(IMPLEMENTATIONS)}")
    p.add_argument("--workloads", default=None,
                   help=f"comma-separated subset of {','.join(WORKLOADS)} "
                        f"(with --quick: of {','.join(QUICK_WORKLOADS)})")
    args = p.parse_args(argv)
    names = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(names) - set(IMPLEMENTATIONS))
    if unknown or not names:
        p.error(f"unknown implementations {unknown}; choose from {list(IMPLEMENTATIONS)}")
    names = [i for i in IMPLEMENTATIONS if i in names]
    if args.repeat < 1 or args.min_time < 0:
        p.error("--repeat must be at least 1 and --min-time at least 0")
    available = QUICK_WORKLOADS if args.quick else WORKLOADS
    chosen = (list(available) if args.workloads is None
              else [s.strip() for s in args.workloads.split(",") if s.strip()])
    if not chosen or sorted(set(chosen) - set(available)):
        p.error(f"unknown workloads in {chosen}; choose from {list(available)}")
    workloads = {k: v for k, v in available.items() if k in chosen}
    repeat, min_time = (3, 0.05) if args.quick else (args.repeat, args.min_time)

    started = now()
    results, timing, gpu = run(workloads, names, repeat, min_time)
    print(f"Optimizer step, float32; milliseconds per step, best of {repeat}\n")
    print(tables(results))
    met = targets(results)
    print("\nTargets:")
    for t in met:
        if t["ratio"] is None:
            print(f"  {t['case']}: {t['implementation']} vs {t['baseline']}: not measured "
                  f"({t['why']})")
        else:
            print(f"  {t['case']}: {t['implementation']} / {t['baseline']} = "
                  f"{t['ratio']:.3g} (speedup {t['speedup']:.3g}; {t['target']})"
                  f"{'' if t['met'] else '  MISSED'}")
    if args.out:
        config = {"workloads": {k: {"tensors": n, "shape": list(s),
                                    "parameters": n * int(np.prod(s))}
                                for k, (n, s) in workloads.items()},
                  "dtype": "float32", "hyperparameters": HYPER, "repeat": repeat,
                  "min_time_s": min_time, "quick": args.quick, "check_steps": CHECK_STEPS,
                  "timer": "timeit, best of repeat, gc enabled; every GPU step ends with a "
                           "device synchronize",
                  "timing": timing}
        write_report(args.out, "gpu_optim", config, results, started=started,
                     targets=met, gpu=gpu,
                     notes=["ratios: time over the baseline's time, measured in the same "
                            "run (below 1: faster)",
                            "neural_arch_cpu: NumPy on one thread (OMP/MKL/OpenBLAS "
                            "threads 1, torch.set_num_threads(1))",
                            "cupy_contiguous includes copying the gradients into the flat "
                            "buffer",
                            f"each implementation takes {CHECK_STEPS} steps (kernel "
                            "compilation, state) and is checked against neural_arch_cpu "
                            "before timing"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
