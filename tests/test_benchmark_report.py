"""The benchmark report: ``python -m benchmarks.report --quick`` end to end, and its parts.

Speed is never asserted here (the machine is shared): the end-to-end run checks that
the report and its plots are written, that it names the machine, that every benchmark
module appears (run, or listed with what it lacks), and that the GPU columns say why
they are empty. The smaller tests check the pieces whose output is exact: finding the
benchmark modules, the hand-written references the sweeps are checked against, the
tables' GPU cells, and a failing or hanging benchmark reported instead of raised.
"""
from __future__ import annotations

import importlib
import json
import os
import pathlib
import platform
import subprocess
import sys
import warnings

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report():
    """``benchmarks.report``, imported without leaving its thread pins in this process.

    Importing the benchmarks sets the BLAS/OpenMP thread variables to 1 (and warns
    that NumPy came first); the environment is put back afterwards.
    """
    saved = dict(os.environ)
    sys.path.insert(0, str(ROOT))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            module = importlib.import_module("benchmarks.report")
    finally:
        sys.path.remove(str(ROOT))
        os.environ.clear()
        os.environ.update(saved)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, report):
    """One ``--quick`` run of the whole report into a temporary folder."""
    out = tmp_path_factory.mktemp("report")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.report", "--quick",
                           "--out-dir", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, (out / "REPORT.md").read_text(encoding="utf-8")


# ---- end to end --------------------------------------------------------------------------

def test_quick_report_writes_page_plots_and_data(quick_run):
    out, text = quick_run
    assert text.startswith("# neural_arch benchmark report\n")
    for png in ("op_time_vs_size.png", "optim_step_vs_params.png"):
        data = (out / png).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, png
        assert f"]({png})" in text, f"REPORT.md does not show {png}"
    raw = json.loads((out / "report_data.json").read_text())
    assert raw["quick"] is True
    assert raw["sweeps"]["ops"]["config"]["sizes"][0] == 16
    for sweep in raw["sweeps"].values():
        n = len(sweep["config"]["sizes"])
        assert n >= 2
        rows = (sweep["results"].values() if sweep["sweep"] == "ops"
                else sweep["results"]["adam"].values())
        for series in rows:
            values = list(series.values()) if isinstance(series, dict) else [series]
            for v in values:
                assert len(v) == n and all(t is not None and t > 0 for t in v)


def test_quick_report_names_the_machine(quick_run, report):
    _, text = quick_run
    machine = text.split("## Machine", 1)[1].split("\n## ", 1)[0]
    info = report.machine_info()
    assert info["cpu_model"] in machine
    assert f"Python | {platform.python_version()}" in machine
    assert f"NumPy | {np.__version__}" in machine
    torch = pytest.importorskip("torch")
    assert f"PyTorch | {torch.__version__}" in machine
    assert "| date | 20" in machine
    assert "| mode | quick" in machine


def test_quick_report_has_every_section(quick_run, report):
    _, text = quick_run
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == ["## Machine", "## Runs", "## Per-op time vs tensor size",
                        "## Optimizer step time vs parameter count", "## Benchmarks"]
    runs = text.split("## Runs", 1)[1].split("\n## ", 1)[0]
    assert "| ops sweep (report.py) | ok |" in runs
    assert "| optim sweep (report.py) | ok |" in runs
    modules = report.discover()
    assert "optim_step" in modules and "op_overhead" in modules
    for name, lacks in modules.items():
        if lacks:
            assert f"### {name} (not run)" in text
            assert f"| {name} | not run: lacks {', '.join(lacks)} |" in runs
        else:
            assert f"### {name}\n" in text
            assert f"| {name} | ok |" in runs, f"{name} did not run cleanly in quick mode"
    per_op = text.split("## Per-op time vs tensor size", 1)[1].split("\n## ", 1)[0]
    assert "| 16 |" in per_op and "× NumPy by hand" in per_op and "× PyTorch CPU" in per_op
    assert "× CuPy by hand" in per_op and "× PyTorch CUDA" in per_op


def test_quick_report_says_why_gpu_columns_are_empty(quick_run, report):
    _, text = quick_run
    if report.gpu_info()["present"]:
        pytest.skip("this machine has a GPU: its columns hold numbers")
    per_op = text.split("## Per-op time vs tensor size", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in per_op.splitlines() if line.startswith("| 16 |"))
    assert row.count(report.NO_GPU) == 3          # neural_arch on CuPy, × CuPy, × CUDA


