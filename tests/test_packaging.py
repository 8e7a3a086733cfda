"""Packaging, README, CI script, docs and benchmark: what a new user and CI rely on."""
from __future__ import annotations

import configparser
import importlib
import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import neural_arch as na

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"


def _setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    return cfg


def _lines(value):
    return [s.strip() for s in value.strip().splitlines() if s.strip()]


# ---- setup.cfg / pyproject.toml --------------------------------------------------------

def test_metadata_names_the_package_and_reads_the_version_from_it():
    cfg = _setup_cfg()
    assert cfg["metadata"]["name"] == "neural_arch"
    attr = cfg["metadata"]["version"]
    assert attr.replace(" ", "") == "attr:neural_arch.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", na.__version__)
    assert cfg["options"]["python_requires"].replace(" ", "") == ">=3.10"


def test_runtime_requirements_and_extras():
    cfg = _setup_cfg()
    assert set(_lines(cfg["options"]["install_requires"])) == {
        "numpy", "PyYAML", "matplotlib", "tqdm"}
    extras = {k: _lines(v) for k, v in cfg["options.extras_require"].items()}
    assert set(extras) == {"test", "docs", "gpu", "dist", "tutorials"}
    # torch pinned exactly as the local CPU wheel is named; pytorch-optimizer is NOT an
    # extra (it goes in afterwards with --no-deps, so it cannot replace that torch).
    assert "torch==2.13.0" in extras["test"]
    assert {"pytest", "hypothesis", "scipy"} <= set(extras["test"])
    assert not any("optimizer" in r for r in extras["test"])
    assert any(r.startswith("sphinx") for r in extras["docs"])
    assert extras["gpu"] == ["cupy-cuda12x"]
    assert extras["dist"] == ["mpi4py"]
    assert {"jupyter", "nbclient", "ipykernel", "matplotlib"} <= set(extras["tutorials"])


def test_packages_found_are_neural_arch_only():
    cfg = _setup_cfg()
    assert cfg["options"]["packages"].strip() == "find:"
    include = _lines(cfg["options.packages.find"]["include"])
    assert include == ["neural_arch", "neural_arch.*"]


def test_console_scripts_point_at_existing_functions():
    cfg = _setup_cfg()
    scripts = _lines(cfg["options.entry_points"]["console_scripts"]) \
        if cfg.has_section("options.entry_points") \
        and "console_scripts" in cfg["options.entry_points"] else []
    for script in scripts:
        _, target = (s.strip() for s in script.split("="))
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), script
    assert "neural-arch=neural_arch.cli:main" in [s.replace(" ", "") for s in scripts]


def test_pyproject_names_the_setuptools_backend():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        assert 'build-backend = "setuptools.build_meta"' in text
        return
    build = tomllib.loads(text)["build-system"]
    assert build["build-backend"] == "setuptools.build_meta"
    assert any(r.startswith("setuptools") for r in build["requires"])


# ---- README ------------------------------------------------------------------------------

