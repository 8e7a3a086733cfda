"""The documentation: API coverage, runnable examples, seed 003's page, optimizer pictures.

The Sphinx build itself (``sphinx-build -W``) runs in CI (``.ci/run``); these tests check
what can be checked without Sphinx, quickly.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

import neural_arch as na
from neural_arch import optim

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SEED_PAGE = DOCS / "optimization_module.rst"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module           # dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def conf():
    return _load("docs_conf", DOCS / "conf.py")


@pytest.fixture(scope="module")
def figures():
    return _load("docs_make_figures", DOCS / "make_figures.py")


def _pages():
    return sorted(p for p in DOCS.rglob("*.rst") if "_build" not in p.parts
                  and "_generated" not in p.parts)


# ---- every public name is documented ------------------------------------------------------

_DIRECTIVE = re.compile(r"^\.\. (automodule|auto\w+|py:\w+):: *(\S+)[ \t]*\n((?:[ \t]+:.*\n)*)",
                        re.M)


def _documented():
    """What the pages document.

    Returns the short names of documented objects and the set of ``(module, with
    members)`` pairs, one per automodule directive. An automodule with an empty
    ``:members:`` documents its module's ``__all__`` (less ``:exclude-members:``); one
    with a list documents that list.
    """
    names, modules = set(), set()
    for rst in _pages():
        for kind, target, options in _DIRECTIVE.findall(rst.read_text(encoding="utf-8")):
            if kind != "automodule":
                names.add(target.rsplit(".", 1)[-1])
                continue
            opts = dict(re.findall(r"^[ \t]+:([\w-]+):[ \t]*(.*)$", options, re.M))
            modules.add((target, "members" in opts))
            if "members" not in opts:
                continue
            listed = {s.strip() for s in opts["members"].split(",") if s.strip()}
            if listed:
                names |= listed
                continue
            assert "undoc-members" in opts, (
                f"{rst.relative_to(DOCS)}: automodule {target} with all its :members: "
                "should also list :undoc-members:")
            module = importlib.import_module(target)
            assert hasattr(module, "__all__"), f"{target} has no __all__ to document"
            excluded = {s.strip() for s in opts.get("exclude-members", "").split(",")}
            names |= set(module.__all__) - excluded
    return names, modules


def _public_modules():
    """neural_arch and every module reachable through the ``__all__`` lists from it."""
    found, todo = [], [na]
    while todo:
        module = todo.pop(0)
        if module in found:
            continue
        found.append(module)
        for n in getattr(module, "__all__", []):
            obj = getattr(module, n)
            if inspect.ismodule(obj) and obj.__name__.startswith("neural_arch"):
                todo.append(obj)
    return [m.__name__ for m in found]


PUBLIC_MODULES = _public_modules()


def test_the_public_modules_include_the_documented_packages():
    assert {"neural_arch", "neural_arch.functional", "neural_arch.autograd",
            "neural_arch.backend", "neural_arch.nn", "neural_arch.nn.init",
            "neural_arch.optim", "neural_arch.optim.lr_scheduler",
            "neural_arch.optim.schedules", "neural_arch.optim.factory",
            "neural_arch.losses", "neural_arch.losses.functional", "neural_arch.data",
            "neural_arch.io"} <= set(PUBLIC_MODULES)


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_name_is_in_the_api_docs(module):
    names, modules = _documented()
    mod = importlib.import_module(module)
    missing = []
    for n in getattr(mod, "__all__", []):
        obj = getattr(mod, n)
        if inspect.ismodule(obj):
            # A submodule counts as documented on its own page, or when its package's
            # members (which re-export what the submodule offers) are documented.
            parent = obj.__name__.rpartition(".")[0]
            if not {(obj.__name__, False), (obj.__name__, True), (parent, True)} & modules:
                missing.append(f"module {obj.__name__}")
        elif n not in names:
            missing.append(n)
    assert not missing, (f"{module}.__all__ names missing from the docs: {missing}; add "
                         "their module to an automodule block of docs/api/ (or a directive)")


def test_a_package_page_leaves_out_only_what_a_page_of_its_own_documents(conf):
    # conf.py skips, on a package's page, the members defined in the submodules listed
    # in OWN_PAGES; each of those must then be documented on its page, in full.
    assert conf.OWN_PAGES, "conf.OWN_PAGES is empty"
    for package_page, own in conf.OWN_PAGES.items():
        text = (DOCS / f"{package_page}.rst").read_text(encoding="utf-8")
        package = re.search(r"^\.\. automodule:: (\S+)\n   :members:\n", text, re.M).group(1)
        pkg = importlib.import_module(package)
        for module_name, page in own.items():
            page_text = (DOCS / f"{page}.rst").read_text(encoding="utf-8")
            assert re.search(rf"^\.\. automodule:: {re.escape(module_name)}\n"
                             r"   :members:\n   :undoc-members:\n", page_text, re.M), (
                f"{page}.rst should document {module_name} with :members: and "
                ":undoc-members:")
            module = importlib.import_module(module_name)
            skipped = [n for n in pkg.__all__
                       if getattr(getattr(pkg, n), "__module__", None) == module_name]
            assert skipped, f"{package} re-exports nothing from {module_name}"
            assert set(skipped) <= set(module.__all__), (
                f"{package} exports {sorted(set(skipped) - set(module.__all__))} from "
                f"{module_name}, which its page would not show (not in its __all__)")
            assert f"   {page.split('/')[-1]}\n" in (DOCS / "api" / "index.rst").read_text()


def test_public_functions_and_classes_have_docstrings():
    undocumented = []
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for n in getattr(module, "__all__", []):
            obj = getattr(module, n)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
                undocumented.append(f"{name}.{n}")
    assert not undocumented, f"public names without a docstring: {undocumented}"


# ---- the pages and their examples ------------------------------------------------------------

def _rst_python_blocks(path):
    text = path.read_text(encoding="utf-8")
    return [textwrap.dedent(m.group(1)) for m in
            re.finditer(r"^\.\. code-block:: python\n\n((?:(?:[ \t]+.*)?\n)+)", text, re.M)]


PAGES_WITH_EXAMPLES = [p for p in _pages() if p != SEED_PAGE and _rst_python_blocks(p)]


def test_the_guide_and_module_pages_have_examples():
    have = {str(p.relative_to(DOCS)) for p in PAGES_WITH_EXAMPLES}
    assert {"getting_started.rst", "concepts.rst", "api/optim.rst", "api/lr_scheduler.rst",
            "api/schedules.rst", "api/clipping.rst", "api/factory.rst",
            "api/deep_supervision.rst", "api/monitor.rst", "api/nn.rst", "api/losses.rst",
            "api/data.rst", "api/io.rst"} <= have


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda p: str(p.relative_to(DOCS)))
def test_docs_examples_run(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)          # examples that write files write them here
    ns = {"__name__": "docs"}
    for i, block in enumerate(_rst_python_blocks(page)):
        exec(compile(block, f"{page.relative_to(DOCS)} python block {i}", "exec"), ns)


def test_docs_conf_uses_autodoc_napoleon_mathjax():
    text = (DOCS / "conf.py").read_text(encoding="utf-8")
    for ext in ("sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"):
        assert f'"{ext}"' in text
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    for page in ("getting_started", "concepts", "architecture", "optimization_module",
                 "optimizers/index", "api/index"):
        assert f"   {page}\n" in index, f"index.rst's toctrees lack {page}"
        assert (DOCS / f"{page}.rst").exists()


def test_getting_started_gives_the_readmes_two_commands():
    text = (DOCS / "getting_started.rst").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    test_command = next(line for line in readme.splitlines()
                        if line.startswith("python3 -m venv") and "pytest" in line)
    assert test_command in text
    assert "neural-arch train" in readme and "\n   neural-arch train " in text


def test_api_pages_document_every_module_the_issue_names():
    pages = {p.stem for p in (DOCS / "api").glob("*.rst")}
    assert {"optim", "lr_scheduler", "schedules", "clipping", "factory", "deep_supervision",
            "monitor", "losses", "nn", "data", "io"} <= pages
    for name in ("amp", "distributed"):
        if importlib.util.find_spec(f"neural_arch.{name}") is not None \
                and name in getattr(na, "__all__", []):
            assert name in pages, f"neural_arch.{name} exists but has no page docs/api/{name}.rst"


# ---- seed 003: the "Optimization Module" page ------------------------------------------------

class ComplexModel(na.nn.Module):
    """Stand-in for the seed's model with a backbone and a head (3 classes)."""

    def __init__(self):
        super().__init__()
        self.backbone = na.nn.Sequential(na.nn.Linear(10, 8), na.nn.Tanh())
        self.head = na.nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.backbone(x))


