r"""Adagrad: per-coordinate step sizes from the sum of all past squared gradients.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \theta_0,\ f(\theta),
     \ \lambda \text{ (weight decay)},\ \eta \text{ (lr decay)},\ \tau
     \text{ (initial accumulator value)},\ \epsilon,\ \text{maximize} \\
   & G_0 \leftarrow \tau \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1}
     \qquad (- \text{ under maximize}) \\
   & \quad \tilde\gamma \leftarrow \gamma / (1 + (t - 1)\eta) \\
   & \quad G_t \leftarrow G_{t-1} + g_t^2 \\
   & \quad \theta_t \leftarrow \theta_{t-1} - \tilde\gamma\, \frac{g_t}{\sqrt{G_t} + \epsilon}
   \end{aligned}

Reference: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online
Learning and Stochastic Optimization", JMLR 12 (2011), 2121-2159 (the diagonal
variant, no arXiv version).

Defaults as PyTorch: ``lr=1e-2, lr_decay=0, weight_decay=0,
initial_accumulator_value=0, eps=1e-10, maximize=False``. ``ε`` is added *after*
the square root. Weight decay is L2 (``λθ`` added to the gradient, so it is also
accumulated in ``G``). The learning-rate decay ``γ/(1 + (t-1)η)`` is PyTorch's
addition (the paper has a constant ``γ``). State: ``step`` and ``sum`` (``G``),
created at a parameter's first update from its group's
``initial_accumulator_value``. (PyTorch creates them in the constructor from the
constructor's value, so a group's own ``initial_accumulator_value`` is ignored
there; here it counts.)

:func:`add_preconditioned_` (``target += α g / d``, one term of ``g`` at a time)
is shared with RMSprop, whose denominator is a leaky version of Adagrad's.

On a GPU the update runs as one fused CuPy kernel, :data:`ADAGRAD_KERNEL`, whose
CUDA-C repeats :func:`adagrad_update` row for row (and
:data:`ADD_PRECONDITIONED`, the CUDA-C twin of :func:`add_preconditioned_`, is
shared with RMSprop's kernel); see :mod:`neural_arch.optim.fused` and the
``fused`` argument.
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, flag, non_negative, optional_flag
from ._kernels import descend_, effective_grad, scratch_like
from .fused import FusedKernel, FusedOptimizer, launch, use_fused

__all__ = ["Adagrad", "adagrad_update", "add_preconditioned_"]


def add_preconditioned_(target, alpha, grad, param, weight_decay, maximize, denominator,
                        out):
    """In place: ``target += α·g/d`` with ``g = ±grad + λ·param`` and ``d = denominator(out)``.

    ``g`` is never formed: the two terms of ``g/d`` are added one at a time, each
    with ``d`` written afresh into ``out`` by ``denominator(out)`` (cheap next to a
    second parameter-sized buffer), so ``out`` is the only work array. The ``λ``
    term goes first, so ``target`` may be ``param`` itself (``θ -= γ g/d``).
    """
    xp = get_array_module(target)
    if weight_decay != 0:
        xp.divide(param, denominator(out), out=out)
        descend_(target, out, -alpha * weight_decay, out=out)       # += α λθ / d
    xp.divide(grad, denominator(out), out=out)
    descend_(target, out, alpha if maximize else -alpha, out=out)   # += α (±∇f) / d
    return target


def preconditioned_scales(alpha, weight_decay, maximize):
    """The two step sizes of :func:`add_preconditioned_` (for its fused twin):
    ``(-α·λ, ∓α)``, the scales of the ``λθ/d`` and ``grad/d`` terms."""
    return -alpha * weight_decay, alpha if maximize else -alpha


#: CUDA-C twin of :func:`add_preconditioned_`: ``target += α g / d``, one term of ``g``
#: at a time, with the scales of :func:`preconditioned_scales` folded on the host.
ADD_PRECONDITIONED = r"""
template <typename T>
__device__ __forceinline__ T add_preconditioned(T target, T grad, T param, T weight_decay,
                                                T d, T decay_scale, T grad_scale) {
    if (weight_decay != T(0)) {
        target = descend(target, param / d, decay_scale);       // += α λθ / d
    }
    return descend(target, grad / d, grad_scale);               // += α (±∇f) / d
}
"""


def adagrad_update(param, grad, state_sum, *, step, lr, lr_decay=0.0, weight_decay=0.0,
                   eps=1e-10, maximize=False, scratch=None):
    """One Adagrad step on raw arrays, in place (``param`` and ``state_sum``).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    state_sum : ndarray
        The accumulated squared gradients ``G`` (updated).
    step : int
        The 1-based step ``t`` (for the learning-rate decay).
    lr, lr_decay, weight_decay, eps : float
        ``γ, η, λ, ε`` of the algorithm box (``λ``: L2 weight decay).
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.
    """
    xp = get_array_module(param)
    theta, G, s = param, state_sum, scratch_like(param, scratch)
    clr = lr / (1 + (step - 1) * lr_decay)                      # γ̃ = γ / (1 + (t-1)η)
    g = effective_grad(grad, theta, weight_decay, maximize, out=s)  # g_t = ±∇f + λθ
    xp.multiply(g, g, out=s)
    G += s                                                      # G_t = G + g_t²

    def std(out):                                               # √G_t + ε
        xp.sqrt(G, out=out)
        out += eps
        return out
    add_preconditioned_(theta, -clr, grad, theta, weight_decay, maximize, std, out=s)
    return theta                                                # θ_t = θ - γ̃ g_t/(√G_t + ε)


#: :func:`adagrad_update` as one fused CuPy kernel: the same rows, names and host-side
#: scalars (the scales of :func:`preconditioned_scales` with ``α = -γ̃``).
ADAGRAD_KERNEL = FusedKernel(
    name="neural_arch_adagrad",
    in_params="T grad, T weight_decay, T eps, T decay_scale, T grad_scale, int32 maximize",
    out_params="T param, T state_sum",
    operation=r"""
    T g = effective_grad(grad, param, weight_decay, maximize);  // g_t = ±∇f + λθ
    state_sum = state_sum + g * g;                              // G_t = G + g_t²
    T d = sqrt(state_sum) + eps;                                // d = √G_t + ε (std)
    param = add_preconditioned(param, grad, param, weight_decay, d, decay_scale,
                               grad_scale);                     // θ_t = θ - γ̃ g_t/(√G_t + ε)
    """,
    preamble=ADD_PRECONDITIONED)


def adagrad_fused(param, grad, state_sum, *, step, lr, lr_decay=0.0, weight_decay=0.0,
                  eps=1e-10, maximize=False, scratch=None):
    """:func:`adagrad_update` as one launch of :data:`ADAGRAD_KERNEL` (GPU arrays).

    Arguments as :func:`adagrad_update`; ``scratch`` is not needed and ignored.
    """
    clr = lr / (1 + (step - 1) * lr_decay)                      # γ̃ = γ / (1 + (t-1)η)
    decay_scale, grad_scale = preconditioned_scales(-clr, weight_decay, maximize)
    launch(ADAGRAD_KERNEL, grad, weight_decay, eps, decay_scale, grad_scale, int(maximize),
           param, state_sum)
    return param


class Adagrad(FusedOptimizer):
    """Adagrad (Duchi, Hazan & Singer, 2011); see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 1e-2
        Learning rate ``γ`` (alias ``learning_rate``).
    lr_decay : float, default 0
        ``η``: step ``t`` uses the rate ``γ / (1 + (t-1)η)``.
    weight_decay : float, default 0
        L2 penalty ``λ``, added to the gradient.
    initial_accumulator_value : float, default 0
        Starting value of every entry of the squared-gradient sum.
    eps : float, default 1e-10
        Added to the denominator after the square root (alias ``epsilon``).
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

    hyperparameters = {"lr": non_negative, "lr_decay": non_negative,
                       "weight_decay": non_negative, "initial_accumulator_value": non_negative,
                       "eps": non_negative, "maximize": flag, "fused": optional_flag}

    @accepts_aliases
    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, *, maximize=False,
                 fused=None, contiguous=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        maximize=maximize, fused=fused)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        if not state:
            state["step"] = 0
            state["sum"] = get_array_module(param).full_like(
                param, group["initial_accumulator_value"])
        state["step"] += 1
        update = adagrad_fused if use_fused(param, group) else adagrad_update
        update(param, grad, state["sum"], step=state["step"], lr=group["lr"],
               lr_decay=group["lr_decay"], weight_decay=group["weight_decay"],
               eps=group["eps"], maximize=group["maximize"], scratch=self._scratch(param))
