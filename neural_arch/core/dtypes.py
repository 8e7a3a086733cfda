"""Dtypes: the default float dtype and the names neural_arch exports."""
from __future__ import annotations

import numpy as np

__all__ = ["float16", "float32", "float64", "int32", "int64", "bool_",
           "set_default_dtype", "get_default_dtype", "to_dtype"]

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_DEFAULT = [float32]


def to_dtype(dtype) -> np.dtype:
    """Normalise a dtype spelling (``'float32'``, ``np.float64``, ...) to ``numpy.dtype``."""
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"not a dtype: {dtype!r}") from None


def set_default_dtype(dtype) -> None:
    """Set the float dtype that Python numbers and lists become (float32 or float64)."""
    d = to_dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"default dtype must be a floating dtype, got {d}")
    _DEFAULT[0] = d


def get_default_dtype() -> np.dtype:
    """Return the default float dtype (float32 unless changed)."""
    return _DEFAULT[0]
