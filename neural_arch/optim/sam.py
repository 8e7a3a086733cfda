r"""Sharpness-aware minimization: SAM and its adaptive form ASAM.

SAM minimizes the worst loss in a ball of radius :math:`\rho` around the
weights. Each update takes two gradients: one at :math:`w` to find the
(first-order) worst direction, one at the perturbed point, which the base
optimizer then applies to :math:`w` itself:

.. math::

   \begin{aligned}
   & \textbf{input: } \rho,\ \eta \text{ (ASAM)},\ w_0,\ L,\ \text{a base optimizer} \\
   & \textbf{for } t = 1, 2, \ldots \\
   & \quad g \leftarrow \nabla_w L(w_{t-1}) \\
   & \quad T \leftarrow 1 \ \text{(SAM)}, \quad |w_{t-1}| \ \text{(SAM, adaptive)},
     \quad |w_{t-1}| + \eta \ \text{(ASAM)} \qquad \text{(elementwise)} \\
   & \quad \epsilon \leftarrow \rho\, \frac{T^2 g}{\lVert T g \rVert_2}
     \qquad \text{(first\_step: } w \leftarrow w_{t-1} + \epsilon) \\
   & \quad g_{\text{SAM}} \leftarrow \nabla_w L(w_{t-1} + \epsilon) \\
   & \quad w_t \leftarrow \text{base\_step}(w_{t-1}, g_{\text{SAM}})
     \qquad \text{(second\_step)}
   \end{aligned}

References: Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization for
Efficiently Improving Generalization", ICLR 2021, arXiv:2010.01412 (Algorithm 1,
p = 2); Kwon, Kim, Park & Choi, "ASAM: Adaptive Sharpness-Aware Minimization for
Scale-Invariant Learning of Deep Neural Networks", ICML 2021, arXiv:2102.11600
(Algorithm 1, the elementwise operator :math:`T_w = |w| + \eta`).

Notes
-----
* The norm :math:`\lVert T g \rVert` runs over every parameter of every group that
  has a gradient; ``rho`` and ``adaptive`` (and ASAM's ``eta``) may differ per
  group. A zero gradient gives no perturbation (:math:`\epsilon = 0`) rather than
  a division by zero (no small constant is added to the norm).
* ``second_step`` puts back the saved weights exactly (a copy, not
  :math:`w + \epsilon - \epsilon`), so the base optimizer steps from
  :math:`w_{t-1}` bit for bit.
* ``SAM(adaptive=True)`` is ASAM with :math:`\eta = 0`: :math:`T = |w|`, so a
  weight at zero is never perturbed (and never gets a perturbation to leave
  zero). ASAM's :math:`\eta` keeps every weight perturbable; its default radius
  is larger (``rho=0.5``) because :math:`T` shrinks the step. The ASAM authors'
  code leaves biases unnormalized; to do the same, put them in a parameter group
  with ``adaptive=False``.
* Defaults: ``SAM(rho=0.05, adaptive=False)`` with SGD as the base (the paper's
  setting); ``ASAM(rho=0.5, eta=0.01)``. Weight decay, momentum and so on belong
  to the base optimizer and act at the restored weights.
"""
from __future__ import annotations

import math

from ..backend import get_array_module
from ._args import flag, non_negative
from ._meta import MetaOptimizer, build_base
from .optimizer import _grad_array
from .sgd import SGD

__all__ = ["SAM", "ASAM"]


