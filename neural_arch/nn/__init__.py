"""Layers and models: Module, containers, layers, initialisation."""
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Parameter"]
