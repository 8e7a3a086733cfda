"""Losses in functional form: ``na.losses.functional.cross_entropy(logits, target)``.

Names follow ``torch.nn.functional`` where PyTorch has the loss, and the snake_case
of the class otherwise (``dice_loss``, ``tversky_loss``).
"""
from .regression import *      # noqa: F401,F403
from .classification import *  # noqa: F401,F403
from .segmentation import *    # noqa: F401,F403
from .generative import *      # noqa: F401,F403
from . import regression, classification, segmentation, generative

__all__ = (regression.__all__ + classification.__all__ + segmentation.__all__
           + generative.__all__)
