r"""LAMB: layer-wise adaptive moments, Adam steps scaled per tensor by a trust ratio.

.. math::

   \begin{aligned}
   & \textbf{input: } \eta \text{ (lr)},\ \beta_1, \beta_2 \text{ (betas)},\ x_0,
     \ f(x),\ \lambda \text{ (weight decay)},\ \epsilon,\ \text{maximize};
     \text{ each parameter tensor } x^{(i)} \text{ is a layer} \\
   & m_0 \leftarrow 0,\ v_0 \leftarrow 0 \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_x f_t(x_{t-1})
     \qquad (- \text{ under maximize}) \\
   & \quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
   & \quad v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
   & \quad \hat m_t \leftarrow m_t / (1 - \beta_1^t),\quad
     \hat v_t \leftarrow v_t / (1 - \beta_2^t)
     \qquad (\text{only with bias\_correction}) \\
   & \quad r_t \leftarrow \hat m_t / (\sqrt{\hat v_t} + \epsilon) \\
   & \quad u_t^{(i)} \leftarrow r_t^{(i)} + \lambda x_{t-1}^{(i)} \\
   & \quad \tau_t^{(i)} \leftarrow \phi(\|x_{t-1}^{(i)}\|) / \|u_t^{(i)}\|
     \quad (1 \text{ if either norm is } 0),\qquad \phi(z) = z \\
   & \quad x_t^{(i)} \leftarrow x_{t-1}^{(i)} - \eta\, \tau_t^{(i)} u_t^{(i)}
   \end{aligned}

Reference: You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer &
Hsieh, "Large Batch Optimization for Deep Learning: Training BERT in 76
minutes", ICLR 2020, arXiv:1904.00962 (Algorithm 2).

Defaults: ``lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0,
bias_correction=True, maximize=False``. The scaling function ``φ`` is the
identity and the trust ratio is 1 when ``‖x‖`` or ``‖u‖`` is 0 (the convention of
the authors' code); ``ε`` is added after the square root, inside ``r_t`` only.
Weight decay ``λθ`` is added to the Adam direction *before* the trust ratio is
taken (so it is neither L2 in the moments nor AdamW's separate shrink).

Bias correction: the algorithm box of the published paper (arXiv v5, ICLR 2020)
debiases both moments, and that is the default. The box of arXiv v3 has no bias
correction, and implementations written from it (pytorch-lamb, pytorch-optimizer's
``Lamb``) skip it: ``bias_correction=False`` gives that form. Without weight
decay and with ``ε → 0`` the two coincide, since the trust ratio normalises away
any scaling of ``r_t``.

pytorch-optimizer's ``Lamb`` differs from this box in its defaults: weight decay
decoupled (``weight_decouple=True``), the step multiplied by ``1 / (1 - β1^t)``
outside the trust ratio (unless ``adam_debias=True``), ``ε`` also added to
``‖u‖`` in the trust ratio, and ``φ(z) = min(z, 10)``.

LAMB is not elementwise (``elementwise = False``): in contiguous mode each
tensor is still updated on its own, on views into the flat buffers. State:
``step``, ``exp_avg`` (``m``), ``exp_avg_sq`` (``v``).

On a GPU the elementwise rows (the moments and ``u_t``) run as one fused CuPy
kernel, :data:`LAMB_KERNEL`, whose CUDA-C repeats :func:`lamb_update` row for
row; the two norms of the trust ratio are CuPy reductions and the final step one
more pass. See :mod:`neural_arch.optim.fused` and the ``fused`` argument.
"""
from __future__ import annotations

import math

from ..backend import get_array_module
from ._args import accepts_aliases, betas, flag, non_negative, optional_flag
from ._kernels import (bias_correction as debias, descend_, effective_grad,
                       moving_average_, scratch_like)
from .fused import FusedKernel, FusedOptimizer, launch, use_fused
from .optimizer import state_view

__all__ = ["LAMB", "lamb_update", "trust_ratio"]


def trust_ratio(param_norm, update_norm):
    """``τ = φ(‖x‖) / ‖u‖`` with ``φ`` the identity, and 1 when either norm is 0."""
    if param_norm == 0 or update_norm == 0:
        return 1.0
    return param_norm / update_norm


def lamb_update(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps,
                weight_decay=0.0, bias_correction=True, maximize=False, scratch=None):
    """One LAMB step of one layer (parameter tensor) on raw arrays, in place.

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only) of one layer: the
        trust ratio is taken over the whole array.
    exp_avg, exp_avg_sq : ndarray
        First and second moment estimates ``m, v`` (updated).
    step : int
        The 1-based step ``t`` (for the bias corrections).
    lr, beta1, beta2, eps, weight_decay : float
        ``η, β1, β2, ε, λ`` of the algorithm box.
    bias_correction : bool
        Debias ``m`` and ``v`` (paper v5); False gives the v3 form.
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.
    """
    xp = get_array_module(param)
    x, m, v, s = param, exp_avg, exp_avg_sq, scratch_like(param, scratch)
    g = effective_grad(grad, x, 0.0, maximize, out=s)            # g_t = ±∇f
    moving_average_(m, g, beta1, out=s)                          # m_t = β1 m + (1-β1) g_t
    g = effective_grad(grad, x, 0.0, maximize, out=s)            # (s was used up: again)
    xp.multiply(g, g, out=s)
    moving_average_(v, s, beta2, out=s)                          # v_t = β2 v + (1-β2) g_t²
    bc1, bc2 = (debias(beta1, step), debias(beta2, step)) if bias_correction else (1.0, 1.0)
    xp.sqrt(v, out=s)
    s /= math.sqrt(bc2)
    s += eps                                                     # √v̂_t + ε
    xp.divide(m, s, out=s)
    s /= bc1                                                     # r_t = m̂_t / (√v̂_t + ε)
    scale = 1.0                                                  # u_t = scale · s
    if weight_decay != 0:
        # u_t = r_t + λx = λ (r_t / λ + x): the scratch holds u_t / λ, so that no second
        # parameter-sized array is needed.
        s /= weight_decay
        s += x
        scale = weight_decay
    return trust_ratio_step_(x, s, scale, lr)


