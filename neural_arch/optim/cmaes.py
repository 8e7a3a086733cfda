r"""CMA-ES: the (μ/μ_w, λ) covariance matrix adaptation evolution strategy.

.. math::

   \begin{aligned}
   & \textbf{input: } m \text{ (the parameters)},\ \sigma,\ \lambda,\
     w_{1..\lambda},\ c_\sigma, d_\sigma, c_c, c_1, c_\mu;\quad
     C = I,\ p_\sigma = p_c = 0 \\
   & \textbf{for } g = 0, 1, \ldots \\
   & \quad z_k \sim \mathcal N(0, I),\quad y_k = B D z_k,\quad
     x_k = m + \sigma y_k \qquad k = 1..\lambda
     \qquad (C = B D^2 B^\top) \\
   & \quad \text{sort by loss: } y_{1:\lambda} \text{ best first};\quad
     \langle y\rangle_w = \textstyle\sum_{i\le\mu} w_i\, y_{i:\lambda} \\
   & \quad m \leftarrow m + \sigma \langle y\rangle_w \\
   & \quad p_\sigma \leftarrow (1-c_\sigma) p_\sigma
     + \sqrt{c_\sigma(2-c_\sigma)\mu_\text{eff}}\; C^{-1/2}\langle y\rangle_w \\
   & \quad h_\sigma = \big[\,\|p_\sigma\| / \sqrt{1-(1-c_\sigma)^{2(g+1)}}
     < (1.4 + \tfrac{2}{n+1})\, E\|\mathcal N(0,I)\|\,\big] \\
   & \quad p_c \leftarrow (1-c_c) p_c
     + h_\sigma \sqrt{c_c(2-c_c)\mu_\text{eff}}\;\langle y\rangle_w \\
   & \quad w_i^\circ = w_i \text{ if } w_i \ge 0 \text{ else }
     w_i\, n / \|C^{-1/2} y_{i:\lambda}\|^2 \\
   & \quad C \leftarrow \big(1 + c_1\delta(h_\sigma) - c_1 - c_\mu \textstyle\sum_j w_j\big) C
     + c_1 p_c p_c^\top + c_\mu \textstyle\sum_{i=1}^{\lambda} w_i^\circ
       y_{i:\lambda} y_{i:\lambda}^\top,
     \quad \delta(h_\sigma) = (1-h_\sigma) c_c (2-c_c) \\
   & \quad \sigma \leftarrow \sigma \exp\!\Big(\frac{c_\sigma}{d_\sigma}
     \Big(\frac{\|p_\sigma\|}{E\|\mathcal N(0,I)\|} - 1\Big)\Big)
   \end{aligned}

Reference: N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772
(2016). All defaults are the tutorial's Table 1, as functions of the dimension n:
``λ = 4 + ⌊3 ln n⌋``, ``μ = ⌊λ/2⌋``, ``w'_i = ln((λ+1)/2) - ln i``,
``c_σ = (μ_eff+2)/(n+μ_eff+5)``, ``d_σ = 1 + 2 max(0, √((μ_eff-1)/(n+1)) - 1) + c_σ``,
``c_c = (4+μ_eff/n)/(n+4+2μ_eff/n)``, ``c_1 = 2/((n+1.3)² + μ_eff)``,
``c_μ = min(1-c_1, 2(1/4 + μ_eff + 1/μ_eff - 2)/((n+2)² + μ_eff))``; the positive
weights sum to one, the negative ones (the "active" update of the worst half) are
scaled by ``min(1 + c_1/c_μ, 1 + 2μ_eff⁻/(μ_eff+2), (1-c_1-c_μ)/(n c_μ))`` over
their absolute sum. ``B`` and ``D`` are recomputed from ``C`` (a symmetric
eigendecomposition) only when ``λ/(c_1+c_μ)/n/10`` generations have passed, as the
tutorial suggests; sampling and ``C^{-1/2}`` use the last ones.

Separable variant (R. Ros & N. Hansen, "A Simple Modification in CMA-ES Achieving
Linear Time and Space Complexity", PPSN 2008): ``C`` is kept diagonal, so every
operation above is elementwise and a generation costs O(λn) instead of O(n²)
memory and up to O(n³) time; ``c_1`` and ``c_μ`` are multiplied by ``(n+2)/3``
(a diagonal has fewer entries to learn), and, as in the paper, only the μ best
candidates update ``C`` (no negative weights). It is chosen automatically above
:data:`SEPARABLE_ABOVE` searched values (``separable=None``); ``separable=True`` /
``False`` forces either variant.

Stopping criteria (reported by :meth:`~CMAES.should_stop` and named by
``stop_reason``), those of pycma with its defaults:

* ``'max_generations'``: ``generation >= max_generations`` (default pycma's
  ``100 + 150 (n+3)² / √λ``);
* ``'tolfun'``: the best losses of the last ``10 + ⌈30n/λ⌉`` generations and all
  losses of the last generation lie within ``tolfun`` (1e-11) of each other;
* ``'tolx'``: ``σ √C_ii`` and ``σ |p_c,i|`` are below ``tolx`` (1e-11) in every
  coordinate;
* ``'tolconditioncov'``: the condition number of ``C`` exceeds 1e14;
* ``'tolstagnation'``: no new best for ``tolstagnation/2`` generations (default
  ``100 + 100 n^1.5/λ``) and the medians of both the best and the median losses
  of the most recent stretch of generations are no better than those of the
  stretch before it.
"""
from __future__ import annotations