Batch = namedtuple("Batch", "inputs targets")


def _seed_standins():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(32, 10)).astype(np.float32)
    y = (x @ rng.normal(size=(10, 1)) + 0.5).astype(np.float32)
    inputs, targets = na.tensor(x), na.tensor(y)

    def train_step(model, optimizer, data):
        xb, yb = data
        optimizer.zero_grad()
        loss = ((model(xb) - yb) ** 2).mean()       # yb broadcasts over any output width
        loss.backward()
        optimizer.step()
        return loss.item()

    labels = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0).astype(np.int64)   # 0, 1, 2
    dataloader = [Batch(na.tensor(x[i:i + 8]), na.tensor(labels[i:i + 8]))
                  for i in range(0, 32, 8)]
    return {"inputs": inputs, "targets": targets, "data": (inputs, targets),
            "train_step": train_step, "ComplexModel": ComplexModel,
            "dataloader": dataloader}


def test_seed_003_page_keeps_its_structure():
    text = SEED_PAGE.read_text(encoding="utf-8")
    assert text.startswith("Optimization Module\n===================\n")
    assert ".. currentmodule:: neural_arch.optim" in text
    for cls in ("Adam", "SGD", "AdamW"):
        assert f".. autoclass:: {cls}\n   :members:\n   :special-members: __init__\n" in text
        assert isinstance(getattr(optim, cls), type)        # the autoclass target resolves
    for section in ("Basic Usage", "Learning Rate Scheduling", "Multiple Parameter Groups",
                    "Advanced Training Patterns", "Optimizer State", "Performance Tips",
                    "Memory Considerations", "Implementation Notes"):
        assert f"\n{section}\n" in text


