"""The tutorial notebooks: each one runs from top to bottom, and the repository holds
them without outputs.

Every notebook is executed by nbclient in a fresh kernel that runs the Python running
the tests (not whatever ``python`` a global kernel spec names), with this checkout on
the path, one BLAS thread (the notebooks are small; several threads fighting over a
busy CPU only slow them down) and a scratch working directory. A cell that raises fails
the test with the cell's traceback; so does a warning issued from neural_arch's code,
since a notebook that teaches should run clean.
"""
from __future__ import annotations

import json
import os
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
#: The notebooks the docs issue asks for, by number.
EXPECTED = {
    "01": "tensors and autograd",
    "02": "an MLP on the digits",
    "03": "writing your own optimizer",
    "04": "optimizers compared on Rosenbrock",
    "05": "schedules and warmup",
    "06": "losses for segmentation",
    "07": "gradient-free search",
    "08": "NumPy vs CuPy",
}
KERNEL = "neural-arch-tests"
CELL_TIMEOUT = 300           # seconds; each notebook takes seconds, this only stops a hang


def _ids(paths):
    return [p.stem for p in paths]


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernel spec for this interpreter, found through ``JUPYTER_PATH``."""
    share = tmp_path_factory.mktemp("jupyter")
    spec_dir = share / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "neural_arch tests",
        "language": "python",
        "env": {"PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", os.pathsep.join(
            filter(None, [str(share), os.environ.get("JUPYTER_PATH")])))
        yield KERNEL


def test_every_notebook_of_the_issue_is_there():
    numbers = {p.name[:2] for p in NOTEBOOKS}
    missing = {n: what for n, what in EXPECTED.items() if n not in numbers}
    assert not missing, f"tutorial notebooks missing: {missing}"
    assert len(numbers) == len(NOTEBOOKS), "two notebooks share a number"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} carry outputs or execution counts; "
                       f"clear them before committing (e.g. jupyter nbconvert "
                       f"--clear-output --inplace {path.name})")
    assert nb.metadata.get("kernelspec", {}).get("language") == "python"
    assert "widgets" not in nb.metadata, f"{path.name} carries widget state"


def _neural_arch_warnings(nb):
    """stderr text of the executed cells that reports a warning raised in neural_arch."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("name") == "stderr" else ""
            if "Warning" in text and f"neural_arch{os.sep}" in text:
                found.append(f"cell {i}: {text.strip()}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path, kernel_name, tmp_path):
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=kernel_name,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()            # raises CellExecutionError, with the traceback, on an error
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.execution_count is not None for c in ran)
    warnings = _neural_arch_warnings(nb)
    assert not warnings, f"{path.name} triggers warnings in neural_arch:\n" + "\n".join(warnings)
