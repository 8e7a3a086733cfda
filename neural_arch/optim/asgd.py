r"""ASGD: averaged stochastic gradient descent (Polyak-Ruppert averaging).

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \lambda \text{ (lambd: decay term)},
     \ \alpha \text{ (power)},\ t_0 \text{ (start of averaging)},\ \theta_0,\ f(\theta),
     \ \omega \text{ (weight decay)},\ \text{maximize} \\
   & \eta_0 \leftarrow \gamma,\ \mu_0 \leftarrow 1,\ \bar\theta_0 \leftarrow 0 \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) + \omega\theta_{t-1}
     \qquad (- \text{ under maximize}) \\
   & \quad \theta_t \leftarrow \theta_{t-1}(1 - \lambda\eta_{t-1}) - \eta_{t-1} g_t \\
   & \quad \bar\theta_t \leftarrow \bar\theta_{t-1} + \mu_{t-1}(\theta_t - \bar\theta_{t-1})
     \qquad (\bar\theta_t = \theta_t \text{ while } \mu_{t-1} = 1) \\
   & \quad \eta_t \leftarrow \gamma / (1 + \lambda\gamma t)^\alpha \\
   & \quad \mu_t \leftarrow 1 / \max(1,\ t - t_0)
   \end{aligned}

References: Polyak & Juditsky, "Acceleration of Stochastic Approximation by
Averaging", SIAM J. Control Optim. 30(4), 1992; the step-size schedule
``γ/(1 + λγt)^α`` is the one Bottou recommends in "Large-Scale Machine Learning
with Stochastic Gradient Descent", COMPSTAT 2010 (no arXiv versions).

Defaults as PyTorch: ``lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6,
weight_decay=0, maximize=False``. The parameters follow plain SGD with a
decaying rate and the shrink ``θ(1 - λη)``; the average ``θ̄`` (state ``ax``)
is kept beside them and is what the method is named for: it is *not* copied into
the parameters (evaluate with ``optimizer.state[p]['ax']``). Averaging starts
after ``t0`` steps: ``θ̄_t = θ_t`` up to ``t = t0 + 2``, and from there on
``θ̄_t`` is the mean of ``θ_{t0+2}, ..., θ_t``. ``weight_decay`` ``ω`` is
L2 (``ωθ`` added to the gradient) and applies on top of ``λ``. No ``ε``. State:
``step``, ``eta`` (``η``), ``mu`` (``μ``), ``ax`` (``θ̄``); ``eta`` and ``mu``
are numbers (PyTorch keeps them as 0-d tensors).
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, flag, non_negative
from ._kernels import decoupled_weight_decay_, descend_, effective_grad, scratch_like
from .optimizer import Optimizer

__all__ = ["ASGD", "asgd_update", "asgd_schedule"]


def asgd_schedule(step, *, lr, lambd, alpha, t0):
    """``(η_t, μ_t)``: the step size and averaging weight after ``step`` steps."""
    eta = lr / ((1 + lambd * lr * step) ** alpha)               # η_t = γ / (1 + λγt)^α
    mu = 1 / max(1, step - t0)                                  # μ_t = 1 / max(1, t - t0)
    return eta, mu


def asgd_update(param, grad, ax, *, eta, mu, lambd, weight_decay=0.0, maximize=False,
                scratch=None):
    """One ASGD step on raw arrays, in place (``param`` and ``ax``).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    ax : ndarray
        The running average ``θ̄`` of the parameters (updated).
    eta, mu : float
        ``η_{t-1}, μ_{t-1}``: this step's step size and averaging weight (see
        :func:`asgd_schedule` for the next ones).
    lambd, weight_decay : float
        ``λ`` (shrink ``θ(1 - λη)``) and ``ω`` (L2 weight decay) of the box.
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.
    """
    xp = get_array_module(param)
    theta, s = param, scratch_like(param, scratch)
    g = effective_grad(grad, theta, weight_decay, maximize, out=s)  # g_t = ±∇f + ωθ
    decoupled_weight_decay_(theta, eta, lambd)                  # θ = θ (1 - λη)
    descend_(theta, g, eta, out=s)                              # θ_t = θ - η g_t
    if mu != 1:
        xp.subtract(theta, ax, out=s)
        s *= mu
        ax += s                                                 # θ̄_t = θ̄ + μ (θ_t - θ̄)
    else:
        xp.copyto(ax, theta)                                    # θ̄_t = θ_t
    return theta


class ASGD(Optimizer):
    """Averaged SGD (Polyak & Juditsky, 1992) in PyTorch's form; see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 1e-2
        Learning rate ``γ`` (alias ``learning_rate``).
    lambd : float, default 1e-4
        Decay term ``λ``: of the step size schedule and of the shrink ``θ(1 - λη)``.
    alpha : float, default 0.75
        Power ``α`` of the step size schedule.
    t0 : float, default 1e6
        Step after which averaging starts.
    weight_decay : float, default 0
        L2 penalty ``ω``, added to the gradient.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).
    """

    hyperparameters = {"lr": non_negative, "lambd": non_negative, "alpha": non_negative,
                       "t0": non_negative, "weight_decay": non_negative, "maximize": flag}

    @accepts_aliases
    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0,
                 *, maximize=False, contiguous=False):
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        if not state:
            state["step"] = 0
            state["eta"] = group["lr"]
            state["mu"] = 1.0
            state["ax"] = get_array_module(param).zeros_like(param)
        state["step"] += 1
        asgd_update(param, grad, state["ax"], eta=state["eta"], mu=state["mu"],
                    lambd=group["lambd"], weight_decay=group["weight_decay"],
                    maximize=group["maximize"], scratch=self._scratch(param))
        state["eta"], state["mu"] = asgd_schedule(state["step"], lr=group["lr"],
                                                  lambd=group["lambd"],
                                                  alpha=group["alpha"], t0=group["t0"])
