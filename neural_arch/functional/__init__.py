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
from .linear import *      # noqa: F401,F403
from .dropout import *     # noqa: F401,F403
from .embedding import *   # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .conv import *        # noqa: F401,F403
from .pool import *        # noqa: F401,F403
from . import math, reduce, shape, linalg, activation
# (Imported by name: ``F.linear``, ``F.dropout`` and ``F.embedding`` are the functions,
# which share their modules' names; ``normalization`` is not ``norm`` because
# ``F.norm`` is the reduction.)
from .linear import __all__ as _linear_all
from .dropout import __all__ as _dropout_all
from .embedding import __all__ as _embedding_all
from .normalization import __all__ as _normalization_all
from .conv import __all__ as _conv_all
from .pool import __all__ as _pool_all

__all__ = math.__all__ + reduce.__all__ + shape.__all__ + linalg.__all__ + activation.__all__
__all__ += _linear_all + _dropout_all + _embedding_all + _normalization_all
__all__ += _conv_all + _pool_all
