"""Data-parallel scaling over MPI: step time, all-reduce share, ZeRO-1 memory.

For each process count N (default 1, 2, 4, ... up to the usable cores, at least
1 and 2; ``--quick`` 1 and 2; any list with ``--procs``, as cores
allow) the benchmark starts ``mpirun -n N`` on itself and trains an MLP with
:class:`~neural_arch.distributed.DistributedDataParallel` and Adam, a fixed
batch per process (weak scaling: a step sees ``N * batch`` examples). Rank 0
reports:

* ``step_ms``: median wall time of one step (forward, backward with the
  gradient all-reduce, optimizer step), and its minimum;
* ``allreduce_ms`` and ``allreduce_share``: the time spent in the gradient
  all-reduce (timed around the buckets' sync inside backward) and its share
  of the step. It includes waiting for the slowest rank to finish its
  backward; ``allreduce_alone_ms`` is the same all-reduce with every rank
  arriving together (a barrier first): the cost of the communication itself;
* ``examples_per_s`` and ``speedup`` over one process, and ``efficiency``
  (speedup / N);
* with ``N = 1``, also the same model without the wrapper (``plain_step_ms``),
  the cost of the wrapper itself;
* ZeRO-1: the optimizer-state bytes each rank holds with
  ``DistributedOptimizer(..., zero_stage=0)`` and ``zero_stage=1``, and the
  step time of each (the all-gather of updated parameters included).

Run from the repository root (Open MPI as root also needs
``OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1``; the benchmark sets
them, and oversubscription, for its own ``mpirun``)::

    python -m benchmarks.ddp_scaling --out benchmarks/results/ddp_scaling.json

Options: ``--procs 1 2 4``, ``--hidden 1024 1024``, ``--batch 64``, ``--steps 30``,
``--warmup 5``, ``--bucket-mb 25``; ``--quick`` (a smoke run for the report: MLP
784-128-128-10, batch 32, 2 + 5 steps, 1 and 2 processes; explicit options still
win). Every process runs with one BLAS thread, so
N processes use N cores; on a machine with fewer free cores than processes
the numbers show contention, not MPI.
"""
from __future__ import annotations

from . import _common  # noqa: F401  (first: pins BLAS to one thread before NumPy loads)

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

#: What the machine must have for this benchmark (the report reads these and lists
#: the benchmark as not run when one is missing).
REQUIRED_PROGRAMS = ("mpirun",)
REQUIRED_MODULES = ("mpi4py",)


