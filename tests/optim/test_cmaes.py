"""CMA-ES: the tutorial's parameters and update, pycma's evaluation counts, stopping, sep-CMA.

The evaluation-count comparisons need the ``cma`` package (pycma, in the test extra);
they are skipped, not failed, without it.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import CMAES
from neural_arch.optim.cmaes import SEPARABLE_ABOVE, cmaes_parameters


def sphere(X):
    return (X ** 2).sum(axis=1)


def ellipsoid(X):
    n = X.shape[1]
    return (1e6 ** (np.arange(n) / (n - 1)) * X ** 2).sum(axis=1)


def rosenbrock(X):
    return (100 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1 - X[:, :-1]) ** 2).sum(axis=1)


def vector_param(values):
    return na.Parameter(np.array(values, dtype=np.float64))


# ---- parameters ---------------------------------------------------------------------------

@pytest.mark.parametrize("n, lam", [(10, 10), (3, 7), (30, 14), (2, 2)])
def test_default_parameters_are_the_tutorials_table(n, lam):
    p = cmaes_parameters(n, lam)
    mu = lam // 2
    raw = [math.log((lam + 1) / 2) - math.log(i) for i in range(1, lam + 1)]
    mueff = sum(raw[:mu]) ** 2 / sum(w * w for w in raw[:mu])
    assert p["mu"] == mu and p["mueff"] == pytest.approx(mueff, rel=1e-13)
    assert p["cs"] == pytest.approx((mueff + 2) / (n + mueff + 5), rel=1e-13)
    assert p["ds"] == pytest.approx(
        1 + 2 * max(0, math.sqrt((mueff - 1) / (n + 1)) - 1) + p["cs"], rel=1e-13)
    assert p["cc"] == pytest.approx((4 + mueff / n) / (n + 4 + 2 * mueff / n), rel=1e-13)
    assert p["c1"] == pytest.approx(2 / ((n + 1.3) ** 2 + mueff), rel=1e-13)
    assert p["cmu"] == pytest.approx(
        min(1 - p["c1"], 2 * (0.25 + mueff + 1 / mueff - 2) / ((n + 2) ** 2 + mueff)),
        rel=1e-13)
    w = p["weights"]
    assert w[:mu].sum() == pytest.approx(1.0) and (w[:mu] > 0).all()
    assert (w[mu:] <= 0).all() and list(w) == sorted(w, reverse=True)
    assert p["chi_n"] == pytest.approx(
        math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n)), rel=1e-13)
    if lam > 2:
        neg = np.array(raw[mu:])
        mueff_neg = neg.sum() ** 2 / (neg ** 2).sum()
        scale = min(1 + p["c1"] / p["cmu"], 1 + 2 * mueff_neg / (mueff + 2),
                    (1 - p["c1"] - p["cmu"]) / (n * p["cmu"]))
        assert w[mu:].sum() == pytest.approx(-scale, rel=1e-12)


@pytest.mark.parametrize("n, lam", [(10, 10), (5, 8), (30, 14), (3, 7)])
def test_learning_rates_and_active_weights_equal_pycmas(n, lam):
    cma = pytest.importorskip("cma")
    es = cma.CMAEvolutionStrategy(np.zeros(n), 0.5, {"popsize": lam, "verbose": -9,
                                                     "seed": 1})
    p = cmaes_parameters(n, lam)
    for ours, theirs in [(p["c1"], es.sp.c1), (p["cmu"], es.sp.cmu), (p["cc"], es.sp.cc),
                         (p["mueff"], es.sp.weights.mueff)]:
        assert ours == pytest.approx(theirs, rel=1e-12)
    np.testing.assert_allclose(p["weights"], np.array(es.sp.weights), atol=1e-14)


def test_separable_learning_rates_are_scaled_and_weights_positive():
    n, lam = 40, 15
    full, sep = cmaes_parameters(n, lam), cmaes_parameters(n, lam, separable=True)
    assert sep["c1"] == pytest.approx(full["c1"] * (n + 2) / 3)
    assert sep["cmu"] == pytest.approx(min(1 - sep["c1"], full["cmu"] * (n + 2) / 3))
    assert (sep["weights"] >= 0).all() and sep["weights"].sum() == pytest.approx(1.0)


def test_population_and_budget_defaults_depend_on_the_dimension():
    opt = CMAES([vector_param(np.zeros(10))], seed=0)
    assert opt.population_size == 4 + int(3 * math.log(10)) == 10
    assert opt._hyper["max_generations"] == int(100 + 150 * 13 ** 2 // 10 ** 0.5)
    assert opt._hyper["tolstagnation"] == int(100 + 100 * 10 ** 1.5 / 10)
    assert opt.sigma == 0.1 and not opt.separable


# ---- one generation, computed independently ---------------------------------------------

def expected_update(s, X, f, p, g, separable):
    """The tutorial's generation update, written out term by term with loops."""
    n = X.shape[1]
    mean, sigma = s["mean"], s["sigma"]
    C = np.diag(s["C"]) if separable else s["C"]
    B = np.eye(n) if separable else s["B"]
    D = s["D"]
    inv_sqrt_C = B @ np.diag(1 / D) @ B.T
    order = np.argsort(f, kind="stable")
    ys = [(X[k] - mean) / sigma for k in order]
    w = p["weights"]
    y_w = sum(w[i] * ys[i] for i in range(p["mu"]))
    new_mean = mean + sigma * y_w
    p_sigma = (1 - p["cs"]) * s["p_sigma"] + math.sqrt(
        p["cs"] * (2 - p["cs"]) * p["mueff"]) * (inv_sqrt_C @ y_w)
    norm = np.linalg.norm(p_sigma)
    h = 1.0 if norm / math.sqrt(1 - (1 - p["cs"]) ** (2 * (g + 1))) < \
        (1.4 + 2 / (n + 1)) * p["chi_n"] else 0.0
    p_c = (1 - p["cc"]) * s["p_c"] + h * math.sqrt(p["cc"] * (2 - p["cc"]) * p["mueff"]) * y_w
    rank_mu = np.zeros((n, n))
    for i, y in enumerate(ys):
        wi = w[i] if w[i] >= 0 else w[i] * n / np.sum((inv_sqrt_C @ y) ** 2)
        rank_mu += wi * np.outer(y, y)
    delta = (1 - h) * p["cc"] * (2 - p["cc"])
    new_C = ((1 + p["c1"] * delta - p["c1"] - p["cmu"] * w.sum()) * C
             + p["c1"] * np.outer(p_c, p_c) + p["cmu"] * rank_mu)
    if separable:
        new_C = np.diag(new_C)
    new_sigma = sigma * math.exp(p["cs"] / p["ds"] * (norm / p["chi_n"] - 1))
    return dict(mean=new_mean, p_sigma=p_sigma, p_c=p_c, C=new_C, sigma=new_sigma), h


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("stalled", [False, True])
def test_one_generation_is_the_tutorials_update(separable, stalled):
    n, lam = 4, 8
    opt = CMAES([vector_param([0.5, -1.0, 2.0, 0.1])], population_size=lam, sigma=0.4,
                separable=separable, seed=2)
    for _ in range(5):                        # get away from C = I first
        X = opt.ask()
        opt.tell(X, ellipsoid(X))
    if stalled:                               # a long evolution path switches h_sigma off
        sd = opt.state_dict()
        sd["search"]["state"]["p_sigma"] = np.full(n, 10.0)
        opt.load_state_dict(sd)
    s = copy.deepcopy(opt.state_dict()["search"]["state"])
    X = opt.ask()
    f = ellipsoid(X)
    g = opt.generation
    opt.tell(X, f)
    expected, h = expected_update(s, X, f, cmaes_parameters(n, lam, separable), g, separable)
    assert h == (0.0 if stalled else 1.0)
    got = opt.state_dict()["search"]["state"]
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-14, err_msg=key)


