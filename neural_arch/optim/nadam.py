r"""NAdam: Adam with Nesterov momentum and Dozat's momentum schedule.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \beta_1, \beta_2 \text{ (betas)},\ \theta_0,
     \ f(\theta),\ \lambda \text{ (weight decay)},\ \epsilon,
     \ \psi \text{ (momentum decay)},\ \text{decoupled},\ \text{maximize} \\
   & m_0 \leftarrow 0,\ v_0 \leftarrow 0,\ \Pi_0 \leftarrow 1 \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1})
     \qquad (- \text{ under maximize}) \\
   & \quad \textbf{if decoupled: } \theta_{t-1} \leftarrow \theta_{t-1}(1 - \gamma\lambda)
     \quad \textbf{else: } g_t \leftarrow g_t + \lambda\theta_{t-1} \\
   & \quad \mu_t \leftarrow \beta_1 \big(1 - \tfrac12\, 0.96^{t\psi}\big),\quad
     \mu_{t+1} \leftarrow \beta_1 \big(1 - \tfrac12\, 0.96^{(t+1)\psi}\big) \\
   & \quad \Pi_t \leftarrow \Pi_{t-1}\,\mu_t \\
   & \quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
   & \quad v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
   & \quad d_t \leftarrow \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
   & \quad \theta_t \leftarrow \theta_{t-1}
     - \gamma\,\frac{1 - \mu_t}{1 - \Pi_t}\,\frac{g_t}{d_t}
     - \gamma\,\frac{\mu_{t+1}}{1 - \Pi_t\,\mu_{t+1}}\,\frac{m_t}{d_t}
   \end{aligned}

Reference: Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop
(no arXiv id); the momentum schedule ``μ_t`` is the paper's, with ``ψ = 0.004``.
Decoupled weight decay: Loshchilov & Hutter, arXiv:1711.05101 (NAdamW).

Defaults as PyTorch: ``lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False``. ``ε`` is
added after the square root of the bias-corrected ``v̂_t``, as in PyTorch. Weight
decay is L2 (``λθ`` added to the gradient) unless ``decoupled_weight_decay``,
which shrinks ``θ`` by ``1 - γλ`` before the step, as AdamW does. The product
``Π_t`` of the momentum schedule is kept in the state as ``mu_product`` (a
number), next to ``step``, ``exp_avg`` (``m``) and ``exp_avg_sq`` (``v``).
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, betas, flag, non_negative
from ._kernels import (bias_correction, decoupled_weight_decay_, descend_, effective_grad,
                       moving_average_, scratch_like)
from .optimizer import Optimizer, state_view

__all__ = ["NAdam", "nadam_update", "nadam_momentum"]


def nadam_momentum(beta1, momentum_decay, step):
    """``μ_t = β1 (1 - ½·0.96^(tψ))``: the momentum coefficient of step ``t``."""
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


def _denominator(v, bc2, eps, out):
    """``d_t = √(v_t / (1 - β2^t)) + ε`` into ``out``."""
    xp = get_array_module(v)
    xp.divide(v, bc2, out=out)
    xp.sqrt(out, out=out)
    out += eps
    return out


def nadam_update(param, grad, exp_avg, exp_avg_sq, *, step, mu_product, lr, beta1, beta2,
                 eps, weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False,
                 maximize=False, scratch=None):
    """One NAdam step on raw arrays, in place; returns the new ``mu_product``.

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    exp_avg, exp_avg_sq : ndarray
        First and second moment estimates ``m, v`` (updated).
    step : int
        The 1-based step ``t``.
    mu_product : float
        ``Π_{t-1}``, the product of the momentum coefficients of the earlier steps
        (1 before the first step).
    lr, beta1, beta2, eps, weight_decay, momentum_decay : float
        ``γ, β1, β2, ε, λ, ψ`` of the algorithm box.
    decoupled_weight_decay : bool
        Shrink ``θ`` by ``1 - γλ`` instead of adding ``λθ`` to the gradient.
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.

    Returns
    -------
    float
        ``Π_t``, to be stored as the new ``mu_product``.
    """
    xp = get_array_module(param)
    theta, m, v, s = param, exp_avg, exp_avg_sq, scratch_like(param, scratch)
    l2 = weight_decay
    if decoupled_weight_decay:
        decoupled_weight_decay_(theta, lr, weight_decay)         # θ = θ (1 - γλ)
        l2 = 0.0
    mu = nadam_momentum(beta1, momentum_decay, step)             # μ_t
    mu_next = nadam_momentum(beta1, momentum_decay, step + 1)    # μ_{t+1}
    mu_product = mu_product * mu                                 # Π_t = Π_{t-1} μ_t
    g = effective_grad(grad, theta, l2, maximize, out=s)         # g_t = ±∇f (+ λθ)
    moving_average_(m, g, beta1, out=s)                          # m_t = β1 m + (1-β1) g_t
    g = effective_grad(grad, theta, l2, maximize, out=s)         # (s was used up: again)
    xp.multiply(g, g, out=s)
    moving_average_(v, s, beta2, out=s)                          # v_t = β2 v + (1-β2) g_t²
    bc2 = bias_correction(beta2, step)
    step_g = lr * (1.0 - mu) / (1.0 - mu_product)
    step_m = lr * mu_next / (1.0 - mu_product * mu_next)
    # θ_t = θ - step_g g_t / d_t - step_m m_t / d_t, one term at a time so that the single
    # scratch array suffices (d_t is recomputed for each; the L2 term λθ_{t-1}/d_t of g_t
    # goes first, while θ is still θ_{t-1}).
    if l2 != 0:
        xp.divide(theta, _denominator(v, bc2, eps, out=s), out=s)
        descend_(theta, s, step_g * l2, out=s)                   # θ -= step_g λθ / d_t
    xp.divide(grad, _denominator(v, bc2, eps, out=s), out=s)
    descend_(theta, s, -step_g if maximize else step_g, out=s)   # θ -= step_g (±∇f) / d_t
    xp.divide(m, _denominator(v, bc2, eps, out=s), out=s)
    descend_(theta, s, step_m, out=s)                            # θ -= step_m m_t / d_t
    return mu_product


class NAdam(Optimizer):
    """NAdam (Dozat, 2016), optionally with decoupled weight decay; see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 2e-3
        Learning rate ``γ`` (alias ``learning_rate``).
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the moment estimates (aliases ``beta1``/``beta2``,
        ``beta_1``/``beta_2``).
    eps : float, default 1e-8
        Added to the denominator after the square root (alias ``epsilon``).
    weight_decay : float, default 0
        Weight decay ``λ``: L2 (added to the gradient) or decoupled, see below.
    momentum_decay : float, default 4e-3
        ``ψ`` of the momentum schedule ``μ_t = β1 (1 - ½·0.96^(tψ))``.
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
                       "weight_decay": non_negative, "momentum_decay": non_negative,
                       "decoupled_weight_decay": flag, "maximize": flag}
    m = state_view("exp_avg", "Read-only mapping Parameter -> first moment estimate m.")
    v = state_view("exp_avg_sq", "Read-only mapping Parameter -> second moment estimate v.")

    @accepts_aliases
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, maximize=False,
                 contiguous=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        if not state:
            state["step"] = 0
            state["mu_product"] = 1.0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        state["mu_product"] = nadam_update(
            param, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"],
            mu_product=state["mu_product"], lr=group["lr"], beta1=beta1, beta2=beta2,
            eps=group["eps"], weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"], scratch=self._scratch(param))

    def _load_value(self, key, value, param, index):
        if key == "mu_product":          # a number, even when saved as a 0-d array
            return float(value)
        return super()._load_value(key, value, param, index)
