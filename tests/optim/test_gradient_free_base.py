"""The contract shared by the gradient-free optimizers (CMAES, DifferentialEvolution, PSO).

Closure/objective handling under no_grad, the start at the current weights, the best
candidate left in the parameters, ask/tell, vectorized evaluation, seeds, and
state_dict resumes that continue identically.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import neural_arch as na
from neural_arch import backend
from neural_arch.optim import (CMAES, DifferentialEvolution, GradientFreeOptimizer,
                               ParticleSwarmOptimization)

# (class, kwargs) exercising each optimizer and its main variants, on small problems.
VARIANTS = {
    "cmaes": (CMAES, dict(population_size=6, sigma=0.3)),
    "sep-cmaes": (CMAES, dict(population_size=6, sigma=0.3, separable=True)),
    "de-immediate": (DifferentialEvolution, dict(population_size=8, strategy="rand1bin")),
    "de-deferred": (DifferentialEvolution, dict(population_size=8, updating="deferred",
                                                strategy="currenttobest1exp",
                                                mutation_factor=(0.5, 1.0))),
    "de-bounds": (DifferentialEvolution, dict(population_size=8, bounds=(-3.0, 3.0))),
    "pso": (ParticleSwarmOptimization, dict(swarm_size=6, velocity_clamp=0.5)),
    "pso-ring": (ParticleSwarmOptimization, dict(swarm_size=6, topology="ring",
                                                 reevaluate_best=True,
                                                 inertia_weight=(0.9, 0.4))),
}
ALL = sorted(VARIANTS)


def quadratic_params(dtype="float64"):
    """Two parameters of different shapes (5 values in all), away from the optimum."""
    a = na.Parameter(np.array([[1.0, -2.0], [0.5, 1.5]]), dtype=dtype)
    b = na.Parameter(np.array([2.0]), dtype=dtype)
    return [a, b]


TARGET = np.array([0.3, -0.2, 0.1, 0.4, -0.5])


def loss_of(params):
    """The loss as a neural_arch expression of the parameters (a closure's body)."""
    a, b = params
    flat = na.cat([a.reshape(-1), b.reshape(-1)])
    return ((flat - na.Tensor(TARGET, dtype=a.dtype, device=a.device)) ** 2).sum()


def flat_loss(x):
    """The same loss on the flat vector (any array module)."""
    return float(backend.asnumpy(((x - TARGET.astype(x.dtype)) ** 2).sum()))


def batch_loss(X):
    xp = backend.get_array_module(X)
    return ((X - xp.asarray(TARGET, dtype=X.dtype)) ** 2).sum(axis=1)


def make(name, params=None, **extra):
    cls, kwargs = VARIANTS[name]
    params = quadratic_params() if params is None else params
    return cls(params, seed=3, **{**kwargs, **extra}), params


# ---- the loss ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_bare_step_without_a_loss_says_how_to_give_one(name):
    opt, _ = make(name)
    with pytest.raises(RuntimeError, match=r"closure.*objective="):
        opt.step()


@pytest.mark.parametrize("name", ALL)
def test_closure_runs_under_no_grad_and_step_returns_the_best_loss(name):
    opt, params = make(name)
    seen = []

    def closure():
        seen.append(na.is_grad_enabled())
        return loss_of(params)

    losses = [opt.step(closure) for _ in range(6)]
    assert seen and not any(seen)
    assert all(later <= earlier for earlier, later in zip(losses, losses[1:]))
    # the parameters hold the best candidate, whose loss step returned
    assert losses[-1] == opt.best_loss
    assert float(loss_of(params).item()) == pytest.approx(losses[-1], rel=1e-12)
    for p, best in zip(params, opt.best_params):
        np.testing.assert_array_equal(p.data, best)
    assert all(p.grad is None for p in params)
    assert opt.evaluations > 0 and opt.step_count == 6


@pytest.mark.parametrize("name", ALL)
def test_closure_given_at_construction_drives_a_bare_step(name):
    params = quadratic_params()
    opt, _ = make(name, params, closure=lambda: loss_of(params))
    first = opt.step()
    for _ in range(5):
        last = opt.step()
    assert last <= first and last == opt.best_loss


@pytest.mark.parametrize("name", ALL)
def test_closure_objective_and_vectorized_objective_give_the_same_search(name):
    # a vectorized objective evaluates whole generations: DE runs deferred in all three
    extra = {"updating": "deferred"} if name.startswith("de") else {}
    runs = []
    for how in ("closure", "objective", "vectorized"):
        params = quadratic_params()
        if how == "closure":
            opt, _ = make(name, params, closure=lambda p=params: loss_of(p), **extra)
        elif how == "objective":
            opt, _ = make(name, params, objective=flat_loss, **extra)
        else:
            opt, _ = make(name, params, objective=batch_loss, vectorized=True, **extra)
        runs.append([opt.step() for _ in range(4)] + [opt.best_vector])
    for other in runs[1:]:
        np.testing.assert_allclose(other[:-1], runs[0][:-1], rtol=1e-12)
        np.testing.assert_allclose(other[-1], runs[0][-1], rtol=1e-12)


@pytest.mark.parametrize("name", ["cmaes", "de-deferred", "pso"])
def test_objective_receives_candidates_in_the_parameters_dtype(name):
    seen = set()

    def objective(X):
        seen.add((X.dtype, X.shape[1]))
        return batch_loss(X)
    opt, _ = make(name, quadratic_params("float32"), objective=objective, vectorized=True)
    opt.step()
    assert seen == {(np.dtype("float32"), 5)}


@pytest.mark.parametrize("name", ["cmaes", "de-immediate", "pso"])
def test_a_nan_loss_is_never_chosen(name):
    calls = [0]

    def objective(x):
        calls[0] += 1
        return float("nan") if calls[0] % 2 else flat_loss(x)
    opt, params = make(name, objective=objective)
    for _ in range(4):
        loss = opt.step()
    assert np.isfinite(loss) and np.isfinite(params[0].data).all()


def test_a_non_scalar_closure_result_is_a_clear_error():
    params = quadratic_params()
    opt = CMAES(params, seed=0, closure=lambda: params[0] * 2)
    with pytest.raises(ValueError, match="scalar loss.*shape \\(2, 2\\)"):
        opt.step()
    opt = CMAES(params, seed=0, closure=lambda: "low")
    with pytest.raises(TypeError, match="scalar loss"):
        opt.step()
    opt = CMAES(params, seed=0, objective=lambda X: batch_loss(X)[:2], vectorized=True)
    with pytest.raises(ValueError, match="one loss per candidate"):
        opt.step()


# ---- the start and the parameters ---------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_the_search_starts_from_the_weights_at_the_first_step(name):
    opt, params = make(name)
    params[0].data[...] = 0.25                 # weights changed after construction count
    start = np.concatenate([p.data.ravel() for p in params])
    X = opt.ask()
    assert X.shape[1] == 5
    if isinstance(opt, CMAES):
        np.testing.assert_array_equal(opt.mean, start)
    else:
        np.testing.assert_array_equal(X[0], start)      # the first member/particle


@pytest.mark.parametrize("name", ["cmaes", "de-immediate", "pso"])
def test_float32_parameters_and_several_groups_are_searched_as_one_vector(name):
    a = na.Parameter(np.ones((2, 2)), dtype="float32")
    b = na.Parameter(np.ones(1), dtype="float32")
    cls, kwargs = VARIANTS[name]
    opt = cls([{"params": [a]}, {"params": [b]}], seed=1, objective=flat_loss, **kwargs)
    assert opt.dimension == 5
    for _ in range(5):
        loss = opt.step()
    assert a.dtype == np.float32 and b.dtype == np.float32
    np.testing.assert_allclose(np.concatenate([a.data.ravel(), b.data.ravel()]),
                               opt.best_vector, rtol=1e-6)
    assert loss < flat_loss(np.ones(5))


def test_adding_a_parameter_group_later_is_refused():
    opt, _ = make("cmaes")
    with pytest.raises(RuntimeError, match="fixed at construction"):
        opt.add_param_group({"params": [na.Parameter(np.ones(2))]})


# ---- ask / tell ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_ask_tell_is_the_same_search_as_step_and_leaves_the_parameters_alone(name):
    extra = {"updating": "deferred"} if name.startswith("de") else {}
    stepped, _ = make(name, objective=batch_loss, vectorized=True, **extra)
    told, params = make(name, **extra)
    before = [p.data.copy() for p in params]
    for _ in range(4):
        stepped.step()
        while True:                           # DE's first step also evaluates the start
            X = told.ask()
            told.tell(X, batch_loss(X))
            if told.generation == stepped.generation:
                break
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.data, b)
    assert told.best_loss == stepped.best_loss
    np.testing.assert_array_equal(told.best_vector, stepped.best_vector)
    assert told.evaluations == 0              # told losses were measured by the caller
    told.apply_best()
    np.testing.assert_array_equal(np.concatenate([p.data.ravel() for p in params]),
                                  told.best_vector)


