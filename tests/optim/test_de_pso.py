"""DifferentialEvolution (against SciPy) and ParticleSwarmOptimization."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import DifferentialEvolution, ParticleSwarmOptimization
from neural_arch.optim.differential_evolution import STRATEGIES


def sphere(X):
    return (X ** 2).sum(axis=-1)


def rosenbrock(X):
    return (100 * (X[..., 1:] - X[..., :-1] ** 2) ** 2 + (1 - X[..., :-1]) ** 2).sum(axis=-1)


def vector_param(values):
    return na.Parameter(np.array(values, dtype=np.float64))


def tiny_regression(seed=0):
    rng = np.random.default_rng(seed)
    X = na.Tensor(rng.standard_normal((32, 3)))
    y = na.Tensor(X.data @ np.array([[1.0], [-2.0], [0.5]]) + 0.3)
    model = na.nn.Linear(3, 1)
    return model, lambda: na.mse_loss(model(X), y)


# ==== differential evolution ===================================================================

TARGET = 1e-8
SEEDS = [1, 2, 3, 4, 5]
BUDGET = 30_000            # a run stuck in a local minimum counts as the whole budget


def de_evaluations(fn, x0, population, strategy, updating, seed):
    w = vector_param(x0)
    if updating == "deferred":
        opt = DifferentialEvolution([w], population_size=population, strategy=strategy,
                                    bounds=(-5.0, 5.0), tol=0, max_generations=100_000,
                                    objective=fn, vectorized=True, seed=seed)
    else:
        opt = DifferentialEvolution([w], population_size=population, strategy=strategy,
                                    bounds=(-5.0, 5.0), tol=0, max_generations=100_000,
                                    objective=lambda x: float(fn(x)), seed=seed)
    while (opt.best_loss is None or opt.best_loss >= TARGET) and opt.evaluations < BUDGET:
        opt.step()
    return min(opt.evaluations, BUDGET)


def scipy_evaluations(fn, x0, population, strategy, updating, seed):
    from scipy.optimize import differential_evolution
    n = len(x0)
    reached = []

    def callback(intermediate_result):        # SciPy's count after each generation
        if intermediate_result.fun < TARGET:
            reached.append(intermediate_result.nfev)
            return True
    # SciPy's own per-member evaluation (with vectorized=True its nfev counts calls, each
    # a whole generation, so that mode would not count evaluations)
    differential_evolution(lambda x: float(fn(x)), [(-5.0, 5.0)] * n, strategy=strategy,
                           popsize=population // n, mutation=0.8, recombination=0.9,
                           polish=False, init="random", tol=0, maxiter=BUDGET // population,
                           x0=x0, rng=seed, callback=callback, updating=updating)
    return reached[0] if reached else BUDGET


@pytest.mark.parametrize("fn, n, population, strategy, updating", [
    (sphere, 5, 30, "best1bin", "immediate"),
    (rosenbrock, 4, 40, "best1bin", "deferred"),
], ids=["sphere-immediate", "rosenbrock-deferred"])
def test_median_evaluations_to_1e_8_within_125_percent_of_scipy(fn, n, population, strategy,
                                                                 updating):
    pytest.importorskip("scipy")
    x0s = [np.random.default_rng(100 + s).uniform(-5, 5, n) for s in SEEDS]
    ours = [de_evaluations(fn, x0, population, strategy, updating, s)
            for x0, s in zip(x0s, SEEDS)]
    theirs = [scipy_evaluations(fn, x0, population, strategy, updating, s)
              for x0, s in zip(x0s, SEEDS)]
    assert np.median(ours) <= 1.25 * np.median(theirs), (ours, theirs)
    assert np.median(ours) < BUDGET


def test_defaults_are_the_seeds():
    opt = DifferentialEvolution([vector_param(np.zeros(3))], seed=0)
    h = opt._hyper
    assert (h["population_size"], h["mutation_factor"], h["crossover_probability"],
            h["max_generations"], h["strategy"], h["bounds"], h["tol"], h["atol"],
            h["updating"]) == (30, 0.8, 0.9, 1000, "best1bin", None, 0.01, 0.0, "immediate")


def evaluated(strategy, F=0.7, CR=1.0, n=3, population=7, seed=0):
    """A deferred DE whose initial population has been told its losses."""
    opt = DifferentialEvolution([vector_param(np.linspace(-1, 1, n))],
                                population_size=population, strategy=strategy,
                                mutation_factor=F, crossover_probability=CR,
                                updating="deferred", init_scale=2.0, seed=seed)
    X = opt.ask()
    opt.tell(X, sphere(X))
    return opt


MUTANTS = {
    "best1": lambda x, b, c, r, F: x[b] + F * (x[r[0]] - x[r[1]]),
    "rand1": lambda x, b, c, r, F: x[r[0]] + F * (x[r[1]] - x[r[2]]),
    "randtobest1": lambda x, b, c, r, F: x[r[0]] + F * (x[b] - x[r[0]]) + F * (x[r[1]] - x[r[2]]),
    "currenttobest1": lambda x, b, c, r, F: x[c] + F * (x[b] - x[c]) + F * (x[r[0]] - x[r[1]]),
    "best2": lambda x, b, c, r, F: x[b] + F * (x[r[0]] + x[r[1]] - x[r[2]] - x[r[3]]),
    "rand2": lambda x, b, c, r, F: x[r[0]] + F * (x[r[1]] + x[r[2]] - x[r[3]] - x[r[4]]),
}
DRAWS = {"best1": 2, "rand1": 3, "randtobest1": 3, "currenttobest1": 2, "best2": 4, "rand2": 5}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_builds_its_mutants_from_distinct_other_members(strategy):
    # With CR = 1 every coordinate comes from the mutant, so each trial must equal the
    # formula for some ordered choice of distinct members other than its target.
    opt = evaluated(strategy)
    x, F = opt.population, 0.7
    best = int(np.argmin(opt.population_losses))
    mutation = strategy[:-3]
    trials = opt.ask()
    for i, trial in enumerate(trials):
        others = [j for j in range(len(x)) if j != i]
        assert any(np.allclose(trial, MUTANTS[mutation](x, best, i, r, F), rtol=0, atol=1e-12)
                   for r in itertools.permutations(others, DRAWS[mutation])), (strategy, i)


@pytest.mark.parametrize("kind", ["bin", "exp"])
def test_crossover_takes_the_documented_coordinates(kind):
    n = 8
    # CR = 0: exactly one coordinate from the mutant, for both kinds
    opt = evaluated("rand1" + kind, CR=0.0, n=n, population=10)
    x = opt.population
    changed = opt.ask() != x
    assert (changed.sum(axis=1) == 1).all()
    # CR = 0.5: exp changes one cyclic run of coordinates; bin any subset
    runs, sizes = [], []
    for seed in range(20):
        opt = evaluated("rand1" + kind, CR=0.5, n=n, population=10, seed=seed)
        x = opt.population
        for row in opt.ask() != x:
            idx = np.flatnonzero(row)
            sizes.append(len(idx))
            # one cyclic run: at most one place where the changed set "wraps" or jumps
            gaps = np.count_nonzero(np.diff(np.concatenate([row, row[:1]]).astype(int)) == 1)
            runs.append(gaps <= 1)
    assert min(sizes) >= 1
    if kind == "exp":
        assert all(runs)
        assert np.mean(sizes) == pytest.approx(2.0, abs=0.4)   # 1 + sum_k 0.5^k, capped at n
    else:
        assert not all(runs)
        assert np.mean(sizes) == pytest.approx(0.5 * n + 0.5, abs=0.6)


def test_selection_keeps_a_trial_that_is_better_or_equal():
    opt = evaluated("best1bin")
    old_x, old_f = opt.population, opt.population_losses
    trials = opt.ask()
    f = old_f.copy()
    f[0] -= 1.0                                # better: replaces
    f[2] += 1.0                                # worse: kept out
    opt.tell(trials, f)                        # the others tie: replace, as SciPy
    x = opt.population
    np.testing.assert_array_equal(x[0], trials[0])
    np.testing.assert_array_equal(x[2], old_x[2])
    np.testing.assert_array_equal(x[1], trials[1])
    assert opt.best_loss == f[0] and opt.generation == 1


def test_immediate_updating_uses_accepted_trials_within_the_generation():
    seen = []
    opt = DifferentialEvolution([vector_param([3.0, -3.0])], population_size=6,
                                objective=lambda x: seen.append(x.copy()) or float(sphere(x)),
                                seed=0)
    opt.step()
    assert len(seen) == 12 and opt.generation == 1      # the start, then one generation
    x, f = opt.population, opt.population_losses
    np.testing.assert_array_equal(f, sphere(x))
    assert opt.best_loss == f.min() and opt.evaluations == 12


def test_bounds_keep_every_candidate_inside_and_accept_two_forms():
    n = 4
    low, high = np.array([-1.0, -2.0, 0.0, 0.5]), np.array([1.0, 0.0, 3.0, 0.6])
    for bounds in ((-1.0, 1.0), list(zip(low, high))):
        lo, hi = (np.full(n, -1.0), np.full(n, 1.0)) if len(bounds) == 2 else (low, high)
        opt = DifferentialEvolution([vector_param((lo + hi) / 2)], population_size=10,
                                    mutation_factor=2.0, bounds=bounds,
                                    updating="deferred", seed=1)
        for _ in range(15):
            X = opt.ask()
            assert ((X >= lo) & (X <= hi)).all()
            opt.tell(X, rosenbrock(X))


def test_bad_bounds_and_a_start_outside_them_are_clear_errors():
    p = [vector_param([0.0, 2.0])]
    with pytest.raises(ValueError, match=r"2 pairs\), got shape \(3, 2\)"):
        DifferentialEvolution(p, bounds=[(0, 1)] * 3)
    with pytest.raises(ValueError, match="lower bound must be below"):
        DifferentialEvolution(p, bounds=[(0, 1), (3, 3)])
    with pytest.raises(ValueError, match="finite"):
        DifferentialEvolution(p, bounds=(-np.inf, 1))
    with pytest.raises(ValueError, match="bounds must be a pair"):
        DifferentialEvolution(p, bounds=[(0, 1), (0,)])
    opt = DifferentialEvolution(p, bounds=(-1, 1), objective=lambda x: 0.0, seed=0)
    with pytest.raises(ValueError, match=r"outside bounds: value 1 is 2.0, bounds \(-1.0, 1.0\)"):
        opt.step()


def test_convergence_is_scipys_test_and_max_generations_stops():
    opt = DifferentialEvolution([vector_param([1.0, 1.0])], population_size=10, tol=0.5,
                                objective=sphere, vectorized=True, seed=0)
    while not opt.should_stop():
        opt.step()
    e = opt.population_losses
    assert opt.stop_reason == "convergence"
    assert np.std(e) <= 0.5 * abs(np.mean(e))
    opt = DifferentialEvolution([vector_param([1.0, 1.0])], population_size=10, tol=0,
                                max_generations=4, objective=sphere, vectorized=True, seed=0)
    reasons = [opt.step() and opt.stop_reason for _ in range(4)]
    assert reasons == [None, None, None, "max_generations"]


def test_dithering_draws_the_factor_once_per_generation_in_range():
    opt = DifferentialEvolution([vector_param([1.0, 1.0])], population_size=6,
                                mutation_factor=(0.5, 1.0), objective=sphere,
                                vectorized=True, seed=0)
    factors = []
    for _ in range(6):
        opt.step()
        factors.append(opt.state_dict()["search"]["state"]["scale"])
    assert all(0.5 <= F <= 1.0 for F in factors) and len(set(factors)) == 6


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(strategy="best3bin"), ValueError, "unknown DifferentialEvolution strategy.*rand2exp"),
    (dict(strategy="rand2bin", population_size=5), ValueError, "population_size >= 6"),
    (dict(population_size=2), ValueError, "population_size >= 3"),
    (dict(mutation_factor=2.5), ValueError, "mutation_factor"),
    (dict(mutation_factor=(1.0, 0.5)), ValueError, "low > high"),
    (dict(mutation_factor=(0.1, 0.2, 0.3)), ValueError, "pair"),
    (dict(crossover_probability=1.5), ValueError, "crossover_probability"),
    (dict(max_generations=0), ValueError, "max_generations >= 1"),
    (dict(tol=-1), ValueError, "tol"),
    (dict(init_scale=0), ValueError, "init_scale"),
    (dict(updating="soon"), ValueError, "'immediate' or 'deferred'"),
    (dict(updating="immediate", objective=sphere, vectorized=True), ValueError,
     "needs updating='deferred'"),
])
def test_de_bad_arguments_are_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        DifferentialEvolution([vector_param(np.zeros(3))], **kwargs)


def test_seed_000_de_example_runs_on_a_tiny_model():
    model, closure = tiny_regression()
    start = closure().item()
    optimizer = na.optim.DifferentialEvolution(
        model.parameters(),
        population_size=30,
        mutation_factor=0.8,
        crossover_probability=0.9,
        max_generations=1000,
        closure=closure,
    )
    for generation in range(40):
        loss = optimizer.step()
    assert loss == optimizer.best_loss == pytest.approx(closure().item(), rel=1e-6)
    assert loss < start / 4


# ==== particle swarm ========================================================================

CONSTRICTION = dict(inertia_weight=0.7298, cognitive_weight=1.49618, social_weight=1.49618)


@pytest.mark.parametrize("settings", [
    dict(CONSTRICTION),
    dict(CONSTRICTION, topology="ring"),
    dict(inertia_weight=(0.9, 0.4), max_iterations=1000, velocity_clamp=0.5),
], ids=["constriction", "ring", "decreasing-inertia"])
def test_pso_reaches_1e_6_on_the_10d_sphere(settings):
    w = vector_param(np.ones(10))
    opt = ParticleSwarmOptimization([w], objective=sphere, vectorized=True, init_scale=2.0,
                                    seed=0, **settings)
    while opt.best_loss is None or opt.best_loss >= 1e-6:
        opt.step()
        assert not opt.should_stop(), opt.best_loss
    assert sphere(w.data) == opt.best_loss


@pytest.mark.parametrize("settings", [
    dict(),
    dict(topology="ring", velocity_clamp=0.05),
    dict(inertia_weight=(0.9, 0.4), max_iterations=10),
], ids=["global", "ring-clamped", "decreasing-inertia"])
def test_pso_iteration_is_the_velocity_update_with_per_coordinate_random_factors(settings):
    S, n = 5, 3
    opt = ParticleSwarmOptimization([vector_param([0.5, -0.5, 1.0])], swarm_size=S,
                                    init_scale=1.0, seed=3, **settings)
    w0, wT = (settings.get("inertia_weight", 0.9),) * 2 if not isinstance(
        settings.get("inertia_weight"), tuple) else settings["inertia_weight"]
    for t in range(4):
        X = opt.ask()
        before = opt.state_dict()["search"]    # the generator as tell will find it
        s = before["state"]
        f = rosenbrock(X)
        opt.tell(X, f)
        # personal bests, by hand
        p, p_f = s["best_positions"].copy(), s["best_losses"].copy()
        for i in range(S):
            if f[i] < p_f[i]:
                p[i], p_f[i] = X[i], f[i]
        # leaders: the whole swarm, or i-1, i, i+1
        if settings.get("topology") == "ring":
            leaders = [min(((i - 1) % S, i, (i + 1) % S), key=lambda j: p_f[j])
                       for i in range(S)]
        else:
            leaders = [int(np.argmin(p_f))] * S
        rng = np.random.default_rng()
        rng.bit_generator.state = before["rng"]
        r1, r2 = rng.random((S, n)), rng.random((S, n))
        inertia = w0 + (wT - w0) * min(t / max(opt._hyper["max_iterations"] - 1, 1), 1.0)
        v = (inertia * s["velocities"] + 2.0 * r1 * (p - X)
             + 2.0 * r2 * (p[leaders] - X))
        if settings.get("velocity_clamp"):
            v = np.clip(v, -settings["velocity_clamp"], settings["velocity_clamp"])
        np.testing.assert_allclose(opt.velocities, v, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(opt.positions, X + v, rtol=1e-12, atol=1e-15)
        assert opt.best_loss == p_f.min()


def test_pso_starts_with_zero_velocity_around_the_weights():
    opt = ParticleSwarmOptimization([vector_param([1.0, 2.0])], swarm_size=8, init_scale=0.3,
                                    seed=0)
    X = opt.ask()
    np.testing.assert_array_equal(X[0], [1.0, 2.0])
    assert (np.abs(X - [1.0, 2.0]) <= 0.3).all() and not opt.velocities.any()


def test_pso_reevaluates_the_best_and_averages_its_losses():
    opt = ParticleSwarmOptimization([vector_param([1.0, 1.0])], swarm_size=4,
                                    reevaluate_best=True, seed=0)
    X = opt.ask()
    assert X.shape == (4, 2)                   # nothing to re-evaluate yet
    opt.tell(X, sphere(X))
    s = opt.state_dict()["search"]["state"]
    g = int(np.argmin(s["best_losses"]))
    X = opt.ask()
    assert X.shape == (5, 2)
    np.testing.assert_array_equal(X[-1], s["best_positions"][g])
    f = np.full(5, 100.0)                      # no particle improves its best
    f[-1] = s["best_losses"][g] + 1.0
    opt.tell(X, f)
    after = opt.state_dict()["search"]["state"]
    assert after["best_losses"][g] == pytest.approx(s["best_losses"][g] + 0.5)
    assert after["best_counts"][g] == 2


def test_pso_reevaluation_removes_much_of_the_lucky_bias_on_a_noisy_loss():
    bias = {}
    for reevaluate in (False, True):
        gaps = []
        for seed in range(4):
            noise = np.random.default_rng(seed)
            opt = ParticleSwarmOptimization(
                [vector_param([1.0, 1.0])], swarm_size=10, reevaluate_best=reevaluate,
                init_scale=1.0, seed=seed, vectorized=True,
                objective=lambda X: sphere(X) + 0.5 * noise.standard_normal(len(X)),
                **CONSTRICTION)
            for _ in range(60):
                opt.step()
            gaps.append(opt.best_loss - sphere(opt.best_vector))   # < 0: optimistic
        bias[reevaluate] = np.mean(gaps)
    assert bias[False] < -1.0
    assert abs(bias[True]) < 0.5 * abs(bias[False])


def test_pso_stops_after_max_iterations():
    opt = ParticleSwarmOptimization([vector_param([1.0])], max_iterations=3, objective=sphere,
                                    vectorized=True, seed=0)
    reasons = [opt.step() and opt.stop_reason for _ in range(3)]
    assert reasons == [None, None, "max_iterations"] and opt.should_stop()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(swarm_size=1), ValueError, "swarm_size >= 2"),
    (dict(swarm_size=2, topology="ring"), ValueError, "swarm_size >= 3"),
    (dict(topology="star"), ValueError, "'global' or 'ring'"),
    (dict(inertia_weight=-0.1), ValueError, "inertia_weight"),
    (dict(inertia_weight=(0.9, 0.4, 0.1)), ValueError, "pair"),
    (dict(inertia_weight="high"), TypeError, "inertia_weight"),
    (dict(cognitive_weight=-1), ValueError, "cognitive_weight"),
    (dict(social_weight=float("inf")), ValueError, "social_weight"),
    (dict(max_iterations=0), ValueError, "max_iterations >= 1"),
    (dict(velocity_clamp=0), ValueError, "velocity_clamp"),
    (dict(reevaluate_best="yes"), TypeError, "reevaluate_best must be True or False"),
    (dict(init_scale=-1), ValueError, "init_scale"),
])
def test_pso_bad_arguments_are_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        ParticleSwarmOptimization([vector_param(np.zeros(3))], **kwargs)


def test_pso_defaults_are_the_seeds():
    h = ParticleSwarmOptimization([vector_param(np.zeros(3))], seed=0)._hyper
    assert (h["swarm_size"], h["inertia_weight"], h["cognitive_weight"], h["social_weight"],
            h["max_iterations"], h["velocity_clamp"], h["topology"], h["reevaluate_best"]) \
        == (20, 0.9, 2.0, 2.0, 1000, None, "global", False)


def test_seed_000_pso_example_runs_on_a_tiny_model():
    model, closure = tiny_regression()
    start = closure().item()
    optimizer = na.optim.ParticleSwarmOptimization(
        model.parameters(),
        swarm_size=20,
        inertia_weight=0.9,
        cognitive_weight=2.0,
        social_weight=2.0,
        max_iterations=1000,
        closure=closure,
    )
    for iteration in range(30):
        loss = optimizer.step()
    assert loss == optimizer.best_loss == pytest.approx(closure().item(), rel=1e-6)
    assert loss < start