import math

import numpy as np

from ._args import check_range, flag, positive
from .gradient_free import GradientFreeOptimizer, count

__all__ = ["CMAES", "SEPARABLE_ABOVE", "cmaes_parameters"]

#: Above this many searched values, ``separable=None`` selects the diagonal
#: (separable) variant: a full covariance matrix would hold n² = 10⁶ numbers here,
#: and would need on the order of n² generations to be learned.
SEPARABLE_ABOVE = 1000


def cmaes_parameters(n, population_size, separable=False):
    """The strategy parameters of the tutorial's Table 1 for dimension ``n``.

    Parameters
    ----------
    n : int
        Number of searched values.
    population_size : int
        λ, the number of candidates per generation.
    separable : bool
        The diagonal variant: learning rates ``c_1, c_μ`` scaled by ``(n+2)/3`` and
        no negative weights.

    Returns
    -------
    dict
        ``mu, weights`` (λ of them, positive then non-positive), ``mueff, cc,
        cs, c1, cmu, ds, chi_n`` (``E||N(0, I)||``).
    """
    lam = population_size
    mu = lam // 2
    raw = math.log((lam + 1) / 2) - np.log(np.arange(1, lam + 1))
    pos, neg = raw[:mu], raw[mu:]
    mueff = pos.sum() ** 2 / (pos ** 2).sum()
    alpha_cov = 2.0
    cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
    cs = (mueff + 2) / (n + mueff + 5)
    c1 = alpha_cov / ((n + 1.3) ** 2 + mueff)
    cmu = min(1 - c1, alpha_cov * (0.25 + mueff + 1 / mueff - 2)
              / ((n + 2) ** 2 + alpha_cov * mueff / 2))
    if separable:
        c1 = min(1.0, c1 * (n + 2) / 3)
        cmu = min(1 - c1, cmu * (n + 2) / 3)
    ds = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (n + 1)) - 1) + cs
    weights = np.zeros(lam)
    weights[:mu] = pos / pos.sum()
    neg_sum = np.abs(neg).sum()
    if not separable and neg_sum > 0 and cmu > 0:
        mueff_neg = neg.sum() ** 2 / (neg ** 2).sum()
        scale = min(1 + c1 / cmu,                              # α_μ⁻
                    1 + 2 * mueff_neg / (mueff + 2),           # α_μeff⁻
                    (1 - c1 - cmu) / (n * cmu))                # α_posdef⁻
        weights[mu:] = neg * scale / neg_sum
    chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n ** 2))
    return dict(mu=mu, weights=weights, mueff=mueff, cc=cc, cs=cs, c1=c1, cmu=cmu, ds=ds,
                chi_n=chi_n)


