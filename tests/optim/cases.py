"""THE optimizer table, and the small problems every row is run on.

One row (:class:`Case`) per first-order optimizer (SGD, Adam, AdamW, Adamax,
NAdam, RAdam, Adagrad, Adadelta, RMSprop, Rprop, ASGD, Lion, LARS, LAMB) drives
every table test in ``tests/optim``:

* ``test_parity.py``: 200 steps against the PyTorch twin (``torch_name``) on a
  float64 tanh MLP, with the defaults, seeded random draws of ``sample`` (all
  flags included), every ``extremes`` setting, two parameter groups with
  different settings, and a closure; parameters and state agree to ``rtol``.
  Lion, LARS and LAMB have no twin in ``torch.optim``; ``reference`` names the
  test module that holds them to the same standard (200 steps on the same MLP
  with the row's draws and extremes, groups and closures) against their papers'
  equations written out in NumPy and against pytorch-optimizer where its variant
  is the same: ``test_lion_lamb.py`` (Lion, LAMB) and ``test_lars.py`` (LARS);
* ``test_state_dict.py``: a state_dict taken mid-run resumes bit-for-bit in a
  fresh optimizer; loading into a mismatched optimizer raises and changes nothing;
* ``test_contiguous.py``: ``contiguous=True`` gives exactly the per-tensor numbers;
* ``test_convergence.py``: the ``quadratic`` and ``rosenbrock`` settings reach
  the minimum of both problems, and the quadratic's settings with
  ``maximize=True`` the maximum of its negation;
* ``test_base.py``: ``full`` switches on every optional feature; one step then
  creates exactly ``state_keys`` (PyTorch's names), and the strict fake CuPy runs
  every code path.

Adding an optimizer = adding one row. ``sample(rng)`` must return keyword
arguments in PyTorch's names, drawing every flag; ``to_torch`` translates them
when the twin spells something differently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import neural_arch as na
from neural_arch.optim import (ASGD, LAMB, LARS, SGD, Adadelta, Adagrad, Adam, Adamax, AdamW,
                               Lion, NAdam, RAdam, RMSprop, Rprop)
from neural_arch.optim.schedules import ExponentialDecay


@dataclass(frozen=True)
class Case:
    """One optimizer under test.

    Attributes
    ----------
    name : str
        Test id.
    cls : type
        The neural_arch optimizer class.
    torch_name : str or None
        Name of the twin in ``torch.optim`` (None: no PyTorch twin).
    sample : callable
        ``sample(rng) -> kwargs``: random hyper-parameters, every flag drawn.
    extremes : tuple of dict
        Edge settings (tiny/huge lr, betas 0 and near 1, eps 0, big decay, ...).
    full : dict
        Keyword arguments that switch on every optional feature (momentum,
        amsgrad, centering, decay, maximize, ...).
    state_keys : frozenset
        The state entries of a parameter after one step with ``full``.
    quadratic, rosenbrock : dict
        ``{'kwargs': {...}, 'steps': n}`` that reach the minimum of each problem;
        ``'lr'`` in kwargs may be a schedule. ``rosenbrock`` may add ``'shift'``
        (see :func:`rosenbrock`).
    reference : str or None
        For rows without a PyTorch twin: the test module with their step-for-step
        references.
    defaults_steps : int
        Steps of the parity run with the defaults (see the RMSprop row).
    to_torch : callable
        Translates kwargs to the twin's spelling (identity by default).
    rtol : float
        Relative agreement with the twin after 200 steps.
    """

    name: str
    cls: type
    torch_name: Optional[str]
    sample: Callable[[np.random.Generator], dict]
    extremes: tuple = ()
    full: dict = field(default_factory=dict)
    state_keys: frozenset = frozenset()
    quadratic: dict = field(default_factory=dict)
    rosenbrock: dict = field(default_factory=dict)
    reference: Optional[str] = None
    defaults_steps: int = 200
    to_torch: Callable[[dict], dict] = dict
    rtol: float = 1e-10

    def __str__(self):
        return self.name


def _log_uniform(rng, low, high):
    return float(10 ** rng.uniform(np.log10(low), np.log10(high)))


def _maybe(rng, value, p=0.5):
    """``value`` with probability ``p``, else 0."""
    return value if rng.random() < p else 0.0


def _maximize(rng):
    return bool(rng.random() < 0.3)


def _decay(rng):
    return _maybe(rng, _log_uniform(rng, 1e-4, 0.1))


def _betas(rng):
    return (_maybe(rng, float(rng.uniform(0.5, 0.99)), 0.8), float(rng.uniform(0.95, 0.9999)))


def decaying(lr, rate):
    """``lr`` multiplied by ``rate`` after every step (a schedule object)."""
    return ExponentialDecay(lr, decay_steps=1, decay_rate=rate)


# The samplers keep their draws inside the region where two correct implementations can
# agree to 1e-10 after 200 steps on the MLP. PyTorch's CPU kernels round through fused
# multiply-adds, which NumPy has not, so the two differ by ulps from the first step, and
# wherever the trajectory is chaotic those ulps grow: there PyTorch does not agree with
# itself either. Measured with 40 draws per row over wider ranges (lr up to 0.1 for the
# Adam family, 0.3 for SGD, 2 for Adadelta), which failed for one draw in four to twenty;
# with the ranges below about one draw in 25 to 50 still lands on a chaotic trajectory
# (a failing parity test then says so: it reruns PyTorch against itself):
#
# * the Adam family (Adam, AdamW, Adamax, NAdam, RAdam) with lr >~ 0.01 oscillates on
#   the MLP; PyTorch against PyTorch with the initial weights moved by 1e-15 (relative)
#   drifts apart by 1e-10 to 1e-2 within 200 steps. Draws take lr <= 0.01; the extremes
#   include larger rates at settings that stay stable.
# * maximize climbs a loss without upper bound: the weights grow until tanh saturates,
#   where 1 - tanh² cancels and the two libraries' tanh (which differ by an ulp) give
#   gradients that differ in the tenth digit. Ascending draws take small rates: for SGD
#   an effective rate lr / (1 - momentum) <= 0.005 (it failed from 0.012 on).
# * SGD with an effective rate above ~0.3, and Adadelta with lr > 1, are chaotic for
#   some draws.
# * centered RMSprop divides by sqrt(v - g_avg^2); a short memory (alpha < 0.95) lets the
#   variance of slowly changing full-batch gradients collapse, and ulps of v become
#   large relative errors. RMSprop's own defaults are chaotic after ~150 steps (its row).
# * Larger steps make the MLP's trajectory chaotic: with AdamW at lr=1, moving one
#   initial weight by one ulp moves PyTorch's own result by 1e-8 after 200 steps, so no
#   extreme setting goes beyond lr = 0.3 for the Adam family (at lr=0.5, AdamW on the
#   MLP already drifts from itself by 5e-11).


# ==== SGD =============================================================================

def sample_sgd(rng):
    maximize = _maximize(rng)
    momentum = _maybe(rng, float(rng.uniform(0.1, 0.99)), 0.7)
    nesterov = bool(momentum > 0 and rng.random() < 0.5)
    dampening = 0.0 if nesterov else _maybe(rng, float(rng.uniform(0.0, 0.9)))
    # the effective rate lr / (1 - momentum) is drawn (see above for its bounds)
    rate = _log_uniform(rng, 1e-3, 0.005 if maximize else 0.3)
    return dict(lr=rate * (1.0 - momentum), momentum=momentum, dampening=dampening,
                weight_decay=_decay(rng), nesterov=nesterov, maximize=maximize)


SGD_EXTREMES = (
    dict(lr=0.0, momentum=0.9),                                   # state moves, params do not
    dict(lr=1.0),
    dict(lr=1e-3, momentum=0.999, nesterov=True),
    dict(lr=0.05, momentum=0.9, dampening=1.0),                   # buffer frozen after step 1
    dict(lr=0.01, weight_decay=10.0, momentum=0.5, maximize=True),
)


# ==== Adam, AdamW, Adamax, NAdam, RAdam ===============================================

def _adam_lr(rng, maximize):
    return _log_uniform(rng, 1e-4, 1e-3 if maximize else 1e-2)


def sample_adam(rng):
    maximize = _maximize(rng)
    return dict(lr=_adam_lr(rng, maximize),
                betas=(_maybe(rng, float(rng.uniform(0.5, 0.99)), 0.8),
                       float(rng.uniform(0.9, 0.9999))),
                eps=_log_uniform(rng, 1e-12, 1e-4), weight_decay=_decay(rng),
                amsgrad=bool(rng.random() < 0.5), maximize=maximize)


def sample_adamax(rng):
    maximize = _maximize(rng)
    return dict(lr=_adam_lr(rng, maximize), betas=_betas(rng),
                eps=_log_uniform(rng, 1e-12, 1e-4), weight_decay=_decay(rng),
                maximize=maximize)


def sample_nadam(rng):
    kwargs = sample_adamax(rng)
    kwargs.update(momentum_decay=_log_uniform(rng, 1e-4, 0.5),
                  decoupled_weight_decay=bool(rng.random() < 0.5))
    return kwargs


def sample_radam(rng):
    kwargs = sample_adamax(rng)
    kwargs.update(decoupled_weight_decay=bool(rng.random() < 0.5))
    return kwargs


ADAM_EXTREMES = (
    dict(lr=0.1, betas=(0.0, 0.0)),                               # m = g, v = g²: sign descent
    dict(lr=1e-3, betas=(0.99999, 0.99999), amsgrad=True),
    dict(lr=0.2),                     # huge steps (at 0.5 AdamW's own drift is 5e-11)
    dict(lr=0.3, eps=0.0),
    dict(lr=0.01, eps=10.0),                                      # eps dominates: scaled SGD
    dict(lr=1e-6, weight_decay=10.0, maximize=True, amsgrad=True),
)

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


# ==== Adagrad, Adadelta, RMSprop, Rprop, ASGD ==========================================

# PyTorch's Adagrad fills 'sum' from the constructor's initial_accumulator_value for every
# group (a group's own value is ignored); ours honours the group's value, so the draws
# share one value and the per-group behaviour is tested on its own (test_classic.py).
INITIAL_ACCUMULATOR = 0.1


def sample_adagrad(rng):
    maximize = _maximize(rng)
    return dict(lr=_log_uniform(rng, 1e-3, 0.03 if maximize else 0.3),
                lr_decay=_maybe(rng, _log_uniform(rng, 1e-4, 0.1)),
                weight_decay=_decay(rng),
                initial_accumulator_value=INITIAL_ACCUMULATOR,
                eps=_log_uniform(rng, 1e-12, 1e-4), maximize=maximize)


def sample_adadelta(rng):
    # Adadelta's first steps are about lr * sqrt(eps), so eps <= 1e-5
    maximize = _maximize(rng)
    return dict(lr=_log_uniform(rng, 0.1, 0.3 if maximize else 1.0),
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


# ==== Lion, LARS, LAMB (no PyTorch twin) ===============================================

def sample_lion(rng):
    return dict(lr=_log_uniform(rng, 1e-5, 1e-2),
                betas=(float(rng.uniform(0.0, 0.99)), float(rng.uniform(0.9, 0.999))),
                weight_decay=_maybe(rng, _log_uniform(rng, 1e-3, 1.0)),
                maximize=_maximize(rng))


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


def sample_lamb(rng):
    return dict(lr=_log_uniform(rng, 1e-4, 3e-2), betas=_betas(rng),
                eps=_log_uniform(rng, 1e-12, 1e-4), weight_decay=_decay(rng),
                bias_correction=bool(rng.random() < 0.5), maximize=_maximize(rng))


LION_EXTREMES = (
    dict(lr=0.01, betas=(0.0, 0.0)),                # c = m = g: sign descent
    dict(lr=1e-3, betas=(0.999, 0.999)),
    dict(lr=0.0, weight_decay=1.0),                 # state moves, parameters do not
    dict(lr=0.05, weight_decay=20.0),               # 1 - lr λ = 0: decay zeroes θ first
    dict(lr=1e-4, weight_decay=10.0, maximize=True),
)

LARS_EXTREMES = (
    dict(lr=1.0, trust_coefficient=1.0, exclude_1d=False),
    dict(lr=0.1, momentum=0.0, trust_coefficient=0.01, exclude_1d=False),
    dict(lr=0.5, weight_decay=10.0, trust_coefficient=0.1),       # ratio near η/β
    dict(lr=0.1, momentum=0.99, nesterov=True, eps=1.0, exclude_1d=False),
    dict(lr=0.01, dampening=0.9, maximize=True),
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


# ==== the table =========================================================================

_DECAY = dict(weight_decay=0.1, maximize=True)
_ADAM_KEYS = frozenset({"step", "exp_avg", "exp_avg_sq"})

CASES = [
    Case("sgd", SGD, "SGD", sample_sgd, SGD_EXTREMES,
         full=dict(momentum=0.9, dampening=0.0, nesterov=True, **_DECAY),
         state_keys=frozenset({"momentum_buffer"}),
         quadratic=dict(kwargs=dict(lr=0.05, momentum=0.9), steps=300),
         rosenbrock=dict(kwargs=dict(lr=1e-3, momentum=0.9), steps=4000)),
    Case("adam", Adam, "Adam", sample_adam, ADAM_EXTREMES,
         full=dict(amsgrad=True, **_DECAY), state_keys=_ADAM_KEYS | {"max_exp_avg_sq"},
         quadratic=dict(kwargs=dict(lr=0.1), steps=500),
         rosenbrock=dict(kwargs=dict(lr=0.02), steps=4000)),
    Case("adamw", AdamW, "AdamW", sample_adam, ADAM_EXTREMES,
         full=dict(amsgrad=True, **_DECAY), state_keys=_ADAM_KEYS | {"max_exp_avg_sq"},
         quadratic=dict(kwargs=dict(lr=0.1, weight_decay=0.0), steps=500),
         rosenbrock=dict(kwargs=dict(lr=0.02, weight_decay=0.0), steps=4000)),
    Case("adamax", Adamax, "Adamax", sample_adamax, ADAMAX_EXTREMES,
         full=dict(_DECAY), state_keys=frozenset({"step", "exp_avg", "exp_inf"}),
         quadratic=dict(kwargs=dict(lr=0.1), steps=300),
         rosenbrock=dict(kwargs=dict(lr=0.01, betas=(0.9, 0.99)), steps=1000)),
    Case("nadam", NAdam, "NAdam", sample_nadam, NADAM_EXTREMES,
         full=dict(decoupled_weight_decay=True, **_DECAY),
         state_keys=_ADAM_KEYS | {"mu_product"},
         quadratic=dict(kwargs=dict(lr=0.1), steps=250),
         rosenbrock=dict(kwargs=dict(lr=0.01, betas=(0.95, 0.99), momentum_decay=0.5),
                         steps=1500)),
    Case("radam", RAdam, "RAdam", sample_radam, RADAM_EXTREMES,
         full=dict(decoupled_weight_decay=True, **_DECAY), state_keys=_ADAM_KEYS,
         quadratic=dict(kwargs=dict(lr=0.1), steps=400),
         # the first steps (ρ_t <= 5) are SGD with momentum: a small lr survives the
         # gradients of ~200 at the start
         rosenbrock=dict(kwargs=dict(lr=0.005, betas=(0.9, 0.99)), steps=2000)),
    Case("adagrad", Adagrad, "Adagrad", sample_adagrad, ADAGRAD_EXTREMES,
         full=dict(lr_decay=0.01, initial_accumulator_value=INITIAL_ACCUMULATOR, **_DECAY),
         state_keys=frozenset({"step", "sum"}),
         quadratic=dict(kwargs=dict(lr=0.5), steps=500),
         rosenbrock=dict(kwargs=dict(lr=0.7), steps=7000)),
    # Adadelta has no step size of its own and falls into a two-cycle across
    # Rosenbrock's valley with the usual rho ~ 0.9-0.99; a short memory gets through.
    Case("adadelta", Adadelta, "Adadelta", sample_adadelta, ADADELTA_EXTREMES,
         full=dict(_DECAY), state_keys=frozenset({"step", "square_avg", "acc_delta"}),
         quadratic=dict(kwargs=dict(lr=1.0, rho=0.9), steps=1500),
         rosenbrock=dict(kwargs=dict(lr=0.5, rho=0.3, eps=1e-9), steps=12000)),
    # PyTorch's default lr=1e-2 is past the edge of stability on the MLP: from step ~150
    # on, PyTorch against itself with the first weights moved by 1e-15 (relative) drifts
    # apart, to 5e-4 at step 200. The defaults are therefore compared over 120 steps.
    Case("rmsprop", RMSprop, "RMSprop", sample_rmsprop, RMSPROP_EXTREMES,
         full=dict(momentum=0.9, centered=True, **_DECAY),
         state_keys=frozenset({"step", "square_avg", "momentum_buffer", "grad_avg"}),
         quadratic=dict(kwargs=dict(lr=0.01, momentum=0.9, centered=True), steps=500),
         rosenbrock=dict(kwargs=dict(lr=1e-3, momentum=0.9), steps=4000),
         defaults_steps=120),
    Case("rprop", Rprop, "Rprop", sample_rprop, RPROP_EXTREMES,
         full=dict(maximize=True), state_keys=frozenset({"step", "prev", "step_size"}),
         quadratic=dict(kwargs=dict(lr=0.1), steps=200),
         rosenbrock=dict(kwargs=dict(lr=0.01), steps=3500)),
    # ASGD's shrink θ (1 - λη) moves the minimum, so λ = 0 for convergence.
    Case("asgd", ASGD, "ASGD", sample_asgd, ASGD_EXTREMES,
         full=dict(t0=0.0, **_DECAY), state_keys=frozenset({"step", "eta", "mu", "ax"}),
         quadratic=dict(kwargs=dict(lr=0.1, lambd=0.0), steps=300),
         rosenbrock=dict(kwargs=dict(lr=1.8e-3, lambd=0.0), steps=8000)),
    # Lion moves every coordinate by exactly ±lr, so with a constant lr it ends in a
    # cycle of that size around a minimum (test_lion_lamb.py checks the cycle). The
    # quadratic, with a tolerance of 1e-4, takes a decaying lr; on Rosenbrock the cycle
    # of size 1e-3 lies well inside the tolerance of 1e-2.
    Case("lion", Lion, None, sample_lion, LION_EXTREMES,
         full=dict(_DECAY), state_keys=frozenset({"exp_avg"}),
         quadratic=dict(kwargs=dict(lr=decaying(0.1, 0.99)), steps=1000),
         rosenbrock=dict(kwargs=dict(lr=1e-3), steps=4000),
         reference="test_lion_lamb.py"),
    # LARS and LAMB step each tensor by about lr·‖θ‖ (times η for LARS) whatever the
    # gradient, so with a constant lr they cannot settle on a minimum: they take a
    # decaying lr. Both problems are one tensor, so the trust ratio acts on it
    # (exclude_1d=False: LARS would otherwise treat the vector as a bias and take plain
    # SGD steps). Steps that shrink with ‖θ‖ cannot pass through θ = 0, where
    # Rosenbrock's valley from (-1.2, 1) goes: these rows run it shifted by (3, 3).
    # The quadratic starts at θ = 0, where the trust ratio is 1 for the first step.
    Case("lars", LARS, None, sample_lars, LARS_EXTREMES,
         full=dict(momentum=0.9, dampening=0.0, nesterov=True, exclude_1d=False, **_DECAY),
         state_keys=frozenset({"momentum_buffer"}),
         quadratic=dict(kwargs=dict(lr=decaying(0.1, 0.99), momentum=0.9,
                                    trust_coefficient=0.1, exclude_1d=False), steps=1000),
         rosenbrock=dict(kwargs=dict(lr=decaying(0.02, 0.995), momentum=0.9,
                                     trust_coefficient=0.1, exclude_1d=False),
                         steps=2000, shift=3.0),
         reference="test_lars.py"),
    Case("lamb", LAMB, None, sample_lamb, LAMB_EXTREMES,
         full=dict(bias_correction=True, **_DECAY), state_keys=_ADAM_KEYS,
         quadratic=dict(kwargs=dict(lr=decaying(0.1, 0.99)), steps=1000),
         rosenbrock=dict(kwargs=dict(lr=decaying(0.05, 0.995)), steps=2000, shift=3.0),
         reference="test_lion_lamb.py"),
]

TORCH_CASES = [c for c in CASES if c.torch_name is not None]


def get_case(name):
    """The row called ``name``."""
    return next(c for c in CASES if c.name == name)


# ==== problems ========================================================================

MLP_SHAPES = {"W1": (3, 5), "b1": (5,), "W2": (5, 2), "b2": (2,)}


def mlp_arrays(seed=0):
    """Initial weights, inputs and targets of the small float64 tanh MLP."""
    rng = np.random.default_rng(seed)
    arrays = {k: rng.normal(0.0, 0.7, size=s) for k, s in MLP_SHAPES.items()}
    arrays["X"] = rng.normal(size=(8, 3))
    arrays["Y"] = rng.normal(size=(8, 2))
    return arrays


def na_mlp(arrays):
    """(parameters in MLP_SHAPES order, loss function) in neural_arch."""
    params = [na.Parameter(arrays[k].copy()) for k in MLP_SHAPES]
    X, Y = na.Tensor(arrays["X"]), na.Tensor(arrays["Y"])

    def loss():
        W1, b1, W2, b2 = params
        d = na.tanh(X @ W1 + b1) @ W2 + b2 - Y
        return (d * d).mean()
    return params, loss


def torch_mlp(arrays):
    """The same MLP in PyTorch (float64)."""
    import torch
    params = [torch.tensor(arrays[k].copy(), requires_grad=True) for k in MLP_SHAPES]
    X, Y = torch.tensor(arrays["X"]), torch.tensor(arrays["Y"])

    def loss():
        W1, b1, W2, b2 = params
        d = torch.tanh(X @ W1 + b1) @ W2 + b2 - Y
        return (d * d).mean()
    return params, loss


#: Diagonal quadratic ½ Σ a_i (x_i - c_i)², condition number 10, minimum at c.
QUAD_A = np.array([1.0, 2.0, 4.0, 7.0, 10.0])
QUAD_C = np.array([1.0, -2.0, 0.5, 3.0, -1.0])


def quadratic():
    """(parameters, loss function, minimizer) of the quadratic, starting at 0."""
    x = na.Parameter(np.zeros(5))
    a, c = na.Tensor(QUAD_A), na.Tensor(QUAD_C)

    def loss():
        d = x - c
        return (a * d * d).sum() * 0.5
    return [x], loss, QUAD_C


def rosenbrock(shift=0.0):
    """(parameters, loss function, minimizer) of Rosenbrock's function from (-1.2, 1).

    ``θ = (x, y)`` is one Parameter. With ``shift = s`` the function is moved by
    ``(s, s)``: the same landscape, started at ``(s - 1.2, s + 1)``, with its
    minimum at ``(s + 1, s + 1)``.
    """
    theta = na.Parameter(np.array([-1.2, 1.0]) + shift)

    def loss():
        x, y = theta[0] - shift, theta[1] - shift
        u = 1.0 - x
        w = y - x * x
        return u * u + 100.0 * w * w
    return [theta], loss, np.array([1.0, 1.0]) + shift


def train(opt, params, loss, steps):
    """Run ``steps`` plain steps (zero_grad, backward, step)."""
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()
