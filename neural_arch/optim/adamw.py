r"""AdamW: Adam with decoupled weight decay.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \beta_1, \beta_2,\ \theta_0,\ f(\theta),
     \ \lambda \text{ (weight decay)},\ \epsilon,\ \text{amsgrad},\ \text{maximize} \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad \theta_{t-1} \leftarrow \theta_{t-1} (1 - \gamma\lambda)
     \qquad \text{(decoupled decay, before the gradient step)} \\
   & \quad \theta_t \leftarrow \text{Adam step from } \theta_{t-1}
     \text{ with } g_t = \pm\nabla_\theta f_t(\theta_{t-1}) \text{ and no L2 term}
   \end{aligned}

Reference: Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
arXiv:1711.05101.

Defaults as PyTorch: ``lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
amsgrad=False, maximize=False``. The decay is multiplied by the learning rate
(``θ ← θ(1 - γλ)``), as in PyTorch and optax; the paper's schedule multiplier
``η_t`` is the learning-rate schedule itself. The gradient the moments see
holds no weight-decay term. ``ε`` sits as in :mod:`~neural_arch.optim.adam`.
State: as Adam. On a GPU the update runs as Adam's fused kernel
(:data:`~neural_arch.optim.adam.ADAM_KERNEL`), with the decay as its first row.
"""
from __future__ import annotations

from ._args import accepts_aliases
from .adam import Adam, adam_fused, adam_kernel

__all__ = ["AdamW", "adamw_update"]


def adamw_update(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps,
                 weight_decay=1e-2, amsgrad=False, max_exp_avg_sq=None, maximize=False,
                 scratch=None):
    """One AdamW step on raw arrays, in place: decoupled decay, then the Adam step.

    Arguments as :func:`~neural_arch.optim.adam.adam_update`, except that
    ``weight_decay`` is the decoupled rate ``λ`` (``θ ← θ(1 - lr·λ)``).
    """
    # θ = θ (1 - γλ), then Adam's rows without the L2 term (block by block, in one kernel)
    return adam_kernel(param, grad, exp_avg, exp_avg_sq, step=step, lr=lr, beta1=beta1,
                       beta2=beta2, eps=eps, weight_decay=0.0, amsgrad=amsgrad,
                       max_exp_avg_sq=max_exp_avg_sq, maximize=maximize, scratch=scratch,
                       decoupled_weight_decay=weight_decay)


def adamw_fused(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps,
                weight_decay=1e-2, amsgrad=False, max_exp_avg_sq=None, maximize=False,
                scratch=None):
    """:func:`adamw_update` as one launch of Adam's fused kernel (GPU arrays)."""
    return adam_fused(param, grad, exp_avg, exp_avg_sq, step=step, lr=lr, beta1=beta1,
                      beta2=beta2, eps=eps, weight_decay=0.0, amsgrad=amsgrad,
                      max_exp_avg_sq=max_exp_avg_sq, maximize=maximize,
                      decoupled_weight_decay=weight_decay)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019); see the module docstring.

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
    weight_decay : float, default 1e-2
        Decoupled decay rate ``λ``: each step multiplies the parameters by
        ``1 - lr·λ``.
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
    """

    kernel = staticmethod(adamw_update)
    fused_kernel = staticmethod(adamw_fused)

    @accepts_aliases
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, fused=None, contiguous=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         fused=fused, contiguous=contiguous)