def _worker(args):
    import neural_arch as na
    from neural_arch import distributed as dist
    from neural_arch.losses.functional import cross_entropy
    from neural_arch.optim import DistributedOptimizer

    g = dist.init(timeout=300)
    sizes = [args.inputs] + args.hidden + [args.classes]

    def make_model():
        na.manual_seed(0)
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [na.nn.Linear(a, b), na.nn.ReLU()]
        return na.nn.Sequential(*layers[:-1])

    rng = np.random.default_rng(g.rank)
    data = [(na.Tensor(rng.standard_normal((args.batch, args.inputs)).astype(np.float32)),
             na.Tensor(rng.integers(0, args.classes, args.batch)))
            for _ in range(4)]

    def run(model, opt, sync_timer=None):
        times = []
        for i in range(args.warmup + args.steps):
            x, y = data[i % len(data)]
            if sync_timer is not None:
                sync_timer[0] = 0.0
            g.barrier()                         # start every step together
            t0 = time.perf_counter()
            opt.zero_grad()
            cross_entropy(model(x), y).backward()
            opt.step()
            t = time.perf_counter() - t0
            if i >= args.warmup:
                times.append((t, sync_timer[0] if sync_timer is not None else 0.0))
        # Rank 0 reports the slowest rank's times: a step ends when every rank is done.
        everyone = g.allgather_object(times)
        step = [max(r[i][0] for r in everyone) for i in range(len(times))]
        sync = [max(r[i][1] for r in everyone) for i in range(len(times))]
        return step, sync

    def timed_sync(buckets, timer):
        inner = buckets.sync

        def sync():
            t0 = time.perf_counter()
            inner()
            timer[0] += time.perf_counter() - t0
        buckets.sync = sync

    out = {"processes": g.size}
    # DDP + Adam.
    timer = [0.0]
    ddp = dist.DistributedDataParallel(make_model(), bucket_cap_mb=args.bucket_mb)
    timed_sync(ddp._buckets, timer)
    step, sync = run(ddp, na.optim.Adam(ddp.parameters(), lr=1e-3), timer)
    med = statistics.median(step)
    out.update(step_ms=round(med * 1e3, 3), step_ms_min=round(min(step) * 1e3, 3),
               allreduce_ms=round(statistics.median(sync) * 1e3, 3),
               allreduce_share=round(statistics.median(sync) / med, 4),
               examples_per_s=round(g.size * args.batch / med, 1),
               parameters=sum(int(p.size) for p in ddp.parameters()),
               buckets=len(ddp._buckets.buckets))
    # The all-reduce alone, every rank arriving together (no waiting for a slower rank).
    alone = []
    for i in range(args.warmup + args.steps):
        g.barrier()
        timer[0] = 0.0
        ddp._buckets.sync()
        if i >= args.warmup:
            alone.append(timer[0])
    alone = g.allgather_object(alone)
    out["allreduce_alone_ms"] = round(statistics.median(
        [max(r[i] for r in alone) for i in range(args.steps)]) * 1e3, 3)
    if g.size == 1:
        plain = make_model()
        step, _ = run(plain, na.optim.Adam(plain.parameters(), lr=1e-3))
        out["plain_step_ms"] = round(statistics.median(step) * 1e3, 3)
    # ZeRO-1 against plain DistributedOptimizer (no DDP: the optimizer averages).
    for stage in (0, 1):
        model = make_model()
        timer = [0.0]
        opt = DistributedOptimizer(model=model, optimizer_type="adam", learning_rate=1e-3,
                                   zero_stage=stage, bucket_cap_mb=args.bucket_mb)
        timed_sync(opt._buckets, timer)
        step, sync = run(model, opt, timer)
        state = g.allgather_object(opt.state_bytes())
        out[f"zero{stage}"] = {"step_ms": round(statistics.median(step) * 1e3, 3),
                               "allreduce_ms": round(statistics.median(sync) * 1e3, 3),
                               "state_bytes_per_rank": state,
                               "state_mb_max": round(max(state) / 2 ** 20, 3)}
    if g.rank == 0:
        with open(args.worker_out, "w") as f:
            json.dump(out, f)


