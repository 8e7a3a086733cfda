"""Rows of the optimizer table for Adagrad, Adadelta, RMSprop, Rprop, ASGD and LARS.

Appended to ``CASES`` in ``cases.py``; see there for what each row drives. LARS
has no PyTorch twin (``torch_name=None``): its step-for-step references are in
``test_lars.py`` (pytorch-optimizer's ``LARS`` and the paper's equations).
"""
from __future__ import annotations

from neural_arch.optim.adadelta import Adadelta
from neural_arch.optim.adagrad import Adagrad
from neural_arch.optim.asgd import ASGD
from neural_arch.optim.lars import LARS
from neural_arch.optim.rmsprop import RMSprop
from neural_arch.optim.rprop import Rprop
from tests.optim.cases import Case, _log_uniform, _maybe


def _maximize(rng):
    return bool(rng.random() < 0.3)


def _decay(rng):
    return _maybe(rng, _log_uniform(rng, 1e-4, 0.1))


# These limits keep the draws inside the region where two correct implementations can
# agree to 1e-10 after 200 steps on the MLP (PyTorch's CPU kernels round through fused
# multiply-adds, which NumPy has not, so the two differ by ulps from the first step):
#
# * maximize climbs a loss without upper bound: at large rates the weights grow until
#   tanh saturates and the gradients are rounding noise (their signs then decide Rprop's
#   steps). Ascending draws take small rates.
# * centered RMSprop divides by sqrt(v - g_avg^2); a short memory (alpha < 0.95) lets the
#   variance of slowly changing full-batch gradients collapse, and ulps of v become
#   large relative errors. RMSprop's default lr=1e-2 is itself past the edge of
#   stability on the MLP: after ~140 steps PyTorch against PyTorch with one weight moved
#   by one ulp differs by 5e-5. Adadelta's first steps are about lr * sqrt(eps), so
#   eps <= 1e-5.
# * PyTorch's Adagrad fills 'sum' from the constructor's initial_accumulator_value for
#   every group (a group's own value is ignored); ours honours the group's value, so the
#   draws share one value and the per-group behaviour is tested on its own.

INITIAL_ACCUMULATOR = 0.1


def sample_adagrad(rng):
    maximize = _maximize(rng)
    return dict(lr=_log_uniform(rng, 1e-3, 0.03 if maximize else 0.3),
                lr_decay=_maybe(rng, _log_uniform(rng, 1e-4, 0.1)),
                weight_decay=_decay(rng),
                initial_accumulator_value=INITIAL_ACCUMULATOR,
                eps=_log_uniform(rng, 1e-12, 1e-4), maximize=maximize)


def sample_adadelta(rng):
    maximize = _maximize(rng)
    return dict(lr=_log_uniform(rng, 0.1, 0.3 if maximize else 2.0),
                rho=float(rng.uniform(0.5, 0.999)), eps=_log_uniform(rng, 1e-8, 1e-5),
                weight_decay=_decay(rng), maximize=maximize)


def sample_rmsprop(rng):
    return dict(lr=_log_uniform(rng, 1e-4, 3e-3), alpha=float(rng.uniform(0.95, 0.999)),
                eps=_log_uniform(rng, 1e-10, 1e-4), weight_decay=_decay(rng),
                momentum=_maybe(rng, float(rng.uniform(0.1, 0.95))),
                centered=bool(rng.random() < 0.5), maximize=_maximize(rng))


def sample_rprop(rng):
    maximize = _maximize(rng)
    low = _log_uniform(rng, 1e-8, 1e-4)
    high = _log_uniform(rng, 1e-3, 1e-2) if maximize else _log_uniform(rng, 1e-2, 10.0)
    return dict(lr=_log_uniform(rng, 1e-4, 0.05),
                etas=(float(rng.uniform(0.2, 0.8)), float(rng.uniform(1.05, 1.5))),
                step_sizes=(low, high), maximize=maximize)


def sample_asgd(rng):
    maximize = _maximize(rng)
    return dict(lr=_log_uniform(rng, 1e-3, 3e-3 if maximize else 0.3),
                lambd=_log_uniform(rng, 1e-6, 1e-2), alpha=float(rng.uniform(0.5, 1.0)),
                t0=float(rng.choice([0.0, 20.0, 150.0, 1e6])), weight_decay=_decay(rng),
                maximize=maximize)


