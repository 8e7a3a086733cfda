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

On a GPU the update runs as one fused CuPy kernel, :data:`RMSPROP_KERNEL`, whose
CUDA-C repeats :func:`rmsprop_update` row for row; see
:mod:`neural_arch.optim.fused` and the ``fused`` argument.
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, flag, non_negative, optional_flag, unit_interval
from ._kernels import descend_, effective_grad, moving_average_, scratch_like
from .adagrad import ADD_PRECONDITIONED, add_preconditioned_, preconditioned_scales
from .fused import FusedKernel, FusedOptimizer, launch, placeholder, use_fused

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


#: :func:`rmsprop_update` as one fused CuPy kernel: the same rows, names and host-side
#: scalars (``1 - α``; the scales of :func:`~.adagrad.preconditioned_scales` with the
#: NumPy kernel's ``α``: 1 with momentum, ``-γ`` without). Placeholders stand in for the
#: momentum buffer and ``grad_avg`` when momentum or centering is off.
RMSPROP_KERNEL = FusedKernel(
    name="neural_arch_rmsprop",
    in_params=("T grad, T lr, T alpha, T one_minus_alpha, T eps, T weight_decay, "
               "T momentum, T decay_scale, T grad_scale, int32 has_momentum, "
               "int32 centered, int32 maximize"),
    out_params="T param, T square_avg, raw T momentum_buffer, raw T grad_avg",
    operation=r"""
    T g = effective_grad(grad, param, weight_decay, maximize);  // g_t = ±∇f + λθ
    square_avg = moving_average(square_avg, g * g, alpha, one_minus_alpha);
                                                                // v_t = α v + (1-α) g_t²
    T d;                                                        // d_t = √(v_t [- ḡ_t²]) + ε
    if (centered) {
        T avg = moving_average(grad_avg[i], g, alpha, one_minus_alpha);
        grad_avg[i] = avg;                                      // ḡ_t = α ḡ + (1-α) g_t
        d = sqrt(square_avg - avg * avg) + eps;
    } else {
        d = sqrt(square_avg) + eps;
    }
    if (has_momentum) {
        T b = momentum_buffer[i] * momentum;
        b = add_preconditioned(b, grad, param, weight_decay, d, decay_scale, grad_scale);
        momentum_buffer[i] = b;                                 // b_t = μ b + g_t / d_t
        param = descend(param, b, lr);                          // θ_t = θ - γ b_t
    } else {
        param = add_preconditioned(param, grad, param, weight_decay, d, decay_scale,
                                   grad_scale);                 // θ_t = θ - γ g_t / d_t
    }
    """,
    preamble=ADD_PRECONDITIONED)


def rmsprop_fused(param, grad, square_avg, *, lr, alpha, eps, weight_decay=0.0,
                  momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None,
                  maximize=False, scratch=None):
    """:func:`rmsprop_update` as one launch of :data:`RMSPROP_KERNEL` (GPU arrays).

    Arguments as :func:`rmsprop_update`; ``scratch`` is not needed and ignored.
    """
    if momentum > 0 and momentum_buffer is None:
        raise ValueError("momentum > 0 needs the momentum_buffer array")
    if centered and grad_avg is None:
        raise ValueError("centered=True needs the grad_avg array")
    has_momentum = momentum > 0
    decay_scale, grad_scale = preconditioned_scales(1.0 if has_momentum else -lr,
                                                    weight_decay, maximize)
    launch(RMSPROP_KERNEL, grad, lr, alpha, 1 - alpha, eps, weight_decay, momentum,
           decay_scale, grad_scale, int(has_momentum), int(centered), int(maximize),
           param, square_avg, momentum_buffer if has_momentum else placeholder(param),
           grad_avg if centered else placeholder(param))
    return param


class RMSprop(FusedOptimizer):
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
    fused : bool or None, default None
        GPU-only fast path: each update as one fused CuPy kernel
        (:mod:`neural_arch.optim.fused`). None uses it for CuPy float32/float64
        parameters (so without CuPy the NumPy kernel runs); False always runs the
        array-module kernel; True requires it (an error for any other parameter).
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).
    """

    hyperparameters = {"lr": non_negative, "alpha": unit_interval, "eps": non_negative,
                       "weight_decay": non_negative, "momentum": non_negative,
                       "centered": flag, "maximize": flag, "fused": optional_flag}

    @accepts_aliases
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, *, maximize=False, fused=None,
                 contiguous=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize, fused=fused)
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
        update = rmsprop_fused if use_fused(param, group) else rmsprop_update
        update(param, grad, state["square_avg"], lr=group["lr"], alpha=group["alpha"],
               eps=group["eps"], weight_decay=group["weight_decay"],
               momentum=group["momentum"], momentum_buffer=state.get("momentum_buffer"),
               centered=group["centered"], grad_avg=state.get("grad_avg"),
               maximize=group["maximize"], scratch=self._scratch(param))
