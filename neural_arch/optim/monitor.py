"""Training monitors: learning rates and gradient statistics, with history, files, plots.

:class:`OptimizerMonitor` records the learning rate of each parameter group;
:class:`GradientMonitor` records gradient norms (global and per parameter),
NaN/inf counts, the update-to-parameter ratio and the clip rate. Both

* are called once per iteration and record every ``log_interval``-th call
  (calls 0, ``log_interval``, ``2 * log_interval``, ...),
* keep the records in ``history`` (a list of dicts, oldest first),
* write each record to the :mod:`logging` module (logger
  ``neural_arch.optim.monitor`` unless another is given; INFO, or WARNING when
  gradients are not finite),
* save the history with ``save(path)`` as CSV or JSON (by the file's suffix), and
* draw it with ``plot()``, which returns a :class:`matplotlib.figure.Figure`
  built without pyplot, so no display or global figure state is involved.

Example (seed 001)::

    monitor = OptimizerMonitor(optimizer=optimizer, log_interval=100)
    gradient_monitor = GradientMonitor(model=model, log_interval=100)
    for batch_idx, (x, y) in enumerate(batches):
        loss = criterion(model(x), y)
        loss.backward()
        gradient_monitor.log_gradients()
        optimizer.step()
        optimizer.zero_grad()
        monitor.log_lr(batch_idx)
    gradient_monitor.save("grads.csv")
    fig = gradient_monitor.plot()
"""
from __future__ import annotations

import csv
import json
import logging
import math
import numbers
import os
from collections.abc import Mapping

from ..backend import get_array_module
from ..core.tensor import Tensor

__all__ = ["OptimizerMonitor", "GradientMonitor"]

_LOGGER = logging.getLogger(__name__)


