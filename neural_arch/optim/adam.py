r"""Adam: adaptive moment estimation, with the AMSGrad variant.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \beta_1, \beta_2 \text{ (betas)},\ \theta_0,
     \ f(\theta),\ \lambda \text{ (weight decay)},\ \epsilon,\ \text{amsgrad},
     \ \text{maximize} \\
   & m_0 \leftarrow 0,\ v_0 \leftarrow 0,\ \hat v^{max}_0 \leftarrow 0 \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1}
     \qquad (- \text{ under maximize}) \\
   & \quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
   & \quad v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
   & \quad \textbf{if amsgrad: } v_t \leftarrow \hat v^{max}_t
     \leftarrow \max(\hat v^{max}_{t-1}, v_t) \\
   & \quad \theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
     \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}
   \end{aligned}

Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
arXiv:1412.6980; AMSGrad: Reddi, Kale & Kumar, "On the Convergence of Adam and
Beyond", ICLR 2018, arXiv:1904.09237.

Defaults as PyTorch: ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
amsgrad=False, maximize=False``. ``ε`` is added *after* the square root and its
bias correction, as in PyTorch (the paper's ``m̂ / (√v̂ + ε)``). Weight decay here
is L2: ``λθ`` is added to the gradient and so passes through the moments; for
decoupled decay use :class:`~neural_arch.optim.AdamW`. With AMSGrad the running
maximum is kept of the *uncorrected* ``v_t`` and bias-corrected afterwards, as
PyTorch does. State: ``step``, ``exp_avg`` (``m``), ``exp_avg_sq`` (``v``),
``max_exp_avg_sq`` (AMSGrad).

On a GPU the update runs as one fused CuPy kernel, :data:`ADAM_KERNEL` (shared
with AdamW), whose CUDA-C repeats :func:`adam_kernel` row for row; see
:mod:`neural_arch.optim.fused` and the ``fused`` argument.
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, betas, flag, non_negative, optional_flag
from ._kernels import (bias_correction, blocks, decoupled_weight_decay_, descend_,
                       effective_grad, lerp_, moving_average_, scratch_for)
from .fused import FusedKernel, FusedOptimizer, launch, placeholder, use_fused
from .optimizer import state_view

__all__ = ["Adam", "adam_update"]


def adam_update(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps,
                weight_decay=0.0, amsgrad=False, max_exp_avg_sq=None, maximize=False,
                scratch=None):
    """One Adam step on raw arrays, in place (``param`` and the moment arrays).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    exp_avg, exp_avg_sq : ndarray
        First and second moment estimates ``m, v`` (updated).
    step : int
        The 1-based step ``t`` (for the bias corrections).
    lr, beta1, beta2, eps, weight_decay : float
        ``γ, β1, β2, ε, λ`` of the algorithm box (``λ``: L2 weight decay).
    amsgrad : bool
        Normalize by the running maximum ``max_exp_avg_sq`` (updated) of ``v``.
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; when omitted, one is allocated (only
        block-sized for large arrays on the CPU, see :func:`._kernels.blocks`).
    """
    return adam_kernel(param, grad, exp_avg, exp_avg_sq, step=step, lr=lr, beta1=beta1,
                       beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                       max_exp_avg_sq=max_exp_avg_sq, maximize=maximize, scratch=scratch)


def adam_kernel(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps,
                weight_decay, amsgrad, max_exp_avg_sq, maximize, scratch,
                decoupled_weight_decay=0.0):
    """:func:`adam_update`, with AdamW's decoupled decay as an extra first row.

    Shared by Adam and AdamW so that the decay, too, runs block by block: as a
    separate pass it would stream a large parameter through memory once more.

    The last row is computed in the order of Kingma & Ba's Algorithm 1 remark
    (bias corrections folded into the step size and ``ε``)::

        γ/(1-β1^t) · m_t / (√v_t / √(1-β2^t) + ε)
            = γ√(1-β2^t)/(1-β1^t) · m_t / (√v_t + ε√(1-β2^t))

    which is the same number up to rounding with one pass fewer.
    """
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError("amsgrad=True needs the max_exp_avg_sq array")
    xp = get_array_module(param)
    bc1, bc2 = bias_correction(beta1, step), bias_correction(beta2, step)
    step_size, eps_hat = lr * bc2 ** 0.5 / bc1, eps * bc2 ** 0.5
    for theta, dtheta, m, v, v_max, s in blocks(param, grad, exp_avg, exp_avg_sq,
                                                max_exp_avg_sq, scratch=scratch):
        decoupled_weight_decay_(theta, lr, decoupled_weight_decay)  # θ = θ(1-γλ) (AdamW)
        g = effective_grad(dtheta, theta, weight_decay, maximize, out=s)  # g_t = ±∇f + λθ
        lerp_(m, g, 1 - beta1, out=s)                       # m_t = β1 m + (1-β1) g_t
        g = effective_grad(dtheta, theta, weight_decay, maximize, out=s)  # (s used up)
        xp.multiply(g, g, out=s)
        moving_average_(v, s, beta2, out=s)                 # v_t = β2 v + (1-β2) g_t²
        if amsgrad:
            xp.maximum(v_max, v, out=v_max)                 # v_max = max(v_max, v_t)
            v = v_max
        xp.sqrt(v, out=s)
        s += eps_hat                                        # √v_t + ε√(1-β2^t)
        xp.divide(m, s, out=s)
        descend_(theta, s, step_size, out=s)                # θ_t = θ - γ m̂_t/(√v̂_t + ε)
    return param


#: :func:`adam_kernel` as one fused CuPy kernel: the same rows, names and host-side
#: scalars (``step_size``, ``eps_hat``, ``1 - β``); ``decay = 1 - γλ`` for AdamW, 1 for Adam.
ADAM_KERNEL = FusedKernel(
    name="neural_arch_adam",
    in_params=("T grad, T decay, T weight_decay, T one_minus_beta1, T beta2, "
               "T one_minus_beta2, T eps_hat, T step_size, int32 amsgrad, int32 maximize"),
    out_params="T param, T exp_avg, T exp_avg_sq, raw T max_exp_avg_sq",
    operation=r"""
    param = param * decay;                                      // θ = θ(1-γλ) (AdamW)
    T g = effective_grad(grad, param, weight_decay, maximize);  // g_t = ±∇f + λθ
    exp_avg = lerp(exp_avg, g, one_minus_beta1);                // m_t = β1 m + (1-β1) g_t
    T v = moving_average(exp_avg_sq, g * g, beta2, one_minus_beta2);
    exp_avg_sq = v;                                             // v_t = β2 v + (1-β2) g_t²
    if (amsgrad) {
        v = maximum(max_exp_avg_sq[i], v);
        max_exp_avg_sq[i] = v;                                  // v_max = max(v_max, v_t)
    }
    T s = sqrt(v) + eps_hat;                                    // √v_t + ε√(1-β2^t)
    param = descend(param, exp_avg / s, step_size);             // θ_t = θ - γ m̂_t/(√v̂_t + ε)
    """)


def adam_fused(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps,
               weight_decay=0.0, amsgrad=False, max_exp_avg_sq=None, maximize=False,
               scratch=None, decoupled_weight_decay=0.0):
    """:func:`adam_kernel` as one launch of :data:`ADAM_KERNEL` (GPU arrays).

    Arguments as :func:`adam_kernel`; ``scratch`` is not needed and ignored. Without
    AMSGrad a one-element placeholder stands in for ``max_exp_avg_sq``.
    """
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError("amsgrad=True needs the max_exp_avg_sq array")
    bc1, bc2 = bias_correction(beta1, step), bias_correction(beta2, step)
    step_size, eps_hat = lr * bc2 ** 0.5 / bc1, eps * bc2 ** 0.5
    launch(ADAM_KERNEL, grad, 1 - lr * decoupled_weight_decay, weight_decay, 1 - beta1,
           beta2, 1 - beta2, eps_hat, step_size, int(amsgrad), int(maximize),
           param, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else placeholder(param))
    return param


class Adam(FusedOptimizer):
    """Adam (Kingma & Ba, 2015), optionally AMSGrad; see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 1e-3
        Learning rate ``γ`` (alias ``learning_rate``).
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the moment estimates (aliases ``beta1``/``beta2``,
        ``beta_1``/``beta_2``).
    eps : float, default 1e-8
        Added to the denominator after the square root (alias ``epsilon``).
    weight_decay : float, default 0
        L2 penalty ``λ``, added to the gradient.
    amsgrad : bool, default False
        Use the running maximum of the second moment (AMSGrad).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    fused : bool or None, default None
        GPU-only fast path: each update as one fused CuPy kernel
        (:mod:`neural_arch.optim.fused`). None uses it for CuPy float32/float64
        parameters (so without CuPy the NumPy kernel runs); False always runs the
        array-module kernel; True requires it (an error for any other parameter).
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).

    Attributes
    ----------
    m, v : StateView
        Read-only mappings Parameter -> first / second moment estimate.
    """

    hyperparameters = {"lr": non_negative, "betas": betas, "eps": non_negative,
                       "weight_decay": non_negative, "amsgrad": flag, "maximize": flag,
                       "fused": optional_flag}
    kernel = staticmethod(adam_update)
    fused_kernel = staticmethod(adam_fused)
    m = state_view("exp_avg", "Read-only mapping Parameter -> first moment estimate m.")
    v = state_view("exp_avg_sq", "Read-only mapping Parameter -> second moment estimate v.")

    @accepts_aliases
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, fused=None, contiguous=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, fused=fused)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        kernel = self.fused_kernel if use_fused(param, group) else self.kernel
        kernel(param, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"],
               lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
               weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
               max_exp_avg_sq=state.get("max_exp_avg_sq"), maximize=group["maximize"],
               scratch=scratch_for(self, param))
