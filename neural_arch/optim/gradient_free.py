r"""The shared machinery of the gradient-free optimizers (CMA-ES, DE, PSO).

A gradient-free optimizer searches the flat vector :math:`x \in \mathbb{R}^n` made
of all its parameters laid end to end (in group order, each raveled). One
*generation* is: propose candidates :math:`x_1, \dots, x_k` (:meth:`ask`), measure
the loss of each, report the losses (:meth:`tell`). :class:`GradientFreeOptimizer`
owns everything around that loop, so the three algorithms only say how to
propose and how to learn from the losses.

How a loss is measured
----------------------
Three ways, checked in this order:

* ``step(closure)``: ``closure()`` re-evaluates the model and returns the loss.
  Each candidate is written into the parameters and the closure runs under
  :func:`~neural_arch.no_grad` (no graph is recorded: nothing needs a gradient).
* ``closure=`` given at construction: the same, so a bare ``optimizer.step()``
  works (seed 000's loop).
* ``objective=`` given at construction: ``objective(x)`` receives one candidate as
  a flat array (the parameters' dtype, on their device) and returns its loss; with
  ``vectorized=True`` it receives the whole population as a ``(k, n)`` array and
  returns ``k`` losses at once, which is the fast path when the loss can be
  computed for many parameter vectors in one batch.

A NaN loss counts as ``+inf`` (the worst possible), so a candidate that breaks the
model is never selected.

The contract of ``step``
------------------------
The search starts from the parameters' values at the first step (so weights
loaded after constructing the optimizer are respected). After each step the
parameters hold the best candidate evaluated so far, and ``step`` returns its
loss. :meth:`should_stop` and :attr:`stop_reason` report the algorithm's stopping
criteria; ``step`` keeps working after they fire (the caller decides).
:attr:`best_loss` and :attr:`best_params` give the best candidate at any time.

Users who evaluate candidates themselves (a batch on a GPU, a cluster) use
:meth:`ask` / :meth:`tell`; those do not touch the parameters
(:meth:`apply_best` writes the best candidate into them).

Randomness and resuming
-----------------------
Every random number comes from one :class:`numpy.random.Generator` (PCG64) seeded
by ``seed=`` (an int; None draws one from neural_arch's global generator, so
:func:`neural_arch.manual_seed` makes runs repeatable). :meth:`state_dict` holds
the generator's state as plain JSON-able data, the hyper-parameters and the whole
search state, so a run resumed from it continues identically.

Where the search runs
---------------------
On the host, in float64: the search state is small next to a model, and its
work (sorting, eigendecompositions, a few matrix products per generation) is
host work. Candidates travel to the parameters' device (and dtype) only to be
evaluated.
"""
from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping

import numpy as np

from .. import backend
from ..core.grad_mode import no_grad
from ..core.tensor import Tensor
from ._args import flag
from .optimizer import Optimizer

__all__ = ["GradientFreeOptimizer", "count"]


def count(name, value, minimum=1):
    """Validator: an int (bools refused) that is at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"Invalid {name} value: {value!r} (expected {name} >= {minimum})")
    return int(value)


def _copy_state(value):
    """A deep copy of plain search state (arrays copied, everything else deep-copied)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy_state(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_state(v) for v in value]
    return copy.deepcopy(value)


