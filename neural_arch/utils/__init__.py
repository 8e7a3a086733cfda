"""Aliases under the names some guides use: ``neural_arch.utils.factory`` is
:mod:`neural_arch.optim.factory` (the one optimizer/scheduler registry)."""
from . import factory

__all__ = ["factory"]