# ---- finding the benchmarks --------------------------------------------------------------

def test_discover_asks_each_module_for_its_options(tmp_path, report):
    pkg = tmp_path / "fakebench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    parser = "import argparse\np = argparse.ArgumentParser(description='uses --quick')\n"
    (pkg / "good.py").write_text(
        parser + "p.add_argument('--quick', action='store_true')\np.add_argument('--out')\n"
        "p.parse_args()\n")
    (pkg / "shared.py").write_text(               # options added by a helper elsewhere
        "from ._helpers import parser\nparser().parse_args()\n")
    (pkg / "_helpers.py").write_text(
        "import argparse\ndef parser():\n    p = argparse.ArgumentParser()\n"
        "    p.add_argument('--quick', action='store_true')\n"
        "    p.add_argument('--out')\n    return p\n")
    (pkg / "no_quick.py").write_text(           # the description's '--quick' does not count
        parser + "p.add_argument('--out')\np.add_argument('--quickly')\np.parse_args()\n")
    (pkg / "no_parser.py").write_text("print('run me with --quick --out x.json')\n")
    (pkg / "broken.py").write_text("raise ImportError('nope')\n")
    (pkg / "report.py").write_text("raise SystemExit(1)\n")
    (pkg / "needs_tools.py").write_text(          # declared needs, read without importing
        "REQUIRED_PROGRAMS = ('python-no-such-program-here', 'sh')\n"
        "REQUIRED_MODULES = ('json', 'no_such_module_for_the_report')\n" + parser
        + "p.add_argument('--quick', action='store_true')\np.add_argument('--out')\n"
        "p.parse_args()\n")
    (pkg / "needs_nothing_here.py").write_text(
        "REQUIRED_PROGRAMS = ('sh',)\n" + parser
        + "p.add_argument('--quick', action='store_true')\np.add_argument('--out')\n"
        "p.parse_args()\n")
    assert report.discover(pkg) == {
        "broken": ["a working --help (exit status 1)"], "good": [],
        "needs_nothing_here": [],
        "needs_tools": ["python-no-such-program-here", "no_such_module_for_the_report"],
        "no_parser": ["--quick", "--out"], "no_quick": ["--quick"], "shared": []}


def test_the_package_benchmarks_are_found(report):
    found = report.discover()
    assert "report" not in found and not any(n.startswith("_") for n in found)
    assert found["optim_step"] == []                  # follows the contract
    assert found["gpu_optim"] == []                   # runs without a GPU too
    import importlib.util
    import shutil
    expected = ([] if shutil.which("mpirun") else ["mpirun"]) + \
        ([] if importlib.util.find_spec("mpi4py") else ["mpi4py"])
    assert found["ddp_scaling"] == expected


def test_ddp_scaling_goes_up_to_the_usable_cores(report):
    from benchmarks import ddp_scaling        # after report: the thread pins are undone
    assert ddp_scaling.default_procs(1) == [1, 2]
    assert ddp_scaling.default_procs(2) == [1, 2]
    assert ddp_scaling.default_procs(6) == [1, 2, 4]
    assert ddp_scaling.default_procs(16) == [1, 2, 4, 8, 16]
    assert ddp_scaling.QUICK_DEFAULTS["procs"] == [1, 2]


def test_a_missing_program_is_named_in_the_not_run_section(report):
    text = report.not_run_section({"ddp_scaling": ["mpirun"]}, gpu_present=False)
    assert text.startswith("### ddp_scaling (not run)")
    assert ("This machine lacks `mpirun`, which `benchmarks/ddp_scaling.py` needs, so the "
            "report cannot run it") in text


# ---- running them ------------------------------------------------------------------------

def test_a_failing_benchmark_is_reported_with_its_output(tmp_path, report):
    out = tmp_path / "x.json"
    r = report.run_module(["benchmarks.report", "--sweep", "ops"], out, tmp_path / "log", 60)
    assert r["status"] == "failed (exit status 2)"
    assert "--sweep needs --out" in r["log_tail"]
    assert "data" not in r


def test_a_hanging_benchmark_is_stopped_at_its_timeout(tmp_path, report):
    r = report.run_module(["timeit", "-n", "1", "import time; time.sleep(30)"],
                          tmp_path / "x.json", tmp_path / "log", 1)
    assert r["status"].startswith("timeout") and r["seconds"] < 20


