"""The loss library: every loss as a function (``losses.functional``) and a Module.

``reduction='mean'|'sum'|'none'`` everywhere it makes sense; PyTorch's argument
names, defaults and semantics wherever PyTorch has the loss.
"""
from . import functional
from .regression import *      # noqa: F401,F403
from .classification import *  # noqa: F401,F403
from .segmentation import *    # noqa: F401,F403
from .multitask import *       # noqa: F401,F403
from .generative import *      # noqa: F401,F403
from . import regression, classification, segmentation, multitask, generative

__all__ = (["functional"] + regression.__all__ + classification.__all__
           + segmentation.__all__ + multitask.__all__ + generative.__all__)
