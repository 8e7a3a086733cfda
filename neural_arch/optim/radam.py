r"""RAdam: Adam with the variance of the adaptive learning rate rectified.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \beta_1, \beta_2 \text{ (betas)},\ \theta_0,
     \ f(\theta),\ \lambda \text{ (weight decay)},\ \epsilon,\ \text{decoupled},
     \ \text{maximize} \\
   & m_0 \leftarrow 0,\ v_0 \leftarrow 0,\
     \rho_\infty \leftarrow 2 / (1 - \beta_2) - 1 \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1})
     \qquad (- \text{ under maximize}) \\
   & \quad \textbf{if decoupled: } \theta_{t-1} \leftarrow \theta_{t-1}(1 - \gamma\lambda)
     \quad \textbf{else: } g_t \leftarrow g_t + \lambda\theta_{t-1} \\
   & \quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
   & \quad v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
   & \quad \hat m_t \leftarrow m_t / (1 - \beta_1^t) \\
   & \quad \rho_t \leftarrow \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t) \\
   & \quad \textbf{if } \rho_t > 5: \\
   & \qquad l_t \leftarrow \sqrt{1 - \beta_2^t} / (\sqrt{v_t} + \epsilon) \\
   & \qquad r_t \leftarrow \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
     {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \\
   & \qquad \theta_t \leftarrow \theta_{t-1} - \gamma\, \hat m_t\, l_t\, r_t \\
   & \quad \textbf{else: } \theta_t \leftarrow \theta_{t-1} - \gamma\, \hat m_t
   \end{aligned}

Reference: Liu, Jiang, He, Chen, Liu, Gao & Han, "On the Variance of the Adaptive
Learning Rate and Beyond", ICLR 2020, arXiv:1908.03265.

Defaults as PyTorch: ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
decoupled_weight_decay=False, maximize=False``. While the approximated length
``ρ_t`` of the simple moving average is at most 5 (the first few steps with the
default ``β2``; always when ``β2 = 0``) the variance is not tractable and the step
is SGD with momentum on ``m̂_t``; the threshold 5 is PyTorch's (the paper's
algorithm box uses 4). ``ε`` is added to the *uncorrected* ``√v_t``, as in
PyTorch. Weight decay is L2 (``λθ`` added to the gradient) unless
``decoupled_weight_decay``, which shrinks ``θ`` by ``1 - γλ`` before the step.
State: ``step``, ``exp_avg`` (``m``), ``exp_avg_sq`` (``v``).
"""
from __future__ import annotations

import math

from ..backend import get_array_module
from ._args import accepts_aliases, betas, flag, non_negative
from ._kernels import (bias_correction, decoupled_weight_decay_, descend_, effective_grad,
                       moving_average_, scratch_like)
from .optimizer import Optimizer, state_view

__all__ = ["RAdam", "radam_update", "radam_rectification"]

#: RAdam applies the adaptive step only once ``ρ_t`` exceeds this (PyTorch's value).
RHO_THRESHOLD = 5.0


def radam_rectification(beta2, step):
    """The rectification ``r_t`` of step ``t``, or None while ``ρ_t <= 5``."""
    rho_inf = 2.0 / (1.0 - beta2) - 1.0                             # ρ_∞
    beta2_t = beta2 ** step
    rho_t = rho_inf - 2.0 * step * beta2_t / (1.0 - beta2_t)         # ρ_t
    if rho_t <= RHO_THRESHOLD:
        return None
    return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                     / ((rho_inf - 4) * (rho_inf - 2) * rho_t))     # r_t


def radam_update(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps,
                 weight_decay=0.0, decoupled_weight_decay=False, maximize=False,
                 scratch=None):
    """One RAdam step on raw arrays, in place (``param`` and the moment arrays).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    exp_avg, exp_avg_sq : ndarray
        First and second moment estimates ``m, v`` (updated).
    step : int
        The 1-based step ``t``.
    lr, beta1, beta2, eps, weight_decay : float
        ``γ, β1, β2, ε, λ`` of the algorithm box.
    decoupled_weight_decay : bool
        Shrink ``θ`` by ``1 - γλ`` instead of adding ``λθ`` to the gradient.
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.
    """
    xp = get_array_module(param)
    theta, m, v, s = param, exp_avg, exp_avg_sq, scratch_like(param, scratch)
    l2 = weight_decay
    if decoupled_weight_decay:
        decoupled_weight_decay_(theta, lr, weight_decay)         # θ = θ (1 - γλ)
        l2 = 0.0
    g = effective_grad(grad, theta, l2, maximize, out=s)         # g_t = ±∇f (+ λθ)
    moving_average_(m, g, beta1, out=s)                          # m_t = β1 m + (1-β1) g_t
    g = effective_grad(grad, theta, l2, maximize, out=s)         # (s was used up: again)
    xp.multiply(g, g, out=s)
    moving_average_(v, s, beta2, out=s)                          # v_t = β2 v + (1-β2) g_t²
    bc1 = bias_correction(beta1, step)                           # m̂_t = m_t / bc1
    r = radam_rectification(beta2, step)
    if r is None:
        descend_(theta, m, lr / bc1, out=s)                      # θ_t = θ - γ m̂_t
        return theta
    xp.sqrt(v, out=s)
    s += eps
    xp.divide(m, s, out=s)                                       # m_t / (√v_t + ε)
    step_size = lr / bc1 * math.sqrt(bias_correction(beta2, step)) * r
    descend_(theta, s, step_size, out=s)                         # θ_t = θ - γ m̂_t l_t r_t
    return theta


class RAdam(Optimizer):
    """RAdam (Liu et al., 2020), optionally with decoupled weight decay; see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 1e-3
        Learning rate ``γ`` (alias ``learning_rate``).
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the moment estimates (aliases ``beta1``/``beta2``,
        ``beta_1``/``beta_2``).
    eps : float, default 1e-8
        Added to ``√v`` in the adaptive learning rate (alias ``epsilon``).
    weight_decay : float, default 0
        Weight decay ``λ``: L2 (added to the gradient) or decoupled, see below.
    decoupled_weight_decay : bool, default False
        Shrink the parameters by ``1 - lr·λ`` each step (as AdamW) instead of L2.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).

    Attributes
    ----------
    m, v : StateView
        Read-only mappings Parameter -> first / second moment estimate.
    """

    hyperparameters = {"lr": non_negative, "betas": betas, "eps": non_negative,
                       "weight_decay": non_negative, "decoupled_weight_decay": flag,
                       "maximize": flag}
    m = state_view("exp_avg", "Read-only mapping Parameter -> first moment estimate m.")
    v = state_view("exp_avg_sq", "Read-only mapping Parameter -> second moment estimate v.")

    @accepts_aliases
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False, *, maximize=False, contiguous=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        radam_update(param, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"],
                     lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                     weight_decay=group["weight_decay"],
                     decoupled_weight_decay=group["decoupled_weight_decay"],
                     maximize=group["maximize"], scratch=self._scratch(param))