def test_seed_003_page_examples_run(capsys):
    blocks = _rst_python_blocks(SEED_PAGE)
    assert len(blocks) == 8
    ns = {"__name__": "seed003", **_seed_standins()}

    def run(i):
        exec(compile(blocks[i], f"optimization_module.rst python block {i}", "exec"), ns)

    na.manual_seed(0)
    run(0)                                                    # basic usage
    na.manual_seed(0)
    fresh = na.Linear(10, 1)
    before = na.mse_loss(fresh(ns["inputs"]), ns["targets"]).item()
    assert ns["optimizer"].step_count == 100
    assert ns["loss"].item() < before

    run(1)                                                    # Adam, beta1/beta2 spelling
    group = ns["optimizer"].param_groups[0]
    assert type(ns["optimizer"]) is optim.Adam
    assert group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8
    assert group["weight_decay"] == 0.01

    run(2)                                                    # SGD
    group = ns["optimizer"].param_groups[0]
    assert type(ns["optimizer"]) is optim.SGD and group["momentum"] == 0.9
    assert group["weight_decay"] == 1e-4

    run(3)                                                    # AdamW
    assert type(ns["optimizer"]) is optim.AdamW
    assert ns["optimizer"].param_groups[0]["weight_decay"] == 0.01

    run(4)                                                    # manual lr decay
    assert ns["optimizer"].lr == pytest.approx(1e-6)
    assert ns["optimizer"].step_count == 100
    out = capsys.readouterr().out
    assert "Epoch 0, LR: 0.001," in out and "Epoch 99, LR: 1" in out

    run(5)                                                    # parameter groups
    assert sorted(ns["all_params"]) == ["backbone.0.bias", "backbone.0.weight",
                                        "head.bias", "head.weight"]
    assert len(ns["optimizer"].param_groups) == 1
    assert len(ns["optimizer"].param_groups[0]["params"]) == 4

    run(6)                                                    # classification loop
    out = capsys.readouterr().out
    first = float(re.search(r"Epoch 0, Average Loss: ([\d.e+-]+)", out).group(1))
    last = float(re.search(r"Epoch 99, Average Loss: ([\d.e+-]+)", out).group(1))
    assert last < first

    run(7)                                                    # optimizer state
    out = capsys.readouterr().out
    assert "Step count: 10\n" in out and "Learning rate: 0.001\n" in out
    assert "Momentum estimates available" in out and "RMSprop estimates available" in out


def test_seed_003_groups_example_gives_the_backbone_its_own_rate():
    # The first optimizer of the parameter-group example (two groups, two rates).
    block = _rst_python_blocks(SEED_PAGE)[5]
    first = block[:block.index("# A single dict")]
    ns = {"__name__": "seed003", "na": na, **_seed_standins()}
    exec(compile(first, "optimization_module.rst python block 5", "exec"), ns)
    groups = ns["optimizer"].param_groups
    assert [g["lr"] for g in groups] == [1e-4, 0.001]
    assert [len(g["params"]) for g in groups] == [2, 2]


# ---- the optimizer pictures -----------------------------------------------------------------

def _figure_references():
    refs = {}
    for page in _pages():
        for name in re.findall(r"/_generated/figures/([\w.-]+\.png)",
                               page.read_text(encoding="utf-8")):
            refs.setdefault(name, []).append(page.stem)
    return refs