class GradientFreeOptimizer(Optimizer):
    """Base class of optimizers that search the flat parameter vector without gradients.

    Parameters
    ----------
    params : iterable of Parameter, dict, or parameter groups
        The parameters searched jointly (groups carry no hyper-parameters here).
    closure : callable, optional
        ``closure() -> loss``: re-evaluates the model at the current parameter
        values. Used by a bare ``step()``; ``step(closure)`` overrides it.
    objective : callable, optional
        ``objective(x) -> loss`` on a flat candidate (``(n,)`` array in the
        parameters' dtype, on their device); with ``vectorized=True``,
        ``objective(X) -> losses`` on a ``(k, n)`` batch of candidates.
    vectorized : bool, default False
        Whether ``objective`` takes a whole batch of candidates.
    seed : int, optional
        Seed of the optimizer's random generator; None draws one from
        neural_arch's global generator (see :func:`neural_arch.manual_seed`).

    Notes
    -----
    A subclass lists its hyper-parameters in ``_hyper`` (a dict built by
    ``_validate_hyper``) and implements ``_init_search(x0)`` (the initial state in
    ``self._s``, a dict of arrays, numbers and lists), ``_ask()`` (the candidates
    to evaluate, a ``(k, n)`` float64 array), ``_tell(X, f)`` (learn from their
    losses; returns True when a generation was completed) and ``_stop()`` (the
    name of a stopping criterion that holds, or None). ``_state_shapes(n)`` gives
    the expected shape of each array in ``self._s`` for :meth:`load_state_dict`.
    """

    def __init__(self, params, *, closure=None, objective=None, vectorized=False, seed=None):
        self._frozen = False
        super().__init__(params, {})
        name = type(self).__name__
        if closure is not None and not callable(closure):
            raise TypeError(f"{name}: closure must be callable, got {type(closure).__name__}")
        if objective is not None and not callable(objective):
            raise TypeError(f"{name}: objective must be callable, got "
                            f"{type(objective).__name__}")
        if closure is not None and objective is not None:
            raise ValueError(f"{name}: give closure= (evaluates the model) or objective= "
                             f"(a function of the flat parameter vector), not both")
        vectorized = flag("vectorized", vectorized)
        if vectorized and objective is None:
            raise ValueError(f"{name}: vectorized=True describes objective=, which was not "
                             f"given")
        if seed is None:
            seed = int(backend.default_generator(np).integers(2 ** 63))
        self.seed = count("seed", seed, 0)
        self._closure = closure
        self._objective = objective
        self._vectorized = vectorized
        self._rng = np.random.default_rng(self.seed)

        # Where each parameter sits in the flat vector.
        self._params = [p for g in self.param_groups for p in g["params"]]
        self._layout = []
        offset = 0
        for p in self._params:
            size = int(p.data.size)
            self._layout.append((p, offset, size, tuple(p.shape), backend.device_of(p.data)))
            offset += size
        self._n = offset
        if self._n == 0:
            raise ValueError(f"{name} got parameters with no elements to search")
        devices = {d for *_, d in self._layout}
        if objective is not None and len(devices) > 1:
            raise ValueError(f"{name}: objective= receives one flat array, but the parameters "
                             f"live on several devices {sorted(devices)}")
        self._device = self._layout[0][4]
        self._dtype = np.result_type(*[p.data.dtype for p in self._params])

        self._s = None              # the algorithm's state, created at the first ask
        self._pending = None        # candidates handed out by ask(), awaiting tell()
        self._generation = 0
        self._evaluations = 0
        self._best_x = None
        self._best_f = math.inf
        self._stop_reason = None
        self._frozen = True

    # ---- hyper-parameters: subclasses fill these in ------------------------------
    _hyper: dict

    def _validate_hyper(self, hyper):
        """Check a dict of hyper-parameters; return their canonical values (override)."""
        raise NotImplementedError

    def _state_shapes(self, n, hyper):
        """Expected shape of each array in the search state (None: not an array)."""
        raise NotImplementedError

    def add_param_group(self, param_group):
        if getattr(self, "_frozen", False):
            raise RuntimeError(f"{type(self).__name__} searches a flat vector whose size is "
                               f"fixed at construction; build a new optimizer to search more "
                               f"parameters")
        super().add_param_group(param_group)

    # ---- the flat vector ---------------------------------------------------------
    @property
    def dimension(self) -> int:
        """Number of searched values ``n`` (all parameters' elements)."""
        return self._n

    def _read_flat(self):
        """The parameters as one float64 host vector."""
        return np.concatenate([backend.asnumpy(p.data).astype(np.float64).ravel()
                               for p in self._params])

    def _write_flat(self, x):
        """Write the flat host vector ``x`` into the parameters (cast to their dtype)."""
        for p, offset, size, shape, device in self._layout:
            piece = x[offset:offset + size].reshape(shape).astype(p.data.dtype)
            p.data[...] = backend.to_device(piece, device)

    def _split(self, x):
        """``x`` as a list of arrays shaped like the parameters, on their devices."""
        return [backend.to_device(x[o:o + s].reshape(shape).astype(p.data.dtype), device)
                for p, o, s, shape, device in self._layout]

    # ---- measuring losses ----------------------------------------------------------
    def _evaluator(self, closure):
        """A function ``X (k, n) -> losses (k,)`` for ``step``."""
        closure = closure if closure is not None else self._closure
        if closure is not None:
            if not callable(closure):
                raise TypeError(f"{type(self).__name__}.step expects a callable closure, got "
                                f"{type(closure).__name__}")
            return lambda X: self._run_closure(closure, X)
        if self._objective is not None:
            return self._run_objective
        name = type(self).__name__
        raise RuntimeError(
            f"{name}.step() has no loss to minimise. Pass a closure that re-evaluates the "
            f"model and returns the loss, optimizer.step(closure), or give one when "
            f"constructing: {name}(params, ..., closure=closure), or "
            f"{name}(params, ..., objective=f) for f(flat_vector) -> loss")

    def _run_closure(self, closure, X):
        losses = np.empty(len(X))
        with no_grad():
            for i, x in enumerate(X):
                self._write_flat(x)
                losses[i] = _loss_value(closure(), "the closure")
        self._evaluations += len(X)
        return losses

    def _run_objective(self, X):
        batch = backend.to_device(np.ascontiguousarray(X, dtype=self._dtype), self._device)
        with no_grad():
            if self._vectorized:
                out = self._objective(batch)
                if isinstance(out, Tensor):
                    out = out.data
                losses = np.asarray(backend.asnumpy(out), dtype=np.float64).reshape(-1)
                if losses.shape != (len(X),):
                    raise ValueError(f"a vectorized objective must return one loss per "
                                     f"candidate: {len(X)} values, got shape "
                                     f"{tuple(np.shape(out))}")
            else:
                losses = np.array([_loss_value(self._objective(x), "the objective")
                                   for x in batch], dtype=np.float64)
        self._evaluations += len(X)
        return losses

    # ---- ask / tell ----------------------------------------------------------------
    def ask(self):
        """The candidates of the next generation, to be evaluated by the caller.

        Returns
        -------
        ndarray, shape (k, n), float64, on the host
            One candidate per row, in the layout of the flat parameter vector
            (:meth:`best_params` shows how it splits into the parameters).

        Raises
        ------
        RuntimeError
            The candidates of the previous ``ask`` have not been told yet.
        """
        if self._pending is not None:
            raise RuntimeError(f"{type(self).__name__}.ask(): the {len(self._pending)} "
                               f"candidates of the previous ask() still wait for their "
                               f"losses; call tell(candidates, losses) first")
        if self._s is None:
            self._init_search(self._read_flat())
        self._pending = self._ask()
        return self._pending.copy()

    def tell(self, candidates, losses):
        """Report the losses of the candidates from the last :meth:`ask`.

        Parameters
        ----------
        candidates : array_like, shape (k, n)
            The candidates, in the order ``ask`` gave them (they may be repaired,
            e.g. projected into a feasible set; the values given here are used).
        losses : array_like, shape (k,)
            Their losses (NaN counts as ``+inf``).
        """
        name = type(self).__name__
        if self._pending is None:
            raise RuntimeError(f"{name}.tell() without a pending ask(): call ask() for the "
                               f"candidates first")
        X = np.asarray(backend.asnumpy(candidates.data if isinstance(candidates, Tensor)
                                       else candidates), dtype=np.float64)
        if X.shape != self._pending.shape:
            raise ValueError(f"{name}.tell() expects candidates of shape "
                             f"{self._pending.shape} (as ask() gave them), got {X.shape}")
        f = np.asarray(backend.asnumpy(losses.data if isinstance(losses, Tensor) else losses),
                       dtype=np.float64)
        if f.shape != (len(X),):
            raise ValueError(f"{name}.tell() expects {len(X)} losses (one per candidate), "
                             f"got shape {f.shape}")
        self._tell_checked(X, f)

    def _tell_checked(self, X, f):
        f = np.where(np.isnan(f), np.inf, f)
        self._pending = None
        if self._tell(X, f):
            self._generation += 1
        self._update_best(X, f)
        self._stop_reason = self._stop()

    def _update_best(self, X, f):
        """Keep the best candidate evaluated so far (override for noisy bookkeeping)."""
        i = int(np.argmin(f))
        if f[i] < self._best_f or self._best_x is None:
            self._best_f = float(f[i])
            self._best_x = X[i].copy()

    # ---- the step ------------------------------------------------------------------
    def step(self, closure=None):
        """Run one generation; leave the best candidate so far in the parameters.

        Parameters
        ----------
        closure : callable, optional
            ``closure() -> loss`` evaluated under ``no_grad`` for each candidate;
            needed unless ``closure=`` or ``objective=`` was given at construction.

        Returns
        -------
        float
            The best loss found so far (that of the parameters' new values).
        """
        evaluate = self._evaluator(closure)
        if self._pending is not None:
            raise RuntimeError(f"{type(self).__name__}.step() while ask() candidates wait "
                               f"for tell(); finish the ask/tell round first")
        if self._s is None:
            self._init_search(self._read_flat())
        self._run_generation(evaluate)
        self._write_flat(self._best_x)
        return self._best_f

    def _run_generation(self, evaluate):
        """One generation through ask/tell (DE's immediate updating overrides this)."""
        X = self.ask()
        self._tell_checked(X, evaluate(X))

    # ---- results -------------------------------------------------------------------
    def should_stop(self) -> bool:
        """True when one of the algorithm's stopping criteria holds (see :attr:`stop_reason`)."""
        return self._stop_reason is not None

    @property
    def stop_reason(self):
        """Name of the stopping criterion that holds after the last generation, or None."""
        return self._stop_reason

    @property
    def generation(self) -> int:
        """Number of completed generations (iterations)."""
        return self._generation

    @property
    def evaluations(self) -> int:
        """Number of losses measured by ``step`` (and told through :meth:`tell`)."""
        return self._evaluations

    @property
    def best_loss(self):
        """The lowest loss seen so far (None before any evaluation)."""
        return None if self._best_x is None else self._best_f

    @property
    def best_params(self):
        """The best candidate as a list of arrays shaped like the parameters (or None)."""
        return None if self._best_x is None else self._split(self._best_x)

    @property
    def best_vector(self):
        """The best candidate as a flat float64 host vector (or None)."""
        return None if self._best_x is None else self._best_x.copy()

    def apply_best(self):
        """Write the best candidate so far into the parameters (after ask/tell)."""
        if self._best_x is None:
            raise RuntimeError(f"{type(self).__name__} has evaluated no candidate yet")
        self._write_flat(self._best_x)

    # ---- state_dict ----------------------------------------------------------------
    def state_dict(self):
        """The optimizer's state as plain data: the base class's dict plus ``'search'``.

        ``'search'`` holds the hyper-parameters, the seed, the random generator's
        state (JSON-able: strings and ints), the counters, the best candidate, the
        candidates of a pending :meth:`ask`, and the algorithm's state (arrays,
        numbers and lists of numbers).
        """
        sd = super().state_dict()
        sd["search"] = {
            "hyperparameters": _copy_state(self._hyper),
            "seed": self.seed,
            "rng": copy.deepcopy(self._rng.bit_generator.state),
            "dimension": self._n,
            "generation": self._generation,
            "evaluations": self._evaluations,
            "best_loss": self._best_f,
            "best_x": None if self._best_x is None else self._best_x.copy(),
            "stop_reason": self._stop_reason,
            "pending": None if self._pending is None else self._pending.copy(),
            "state": None if self._s is None else _copy_state(self._s),
        }
        return sd

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict`; on any mismatch raise and change nothing."""
        name = type(self).__name__
        search = state_dict.get("search") if isinstance(state_dict, Mapping) else None
        if not isinstance(search, Mapping):
            raise ValueError(f"{name}.load_state_dict: the state dict has no 'search' entry; "
                             f"was it saved from another optimizer than {name}?")
        missing = {"hyperparameters", "seed", "rng", "dimension", "generation", "evaluations",
                   "best_loss", "best_x", "stop_reason", "pending", "state"} - set(search)
        if missing:
            raise ValueError(f"{name}.load_state_dict: 'search' lacks {sorted(missing)}")
        n = self._n
        if search["dimension"] != n:
            raise ValueError(f"the state dict searched {search['dimension']} values, this "
                             f"{name} has {n} (different parameters?)")
        hyper = dict(self._hyper)
        unknown = set(search["hyperparameters"]) - set(hyper)
        if unknown:
            raise ValueError(f"{name}.load_state_dict: unknown hyper-parameters "
                             f"{sorted(unknown)}; was it saved from another optimizer?")
        hyper.update(search["hyperparameters"])
        hyper = self._validate_hyper(hyper)
        rng = np.random.default_rng()
        saved_rng = search["rng"]
        if not isinstance(saved_rng, Mapping) or saved_rng.get("bit_generator") != "PCG64":
            raise ValueError(f"{name}.load_state_dict: 'rng' must be the state of a PCG64 "
                             f"bit generator, got {saved_rng!r}")
        try:
            rng.bit_generator.state = copy.deepcopy(dict(saved_rng))
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"{name}.load_state_dict: invalid generator state ({e})") from None
        best_x = _vector(search["best_x"], (n,), "best_x", name)
        pending = search["pending"]
        if pending is not None:
            pending = np.array(backend.asnumpy(pending), dtype=np.float64)
            if pending.ndim != 2 or pending.shape[1] != n:
                raise ValueError(f"'pending' must have shape (k, {n}), got {pending.shape}")
        state = search["state"]
        if state is not None:
            state = self._check_state(state, hyper)
        counts = [count(k, search[k], 0) for k in ("generation", "evaluations")]
        seed = count("seed", search["seed"], 0)
        # Everything checked: commit (the base class validates its part first).
        super().load_state_dict(state_dict)
        self._hyper = hyper
        self.seed = seed
        self._rng = rng
        self._generation, self._evaluations = counts
        self._best_x = best_x
        self._best_f = float(search["best_loss"]) if best_x is not None else math.inf
        self._stop_reason = search["stop_reason"]
        self._pending = pending
        self._s = state

    def _check_state(self, state, hyper):
        """Validate a saved search state against the expected keys and shapes; copy it."""
        name = type(self).__name__
        if not isinstance(state, Mapping):
            raise ValueError(f"{name}: the saved search state must be a dict, got "
                             f"{type(state).__name__}")
        expected = self._state_shapes(self._n, hyper)
        if set(state) != set(expected):
            raise ValueError(f"{name}: the saved search state has keys {sorted(state)}, "
                             f"expected {sorted(expected)}")
        out = {}
        for key, value in state.items():
            shape = expected[key]
            if shape is None:
                out[key] = _copy_state(value.tolist() if isinstance(value, np.ndarray)
                                       else value)
            else:
                out[key] = _vector(value, shape, key, name)
        return out

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._hyper.items())
        return f"{type(self).__name__}(dimension={self._n}, {inner}, seed={self.seed})"


def _vector(value, shape, key, owner):
    """A float64 host copy of a saved array, checked against ``shape`` (None passes)."""
    if value is None:
        return None
    arr = np.array(backend.asnumpy(value), dtype=np.float64)
    if arr.shape != tuple(shape):
        raise ValueError(f"{owner}: saved {key!r} has shape {arr.shape}, expected "
                         f"{tuple(shape)}")
    return arr


def _loss_value(value, source):
    """A loss as a Python float; NaN stays NaN (the caller maps it to +inf)."""
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        if value.size != 1:
            raise ValueError(f"{source} must return a scalar loss, got an array of shape "
                             f"{tuple(value.shape)}")
        return float(np.asarray(backend.asnumpy(value)).reshape(()))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{source} must return a scalar loss (a number or a one-element "
                        f"Tensor), got {type(value).__name__}")
    return float(value)

