"""Table rows for Adamax, NAdam, RAdam (PyTorch twins), Lion and LAMB (no twin).

``CASES`` is appended to the table in ``cases.py``. Lion and LAMB have no
``torch.optim`` twin: ``test_lion_lamb.py`` holds them to the papers' equations
(and to pytorch-optimizer where its variant is the same) with the same draws.
"""
from __future__ import annotations

import neural_arch as na
from tests.optim.cases import Case, _log_uniform, _maybe


def _betas(rng):
    return (_maybe(rng, float(rng.uniform(0.5, 0.99)), 0.8), float(rng.uniform(0.95, 0.9999)))


def sample_adamax(rng):
    return dict(lr=_log_uniform(rng, 1e-4, 0.1), betas=_betas(rng),
                eps=_log_uniform(rng, 1e-12, 1e-4),
                weight_decay=_maybe(rng, _log_uniform(rng, 1e-4, 0.1)),
                maximize=bool(rng.random() < 0.3))


def sample_nadam(rng):
    kwargs = sample_adamax(rng)
    kwargs.update(momentum_decay=_log_uniform(rng, 1e-4, 0.5),
                  decoupled_weight_decay=bool(rng.random() < 0.5))
    return kwargs


def sample_radam(rng):
    kwargs = sample_adamax(rng)
    kwargs.update(decoupled_weight_decay=bool(rng.random() < 0.5))
    return kwargs


def sample_lion(rng):
    return dict(lr=_log_uniform(rng, 1e-5, 1e-2),
                betas=(float(rng.uniform(0.0, 0.99)), float(rng.uniform(0.9, 0.999))),
                weight_decay=_maybe(rng, _log_uniform(rng, 1e-3, 1.0)),
                maximize=bool(rng.random() < 0.3))


def sample_lamb(rng):
    return dict(lr=_log_uniform(rng, 1e-4, 3e-2), betas=_betas(rng),
                eps=_log_uniform(rng, 1e-12, 1e-4),
                weight_decay=_maybe(rng, _log_uniform(rng, 1e-4, 0.1)),
                bias_correction=bool(rng.random() < 0.5),
                maximize=bool(rng.random() < 0.3))


# See ADAM_EXTREMES in cases.py for why no row goes beyond lr = 0.5.
ADAMAX_EXTREMES = (
    dict(lr=0.1, betas=(0.0, 0.0)),                 # m = g, u = |g| + ε: sign descent
    dict(lr=1e-3, betas=(0.99999, 0.99999)),
    dict(lr=0.3, eps=0.0),
    dict(lr=0.01, eps=10.0),                        # ε dominates u
    dict(lr=1e-6, weight_decay=10.0, maximize=True),
)

NADAM_EXTREMES = (
    dict(lr=0.1, betas=(0.0, 0.0)),                 # μ_t = 0, v = g²: sign descent
    dict(lr=1e-3, betas=(0.99999, 0.99999)),
    dict(lr=0.01, momentum_decay=0.0),              # μ_t = β1/2 for ever
    dict(lr=0.01, momentum_decay=10.0),             # μ_t = β1 almost at once
    dict(lr=0.3, eps=0.0),
    dict(lr=1e-6, weight_decay=10.0, maximize=True),
    dict(lr=0.01, weight_decay=10.0, decoupled_weight_decay=True),
)

RADAM_EXTREMES = (
    dict(lr=0.01, betas=(0.0, 0.0)),                # ρ_∞ = 1: never rectified, plain SGD
    dict(lr=0.01, betas=(0.9, 0.8)),                # ρ_∞ = 9: rectified from step 7
    dict(lr=1e-3, betas=(0.99999, 0.99999)),
    dict(lr=0.3, eps=0.0),
    dict(lr=1e-6, weight_decay=10.0, maximize=True),
    dict(lr=0.01, weight_decay=10.0, decoupled_weight_decay=True),
)

LION_EXTREMES = (
    dict(lr=0.01, betas=(0.0, 0.0)),                # c = m = g: sign descent
    dict(lr=1e-3, betas=(0.999, 0.999)),
    dict(lr=0.0, weight_decay=1.0),                 # state moves, parameters do not
    dict(lr=0.05, weight_decay=20.0),               # 1 - lr λ = 0: decay zeroes θ first
    dict(lr=1e-4, weight_decay=10.0, maximize=True),
)

# A small β2 makes r_t = m̂/(√v̂ + ε) jump between ±1 wherever a gradient crosses zero,
# and the trajectory chaotic (two exact implementations drift apart by 1e-4), hence 0.9.
LAMB_EXTREMES = (
    dict(lr=0.01, betas=(0.0, 0.9)),                # no momentum
    dict(lr=1e-3, betas=(0.99999, 0.99999)),
    dict(lr=0.01, eps=0.0),
    dict(lr=0.01, eps=10.0),                        # ε dominates: r ∝ m, still normalised
    dict(lr=0.01, weight_decay=100.0),              # u ≈ λθ: the step mostly shrinks θ
    dict(lr=1e-3, bias_correction=False, weight_decay=0.1, maximize=True),
)

CASES = [
    Case("adamax", na.optim.Adamax, "Adamax", sample_adamax, ADAMAX_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.1), steps=300),
         rosenbrock=dict(kwargs=dict(lr=0.01, betas=(0.9, 0.99)), steps=1000)),
    Case("nadam", na.optim.NAdam, "NAdam", sample_nadam, NADAM_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.1), steps=250),
         rosenbrock=dict(kwargs=dict(lr=0.01, betas=(0.95, 0.99), momentum_decay=0.5),
                         steps=1500)),
    Case("radam", na.optim.RAdam, "RAdam", sample_radam, RADAM_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.1), steps=400),
         # the first steps (ρ_t <= 5) are SGD with momentum: a small lr survives the
         # gradients of ~200 at the start
         rosenbrock=dict(kwargs=dict(lr=0.005, betas=(0.9, 0.99)), steps=2000)),
    # Lion moves every coordinate by exactly ±lr, so it ends in a cycle of that size
    # around a minimum. On the quadratic, lr = 0.01 divides the distances to the
    # minimum and the cycle alternates between the minimum and a point lr away: an
    # even step count ends on the minimum. test_lion_lamb.py checks the whole cycle.
    Case("lion", na.optim.Lion, None, sample_lion, LION_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.01), steps=600),
         rosenbrock=dict(kwargs=dict(lr=1e-3), steps=4000)),
    # LAMB's step has length lr·‖θ‖ whatever the gradient, so with a constant lr it
    # cannot settle on a minimum, and it cannot pass through θ = 0 (on the way from
    # (-1.2, 1) Rosenbrock's valley does). Its convergence tests, with a decaying lr
    # and a shifted Rosenbrock, are in test_lion_lamb.py.
    Case("lamb", na.optim.LAMB, None, sample_lamb, LAMB_EXTREMES),
]
