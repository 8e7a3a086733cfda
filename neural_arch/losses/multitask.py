"""Multi-task losses: combining several losses into one (Module form)."""
from __future__ import annotations

import numbers

from .. import functional as F
from ..core.tensor import Parameter, Tensor
from ..nn.module import Module

__all__ = ["UncertaintyWeightingLoss", "CombinedLoss"]


class UncertaintyWeightingLoss(Module):
    """Homoscedastic-uncertainty weighting of task losses (Kendall, Gal & Cipolla 2018).

    Each task ``i`` has a learnable log-variance ``s_i = log sigma_i^2`` (the Parameter
    ``log_vars``), and the task losses ``L_i`` are combined as

    .. math:: L = \\sum_i e^{-s_i} L_i + s_i

    so a task with a large loss learns a large variance and is weighted down, while
    ``s_i`` is kept from growing without bound. For fixed ``L_i`` the minimum is at
    ``s_i = log L_i``; the gradients are ``dL/ds_i = 1 - e^{-s_i} L_i`` and
    ``dL/dL_i = e^{-s_i}``.

    Notes
    -----
    The paper derives ``1 / (2 sigma^2) L_i + log sigma`` for a Gaussian (regression)
    likelihood and ``1 / sigma^2 L_i + log sigma`` for a softmax one. In terms of
    ``s`` the regression form is ``(e^{-s} L + s) / 2``; we drop that factor 1/2 for
    every task (the common practice), which scales the whole objective by 2 and leaves
    its minimiser unchanged. Parameterising by ``s`` rather than ``sigma`` keeps the
    weights positive and the optimisation unconstrained.

    Parameters
    ----------
    num_tasks : int
        The number of task losses combined.
    init_log_var : float, default 0.0
        The initial value of every ``s_i`` (0: every weight starts at 1).

    Examples
    --------
    >>> import neural_arch as na
    >>> crit = na.losses.UncertaintyWeightingLoss(2)
    >>> total = crit([na.tensor(1.0), na.tensor(3.0)])
    >>> float(total)   # e^0 * 1 + 0 + e^0 * 3 + 0
    4.0

    References
    ----------
    A. Kendall, Y. Gal, R. Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
    Losses for Scene Geometry and Semantics", CVPR 2018, arXiv:1705.07115.
    """

    def __init__(self, num_tasks, init_log_var=0.0):
        super().__init__()
        if not isinstance(num_tasks, numbers.Integral) or isinstance(num_tasks, bool) \
                or num_tasks < 1:
            raise ValueError(f"UncertaintyWeightingLoss: num_tasks must be an integer >= 1, "
                             f"got {num_tasks!r}")
        if not isinstance(init_log_var, numbers.Real):
            raise TypeError(f"UncertaintyWeightingLoss: init_log_var must be a number, "
                            f"got {type(init_log_var).__name__}")
        self.num_tasks = int(num_tasks)
        self.log_vars = Parameter([float(init_log_var)] * self.num_tasks)

    def forward(self, losses):
        """Combine the task losses: a sequence of ``num_tasks`` scalars (or a 1-d Tensor)."""
        if isinstance(losses, Tensor):
            losses = list(losses) if losses.ndim == 1 else [losses]
        losses = list(losses)
        if len(losses) != self.num_tasks:
            raise ValueError(f"UncertaintyWeightingLoss: expected {self.num_tasks} task "
                             f"losses, got {len(losses)}")
        scalars = []
        for i, loss in enumerate(losses):
            if not isinstance(loss, Tensor):
                loss = Tensor(loss)
            if loss.size != 1:
                raise ValueError(f"UncertaintyWeightingLoss: task loss {i} has shape "
                                 f"{tuple(loss.shape)}; expected a scalar (reduce it with "
                                 "reduction='mean' or 'sum')")
            scalars.append(F.reshape(loss, ()))
        s = self.log_vars
        return (F.exp(-s) * F.stack(scalars) + s).sum()

    def extra_repr(self):
        return f"num_tasks={self.num_tasks}"


class CombinedLoss(Module):
    """A weighted sum of losses that are called with the same arguments.

    .. math:: L(\\ldots) = \\sum_k w_k L_k(\\ldots)

    Loss Modules are registered as sub-modules (named ``loss0``, ``loss1``, ...), so
    learnable parameters inside them are found by :meth:`parameters`.

    Parameters
    ----------
    terms : sequence
        ``(weight, loss)`` pairs; ``loss`` is any callable (a loss Module or a
        function) and ``weight`` a number. A bare loss counts with weight 1.
    weights : sequence of float, optional
        The weights, one per term, when ``terms`` lists bare losses.

    Examples
    --------
    >>> import neural_arch as na
    >>> crit = na.losses.CombinedLoss([(0.5, na.losses.DiceLoss()),
    ...                                (0.5, na.losses.LovaszLoss())])
    """

    def __init__(self, terms, weights=None):
        super().__init__()
        terms = list(terms)
        if weights is not None:
            weights = list(weights)
            if len(weights) != len(terms):
                raise ValueError(f"CombinedLoss: got {len(weights)} weights for "
                                 f"{len(terms)} losses")
            terms = list(zip(weights, terms))
        if not terms:
            raise ValueError("CombinedLoss: terms is empty; give (weight, loss) pairs")
        self.terms = []
        for k, term in enumerate(terms):
            weight, loss = term if isinstance(term, (tuple, list)) else (1.0, term)
            if callable(weight) and isinstance(loss, numbers.Real):
                raise TypeError(f"CombinedLoss: term {k} is (loss, weight); write the pair "
                                "as (weight, loss)")
            if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
                raise TypeError(f"CombinedLoss: the weight of term {k} must be a number, "
                                f"got {type(weight).__name__}")
            if not callable(loss):
                raise TypeError(f"CombinedLoss: the loss of term {k} must be callable, "
                                f"got {type(loss).__name__}")
            if isinstance(loss, Module):
                self.add_module(f"loss{k}", loss)
            self.terms.append((float(weight), loss))

    def forward(self, *args, **kwargs):
        total = None
        for weight, loss in self.terms:
            term = weight * loss(*args, **kwargs)
            total = term if total is None else total + term
        return total

    def extra_repr(self):
        return "weights=" + repr([w for w, _ in self.terms])
