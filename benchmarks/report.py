"""The benchmark report: every benchmark, two size sweeps, one Markdown page with plots.

``python -m benchmarks.report`` does three things and writes the outcome to
``benchmarks/results/REPORT.md`` (``--out-dir`` picks another folder):

1. It runs every benchmark module of this package that follows the contract
   ``python -m benchmarks.<name> --quick --out FILE.json`` (its argument parser
   declares both options), each in its own subprocess with a timeout, and turns
   the JSON it writes into tables. A module without ``--quick`` or ``--out``, or
   one that declares a program or Python module this machine lacks
   (``REQUIRED_PROGRAMS = ("mpirun",)``, ``REQUIRED_MODULES``), is not run; the
   report lists it with what it lacks, and shows its committed result from
   ``--out-dir`` when there is one.
2. The *op sweep*: the per-op time of the ``op_overhead`` chain (add, mul, tanh)
   as the vectors grow from 16 to about a million elements, for NumPy written by
   hand, neural_arch and PyTorch on the CPU, forward + backward and forward only.
3. The *optimizer sweep*: the step time of Adam and of SGD with momentum as the
   parameter count grows from a thousand to ten million (ten tensors), for NumPy
   written by hand, neural_arch (per tensor and ``contiguous=True``) and PyTorch.

Both sweeps also time CuPy written by hand, neural_arch on CuPy and PyTorch on
CUDA when a GPU is at hand; otherwise those columns read "n/a (no GPU)". Each
sweep gives a table of ratios and a log-log plot (time against size), so that
the fixed per-call cost and the growth with size can both be read off.

Every subprocess runs with one BLAS/OpenMP thread (the thread variables are set
to 1 in its environment, and PyTorch gets ``set_num_threads(1)``). Benchmarks
run one after the other, so they do not disturb each other's timings, except
under ``--quick``, a smoke run (small sweeps, one short timing run per case)
that runs everything side by side to finish fast; its numbers mean nothing.

Run from the repository root::

    python -m benchmarks.report                 # a few minutes
    python -m benchmarks.report --quick --out-dir /tmp/report
"""
from __future__ import annotations

from . import _common  # noqa: F401  (first: pins the thread pools to one thread)

import argparse  # noqa: E402
import ast  # noqa: E402
import concurrent.futures  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from ._common import (THREAD_VARIABLES, import_torch, machine_info, markdown_table,  # noqa: E402
                      now, time_round_robin, versions)
from .op_overhead import numpy_forward_backward  # noqa: E402  (the hand-written references)
from .optim_step import HYPER, make_numpy  # noqa: E402

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
NO_GPU = "n/a (no GPU)"
NOT_MEASURED = "not measured"
REQUIRED_OPTIONS = ("--quick", "--out")

# Sweep sizes and timing, by mode.
OP_SIZES = {"full": [16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576],
            "quick": [16, 1024, 65536]}
OPTIM_SIZES = {"full": [10 ** 3, 10 ** 4, 10 ** 5, 10 ** 6, 10 ** 7],
               "quick": [10 ** 3, 10 ** 5]}
CHAIN_OPS = 30            # ops in the op sweep's chain (add, mul, tanh, ten times)
OPTIM_TENSORS = 10        # the optimizer sweep splits the parameters into this many tensors
CHECK_STEPS = 3           # optimizer steps taken by every implementation before the check
TIMING = {"full": dict(repeat=9, min_time=0.05), "quick": dict(repeat=1, min_time=0.002)}

OP_LIBS = ("numpy", "neural_arch", "torch")
OP_GPU_LIBS = ("cupy", "neural_arch_cuda", "torch_cuda")
OPTIM_IMPLS = ("numpy", "neural_arch", "neural_arch_contiguous", "torch", "torch_fused")
OPTIM_GPU_IMPLS = ("cupy", "neural_arch_cuda", "torch_cuda")
LABELS = {"numpy": "NumPy by hand", "neural_arch": "neural_arch",
          "neural_arch_contiguous": "neural_arch (contiguous=True)",
          "torch": "PyTorch CPU", "torch_fused": "PyTorch CPU (fused=True)",
          "cupy": "CuPy by hand", "neural_arch_cuda": "neural_arch on CuPy",
          "torch_cuda": "PyTorch CUDA"}
STYLES = {"numpy": ("tab:gray", "-"), "neural_arch": ("tab:blue", "-"),
          "neural_arch_contiguous": ("tab:cyan", "-"), "torch": ("tab:red", "-"),
          "torch_fused": ("tab:orange", "-"), "cupy": ("tab:gray", "--"),
          "neural_arch_cuda": ("tab:blue", "--"), "torch_cuda": ("tab:red", "--")}


# ---- the machine ---------------------------------------------------------------------------

def gpu_info():
    """What this machine offers on the GPU side: CuPy's device and torch's CUDA device.

    Returns a dict with ``cupy`` and ``torch_cuda`` (a device name, or None) and
    ``present`` (True when either is usable).
    """
    info = {"cupy": None, "cupy_version": None, "torch_cuda": None}
    from neural_arch import backend
    if backend.cupy_available():
        cp = backend.cupy
        info["cupy_version"] = cp.__version__
        props = cp.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        info["cupy"] = name.decode() if isinstance(name, bytes) else str(name)
    try:
        import torch                    # not import_torch(): the thread count stays as it is
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        info["torch_cuda"] = torch.cuda.get_device_name(0)
    info["present"] = bool(info["cupy"] or info["torch_cuda"])
    return info


