r"""LARS: layer-wise adaptive rate scaling, SGD with momentum and a per-tensor trust ratio.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ \eta \text{ (trust coefficient)},
     \ \beta \text{ (weight decay)},\ m \text{ (momentum)},\ \tau \text{ (dampening)},
     \ \epsilon,\ \text{nesterov},\ \text{maximize};
     \text{ each parameter tensor } w^l \text{ is a layer} \\
   & b_0 \leftarrow 0 \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g_t \leftarrow \pm\nabla_w L_t(w_{t-1})
     \qquad (- \text{ under maximize}) \\
   & \quad \lambda^l \leftarrow \frac{\eta\, \|w^l_{t-1}\|}
     {\|g^l_t\| + \beta \|w^l_{t-1}\| + \epsilon}
     \quad (1 \text{ if } \|w^l_{t-1}\| = 0 \text{ or } \|g^l_t\| = 0) \\
   & \quad u^l_t \leftarrow \lambda^l (g^l_t + \beta w^l_{t-1})
     \qquad (\text{excluded tensors: } u^l_t \leftarrow g^l_t) \\
   & \quad b_t \leftarrow m b_{t-1} + (1 - \tau) u_t \\
   & \quad w_t \leftarrow w_{t-1} - \gamma\,(u_t + m b_t \text{ if nesterov else } b_t)
   \end{aligned}

Reference: You, Gitman & Ginsburg, "Large Batch Training of Convolutional
Networks", 2017, arXiv:1708.03888 (Algorithm 1).

Defaults: ``lr=1e-3, momentum=0.9, dampening=0, weight_decay=0, nesterov=False,
trust_coefficient=1e-3, eps=1e-8, exclude_1d=True, maximize=False`` (the lr,
momentum and trust coefficient of pytorch-optimizer's ``LARS``; ``eps`` as in
most implementations, e.g. NVIDIA's LARC). Weight decay ``β`` is the paper's:
``βw`` is added to the gradient *before* the trust ratio scales it, and ``β``
also appears in the ratio's denominator. ``ε`` sits in that denominator only;
when ``‖w‖`` or ``‖g‖`` is 0 the ratio is 1 (a fresh zero-initialised layer
takes a plain SGD step).

Excluded tensors: with ``exclude_1d=True`` (the default, as pytorch-optimizer
and the SimCLR/BYOL recipes) tensors with ``ndim <= 1`` (biases, normalisation
scales, scalars) take plain momentum SGD steps, with neither trust ratio nor
weight decay; the option may differ between parameter groups.

Differences from the paper's Algorithm 1: the paper multiplies the learning
rate into the momentum buffer (``v ← m v + γλ(g + βw)``, ``w ← w - v``); here,
as in PyTorch's SGD and pytorch-optimizer, the buffer holds the scaled
gradients and ``γ`` multiplies the step, which is the same for a constant
``γ``; the paper's polynomial decay of ``γ`` is left to a scheduler. Nesterov
momentum and dampening are pytorch-optimizer's additions. Differences from
pytorch-optimizer's ``LARS``: the ``ε`` term (``eps=0`` removes it), and when
``‖g‖ = 0`` but ``β‖w‖ > 0`` it takes the ratio ``η/β`` where this one takes 1.

LARS is not elementwise (``elementwise = False``): in contiguous mode each
tensor is still updated on its own, on views into the flat buffers. State:
``momentum_buffer`` (when ``m != 0``).
"""
from __future__ import annotations

from ..backend import get_array_module
from ._args import accepts_aliases, flag, non_negative, unit_interval
from ._kernels import effective_grad, scratch_like
from .optimizer import Optimizer
from .sgd import SGD, sgd_update

__all__ = ["LARS", "lars_update", "lars_trust_ratio"]


def lars_trust_ratio(param_norm, grad_norm, *, trust_coefficient, weight_decay, eps):
    """``λ = η‖w‖ / (‖g‖ + β‖w‖ + ε)``, and 1 when ``‖w‖`` or ``‖g‖`` is 0."""
    if param_norm == 0 or grad_norm == 0:
        return 1.0
    return trust_coefficient * param_norm / (grad_norm + weight_decay * param_norm + eps)