def _readme_blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_python_examples_run(capsys):
    blocks = _readme_blocks("python")
    assert len(blocks) >= 3
    ns = {"__name__": "readme"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md python block {i}", "exec"), ns)
    out = capsys.readouterr().out
    assert "w = 2.000, b = -1.000" in out    # the first example really fits the line
    assert na.autograd.get_grad_clip() == 1e6  # the clamp example restores the default


def test_readme_test_command_is_what_ci_runs():
    command = [b for b in _readme_blocks("bash") if "pytest" in b]
    assert len(command) == 1, "README should give exactly one test command"
    steps = [s.strip() for s in command[0].strip().split("&&")]
    assert steps[0].startswith("python3 -m venv") and "activate" in steps[1]
    ci = CI.read_text(encoding="utf-8")
    for step in steps[2:]:
        if step.startswith("pip "):
            assert f"python -m {step}\n" in ci, f"CI does not run README's step {step!r}"
        else:
            assert f"{step} " in ci or f"{step}\n" in ci, f"CI does not run {step!r}"
    assert "pip install -e '.[test]'" in steps
    assert "pip install --no-deps pytorch-optimizer" in steps
    assert steps.index("pip install -e '.[test]'") < steps.index(
        "pip install --no-deps pytorch-optimizer")
    assert steps[-1].startswith("python -m pytest")


def test_readme_performance_table_matches_the_committed_results():
    from benchmarks import op_overhead
    report = json.loads((ROOT / "benchmarks" / "results" / "op_overhead.json").read_text())
    table = op_overhead.markdown_table(report["results"])
    text = README.read_text(encoding="utf-8")
    begin, end = op_overhead.README_BEGIN, op_overhead.README_END
    shown = text[text.index(begin) + len(begin):text.index(end)].strip()
    assert shown == table, ("README's table differs from benchmarks/results/op_overhead.json;"
                            " re-run the benchmark with --update-readme README.md")
    assert {"numpy", "neural_arch", "torch"} <= set(report["results"])


# ---- .ci/run -----------------------------------------------------------------------------

def test_ci_script_is_strict_bash_and_executable():
    text = CI.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert CI.stat().st_mode & stat.S_IXUSR
    subprocess.run(["bash", "-n", str(CI)], check=True)


def test_ci_script_builds_the_docs_with_warnings_as_errors_before_the_tests():
    text = CI.read_text(encoding="utf-8")
    activate = text.index('. "$WORK/venv/bin/activate"')
    install = text.index("python -m pip install -e '.[docs]'\n")
    build = text.index('sphinx-build -W -b html docs "$WORK/')
    assert activate < install < build < text.index('echo "== running the tests"')
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    assert any(r.startswith("sphinx") for r in _lines(cfg["options.extras_require"]["docs"]))


@pytest.mark.parametrize("sphinx_status", [0, 2])
def test_ci_script_fails_when_the_docs_build_fails(tmp_path, sphinx_status):
    # Run the script's docs steps with stand-ins for pip and sphinx-build.
    text = CI.read_text(encoding="utf-8")
    step = text[text.index('echo "== installing the docs extra"'):
                text.index('echo "== running the tests"')]
    for name, status in (("python", 0), ("sphinx-build", sphinx_status)):
        fake = tmp_path / name
        fake.write_text(f"#!/bin/sh\nexit {status}\n")
        fake.chmod(0o755)
    script = f"set -euo pipefail\nWORK={tmp_path}\n" + step + "echo reached-the-tests\n"
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert r.returncode == sphinx_status
    assert ("reached-the-tests" in r.stdout) == (sphinx_status == 0)


@pytest.mark.parametrize("pytest_status, expected", [(0, 0), (1, 1), (2, 2), (5, 1)])
def test_ci_script_passes_pytest_failures_on_and_fails_when_no_test_ran(
        tmp_path, pytest_status, expected):
    # Run the script's test step with a stand-in `python` that exits like pytest would.
    text = CI.read_text(encoding="utf-8")
    step = text[text.index('echo "== running the tests"'):]
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nexit {pytest_status}\n")
    fake.chmod(0o755)
    script = "set -euo pipefail\n" + step
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert r.returncode == expected
    if pytest_status == 5:
        assert "no tests" in r.stderr


# ---- benchmark -----------------------------------------------------------------------------

def test_op_overhead_benchmark_writes_its_report(tmp_path):
    libs = "numpy,neural_arch" + (",torch" if importlib.util.find_spec("torch") else "")
    out = tmp_path / "oo.json"
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.op_overhead", "--ops", "7", "--repeat", "1",
         "--min-time", "0", "--libs", libs, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["config"]["n_ops"] == 7 and report["config"]["n_elements"] == 16
    assert set(report["results"]) == set(libs.split(","))
    na_res = report["results"]["neural_arch"]
    assert na_res["fwd_bwd_us_per_op"] > 0 and na_res["fwd_no_grad_us_per_op"] > 0
    assert na_res["fwd_bwd_vs_numpy"] == pytest.approx(
        na_res["fwd_bwd_us_per_op"] / report["results"]["numpy"]["fwd_bwd_us_per_op"])
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["cpu_model"]
    assert report["versions"]["neural_arch"] == na.__version__
    assert "| neural_arch |" in r.stdout


def test_hand_written_numpy_backward_matches_neural_arch():
    # The benchmark's hand-derived gradients are the yardstick; check them in float64.
    import numpy as np
    from benchmarks.op_overhead import chain, numpy_forward_backward
    rng = np.random.default_rng(1)
    x0, w0 = rng.uniform(-1, 1, 5), rng.uniform(0.5, 1, 5)
    y, gx, gw = numpy_forward_backward(x0, w0, 11)
    x, w = na.tensor(x0, requires_grad=True), na.tensor(w0, requires_grad=True)
    out = chain(x, w, na.tanh, 11)
    out.backward(na.tensor(np.ones(5)))
    np.testing.assert_allclose(out.numpy(), y, rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), gx, rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), gw, rtol=1e-12)
