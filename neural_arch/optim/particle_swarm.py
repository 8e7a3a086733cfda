r"""Particle swarm optimization on the flat parameter vector.

.. math::

   \begin{aligned}
   & \textbf{input: } S \text{ particles } x_i \text{ (} x_1 = \text{the parameters)},\
     v_i = 0,\ \omega \text{ (inertia)},\ c_1 \text{ (cognitive)},\ c_2 \text{ (social)} \\
   & \textbf{for } t = 0, 1, \ldots \\
   & \quad p_i \leftarrow x_i \text{ if } f(x_i) < f(p_i)
     \qquad \text{(personal best)} \\
   & \quad \ell_i = \arg\min_{j \in N(i)} f(p_j)
     \qquad N(i) = \text{all particles (global) or } \{i-1, i, i+1\} \text{ (ring)} \\
   & \quad r_1, r_2 \sim U(0, 1)^n \text{ per particle and coordinate} \\
   & \quad v_i \leftarrow \omega_t v_i + c_1 r_1 \odot (p_i - x_i)
     + c_2 r_2 \odot (p_{\ell_i} - x_i),
     \quad \text{clipped to } [-v_\max, v_\max] \\
   & \quad x_i \leftarrow x_i + v_i
   \end{aligned}

References: J. Kennedy & R. Eberhart, "Particle Swarm Optimization" (ICNN 1995);
Y. Shi & R. Eberhart, "A Modified Particle Swarm Optimizer" (1998), which adds the
inertia weight ω, and "Empirical study of particle swarm optimization" (1999),
which decreases it linearly (``inertia_weight=(0.9, 0.4)`` here: ω goes from 0.9
at the first iteration to 0.4 at ``max_iterations``); J. Kennedy & R. Mendes,
"Population structure and particle swarm performance" (2002) for the ring
(local-best) topology.

The defaults are those of seed 000 (ω = 0.9, c₁ = c₂ = 2, no velocity clamp).
With a constant ω = 0.9 and c₁ + c₂ = 4 the swarm does not contract (its
positions' variance grows, Poli 2009), so give a ``velocity_clamp``, a decreasing
inertia, or the constriction-equivalent ``inertia_weight=0.7298,
cognitive_weight=social_weight=1.49618`` (Clerc & Kennedy 2002) for fine
convergence. Particles other than the first start uniformly in
``x0 ± init_scale``, all with zero velocity.

Noisy objectives: a lucky low sample can make a personal best look better than it
is and hold the swarm there. With ``reevaluate_best=True`` the best personal
best is evaluated again every iteration (one extra candidate, the last row of
:meth:`~ParticleSwarmOptimization.ask`), and its loss becomes the mean of all its
evaluations; :attr:`best_loss` and :attr:`best_params` then report that particle.

Stopping (``stop_reason``): ``'max_iterations'``.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._args import check_range, flag, non_negative, positive
from .gradient_free import GradientFreeOptimizer, count

__all__ = ["ParticleSwarmOptimization"]


class ParticleSwarmOptimization(GradientFreeOptimizer):
    """Particle swarm optimization over all parameters (global or ring topology).

    Parameters
    ----------
    params : iterable of Parameter, dict, or parameter groups
        The parameters; their current value is the first particle.
    swarm_size : int, default 20
        Number of particles (at least 2; at least 3 for the ring).
    inertia_weight : float or (float, float), default 0.9
        ω ≥ 0; a pair ``(start, end)`` decreases it linearly over ``max_iterations``.
    cognitive_weight, social_weight : float, default 2.0
        c₁, c₂ ≥ 0: pull towards the particle's own best and its neighbourhood's.
    max_iterations : int, default 1000
        Iterations after which :meth:`should_stop` says ``'max_iterations'``.
    velocity_clamp : float, optional
        v_max > 0: each velocity coordinate is clipped to ``[-v_max, v_max]``.
    topology : {'global', 'ring'}, default 'global'
        Neighbourhood of each particle: the whole swarm, or itself and its two
        neighbours by index.
    reevaluate_best : bool, default False
        Re-evaluate the best personal best every iteration (noisy objectives).
    seed : int, optional
        Seed of the optimizer's random generator (see below).
    init_scale : float, default 0.1
        The other particles start uniformly in ``x0 ± init_scale``.
    closure, objective, vectorized
        How losses are measured, and what ``seed=None`` does; see
        :class:`~neural_arch.optim.gradient_free.GradientFreeOptimizer`.
    """

    def __init__(self, params, swarm_size=20, inertia_weight=0.9, cognitive_weight=2.0,
                 social_weight=2.0, max_iterations=1000, velocity_clamp=None,
                 topology="global", reevaluate_best=False, seed=None, *, init_scale=0.1,
                 closure=None, objective=None, vectorized=False):
        super().__init__(params, closure=closure, objective=objective, vectorized=vectorized,
                         seed=seed)
        self._hyper = self._validate_hyper(dict(
            swarm_size=swarm_size, inertia_weight=inertia_weight,
            cognitive_weight=cognitive_weight, social_weight=social_weight,
            max_iterations=max_iterations, velocity_clamp=velocity_clamp, topology=topology,
            reevaluate_best=reevaluate_best, init_scale=init_scale))

    def _validate_hyper(self, hyper):
        h = dict(hyper)
        if h["topology"] not in ("global", "ring"):
            raise ValueError(f"topology must be 'global' or 'ring', got {h['topology']!r}")
        h["swarm_size"] = count("swarm_size", h["swarm_size"],
                                3 if h["topology"] == "ring" else 2)
        w = h["inertia_weight"]
        if isinstance(w, (tuple, list)):
            if len(w) != 2:
                raise ValueError(f"inertia_weight must be a number or a pair (start, end), "
                                 f"got {w!r}")
            h["inertia_weight"] = tuple(non_negative("inertia_weight", x) for x in w)
        elif isinstance(w, numbers.Real) and not isinstance(w, bool):
            h["inertia_weight"] = non_negative("inertia_weight", w)
        else:
            raise TypeError(f"inertia_weight must be a number or a pair (start, end), got "
                            f"{w!r}")
        h["cognitive_weight"] = non_negative("cognitive_weight", h["cognitive_weight"])
        h["social_weight"] = non_negative("social_weight", h["social_weight"])
        h["max_iterations"] = count("max_iterations", h["max_iterations"], 1)
        if h["velocity_clamp"] is not None:
            h["velocity_clamp"] = check_range("velocity_clamp", h["velocity_clamp"], 0.0,
                                              low_open=True)
        h["reevaluate_best"] = flag("reevaluate_best", h["reevaluate_best"])
        h["init_scale"] = positive("init_scale", h["init_scale"])
        return h

    def _state_shapes(self, n, hyper):
        S = hyper["swarm_size"]
        return dict(positions=(S, n), velocities=(S, n), best_positions=(S, n),
                    best_losses=(S,), best_counts=(S,), reevaluating=None)

    @property
    def positions(self):
        """The particles' current positions, one per row (a copy; None before the start)."""
        return None if self._s is None else self._s["positions"].copy()

    @property
    def velocities(self):
        """The particles' velocities (a copy; None before the start)."""
        return None if self._s is None else self._s["velocities"].copy()

    def _inertia(self, t):
        w, T = self._hyper["inertia_weight"], self._hyper["max_iterations"]
        if isinstance(w, tuple):
            return w[0] + (w[1] - w[0]) * min(t / max(T - 1, 1), 1.0)
        return w

    # ---- the algorithm -------------------------------------------------------------
    def _init_search(self, x0):
        S, n = self._hyper["swarm_size"], self._n
        positions = x0 + self._hyper["init_scale"] * self._rng.uniform(-1.0, 1.0, (S, n))
        positions[0] = x0
        self._s = dict(positions=positions, velocities=np.zeros((S, n)),
                       best_positions=positions.copy(), best_losses=np.full(S, np.inf),
                       best_counts=np.zeros(S), reevaluating=-1)

    def _ask(self):
        s = self._s
        X = s["positions"]
        s["reevaluating"] = -1
        if self._hyper["reevaluate_best"] and np.isfinite(s["best_losses"]).any():
            g = int(np.argmin(s["best_losses"]))
            s["reevaluating"] = g
            X = np.vstack([X, s["best_positions"][g]])
        return X.copy()

    def _tell(self, X, f):
        s, h, rng = self._s, self._hyper, self._rng
        S = h["swarm_size"]
        x, f_swarm = X[:S], f[:S]
        p, p_f, p_n = s["best_positions"], s["best_losses"], s["best_counts"]
        g = s["reevaluating"]
        if g >= 0:                            # mean of every evaluation of that point
            p_f[g] = (p_f[g] * p_n[g] + f[S]) / (p_n[g] + 1)
            p_n[g] += 1
        better = f_swarm < p_f                                         # p_i <- x_i
        p[better] = x[better]
        p_f[better] = f_swarm[better]
        p_n[better] = 1
        if h["topology"] == "global":
            leader = np.full(S, int(np.argmin(p_f)))
        else:                                                          # i-1, i, i+1
            neighbours = (np.arange(S)[:, None] + np.array([-1, 0, 1])) % S
            leader = neighbours[np.arange(S), np.argmin(p_f[neighbours], axis=1)]
        r1 = rng.random(x.shape)
        r2 = rng.random(x.shape)
        v = (self._inertia(self._generation) * s["velocities"]
             + h["cognitive_weight"] * r1 * (p - x)
             + h["social_weight"] * r2 * (p[leader] - x))
        if h["velocity_clamp"] is not None:
            np.clip(v, -h["velocity_clamp"], h["velocity_clamp"], out=v)
        s["velocities"] = v
        s["positions"] = x + v
        return True

    def _update_best(self, X, f):
        # The swarm's best personal best is the best candidate so far; with
        # re-evaluation its loss is the mean of its evaluations, not the luckiest one.
        s = self._s
        g = int(np.argmin(s["best_losses"]))
        self._best_f = float(s["best_losses"][g])
        self._best_x = s["best_positions"][g].copy()

    def _stop(self):
        if self._generation >= self._hyper["max_iterations"]:
            return "max_iterations"
        return None
