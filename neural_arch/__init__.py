"""neural_arch: a NumPy autograd framework whose heart is a verified optimizer library."""
from . import backend
from .backend import manual_seed, set_default_device, use_device, cupy_available
from .core import *  # noqa: F401,F403
from .core import __all__ as _core_all
from . import functional, autograd
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from . import nn
from .nn import Linear, Module, ReLU, Sequential, Softmax
from . import losses
from .losses.functional import cross_entropy_loss, mse_loss
from . import optim
from . import optimizers
from . import data, io, amp, distributed, utils
from .io import load, save
from .optim import SGD, Adam, AdamW

__version__ = "0.1.0"
__all__ = (["backend", "functional", "autograd", "manual_seed", "set_default_device",
            "use_device", "cupy_available", "nn", "Module", "Linear", "ReLU", "Softmax",
            "Sequential", "losses", "mse_loss", "cross_entropy_loss", "optim", "optimizers", "data", "io", "amp", "distributed", "utils", "save", "load", "SGD", "Adam", "AdamW"]
           + _core_all + _functional_all)
