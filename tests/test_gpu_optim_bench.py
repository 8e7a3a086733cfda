"""benchmarks/gpu_optim.py without a GPU: its GPU code paths on stand-ins, and the no-GPU run.

The CuPy rows run on the strict CPU stand-in for CuPy (device ``'fake'``) and the
PyTorch CUDA rows on torch's CPU, at tiny sizes, through the benchmark's own
``run`` (its test-only ``cupy=``/``torch=`` parameters). Speed is never asserted:
the tests check that every row is built, warmed up, checked against the CPU
reference, timed with a synchronize, and reported with its ratios and targets, and
that a machine without a GPU gets a valid JSON whose GPU rows say why they are empty.
"""
from __future__ import annotations

import importlib
import json
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = {"tiny": (3, (4, 5))}


@pytest.fixture(scope="module")
def bench():
    """``benchmarks.gpu_optim``, imported without leaving its thread pins in this process.

    Importing the benchmarks sets the BLAS/OpenMP thread variables to 1, and its torch
    helper sets torch's thread count to 1; both are put back afterwards.
    """
    saved = dict(os.environ)
    try:
        import torch
        threads = torch.get_num_threads()
    except ImportError:
        torch = threads = None
    sys.path.insert(0, str(ROOT))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            module = importlib.import_module("benchmarks.gpu_optim")
    finally:
        sys.path.remove(str(ROOT))
        os.environ.clear()
        os.environ.update(saved)
    yield module
    if torch is not None:
        torch.set_num_threads(threads)


@pytest.fixture
def stand_ins(bench):
    """``(cupy, torch, syncs)``: Targets on the fake device and torch's CPU, counting syncs."""
    pytest.importorskip("torch")
    from tests import fake_cupy
    fake_cupy.register()
    syncs = {"fake": 0, "torch": 0}

    def counter(key):
        def sync():
            syncs[key] += 1
        return sync

    cupy = bench.Target("fake", counter("fake"), xp=fake_cupy.fakecupy)
    torch, why = bench.torch_target("cpu")
    assert why is None
    torch.sync = counter("torch")
    return cupy, torch, syncs


# ---- the GPU rows on stand-ins ----------------------------------------------------------------

def test_every_gpu_row_runs_on_the_stand_ins(bench, stand_ins):
    cupy, torch, syncs = stand_ins
    results, timing, gpu = bench.run(TINY, bench.IMPLEMENTATIONS, repeat=1, min_time=0,
                                     cupy=cupy, torch=torch)
    assert list(results) == ["tiny/adam", "tiny/sgd"]
    assert gpu["cupy"] == "stand-in device 'fake'"
    for key, rows in results.items():
        assert list(rows) == list(bench.IMPLEMENTATIONS)
        assert timing[key].startswith("round-robin")
        for impl, r in rows.items():
            assert "skipped" not in r, (key, impl, r)
            assert r["ms"] > 0
            np.testing.assert_allclose(r["vs_neural_arch_cpu"],
                                       r["ms"] / rows["neural_arch_cpu"]["ms"])
            np.testing.assert_allclose(r["vs_torch_cuda_fused"],
                                       r["ms"] / rows["torch_cuda_fused"]["ms"])
        assert rows["torch_cuda_fused"]["vs_torch_cuda_fused"] == 1.0
    # Warm-up/check steps and timed calls each end with the device's synchronize.
    assert syncs["fake"] >= 2 * bench.CHECK_STEPS and syncs["torch"] >= 4 * bench.CHECK_STEPS
    met = bench.targets(results)
    assert [(t["case"], t["baseline"]) for t in met] == [
        ("tiny/adam", "torch_cuda_fused"), ("tiny/adam", "neural_arch_cpu")]
    for t in met:
        assert t["ratio"] > 0 and t["speedup"] == pytest.approx(1 / t["ratio"])
        assert isinstance(t["met"], bool)


def test_neural_arch_rows_hold_their_arrays_on_the_device(bench, stand_ins):
    cupy, _, _ = stand_ins
    from tests import fake_cupy
    rng = np.random.default_rng(0)
    params0 = [rng.standard_normal((2, 3), np.float32) for _ in range(2)]
    grads0 = [rng.standard_normal((2, 3), np.float32) for _ in range(2)]
    for impl in ("cupy_contiguous", "cupy_xp", "cupy_fused"):
        step, read = bench.build(impl, "adam", params0, grads0, cupy, None)
        step()
        assert all(type(a) is fake_cupy.FakeArray for a in read()), impl
        moved = bench.to_host(read()[0])
        assert isinstance(moved, np.ndarray) and not np.array_equal(moved, params0[0])
    assert not np.shares_memory(params0[0], read()[0]._a)     # the host copy stays put