def test_ask_tell_misuse_is_a_clear_error():
    opt, _ = make("cmaes")
    with pytest.raises(RuntimeError, match="without a pending ask"):
        opt.tell(np.zeros((6, 5)), np.zeros(6))
    with pytest.raises(RuntimeError, match="evaluated no candidate"):
        opt.apply_best()
    X = opt.ask()
    with pytest.raises(RuntimeError, match="still wait for their losses"):
        opt.ask()
    with pytest.raises(RuntimeError, match="finish the ask/tell round"):
        opt.step(lambda: 0.0)
    with pytest.raises(ValueError, match=r"candidates of shape \(6, 5\)"):
        opt.tell(X[:3], np.zeros(3))
    with pytest.raises(ValueError, match="6 losses"):
        opt.tell(X, np.zeros(5))
    opt.tell(X, batch_loss(X))                 # the round can still be finished


# ---- seeds --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cmaes", "de-immediate", "pso"])
def test_same_seed_same_search_other_seed_other_search(name):
    def run(seed):
        cls, kwargs = VARIANTS[name]
        opt = cls(quadratic_params(), seed=seed, objective=flat_loss, **kwargs)
        return [opt.step() for _ in range(3)]
    assert run(5) == run(5)
    assert run(5) != run(6)


def test_seed_none_follows_manual_seed():
    def run():
        opt = CMAES(quadratic_params(), objective=flat_loss)
        return opt.seed, [opt.step() for _ in range(3)]
    na.manual_seed(11)
    first = run()
    na.manual_seed(11)
    assert run() == first