def test_samples_follow_the_last_eigendecomposition_which_is_refreshed_lazily():
    n, lam = 6, 8
    opt = CMAES([vector_param(np.ones(n))], population_size=lam, sigma=0.5, seed=4)
    p = cmaes_parameters(n, lam)
    gap = lam / (p["c1"] + p["cmu"]) / n / 10
    refreshed = []
    for _ in range(12):
        X = opt.ask()
        opt.tell(X, ellipsoid(X))
        s = opt.state_dict()["search"]["state"]
        if s["eigen_generation"] == opt.generation:
            refreshed.append(opt.generation)
            np.testing.assert_allclose(s["B"] @ np.diag(s["D"] ** 2) @ s["B"].T, s["C"],
                                       atol=1e-12)
    assert gap > 1 and refreshed == [g for g in range(1, 13) if g % math.ceil(gap) == 0]
    # ask draws m + sigma B D z with the stored B, D (rebuilt here from the generator)
    sd = opt.state_dict()["search"]
    rng = np.random.default_rng()
    rng.bit_generator.state = sd["rng"]
    z = rng.standard_normal((lam, n))
    s = sd["state"]
    np.testing.assert_allclose(opt.ask(), s["mean"] + s["sigma"] * (z * s["D"]) @ s["B"].T,
                               rtol=1e-12)


