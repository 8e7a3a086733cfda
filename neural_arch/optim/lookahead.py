r"""Lookahead: k fast steps of a base optimizer, then a step of the slow weights towards them.

.. math::

   \begin{aligned}
   & \textbf{input: } \phi_0 \text{ (initial weights)},\ k,\ \alpha,
     \ \text{a base optimizer } A \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad \theta_{t,0} \leftarrow \phi_{t-1} \\
   & \quad \textbf{for } i = 1, \ldots, k: \quad
     \theta_{t,i} \leftarrow \theta_{t,i-1} + A(L, \theta_{t,i-1}) \\
   & \quad \phi_t \leftarrow \phi_{t-1} + \alpha\,(\theta_{t,k} - \phi_{t-1})
   \end{aligned}

Reference: Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step
back", NeurIPS 2019, arXiv:1907.08610 (Algorithm 1).

Each call of :meth:`Lookahead.step` is one inner (fast) step of the base
optimizer; every ``k``-th one is followed by the slow update, after which the
fast weights restart from the slow ones (:math:`\theta \leftarrow \phi`). The
slow weights :math:`\phi` are taken from the parameters at the first step (not
at construction, so weights loaded after building the optimizer count); a
parameter added later gets its slow copy at its first step. The base
optimizer's state (momentum, moments) carries on across the synchronisations,
as in the paper.

Defaults as the paper: ``k=5``, ``alpha=0.5``. State per parameter:
``slow_param`` (:math:`\phi`); the position within the ``k`` inner steps is
``lookahead_step``. Both are in ``state_dict()``, with the base's state, so a
resumed run continues bit for bit.
"""
from __future__ import annotations

import numbers

from ..backend import get_array_module
from ._args import unit_interval
from ._meta import MetaOptimizer
from .optimizer import Optimizer

__all__ = ["Lookahead"]


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"Invalid {name} value: {value!r} (expected {name} >= 1)")
    return int(value)


class Lookahead(MetaOptimizer):
    """Lookahead around an optimizer (see the module docstring).

    Parameters
    ----------
    base_optimizer : Optimizer
        The inner (fast) optimizer, already built on the parameters.
    k : int, default 5
        Number of fast steps between two slow updates (``k >= 1``).
    alpha : float, default 0.5
        Slow step size ``0 <= alpha <= 1`` (1: plain base optimizer).

    Attributes
    ----------
    param_groups : list of dict
        The base optimizer's groups (``lr`` and schedulers act on the base).

    Examples
    --------
    ::

        optimizer = Lookahead(Adam(model.parameters(), lr=1e-3), k=5, alpha=0.5)
        loss.backward()
        optimizer.step()
    """

    def __init__(self, base_optimizer, k=5, alpha=0.5):
        if isinstance(base_optimizer, type) and issubclass(base_optimizer, Optimizer):
            raise TypeError(f"Lookahead wraps an optimizer instance; build it first, e.g. "
                            f"Lookahead({base_optimizer.__name__}(params, lr=...), k={k!r})")
        if not isinstance(base_optimizer, Optimizer):
            raise TypeError(f"Lookahead wraps an optimizer instance, got "
                            f"{type(base_optimizer).__name__}")
        self.k = _positive_int("k", k)
        self.alpha = unit_interval("alpha", alpha)
        super().__init__(base_optimizer)
        self.lookahead_step = 0        # fast steps since the last slow update

    def step(self, closure=None):
        """One fast step of the base optimizer, then the slow update every ``k`` steps.

        Parameters
        ----------
        closure : callable, optional
            Passed to the base optimizer's ``step``.

        Returns
        -------
        The base optimizer's return value (the closure's loss).
        """
        state = self.state
        for p in self._params():
            if "slow_param" not in state[p]:
                state[p]["slow_param"] = p.data.copy()      # φ_0 = θ at the first step
        loss = self.base_optimizer.step(closure)
        self.lookahead_step += 1
        if self.lookahead_step >= self.k:
            self.lookahead_step = 0
            for p in self._params():
                phi = state[p]["slow_param"]
                d = p.data - phi
                d *= self.alpha
                phi += d                                    # φ ← φ + α(θ_k - φ)
                get_array_module(phi).copyto(p.data, phi)   # θ ← φ
        return loss

    def _extra_state(self):
        return {"k": self.k, "alpha": self.alpha, "lookahead_step": self.lookahead_step}

    def _check_extra(self, saved):
        k = _positive_int("k", saved.get("k", self.k))
        alpha = unit_interval("alpha", saved.get("alpha", self.alpha))
        step = saved.get("lookahead_step", 0)
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) \
                or not 0 <= step < k:
            raise ValueError(f"lookahead_step must be an integer in [0, k={k}), got {step!r}")
        return k, alpha, int(step)

    def _commit_extra(self, prepared):
        self.k, self.alpha, self.lookahead_step = prepared

    def _repr_settings(self):
        return {"k": self.k, "alpha": self.alpha}
