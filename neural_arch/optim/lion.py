r"""Lion: evolved sign momentum.

.. math::

   \begin{aligned}
   & \textbf{input: } \eta \text{ (lr)},\ \beta_1, \beta_2 \text{ (betas)},\ \theta_0,
     \ f(\theta),\ \lambda \text{ (weight decay)},\ \text{maximize} \\
   & m_0 \leftarrow 0 \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_\theta f_t(\theta_{t-1})
     \qquad (- \text{ under maximize}) \\
   & \quad c_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
   & \quad \theta_t \leftarrow \theta_{t-1}
     - \eta\,\big(\operatorname{sign}(c_t) + \lambda\theta_{t-1}\big) \\
   & \quad m_t \leftarrow \beta_2 m_{t-1} + (1 - \beta_2) g_t
   \end{aligned}

Reference: Chen, Liang, Huang, Real, Wang, Liu, Pham, Dong, Luong, Hsieh, Lu &
Le, "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023,
arXiv:2302.06675 (Algorithm 2).

Defaults as the paper's code and pytorch-optimizer: ``lr=1e-4, betas=(0.9, 0.99),
weight_decay=0, maximize=False``. There is no ``ε``: the update is the sign of
the interpolation ``c_t`` (``sign(0) = 0``), so every coordinate moves by
exactly ``η`` (plus decay). Weight decay is decoupled and scaled by the learning
rate, as in the paper: ``θ ← θ(1 - ηλ)`` (pytorch-optimizer's default,
``weight_decouple=True, fixed_decay=False``); because the sign step has norm
``η√n`` whatever the gradient, the paper advises a ``λ`` 3-10x larger than
AdamW's. The interpolation ``c_t`` uses ``β1`` and the stored momentum uses
``β2``: ``β2 > β1`` gives the current gradient more weight in the step than in
the memory. State: ``exp_avg`` (``m``) only; Lion has no step counter.

On a GPU the update runs as one fused CuPy kernel, :data:`LION_KERNEL`, whose CUDA-C
repeats :func:`lion_update` row for row; see :mod:`neural_arch.optim.fused` and the
``fused`` argument.
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, betas, flag, non_negative, optional_flag
from ._kernels import (decoupled_weight_decay_, descend_, effective_grad, moving_average_,
                       scratch_like)
from .fused import FusedKernel, FusedOptimizer, launch, use_fused
from .optimizer import state_view

__all__ = ["Lion", "lion_update"]


def lion_update(param, grad, exp_avg, *, lr, beta1, beta2, weight_decay=0.0,
                maximize=False, scratch=None):
    """One Lion step on raw arrays, in place (``param`` and ``exp_avg``).

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only).
    exp_avg : ndarray
        The momentum ``m`` (updated).
    lr, beta1, beta2, weight_decay : float
        ``η, β1, β2, λ`` of the algorithm box (``λ``: decoupled, lr-scaled decay).
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.
    """
    xp = get_array_module(param)
    theta, m, s = param, exp_avg, scratch_like(param, scratch)
    g = effective_grad(grad, theta, 0.0, maximize, out=s)       # g_t = ±∇f
    # c_t = β1 m + (1-β1) g_t, written m + (1-β1)(g_t - m) to need no second scratch
    xp.subtract(g, m, out=s)
    s *= 1 - beta1
    s += m
    xp.sign(s, out=s)
    decoupled_weight_decay_(theta, lr, weight_decay)             # θ = θ (1 - ηλ)
    descend_(theta, s, lr, out=s)                                # θ_t = θ - η sign(c_t)
    g = effective_grad(grad, theta, 0.0, maximize, out=s)
    moving_average_(m, g, beta2, out=s)                          # m_t = β2 m + (1-β2) g_t
    return theta


#: :func:`lion_update` as one fused CuPy kernel: the same rows, names and host-side scalars
#: (``1 - β``, ``decay = 1 - ηλ``).
LION_KERNEL = FusedKernel(
    name="neural_arch_lion",
    in_params=("T grad, T lr, T one_minus_beta1, T beta2, T one_minus_beta2, T decay, "
               "int32 maximize"),
    out_params="T param, T exp_avg",
    operation=r"""
    T g = effective_grad(grad, param, T(0), maximize);          // g_t = ±∇f
    T c = lerp(exp_avg, g, one_minus_beta1);                    // c_t = β1 m + (1-β1) g_t
    param = param * decay;                                      // θ = θ (1 - ηλ)
    param = descend(param, sign(c), lr);                        // θ_t = θ - η sign(c_t)
    exp_avg = moving_average(exp_avg, g, beta2, one_minus_beta2);   // m_t = β2 m + (1-β2) g_t
    """)


def lion_fused(param, grad, exp_avg, *, lr, beta1, beta2, weight_decay=0.0,
               maximize=False, scratch=None):
    """:func:`lion_update` as one launch of :data:`LION_KERNEL` (GPU arrays).

    Arguments as :func:`lion_update`; ``scratch`` is not needed and ignored.
    """
    launch(LION_KERNEL, grad, lr, 1 - beta1, beta2, 1 - beta2, 1 - lr * weight_decay,
           int(maximize), param, exp_avg)
    return param


class Lion(FusedOptimizer):
    """Lion (Chen et al., 2023), sign momentum; see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
    lr : float, default 1e-4
        Learning rate ``η`` (alias ``learning_rate``); each coordinate moves by
        ``η`` per step, so it is usually 3-10x smaller than AdamW's.
    betas : (float, float), default (0.9, 0.99)
        ``β1`` interpolates the step direction, ``β2`` decays the momentum
        (aliases ``beta1``/``beta2``, ``beta_1``/``beta_2``).
    weight_decay : float, default 0
        Decoupled decay ``λ``: each step multiplies the parameters by ``1 - lr·λ``.
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
    m : StateView
        Read-only mapping Parameter -> momentum.
    """

    hyperparameters = {"lr": non_negative, "betas": betas, "weight_decay": non_negative,
                       "maximize": flag, "fused": optional_flag}
    m = state_view("exp_avg", "Read-only mapping Parameter -> momentum m.")

    @accepts_aliases
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *,
                 maximize=False, fused=None, contiguous=False):
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize,
                        fused=fused)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        if not state:
            state["exp_avg"] = get_array_module(param).zeros_like(param)
        beta1, beta2 = group["betas"]
        update = lion_fused if use_fused(param, group) else lion_update
        update(param, grad, state["exp_avg"], lr=group["lr"], beta1=beta1, beta2=beta2,
               weight_decay=group["weight_decay"], maximize=group["maximize"],
               scratch=self._scratch(param))