def git_revision():
    """The short commit hash of the working tree, with ``+dirty`` when it has changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev + ("+dirty" if dirty else "")) or None


class Device:
    """Where the GPU cases run: the array module, the device name, and a synchronize call.

    :func:`cuda_device` gives CuPy on ``'cuda'``; the tests pass a CPU stand-in.
    """

    def __init__(self, xp, name, sync):
        self.xp, self.name, self.sync = xp, name, sync


def cuda_device():
    """CuPy's device 0, synchronized through its current stream."""
    from neural_arch.backend import cupy as cp
    return Device(cp, "cuda", lambda: cp.cuda.get_current_stream().synchronize())


# ---- finding and running the benchmarks ------------------------------------------------------

def cli_options(package_dir, name, timeout=120):
    """The options that ``python -m <package>.<name> --help`` lists in its usage line.

    Returns ``(options, problem)``: the set of ``--long`` option strings, and None,
    or an empty set and what went wrong when ``--help`` failed.
    """
    package_dir = pathlib.Path(package_dir)
    try:
        proc = subprocess.run([sys.executable, "-m", f"{package_dir.name}.{name}", "--help"],
                              cwd=package_dir.parent, env=subprocess_env(),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return set(), f"a --help that answers within {timeout} s"
    if proc.returncode != 0:
        return set(), f"a working --help (exit status {proc.returncode})"
    # The usage paragraph lists every option, so the prose of a description that
    # mentions an option does not count.
    usage = proc.stdout.split("usage:", 1)[1].split("\n\n", 1)[0] if "usage:" in proc.stdout \
        else ""
    return set(re.findall(r"(?<![\w-])(--[A-Za-z][\w-]*)", usage)), None


def declared_requirements(path):
    """What a benchmark module says it needs from the machine, read from its source.

    A module declares ``REQUIRED_PROGRAMS = ("mpirun", ...)`` (found on ``PATH``)
    and ``REQUIRED_MODULES = ("mpi4py", ...)`` (importable) as literal tuples at
    the top level; the source is parsed, not imported. Returns ``(programs, modules)``.
    """
    try:
        tree = ast.parse(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return (), ()
    found = {"REQUIRED_PROGRAMS": (), "REQUIRED_MODULES": ()}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in found:
                    try:
                        found[target.id] = tuple(str(v) for v in ast.literal_eval(node.value))
                    except (ValueError, TypeError):
                        pass
    return found["REQUIRED_PROGRAMS"], found["REQUIRED_MODULES"]


def missing_requirements(path):
    """The programs and Python modules that ``path`` declares and this machine lacks."""
    programs, modules = declared_requirements(path)
    return ([p for p in programs if shutil.which(p) is None]
            + [m for m in modules if importlib.util.find_spec(m) is None])


def discover(package_dir=PACKAGE_DIR):
    """Every benchmark module of ``package_dir``: ``{name: what it lacks}``.

    Each module is asked for ``--help`` (all at once, in subprocesses); what it
    lacks is the list of the options ``--quick`` and ``--out`` missing from its
    usage line, or a working ``--help``, followed by the programs and modules it
    declares (:func:`declared_requirements`) that this machine lacks. A module
    that lacks nothing follows the contract and is run. Private modules
    (``_common``) and this report are left out.
    """
    paths = [path for path in sorted(pathlib.Path(package_dir).glob("*.py"))
             if not path.stem.startswith("_") and path.stem != "report"]
    names = [path.stem for path in paths]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        answers = list(pool.map(lambda n: cli_options(package_dir, n), names))
    found = {}
    for path, (options, problem) in zip(paths, answers):
        lacks = [problem] if problem else [o for o in REQUIRED_OPTIONS if o not in options]
        found[path.stem] = lacks + missing_requirements(path)
    return found


def subprocess_env():
    """The environment of every subprocess: one thread, no display, the repo importable."""
    env = dict(os.environ)
    env.update({name: "1" for name in THREAD_VARIABLES})
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_module(args, out_json, log_path, timeout):
    """Run ``python -m <args>`` with a timeout; read the JSON it writes to ``out_json``.

    Returns a dict with ``status`` (``ok``, ``failed``, ``timeout``, ``no output``),
    ``seconds``, ``command``, and ``data`` (the JSON) or ``log_tail``.
    """
    cmd = [sys.executable, "-m", *args]
    shown = "python -m " + " ".join(args).replace(str(out_json), "OUT.json")
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            rc = subprocess.run(cmd, cwd=REPO_ROOT, env=subprocess_env(), stdout=log,
                                stderr=subprocess.STDOUT, timeout=timeout).returncode
            status = "ok" if rc == 0 else f"failed (exit status {rc})"
        except subprocess.TimeoutExpired:
            status = f"timeout (after {timeout:.0f} s)"
    result = {"command": shown, "seconds": round(time.perf_counter() - t0, 1)}
    if status == "ok":
        try:
            with open(out_json) as f:
                result["data"] = json.load(f)
        except (OSError, ValueError) as e:
            status = f"no output ({e.__class__.__name__}: {e})"
    result["status"] = status
    if status != "ok":
        with open(log_path, errors="replace") as f:
            result["log_tail"] = f.read()[-2000:]
    return result


def run_all(jobs, parallel):
    """Run ``jobs`` (``{key: (args, out_json, log, timeout)}``) one by one or side by side."""
    if not parallel:
        return {key: run_module(*job) for key, job in jobs.items()}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = {key: pool.submit(run_module, *job) for key, job in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


# ---- the op sweep (runs in a subprocess: python -m benchmarks.report --sweep ops) ----------

def op_runners(lib, x0, w0, n_ops, device=None):
    """``(train, infer, check)`` for one library of the op sweep (see op_overhead).

    The GPU libraries (``cupy``, ``neural_arch_cuda``) run on ``device`` (a
    :class:`Device`; CuPy's by default), and every call ends with a synchronize.
    """
    from . import op_overhead
    if lib == "numpy":
        def train():
            return numpy_forward_backward(x0, w0, n_ops, xp=np)
        return train, lambda: op_overhead.chain(x0, w0, np.tanh, n_ops), train
    if lib in ("neural_arch", "torch"):
        return op_overhead.MAKERS[lib](x0, w0, n_ops)
    if lib == "torch_cuda":
        return torch_cuda_op_runners(x0, w0, n_ops)
    if lib not in ("cupy", "neural_arch_cuda"):
        raise ValueError(f"unknown library {lib!r}")
    device = device or cuda_device()
    xp, sync = device.xp, device.sync
    if lib == "cupy":
        x, w = xp.asarray(x0), xp.asarray(w0)

        def train():
            out = numpy_forward_backward(x, w, n_ops, xp=xp)
            sync()
            return out

        def infer():
            out = op_overhead.chain(x, w, xp.tanh, n_ops)
            sync()
            return out

        return train, infer, lambda: [xp.asnumpy(a) for a in train()]
    import neural_arch as na
    x = na.Tensor(x0, requires_grad=True, device=device.name)
    w = na.Tensor(w0, requires_grad=True, device=device.name)
    seed = na.Tensor(np.ones_like(x0), device=device.name)

    def train():
        x.grad = w.grad = None
        y = op_overhead.chain(x, w, na.tanh, n_ops)
        y.backward(seed)
        sync()
        return y

    def infer():
        with na.no_grad():
            y = op_overhead.chain(x, w, na.tanh, n_ops)
        sync()
        return y

    def check():
        y = train()
        return y.numpy(), x.grad.numpy(), w.grad.numpy()

    return train, infer, check


def torch_cuda_op_runners(x0, w0, n_ops):
    """``(train, infer, check)`` of the op chain in PyTorch on CUDA."""
    from . import op_overhead
    torch = import_torch()
    x = torch.tensor(x0, device="cuda", requires_grad=True)
    w = torch.tensor(w0, device="cuda", requires_grad=True)
    seed = torch.ones_like(x)

    def train():
        x.grad = w.grad = None
        y = op_overhead.chain(x, w, torch.tanh, n_ops)
        y.backward(seed)
        torch.cuda.synchronize()
        return y

    def infer():
        with torch.no_grad():
            y = op_overhead.chain(x, w, torch.tanh, n_ops)
        torch.cuda.synchronize()
        return y

    def check():
        y = train()
        return y.detach().cpu().numpy(), x.grad.cpu().numpy(), w.grad.cpu().numpy()

    return train, infer, check


def sweep_ops(sizes, libs, n_ops, repeat, min_time, seed=0, device=None):
    """Microseconds per op of every library at every size; see :func:`op_runners`.

    Returns ``(results, skipped)``: ``results[lib]`` holds a list per mode
    (``fwd_bwd_us_per_op``, ``fwd_no_grad_us_per_op``) with a value per size, and
    ``skipped`` the libraries that could not be imported, with the reason.
    """
    from . import op_overhead
    results = {lib: {"fwd_bwd_us_per_op": [], "fwd_no_grad_us_per_op": []} for lib in libs}
    skipped = {}
    for n in sizes:
        rng = np.random.default_rng(seed)
        x0 = rng.uniform(-1.0, 1.0, n).astype(np.float32)
        w0 = rng.uniform(0.5, 1.0, n).astype(np.float32)
        ref = [a.astype(np.float64) for a in op_overhead.numpy_forward_backward(x0, w0, n_ops)]
        cases = {}
        for lib in libs:
            if lib in skipped:
                continue
            try:
                train, infer, check = op_runners(lib, x0, w0, n_ops, device)
            except ImportError as e:
                skipped[lib] = f"not installed ({e})"
                continue
            op_overhead.check_against_numpy(f"{lib} at {n} elements", check, ref)
            cases[lib, "fwd_bwd"] = train
            cases[lib, "fwd_no_grad"] = infer
        times = time_round_robin(cases, repeat, min_time)
        for lib in libs:
            for mode in ("fwd_bwd", "fwd_no_grad"):
                t = times.get((lib, mode))
                results[lib][f"{mode}_us_per_op"].append(
                    None if t is None else t / n_ops * 1e6)
        del cases
    return {lib: r for lib, r in results.items() if lib not in skipped}, skipped


# ---- the optimizer sweep (python -m benchmarks.report --sweep optim) -----------------------

def optim_runner(impl, kind, params0, grads0, device=None):
    """``(step, read)`` for one implementation: ``read()`` returns the parameters on the host.

    ``cupy`` and ``neural_arch_cuda`` run on ``device`` (a :class:`Device`; CuPy's by
    default), each step ending with a synchronize.
    """
    if impl in ("cupy", "neural_arch_cuda"):
        device = device or cuda_device()
        xp, sync = device.xp, device.sync
    if impl in ("numpy", "cupy"):
        if impl == "numpy":
            xp, to_host, sync = np, (lambda a: a), (lambda: None)
        else:
            to_host = xp.asnumpy
        params = [xp.asarray(p).copy() for p in params0]
        grads = [xp.asarray(g) for g in grads0]
        inner = make_numpy(kind, params, grads, xp=xp)

        def step():
            inner()
            sync()
        return step, lambda: [to_host(p) for p in params]
    if impl.startswith("neural_arch"):
        import neural_arch as na
        name = device.name if impl == "neural_arch_cuda" else "cpu"
        params = [na.Parameter(p.copy(), device=name) for p in params0]
        for p, g in zip(params, grads0):
            p.grad = na.Tensor(g, device=name)
        cls = na.optim.Adam if kind == "adam" else na.optim.SGD
        opt = cls(params, contiguous=impl == "neural_arch_contiguous", **HYPER[kind])
        if impl == "neural_arch_cuda":
            def step():
                opt.step()
                sync()
        else:
            step = opt.step
        return step, lambda: [p.numpy() for p in params]
    torch = import_torch()
    if torch is None:
        raise ImportError("torch")
    where = "cuda" if impl == "torch_cuda" else "cpu"
    params = [torch.nn.Parameter(torch.from_numpy(p.copy()).to(where)) for p in params0]
    for p, g in zip(params, grads0):
        p.grad = torch.from_numpy(g).to(where)
    flags = {"torch": dict(foreach=False), "torch_fused": dict(fused=True)}.get(impl, {})
    opt = (torch.optim.Adam if kind == "adam" else torch.optim.SGD)(
        params, **HYPER[kind], **flags)
    if where == "cuda":
        def step():
            opt.step()
            torch.cuda.synchronize()
    else:
        step = opt.step
    return step, lambda: [p.detach().cpu().numpy() for p in params]


def sweep_optim(sizes, impls, repeat, min_time, seed=0, device=None):
    """Milliseconds per step of every implementation for Adam and SGD at every size.

    Returns ``(results, skipped)``: ``results[kind][impl]`` lists a value per size;
    every implementation is checked against NumPy by hand after a few steps.
    """
    results = {kind: {impl: [] for impl in impls} for kind in HYPER}
    skipped = {}
    for kind in HYPER:
        for n in sizes:
            rng = np.random.default_rng(seed)
            shape = (max(1, n // OPTIM_TENSORS),)
            params0 = [rng.standard_normal(shape, np.float32) for _ in range(OPTIM_TENSORS)]
            grads0 = [rng.standard_normal(shape, np.float32) for _ in range(OPTIM_TENSORS)]
            ref = [p.copy() for p in params0]
            ref_step = make_numpy(kind, ref, grads0, xp=np)
            for _ in range(CHECK_STEPS):
                ref_step()
            steps = {}
            for impl in impls:
                if impl in skipped:
                    continue
                try:
                    step, read = optim_runner(impl, kind, params0, grads0, device)
                except (ImportError, RuntimeError, TypeError, ValueError) as e:
                    skipped[impl] = f"{e.__class__.__name__}: {e}"
                    continue
                for _ in range(CHECK_STEPS):
                    step()
                for a, b in zip(read(), ref):
                    if not np.allclose(a, b, rtol=1e-4, atol=1e-6):
                        raise AssertionError(f"{impl} {kind} at {n} parameters differs "
                                             "from NumPy by hand")
                steps[impl] = step
            times = time_round_robin(steps, repeat, min_time)
            for impl in impls:
                t = times.get(impl)
                results[kind][impl].append(None if t is None else t * 1e3)
            del steps
    results = {kind: {i: r for i, r in rows.items() if i not in skipped}
               for kind, rows in results.items()}
    return results, skipped


def sweep_main(which, out, quick):
    """Entry of the sweep subprocess: run one sweep and write its JSON to ``out``."""
    mode = "quick" if quick else "full"
    timing = TIMING[mode]
    gpu = gpu_info()
    if which == "ops":
        sizes = OP_SIZES[mode]
        libs = OP_LIBS + (OP_GPU_LIBS if gpu["present"] else ())
        results, skipped = sweep_ops(sizes, libs, CHAIN_OPS, **timing)
        config = {"sizes": sizes, "size_unit": "elements", "n_ops": CHAIN_OPS,
                  "pattern": ["add", "mul", "tanh"], "dtype": "float32"}
    else:
        sizes = OPTIM_SIZES[mode]
        impls = OPTIM_IMPLS + (OPTIM_GPU_IMPLS if gpu["present"] else ())
        results, skipped = sweep_optim(sizes, impls, **timing)
        config = {"sizes": sizes, "size_unit": "parameters", "tensors": OPTIM_TENSORS,
                  "dtype": "float32", "hyperparameters": HYPER}
    config.update(timing, quick=quick)
    with open(out, "w") as f:
        json.dump({"sweep": which, "started": now(), "config": config, "gpu": gpu,
                   "results": results, "skipped": skipped}, f, indent=2)
    return 0


# ---- tables --------------------------------------------------------------------------------

def fmt(v):
    """A table cell: ``-`` for None, integers as they are, floats with 2 decimals from 1
    up and 3 significant digits below (so small times keep their precision)."""
    if v is None:
        return "-"
    if isinstance(v, (bool, int)) or not isinstance(v, float):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) >= 1e5:
        return f"{v:.3e}"
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def gpu_cell(value, gpu_present):
    """A GPU ratio cell: the value, or why there is none."""
    if value is not None:
        return fmt(value)
    return NOT_MEASURED if gpu_present else NO_GPU


def sweep_table(sizes, unit, rows, time_key, gpu_present, cpu_impls, gpu_impl, cpu_base,
                torch_base, gpu_bases):
    """One row per size: neural_arch's times and its ratios to every baseline.

    ``rows[impl]`` lists the times per size; ``cpu_impls`` are the neural_arch
    variants shown on the CPU, ``gpu_impl`` the neural_arch variant on CuPy, and
    ``gpu_bases`` the (CuPy, torch CUDA) baselines it is divided by.
    """
    def at(impl, i):
        series = rows.get(impl)
        return None if series is None else series[i]

    header = [unit]
    for impl in cpu_impls:
        header += [f"{LABELS[impl]} {time_key}", "× NumPy by hand", "× PyTorch CPU"]
    header += [f"{LABELS[gpu_impl]} {time_key}", "× CuPy by hand", "× PyTorch CUDA"]
    body = []
    for i, n in enumerate(sizes):
        cells = [f"{n:,}"]
        for impl in cpu_impls:
            t = at(impl, i)
            cells += [fmt(t), fmt(ratio(t, at(cpu_base, i))), fmt(ratio(t, at(torch_base, i)))]
        t = at(gpu_impl, i)
        cells.append(fmt(t) if t is not None else (NOT_MEASURED if gpu_present else NO_GPU))
        cells += [gpu_cell(ratio(t, at(base, i)), gpu_present) for base in gpu_bases]
        body.append(cells)
    return markdown_table(header, body)


def times_table(sizes, unit, rows, time_key):
    """Every implementation's raw times: one row per size, one column per implementation."""
    impls = list(rows)
    header = [unit] + [f"{LABELS.get(i, i)} {time_key}" for i in impls]
    body = [[f"{n:,}"] + [fmt(rows[i][k]) for i in impls] for k, n in enumerate(sizes)]
    return markdown_table(header, body)


RATIO_ORDER = ("numpy", "torch")


def implementation_table(title, rows, labels, gpu_present, all_numbers):
    """One Markdown table, a row per implementation of ``rows`` (``{impl: {key: number}}``).

    Columns: with ``all_numbers`` every key, in order of appearance; otherwise the
    first key that is not a ratio (the time) and the ``vs_*`` ratios, NumPy first,
    then PyTorch. Ratios to CuPy or CUDA baselines go to the last two columns, which
    say why they are empty when there are none. A row ``{"skipped": why}`` (an
    implementation the benchmark could not run, e.g. a GPU row without a GPU) shows
    ``skipped: why`` in its first column.
    """
    keys = list(dict.fromkeys(k for r in rows.values() for k, v in r.items()
                              if isinstance(v, (int, float)) or v is None))
    skipped = {impl: r["skipped"] for impl, r in rows.items()
               if isinstance(r.get("skipped"), str)}
    gpu_keys = [k for k in keys if "vs_" in k and ("cupy" in k or "cuda" in k)]
    keys = [k for k in keys if k not in gpu_keys]
    if not all_numbers:
        time_key = next((k for k in keys if not k.startswith("vs_")), None)
        ratios = [k for k in keys if k.startswith("vs_")]
        ratios.sort(key=lambda k: next((i for i, p in enumerate(RATIO_ORDER)
                                        if k[3:].startswith(p)), len(RATIO_ORDER)))
        keys = ([time_key] if time_key else []) + ratios
    if skipped and not keys:
        keys = ["ms"]                  # every row skipped: one column for the reasons
    header = [str(title)] + [f"× {labels.get(k[3:], k[3:])}" if k.startswith("vs_") else k
                             for k in keys] + ["× CuPy", "× PyTorch CUDA"]
    body = []
    for impl, r in rows.items():
        cells = [labels.get(impl, impl)] + [fmt(r.get(k)) for k in keys]
        if impl in skipped:
            cells[1] = f"skipped: {skipped[impl]}"
        for gpu in ("cupy", "cuda"):
            cells.append(gpu_cell(next((r[k] for k in gpu_keys if gpu in k and k in r), None),
                                  gpu_present))
        body.append(cells)
    return markdown_table(header, body)


def benchmark_tables(data, labels, gpu_present):
    """Markdown tables for the JSON of one benchmark.

    Understood layouts of ``data["results"]``: ``{case: {implementation: {numbers}}}``
    (a table per case, see :func:`implementation_table`), ``{implementation:
    {numbers}}`` (one table with every number), and a list of flat records (one
    table). Anything else is shown as JSON. A ``targets`` list becomes a table too.
    """
    results = data.get("results")
    out = []

    def is_rows(d):
        return (isinstance(d, dict) and d and all(isinstance(r, dict) for r in d.values()))

    if is_rows(results) and all(is_rows(rows) for rows in results.values()):
        for case, rows in results.items():
            out.append(implementation_table(case, rows, labels, gpu_present, False))
    elif is_rows(results) and all(not isinstance(v, (dict, list))
                                  for r in results.values() for v in r.values()):
        out.append(implementation_table("implementation", results, labels, gpu_present, True))
    elif isinstance(results, list) and results and all(isinstance(r, dict) for r in results):
        keys = list(dict.fromkeys(k for r in results for k, v in r.items()
                                  if not isinstance(v, (dict, list))))
        out.append(markdown_table(keys, [[fmt(r.get(k)) for k in keys] for r in results]))
    else:
        out.append("```json\n" + json.dumps(results, indent=1)[:4000] + "\n```")
    targets = data.get("targets")
    if isinstance(targets, list) and targets and all(isinstance(t, dict) for t in targets):
        keys = list(dict.fromkeys(k for t in targets for k in t))
        out.append("Targets:\n\n" + markdown_table(
            keys, [[fmt(t.get(k)) for k in keys] for t in targets]))
    return out


def module_labels(name):
    """The ``LABELS`` dict of benchmark module ``name`` (pretty implementation names)."""
    try:
        module = __import__(f"benchmarks.{name}", fromlist=["LABELS"])
    except Exception:                          # a module that fails to import has no labels
        return {}
    labels = getattr(module, "LABELS", {})
    return labels if isinstance(labels, dict) else {}


# ---- plots ---------------------------------------------------------------------------------

def plot_sweep(path, sweep, panels, xlabel, ylabel, title):
    """A log-log plot, one panel per ``(title, series)`` of ``panels``, written to ``path``.

    ``series`` maps an implementation to its values per size (None where missing).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sweep["config"]["sizes"]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (panel_title, series) in zip(axes[0], panels):
        # A guide of slope 1 (time proportional to size) through the median of the
        # times at the largest size: a curve parallel to it pays per element, a flat
        # one per call.
        # It starts where it falls below the fastest time measured, so that it does not
        # stretch the axis.
        last = sorted(v[-1] for v in series.values() if v and v[-1])
        if last and len(sizes) > 1:
            y_end = last[len(last) // 2]
            y_min = min(t for v in series.values() for t in v if t)
            x0 = max(sizes[0], sizes[-1] * y_min / y_end / 2)
            ax.plot([x0, sizes[-1]], [y_end * x0 / sizes[-1], y_end], ":",
                    color="0.6", linewidth=1, label="∝ size (slope 1)")
        for impl, values in series.items():
            pts = [(n, v) for n, v in zip(sizes, values) if v is not None and v > 0]
            if not pts:
                continue
            color, style = STYLES.get(impl, (None, "-"))
            ax.plot(*zip(*pts), style, color=color, marker="o", markersize=3,
                    label=LABELS.get(impl, impl))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(panel_title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", alpha=0.12)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- the page ------------------------------------------------------------------------------

def machine_section(machine, vers, gpu, revision, started, finished, load_end, quick):
    cores = f"{machine.get('cpu_count')} logical"
    if "cpus_usable" in machine:
        cores += f", {machine['cpus_usable']} usable by this process"
    if gpu["present"]:
        gpu_text = " / ".join(f"{k}: {gpu[k]}" for k in ("cupy", "torch_cuda") if gpu[k])
    else:
        gpu_text = "none (CuPy with a GPU: no; torch CUDA: no); GPU columns read " + NO_GPU
    rows = [
        ["date", f"{started} to {finished}"],
        ["CPU", f"{machine.get('cpu_model')} ({cores})"],
        ["GPU", gpu_text],
        ["platform", machine.get("platform")],
        ["Python", f"{machine.get('python')} ({machine.get('implementation')})"],
        ["NumPy", vers.get("numpy")],
        ["PyTorch", vers.get("torch") or "not installed"],
        ["CuPy", gpu.get("cupy_version") or "not installed or no GPU"],
        ["neural_arch", f"{vers.get('neural_arch')}"
                        + (f" (git {revision})" if revision else "")],
        ["threads", "1 per process (" + ", ".join(f"{v}=1" for v in THREAD_VARIABLES[:3])
                    + ", torch.set_num_threads(1))"],
        ["load average", f"{machine.get('load_average_at_start')} at the start, "
                         f"{load_end} at the end (1, 5, 15 minutes)"],
        ["mode", "quick (smoke run: tiny sweeps, one short timing run per case, everything "
                 "side by side; the numbers mean nothing)" if quick else
                 "full sweeps; benchmarks in their --quick mode, one after the other"],
    ]
    return "## Machine\n\n" + "\n".join(
        ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def op_section(sweep, gpu_present, png):
    if sweep is None:
        return None
    cfg, rows = sweep["config"], sweep["results"]
    text = [
        "## Per-op time vs tensor size",
        f"A chain of {cfg['n_ops']} elementwise ops (add, mul, tanh, repeating; the "
        "`op_overhead` workload) on float32 vectors of growing length, timed forward + "
        "backward and forward only (`no_grad`); microseconds per op, best of "
        f"{cfg['repeat']} runs. On small vectors the time is the per-op overhead of the "
        "framework; on large ones it is the arithmetic, and the curves should meet.",
        f"![per-op time vs tensor size]({png})",
    ]
    for mode, title in (("fwd_bwd", "forward + backward"), ("fwd_no_grad", "forward only")):
        key = f"{mode}_us_per_op"
        series = {impl: r[key] for impl, r in rows.items()}
        text.append(f"**{title}**, neural_arch against the others (ratio = neural_arch's "
                    "time / the other's; below 1 is faster):")
        text.append(sweep_table(cfg["sizes"], "elements", series, "µs/op", gpu_present,
                                ["neural_arch"], "neural_arch_cuda", "numpy", "torch",
                                ["cupy", "torch_cuda"]))
        text.append(f"All times, {title} (µs per op):")
        text.append(times_table(cfg["sizes"], "elements", series, "µs/op"))
    text += [f"Skipped: {k}: {v}" for k, v in sweep.get("skipped", {}).items()]
    return "\n\n".join(text)


def optim_section(sweep, gpu_present, png):
    if sweep is None:
        return None
    cfg, rows = sweep["config"], sweep["results"]
    text = [
        "## Optimizer step time vs parameter count",
        f"One step of Adam (lr=1e-3, betas=(0.9, 0.999), eps=1e-8) and of SGD "
        f"(lr=1e-3, momentum=0.9) over {cfg['tensors']} float32 tensors holding the "
        "parameters, with a fixed gradient; milliseconds per step, best of "
        f"{cfg['repeat']} runs. PyTorch CPU is `foreach=False` (its CPU default); "
        "PyTorch CUDA uses its default. Small models show the per-tensor overhead, "
        "large ones the memory traffic of the update.",
        f"![optimizer step time vs parameter count]({png})",
    ]
    for kind, title in (("adam", "Adam"), ("sgd", "SGD with momentum")):
        series = rows[kind]
        text.append(f"**{title}** (ratio = neural_arch's time / the other's):")
        text.append(sweep_table(cfg["sizes"], "parameters", series, "ms", gpu_present,
                                ["neural_arch", "neural_arch_contiguous"],
                                "neural_arch_cuda", "numpy", "torch",
                                ["cupy", "torch_cuda"]))
        text.append(f"All times, {title} (ms per step):")
        text.append(times_table(cfg["sizes"], "parameters", series, "ms"))
    text += [f"Skipped: {k}: {v}" for k, v in sweep.get("skipped", {}).items()]
    return "\n\n".join(text)


def benchmark_section(name, run, gpu_present):
    text = [f"### {name}", f"`{run['command']}`: {run['status']}, {run['seconds']} s."]
    if run["status"] != "ok":
        text.append("Output (end):\n\n```\n" + run.get("log_tail", "").strip() + "\n```")
        return "\n\n".join(text)
    data = run["data"]
    config = data.get("config", {})
    if config:
        text.append("Configuration: " + ", ".join(
            f"{k}={json.dumps(v)}" for k, v in config.items()
            if not isinstance(v, (dict, list)) or len(json.dumps(v)) < 120))
    text += benchmark_tables(data, module_labels(name), gpu_present)
    notes = data.get("notes")
    if isinstance(notes, list) and notes:
        text.append("\n".join(f"- {n}" for n in notes))
    skipped = data.get("skipped")
    if isinstance(skipped, dict) and skipped:
        text.append("Skipped:\n\n" + "\n".join(f"- {k}: {v}" for k, v in skipped.items()))
    return "\n\n".join(text)


def not_run_section(missing, gpu_present):
    """The modules left out for lacking ``--quick``/``--out``, with their committed results.

    A committed result is ``benchmarks/results/<name>.json``, the module's last full run.
    """
    text = []
    for name, lacks in missing.items():
        path = PACKAGE_DIR / f"{name}.py"
        programs, modules = declared_requirements(path)
        needs = [n for n in lacks if n in programs or n in modules]
        own = [n for n in lacks if n not in needs]
        why = []
        if own:
            why.append(f"`benchmarks/{name}.py` lacks "
                       + " and ".join(f"`{o}`" if o.startswith("--") else o for o in own))
        if needs:
            why.append("this machine lacks " + " and ".join(f"`{n}`" for n in needs)
                       + f", which `benchmarks/{name}.py` needs")
        why = "; ".join(why)
        part = [f"### {name} (not run)",
                why[:1].upper() + why[1:] + f", so the report cannot run it as `python -m "
                f"benchmarks.{name} --quick --out FILE.json`."]
        committed = PACKAGE_DIR / "results" / f"{name}.json"
        if committed.is_file():
            try:
                data = json.loads(committed.read_text())
            except ValueError:
                data = None
            if isinstance(data, dict):
                machine = data.get("machine", {})
                part.append(f"Its committed result `{committed.name}` (from "
                            f"{data.get('started')}, on {machine.get('cpu_model')}, "
                            f"{machine.get('cpu_count')} cores), not re-run:")
                part += benchmark_tables(data, module_labels(name), gpu_present)
        text.append("\n\n".join(part))
    return "\n\n".join(text)


def write_page(path, sections):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(s for s in sections if s).rstrip() + "\n")


# ---- main ----------------------------------------------------------------------------------

def build_report(out_dir, quick, timeout, only=None):
    """Run the benchmarks and sweeps and write REPORT.md, its plots and report_data.json."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = now()
    machine, vers, gpu = machine_info(), versions(), gpu_info()
    modules = discover()
    if only is not None:
        modules = {k: v for k, v in modules.items() if k in only}
    runnable = [name for name, lacks in modules.items() if not lacks]
    missing = {name: lacks for name, lacks in modules.items() if lacks}
    with tempfile.TemporaryDirectory(prefix="na_report_") as tmp:
        tmp = pathlib.Path(tmp)
        jobs = {}
        for which in ("ops", "optim"):
            args = ["benchmarks.report", "--sweep", which, "--out", str(tmp / f"{which}.json")]
            jobs["sweep", which] = (args + (["--quick"] if quick else []),
                                    tmp / f"{which}.json", tmp / f"{which}.log", timeout)
        for name in runnable:
            out = tmp / f"{name}.json"
            jobs["bench", name] = ([f"benchmarks.{name}", "--quick", "--out", str(out)],
                                   out, tmp / f"{name}.log", timeout)
        for key in jobs:
            print(f"{'queued' if quick else 'will run'}: {key[1]}", flush=True)
        runs = run_all(jobs, parallel=quick)
    for key, r in runs.items():
        print(f"{key[0]} {key[1]}: {r['status']} ({r['seconds']} s)", flush=True)
    finished = now()
    load_end = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None

    sweeps = {w: runs["sweep", w].get("data") for w in ("ops", "optim")}
    pngs = {"ops": "op_time_vs_size.png", "optim": "optim_step_vs_params.png"}
    if sweeps["ops"]:
        rows = sweeps["ops"]["results"]
        plot_sweep(out_dir / pngs["ops"], sweeps["ops"],
                   [(t, {i: r[f"{m}_us_per_op"] for i, r in rows.items()})
                    for m, t in (("fwd_bwd", "forward + backward"),
                                 ("fwd_no_grad", "forward only (no_grad)"))],
                   "elements per tensor", "µs per op",
                   f"Per-op time, chain of {sweeps['ops']['config']['n_ops']} ops "
                   "(add, mul, tanh), float32")
    if sweeps["optim"]:
        plot_sweep(out_dir / pngs["optim"], sweeps["optim"],
                   [("Adam", sweeps["optim"]["results"]["adam"]),
                    ("SGD, momentum 0.9", sweeps["optim"]["results"]["sgd"])],
                   "parameters", "ms per step",
                   f"Optimizer step time, {OPTIM_TENSORS} float32 tensors")

    bench_runs = {k[1]: r for k, r in runs.items() if k[0] == "bench"}
    sweep_problems = [f"- {w} sweep: {runs['sweep', w]['status']}\n\n```\n"
                      f"{runs['sweep', w].get('log_tail', '').strip()}\n```"
                      for w in ("ops", "optim") if runs["sweep", w]["status"] != "ok"]
    summary_rows = [[f"{w} sweep (report.py)", runs["sweep", w]["status"],
                     runs["sweep", w]["seconds"]] for w in ("ops", "optim")]
    summary_rows += [[name, r["status"], r["seconds"]] for name, r in bench_runs.items()]
    summary_rows += [[name, "not run: lacks " + ", ".join(lacks), "-"]
                     for name, lacks in missing.items()]
    sections = [
        "# neural_arch benchmark report",
        f"Written by `python -m benchmarks.report{' --quick' if quick else ''}` on "
        f"{finished}. Times are best-of-N wall-clock times on one thread; a ratio divides "
        "one implementation's time by another's, measured in the same run (below 1: "
        "faster). On a shared machine, compare ratios within one report rather than "
        "absolute times across reports. The raw numbers are in `report_data.json`.",
        machine_section(machine, vers, gpu, git_revision(), started, finished, load_end,
                        quick),
        "## Runs\n\n" + markdown_table(["run", "status", "seconds"], summary_rows),
        "\n\n".join(sweep_problems) or None,
        op_section(sweeps["ops"], gpu["present"], pngs["ops"]),
        optim_section(sweeps["optim"], gpu["present"], pngs["optim"]),
        "## Benchmarks\n\nEach benchmark module in its `--quick` mode (smaller workloads "
        "and fewer timing runs than its full run; `python -m benchmarks.<name> --out "
        "FILE.json` gives the full one). Tables show the benchmark's own ratios; the "
        f"CuPy and PyTorch CUDA columns read \"{NO_GPU}\" on a machine without a GPU and "
        f"\"{NOT_MEASURED}\" where the benchmark does not time the GPU.",
        *[benchmark_section(name, r, gpu["present"]) for name, r in bench_runs.items()],
        not_run_section(missing, gpu["present"]) if missing else None,
    ]
    write_page(out_dir / "REPORT.md", sections)
    with open(out_dir / "report_data.json", "w") as f:
        json.dump({"started": started, "finished": finished, "quick": quick,
                   "machine": machine, "versions": vers, "gpu": gpu,
                   "sweeps": sweeps, "benchmarks": bench_runs,
                   "not_run": missing}, f, indent=1)
        f.write("\n")
    print(f"wrote {out_dir / 'REPORT.md'}")
    return runs


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.report",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny sweeps, everything side by side (seconds, not minutes)")
    p.add_argument("--out-dir", default=str(PACKAGE_DIR / "results"),
                   help="folder for REPORT.md, its PNGs and report_data.json "
                        "(default benchmarks/results)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds each benchmark may run (default 1200; 300 with --quick)")
    p.add_argument("--only", help="comma-separated benchmark modules to run (default: all)")
    p.add_argument("--sweep", choices=("ops", "optim"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sweep:
        if not args.out:
            p.error("--sweep needs --out")
        return sweep_main(args.sweep, args.out, args.quick)
    timeout = args.timeout if args.timeout is not None else (300.0 if args.quick else 1200.0)
    if timeout <= 0:
        p.error(f"--timeout must be positive, got {timeout}")
    only = None
    if args.only is not None:
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        names = sorted(path.stem for path in PACKAGE_DIR.glob("*.py")
                       if not path.stem.startswith("_") and path.stem != "report")
        if sorted(only - set(names)):
            p.error(f"unknown benchmarks {sorted(only - set(names))}; choose from {names}")
    build_report(args.out_dir, args.quick, timeout, only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