def test_the_pages_show_exactly_the_pictures_make_figures_draws(figures):
    refs = _figure_references()
    assert set(refs) == set(figures.figure_names()), (
        "pages and make_figures.py disagree on the pictures")
    for family in figures.FAMILIES:
        assert refs[f"{family}.png"] == [family], f"{family}.png belongs on {family}.rst"
    for name in ("gallery_rosenbrock.png", "gallery_quadratic.png", "gallery_final.png"):
        assert refs[name] == ["gallery"]


def test_make_figures_writes_png_files(figures, tmp_path, capsys):
    # Two of the figures, from short runs (the docs build draws all of them in full).
    chosen = ["sgd.png", "gallery_final.png"]
    assert figures.main(["--out", str(tmp_path), "--steps", "3", "--only", *chosen]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(chosen)
    for name in chosen:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    assert "2 figures of" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps must be at least 1, got 0"),
    (["--only", "nothing.png"], "invalid choice: 'nothing.png'")])
def test_make_figures_refuses_bad_arguments(figures, tmp_path, argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        figures.main(["--out", str(tmp_path), *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_contours_and_the_paths_use_the_same_function(figures):
    rng = np.random.default_rng(0)
    for problem in figures.PROBLEMS.values():
        for xy in rng.uniform(-2, 2, size=(5, 2)):
            p = na.tensor(xy)
            assert problem.loss(p).item() == pytest.approx(problem.grid(*xy), rel=1e-12)
            a, b = problem.terms(p)
            assert (a + b).item() == pytest.approx(problem.grid(*xy), rel=1e-12)
    assert problem.grid(*problem.minimum) == 0.0
    assert figures.PROBLEMS["rosenbrock"].grid(1.0, 1.0) == 0.0


#: Optimizer classes that are no update rule of their own but run another optimizer
#: at scale; each is presented on its module's page instead of a family page.
SCALE_OUT = {"MixedPrecisionOptimizer": "api/amp.rst",
             "DistributedOptimizer": "api/distributed.rst"}


def _optimizer_classes():
    bases = {optim.Optimizer, optim.GradientFreeOptimizer}
    return sorted((obj for n in optim.__all__
                   for obj in [getattr(optim, n)]
                   if isinstance(obj, type) and issubclass(obj, optim.Optimizer)
                   and obj not in bases and obj.__name__ not in SCALE_OUT),
                  key=lambda c: c.__name__)


def test_scale_out_optimizers_are_presented_with_their_modules():
    for name, page in SCALE_OUT.items():
        assert hasattr(optim, name) == (DOCS / page).exists()
        if hasattr(optim, name):
            assert f"~neural_arch.optim.{name}`" in (DOCS / page).read_text(encoding="utf-8")


def test_every_optimizer_has_a_family_page_with_its_picture_and_update_rule(figures):
    runs = {}
    for run in figures.RUNS:
        assert run.family in figures.FAMILIES, run.label
        runs.setdefault(run.cls, []).append(run)
    index = (DOCS / "optimizers" / "index.rst").read_text(encoding="utf-8")
    for cls in _optimizer_classes():
        assert cls in runs, f"docs/make_figures.py draws no path of {cls.__name__}"
        family = runs[cls][0].family
        page = (DOCS / "optimizers" / f"{family}.rst").read_text(encoding="utf-8")
        assert f":class:`{cls.__name__}`" in page, f"{family}.rst does not name {cls.__name__}"
        assert f".. automodule:: {cls.__module__}\n" in page, (
            f"{family}.rst lacks the update rule of {cls.__name__} ({cls.__module__})")
        assert f":class:`{cls.__name__}`" in index
    for family in figures.FAMILIES:
        assert f"   {family}\n" in index


#: Paths that first climb, as the family page explains: RAdam's first steps, before its
#: rectification starts, are SGD with momentum on Rosenbrock's steep gradient.
CLIMB_FIRST = {("RAdam", "rosenbrock")}


def test_every_path_goes_downhill_in_a_few_steps(figures):
    # Every configuration of the pictures makes progress on both functions within a
    # few steps: a broken optimizer or a diverging learning rate shows here.
    assert CLIMB_FIRST <= {(r.label, p) for r in figures.RUNS for p in figures.PROBLEMS}
    with na.autograd.grad_clip(None):
        for run in figures.RUNS:
            for problem in figures.PROBLEMS.values():
                points, losses, average = figures.trajectory(run, problem, 25)
                assert points.shape == (26, 2)
                np.testing.assert_array_equal(points[0], problem.start)
                assert np.isfinite(losses).all(), (run.label, problem.name)
                if (run.label, problem.name) in CLIMB_FIRST:
                    assert losses[-1] < 10 * losses[0] and losses.argmax() < 5
                else:
                    assert losses[-1] < losses[0], (run.label, problem.name, losses[[0, -1]])
                assert (average is None) == (run.average is None)