# ---- against pycma --------------------------------------------------------------------------

SEEDS = [1, 2, 3, 4, 5]
TARGET = 1e-8
BUDGET = 40_000


def our_evaluations(fn, x0, sigma0, popsize, seed):
    w = vector_param(x0)
    opt = CMAES([w], population_size=popsize, sigma=sigma0, objective=fn, vectorized=True,
                seed=seed)
    while (opt.best_loss is None or opt.best_loss >= TARGET) and opt.evaluations < BUDGET:
        opt.step()
    assert w.data.tolist() == opt.best_vector.tolist()
    return opt.evaluations


def pycma_evaluations(cma, fn, x0, sigma0, popsize, seed):
    es = cma.CMAEvolutionStrategy(x0, sigma0, {
        "popsize": popsize, "seed": seed, "verbose": -9, "tolfun": 0, "tolx": 0,
        "tolfunhist": 0, "tolflatfitness": 0, "tolstagnation": 0})
    best = np.inf
    while best >= TARGET and es.countevals < BUDGET:
        X = es.ask()
        F = fn(np.array(X))
        es.tell(X, F.tolist())
        best = min(best, F.min())
    return es.countevals


@pytest.mark.parametrize("fn, start", [(sphere, 1.0), (ellipsoid, 1.0), (rosenbrock, 0.0)],
                         ids=["sphere", "ellipsoid", "rosenbrock"])
def test_median_evaluations_to_1e_8_within_125_percent_of_pycma(fn, start):
    cma = pytest.importorskip("cma")
    n, sigma0, popsize = 10, 0.5, 10
    x0 = np.full(n, start)
    ours = [our_evaluations(fn, x0, sigma0, popsize, s) for s in SEEDS]
    theirs = [pycma_evaluations(cma, fn, x0, sigma0, popsize, s) for s in SEEDS]
    assert np.median(ours) <= 1.25 * np.median(theirs), (ours, theirs)
    assert np.median(ours) < BUDGET


# ---- stopping -------------------------------------------------------------------------------

def run_until_stop(opt, limit=5000):
    for _ in range(limit):
        opt.step()
        if opt.should_stop():
            return opt.stop_reason
    return None


def test_stop_max_generations():
    opt = CMAES([vector_param(np.ones(3))], max_generations=3, objective=sphere,
                vectorized=True, seed=0)
    assert not opt.should_stop() and opt.stop_reason is None
    assert [run_until_stop(opt, 1) for _ in range(3)] == [None, None, "max_generations"]


def test_stop_tolfun_on_a_flat_loss():
    opt = CMAES([vector_param(np.ones(3))], objective=lambda x: 1.0, seed=0)
    assert run_until_stop(opt) == "tolfun" and opt.generation == 1


def test_stop_tolx_when_the_distribution_has_shrunk():
    opt = CMAES([vector_param(np.ones(3))], sigma=0.5, tolfun=0, tolx=1e-6,
                objective=sphere, vectorized=True, seed=0)
    assert run_until_stop(opt) == "tolx"
    s = opt.state_dict()["search"]["state"]
    assert (s["sigma"] * np.sqrt(np.diagonal(s["C"])) < 1e-6).all()
    assert opt.best_loss < 1e-10


def test_stop_tolconditioncov_on_an_ill_conditioned_loss():
    opt = CMAES([vector_param(np.ones(4))], sigma=0.5, tolconditioncov=1e4,
                objective=ellipsoid, vectorized=True, seed=0)
    assert run_until_stop(opt) == "tolconditioncov"
    D = opt.state_dict()["search"]["state"]["D"]
    assert (D.max() / D.min()) ** 2 > 1e4


