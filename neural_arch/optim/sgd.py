r"""Stochastic gradient descent with momentum, dampening and Nesterov momentum.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \theta_0,\ f(\theta),\ \lambda \text{ (weight decay)},
     \ \mu \text{ (momentum)},\ \tau \text{ (dampening)},\ \text{nesterov},\ \text{maximize} \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1}
     \qquad (- \text{ under maximize}) \\
   & \quad \textbf{if } \mu \neq 0: \\
   & \qquad b_t \leftarrow g_t \text{ if } t = 1
     \text{ else } \mu b_{t-1} + (1 - \tau) g_t \\
   & \qquad g_t \leftarrow g_t + \mu b_t \text{ if nesterov else } b_t \\
   & \quad \theta_t \leftarrow \theta_{t-1} - \gamma g_t
   \end{aligned}

References: Robbins & Monro, "A Stochastic Approximation Method" (1951);
Polyak, "Some methods of speeding up the convergence of iteration methods" (1964);
Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum
in deep learning" (ICML 2013), whose Nesterov form PyTorch uses.

Defaults as PyTorch: ``lr=1e-3, momentum=0, dampening=0, weight_decay=0,
nesterov=False, maximize=False``. Weight decay is L2 (``λθ`` added to the
gradient). The momentum buffer starts as the first gradient itself (no
dampening on step 1), and Nesterov needs ``momentum > 0`` and ``dampening = 0``,
both as in PyTorch. State: ``momentum_buffer`` (only when ``momentum != 0``).
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, flag, non_negative, unit_interval
from ._kernels import blocks, descend_, effective_grad, scratch_for
from .optimizer import Optimizer

__all__ = ["SGD", "sgd_update"]


def sgd_update(param, grad, momentum_buffer=None, *, lr, momentum=0.0, dampening=0.0,
               weight_decay=0.0, nesterov=False, maximize=False, fresh_buffer=False,
               scratch=None):
    """One SGD step on raw arrays, in place (``param`` and ``momentum_buffer``).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    momentum_buffer : ndarray, optional
        The momentum ``b`` (updated); needed when ``momentum != 0``.
    lr, momentum, dampening, weight_decay : float
        ``γ, μ, τ, λ`` of the algorithm box.
    nesterov, maximize : bool
    fresh_buffer : bool
        True on the buffer's first step: it takes ``g_t`` itself (``b_1 = g_1``).
    scratch : ndarray, optional
        A work array of ``param``'s shape; when omitted, one is allocated (only
        block-sized for large arrays on the CPU, see :func:`._kernels.blocks`).
    """
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    xp = get_array_module(param)
    for theta, dtheta, b, s in blocks(param, grad, momentum_buffer, scratch=scratch):
        g = effective_grad(dtheta, theta, weight_decay, maximize, out=s)  # g_t = ±∇f + λθ
        if momentum != 0:
            if fresh_buffer:
                xp.copyto(b, g)                                        # b_1 = g_1
            elif dampening == 0:
                b *= momentum
                b += g                                                 # b_t = μ b + g_t
            else:
                b *= momentum
                xp.multiply(g, 1 - dampening, out=s)                  # (uses up g)
                b += s                                                 # b_t = μ b + (1-τ) g_t
            if nesterov:
                # θ_t = θ - γ (g_t + μ b_t), applied term by term to need one scratch array
                descend_(theta, g, lr, out=s)
                descend_(theta, b, lr * momentum, out=s)
                continue
            g = b
        descend_(theta, g, lr, out=s)                                  # θ_t = θ - γ g_t
    return param


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum); see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 1e-3
        Learning rate ``γ`` (alias ``learning_rate``).
    momentum : float, default 0
        Momentum factor ``μ >= 0``.
    dampening : float, default 0
        Dampening ``τ`` of the momentum, ``0 <= τ <= 1``.
    weight_decay : float, default 0
        L2 penalty ``λ``, added to the gradient.
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0 and dampening 0).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).
    """

    hyperparameters = {"lr": non_negative, "momentum": non_negative,
                       "dampening": unit_interval, "weight_decay": non_negative,
                       "nesterov": flag, "maximize": flag}

    @accepts_aliases
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, contiguous=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults, contiguous=contiguous)

    def check_group(self, group):
        if group.get("nesterov") and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={group['momentum']}, "
                             f"dampening={group['dampening']})")

    def _update(self, param, grad, state, group):
        momentum = group["momentum"]
        fresh = momentum != 0 and "momentum_buffer" not in state
        if fresh:
            state["momentum_buffer"] = get_array_module(param).empty_like(param)
        sgd_update(param, grad, state.get("momentum_buffer"), lr=group["lr"],
                   momentum=momentum, dampening=group["dampening"],
                   weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                   maximize=group["maximize"], fresh_buffer=fresh,
                   scratch=scratch_for(self, param))
