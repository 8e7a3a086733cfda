r"""RMSprop: divide the gradient by a running root mean square of recent gradients.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \alpha \text{ (smoothing)},\ \theta_0,\ f(\theta),
     \ \lambda \text{ (weight decay)},\ \mu \text{ (momentum)},\ \epsilon,
     \ \text{centered},\ \text{maximize} \\
   & v_0 \leftarrow 0,\ \bar g_0 \leftarrow 0,\ b_0 \leftarrow 0 \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1}
     \qquad (- \text{ under maximize}) \\
   & \quad v_t \leftarrow \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
   & \quad \textbf{if centered: } \bar g_t \leftarrow \alpha \bar g_{t-1} + (1 - \alpha) g_t,
     \quad d_t \leftarrow \sqrt{v_t - \bar g_t^2} + \epsilon \\
   & \quad \textbf{else: } d_t \leftarrow \sqrt{v_t} + \epsilon \\
   & \quad \textbf{if } \mu > 0: \ b_t \leftarrow \mu b_{t-1} + g_t / d_t,
     \quad \theta_t \leftarrow \theta_{t-1} - \gamma b_t \\
   & \quad \textbf{else: } \theta_t \leftarrow \theta_{t-1} - \gamma g_t / d_t
   \end{aligned}

References: Hinton, Srivastava & Swersky, "Neural Networks for Machine Learning",
lecture 6e (Coursera, 2012), which introduced RMSprop; the centered variant and
the momentum on ``g/d`` are from Graves, "Generating Sequences With Recurrent
Neural Networks", 2013, arXiv:1308.0850 (eqs. 38-41, with ``ε`` inside the root).

Defaults as PyTorch: ``lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
momentum=0, centered=False, maximize=False``. ``ε`` is added *after* the square
root (Keras adds it inside). Weight decay is L2 (``λθ`` added to the gradient).
The centered variant subtracts the squared mean gradient, estimating a variance
rather than a second moment. Momentum accumulates the already normalised step
``g/d`` and starts from zero. State: ``step``, ``square_avg`` (``v``),
``momentum_buffer`` (``b``, when ``μ > 0``), ``grad_avg`` (``ḡ``, when centered).
Keras calls ``α`` ``rho``.
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, flag, non_negative, unit_interval
from ._kernels import descend_, effective_grad, moving_average_, scratch_like
from .adagrad import add_preconditioned_
from .optimizer import Optimizer

__all__ = ["RMSprop", "rmsprop_update"]


def rmsprop_update(param, grad, square_avg, *, lr, alpha, eps, weight_decay=0.0,
                   momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None,
                   maximize=False, scratch=None):
    """One RMSprop step on raw arrays, in place (``param`` and the state arrays).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    square_avg : ndarray
        The running mean ``v`` of the squared gradients (updated).
    lr, alpha, eps, weight_decay, momentum : float
        ``γ, α, ε, λ, μ`` of the algorithm box (``λ``: L2 weight decay).
    momentum_buffer : ndarray, optional
        The momentum ``b`` (updated); needed when ``momentum > 0``.
    centered : bool
        Normalise by the running variance; needs ``grad_avg``, the running mean
        ``ḡ`` of the gradients (updated).
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.
    """
    if momentum > 0 and momentum_buffer is None:
        raise ValueError("momentum > 0 needs the momentum_buffer array")
    if centered and grad_avg is None:
        raise ValueError("centered=True needs the grad_avg array")
    xp = get_array_module(param)
    theta, v, s = param, square_avg, scratch_like(param, scratch)
    g = effective_grad(grad, theta, weight_decay, maximize, out=s)  # g_t = ±∇f + λθ
    xp.multiply(g, g, out=s)
    moving_average_(v, s, alpha, out=s)               # v_t = α v + (1-α) g_t²
    if centered:
        g = effective_grad(grad, theta, weight_decay, maximize, out=s)  # (s used up: again)
        moving_average_(grad_avg, g, alpha, out=s)    # ḡ_t = α ḡ + (1-α) g_t

    def denominator(out):                             # d_t = √(v_t [- ḡ_t²]) + ε
        if centered:
            xp.multiply(grad_avg, grad_avg, out=out)
            xp.subtract(v, out, out=out)
            xp.sqrt(out, out=out)
        else:
            xp.sqrt(v, out=out)
        out += eps
        return out

    if momentum > 0:
        b = momentum_buffer
        b *= momentum
        add_preconditioned_(b, 1.0, grad, theta, weight_decay, maximize, denominator,
                            out=s)                    # b_t = μ b + g_t / d_t
        descend_(theta, b, lr, out=s)                 # θ_t = θ - γ b_t
    else:
        add_preconditioned_(theta, -lr, grad, theta, weight_decay, maximize, denominator,
                            out=s)                    # θ_t = θ - γ g_t / d_t
    return theta


class RMSprop(Optimizer):
    """RMSprop (Hinton; centered form by Graves, 2013); see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 1e-2
        Learning rate ``γ`` (alias ``learning_rate``).
    alpha : float, default 0.99
        Smoothing constant ``α`` of the running averages, ``0 <= α <= 1`` (Keras'
        ``rho``).
    eps : float, default 1e-8
        Added to the denominator after the square root (alias ``epsilon``).
    weight_decay : float, default 0
        L2 penalty ``λ``, added to the gradient.
    momentum : float, default 0
        Momentum ``μ >= 0`` on the normalised step.
    centered : bool, default False
        Normalise by the running variance of the gradient instead of its second
        moment.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).
    """

    hyperparameters = {"lr": non_negative, "alpha": unit_interval, "eps": non_negative,
                       "weight_decay": non_negative, "momentum": non_negative,
                       "centered": flag, "maximize": flag}

    @accepts_aliases
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, *, maximize=False, contiguous=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(param)
        # (created on demand, so a group may switch momentum or centering on later)
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = xp.zeros_like(param)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = xp.zeros_like(param)
        state["step"] += 1
        rmsprop_update(param, grad, state["square_avg"], lr=group["lr"],
                       alpha=group["alpha"], eps=group["eps"],
                       weight_decay=group["weight_decay"], momentum=group["momentum"],
                       momentum_buffer=state.get("momentum_buffer"),
                       centered=group["centered"], grad_avg=state.get("grad_avg"),
                       maximize=group["maximize"], scratch=self._scratch(param))