def test_stop_tolstagnation_when_nothing_improves():
    rng = np.random.default_rng(0)
    # pure noise: records get rarer and the medians stop improving
    opt = CMAES([vector_param(np.ones(2))], tolstagnation=20, tolfun=0, tolx=0,
                tolconditioncov=1e300, objective=lambda X: rng.random(len(X)),
                vectorized=True, seed=0)
    assert run_until_stop(opt) == "tolstagnation"
    assert opt.generation > 2 * (5 + 100 / opt.population_size)


def test_stopping_criteria_can_be_switched_off():
    opt = CMAES([vector_param(np.ones(3))], objective=lambda x: 1.0, tolfun=0, tolx=0,
                tolstagnation=0, max_generations=30, seed=0)
    assert run_until_stop(opt) == "max_generations" and opt.generation == 30


# ---- the separable variant --------------------------------------------------------------------

def test_separable_is_chosen_above_the_documented_size_and_can_be_forced():
    big = CMAES([vector_param(np.zeros(SEPARABLE_ABOVE + 1))], seed=0)
    edge = CMAES([vector_param(np.zeros(SEPARABLE_ABOVE))], seed=0)
    assert big.separable and not edge.separable
    assert CMAES([vector_param(np.zeros(3))], separable=True, seed=0).separable
    assert not CMAES([vector_param(np.zeros(SEPARABLE_ABOVE + 1))], separable=False,
                     seed=0).separable
    X = big.ask()                              # diagonal state: O(n) memory
    assert X.shape == (big.population_size, SEPARABLE_ABOVE + 1)
    assert big.state_dict()["search"]["state"]["C"].shape == (SEPARABLE_ABOVE + 1,)


def test_separable_variant_solves_a_separable_ill_conditioned_problem():
    w = vector_param(np.ones(10))
    opt = CMAES([w], sigma=0.5, separable=True, objective=ellipsoid, vectorized=True, seed=1)
    for _ in range(3000):
        if opt.step() < 1e-8:
            break
    assert opt.best_loss < 1e-8
    assert ellipsoid(w.data[None])[0] == opt.best_loss
    C = opt.state_dict()["search"]["state"]["C"]
    assert C[0] / C[-1] > 1e4                  # it learned the axis scales


# ---- arguments and the seed's example ------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(population_size=1), ValueError, "population_size >= 2"),
    (dict(population_size=2.5), TypeError, "population_size must be an integer"),
    (dict(population_size=True), TypeError, "population_size must be an integer"),
    (dict(sigma=0), ValueError, "sigma"),
    (dict(sigma=-0.1), ValueError, "sigma"),
    (dict(sigma="big"), TypeError, "sigma must be a real number"),
    (dict(max_generations=0), ValueError, "max_generations >= 1"),
    (dict(separable="yes"), TypeError, "separable must be True or False"),
    (dict(tolfun=-1), ValueError, "tolfun"),
    (dict(tolx=float("nan")), ValueError, "tolx"),
    (dict(tolconditioncov=1), ValueError, "tolconditioncov"),
    (dict(tolstagnation=-5), ValueError, "tolstagnation >= 0"),
])
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        CMAES([vector_param(np.zeros(3))], **kwargs)


def test_seed_000_example_runs_on_a_tiny_model():
    rng = np.random.default_rng(0)
    X = na.Tensor(rng.standard_normal((32, 3)))
    y = na.Tensor(X.data @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
                  + 0.01 * rng.standard_normal((32, 1)))
    model = na.nn.Linear(3, 1)

    def closure():
        return na.mse_loss(model(X), y)
    start = closure().item()
    # seed 000, with the closure given at construction so that a bare step() works
    optimizer = na.optim.CMAES(
        model.parameters(),
        population_size=20,
        sigma=0.1,
        max_generations=1000,
        closure=closure,
    )

    # Training loop for CMA-ES
    for generation in range(1000):
        optimizer.step()
        if optimizer.should_stop():
            break
    assert optimizer.should_stop()
    assert closure().item() == pytest.approx(optimizer.best_loss, rel=1e-6)
    assert optimizer.best_loss < 1e-3 < start
