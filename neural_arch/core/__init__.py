"""Tensor, Function, the backward engine, grad mode and dtypes."""
from .dtypes import (bool_, float16, float32, float64, get_default_dtype, int32, int64,
                     set_default_dtype)
from .grad_mode import (enable_grad, get_grad_clip, grad_clip, is_grad_enabled, no_grad,
                        set_grad_clip, set_grad_enabled)
from .tensor import Parameter, Tensor, as_tensor
from .function import AnomalyError, Function
from .engine import last_clamped_count, run_backward
from . import creation
from .creation import *  # noqa: F401,F403  (tensor, zeros, ones, arange, rand, ...)

__all__ = ["Tensor", "Parameter", "as_tensor", "Function", "AnomalyError", "run_backward",
           "last_clamped_count", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "set_grad_clip", "get_grad_clip", "grad_clip",
           "set_default_dtype", "get_default_dtype", "float16", "float32", "float64",
           "int32", "int64", "bool_"] + creation.__all__
