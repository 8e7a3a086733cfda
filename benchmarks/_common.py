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
