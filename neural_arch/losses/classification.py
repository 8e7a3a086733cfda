"""Classification losses: Module form."""
from __future__ import annotations

__all__ = []
