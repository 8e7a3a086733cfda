r"""PCGrad: projecting conflicting gradients, for multi-task learning.

Each task's gradient is projected onto the normal plane of every other task's
gradient it conflicts with (negative inner product), visiting the others in
random order and testing each against the gradient projected so far:

.. math::

   \begin{aligned}
   & \textbf{input: } g_1, \ldots, g_T \text{ (task gradients of the shared parameters)} \\
   & \textbf{for } i = 1, \ldots, T: \\
   & \quad g_i^{PC} \leftarrow g_i \\
   & \quad \textbf{for } j \ne i \text{ in random order:} \\
   & \qquad \textbf{if } g_i^{PC} \cdot g_j < 0: \quad
     g_i^{PC} \leftarrow g_i^{PC} - \frac{g_i^{PC} \cdot g_j}{\lVert g_j \rVert^2}\, g_j \\
   & g \leftarrow \textstyle\sum_i g_i^{PC}
     \quad (\text{or } \tfrac{1}{T}\sum_i g_i^{PC} \text{ with reduction='mean'})
   \end{aligned}

Reference: Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery for
Multi-Task Learning", NeurIPS 2020, arXiv:2001.06782 (Algorithm 1).

How it is applied
-----------------
* ``step([loss_1, ..., loss_T])`` takes the gradient of each task loss with
  respect to every parameter (one backward pass per task, keeping the graph
  until the last), performs the surgery, writes the result into ``.grad`` and
  steps the base optimizer.
* *Shared* parameters are those every task's loss reaches; the inner products
  and norms run over all of them together (one vector per task, as the
  paper's :math:`\theta` of the shared network) and they receive the sum (or
  mean) of the projected gradients.
* Parameters that only some tasks reach (task-specific heads) receive the sum of
  those tasks' gradients, unprojected: for a head of one task, its own gradient.
  Parameters no task reaches keep their ``.grad`` (normally None).
* The surgery works on the T x T Gram matrix of the task gradients: a projected
  gradient is a combination :math:`g_i^{PC} = \sum_k c_{ik} g_k`, so its inner
  products are :math:`\sum_k c_{ik} (g_k \cdot g_j)`. The gradients themselves
  are combined once, at the end.
* The random order comes from a NumPy ``Generator`` seeded by ``seed=``, kept in
  the state dict.

Default base optimizer: Adam (``lr=1e-3``), the optimizer of the paper's
experiments; any other is given as ``base_optimizer=``.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..autograd import grad as _grad
from ..backend import get_array_module
from ..core.tensor import Tensor
from ._meta import MetaOptimizer, build_base, task_losses
from .adam import Adam

__all__ = ["PCGrad", "project_conflicting"]


def project_conflicting(gram, rng):
    """The coefficients of PCGrad's projected gradients, from the task gradients' Gram matrix.

    Parameters
    ----------
    gram : ndarray, shape (T, T)
        ``gram[i, j] = g_i · g_j`` (host array).
    rng : numpy.random.Generator
        Draws the order in which each task meets the others.

    Returns
    -------
    coef : ndarray, shape (T, T)
        ``g_i^PC = sum_k coef[i, k] g_k``.
    conflicts : int
        How many projections were made.
    """
    n = gram.shape[0]
    coef = np.eye(n)
    conflicts = 0
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for j in rng.permutation(others):
            dot = float(coef[i] @ gram[:, j])                 # g_i^PC · g_j
            if dot < 0 and gram[j, j] > 0:
                coef[i, j] -= dot / gram[j, j]                # g_i^PC -= (dot/|g_j|²) g_j
                conflicts += 1
    return coef, conflicts


class PCGrad(MetaOptimizer):
    """Gradient surgery for multi-task learning (see the module docstring).

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
        What to optimize: the shared parameters and the task-specific ones.
    base_optimizer : Optimizer subclass or Optimizer, default Adam
        The update applied with the surgically combined gradient: a class, built on
        ``params`` with ``**base_kwargs``, or an optimizer already built on them.
    reduction : {'sum', 'mean'}, default 'sum'
        How the projected task gradients of shared parameters are combined.
    seed : int, optional
        Seed of the generator that draws the projection orders.
    **base_kwargs
        Arguments of the base optimizer's class, e.g. ``lr=1e-3``.

    Attributes
    ----------
    last_conflicts : int
        Number of projections made by the last step (0: no task conflicted).

    Examples
    --------
    ::

        optimizer = PCGrad(model.parameters(), lr=1e-3)
        optimizer.zero_grad()
        optimizer.step([loss1, loss2])
    """

    def __init__(self, params, base_optimizer=Adam, reduction="sum", seed=None,
                 **base_kwargs):
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(
                seed, numbers.Integral) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
        base = build_base("PCGrad", params, base_optimizer, base_kwargs)
        super().__init__(base)
        self.reduction = reduction
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.last_conflicts = 0

    def step(self, losses=None):
        """Surgery on the task gradients of ``losses``, then one step of the base optimizer.

        Parameters
        ----------
        losses : sequence of Tensor
            One scalar loss per task, with their graphs (a single Tensor is one task).

        Returns
        -------
        The base optimizer's return value (None).
        """
        losses = task_losses(losses, "PCGrad")
        params = [p for p in self._params() if p.requires_grad]
        n = len(losses)
        grads = []                                # grads[i][j]: task i, parameter j (or None)
        for i, loss in enumerate(losses):
            gs = _grad(loss, params, retain_graph=i < n - 1, allow_unused=True)
            grads.append([None if g is None else g.data for g in gs])
            if all(g is None for g in gs):
                raise ValueError(f"PCGrad.step: task loss {i} does not depend on any parameter "
                                 f"this optimizer updates")
        shared = [j for j in range(len(params)) if all(g[j] is not None for g in grads)]
        gram = np.zeros((n, n))
        for j in shared:
            flat = [g[j].reshape(-1) for g in grads]
            xp = get_array_module(flat[0])
            for a in range(n):
                for b in range(a, n):
                    gram[a, b] += float(xp.vdot(flat[a], flat[b]))
        gram = np.triu(gram) + np.triu(gram, 1).T
        coef, self.last_conflicts = project_conflicting(gram, self._rng)
        weights = coef.sum(axis=0)                # sum_i g_i^PC = sum_k weights[k] g_k
        if self.reduction == "mean":
            weights /= n
        shared_ids = set(shared)
        for j, p in enumerate(params):
            if j in shared_ids:
                parts = [(float(weights[k]), grads[k][j]) for k in range(n)]
            else:
                parts = [(1.0, g[j]) for g in grads if g[j] is not None]
            if not parts:
                continue
            out = parts[0][1] * parts[0][0]       # a new array (never the engine's)
            for w, g in parts[1:]:
                out += g * w
            p.grad = Tensor._make(out)
        return self.base_optimizer.step()

    def _extra_state(self):
        return {"reduction": self.reduction, "rng": self._rng.bit_generator.state}

    def _check_extra(self, saved):
        reduction = saved.get("reduction", self.reduction)
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        rng = np.random.default_rng()
        if "rng" in saved:
            try:
                rng.bit_generator.state = saved["rng"]
            except (TypeError, ValueError, KeyError) as exc:
                raise ValueError(f"the saved generator state is not a PCG64 state: "
                                 f"{exc}") from None
        else:
            rng = self._rng
        return reduction, rng

    def _commit_extra(self, prepared):
        self.reduction, self._rng = prepared

    def _repr_settings(self):
        return {"reduction": self.reduction, "seed": self.seed}
