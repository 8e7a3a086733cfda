"""Every differentiable op, grouped by family.

``neural_arch.functional`` re-exports all of them, so ``F.tanh``, ``F.sum`` and
``F.matmul`` live side by side. Each family module lists its public ops in
``__all__``.
"""
from .math import *        # noqa: F401,F403
from .reduce import *      # noqa: F401,F403
from .shape import *       # noqa: F401,F403
from .linalg import *      # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from . import math, reduce, shape, linalg, activation

__all__ = math.__all__ + reduce.__all__ + shape.__all__ + linalg.__all__ + activation.__all__
