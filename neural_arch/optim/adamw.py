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
State: as Adam.
"""
from __future__ import annotations

from ._args import accepts_aliases
from .adam import Adam, adam_kernel

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
    contiguous : bool, default False
        Flat-buffer fast path (:mod:`neural_arch.optim.contiguous`).
    """

    kernel = staticmethod(adamw_update)

    @accepts_aliases
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, contiguous=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         contiguous=contiguous)