class CMAES(GradientFreeOptimizer):
    """Covariance matrix adaptation evolution strategy on the flat parameter vector.

    Parameters
    ----------
    params : iterable of Parameter, dict, or parameter groups
        The parameters; the search starts at their values (the initial mean).
    population_size : int, optional
        λ, candidates per generation (at least 2); default ``4 + ⌊3 ln n⌋``.
    sigma : float, default 0.1
        Initial step size σ: the initial candidates are ``m + σ N(0, I)``.
    max_generations : int, optional
        Generations after which :meth:`should_stop` says ``'max_generations'``;
        default pycma's ``100 + 150 (n+3)² / √λ``.
    seed : int, optional
        Seed of the optimizer's random generator (see below).
    separable : bool or None, default None
        Diagonal covariance (Ros & Hansen 2008); None chooses it when the number
        of searched values exceeds :data:`SEPARABLE_ABOVE`.
    tolfun, tolx : float, default 1e-11
        Thresholds of the ``'tolfun'`` and ``'tolx'`` criteria (0 turns one off).
    tolstagnation : int, optional
        Window of the ``'tolstagnation'`` criterion; default ``100 + 100 n^1.5/λ``
        (0 turns it off).
    tolconditioncov : float, default 1e14
        Largest condition number of the covariance matrix before ``'tolconditioncov'``.
    closure, objective, vectorized
        How losses are measured, and what ``seed=None`` does; see
        :class:`~neural_arch.optim.gradient_free.GradientFreeOptimizer`.

    Examples
    --------
    >>> import neural_arch as na
    >>> w = na.Parameter(na.ones(5, dtype="float64"))
    >>> opt = na.optim.CMAES([w], sigma=0.5, seed=0,
    ...                      closure=lambda: (w * w).sum())
    >>> for _ in range(300):
    ...     loss = opt.step()
    ...     if opt.should_stop():
    ...         break
    >>> loss < 1e-8
    True
    """

    def __init__(self, params, population_size=None, sigma=0.1, max_generations=None,
                 seed=None, *, separable=None, tolfun=1e-11, tolx=1e-11, tolstagnation=None,
                 tolconditioncov=1e14, closure=None, objective=None, vectorized=False):
        super().__init__(params, closure=closure, objective=objective, vectorized=vectorized,
                         seed=seed)
        self._hyper = self._validate_hyper(dict(
            population_size=population_size, sigma=sigma, max_generations=max_generations,
            separable=separable, tolfun=tolfun, tolx=tolx, tolstagnation=tolstagnation,
            tolconditioncov=tolconditioncov))
        self._par = cmaes_parameters(self._n, self._hyper["population_size"],
                                     self._hyper["separable"])

    def _validate_hyper(self, hyper):
        n = self._n
        h = dict(hyper)
        if h["population_size"] is None:
            h["population_size"] = 4 + int(math.floor(3 * math.log(n)))
        lam = h["population_size"] = count("population_size", h["population_size"], 2)
        h["sigma"] = positive("sigma", h["sigma"])
        if h["max_generations"] is None:
            h["max_generations"] = int(100 + 150 * (n + 3) ** 2 // lam ** 0.5)
        h["max_generations"] = count("max_generations", h["max_generations"], 1)
        if h["separable"] is None:
            h["separable"] = n > SEPARABLE_ABOVE
        h["separable"] = flag("separable", h["separable"])
        h["tolfun"] = check_range("tolfun", h["tolfun"], 0.0)
        h["tolx"] = check_range("tolx", h["tolx"], 0.0)
        if h["tolstagnation"] is None:
            h["tolstagnation"] = int(100 + 100 * n ** 1.5 / lam)
        h["tolstagnation"] = count("tolstagnation", h["tolstagnation"], 0)
        h["tolconditioncov"] = check_range("tolconditioncov", h["tolconditioncov"], 1.0,
                                           low_open=True)
        return h

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._par = cmaes_parameters(self._n, self._hyper["population_size"],
                                     self._hyper["separable"])

    def _state_shapes(self, n, hyper):
        lam = hyper["population_size"]
        shapes = dict(mean=(n,), p_sigma=(n,), p_c=(n,), D=(n,), last_losses=(lam,),
                      sigma=None, eigen_generation=None, improved_generation=None,
                      hist_best=None, stag_best=None, stag_median=None)
        if hyper["separable"]:
            shapes["C"] = (n,)
        else:
            shapes.update(C=(n, n), B=(n, n))
        return shapes

    # ---- properties ----------------------------------------------------------------
    @property
    def mean(self):
        """The current mean of the search distribution (flat host vector, a copy)."""
        return self._read_flat() if self._s is None else self._s["mean"].copy()

    @property
    def sigma(self) -> float:
        """The current step size σ."""
        return self._hyper["sigma"] if self._s is None else self._s["sigma"]

    @property
    def population_size(self) -> int:
        return self._hyper["population_size"]

    @property
    def separable(self) -> bool:
        """Whether the diagonal (separable) variant runs."""
        return self._hyper["separable"]

    # ---- the algorithm -------------------------------------------------------------
    def _init_search(self, x0):
        n, lam = self._n, self._hyper["population_size"]
        s = dict(mean=x0.copy(), sigma=self._hyper["sigma"], p_sigma=np.zeros(n),
                 p_c=np.zeros(n), D=np.ones(n), last_losses=np.full(lam, np.inf),
                 eigen_generation=0, improved_generation=0, hist_best=[], stag_best=[],
                 stag_median=[])
        if self._hyper["separable"]:
            s["C"] = np.ones(n)
        else:
            s.update(C=np.eye(n), B=np.eye(n))
        self._s = s

    def _ask(self):
        s, lam = self._s, self._hyper["population_size"]
        z = self._rng.standard_normal((lam, self._n))
        y = z * s["D"]                                   # D z_k
        if not self._hyper["separable"]:
            y = y @ s["B"].T                             # y_k = B D z_k
        return s["mean"] + s["sigma"] * y                # x_k = m + σ y_k

    def _inv_sqrt_C(self, v):
        """``C^{-1/2} v`` for the rows of ``v``, with the last B and D."""
        s = self._s
        if self._hyper["separable"]:
            return v / s["D"]
        return ((v @ s["B"]) / s["D"]) @ s["B"].T

    def _tell(self, X, f):
        s, par, n = self._s, self._par, self._n
        mu, w = par["mu"], par["weights"]
        cs, cc, c1, cmu = par["cs"], par["cc"], par["c1"], par["cmu"]
        g = self._generation
        order = np.argsort(f, kind="stable")
        y = (X[order] - s["mean"]) / s["sigma"]                       # y_{i:λ}
        y_w = w[:mu] @ y[:mu]                                          # <y>_w
        s["mean"] = s["mean"] + s["sigma"] * y_w                       # m += σ <y>_w
        s["p_sigma"] = ((1 - cs) * s["p_sigma"]
                        + math.sqrt(cs * (2 - cs) * par["mueff"]) * self._inv_sqrt_C(y_w))
        ps_norm = float(np.linalg.norm(s["p_sigma"]))
        h_sigma = float(ps_norm / math.sqrt(1 - (1 - cs) ** (2 * (g + 1)))
                        < (1.4 + 2 / (n + 1)) * par["chi_n"])
        s["p_c"] = (1 - cc) * s["p_c"] + h_sigma * math.sqrt(cc * (2 - cc) * par["mueff"]) * y_w
        w_circ = w.copy()
        negative = w < 0
        if negative.any():                    # w°_i = w_i n / ||C^{-1/2} y_i||²
            z_sq = (self._inv_sqrt_C(y[negative]) ** 2).sum(axis=1)
            w_circ[negative] *= n / np.maximum(z_sq, 1e-300)
        delta_h = (1 - h_sigma) * cc * (2 - cc)
        decay = 1 + c1 * delta_h - c1 - cmu * w.sum()
        if self._hyper["separable"]:
            s["C"] = decay * s["C"] + c1 * s["p_c"] ** 2 + cmu * (w_circ @ y ** 2)
        else:
            s["C"] = (decay * s["C"] + c1 * np.outer(s["p_c"], s["p_c"])
                      + cmu * (y.T * w_circ) @ y)
        s["sigma"] = s["sigma"] * math.exp(cs / par["ds"] * (ps_norm / par["chi_n"] - 1))
        self._decompose(g + 1)
        self._record_history(f, g + 1)
        return True

    def _decompose(self, g):
        """Refresh B and D from C when enough generations have passed (lazy update)."""
        s, par = self._s, self._par
        if self._hyper["separable"]:
            s["D"] = np.sqrt(np.maximum(s["C"], 0.0))
            return
        lam = self._hyper["population_size"]
        if g - s["eigen_generation"] < lam / (par["c1"] + par["cmu"]) / self._n / 10:
            return
        C = (s["C"] + s["C"].T) / 2                  # remove rounding asymmetry
        eigenvalues, B = np.linalg.eigh(C)
        s["C"] = C
        s["D"] = np.sqrt(np.maximum(eigenvalues, 0.0))
        s["B"] = B
        s["eigen_generation"] = g

    def _record_history(self, f, g):
        s, n, lam = self._s, self._n, self._hyper["population_size"]
        best = float(f.min())
        if best < self._best_f:
            s["improved_generation"] = g
        s["last_losses"] = f.copy()
        s["hist_best"].append(best)
        del s["hist_best"][:-(10 + math.ceil(30 * n / lam))]
        s["stag_best"].append(best)
        s["stag_median"].append(float(np.median(f)))
        del s["stag_best"][:-20000], s["stag_median"][:-20000]

    def _stop(self):
        s, h = self._s, self._hyper
        g, n, lam = self._generation, self._n, h["population_size"]
        if g >= h["max_generations"]:
            return "max_generations"
        f = s["last_losses"]
        if h["tolfun"] > 0 and np.isfinite(f).all():
            spread = max(f.max(), max(s["hist_best"])) - min(f.min(), min(s["hist_best"]))
            if spread < h["tolfun"]:
                return "tolfun"
        diag_C = s["C"] if h["separable"] else np.diagonal(s["C"])
        if (h["tolx"] > 0 and (s["sigma"] * np.sqrt(np.abs(diag_C)) < h["tolx"]).all()
                and (s["sigma"] * np.abs(s["p_c"]) < h["tolx"]).all()):
            return "tolx"
        D = s["D"]
        if D.min() <= 0 or (D.max() / D.min()) ** 2 > h["tolconditioncov"]:
            return "tolconditioncov"
        window = h["tolstagnation"]
        if window and g > n * (5 + 100 / lam) and g - s["improved_generation"] > window / 2:
            best, median = s["stag_best"], s["stag_median"]
            length = int(max(window / 10, len(best) / 10))
            if len(best) > max(100, 2 * length):
                recent, before = slice(-length, None), slice(-2 * length, -length)
                if (np.median(best[recent]) >= np.median(best[before])
                        and np.median(median[recent]) >= np.median(median[before])):
                    return "tolstagnation"
        return None
