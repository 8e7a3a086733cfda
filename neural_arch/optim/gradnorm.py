r"""GradNorm: task weights learned so that the tasks' gradient norms train at balanced rates.

The model is trained on the weighted loss :math:`L = \sum_i w_i L_i`; the weights
:math:`w_i` are trained, by their own optimizer, on the gradient-norm loss
:math:`L_{grad}` measured on a chosen set :math:`W` of shared weights:

.. math::

   \begin{aligned}
   & G_i = \lVert \nabla_W\, w_i L_i \rVert_2 = |w_i|\, \lVert \nabla_W L_i \rVert_2,
     \qquad \bar G = \tfrac{1}{T} \textstyle\sum_i G_i \\
   & \tilde L_i = L_i(t) / L_i(0), \qquad
     r_i = \tilde L_i \big/ \tfrac{1}{T} \textstyle\sum_j \tilde L_j \\
   & L_{grad} = \textstyle\sum_i \bigl| G_i - \bar G\, r_i^{\alpha} \bigr|
     \qquad (\bar G\, r_i^{\alpha} \text{ held constant}) \\
   & \partial L_{grad} / \partial w_i
     = \operatorname{sign}(G_i - \bar G r_i^{\alpha})\,
       \operatorname{sign}(w_i)\, \lVert \nabla_W L_i \rVert_2 \\
   & w \leftarrow \text{weight\_optimizer}(w, \partial L_{grad}/\partial w),
     \qquad w \leftarrow T\, w / \textstyle\sum_i w_i \\
   & \theta \leftarrow \text{base\_optimizer}(\theta, \nabla_\theta \textstyle\sum_i w_i L_i)
     \qquad (w \text{ before its update})
   \end{aligned}

Reference: Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient
Normalization for Adaptive Loss Balancing in Deep Multitask Networks", ICML
2018, arXiv:1711.02257 (Algorithm 1; :math:`w_i(0) = 1`).

Notes
-----
* No double backpropagation is needed, and none is approximated: :math:`G_i`
  depends on :math:`w_i` only through the factor :math:`|w_i|` (the gradient
  :math:`\nabla_W L_i` does not involve :math:`w_i`), so the derivative above is
  exact. The targets are constants, as the paper prescribes.
* One backward pass per task gives :math:`\nabla L_i` for every parameter; the
  model's gradient :math:`\sum_i w_i \nabla L_i` is formed from them (added to
  ``.grad``, as a ``backward`` of the weighted loss would), so the weighted loss
  is not backpropagated a second time.
* :math:`W` is ``shared_parameters`` (the paper uses the last shared layer's
  weights, e.g. ``shared_parameters=[model.shared.weight]``); by default, all
  parameters that every task's loss reaches.
* :math:`L_i(0)` are the losses of the first step; they must be positive.
* The weights are renormalized to sum to :math:`T` after every update, as in the
  paper; nothing keeps an individual weight positive, so ``weight_lr`` should be
  small next to the weights' range. A step that would make the sum non-positive
  raises and changes nothing.
* Defaults: ``alpha=1.5``; Adam for the model (``base_optimizer``) and for the
  weights (``weight_optimizer``, whose step size then hardly depends on the
  size of the gradient norms), ``weight_lr`` = the model's learning rate.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd import grad as _grad
from ..backend import get_array_module
from ..core.grad_mode import no_grad
from ..core.tensor import Parameter, Tensor
from ._args import non_negative
from ._meta import MetaOptimizer, build_base, task_losses as _task_losses
from .adam import Adam
from .optimizer import Optimizer, _as_groups, _param_list

__all__ = ["GradNorm"]


def _num_tasks(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"num_tasks must be None or an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"Invalid num_tasks value: {value!r} (expected num_tasks >= 1)")
    return int(value)


class GradNorm(MetaOptimizer):
    """Learned task weights by gradient normalization (see the module docstring).

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
        The model's parameters.
    base_optimizer : Optimizer subclass or Optimizer, default Adam
        The model's optimizer: a class, built on ``params`` with ``**base_kwargs``,
        or an optimizer already built on them.
    alpha : float, default 1.5
        Strength :math:`\\alpha \\ge 0` of the pull towards equal training rates.
    num_tasks : int, optional
        Number of tasks; by default the length of the first ``step``'s list.
    shared_parameters : Parameter or iterable of Parameter, optional
        :math:`W`, the shared weights the gradient norms are measured on (the
        paper: the last shared layer). Default: every parameter all tasks reach.
    weight_lr : float, optional
        Learning rate of the task weights; default: the model's (first group's) lr.
    weight_optimizer : Optimizer subclass, default Adam
        Optimizer class of the task weights, built as
        ``weight_optimizer([weights], lr=weight_lr)``.
    **base_kwargs
        Arguments of the base optimizer's class, e.g. ``lr=1e-3``.

    Attributes
    ----------
    task_weights : ndarray or None
        The current weights :math:`w_i` (a copy; None before the first step when
        ``num_tasks`` was not given).
    initial_losses : ndarray or None
        :math:`L_i(0)`.
    grad_norms : ndarray or None
        :math:`G_i` of the last step.

    Examples
    --------
    ::

        optimizer = GradNorm(model.parameters(), lr=1e-3, alpha=1.5,
                             shared_parameters=[model.shared.weight])
        optimizer.zero_grad()
        optimizer.step([loss1, loss2])
        optimizer.task_weights
    """

    def __init__(self, params, base_optimizer=Adam, alpha=1.5, num_tasks=None,
                 shared_parameters=None, weight_lr=None, weight_optimizer=Adam,
                 **base_kwargs):
        alpha = non_negative("alpha", alpha)
        num_tasks = _num_tasks(num_tasks)
        if weight_lr is not None:
            weight_lr = non_negative("weight_lr", weight_lr)
        if not (isinstance(weight_optimizer, type) and issubclass(weight_optimizer, Optimizer)):
            raise TypeError(f"weight_optimizer must be an optimizer class (such as SGD or "
                            f"Adam), got {weight_optimizer!r}")
        base = build_base("GradNorm", params, base_optimizer, base_kwargs)
        super().__init__(base)
        self.alpha = alpha
        self.num_tasks = num_tasks
        self._weight_lr = weight_lr if weight_lr is not None else float(
            self.param_groups[0]["lr"])
        self.weight_optimizer_class = weight_optimizer
        self.shared_parameters = self._check_shared(shared_parameters)
        self._weights = self._weight_opt = None
        self._initial = None
        self.grad_norms = None
        if num_tasks is not None:
            self._weights, self._weight_opt = self._new_weights(num_tasks)

    def _check_shared(self, shared):
        if shared is None:
            return None
        if isinstance(shared, Tensor):
            shared = [shared]
        try:
            shared = _param_list(_as_groups(shared, "GradNorm")[0]["params"], 0)[0]
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"shared_parameters: {exc}") from None
        mine = {id(p) for p in self._params()}
        for i, p in enumerate(shared):
            if id(p) not in mine:
                raise ValueError(f"shared_parameters[{i}] (shape {tuple(p.shape)}) is not "
                                 f"among the parameters this GradNorm optimizes")
        return shared

    def _new_weights(self, n):
        weights = Parameter(np.ones(n))                       # w_i(0) = 1 (host, float64)
        return weights, self.weight_optimizer_class([weights], lr=self.weight_lr)

    @property
    def weight_lr(self) -> float:
        """Learning rate of the task weights (writing it sets the weight optimizer's)."""
        return self._weight_lr

    @weight_lr.setter
    def weight_lr(self, value):
        self._weight_lr = non_negative("weight_lr", value)
        if self._weight_opt is not None:
            self._weight_opt.lr = self._weight_lr

    @property
    def task_weights(self):
        """The current task weights (a copy), or None before they exist."""
        return None if self._weights is None else self._weights.data.copy()

    @property
    def initial_losses(self):
        """The first step's task losses :math:`L_i(0)`, or None before it."""
        return None if self._initial is None else self._initial.copy()

    def step(self, task_losses=None):
        """One GradNorm step: model update with the weighted loss, then the weights' update.

        Parameters
        ----------
        task_losses : sequence of Tensor
            One scalar loss :math:`L_i` per task, with their graphs.

        Returns
        -------
        Tensor
            The weighted loss :math:`\\sum_i w_i L_i` with the weights it was trained
            with (detached).
        """
        losses = _task_losses(task_losses, "GradNorm")
        n = len(losses)
        if self.num_tasks is not None and n != self.num_tasks:
            raise ValueError(f"GradNorm.step got {n} task losses, expected num_tasks="
                             f"{self.num_tasks}")
        values = np.array([float(loss.item()) for loss in losses])
        initial = self._initial
        if initial is None:
            if not np.all(np.isfinite(values) & (values > 0)):
                raise ValueError(f"GradNorm needs positive, finite task losses at its first "
                                 f"step (they divide the later ones), got {values.tolist()}")
            initial = values
        weights, weight_opt = self._weights, self._weight_opt
        if weights is None:
            weights, weight_opt = self._new_weights(n)
        w = weights.data.copy()                               # w(t): trains the model

        params = [p for p in self._params() if p.requires_grad]
        grads = []
        for i, loss in enumerate(losses):
            gs = _grad(loss, params, retain_graph=i < n - 1, allow_unused=True)
            grads.append([None if g is None else g.data for g in gs])
        index = {id(p): j for j, p in enumerate(params)}
        if self.shared_parameters is None:
            W = [j for j in range(len(params)) if all(g[j] is not None for g in grads)]
            if not W:
                raise ValueError("the task losses share no parameter; GradNorm needs the "
                                 "shared weights (name them with shared_parameters=)")
        else:
            W = [index[id(p)] for p in self.shared_parameters if id(p) in index]
            for i, g in enumerate(grads):
                if all(g[j] is None for j in W):
                    raise ValueError(f"task loss {i} does not depend on the "
                                     f"shared_parameters; GradNorm measures every task's "
                                     f"gradient on them")
        sq = np.zeros(n)
        for i, g in enumerate(grads):
            for j in W:
                if g[j] is not None:
                    flat = g[j].reshape(-1)
                    sq[i] += float(get_array_module(flat).vdot(flat, flat))
        norms = np.sqrt(sq)                                   # ||∇_W L_i||

        G = np.abs(w) * norms                                 # G_i = |w_i| ||∇_W L_i||
        ratio = values / initial                              # L̃_i = L_i(t) / L_i(0)
        r = ratio / ratio.mean()                              # r_i
        target = G.mean() * r ** self.alpha                   # Ḡ r_i^α, a constant
        weights.grad = Tensor(np.sign(G - target) * np.sign(w) * norms)  # ∂L_grad/∂w_i
        saved = weight_opt.state_dict()
        weight_opt.step()
        total = float(weights.data.sum())
        if not (math.isfinite(total) and total > 0):
            weights.data[...] = w
            weight_opt.load_state_dict(saved)
            raise FloatingPointError(f"the task weights' update made them sum to {total}; "
                                     f"lower weight_lr (now {self.weight_lr})")
        weights.data *= n / total                             # Σ w_i = T
        weights.grad = None

        for j, p in enumerate(params):                        # ∇θ Σ w_i L_i, w = w(t)
            parts = [(float(w[i]), g[j]) for i, g in enumerate(grads) if g[j] is not None]
            if not parts:
                continue
            out = parts[0][1] * parts[0][0]
            for wi, g in parts[1:]:
                out += g * wi
            if p.grad is None:
                p.grad = Tensor._make(out)
            else:
                p.grad = Tensor._make(p.grad.data + out)
        self._weights, self._weight_opt, self._initial = weights, weight_opt, initial
        self.num_tasks, self.grad_norms = n, G
        self.base_optimizer.step()
        with no_grad():
            weighted = sum(float(wi) * loss for wi, loss in zip(w, losses))
        return weighted.detach()

    # ---- state_dict -------------------------------------------------------------
    def _extra_state(self):
        return {"alpha": self.alpha, "num_tasks": self.num_tasks,
                "weights": None if self._weights is None else self._weights.data.copy(),
                "initial_losses": None if self._initial is None else self._initial.copy(),
                "weight_optimizer": None if self._weight_opt is None
                else self._weight_opt.state_dict()}

    def _check_extra(self, saved):
        alpha = non_negative("alpha", saved.get("alpha", self.alpha))
        n = _num_tasks(saved.get("num_tasks"))
        w, initial, opt_sd = (saved.get(k) for k in ("weights", "initial_losses",
                                                     "weight_optimizer"))
        if n is None:
            if w is not None or initial is not None:
                raise ValueError("the saved GradNorm state has weights but no num_tasks")
            if self.num_tasks is None:
                return alpha, None, None, None, None
            return (alpha, self.num_tasks, *self._new_weights(self.num_tasks), None)
        if self.num_tasks is not None and n != self.num_tasks:
            raise ValueError(f"the saved GradNorm state has {n} tasks, this one {self.num_tasks}")
        w = np.asarray(w if w is not None else np.ones(n), dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"saved task weights have shape {w.shape}, expected ({n},)")
        if initial is not None:
            initial = np.asarray(initial, dtype=np.float64)
            if initial.shape != (n,):
                raise ValueError(f"saved initial losses have shape {initial.shape}, "
                                 f"expected ({n},)")
        weights, weight_opt = self._new_weights(n)
        weights.data[...] = w
        if opt_sd is not None:
            weight_opt.load_state_dict(opt_sd)
        return alpha, n, weights, weight_opt, initial

    def _commit_extra(self, prepared):
        self.alpha, n, self._weights, self._weight_opt, self._initial = prepared
        if n is not None:
            self.num_tasks = n
            self._weight_lr = float(self._weight_opt.param_groups[0]["lr"])
        self.grad_norms = None

    def _repr_settings(self):
        return {"alpha": self.alpha, "num_tasks": self.num_tasks,
                "weight_lr": self.weight_lr}