def lars_update(param, grad, momentum_buffer=None, *, lr, momentum=0.9, dampening=0.0,
                weight_decay=0.0, trust_coefficient=1e-3, eps=1e-8, nesterov=False,
                adapt=True, maximize=False, scratch=None):
    """One LARS step of one layer (parameter tensor) on raw arrays, in place.

    Parameters
    ----------
    param, grad : ndarray
        Parameter values (updated) and gradient (read only) of one layer: the
        trust ratio is taken over the whole array.
    momentum_buffer : ndarray, optional
        The momentum ``b`` (updated, zero before the first step); needed when
        ``momentum != 0``.
    lr, momentum, dampening, weight_decay, trust_coefficient, eps : float
        ``γ, m, τ, β, η, ε`` of the algorithm box.
    nesterov : bool
        Nesterov momentum (needs ``momentum > 0`` and ``dampening = 0``).
    adapt : bool
        Scale by the trust ratio and apply weight decay; False gives a plain
        momentum SGD step (an excluded tensor).
    maximize : bool
        Ascend instead of descend.
    scratch : ndarray, optional
        A work array of ``param``'s shape; allocated when omitted.
    """
    xp = get_array_module(param)
    w, s = param, scratch_like(param, scratch)
    if adapt:
        ratio = lars_trust_ratio(float(xp.linalg.norm(w)), float(xp.linalg.norm(grad)),
                                 trust_coefficient=trust_coefficient,
                                 weight_decay=weight_decay, eps=eps)  # λ^l
        g = effective_grad(grad, w, weight_decay, maximize, out=s)   # g_t + βw
        xp.multiply(g, ratio, out=s)                                 # u_t = λ^l (g_t + βw)
        grad, maximize = s, False
    # b_t = m b + (1-τ) u_t;  w_t = w - γ (u_t + m b_t or b_t). sgd_update reads each
    # value of its gradient before it writes its scratch, so the two may be one array.
    sgd_update(w, grad, momentum_buffer, lr=lr, momentum=momentum, dampening=dampening,
               nesterov=nesterov, maximize=maximize, fresh_buffer=False, scratch=s)
    return w


class LARS(Optimizer):
    """LARS (You, Gitman & Ginsburg, 2017); see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
        Each parameter tensor is one layer of the trust ratio.
    lr : float, default 1e-3
        Learning rate ``γ`` (alias ``learning_rate``).
    momentum : float, default 0.9
        Momentum ``m >= 0``.
    dampening : float, default 0
        Dampening ``τ`` of the momentum, ``0 <= τ <= 1``.
    weight_decay : float, default 0
        ``β``: ``βw`` is added to the gradient before the trust ratio, and ``β``
        weighs ``‖w‖`` in the ratio's denominator.
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0 and dampening 0).
    trust_coefficient : float, default 1e-3
        ``η``, the trust coefficient of the ratio.
    eps : float, default 1e-8
        Added to the ratio's denominator (alias ``epsilon``).
    exclude_1d : bool, default True
        Tensors with ``ndim <= 1`` (biases, norm scales) take plain momentum SGD
        steps, without trust ratio and weight decay.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    contiguous : bool, default False
        Flat buffers (:mod:`neural_arch.optim.contiguous`); the update still runs
        per tensor since the trust ratio is per tensor.
    """

    hyperparameters = {"lr": non_negative, "momentum": non_negative,
                       "dampening": unit_interval, "weight_decay": non_negative,
                       "nesterov": flag, "trust_coefficient": non_negative,
                       "eps": non_negative, "exclude_1d": flag, "maximize": flag}
    elementwise = False
    check_group = SGD.check_group        # Nesterov needs momentum and no dampening

    @accepts_aliases
    def __init__(self, params, lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, trust_coefficient=1e-3, eps=1e-8, exclude_1d=True,
                 maximize=False, contiguous=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov,
                        trust_coefficient=trust_coefficient, eps=eps, exclude_1d=exclude_1d,
                        maximize=maximize)
        super().__init__(params, defaults, contiguous=contiguous)

    def _update(self, param, grad, state, group):
        if group["momentum"] != 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = get_array_module(param).zeros_like(param)
        lars_update(param, grad, state.get("momentum_buffer"), lr=group["lr"],
                    momentum=group["momentum"], dampening=group["dampening"],
                    weight_decay=group["weight_decay"],
                    trust_coefficient=group["trust_coefficient"], eps=group["eps"],
                    nesterov=group["nesterov"],
                    adapt=not (group["exclude_1d"] and param.ndim <= 1),
                    maximize=group["maximize"], scratch=self._scratch(param))
