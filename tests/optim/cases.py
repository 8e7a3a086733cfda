"""THE optimizer table, and the small problems every row is run on.

One row (:class:`Case`) per optimizer drives every test in ``tests/optim``:

* ``test_parity.py``: 200 steps against the PyTorch twin (``torch_name``) on a
  float64 tanh MLP, with the defaults, seeded random draws of ``sample`` (all
  flags included), every ``extremes`` setting, two parameter groups with
  different settings, and a closure; parameters and state agree to ``rtol``;
* ``test_state_dict.py``: a state_dict taken mid-run resumes bit-for-bit in a
  fresh optimizer; loading into a mismatched optimizer raises and changes nothing;
* ``test_contiguous.py``: ``contiguous=True`` gives exactly the per-tensor numbers;
* ``test_convergence.py``: ``quadratic`` and ``rosenbrock`` settings reach the
  minimum.

Adding an optimizer = adding one row. ``sample(rng)`` must return keyword
arguments in PyTorch's names, drawing every flag; ``to_torch`` translates them
when the twin spells something differently. Rows without a PyTorch twin set
``torch_name=None`` (parity then needs its own reference test).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import neural_arch as na


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
    quadratic, rosenbrock : dict
        ``{'kwargs': {...}, 'steps': n}`` that reach the minimum of each problem.
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
    quadratic: dict = field(default_factory=dict)
    rosenbrock: dict = field(default_factory=dict)
    to_torch: Callable[[dict], dict] = dict
    rtol: float = 1e-10

    def __str__(self):
        return self.name


def _log_uniform(rng, low, high):
    return float(10 ** rng.uniform(np.log10(low), np.log10(high)))


def _maybe(rng, value, p=0.5):
    """``value`` with probability ``p``, else 0."""
    return value if rng.random() < p else 0.0


def sample_sgd(rng):
    momentum = _maybe(rng, float(rng.uniform(0.1, 0.99)), 0.7)
    nesterov = bool(momentum > 0 and rng.random() < 0.5)
    dampening = 0.0 if nesterov else _maybe(rng, float(rng.uniform(0.0, 0.9)))
    return dict(lr=_log_uniform(rng, 1e-3, 0.3), momentum=momentum, dampening=dampening,
                weight_decay=_maybe(rng, _log_uniform(rng, 1e-4, 0.1)),
                nesterov=nesterov, maximize=bool(rng.random() < 0.3))


def sample_adam(rng):
    return dict(lr=_log_uniform(rng, 1e-4, 0.1),
                betas=(_maybe(rng, float(rng.uniform(0.5, 0.99)), 0.8),
                       float(rng.uniform(0.9, 0.9999))),
                eps=_log_uniform(rng, 1e-12, 1e-4),
                weight_decay=_maybe(rng, _log_uniform(rng, 1e-4, 0.1)),
                amsgrad=bool(rng.random() < 0.5), maximize=bool(rng.random() < 0.3))


SGD_EXTREMES = (
    dict(lr=0.0, momentum=0.9),                                   # state moves, params do not
    dict(lr=1.0),
    dict(lr=1e-3, momentum=0.999, nesterov=True),
    dict(lr=0.05, momentum=0.9, dampening=1.0),                   # buffer frozen after step 1
    dict(lr=0.01, weight_decay=10.0, momentum=0.5, maximize=True),
)

# (*) Larger steps make the MLP's trajectory chaotic: with AdamW at lr=1, moving one
# initial weight by one ulp moves PyTorch's own result by 1e-8 after 200 steps, so no
# independent implementation can agree to 1e-10 there.
ADAM_EXTREMES = (
    dict(lr=0.1, betas=(0.0, 0.0)),                               # m = g, v = g²: sign descent
    dict(lr=1e-3, betas=(0.99999, 0.99999), amsgrad=True),
    dict(lr=0.5),                                                 # huge steps (*)
    dict(lr=0.3, eps=0.0),
    dict(lr=0.01, eps=10.0),                                      # eps dominates: scaled SGD
    dict(lr=1e-6, weight_decay=10.0, maximize=True, amsgrad=True),
)

CASES = [
    Case("sgd", na.optim.SGD, "SGD", sample_sgd, SGD_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.05, momentum=0.9), steps=300),
         rosenbrock=dict(kwargs=dict(lr=1e-3, momentum=0.9), steps=4000)),
    Case("adam", na.optim.Adam, "Adam", sample_adam, ADAM_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.1), steps=500),
         rosenbrock=dict(kwargs=dict(lr=0.02), steps=4000)),
    Case("adamw", na.optim.AdamW, "AdamW", sample_adam, ADAM_EXTREMES,
         quadratic=dict(kwargs=dict(lr=0.1, weight_decay=0.0), steps=500),
         rosenbrock=dict(kwargs=dict(lr=0.02, weight_decay=0.0), steps=4000)),
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


def rosenbrock():
    """(parameters, loss function, minimizer) of Rosenbrock's function from (-1.2, 1)."""
    x, y = na.Parameter(np.array(-1.2)), na.Parameter(np.array(1.0))

    def loss():
        u = 1.0 - x
        w = y - x * x
        return u * u + 100.0 * w * w
    return [x, y], loss, np.array([1.0, 1.0])


def train(opt, params, loss, steps):
    """Run ``steps`` plain steps (zero_grad, backward, step)."""
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()
