"""Regression losses: functional form."""
from __future__ import annotations

__all__ = []
