"""Sphinx configuration of the neural_arch documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` from the repository root
(the ``docs`` extra installs what it needs).
"""
import inspect
import os
import sys

# Document the source tree this file belongs to, installed or not.
sys.path.insert(0, os.path.abspath(".."))

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

exclude_patterns = ["_build"]
templates_path = []
html_static_path = []
html_theme = "alabaster"
html_title = f"neural_arch {release}"


def _append_algorithm_box(app, what, name, obj, options, lines):
    """After an optimizer class's own docstring, show its file's docstring.

    Each optimizer file opens with the update rule as the paper's algorithm box, the
    reference and the defaults, and the class docstring points there.
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
    lines.extend(body.splitlines())


def setup(app):
    # Priority above napoleon's (500): the class docstring is converted already.
    app.connect("autodoc-process-docstring", _append_algorithm_box, priority=600)