def _launch(n, args, tmp):
    path = os.path.join(tmp, f"n{n}.json")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    cmd = [args.mpirun, "-n", str(n), sys.executable, "-m", "benchmarks.ddp_scaling",
           "--worker-out", path, "--hidden", *map(str, args.hidden), "--batch",
           str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--bucket-mb", str(args.bucket_mb), "--inputs", str(args.inputs),
           "--classes", str(args.classes)]
    print(f"mpirun -n {n} ...", flush=True)
    subprocess.run(cmd, check=True, env=env, timeout=1200,
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(path) as f:
        return json.load(f)


def usable_cores():
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_procs(cores=None):
    """1, 2, 4, ... up to the usable cores (at least 1 and 2): one core per process."""
    cores = usable_cores() if cores is None else cores
    procs = [1, 2]
    while procs[-1] * 2 <= cores:
        procs.append(procs[-1] * 2)
    return procs


#: The defaults of the full run and of ``--quick`` (a smoke run for the report: a small
#: model and a few steps, numbers that only show the benchmark works). An option given
#: on the command line wins over both.
DEFAULTS = {"procs": default_procs(), "hidden": [1024, 1024], "batch": 64, "steps": 30,
            "warmup": 5}
QUICK_DEFAULTS = {"procs": [1, 2], "hidden": [128, 128], "batch": 32, "steps": 5,
                  "warmup": 2}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--procs", type=int, nargs="+",
                   help=f"process counts (default {DEFAULTS['procs']})")
    p.add_argument("--hidden", type=int, nargs="+",
                   help=f"hidden layer widths (default {DEFAULTS['hidden']}; "
                        f"{QUICK_DEFAULTS['hidden']} with --quick)")
    p.add_argument("--inputs", type=int, default=784)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch", type=int,
                   help=f"examples per process and step (default {DEFAULTS['batch']}; "
                        f"{QUICK_DEFAULTS['batch']} with --quick)")
    p.add_argument("--steps", type=int, help=f"timed steps (default {DEFAULTS['steps']}; "
                                             f"{QUICK_DEFAULTS['steps']} with --quick)")
    p.add_argument("--warmup", type=int, help=f"untimed steps first (default "
                                              f"{DEFAULTS['warmup']}; "
                                              f"{QUICK_DEFAULTS['warmup']} with --quick)")
    p.add_argument("--bucket-mb", type=float, default=25.0)
    p.add_argument("--quick", action="store_true",
                   help="a small model and a few steps: a smoke test, not a result")
    p.add_argument("--mpirun", default=shutil.which("mpirun"))
    p.add_argument("--out", default="benchmarks/results/ddp_scaling.json")
    p.add_argument("--note", default=None, help="a remark stored in the JSON (the machine's "
                   "load, ...)")
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for key, value in (QUICK_DEFAULTS if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.procs) < 1 or args.steps < 1 or args.warmup < 0 or args.batch < 1:
        p.error("--procs and --batch must be at least 1, --steps at least 1, --warmup at "
                "least 0")
    if args.worker_out:
        return _worker(args)
    if args.mpirun is None:
        sys.exit("ddp_scaling: mpirun not found (install Open MPI, e.g. apt-get install "
                 "openmpi-bin libopenmpi-dev, and pip install mpi4py)")
    started = _common.now()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.procs:
            runs.append(_launch(n, args, tmp))
    base = next((r for r in runs if r["processes"] == 1), None)
    for r in runs:
        if base is not None:
            r["speedup"] = round(r["examples_per_s"] / base["examples_per_s"], 3)
            r["efficiency"] = round(r["speedup"] / r["processes"], 3)
        z0, z1 = r["zero0"]["state_mb_max"], r["zero1"]["state_mb_max"]
        r["zero1_state_saving"] = round(1 - z1 / z0, 4) if z0 else 0.0
    import mpi4py
    from mpi4py import MPI
    config = {k: getattr(args, k) for k in ("procs", "hidden", "inputs", "classes", "batch",
                                            "steps", "warmup", "bucket_mb", "quick")}
    config["model"] = "MLP " + "-".join(map(str, [args.inputs, *args.hidden, args.classes]))
    config["optimizer"] = "Adam (DDP); DistributedOptimizer adam for zero0/zero1"
    extra = {} if args.note is None else {"note": args.note}
    _common.write_report(args.out, "ddp_scaling", config, runs, started=started, **extra,
                         mpi={"mpi4py": mpi4py.__version__,
                              "library": MPI.Get_library_version().splitlines()[0].strip()})
    header = ["processes", "step ms", "all-reduce ms", "share", "all-reduce alone ms",
              "examples/s", "speedup", "ZeRO-0 state MiB/rank", "ZeRO-1 state MiB/rank"]
    rows = [[r["processes"], r["step_ms"], r["allreduce_ms"], f"{r['allreduce_share']:.1%}",
             r["allreduce_alone_ms"],
             r["examples_per_s"], r.get("speedup", "-"), r["zero0"]["state_mb_max"],
             r["zero1"]["state_mb_max"]] for r in runs]
    print(_common.markdown_table(header, rows))


if __name__ == "__main__":
    main()