def test_a_benchmark_that_writes_no_json_is_reported(tmp_path, report):
    r = report.run_module(["timeit", "-n", "1", "pass"], tmp_path / "x.json",
                          tmp_path / "log", 60)
    assert r["status"].startswith("no output")


def test_subprocesses_run_on_one_thread(report):
    env = report.subprocess_env()
    for name in report.THREAD_VARIABLES:
        assert env[name] == "1"
    assert str(ROOT) in env["PYTHONPATH"].split(os.pathsep)


# ---- the references the sweeps check against ---------------------------------------------

@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_hand_step_follows_torch(kind, report):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    params = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    grads = [rng.standard_normal(p.shape) for p in params]
    tp = [torch.nn.Parameter(torch.tensor(p)) for p in params]
    for p, g in zip(tp, grads):
        p.grad = torch.tensor(g)
    cls = torch.optim.Adam if kind == "adam" else torch.optim.SGD
    opt = cls(tp, **report.HYPER[kind])
    mine = [p.copy() for p in params]
    step = report.make_numpy(kind, mine, grads)
    for _ in range(4):
        step()
        opt.step()
    for a, b, start in zip(mine, tp, params):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-12, atol=1e-14)
        assert np.abs(a - start).max() > 1e-4            # the steps did move them


def test_optim_runners_agree_with_the_hand_step(report):
    rng = np.random.default_rng(3)
    params0 = [rng.standard_normal(6, np.float32) for _ in range(3)]
    grads0 = [rng.standard_normal(6, np.float32) for _ in range(3)]
    ref = [p.copy() for p in params0]
    ref_step = report.make_numpy("adam", ref, grads0)
    for _ in range(3):
        ref_step()
    for impl in ("numpy", "neural_arch", "neural_arch_contiguous", "torch"):
        step, read = report.optim_runner(impl, "adam", params0, grads0)
        for _ in range(3):
            step()
        for a, b in zip(read(), ref):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=impl)


# ---- tables ------------------------------------------------------------------------------

def nested_results(with_gpu):
    rows = {"numpy": {"ms": 2.0, "vs_numpy": 1.0, "vs_torch": 0.5},
            "neural_arch": {"ms": 3.0, "vs_numpy": 1.5, "vs_torch": 0.75}}
    if with_gpu:
        rows["neural_arch"].update(vs_cupy=4.0, vs_torch_cuda=8.0)
    return {"results": {"case A": rows}}


