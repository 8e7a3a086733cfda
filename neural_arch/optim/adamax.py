r"""Adamax: Adam with the infinity norm in place of the second moment.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \beta_1, \beta_2 \text{ (betas)},\ \theta_0,
     \ f(\theta),\ \lambda \text{ (weight decay)},\ \epsilon,\ \text{maximize} \\
   & m_0 \leftarrow 0,\ u_0 \leftarrow 0 \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1}
     \qquad (- \text{ under maximize}) \\
   & \quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
   & \quad u_t \leftarrow \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
   & \quad \theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,\frac{m_t}{u_t}
   \end{aligned}

Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
arXiv:1412.6980, section 7.1 (Algorithm 2).

Defaults as PyTorch: ``lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
maximize=False``. The paper has no ``ε``; as in PyTorch it is added to ``|g_t|``
*inside* the maximum, so ``u_t >= ε`` and the division is safe once ``ε > 0``.
Only ``m`` is bias-corrected: the exponentially weighted maximum ``u`` is not
biased towards zero. Weight decay is L2 (``λθ`` added to the gradient). State:
``step``, ``exp_avg`` (``m``), ``exp_inf`` (``u``).
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, betas, flag, non_negative
from ._kernels import (bias_correction, descend_, effective_grad, moving_average_,
                       scratch_like)
from .optimizer import Optimizer, state_view

__all__ = ["Adamax", "adamax_update"]


def adamax_update(param, grad, exp_avg, exp_inf, *, step, lr, beta1, beta2, eps,
                  weight_decay=0.0, maximize=False, scratch=None):
    """One Adamax step on raw arrays, in place (``param``, ``exp_avg``, ``exp_inf``).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    exp_avg, exp_inf : ndarray
        First moment ``m`` and exponentially weighted infinity norm ``u`` (updated).
    step : int
        The 1-based step ``t`` (for the bias correction of ``m``).
    lr, beta1, beta2, eps, weight_decay : float
        ``γ, β1, β2, ε, λ`` of the algorithm box (``λ``: L2 weight decay).
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.
    """
    xp = get_array_module(param)
    theta, m, u, s = param, exp_avg, exp_inf, scratch_like(param, scratch)
    g = effective_grad(grad, theta, weight_decay, maximize, out=s)  # g_t = ±∇f + λθ
    moving_average_(m, g, beta1, out=s)               # m_t = β1 m + (1-β1) g_t
    g = effective_grad(grad, theta, weight_decay, maximize, out=s)  # (s was used up: again)
    xp.abs(g, out=s)
    s += eps
    u *= beta2
    xp.maximum(u, s, out=u)                           # u_t = max(β2 u, |g_t| + ε)
    xp.divide(m, u, out=s)
    descend_(theta, s, lr / bias_correction(beta1, step), out=s)  # θ_t = θ - γ m̂_t / u_t
    return theta


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, 2015), Adam's infinity-norm variant; see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 2e-3
        Learning rate ``γ`` (alias ``learning_rate``).
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first moment and of the infinity norm (aliases
        ``beta1``/``beta2``, ``beta_1``/``beta_2``).
    eps : float, default 1e-8
        Added to ``|g|`` inside the running maximum (alias ``epsilon``).
    weight_decay : float, default 0
        L2 penalty ``λ``, added to the gradient.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).

    Attributes
    ----------
    m, u : StateView
        Read-only mappings Parameter -> first moment / infinity norm.
    """

    hyperparameters = {"lr": non_negative, "betas": betas, "eps": non_negative,
                       "weight_decay": non_negative, "maximize": flag}
    m = state_view("exp_avg", "Read-only mapping Parameter -> first moment estimate m.")
    u = state_view("exp_inf", "Read-only mapping Parameter -> infinity norm estimate u.")

    @accepts_aliases
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 *, maximize=False, contiguous=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_inf"] = xp.zeros_like(param)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adamax_update(param, grad, state["exp_avg"], state["exp_inf"], step=state["step"],
                      lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                      weight_decay=group["weight_decay"], maximize=group["maximize"],
                      scratch=self._scratch(param))
