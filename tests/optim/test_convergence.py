"""Every optimizer of the table reaches the minimum of a quadratic and of Rosenbrock.

The settings (``case.quadratic``, ``case.rosenbrock``) are ordinary ones for
each method, a decaying learning rate (a schedule as ``lr``) for those whose
steps do not shrink near a minimum (Lion, LARS, LAMB); the problems are in
``cases.py``. Gradients come from neural_arch's own backward, so this also
exercises the optimizer inside a real training loop.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.optim.cases import CASES, quadratic, rosenbrock, train

PROBLEMS = {"quadratic": (quadratic, 1e-4), "rosenbrock": (rosenbrock, 1e-2)}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("case", CASES, ids=str)
def test_reaches_the_minimum(case, problem):
    make, tol = PROBLEMS[problem]
    setting = dict(getattr(case, problem))
    kwargs, steps = setting.pop("kwargs"), setting.pop("steps")
    params, loss, minimizer = make(**setting)
    start = loss().item()
    opt = case.cls(params, **kwargs)
    train(opt, params, loss, steps)
    x = np.concatenate([p.data.reshape(-1) for p in params])
    assert np.all(np.isfinite(x))
    assert np.abs(x - minimizer).max() < tol, (x, loss().item(), start)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_maximize_climbs_the_negated_quadratic(case):
    params, loss, minimizer = quadratic()
    opt = case.cls(params, maximize=True, **case.quadratic["kwargs"])

    def negated():
        return -loss()
    train(opt, params, negated, case.quadratic["steps"])
    assert np.abs(params[0].data - minimizer).max() < 1e-4


def test_shifted_rosenbrock_is_the_same_landscape():
    (theta,), loss, minimizer = rosenbrock()
    (shifted,), shifted_loss, shifted_minimizer = rosenbrock(shift=3.0)
    np.testing.assert_array_equal(shifted.data, theta.data + 3.0)
    np.testing.assert_array_equal(shifted_minimizer, minimizer + 3.0)
    assert shifted_loss().item() == pytest.approx(loss().item(), rel=1e-14)
    shifted.data = shifted_minimizer.copy()
    assert shifted_loss().item() == 0.0