def table_row(table, first_cell):
    line = next(r for r in table.splitlines() if r.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_benchmark_table_gpu_cells(report):
    labels = {"neural_arch": "neural_arch (mine)"}
    [table] = report.benchmark_tables(nested_results(False), labels, gpu_present=False)
    assert table.splitlines()[0] == ("| case A | ms | × numpy | × torch | × CuPy "
                                     "| × PyTorch CUDA |")
    assert table_row(table, "neural_arch (mine)") == [
        "neural_arch (mine)", "3.00", "1.50", "0.75", report.NO_GPU, report.NO_GPU]
    [table] = report.benchmark_tables(nested_results(False), labels, gpu_present=True)
    assert table_row(table, "numpy")[-2:] == [report.NOT_MEASURED, report.NOT_MEASURED]
    [table] = report.benchmark_tables(nested_results(True), labels, gpu_present=True)
    assert table_row(table, "neural_arch (mine)")[-2:] == ["4.00", "8.00"]


def test_skipped_rows_show_their_reason(report):
    rows = {"neural_arch_cpu": {"ms": 2.0, "vs_neural_arch_cpu": 1.0},
            "cupy_fused": {"skipped": "no GPU: CuPy is not installed"}}
    labels = {"cupy_fused": "CuPy fused", "neural_arch_cpu": "CPU"}
    [table] = report.benchmark_tables({"results": {"case A": rows}}, labels, False)
    assert table.splitlines()[0] == "| case A | ms | × CPU | × CuPy | × PyTorch CUDA |"
    assert table_row(table, "CuPy fused") == [
        "CuPy fused", "skipped: no GPU: CuPy is not installed", "-", report.NO_GPU,
        report.NO_GPU]
    assert table_row(table, "CPU") == ["CPU", "2.00", "1.00", report.NO_GPU, report.NO_GPU]
    [table] = report.benchmark_tables(                 # every row skipped: still a column
        {"results": {"case B": {"cupy_fused": {"skipped": "why"}}}}, labels, True)
    assert table_row(table, "CuPy fused") == ["CuPy fused", "skipped: why",
                                              report.NOT_MEASURED, report.NOT_MEASURED]


def test_benchmark_tables_other_layouts(report):
    [table] = report.benchmark_tables(
        {"results": [{"processes": 1, "step_ms": 2.5, "zero0": {"x": 1}},
                     {"processes": 2, "step_ms": 3.25}]}, {}, False)
    assert table.splitlines()[0] == "| processes | step_ms |"
    assert table_row(table, "2") == ["2", "3.25"]
    [text] = report.benchmark_tables({"results": {"a": 1}}, {}, False)
    assert text.startswith("```json") and '"a": 1' in text
    out = report.benchmark_tables(
        {"results": {"c": {"x": {"ms": 1.0}}},
         "targets": [{"case": "c", "ratio": 0.5, "met": True}]}, {}, False)
    assert len(out) == 2 and "| c | 0.5 | True |" in out[1]


def test_fmt(report):
    assert [report.fmt(v) for v in (None, 3, 0.0, 1234.567, 0.5, 0.02345, 1.5e-5, 2.5e6)] \
        == ["-", "3", "0", "1234.57", "0.5", "0.0234", "1.5e-05", "2.500e+06"]


def test_sweep_table_ratios(report):
    rows = {"neural_arch": [2.0, 30.0], "numpy": [1.0, 20.0], "torch": [4.0, 60.0]}
    table = report.sweep_table([16, 1024], "elements", rows, "µs/op", False,
                               ["neural_arch"], "neural_arch_cuda", "numpy", "torch",
                               ["cupy", "torch_cuda"])
    assert table_row(table, "1,024") == ["1,024", "30.00", "1.50", "0.5", report.NO_GPU,
                                         report.NO_GPU, report.NO_GPU]
    rows.update(neural_arch_cuda=[5.0, 5.0], cupy=[2.5, 2.5], torch_cuda=[10.0, 1.0])
    table = report.sweep_table([16, 1024], "elements", rows, "µs/op", True,
                               ["neural_arch"], "neural_arch_cuda", "numpy", "torch",
                               ["cupy", "torch_cuda"])
    assert table_row(table, "16")[-3:] == ["5.00", "2.00", "0.5"]


def test_not_run_modules_show_their_committed_result(report):
    text = report.not_run_section({"op_overhead": ["--quick"]}, gpu_present=False)
    assert "### op_overhead (not run)" in text and "lacks `--quick`" in text
    committed = ROOT / "benchmarks" / "results" / "op_overhead.json"
    if not committed.is_file():
        assert "committed result" not in text
        return
    data = json.loads(committed.read_text())
    assert "committed result `op_overhead.json`" in text
    assert data["machine"]["cpu_model"] in text
    row = table_row(text, "neural_arch")
    assert row[1] == report.fmt(data["results"]["neural_arch"]["fwd_bwd_us_per_op"])
    assert row[-2:] == [report.NO_GPU, report.NO_GPU]


# ---- the GPU cases, on the strict CPU stand-in for CuPy ----------------------------------

@pytest.fixture
def fake_device(report):
    from tests import fake_cupy
    fake_cupy.register()
    return report.Device(fake_cupy.fakecupy, "fake", lambda: None)


def test_op_sweep_gpu_cases_on_fake_cupy(report, fake_device):
    libs = ("numpy", "cupy", "neural_arch_cuda")
    results, skipped = report.sweep_ops([16, 100], libs, 7, repeat=1, min_time=0,
                                        device=fake_device)
    assert skipped == {} and list(results) == list(libs)
    for r in results.values():
        for mode in ("fwd_bwd_us_per_op", "fwd_no_grad_us_per_op"):
            assert len(r[mode]) == 2 and all(t > 0 for t in r[mode])


def test_optim_sweep_gpu_cases_on_fake_cupy(report, fake_device):
    impls = ("numpy", "cupy", "neural_arch_cuda")
    results, skipped = report.sweep_optim([40], impls, repeat=1, min_time=0,
                                          device=fake_device)
    assert skipped == {}
    for kind in ("adam", "sgd"):
        assert list(results[kind]) == list(impls)
        assert all(len(v) == 1 and v[0] > 0 for v in results[kind].values())
