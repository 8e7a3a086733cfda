"""Sphinx configuration of the neural_arch documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` from the repository root
(the ``docs`` extra installs what it needs).
"""
import functools
import inspect
import os
import re
import sys

# Document the source tree this file belongs to, installed or not.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import neural_arch  # noqa: E402

project = "neural_arch"
author = "the neural_arch developers"
copyright = "the neural_arch developers"
version = release = neural_arch.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

# NumPy-style docstrings throughout.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# "Attributes" sections become :ivar: fields, so they do not clash with the slot
# attributes that autodoc documents itself.
napoleon_use_ivar = True

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

exclude_patterns = ["_build", "_generated"]

# A type in a NumPy docstring ("dict name -> Parameter") becomes cross-references word
# by word; a word that names several attributes ("name": Tensor.name, Backend.name)
# would stop a -W build although the link is harmless (without nitpicky, words that
# name nothing are not reported either).
suppress_warnings = ["ref.python"]
templates_path = []
html_static_path = []
html_theme = "alabaster"
html_title = f"neural_arch {release}"


_UNDERLINE = re.compile(r"^([-=~^\"'`#*+])\1*$")


def _sections_to_rubrics(lines):
    """Turn the section titles of a docstring into rubrics.

    A module docstring appended to a class must not open sections of the page (they
    would appear in its table of contents as if they were the page's own).
    """
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        below = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and not line.startswith(" ") and _UNDERLINE.match(below) \
                and len(below) >= len(line.rstrip()) and (not out or not out[-1].strip()):
            out += [f".. rubric:: {line.strip()}", ""]
            i += 2
            continue
        out.append(line)
        i += 1
    return out


def _append_algorithm_box(app, what, name, obj, options, lines):
    """After an optimizer class's own docstring, show its file's docstring.

    Each optimizer file opens with the update rule as the paper's algorithm box, the
    reference and the defaults, and the class docstring points there. A link to the
    optimizer's family page (with the pictures) follows.
    """
    from neural_arch.optim import Optimizer
    if what != "class" or not isinstance(obj, type) or not issubclass(obj, Optimizer) \
            or obj is Optimizer:
        return
    module = sys.modules.get(obj.__module__)
    doc = inspect.getdoc(module) if module is not None else None
    if not doc:
        return
    from sphinx.ext.napoleon.docstring import NumpyDocstring
    body = str(NumpyDocstring(doc, app.config, app, "module", obj.__module__, module))
    lines.extend(["", f".. rubric:: Algorithm (``{obj.__module__}``)", ""])
    lines.extend(_sections_to_rubrics(body.splitlines()))
    family = _families().get(obj)
    if family is not None:
        lines.extend(["", f"Its family, with pictures of its path on two test functions: "
                          f":doc:`/optimizers/{family}`.", ""])


def _families():
    """Optimizer class -> the name of its family page (from make_figures.RUNS)."""
    return {run.cls: run.family for run in reversed(_make_figures_module().RUNS)}


# ---- modules of a package documented on pages of their own ------------------------------

#: Submodules whose names the package page leaves out, because a page of their own
#: documents them (``automodule:: <module>`` with ``:members:``); ``tests/test_docs.py``
#: checks that each page does. Keys: the package page; values: module -> its page.
OWN_PAGES = {
    "api/optim": {
        "neural_arch.optim.lr_scheduler": "api/lr_scheduler",
        "neural_arch.optim.schedules": "api/schedules",
        "neural_arch.optim.clipping": "api/clipping",
        "neural_arch.optim.factory": "api/factory",
        "neural_arch.optim.deep_supervision": "api/deep_supervision",
        "neural_arch.optim.monitor": "api/monitor",
    },
}


def _skip_members_with_own_page(app, what, name, obj, skip, options):
    """On a package page, skip the members defined in a submodule with its own page."""
    own = OWN_PAGES.get(app.env.docname)
    if what == "module" and own and getattr(obj, "__module__", None) in own:
        return True
    return None


# ---- the optimizer pictures ------------------------------------------------------------

DOCS = os.path.dirname(os.path.abspath(__file__))
FIGURES = os.path.join(DOCS, "_generated", "figures")


@functools.lru_cache(maxsize=None)
def _make_figures_module():
    """docs/make_figures.py, imported from its path (once)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "make_figures", os.path.join(DOCS, "make_figures.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_figures"] = module     # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _figures_are_current(make_figures):
    """True when every picture is newer than the script and the library's code."""
    pngs = [os.path.join(FIGURES, name) for name in make_figures.figure_names()]
    if not all(os.path.exists(p) for p in pngs):
        return False
    sources = [os.path.join(DOCS, "make_figures.py")]
    for root, _, files in os.walk(os.path.join(DOCS, "..", "neural_arch")):
        sources += [os.path.join(root, f) for f in files if f.endswith(".py")]
    return min(map(os.path.getmtime, pngs)) >= max(map(os.path.getmtime, sources))


def _make_figures(app):
    """Draw the optimizer pictures, unless they are newer than everything they show.

    They are drawn into ``docs/_generated/figures`` (not committed) by running the
    optimizers, so the pages always show what the code does now.
    """
    make_figures = _make_figures_module()
    if not _figures_are_current(make_figures):
        make_figures.main(["--out", FIGURES])


def setup(app):
    # Priority above napoleon's (500): the class docstring is converted already.
    app.connect("autodoc-process-docstring", _append_algorithm_box, priority=600)
    app.connect("autodoc-skip-member", _skip_members_with_own_page)
    app.connect("builder-inited", _make_figures)