def test_a_row_that_computes_something_else_is_caught(bench, stand_ins, monkeypatch):
    cupy, torch, _ = stand_ins
    monkeypatch.setitem(bench.TORCH_FLAGS, "torch_cuda_fused",
                        dict(fused=True, weight_decay=0.5))
    with pytest.raises(AssertionError, match="torch_cuda_fused adam: parameter 0 .* differs"):
        bench.run(TINY, ("neural_arch_cpu", "torch_cuda_fused"), repeat=1, min_time=0,
                  cupy=cupy, torch=torch)


def test_rows_that_do_not_fit_together_are_timed_one_by_one(bench):
    impls = bench.IMPLEMENTATIONS
    n = 10 ** 6
    need = sum(bench.device_bytes(i, "adam", n) for i in impls)
    assert need == (4 * 5 + 2) * n * 4           # five GPU rows, contiguous two more arrays
    assert bench.device_bytes("neural_arch_cpu", "adam", n) == 0
    assert bench.timing_groups(impls, "adam", n, None) == [list(impls)]
    assert bench.timing_groups(impls, "adam", n, 2 * need) == [list(impls)]
    groups = bench.timing_groups(impls, "adam", n, need)
    assert groups == [[i] for i in impls[1:]] + [["neural_arch_cpu"]]


def test_targets_say_whether_they_are_met(bench):
    rows = {"neural_arch_cpu": {"ms": 50.0},
            "cupy_fused": {"ms": 2.0, "vs_torch_cuda_fused": 1.25, "vs_neural_arch_cpu": 0.04},
            "torch_cuda_fused": {"ms": 1.6}}
    slower = dict(rows, cupy_fused={"ms": 4.0, "vs_torch_cuda_fused": 2.5,
                                    "vs_neural_arch_cpu": 0.08})
    met = bench.targets({"10M/100/adam": rows, "10M/100/sgd": rows, "1M/100/adam": slower})
    assert [(t["case"], t["baseline"], t["met"]) for t in met] == [
        ("10M/100/adam", "torch_cuda_fused", True), ("10M/100/adam", "neural_arch_cpu", True),
        ("1M/100/adam", "torch_cuda_fused", False), ("1M/100/adam", "neural_arch_cpu", False)]
    assert met[1]["speedup"] == pytest.approx(25.0) and met[3]["speedup"] == pytest.approx(12.5)
    skipped = {"neural_arch_cpu": {"ms": 50.0}, "cupy_fused": {"skipped": "no GPU: x"}}
    [a, b] = bench.targets({"1M/100/adam": skipped})
    assert a["met"] is None and a["ratio"] is None and a["why"] == "no GPU: x"


# ---- no GPU: the CPU row is measured, the GPU rows say why not -----------------------------

def test_without_a_gpu_the_json_names_the_reasons(bench, tmp_path):
    cupy, why_cupy = bench.cupy_target()
    torch, why_torch = bench.torch_target()
    if cupy is not None or torch is not None:
        pytest.skip("this machine has a GPU: its rows are measured")
    out = tmp_path / "gpu_optim.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_optim", "--quick",
                           "--workloads", "1M/100", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["benchmark"] == "gpu_optim" and data["machine"]["cpu_count"] >= 1
    assert data["config"]["quick"] is True
    assert list(data["results"]) == ["1M/100/adam", "1M/100/sgd"]
    assert why_cupy.startswith("no GPU: ")
    for rows in data["results"].values():
        assert rows["neural_arch_cpu"]["ms"] > 0
        for impl in bench.CUPY_IMPLEMENTATIONS:
            assert rows[impl] == {"skipped": why_cupy}
        for impl in bench.TORCH_IMPLEMENTATIONS:
            assert rows[impl] == {"skipped": why_torch}
    assert len(data["targets"]) == 2
    assert all(t["met"] is None and t["why"] == why_cupy for t in data["targets"])
    assert "skipped: " + why_cupy in proc.stdout