def sample_lars(rng):
    maximize = _maximize(rng)
    exclude_1d = bool(rng.random() < 0.5)
    momentum = _maybe(rng, float(rng.uniform(0.5, 0.95)), 0.8)
    nesterov = bool(momentum > 0 and rng.random() < 0.5)
    # excluded tensors take plain SGD steps of size lr: those keep to SGD's rates
    if maximize:
        lr = _log_uniform(rng, 1e-3, 1e-2)
    else:
        lr = _log_uniform(rng, 1e-2, 0.03 if exclude_1d else 1.0)
    return dict(lr=lr, momentum=momentum,
                dampening=0.0 if nesterov else _maybe(rng, float(rng.uniform(0.0, 0.5)), 0.3),
                weight_decay=_decay(rng), nesterov=nesterov,
                trust_coefficient=_log_uniform(rng, 1e-3, 0.1),
                eps=_maybe(rng, _log_uniform(rng, 1e-10, 1e-6)),
                exclude_1d=exclude_1d, maximize=maximize)


ADAGRAD_EXTREMES = (
    dict(lr=1.0, eps=0.0),                                        # first step: lr * sign(g)
    dict(lr=0.05, eps=10.0),                                      # eps dominates: scaled SGD
    dict(lr=0.5, lr_decay=10.0),                                  # rate falls like 1/t
    dict(lr=1e-3, weight_decay=10.0, initial_accumulator_value=100.0, maximize=True),
)

ADADELTA_EXTREMES = (
    dict(rho=0.0),                                                # no memory
    dict(rho=1.0),                                                # averages frozen at 0
    dict(lr=0.0, rho=0.5),                                        # state moves, params do not
    dict(lr=0.5, eps=1.0, weight_decay=10.0, maximize=True),
)

RMSPROP_EXTREMES = (
    dict(alpha=0.0),                                              # v = g²: sign-like steps
    dict(alpha=1.0, eps=1.0, lr=0.05),                            # v stays 0: SGD, lr / eps
    dict(lr=1e-3, alpha=0.99, centered=True, momentum=0.99, eps=0.0),
    dict(lr=1e-4, weight_decay=10.0, momentum=0.5, maximize=True),
)

RPROP_EXTREMES = (
    dict(lr=1.0),                                                 # first steps of size 1
    dict(lr=0.01, etas=(0.01, 5.0)),
    dict(lr=0.1, step_sizes=(0.0, 1e-3)),                         # capped steps
    dict(lr=1e-3, step_sizes=(1e-3, 1e-3), maximize=True),       # constant step: sign ascent
)

ASGD_EXTREMES = (
    dict(t0=0.0),                                                 # averaging from step 1
    dict(lr=0.5, lambd=1.0, alpha=1.0),                           # strong shrink, eta ~ 1/t
    dict(lr=0.1, lambd=0.0, t0=50.0),                             # plain SGD, uniform mean
    dict(lr=1e-3, weight_decay=10.0, alpha=0.0, maximize=True),   # constant eta
)

LARS_EXTREMES = (
    dict(lr=1.0, trust_coefficient=1.0, exclude_1d=False),
    dict(lr=0.1, momentum=0.0, trust_coefficient=0.01, exclude_1d=False),
    dict(lr=0.5, weight_decay=10.0, trust_coefficient=0.1),       # ratio near η/β
    dict(lr=0.1, momentum=0.99, nesterov=True, eps=1.0, exclude_1d=False),
    dict(lr=0.01, dampening=0.9, maximize=True),
)

# Convergence settings: Adadelta has no step size of its own and falls into a two-cycle
# across Rosenbrock's valley with the usual rho ~ 0.9-0.99; a short memory gets through.
# ASGD's shrink theta (1 - lambd eta) moves the minimum, so lambd = 0 there.
CASES = [
    Case("adagrad", Adagrad, "Adagrad", sample_adagrad, ADAGRAD_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.5), steps=500),
         rosenbrock=dict(kwargs=dict(lr=0.7), steps=7000)),
    Case("adadelta", Adadelta, "Adadelta", sample_adadelta, ADADELTA_EXTREMES,
         quadratic=dict(kwargs=dict(lr=1.0, rho=0.9), steps=1500),
         rosenbrock=dict(kwargs=dict(lr=0.5, rho=0.3, eps=1e-9), steps=12000)),
    Case("rmsprop", RMSprop, "RMSprop", sample_rmsprop, RMSPROP_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.01, momentum=0.9, centered=True), steps=500),
         rosenbrock=dict(kwargs=dict(lr=1e-3, momentum=0.9), steps=4000)),
    Case("rprop", Rprop, "Rprop", sample_rprop, RPROP_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.1), steps=200),
         rosenbrock=dict(kwargs=dict(lr=0.01), steps=3500)),
    Case("asgd", ASGD, "ASGD", sample_asgd, ASGD_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.1, lambd=0.0), steps=300),
         rosenbrock=dict(kwargs=dict(lr=1.8e-3, lambd=0.0), steps=8000)),
    Case("lars", LARS, None, sample_lars, LARS_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.05, momentum=0.9), steps=300),
         rosenbrock=dict(kwargs=dict(lr=1e-3, momentum=0.9), steps=4000)),
]
