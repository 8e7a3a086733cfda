r"""Adadelta: steps in the units of the parameter, from two leaky averages.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \rho \text{ (decay)},\ \theta_0,\ f(\theta),
     \ \lambda \text{ (weight decay)},\ \epsilon,\ \text{maximize} \\
   & v_0 \leftarrow 0 \text{ (square avg)},\ u_0 \leftarrow 0 \text{ (accumulated update)} \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1}
     \qquad (- \text{ under maximize}) \\
   & \quad v_t \leftarrow \rho v_{t-1} + (1 - \rho) g_t^2 \\
   & \quad \Delta x_t \leftarrow \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
   & \quad u_t \leftarrow \rho u_{t-1} + (1 - \rho) \Delta x_t^2 \\
   & \quad \theta_t \leftarrow \theta_{t-1} - \gamma \Delta x_t
   \end{aligned}

Reference: Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012,
arXiv:1212.5701 (Algorithm 1).

Defaults as PyTorch: ``lr=1.0, rho=0.9, eps=1e-6, weight_decay=0,
maximize=False``. ``ε`` is added *inside* both square roots (the paper's
``RMS[x] = √(E[x²] + ε)``). The paper has no learning rate; PyTorch's ``γ``
scales the step, and ``γ = 1`` is the paper's rule. Weight decay is L2 (``λθ``
added to the gradient). State: ``step``, ``square_avg`` (``v``), ``acc_delta``
(``u``).

Memory: ``Δx_t`` is needed twice (for ``u_t`` and for ``θ_t``) after both of its
inputs have been read, so besides the scratch array the kernel makes one
parameter-sized temporary per step.
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, flag, non_negative, unit_interval
from ._kernels import descend_, effective_grad, moving_average_, scratch_like
from .optimizer import Optimizer

__all__ = ["Adadelta", "adadelta_update"]


def adadelta_update(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay=0.0,
                    maximize=False, scratch=None):
    """One Adadelta step on raw arrays, in place (``param`` and both averages).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    square_avg, acc_delta : ndarray
        Leaky averages ``v`` of the squared gradients and ``u`` of the squared
        updates (updated).
    lr, rho, eps, weight_decay : float
        ``γ, ρ, ε, λ`` of the algorithm box (``λ``: L2 weight decay).
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.
    """
    xp = get_array_module(param)
    theta, v, u, s = param, square_avg, acc_delta, scratch_like(param, scratch)
    g = effective_grad(grad, theta, weight_decay, maximize, out=s)  # g_t = ±∇f + λθ
    xp.multiply(g, g, out=s)
    moving_average_(v, s, rho, out=s)                 # v_t = ρ v + (1-ρ) g_t²
    dx = xp.add(u, eps, out=xp.empty_like(u))         # (the per-step temporary)
    xp.sqrt(dx, out=dx)                               # √(u_{t-1} + ε)
    xp.add(v, eps, out=s)
    xp.sqrt(s, out=s)
    dx /= s                                           # √(u_{t-1} + ε) / √(v_t + ε)
    dx *= effective_grad(grad, theta, weight_decay, maximize, out=s)  # Δx_t (s: g_t again)
    xp.multiply(dx, dx, out=s)
    moving_average_(u, s, rho, out=s)                 # u_t = ρ u + (1-ρ) Δx_t²
    descend_(theta, dx, lr, out=s)                    # θ_t = θ - γ Δx_t
    return theta


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012); see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 1.0
        Factor ``γ`` on the step (alias ``learning_rate``); 1 is the paper's rule.
    rho : float, default 0.9
        Decay ``ρ`` of both leaky averages, ``0 <= ρ <= 1``.
    eps : float, default 1e-6
        Added inside both square roots (alias ``epsilon``).
    weight_decay : float, default 0
        L2 penalty ``λ``, added to the gradient.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).
    """

    hyperparameters = {"lr": non_negative, "rho": unit_interval, "eps": non_negative,
                       "weight_decay": non_negative, "maximize": flag}

    @accepts_aliases
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *,
                 maximize=False, contiguous=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(param)
            state["acc_delta"] = xp.zeros_like(param)
        state["step"] += 1
        adadelta_update(param, grad, state["square_avg"], state["acc_delta"], lr=group["lr"],
                        rho=group["rho"], eps=group["eps"],
                        weight_decay=group["weight_decay"], maximize=group["maximize"],
                        scratch=self._scratch(param))
