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

On a GPU the update runs as one fused CuPy kernel, :data:`SGD_KERNEL`, whose CUDA-C
repeats :func:`sgd_update` row for row; see :mod:`neural_arch.optim.fused` and the
``fused`` argument.
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, flag, non_negative, optional_flag, unit_interval
from ._kernels import blocks, descend_, effective_grad, scratch_for
from .fused import (FusedKernel, FusedOptimizer, check_new_group, launch, placeholder,
                    use_fused)

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


#: :func:`sgd_update` as one fused CuPy kernel: the same rows, names and host-side scalars
#: (``1 - τ``, ``γμ``). Without momentum a placeholder stands in for the buffer.
SGD_KERNEL = FusedKernel(
    name="neural_arch_sgd",
    in_params=("T grad, T lr, T momentum, T one_minus_dampening, T weight_decay, "
               "T lr_momentum, int32 has_momentum, int32 fresh_buffer, int32 nesterov, "
               "int32 maximize"),
    out_params="T param, raw T momentum_buffer",
    operation=r"""
    T g = effective_grad(grad, param, weight_decay, maximize);      // g_t = ±∇f + λθ
    if (has_momentum) {
        T b;
        if (fresh_buffer) {
            b = g;                                                  // b_1 = g_1
        } else {
            b = momentum_buffer[i] * momentum + g * one_minus_dampening;
        }                                                           // b_t = μ b + (1-τ) g_t
        momentum_buffer[i] = b;
        if (nesterov) {
            // θ_t = θ - γ (g_t + μ b_t), applied term by term
            param = descend(param, g, lr);
            param = descend(param, b, lr_momentum);
        } else {
            param = descend(param, b, lr);                          // θ_t = θ - γ b_t
        }
    } else {
        param = descend(param, g, lr);                              // θ_t = θ - γ g_t
    }
    """)


def sgd_fused(param, grad, momentum_buffer=None, *, lr, momentum=0.0, dampening=0.0,
              weight_decay=0.0, nesterov=False, maximize=False, fresh_buffer=False,
              scratch=None):
    """:func:`sgd_update` as one launch of :data:`SGD_KERNEL` (GPU arrays).

    Arguments as :func:`sgd_update`; ``scratch`` is not needed and ignored.
    """
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    has_momentum = momentum != 0
    if has_momentum and momentum_buffer is None:
        raise ValueError("momentum != 0 needs the momentum_buffer array")
    launch(SGD_KERNEL, grad, lr, momentum, 1 - dampening, weight_decay, lr * momentum,
           int(has_momentum), int(fresh_buffer), int(nesterov), int(maximize),
           param, momentum_buffer if has_momentum else placeholder(param))
    return param


class SGD(FusedOptimizer):
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
    fused : bool or None, default None
        GPU-only fast path: each update as one fused CuPy kernel
        (:mod:`neural_arch.optim.fused`). None uses it for CuPy float32/float64
        parameters (so without CuPy the NumPy kernel runs); False always runs the
        array-module kernel; True requires it (an error for any other parameter).
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).
    """

    hyperparameters = {"lr": non_negative, "momentum": non_negative,
                       "dampening": unit_interval, "weight_decay": non_negative,
                       "nesterov": flag, "maximize": flag, "fused": optional_flag}

    @accepts_aliases
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, fused=None, contiguous=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        fused=fused)
        super().__init__(params, defaults, contiguous=contiguous)

    def check_group(self, group):
        check_new_group(self, group)        # (no super(): LARS borrows this method)
        if group.get("nesterov") and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={group['momentum']}, "
                             f"dampening={group['dampening']})")

    def _update(self, param, grad, state, group):
        momentum = group["momentum"]
        fresh = momentum != 0 and "momentum_buffer" not in state
        if fresh:
            state["momentum_buffer"] = get_array_module(param).empty_like(param)
        update = sgd_fused if use_fused(param, group) else sgd_update
        update(param, grad, state.get("momentum_buffer"), lr=group["lr"], momentum=momentum,
               dampening=group["dampening"], weight_decay=group["weight_decay"],
               nesterov=group["nesterov"], maximize=group["maximize"], fresh_buffer=fresh,
               scratch=scratch_for(self, param))