def _interval(owner, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{owner}: log_interval must be a positive integer, got {value!r}")
    return int(value)


def _logger(owner, logger):
    if logger is None:
        return _LOGGER
    if isinstance(logger, str):
        return logging.getLogger(logger)
    if isinstance(logger, logging.Logger):
        return logger
    raise TypeError(f"{owner}: logger must be a logging.Logger, a logger name or None, got "
                    f"{type(logger).__name__}")


def _flatten(record):
    """One CSV row: nested dicts become ``key/subkey`` columns."""
    row = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            for sub, v in value.items():
                row[f"{key}/{sub}"] = v
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                row[f"{key}/{i}"] = v
        else:
            row[key] = value
    return row


class _History:
    """History, saving and the plotting scaffold shared by both monitors."""

    def _init_history(self, owner, log_interval, logger):
        self.log_interval = _interval(owner, log_interval)
        self.logger = _logger(owner, logger)
        self.history = []
        self.calls = 0

    def _due(self):
        """Count this call; True when it is one to record."""
        due = self.calls % self.log_interval == 0
        self.calls += 1
        return due

    def save(self, path, format=None):
        """Write the history to ``path`` as CSV or JSON.

        Parameters
        ----------
        path : str or os.PathLike
            The file to (over)write.
        format : {'csv', 'json'}, optional
            Default: from the suffix of ``path`` (``.csv`` or ``.json``).

        Returns
        -------
        str
            The path written.

        Notes
        -----
        JSON keeps the records as they are (a list of dicts; NaN and infinity are
        written as ``NaN`` / ``Infinity``, which Python's :mod:`json` reads back).
        CSV has one row per record, nested entries flattened to ``key/subkey``
        columns (``lr/0``, ``grad_norm/fc.weight``); missing values are empty.
        """
        path = os.fspath(path)
        fmt = format or os.path.splitext(path)[1].lstrip(".").lower()
        if fmt not in ("csv", "json"):
            raise ValueError(f"{type(self).__name__}.save writes 'csv' or 'json'; got "
                             f"{format!r} for path {path!r} (use a .csv or .json suffix, or "
                             f"format=)")
        if fmt == "json":
            with open(path, "w") as f:
                json.dump(self.history, f, indent=1)
            return path
        rows = [_flatten(r) for r in self.history]
        columns = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        return path

    @staticmethod
    def _figure(rows):
        try:
            from matplotlib.figure import Figure
        except ImportError as e:                     # pragma: no cover - a dependency
            raise ImportError("plot() needs matplotlib (pip install matplotlib)") from e
        fig = Figure(figsize=(7, 2.6 * rows), layout="constrained")
        return fig, [fig.add_subplot(rows, 1, i + 1) for i in range(rows)]


class OptimizerMonitor(_History):
    """Record the learning rate of each parameter group of an optimizer.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer to watch (a wrapper such as SAM works too: its groups are
        its base's).
    log_interval : int, default 100
        Record every ``log_interval``-th call of :meth:`log_lr`.
    logger : logging.Logger or str, optional
        Where records are logged (default: ``neural_arch.optim.monitor``).

    Attributes
    ----------
    history : list of dict
        One record per recorded call: ``{'call': n, 'step': step,
        'step_count': optimizer.step_count, 'lr': [lr of group 0, ...]}``.
    calls : int
        Number of :meth:`log_lr` calls so far.
    """

    def __init__(self, optimizer, log_interval=100, logger=None):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"OptimizerMonitor watches an optimizer (with param_groups), got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self._init_history("OptimizerMonitor", log_interval, logger)

    def log_lr(self, step=None):
        """Read the learning rates; record and log them on every ``log_interval``-th call.

        Parameters
        ----------
        step : int, optional
            The caller's step or batch index, stored in the record as ``'step'``
            (it may restart every epoch; ``'call'`` counts calls and never does).

        Returns
        -------
        list of float
            The learning rate of each parameter group, recorded or not.
        """
        lrs = [float(g["lr"]) for g in self.optimizer.param_groups]
        if self._due():
            record = {"call": self.calls - 1, "step": step,
                      "step_count": int(getattr(self.optimizer, "step_count", 0)),
                      "lr": lrs}
            self.history.append(record)
            self.logger.info("step %s: lr %s", step,
                             ", ".join(f"{lr:.6g}" for lr in lrs))
        return lrs

    def plot(self):
        """The learning rate of each group against the call index, as a Figure."""
        fig, (ax,) = self._figure(1)
        x = [r["call"] for r in self.history]
        n_groups = max((len(r["lr"]) for r in self.history), default=0)
        for i in range(n_groups):
            ax.plot(x, [r["lr"][i] if i < len(r["lr"]) else math.nan for r in self.history],
                    label=f"group {i}")
        ax.set_xlabel("log_lr call")
        ax.set_ylabel("learning rate")
        if n_groups:
            ax.legend()
        return fig


def _named_parameters(model, owner):
    """``[(name, Parameter)]`` from a Module, a dict, or an iterable of Parameters/pairs."""
    if hasattr(model, "named_parameters"):
        return lambda: list(model.named_parameters())
    if isinstance(model, Tensor):
        items = [("0", model)]
    elif isinstance(model, Mapping):
        items = list(model.items())
    elif hasattr(model, "__iter__") and not isinstance(model, (str, bytes)):
        items = list(model)
        if not all(isinstance(x, tuple) and len(x) == 2 for x in items):
            items = [(str(i), p) for i, p in enumerate(items)]
    else:
        raise TypeError(f"{owner} watches a Module, a dict name -> Parameter or an iterable "
                        f"of Parameters, got {type(model).__name__}")
    for name, p in items:
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: {name!r} is a {type(p).__name__}, not a Parameter")
    return lambda: items


def _sq_norm(a):
    xp = get_array_module(a)
    return xp.sum(a * a)


class GradientMonitor(_History):
    r"""Record gradient statistics of a model.

    Each :meth:`log_gradients` call (after ``backward``, before the optimizer's
    step) measures the global gradient 2-norm, which feeds the clip rate and the
    count of non-finite steps; every ``log_interval``-th call also records:

    * ``grad_norm``: the 2-norm of each parameter's gradient, by parameter name
      (a "layer" is one parameter tensor, named as ``named_parameters`` names it);
    * ``global_norm``: :math:`\sqrt{\sum_l \|g_l\|^2}` (NaN/inf if any gradient is);
    * ``nan_count``, ``inf_count``: NaN and infinite gradient elements;
    * ``clip_rate``: the fraction of all calls so far whose global norm exceeded
      ``max_norm`` (None without ``max_norm``);
    * ``update_ratio`` and ``layer_update_ratio``: how far the optimizer moved
      the parameters relative to their size, :math:`\|W_{t+1}-W_t\|/\|W_t\|`
      (globally, and per parameter). A recorded call copies the parameters; the
      *next* call compares them with the copy and fills in these entries of the
      record (and logs them), so the ratio measures the update(s) made between
      the two calls, normally the one step taken with the recorded gradients. It
      is None until then (and for the last record of a run). A zero ``W_t`` gives
      an infinite ratio if the parameter moved, else 0.

    Parameters
    ----------
    model : Module, dict name -> Parameter, or iterable of Parameters
        What to watch; a Module's parameters are re-read on every call.
    log_interval : int, default 100
        Record every ``log_interval``-th call.
    max_norm : float, optional
        The clipping threshold whose exceedance rate ``clip_rate`` reports.
    track_updates : bool, default True
        Measure the update-to-parameter ratio (costs a copy of the parameters on
        recorded calls).
    logger : logging.Logger or str, optional
        Where records are logged (default: ``neural_arch.optim.monitor``).

    Attributes
    ----------
    history : list of dict
    calls : int
        Number of :meth:`log_gradients` calls.
    clipped_calls : int
        Calls whose global norm exceeded ``max_norm``.
    nonfinite_calls : int
        Calls with a NaN or infinite gradient element.
    """

    def __init__(self, model, log_interval=100, max_norm=None, track_updates=True,
                 logger=None):
        self._named = _named_parameters(model, "GradientMonitor")
        self.model = model
        if max_norm is not None:
            if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) \
                    or not max_norm >= 0:
                raise ValueError(f"GradientMonitor: max_norm must be a number >= 0 or None, "
                                 f"got {max_norm!r}")
            max_norm = float(max_norm)
        self.max_norm = max_norm
        if not isinstance(track_updates, bool):
            raise TypeError(f"GradientMonitor: track_updates must be True or False, got "
                            f"{track_updates!r}")
        self.track_updates = track_updates
        self._init_history("GradientMonitor", log_interval, logger)
        self.clipped_calls = 0
        self.nonfinite_calls = 0
        self._snapshot = None            # (record, {name: (param, copy of its data)})

    @property
    def clip_rate(self):
        """Fraction of calls whose global norm exceeded ``max_norm`` (None without it)."""
        if self.max_norm is None:
            return None
        return self.clipped_calls / self.calls if self.calls else 0.0

    def log_gradients(self):
        """Measure the gradients; record and log them on every ``log_interval``-th call.

        Returns
        -------
        float
            The global gradient 2-norm (0.0 when no parameter has a gradient).
        """
        named = self._named()
        if self._snapshot is not None:
            self._finish_update_ratio(*self._snapshot)
            self._snapshot = None
        grads = [(n, p.grad.data if isinstance(p.grad, Tensor) else p.grad)
                 for n, p in named if p.grad is not None]
        squares = [_sq_norm(g) for _, g in grads]
        total = math.sqrt(float(sum(float(s) for s in squares))) if squares else 0.0
        finite = math.isfinite(total)
        self.nonfinite_calls += not finite
        # A NaN norm compares False: it counts as not clipped, as clip_grad_norm_
        # would scale by NaN rather than clip.
        self.clipped_calls += self.max_norm is not None and total > self.max_norm
        if not self._due():
            return total
        record = {"call": self.calls - 1, "global_norm": total,
                  "grad_norm": {n: math.sqrt(float(s)) for (n, _), s in zip(grads, squares)},
                  "nan_count": 0, "inf_count": 0, "clip_rate": self.clip_rate,
                  "update_ratio": None, "layer_update_ratio": None}
        if not finite:
            for _, g in grads:
                xp = get_array_module(g)
                record["nan_count"] += int(xp.sum(xp.isnan(g)))
                record["inf_count"] += int(xp.sum(xp.isinf(g)))
        self.history.append(record)
        level = logging.INFO if finite else logging.WARNING
        largest = max(record["grad_norm"].items(), key=lambda kv: kv[1], default=None)
        self.logger.log(level, "call %d: grad norm %.6g%s, nan %d, inf %d%s",
                        record["call"], total,
                        f" (largest {largest[0]}: {largest[1]:.6g})" if largest else "",
                        record["nan_count"], record["inf_count"],
                        "" if self.max_norm is None else f", clip rate {self.clip_rate:.3g}")
        if self.track_updates:
            self._snapshot = (record, {n: (p, p.data.copy()) for n, p in named})
        return total

    def _finish_update_ratio(self, record, saved):
        layers, d_total, w_total = {}, 0.0, 0.0
        for name, (p, old) in saved.items():
            if p.data.shape != old.shape:
                continue
            d = float(_sq_norm(p.data - old))
            w = float(_sq_norm(old))
            d_total += d
            w_total += w
            layers[name] = _ratio(d, w)
        record["layer_update_ratio"] = layers
        record["update_ratio"] = _ratio(d_total, w_total)
        self.logger.info("call %d: update/parameter ratio %.6g", record["call"],
                         record["update_ratio"])

    def plot(self):
        """Global and per-parameter gradient norms, and the update ratio, as a Figure."""
        fig, (ax_norm, ax_ratio) = self._figure(2)
        x = [r["call"] for r in self.history]
        names = []
        for r in self.history:
            names.extend(n for n in r["grad_norm"] if n not in names)
        for n in names:
            ax_norm.plot(x, [r["grad_norm"].get(n, math.nan) for r in self.history],
                         linewidth=0.8, alpha=0.6, label=n)
        ax_norm.plot(x, [r["global_norm"] for r in self.history], color="black",
                     linewidth=1.6, label="global")
        if self.max_norm is not None:
            ax_norm.axhline(self.max_norm, color="red", linestyle="--", label="max_norm")
        ax_norm.set_ylabel("gradient 2-norm")
        if self.history and all(r["global_norm"] > 0 for r in self.history):
            ax_norm.set_yscale("log")
        ax_norm.legend(fontsize="small", ncol=2)
        ratios = [(r["call"], r["update_ratio"]) for r in self.history
                  if r["update_ratio"] is not None]
        ax_ratio.plot([c for c, _ in ratios], [v for _, v in ratios], marker=".")
        ax_ratio.set_xlabel("log_gradients call")
        ax_ratio.set_ylabel("update / parameter norm")
        return fig


def _ratio(d_sq, w_sq):
    """``sqrt(d_sq / w_sq)``; a zero denominator gives inf (or 0 if nothing moved)."""
    if w_sq > 0:
        return math.sqrt(d_sq / w_sq)
    return 0.0 if d_sq == 0 else math.inf
