r"""L-BFGS: limited-memory quasi-Newton steps on the flat vector of all parameters.

.. math::

   \begin{aligned}
   & \textbf{input: } \gamma \text{ (lr)},\ x_0,\ f(x) \text{ (the closure)},\ m \text{ (history
     size)},\ \text{line search: none or strong Wolfe } (c_1 = 10^{-4},\ c_2 = 0.9) \\
   & \textbf{each call of } \texttt{step(closure)}, \textbf{ for } k = 1, \ldots,
     \text{max\_iter}: \\
   & \quad \textbf{if } k \text{ is the first iteration ever: }
     d_k \leftarrow -g_k,\ \text{history} \leftarrow \emptyset,\ H^0 \leftarrow 1 \\
   & \quad \textbf{else: } y \leftarrow g_k - g_{k-1},\ s \leftarrow t_{k-1} d_{k-1};
     \ \textbf{if } y^\top s > 10^{-10}: \text{push } (s, y, \rho = 1/y^\top s)
     \text{ (dropping the oldest beyond } m),\ H^0 \leftarrow y^\top s / y^\top y \\
   & \qquad q \leftarrow -g_k;\ \textbf{for } i \text{ newest} \to \text{oldest: }
     \alpha_i \leftarrow \rho_i s_i^\top q,\ q \leftarrow q - \alpha_i y_i \\
   & \qquad r \leftarrow H^0 q;\ \textbf{for } i \text{ oldest} \to \text{newest: }
     \beta_i \leftarrow \rho_i y_i^\top r,\ r \leftarrow r + (\alpha_i - \beta_i) s_i \\
   & \qquad d_k \leftarrow r \\
   & \quad t_k \leftarrow \gamma \min(1, 1/\|g_k\|_1) \text{ on the first iteration ever,
     else } \gamma \\
   & \quad \textbf{if } g_k^\top d_k > -\text{tolerance\_change}: \textbf{stop} \\
   & \quad \textbf{with strong Wolfe: } t_k \leftarrow \text{a step with }
     f(x + t d) \le f(x) + c_1 t\, g^\top d \text{ and }
     |\nabla f(x + t d)^\top d| \le c_2 |g^\top d| \\
   & \quad x_{k+1} \leftarrow x_k + t_k d_k \\
   & \quad \textbf{stop when } \text{max\_iter or max\_eval is reached},
     \ \|g_{k+1}\|_\infty \le \text{tolerance\_grad},
     \ \|t_k d_k\|_\infty \le \text{tolerance\_change} \text{ or }
     |f_{k+1} - f_k| < \text{tolerance\_change}
   \end{aligned}

The update of the history and the two loops are the L-BFGS recursion of Nocedal
& Wright, *Numerical Optimization* (2nd ed., 2006), Algorithms 7.4 and 7.5, with
the initial inverse Hessian ``H^0 = (y^T s / y^T y) I`` of their eq. (7.20); pairs
with ``y^T s <= 1e-10`` are skipped (curvature condition). The line search is
Algorithm 3.5 (bracketing) with the zoom of Algorithm 3.6, trial steps placed at
the minimiser of the cubic that interpolates the function values and directional
derivatives at two points (their eq. (3.59)). Reference for the method: Liu &
Nocedal, "On the limited memory BFGS method for large scale optimization",
Mathematical Programming 45 (1989).

Everything follows ``torch.optim.LBFGS``, so that runs agree iterate by iterate:
its arguments and defaults (``lr=1, max_iter=20, max_eval=max_iter*5//4,
tolerance_grad=1e-7, tolerance_change=1e-9, history_size=100,
line_search_fn=None``), its stopping tests and counters, its safeguards in the
zoom (a trial point within a tenth of the bracket's length of an end moves to
that tenth when progress stalls; the search stops when the bracket times
``max|d|`` falls below ``tolerance_change``), and its state, kept under the
first parameter: ``func_evals`` and ``n_iter`` (totals over all calls), ``d``
(last direction), ``t`` (last step length), ``old_dirs`` (the ``y``),
``old_stps`` (the ``s``), ``ro`` (the ``ρ``), ``H_diag``, ``prev_flat_grad``,
``prev_loss`` and ``al`` (the ``α`` of the last recursion). Without a line search
a step moves by ``t_k d_k`` and re-evaluates the closure except after the last
iteration. Only one parameter group is allowed. A call returns the loss of the
closure's first evaluation (at the parameters the call started from).
"""
from __future__ import annotations

import math
import numbers

from .. import backend
from ..backend import get_array_module
from ._args import accepts_aliases, non_negative
from .optimizer import Optimizer, _grad_array

__all__ = ["LBFGS"]

