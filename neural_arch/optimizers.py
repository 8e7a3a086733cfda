"""Alias of :mod:`neural_arch.optim` under the name some guides use (``optimizers``).

Every name here *is* the object in :mod:`neural_arch.optim`; nothing is redefined.
"""
from .optim import *  # noqa: F401,F403
from .optim import __all__  # noqa: F401
