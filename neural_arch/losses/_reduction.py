"""The ``reduction`` argument shared by every loss."""
from __future__ import annotations

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` if valid, else raise a ValueError listing the valid ones."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce(loss, reduction: str):
    """Apply ``reduction`` to a tensor of per-element losses."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    check_reduction(reduction)
