"""Alias of :mod:`neural_arch.optim.factory`; every name here is that module's object."""
from ..optim.factory import *  # noqa: F401,F403
from ..optim.factory import __all__  # noqa: F401