class SAM(MetaOptimizer):
    """Sharpness-aware minimization around a base optimizer (see the module docstring).

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
        What to optimize (groups may set their own ``rho`` and ``adaptive``).
    base_optimizer : Optimizer subclass or Optimizer, default SGD
        The update applied at the restored weights: a class, built on ``params``
        with ``**base_kwargs``, or an optimizer already built on them.
    rho : float, default 0.05
        Radius :math:`\\rho \\ge 0` of the neighbourhood.
    adaptive : bool, default False
        Scale the perturbation elementwise by :math:`T = |w|` (ASAM with
        :math:`\\eta = 0`).
    **base_kwargs
        Arguments of the base optimizer's class, e.g. ``lr=0.1, momentum=0.9``.

    Examples
    --------
    The two-pass loop::

        optimizer = SAM(model.parameters(), lr=0.1, rho=0.05)
        criterion(model(x), y).backward()
        optimizer.first_step(zero_grad=True)    # to w + e(w)
        criterion(model(x), y).backward()
        optimizer.second_step(zero_grad=True)   # back to w, base step

    or ``optimizer.step(closure)``, which does both.
    """

    hyperparameters = {"rho": non_negative, "adaptive": flag}

    def __init__(self, params, base_optimizer=SGD, rho=0.05, adaptive=False, **base_kwargs):
        self._init(params, base_optimizer, base_kwargs, dict(rho=rho, adaptive=adaptive))

    def _init(self, params, base_optimizer, base_kwargs, defaults):
        self.validate_group(defaults)        # bad rho: fail before building anything
        base = build_base(type(self).__name__, params, base_optimizer, base_kwargs)
        super().__init__(base, defaults)
        self._perturbed = False
        self._moved = {}                     # id -> parameter moved by first_step

    def _scale(self, w, group):
        """The elementwise operator T at weights ``w`` (None for the identity)."""
        return get_array_module(w).abs(w) if group["adaptive"] else None

    @property
    def perturbed(self) -> bool:
        """True between ``first_step`` and ``second_step`` (the weights are at w + e)."""
        return self._perturbed

    def first_step(self, zero_grad=False):
        """Move every parameter with a gradient to ``w + e(w)``, saving ``w``.

        Parameters
        ----------
        zero_grad : bool, default False
            Reset the gradients afterwards, ready for the second backward pass.

        Raises
        ------
        RuntimeError
            Called twice without ``second_step`` in between.
        """
        if self._perturbed:
            raise RuntimeError(f"{type(self).__name__}.first_step() was called twice without "
                               f"second_step() in between; the weights are already perturbed")
        terms, sq = [], 0.0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = _grad_array(p, p.grad)
                t = self._scale(p.data, group)
                tg = g if t is None else t * g                    # T g
                flat = tg.reshape(-1)
                sq += float(get_array_module(flat).vdot(flat, flat))
                terms.append((p, group, t, tg))
        norm = math.sqrt(sq)                                      # ||T g||, all groups
        moved = {}
        for p, group, t, tg in terms:
            state = self.state[p]
            saved = state.get("old_p")
            if saved is None or saved.shape != p.data.shape or saved.dtype != p.data.dtype:
                state["old_p"] = p.data.copy()
            else:
                get_array_module(saved).copyto(saved, p.data)
            if norm > 0:
                scale = group["rho"] / norm
                e = tg * scale if t is None else (t * tg) * scale  # e = ρ T² g / ||T g||
                p.data += e
            moved[id(p)] = p
        self._moved, self._perturbed = moved, True
        if zero_grad:
            self.zero_grad()

    def second_step(self, zero_grad=False):
        """Restore the saved weights and let the base optimizer step with the current gradient.

        Parameters
        ----------
        zero_grad : bool, default False
            Reset the gradients after the update.

        Raises
        ------
        RuntimeError
            No ``first_step`` before it.
        """
        if not self._perturbed:
            raise RuntimeError(f"{type(self).__name__}.second_step() needs a first_step() "
                               f"before it (the weights are not perturbed)")
        for p in self._moved.values():
            get_array_module(p.data).copyto(p.data, self.state[p]["old_p"])
        self._moved, self._perturbed = {}, False
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure=None):
        """Both passes in one call; returns the loss at the unperturbed weights.

        Parameters
        ----------
        closure : callable
            Evaluates the model, calls ``backward`` on the loss and returns it. It
            runs twice (at ``w`` and at ``w + e(w)``); the gradients are reset before
            each run, so it need not zero them itself.
        """
        if closure is None:
            raise RuntimeError(f"{type(self).__name__}.step needs a closure that evaluates the "
                               f"model, calls backward and returns the loss; or call "
                               f"first_step() and second_step() around a second "
                               f"forward-backward pass")
        self.zero_grad()
        loss = self._evaluate(closure)
        self.first_step(zero_grad=True)
        self._evaluate(closure)
        self.second_step()
        return loss

    # ---- state_dict: the saved weights only while perturbed --------------------------
    def _param_state_to_save(self, param, state):
        return state if id(param) in self._moved else None

    def _extra_state(self):
        return {"perturbed": self._perturbed}

    def _check_extra(self, saved):
        perturbed = saved.get("perturbed", False)
        if not isinstance(perturbed, bool):
            raise ValueError(f"'perturbed' must be True or False, got {perturbed!r}")
        return perturbed

    def _commit_extra(self, perturbed):
        moved = {id(p): p for p in self._params() if "old_p" in self.state.get(p, ())}
        self._moved, self._perturbed = (moved, True) if perturbed else ({}, False)


class ASAM(SAM):
    """Adaptive SAM (Kwon et al. 2021): SAM with :math:`T = |w| + \\eta` (module docstring).

    Parameters
    ----------
    params : iterable of Parameter, dict, or list of group dicts
        What to optimize (groups may set their own ``rho``, ``eta``, ``adaptive``).
    base_optimizer : Optimizer subclass or Optimizer, default SGD
        As for :class:`SAM`.
    rho : float, default 0.5
        Radius of the neighbourhood, measured in the normalized coordinates
        :math:`T^{-1} w`.
    eta : float, default 0.01
        :math:`\\eta \\ge 0` of :math:`T = |w| + \\eta`; keeps weights at zero
        perturbable. ``eta=0`` gives ``SAM(adaptive=True)``.
    adaptive : bool, default True
        False in a group gives that group SAM's :math:`T = 1` (e.g. biases).
    **base_kwargs
        Arguments of the base optimizer's class.
    """

    hyperparameters = {"rho": non_negative, "eta": non_negative, "adaptive": flag}

    def __init__(self, params, base_optimizer=SGD, rho=0.5, eta=0.01, adaptive=True,
                 **base_kwargs):
        self._init(params, base_optimizer, base_kwargs,
                   dict(rho=rho, eta=eta, adaptive=adaptive))

    def _scale(self, w, group):
        if not group["adaptive"]:
            return None
        t = get_array_module(w).abs(w)
        t += group["eta"]                                         # T = |w| + η
        return t