# ---- state_dict -------------------------------------------------------------------------

def assert_plain(obj):
    """Only dicts, lists/tuples, strings, numbers, bools, None and arrays."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, (str, int)), k
            assert_plain(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            assert_plain(v)
    else:
        assert obj is None or isinstance(obj, (str, int, float, bool, np.ndarray)), type(obj)


def trajectory(opt, params, steps):
    out = []
    for _ in range(steps):
        out.append(opt.step(lambda: loss_of(params)))
        out.append(np.concatenate([p.data.ravel() for p in params]).copy())
    return out


def assert_same_trajectory(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", ALL)
def test_resume_from_state_dict_continues_identically(name):
    opt, params = make(name)
    trajectory(opt, params, 3)
    sd = opt.state_dict()
    assert_plain(sd)
    json.dumps(sd["search"]["rng"])            # the generator's state is JSON-able
    saved = copy.deepcopy(sd)
    expected = trajectory(opt, params, 4)
    # the dict did not change while the run went on
    assert sd["search"]["generation"] == saved["search"]["generation"]
    np.testing.assert_array_equal(sd["search"]["best_x"], saved["search"]["best_x"])

    other_params = quadratic_params()          # fresh weights: the state carries the search
    cls, kwargs = VARIANTS[name]
    resumed = cls(other_params, seed=99, **kwargs)
    resumed.load_state_dict(saved)
    for p, q in zip(other_params, params):     # the user restores the model, as always
        p.data[...] = 0
    assert resumed.seed == opt.seed and resumed.generation == saved["search"]["generation"]
    assert_same_trajectory(trajectory(resumed, other_params, 4), expected)
    assert resumed.stop_reason == opt.stop_reason


def test_resume_through_a_checkpoint_file_and_with_a_pending_ask(tmp_path):
    from neural_arch import io
    opt, params = make("cmaes")
    trajectory(opt, params, 2)
    X = opt.ask()                              # saved between ask and tell
    io.save(opt.state_dict(), tmp_path / "cma.npz")
    opt.tell(X, batch_loss(X))
    expected = trajectory(opt, params, 3)
    resumed_params = quadratic_params()
    resumed = CMAES(resumed_params, population_size=6, sigma=0.3, seed=0)
    resumed.load_state_dict(io.load(tmp_path / "cma.npz"))
    with pytest.raises(RuntimeError, match="still wait"):
        resumed.ask()
    resumed.tell(X, batch_loss(X))
    assert_same_trajectory(trajectory(resumed, resumed_params, 3), expected)


def test_load_state_dict_refuses_a_mismatch_and_changes_nothing():
    opt, params = make("cmaes")
    trajectory(opt, params, 2)
    good = opt.state_dict()
    other = CMAES([na.Parameter(np.ones(3))], seed=0)
    with pytest.raises(ValueError, match="searched 5 values, this CMAES has 3"):
        other.load_state_dict(good)
    de, _ = make("de-immediate")
    with pytest.raises(ValueError, match="unknown hyper-parameters"):
        de.load_state_dict(good)
    sgd_like = {"state": {}, "param_groups": good["param_groups"]}
    with pytest.raises(ValueError, match="no 'search' entry"):
        opt.load_state_dict(sgd_like)
    broken = copy.deepcopy(good)
    broken["search"]["state"]["C"] = np.eye(4)
    before = opt.state_dict()
    with pytest.raises(ValueError, match="'C' has shape"):
        opt.load_state_dict(broken)
    broken = copy.deepcopy(good)
    broken["search"]["rng"] = {"bit_generator": "MT19937"}
    with pytest.raises(ValueError, match="PCG64"):
        opt.load_state_dict(broken)
    broken = copy.deepcopy(good)
    broken["search"]["hyperparameters"]["sigma"] = -1.0
    with pytest.raises(ValueError, match="sigma"):
        opt.load_state_dict(broken)
    after = opt.state_dict()
    assert after["search"]["generation"] == before["search"]["generation"]
    np.testing.assert_array_equal(after["search"]["state"]["C"], before["search"]["state"]["C"])
    assert after["search"]["rng"] == before["search"]["rng"]


# ---- bad arguments -------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [CMAES, DifferentialEvolution, ParticleSwarmOptimization])
def test_bad_base_arguments_are_clear_errors(cls):
    params = quadratic_params()
    with pytest.raises(TypeError, match="closure must be callable"):
        cls(params, closure=3)
    with pytest.raises(TypeError, match="objective must be callable"):
        cls(params, objective="sphere")
    with pytest.raises(ValueError, match="not both"):
        cls(params, closure=lambda: 0.0, objective=flat_loss)
    with pytest.raises(ValueError, match="vectorized=True describes objective="):
        cls(params, vectorized=True)
    with pytest.raises(TypeError, match="seed must be an integer"):
        cls(params, seed=1.5)
    with pytest.raises(ValueError, match="seed >= 0"):
        cls(params, seed=-1)
    with pytest.raises(TypeError, match="unexpected keyword|got an unexpected"):
        cls(params, learning_rate=0.1)
    opt = cls(params, seed=0)
    with pytest.raises(TypeError, match="callable closure"):
        opt.step(closure=5)
    assert isinstance(opt, GradientFreeOptimizer)
    assert "dimension=5" in repr(opt)


# ---- devices ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cmaes", "de-deferred", "pso"])
def test_parameters_on_a_strict_device_give_the_cpu_search(name):
    from tests import fake_cupy
    fake_cupy.register()
    results = {}
    for device in ("cpu", "fake"):
        params = [na.Parameter(backend.to_device(p.data, device)) for p in quadratic_params()]
        opt, _ = make(name, params)
        for _ in range(3):
            loss = opt.step(lambda: loss_of(params))
        assert all(backend.device_of(p.data) == params[0].device for p in params)
        assert all(backend.device_of(b) == params[0].device for b in opt.best_params)
        results[device] = (loss, [backend.asnumpy(p.data) for p in params])
    assert results["cpu"][0] == pytest.approx(results["fake"][0], rel=1e-12)
    for a, b in zip(results["cpu"][1], results["fake"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
