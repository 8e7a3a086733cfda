r"""Differential evolution on the flat parameter vector, with SciPy's strategies.

.. math::

   \begin{aligned}
   & \textbf{input: } P \text{ members } x_1..x_P \text{ (} x_1 = \text{the parameters)},\
     F \text{ (mutation\_factor)},\ CR \text{ (crossover\_probability)} \\
   & \textbf{for } g = 1, 2, \ldots \\
   & \quad \textbf{for } i = 1..P: \\
   & \qquad r_0, r_1, \ldots \text{ distinct random members other than } i;\quad
     b = \text{the best member} \\
   & \qquad v = \text{mutant (strategy, table below)} \\
   & \qquad u_j = v_j \text{ if } j \in J \text{ else } x_{i,j}
     \qquad (J: \text{crossover, below}) \\
   & \qquad x_i \leftarrow u \text{ if } f(u) \le f(x_i)
   \end{aligned}

=====================  ===================================================
mutation (strategy)    mutant ``v``
=====================  ===================================================
``best1``              ``x_b + F (x_r0 - x_r1)``
``rand1``              ``x_r0 + F (x_r1 - x_r2)``
``randtobest1``        ``x_r0 + F (x_b - x_r0) + F (x_r1 - x_r2)``
``currenttobest1``     ``x_i + F (x_b - x_i) + F (x_r0 - x_r1)``
``best2``              ``x_b + F (x_r0 + x_r1 - x_r2 - x_r3)``
``rand2``              ``x_r0 + F (x_r1 + x_r2 - x_r3 - x_r4)``
=====================  ===================================================

The strategy name is the mutation followed by the crossover, as in SciPy
(``'best1bin'``, ``'rand2exp'``, ...): ``bin`` (binomial) takes each coordinate
from ``v`` with probability CR and one random coordinate always; ``exp``
(exponential) takes a run of consecutive coordinates (cyclically) starting at a
random one, continuing while a uniform draw stays below CR.

Reference: R. Storn & K. Price, "Differential Evolution - A Simple and Efficient
Heuristic for Global Optimization over Continuous Spaces", J. Global Optimization
11 (1997). The conventions follow ``scipy.optimize.differential_evolution`` so
results compare with it: a trial replaces its target when its loss is lower *or
equal*; with ``bounds``, the initial members are uniform within the bounds and a
trial coordinate outside them is redrawn uniformly inside; a ``mutation_factor``
pair ``(low, high)`` draws F uniformly once per generation (dithering);
``updating='immediate'`` (the default, as SciPy's) lets each accepted trial join
the population at once, ``'deferred'`` evaluates the whole generation first (the
only mode of :meth:`~DifferentialEvolution.ask` / ``tell`` and of a vectorized
objective). Differences: ``population_size`` is the number of members (SciPy's
``popsize`` multiplies the dimension), the first member is the parameters' current
value (SciPy's ``x0``), and without bounds the other members start uniformly in
``x0 ± init_scale``.

Stopping (``stop_reason``): ``'convergence'``, SciPy's test
``std(losses) <= atol + tol |mean(losses)|`` over the population, and
``'max_generations'``.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ._args import check_range, positive, unit_interval
from .gradient_free import GradientFreeOptimizer, count

__all__ = ["DifferentialEvolution", "STRATEGIES"]

#: mutation name -> number of random members it draws (besides the target).
_MUTATIONS = {"best1": 2, "rand1": 3, "randtobest1": 3, "currenttobest1": 2, "best2": 4,
              "rand2": 5}
#: Every strategy name accepted (SciPy's).
STRATEGIES = tuple(m + c for m in _MUTATIONS for c in ("bin", "exp"))


def _draw(rng, rows, high, k, n):
    """Per row: ``k`` distinct ints in ``[0, high)``, a start in ``[0, n)``, ``n`` uniforms.

    One generator call per batch (its per-call cost dominates at these sizes):
    integers come from ``floor(u * high)``, and a row whose members collide is
    redrawn whole (rare when the population is several times ``k``).
    """
    u = rng.random((rows, k + 1 + n))
    while True:
        r = (u[:, :k] * high).astype(np.intp)
        s = np.sort(r, axis=1)
        clash = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
        if clash.size == 0:
            return r, (u[:, k] * n).astype(np.intp), u[:, k + 1:]
        u[clash] = rng.random((clash.size, k + 1 + n))


class DifferentialEvolution(GradientFreeOptimizer):
    """Differential evolution over all parameters (SciPy's strategies and convergence test).

    Parameters
    ----------
    params : iterable of Parameter, dict, or parameter groups
        The parameters; their current value is the first member.
    population_size : int, default 30
        Number of members (at least 1 + the members the strategy draws).
    mutation_factor : float or (float, float), default 0.8
        F in [0, 2]; a pair ``(low, high)`` draws F in that range per generation.
    crossover_probability : float, default 0.9
        CR in [0, 1].
    max_generations : int, default 1000
        Generations after which :meth:`should_stop` says ``'max_generations'``.
    strategy : str, default 'best1bin'
        One of :data:`STRATEGIES` (SciPy's names).
    bounds : (low, high) or sequence of n pairs, optional
        Box constraints: one pair for every value, or one pair per value of the
        flat parameter vector.
    tol, atol : float, default 0.01, 0.0
        Relative and absolute tolerance of the convergence test.
    seed : int, optional
        Seed of the optimizer's random generator (see below).
    init_scale : float, default 0.1
        Without bounds, the initial members are uniform in ``x0 ± init_scale``.
    updating : {'immediate', 'deferred'}, optional
        When accepted trials join the population; default ``'immediate'``, or
        ``'deferred'`` with a vectorized objective.
    closure, objective, vectorized
        How losses are measured, and what ``seed=None`` does; see
        :class:`~neural_arch.optim.gradient_free.GradientFreeOptimizer`.
    """

    def __init__(self, params, population_size=30, mutation_factor=0.8,
                 crossover_probability=0.9, max_generations=1000, strategy="best1bin",
                 bounds=None, tol=0.01, atol=0.0, seed=None, *, init_scale=0.1,
                 updating=None, closure=None, objective=None, vectorized=False):
        super().__init__(params, closure=closure, objective=objective, vectorized=vectorized,
                         seed=seed)
        if updating is None:
            updating = "deferred" if self._vectorized else "immediate"
        elif updating == "immediate" and self._vectorized:
            raise ValueError("DifferentialEvolution: a vectorized objective evaluates whole "
                             "generations, which needs updating='deferred' (got 'immediate')")
        self._hyper = self._validate_hyper(dict(
            population_size=population_size, mutation_factor=mutation_factor,
            crossover_probability=crossover_probability, max_generations=max_generations,
            strategy=strategy, bounds=bounds, tol=tol, atol=atol, init_scale=init_scale,
            updating=updating))

    def _validate_hyper(self, hyper):
        h = dict(hyper)
        strategy = h["strategy"]
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown DifferentialEvolution strategy {strategy!r}; expected "
                             f"one of {', '.join(STRATEGIES)}")
        needed = _MUTATIONS[strategy[:-3]] + 1
        h["population_size"] = count("population_size", h["population_size"], needed)
        F = h["mutation_factor"]
        if isinstance(F, (tuple, list)):
            if len(F) != 2:
                raise ValueError(f"mutation_factor must be a number or a pair (low, high), "
                                 f"got {F!r}")
            low, high = (check_range("mutation_factor", v, 0.0, 2.0, high_open=False)
                         for v in F)
            if low > high:
                raise ValueError(f"mutation_factor range {F!r} has low > high")
            h["mutation_factor"] = (low, high)
        else:
            h["mutation_factor"] = check_range("mutation_factor", F, 0.0, 2.0,
                                               high_open=False)
        h["crossover_probability"] = unit_interval("crossover_probability",
                                                   h["crossover_probability"])
        h["max_generations"] = count("max_generations", h["max_generations"], 1)
        h["bounds"] = self._check_bounds(h["bounds"])
        h["tol"] = check_range("tol", h["tol"], 0.0)
        h["atol"] = check_range("atol", h["atol"], 0.0)
        h["init_scale"] = positive("init_scale", h["init_scale"])
        if h["updating"] not in ("immediate", "deferred"):
            raise ValueError(f"updating must be 'immediate' or 'deferred', got "
                             f"{h['updating']!r}")
        return h

    def _check_bounds(self, bounds):
        if bounds is None:
            return None
        n = self._n
        try:
            arr = np.array(backend.asnumpy(bounds) if hasattr(bounds, "dtype") else bounds,
                           dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"bounds must be a pair (low, high) or {n} pairs, got "
                             f"{bounds!r}") from None
        if arr.shape == (2,):
            arr = np.tile(arr, (n, 1))
        if arr.shape != (n, 2):
            raise ValueError(f"bounds must be a pair (low, high) for every value or one pair "
                             f"per searched value ({n} pairs), got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError("bounds must be finite")
        bad = np.flatnonzero(arr[:, 0] >= arr[:, 1])
        if bad.size:
            raise ValueError(f"each lower bound must be below its upper bound; value "
                             f"{bad[0]} has ({arr[bad[0], 0]}, {arr[bad[0], 1]})")
        return arr

    def _state_shapes(self, n, hyper):
        P = hyper["population_size"]
        return dict(population=(P, n), energies=(P,), best=None, evaluated=None, scale=None)

    @property
    def population(self):
        """The current members, one per row (a copy; None before the first ask)."""
        return None if self._s is None else self._s["population"].copy()

    @property
    def population_losses(self):
        """The members' losses (inf before they are evaluated; None before the first ask)."""
        return None if self._s is None else self._s["energies"].copy()

    # ---- the algorithm -------------------------------------------------------------
    def _init_search(self, x0):
        h, rng = self._hyper, self._rng
        P, n = h["population_size"], self._n
        if h["bounds"] is not None:
            low, high = h["bounds"].T
            outside = np.flatnonzero((x0 < low) | (x0 > high))
            if outside.size:
                i = outside[0]
                raise ValueError(f"the parameters' current values lie outside bounds: value "
                                 f"{i} is {x0[i]}, bounds ({low[i]}, {high[i]})")
            population = low + rng.random((P, n)) * (high - low)
        else:
            population = x0 + h["init_scale"] * rng.uniform(-1.0, 1.0, (P, n))
        population[0] = x0
        self._s = dict(population=population, energies=np.full(P, np.inf), best=0,
                       evaluated=False, scale=0.0)

    def _draw_scale(self):
        F = self._hyper["mutation_factor"]
        self._s["scale"] = (float(self._rng.uniform(F[0], F[1])) if isinstance(F, tuple)
                            else F)

    def _trials(self, rows):
        """The trial vectors of the members ``rows``: mutation, crossover, bounds."""
        h, s, rng = self._hyper, self._s, self._rng
        pop, F = s["population"], s["scale"]
        P, n = pop.shape
        mutation, crossover = h["strategy"][:-3], h["strategy"][-3:]
        r, start, u = _draw(rng, len(rows), P - 1, _MUTATIONS[mutation], n)
        r[r >= rows[:, None]] += 1                       # distinct, never the target
        x = pop[r].transpose(1, 0, 2)                    # x[j]: member r_j of each row
        best, current = pop[s["best"]], pop[rows]
        if mutation == "best1":
            v = best + F * (x[0] - x[1])
        elif mutation == "rand1":
            v = x[0] + F * (x[1] - x[2])
        elif mutation == "randtobest1":
            v = x[0] + F * (best - x[0]) + F * (x[1] - x[2])
        elif mutation == "currenttobest1":
            v = current + F * (best - current) + F * (x[0] - x[1])
        elif mutation == "best2":
            v = best + F * (x[0] + x[1] - x[2] - x[3])
        else:                                            # rand2
            v = x[0] + F * (x[1] + x[2] - x[3] - x[4])
        CR = h["crossover_probability"]
        if crossover == "bin":
            take = u < CR
            take[np.arange(len(rows)), start] = True     # at least one coordinate from v
        else:
            # a run of L coordinates from `start` on (cyclically): L = 1 + the number of
            # draws u_1, u_2, ... below CR before the first that is not, at most n
            below = np.cumprod(u[:, 1:] < CR, axis=1)
            length = 1 + below.sum(axis=1)
            offset = (np.arange(n) - start[:, None]) % n
            take = offset < length[:, None]
        trial = np.where(take, v, current)
        if h["bounds"] is not None:
            low, high = h["bounds"].T
            out = (trial < low) | (trial > high)
            k = int(out.sum())
            if k:                                        # redraw uniformly inside
                width = np.broadcast_to(high - low, trial.shape)[out]
                trial[out] = np.broadcast_to(low, trial.shape)[out] + rng.random(k) * width
        return trial

    def _ask(self):
        s = self._s
        if not s["evaluated"]:
            return s["population"].copy()                # the initial members
        self._draw_scale()
        return self._trials(np.arange(len(s["population"])))

    def _tell(self, X, f):
        s = self._s
        if not s["evaluated"]:
            s["population"] = X.copy()
            s["energies"] = f.copy()
            s["evaluated"] = True
            s["best"] = int(np.argmin(f))
            return False                                 # no generation yet
        accept = f <= s["energies"]                      # deferred: the whole generation
        s["population"][accept] = X[accept]
        s["energies"][accept] = f[accept]
        s["best"] = int(np.argmin(s["energies"]))
        return True

    def _run_generation(self, evaluate):
        s = self._s
        if not s["evaluated"]:
            X = self.ask()
            self._tell_checked(X, evaluate(X))
        if self._hyper["updating"] == "deferred":
            X = self.ask()
            self._tell_checked(X, evaluate(X))
            return
        # immediate: each accepted trial joins the population before the next is made
        self._draw_scale()
        pop, energies = s["population"], s["energies"]
        for i in range(len(pop)):
            trial = self._trials(np.array([i]))
            f = evaluate(trial)
            f = np.where(np.isnan(f), np.inf, f)
            if f[0] <= energies[i]:
                pop[i] = trial[0]
                energies[i] = f[0]
                if f[0] <= energies[s["best"]]:
                    s["best"] = i
            self._update_best(trial, f)
        self._generation += 1
        self._stop_reason = self._stop()

    def _stop(self):
        h, s = self._hyper, self._s
        if self._generation >= h["max_generations"]:
            return "max_generations"
        e = s["energies"]
        if s["evaluated"] and np.isfinite(e).all() \
                and np.std(e) <= h["atol"] + h["tol"] * abs(np.mean(e)):
            return "convergence"
        return None