def trust_ratio_step_(x, s, scale, lr):
    """The last rows of :func:`lamb_update`, in place: ``x -= η τ u_t`` with ``u_t = scale·s``.

    ``s`` is used up.
    """
    xp = get_array_module(x)
    tau = trust_ratio(float(xp.linalg.norm(x)),                  # τ = ‖x‖ / ‖u_t‖
                      scale * float(xp.linalg.norm(s)))
    descend_(x, s, lr * tau * scale, out=s)                      # x_t = x - η τ u_t
    return x


#: The elementwise rows of :func:`lamb_update` as one fused CuPy kernel, writing ``u_t``
#: (divided by ``λ`` when ``λ != 0``) into ``update``: the same rows, names and host-side
#: scalars (``1 - β``, ``√(1-β2^t)``, ``1 - β1^t``; both 1 without bias correction).
LAMB_KERNEL = FusedKernel(
    name="neural_arch_lamb",
    in_params=("T param, T grad, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, "
               "T sqrt_bc2, T bc1, T eps, T weight_decay, int32 maximize"),
    out_params="T exp_avg, T exp_avg_sq, T update",
    operation=r"""
    T g = effective_grad(grad, param, T(0), maximize);          // g_t = ±∇f
    exp_avg = moving_average(exp_avg, g, beta1, one_minus_beta1);   // m_t = β1 m + (1-β1) g_t
    exp_avg_sq = moving_average(exp_avg_sq, g * g, beta2, one_minus_beta2);
                                                                // v_t = β2 v + (1-β2) g_t²
    T s = sqrt(exp_avg_sq) / sqrt_bc2 + eps;                    // √v̂_t + ε
    s = exp_avg / s / bc1;                                      // r_t = m̂_t / (√v̂_t + ε)
    if (weight_decay != T(0)) {
        s = s / weight_decay + param;                           // u_t / λ = r_t / λ + x
    }
    update = s;
    """)


def lamb_fused(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps,
               weight_decay=0.0, bias_correction=True, maximize=False, scratch=None):
    """:func:`lamb_update` with its elementwise rows as one launch of :data:`LAMB_KERNEL`.

    Arguments as :func:`lamb_update` (GPU arrays); ``u_t`` goes into ``scratch``
    (allocated when omitted), then the trust ratio is taken as in :func:`lamb_update`.
    """
    s = scratch_like(param, scratch)
    bc1, bc2 = (debias(beta1, step), debias(beta2, step)) if bias_correction else (1.0, 1.0)
    launch(LAMB_KERNEL, param, grad, beta1, 1 - beta1, beta2, 1 - beta2, math.sqrt(bc2), bc1,
           eps, weight_decay, int(maximize), exp_avg, exp_avg_sq, s)
    return trust_ratio_step_(param, s, weight_decay if weight_decay != 0 else 1.0, lr)


class LAMB(FusedOptimizer):
    """LAMB (You et al., 2020), Adam with per-layer trust ratios; see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
        Each parameter tensor is one layer of the trust ratio.
    lr : float, default 1e-3
        Learning rate ``η`` (alias ``learning_rate``).
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the moment estimates (aliases ``beta1``/``beta2``,
        ``beta_1``/``beta_2``).
    eps : float, default 1e-6
        Added to the denominator after the square root (alias ``epsilon``).
    weight_decay : float, default 0
        ``λ``: ``λx`` is added to the Adam direction before the trust ratio.
    bias_correction : bool, default True
        Debias the moment estimates (paper v5); False for the v3 form.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    fused : bool or None, default None
        GPU-only fast path: the elementwise rows of each update as one fused CuPy
        kernel (:mod:`neural_arch.optim.fused`), the trust ratio's norms as CuPy
        reductions. None uses it for CuPy float32/float64 parameters (so without
        CuPy the NumPy kernel runs); False always runs the array-module kernel;
        True requires it (an error for any other parameter).
    contiguous : bool, default False
        Flat buffers (:mod:`neural_arch.optim.contiguous`); the update still runs
        per tensor since the trust ratio is per tensor.

    Attributes
    ----------
    m, v : StateView
        Read-only mappings Parameter -> first / second moment estimate.
    """

    hyperparameters = {"lr": non_negative, "betas": betas, "eps": non_negative,
                       "weight_decay": non_negative, "bias_correction": flag,
                       "maximize": flag, "fused": optional_flag}
    elementwise = False
    m = state_view("exp_avg", "Read-only mapping Parameter -> first moment estimate m.")
    v = state_view("exp_avg_sq", "Read-only mapping Parameter -> second moment estimate v.")

    @accepts_aliases
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0,
                 bias_correction=True, *, maximize=False, fused=None, contiguous=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        bias_correction=bias_correction, maximize=maximize, fused=fused)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        update = lamb_fused if use_fused(param, group) else lamb_update
        update(param, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"],
               lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
               weight_decay=group["weight_decay"], bias_correction=group["bias_correction"],
               maximize=group["maximize"], scratch=self._scratch(param))
