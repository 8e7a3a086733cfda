"""Every optimizer of the table against its PyTorch twin: 200 steps on a tanh MLP.

Parameters and every state entry (PyTorch's keys, which ours must equal) agree to
``case.rtol`` relative to each array's scale, with the defaults, with seeded
random and with extreme hyper-parameters, with two parameter groups of different
settings, and when driven by a closure. Rows without a twin (Lion, LARS, LAMB)
are held to their references in the module their row names.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from tests.helpers import requires_torch, torch
from tests.optim.cases import (CASES, MLP_SHAPES, TORCH_CASES, mlp_arrays, na_mlp,
                               torch_mlp)

pytestmark = requires_torch

STEPS = 200


def _close(actual, expected, rtol, what):
    expected = np.asarray(expected)
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def assert_same(case, opt, topt, params, tparams):
    """Parameters and state of the two optimizers agree to ``case.rtol``."""
    for i, (p, tp) in enumerate(zip(params, tparams)):
        _close(p.data, tp.detach().numpy(), case.rtol, f"{case}: parameter {i}")
        tstate = topt.state.get(tp, {})
        state = opt.state.get(p, {})
        assert set(state) == set(tstate), f"{case}: state keys of parameter {i}"
        for key, tv in tstate.items():
            if tv.ndim == 0:
                assert state[key] == tv.item(), f"{case}: state {key!r} of parameter {i}"
            else:
                _close(state[key], tv.numpy(), case.rtol, f"{case}: {key} of parameter {i}")


def _spec(params, groups, translate=dict):
    """``params`` as one group, or as groups (W1, b1), (W2, b2) with ``groups``' overrides."""
    if groups is None:
        return params
    return [dict(params=params[:2], **translate(groups[0])),
            dict(params=params[2:], **translate(groups[1]))]


def run_pair(case, defaults, groups=None, closure=False, steps=STEPS, seed=0):
    """Train the MLP with both optimizers; ``groups``: overrides for (W1, b1), (W2, b2)."""
    arrays = mlp_arrays(seed)
    params, loss = na_mlp(arrays)
    tparams, tloss = torch_mlp(arrays)
    opt = case.cls(_spec(params, groups), **defaults)
    topt = getattr(torch.optim, case.torch_name)(_spec(tparams, groups, case.to_torch),
                                                  **case.to_torch(defaults))

    def na_closure():
        opt.zero_grad()
        out = loss()
        out.backward()
        return out

    def torch_closure():
        topt.zero_grad()
        out = tloss()
        out.backward()
        return out

    try:
        with na.autograd.grad_clip(None):      # PyTorch has no automatic clamp
            for _ in range(steps):
                if closure:
                    got, want = opt.step(na_closure), topt.step(torch_closure)
                    _close(got.item(), want.item(), case.rtol, f"{case}: closure loss")
                else:
                    na_closure()
                    opt.step()
                    torch_closure()
                    topt.step()
        assert opt.step_count == steps
        assert_same(case, opt, topt, params, tparams)
    except AssertionError as error:
        # Say whether PyTorch reproduces itself here: a chaotic trajectory is no evidence
        # of a wrong update (see the note on the samplers in cases.py).
        drift = torch_self_drift(case, defaults, groups, steps, seed)
        verdict = ("chaotic: no implementation can agree to 1e-10 here" if drift > 1e-12
                   else "stable: look for a difference in the update (or in the gradients, "
                        "where tanh saturates)")
        raise AssertionError(f"{error}\nPyTorch against itself with the initial weights moved "
                             f"by 1e-15 (relative) differs by {drift:.1e} after {steps} "
                             f"steps; the trajectory is {verdict}") from None


def torch_self_drift(case, defaults, groups=None, steps=STEPS, seed=0):
    """Relative distance after ``steps`` between two PyTorch runs 1e-15 apart at the start."""
    runs = []
    for nudge in (0.0, 1e-15):
        arrays = dict(mlp_arrays(seed))
        rng = np.random.default_rng(0)
        for key, shape in MLP_SHAPES.items():
            arrays[key] = arrays[key] * (1.0 + nudge * rng.normal(size=shape))
        tparams, tloss = torch_mlp(arrays)
        topt = getattr(torch.optim, case.torch_name)(_spec(tparams, groups, case.to_torch),
                                                      **case.to_torch(defaults))
        for _ in range(steps):
            topt.zero_grad()
            tloss().backward()
            topt.step()
        runs.append(np.concatenate([p.detach().numpy().ravel() for p in tparams]))
    return float(np.abs(runs[0] - runs[1]).max() / max(1.0, np.abs(runs[0]).max()))


@pytest.mark.parametrize("case", TORCH_CASES, ids=str)
def test_defaults_match_torch(case):
    run_pair(case, {}, steps=case.defaults_steps)


@pytest.mark.parametrize("draw", range(4))
@pytest.mark.parametrize("case", TORCH_CASES, ids=str)
def test_random_hyperparameters_match_torch(case, draw):
    rng = np.random.default_rng(1000 + draw)
    run_pair(case, case.sample(rng), seed=draw)


@pytest.mark.parametrize("case,extreme",
                         [(c, e) for c in TORCH_CASES for e in c.extremes],
                         ids=lambda x: str(x) if not isinstance(x, dict) else
                         ",".join(f"{k}={v}" for k, v in x.items()))
def test_extreme_hyperparameters_match_torch(case, extreme):
    run_pair(case, extreme)


@pytest.mark.parametrize("draw", range(2))
@pytest.mark.parametrize("case", TORCH_CASES, ids=str)
def test_parameter_groups_with_different_settings_match_torch(case, draw):
    rng = np.random.default_rng(2000 + draw)
    defaults = case.sample(rng)
    # group 0 keeps the defaults but for its lr; group 1 draws everything anew
    run_pair(case, defaults, groups=[dict(lr=defaults["lr"] * 0.5), case.sample(rng)])


@pytest.mark.parametrize("case", TORCH_CASES, ids=str)
def test_closure_steps_match_torch(case):
    run_pair(case, case.sample(np.random.default_rng(3000)), closure=True)


@pytest.mark.parametrize("case", [c for c in CASES if c.torch_name is None], ids=str)
def test_rows_without_a_twin_have_a_step_for_step_reference(case):
    from pathlib import Path
    path = Path(__file__).with_name(case.reference)
    source = path.read_text(encoding="utf-8")
    assert f'get_case("{case.name}")' in source       # it runs the row's own draws