# Curvature pairs with y^T s at or below this are not stored (as torch).
_MIN_CURVATURE = 1e-10


def _positive_int(name, value):
    """A positive integer (bools refused), returned as int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r} "
                        f"({type(value).__name__})")
    if value < 1:
        raise ValueError(f"Invalid {name} value: {value!r} (expected an integer >= 1)")
    return int(value)


def _line_search_name(name, value):
    if value is not None and value != "strong_wolfe":
        raise ValueError(f"Invalid {name}: {value!r} (expected None or 'strong_wolfe')")
    return value


def _ieee_div(a, b):
    """``a / b`` on Python floats with IEEE results (±inf, nan) instead of ZeroDivisionError."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def cubic_minimizer(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through two points with given values and slopes.

    The cubic ``c`` has ``c(x1) = f1, c'(x1) = g1, c(x2) = f2, c'(x2) = g2``
    (Nocedal & Wright, eq. (3.59)). Its local minimiser is clamped to ``bounds``
    (default: the interval between ``x1`` and ``x2``); when the cubic has no
    local minimiser the midpoint of the bounds is returned.

    Parameters
    ----------
    x1, f1, g1, x2, f2, g2 : float
        The two points, the function values and the derivatives there.
    bounds : (float, float), optional
        ``(low, high)`` for the result.

    Returns
    -------
    float
    """
    if bounds is None:
        low, high = (x1, x2) if x1 <= x2 else (x2, x1)
    else:
        low, high = bounds
    # d1 = g1 + g2 - 3 (f1 - f2)/(x1 - x2); the cubic has a minimiser iff d1^2 >= g1 g2.
    d1 = g1 + g2 - 3 * _ieee_div(f1 - f2, x1 - x2)
    disc = d1 * d1 - g1 * g2
    if not disc >= 0:                     # also for nan
        return (low + high) / 2.0
    d2 = math.sqrt(disc)
    # Measured from the farther point (x2 when x1 <= x2, else x1).
    if x1 <= x2:
        x = x2 - (x2 - x1) * _ieee_div(g2 + d2 - d1, g2 - g1 + 2 * d2)
    else:
        x = x1 - (x1 - x2) * _ieee_div(g1 + d2 - d1, g1 - g2 + 2 * d2)
    return min(max(x, low), high)


class _Point:
    """A trial step on the search line: ``t``, ``f(x + t d)``, its gradient, slope ``g^T d``."""

    __slots__ = ("t", "f", "g", "slope")

    def __init__(self, t, f, g, slope):
        self.t, self.f, self.g, self.slope = t, f, g, slope


def strong_wolfe_search(evaluate, t, d, f0, g0, slope0, c1=1e-4, c2=0.9,
                        tolerance_change=1e-9, max_evals=25):
    """A step length along ``d`` that satisfies the strong Wolfe conditions.

    Bracketing (Nocedal & Wright, Alg. 3.5) from the first trial ``t``, growing
    the step by cubic extrapolation within ``[t + 0.01 (t - t_prev), 10 t]``,
    then zoom (Alg. 3.6) by safeguarded cubic interpolation inside the bracket.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(t) -> (f, g)``: loss (float) and flat gradient at ``x + t d``.
    t : float
        First trial step.
    d : ndarray
        Search direction (flat).
    f0, g0, slope0 : float, ndarray, float
        Loss, gradient and directional derivative ``g0^T d`` at ``t = 0``.
    c1, c2 : float
        Sufficient-decrease and curvature constants, ``0 < c1 < c2 < 1``.
    tolerance_change : float
        Stop zooming when the bracket's length times ``max|d|`` is below this.
    max_evals : int
        Most evaluations of ``evaluate``.

    Returns
    -------
    f, g, t, evals : float, ndarray, float, int
        Loss, gradient and step of the accepted point, and the evaluations used.
    """
    xp = get_array_module(d)
    d_scale = float(xp.abs(d).max())

    def at(step):
        f, g = evaluate(step)
        return _Point(step, f, g, float(xp.dot(g, d)))

    def armijo_fails(p):
        return p.f > f0 + c1 * p.t * slope0

    def curvature_holds(p):
        return abs(p.slope) <= -c2 * slope0

    start = _Point(0, f0, g0, slope0)
    new = at(t)
    evals, iters = 1, 0
    prev = start
    bracket, found = None, False
    # ---- bracketing: grow the step until an interval must contain a Wolfe point.
    while iters < max_evals:
        if armijo_fails(new) or (iters > 1 and new.f >= prev.f):
            bracket = [prev, new]
            break
        if curvature_holds(new):
            bracket, found = [new], True
            break
        if new.slope >= 0:                      # passed a minimiser of the line
            bracket = [prev, new]
            break
        lower, upper = new.t + 0.01 * (new.t - prev.t), new.t * 10
        step = cubic_minimizer(prev.t, prev.f, prev.slope, new.t, new.f, new.slope,
                               bounds=(lower, upper))
        prev = new
        new = at(step)
        evals += 1
        iters += 1
    if iters == max_evals:                      # out of evaluations while bracketing
        bracket = [start, new]

    # ---- zoom: shrink the bracket [lo, hi] (lo has the lower loss) around a Wolfe point.
    lo, hi = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    stalled = False
    while not found and iters < max_evals:
        a, b = bracket
        if abs(b.t - a.t) * d_scale < tolerance_change:
            break
        step = cubic_minimizer(a.t, a.f, a.slope, b.t, b.f, b.slope)
        left, right = min(a.t, b.t), max(a.t, b.t)
        margin = 0.1 * (right - left)
        if min(right - step, step - left) < margin:
            # Too close to an end: accept once, but after two such trials in a row
            # (or a trial on the end itself) move it a tenth of the bracket inside.
            if stalled or step >= right or step <= left:
                step = right - margin if abs(step - right) < abs(step - left) else left + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        new = at(step)
        evals += 1
        iters += 1
        if armijo_fails(new) or new.f >= bracket[lo].f:
            bracket[hi] = new                   # new upper end
            lo, hi = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        else:
            if curvature_holds(new):
                found = True
            elif new.slope * (bracket[hi].t - bracket[lo].t) >= 0:
                bracket[hi] = bracket[lo]       # keep the minimiser between lo and hi
            bracket[lo] = new
    best = bracket[lo]
    return best.f, best.g, best.t, evals


class LBFGS(Optimizer):
    """L-BFGS with an optional strong-Wolfe line search; see the module docstring.

    Parameters
    ----------
    params : iterable of Parameter or dict
        One parameter group only.
    lr : float, default 1
        Step length ``γ`` (the line search's first trial; alias ``learning_rate``).
    max_iter : int, default 20
        Most iterations per ``step`` call.
    max_eval : int, optional
        Most closure evaluations per ``step`` call (default ``max_iter * 5 // 4``).
    tolerance_grad : float, default 1e-7
        Stop when ``max|g| <= tolerance_grad``.
    tolerance_change : float, default 1e-9
        Stop when the step, the loss change or the directional derivative is this small.
    history_size : int, default 100
        Number of curvature pairs ``(s, y)`` kept.
    line_search_fn : None or 'strong_wolfe', default None
        Fixed steps ``γ`` (None) or a strong-Wolfe line search.

    Examples
    --------
    >>> opt = LBFGS(model.parameters(), line_search_fn="strong_wolfe")  # doctest: +SKIP
    >>> def closure():                                                  # doctest: +SKIP
    ...     opt.zero_grad()
    ...     loss = criterion(model(x), y)
    ...     loss.backward()
    ...     return loss
    >>> opt.step(closure)                                               # doctest: +SKIP
    """

    hyperparameters = {"lr": non_negative, "max_iter": _positive_int,
                       "max_eval": _positive_int, "tolerance_grad": non_negative,
                       "tolerance_change": non_negative, "history_size": _positive_int,
                       "line_search_fn": _line_search_name}

    @accepts_aliases
    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        if max_eval is None:
            max_eval = _positive_int("max_iter", max_iter) * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)

    def add_param_group(self, param_group):
        """Refused once a group exists: LBFGS works on one flat vector (one group)."""
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter "
                             "groups): give it one group of parameters")
        super().add_param_group(param_group)

    # ---- the flat vector ---------------------------------------------------------
    def _params(self):
        return self.param_groups[0]["params"]

    def _flat_grad(self):
        """All gradients end to end (zeros for a parameter without one)."""
        params = self._params()
        xp = get_array_module(params[0].data)
        parts = []
        for p in params:
            if p.grad is None:
                parts.append(xp.zeros(p.data.size, dtype=p.data.dtype))
            else:
                parts.append(_grad_array(p, p.grad).reshape(-1))
        return xp.concatenate(parts)

    def _move(self, t, d):
        """In place: every parameter ``+= t * d`` (its slice of the flat ``d``)."""
        offset = 0
        for p in self._params():
            n = p.data.size
            p.data += t * d[offset:offset + n].reshape(p.data.shape)
            offset += n

    @staticmethod
    def _loss_value(loss):
        if loss is None:
            raise TypeError("the LBFGS closure returned None; it must return the loss")
        return float(loss)

    # ---- the step ------------------------------------------------------------------
    def step(self, closure=None):
        """Run up to ``max_iter`` L-BFGS iterations; return the closure's first loss.

        Parameters
        ----------
        closure : callable
            Clears the gradients, re-evaluates the model, calls ``backward`` and
            returns the loss. It runs with gradient recording on.
        """
        if not callable(closure):
            raise TypeError(f"LBFGS.step needs a closure that clears the gradients, "
                            f"computes the loss, calls backward() and returns the loss "
                            f"(optimizer.step(closure)); got {closure!r}")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]
        params = self._params()
        state = self.state[params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        first_loss = self._evaluate(closure)
        loss = self._loss_value(first_loss)
        evals = 1
        state["func_evals"] += 1
        g = self._flat_grad()
        xp = get_array_module(g)
        if float(xp.abs(g).max()) <= tol_grad:
            return first_loss

        d, t = state.get("d"), state.get("t")
        dirs, stps, rho = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, g_prev = state.get("H_diag"), state.get("prev_flat_grad")
        loss_prev = state.get("prev_loss")

        for k in range(1, max_iter + 1):
            state["n_iter"] += 1
            # ---- direction
            if state["n_iter"] == 1:
                d = -g
                dirs, stps, rho = [], [], []
                h_diag = 1
            else:
                y = g - g_prev
                s = d * t
                ys = xp.dot(y, s)
                if ys > _MIN_CURVATURE:
                    if len(dirs) == history_size:
                        del dirs[0], stps[0], rho[0]
                    dirs.append(y)
                    stps.append(s)
                    rho.append(1.0 / ys)
                    h_diag = ys / xp.dot(y, y)             # H^0 = y^T s / y^T y
                if "al" not in state:
                    state["al"] = [None] * history_size
                d = self._two_loop(g, dirs, stps, rho, h_diag, state["al"])
            g_prev = g.copy()
            loss_prev = loss

            # ---- step length
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(xp.abs(g).sum())) * lr
            else:
                t = lr
            slope = float(xp.dot(g, d))
            if slope > -tol_change:                        # not a descent direction
                break

            used = 0
            converged = False
            if group["line_search_fn"] == "strong_wolfe":
                start = [p.data.copy() for p in params]

                def evaluate(step):
                    self._move(step, d)
                    f = self._loss_value(self._evaluate(closure))
                    grad = self._flat_grad()
                    for p, x0 in zip(params, start):
                        xp.copyto(p.data, x0)
                    return f, grad

                loss, g, t, used = strong_wolfe_search(
                    evaluate, t, d, loss, g, slope, tolerance_change=tol_change,
                    max_evals=max_eval - evals)
                self._move(t, d)
                converged = float(xp.abs(g).max()) <= tol_grad
            else:
                self._move(t, d)
                if k != max_iter:                          # the last move is not evaluated
                    loss = self._loss_value(self._evaluate(closure))
                    g = self._flat_grad()
                    converged = float(xp.abs(g).max()) <= tol_grad
                    used = 1
            evals += used
            state["func_evals"] += used

            # ---- stopping tests
            if k == max_iter or evals >= max_eval or converged:
                break
            if float(xp.abs(d * t).max()) <= tol_change:   # the step hardly moved x
                break
            if abs(loss - loss_prev) < tol_change:         # the loss hardly changed
                break

        state.update(d=d, t=t, old_dirs=dirs, old_stps=stps, ro=rho, H_diag=h_diag,
                     prev_flat_grad=g_prev, prev_loss=loss_prev)
        return first_loss

    @staticmethod
    def _two_loop(g, dirs, stps, rho, h_diag, alphas):
        """``-H g`` by the two-loop recursion; ``alphas`` receives the ``α_i``."""
        xp = get_array_module(g)
        q = -g
        for i in range(len(dirs) - 1, -1, -1):             # newest to oldest
            alphas[i] = xp.dot(stps[i], q) * rho[i]
            q -= alphas[i] * dirs[i]
        r = q * h_diag
        for i in range(len(dirs)):                         # oldest to newest
            beta = xp.dot(dirs[i], r) * rho[i]
            r += (alphas[i] - beta) * stps[i]
        return r

    # ---- state_dict --------------------------------------------------------------
    def _state_shape(self, key, param):
        if key in ("d", "prev_flat_grad"):
            return None                                    # flat vectors of all parameters
        return super()._state_shape(key, param)

    def _load_value(self, key, value, param, index):
        if isinstance(value, list):                        # the history lists
            return [self._load_entry(v, param) for v in value]
        return super()._load_value(key, value, param, index)

    @staticmethod
    def _load_entry(value, param):
        if value is None or isinstance(value, (int, float)):
            return value
        arr = backend.to_device(value, param.device)
        xp = get_array_module(arr)
        dtype = param.data.dtype if arr.dtype.kind == "f" else arr.dtype
        return xp.array(arr, dtype=dtype, copy=True)
