r"""Rprop: resilient backpropagation, steps set by gradient signs alone.

.. math::

   \begin{aligned}
   & \textbf{input: } \theta_0,\ f(\theta),\ \gamma \text{ (lr: initial step)},
     \ \eta_-, \eta_+ \text{ (etas)},\ \Gamma_{min}, \Gamma_{max} \text{ (step sizes)},
     \ \text{maximize} \\
   & g_0 \leftarrow 0,\ \Delta_0 \leftarrow \gamma \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1})
     \qquad (- \text{ under maximize}) \\
   & \quad \Delta_t \leftarrow \operatorname{clip}\big(\Delta_{t-1} \cdot
     \{\eta_+ \text{ if } g_t g_{t-1} > 0;\ \eta_- \text{ if } g_t g_{t-1} < 0;
     \ 1 \text{ else}\},\ \Gamma_{min}, \Gamma_{max}\big) \\
   & \quad g_t \leftarrow 0 \text{ where } g_t g_{t-1} < 0 \\
   & \quad \theta_t \leftarrow \theta_{t-1} - \operatorname{sign}(g_t)\, \Delta_t
   \end{aligned}

Reference: Riedmiller & Braun, "A Direct Adaptive Method for Faster
Backpropagation Learning: The RPROP Algorithm", IEEE International Conference on
Neural Networks, 1993 (no arXiv version).

Defaults as PyTorch: ``lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50),
maximize=False``. The learning rate is only the initial step size ``Δ_0``: a
change of ``lr`` after a parameter's first step has no effect on it. Where the
gradient changed sign, the step shrinks, this step is skipped and the stored
gradient is set to 0, so the next step neither grows nor shrinks the step size;
this is PyTorch's rule (the variant Igel & Hüsken, 2000, call iRprop⁻: the
paper's version reverts the previous step instead). Rprop has no ``ε`` and no
weight decay. State: ``step``, ``prev`` (``g_{t-1}``, zeroed where the sign
changed), ``step_size`` (``Δ``).
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, check_range, flag, non_negative
from ._kernels import effective_grad, scratch_like
from .optimizer import Optimizer

__all__ = ["Rprop", "rprop_update"]


def rprop_update(param, grad, prev, step_size, *, etaminus, etaplus, step_size_min,
                 step_size_max, maximize=False, scratch=None):
    """One Rprop step on raw arrays, in place (``param``, ``prev`` and ``step_size``).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    prev : ndarray
        The previous (sign-masked) gradient ``g_{t-1}``; receives ``g_t``.
    step_size : ndarray
        Per-coordinate step sizes ``Δ`` (updated).
    etaminus, etaplus : float
        Factors ``η_-`` (sign change) and ``η_+`` (same sign) of the step sizes.
    step_size_min, step_size_max : float
        Bounds ``Γ_min, Γ_max`` of the step sizes.
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.
    """
    xp = get_array_module(param)
    theta, delta, s = param, step_size, scratch_like(param, scratch)
    g = effective_grad(grad, theta, 0.0, maximize, out=s)      # g_t = ±∇f
    xp.multiply(g, prev, out=s)
    xp.sign(s, out=s)                                           # sign(g_t g_{t-1})
    if maximize:                                                # g_t, to be stored as the
        xp.negative(grad, out=prev)                             # next step's g_{t-1}
    else:
        xp.copyto(prev, grad)
    xp.copyto(prev, 0.0, where=s < 0)                           # g_t = 0 where the sign flipped
    xp.copyto(s, etaplus, where=s > 0)
    xp.copyto(s, etaminus, where=s < 0)
    xp.copyto(s, 1.0, where=s == 0)                             # η_+, η_- or 1
    delta *= s
    xp.clip(delta, step_size_min, step_size_max, out=delta)     # Δ_t = clip(Δ · η, Γ)
    xp.sign(prev, out=s)
    s *= delta
    theta -= s                                                  # θ_t = θ - sign(g_t) Δ_t
    return theta


def _etas(name, value):
    """``(η_-, η_+)`` with ``0 < η_- < 1 < η_+``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a pair (etaminus, etaplus), got {value!r}")
    minus = check_range(name, value[0], 0.0, 1.0, low_open=True, label="eta value at index 0",
                        symbol="etaminus")
    plus = check_range(name, value[1], 1.0, low_open=True, label="eta value at index 1",
                       symbol="etaplus")
    return minus, plus


def _step_sizes(name, value):
    """``(Γ_min, Γ_max)`` with ``0 <= Γ_min <= Γ_max``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a pair (min, max), got {value!r}")
    low = check_range(name, value[0], 0.0, label="minimal step size", symbol="min")
    high = check_range(name, value[1], 0.0, label="maximal step size", symbol="max")
    if high < low:
        raise ValueError(f"Invalid step sizes: {value[0]!r}, {value[1]!r} (expected "
                         f"0 <= min <= max)")
    return low, high


class Rprop(Optimizer):
    """Rprop (Riedmiller & Braun, 1993), in PyTorch's form; see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 1e-2
        Initial step size ``Δ_0`` of every coordinate (alias ``learning_rate``).
    etas : (float, float), default (0.5, 1.2)
        ``(η_-, η_+)``, ``0 < η_- < 1 < η_+``: the step size shrinks by ``η_-``
        when the gradient changes sign and grows by ``η_+`` when it keeps it.
    step_sizes : (float, float), default (1e-6, 50)
        Smallest and largest step size.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).
    """

    hyperparameters = {"lr": non_negative, "etas": _etas, "step_sizes": _step_sizes,
                       "maximize": flag}

    @accepts_aliases
    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 maximize=False, contiguous=False):
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, maximize=maximize)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        if not state:
            state["step"] = 0
            state["prev"] = xp.zeros_like(param)
            state["step_size"] = xp.full_like(param, group["lr"])
        state["step"] += 1
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        rprop_update(param, grad, state["prev"], state["step_size"], etaminus=etaminus,
                     etaplus=etaplus, step_size_min=step_size_min,
                     step_size_max=step_size_max, maximize=group["maximize"],
                     scratch=self._scratch(param))
