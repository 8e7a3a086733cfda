"""Draw the optimizer pictures of the documentation from the real optimizers.

Every trajectory in the optimizer pages comes from running an optimizer of
:mod:`neural_arch.optim` on one of two functions of two variables:

* the Rosenbrock function :math:`(1 - x)^2 + 100 (y - x^2)^2`, a curved, narrow
  valley with its minimum at :math:`(1, 1)`;
* a rotated ill-conditioned quadratic :math:`\\tfrac12 (u^2 + 20 v^2)`, where
  :math:`(u, v)` is :math:`(x, y)` turned by 30 degrees: an elongated bowl whose
  axes are not the coordinate axes, with its minimum at the origin.

Each optimizer starts from the same point on each function and takes the same
number of steps (for the gradient-free methods a step is one generation; for
L-BFGS one quasi-Newton iteration with its line search). The learning rates are
chosen per function so that each method shows its character, and are printed in
the pictures' legends.

``docs/conf.py`` runs this script when the HTML is built, so the pictures always
show what the code does now. By hand::

    python docs/make_figures.py                  # into docs/_generated/figures
    python docs/make_figures.py --out DIR --steps 50

The figures are drawn on :class:`matplotlib.figure.Figure` objects directly (no
pyplot), with the Agg canvas, so no display is needed.
"""
from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:       # run from a checkout without installing
    sys.path.insert(0, str(HERE.parent))

import neural_arch as na  # noqa: E402
from neural_arch import optim  # noqa: E402

DEFAULT_OUT = HERE / "_generated" / "figures"
DEFAULT_STEPS = 500


# ---- the two test functions ------------------------------------------------------------

@dataclass
class Problem:
    """A function of two variables, written twice: with neural_arch ops and in NumPy."""

    name: str
    title: str
    start: tuple
    minimum: tuple
    xlim: tuple
    ylim: tuple

    def terms(self, p):
        """The function as a sum of two parts (the "tasks" of PCGrad and GradNorm)."""
        raise NotImplementedError

    def loss(self, p):
        a, b = self.terms(p)
        return a + b

    def grid(self, x, y):
        """The function on NumPy arrays of x and y (for the contour lines)."""
        raise NotImplementedError


class Rosenbrock(Problem):
    def terms(self, p):
        x, y = p[0], p[1]
        return (1 - x) ** 2, 100 * (y - x ** 2) ** 2

    def grid(self, x, y):
        return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


class RotatedQuadratic(Problem):
    angle = math.radians(30.0)
    curvatures = (1.0, 20.0)

    def _uv(self, x, y):
        c, s = math.cos(self.angle), math.sin(self.angle)
        return c * x + s * y, -s * x + c * y

    def terms(self, p):
        u, v = self._uv(p[0], p[1])
        return 0.5 * self.curvatures[0] * u ** 2, 0.5 * self.curvatures[1] * v ** 2

    def grid(self, x, y):
        u, v = self._uv(x, y)
        return 0.5 * self.curvatures[0] * u ** 2 + 0.5 * self.curvatures[1] * v ** 2


PROBLEMS = {
    "rosenbrock": Rosenbrock("rosenbrock", "Rosenbrock", start=(-1.2, 1.0), minimum=(1.0, 1.0),
                             xlim=(-2.0, 2.0), ylim=(-1.0, 3.0)),
    "quadratic": RotatedQuadratic("quadratic", "rotated quadratic, condition number 20",
                                  start=(-2.0, 1.0), minimum=(0.0, 0.0),
                                  xlim=(-3.0, 3.0), ylim=(-2.0, 2.0)),
}


# ---- the optimizers and how each is driven ---------------------------------------------

@dataclass
class Run:
    """One optimizer configuration, with its hyper-parameters per problem.

    ``how`` says how a step is taken: ``'grad'`` (backward, then ``step()``),
    ``'closure'`` (``step(closure)``: L-BFGS, SAM), ``'tasks'`` (``step([loss_1,
    loss_2])`` with the two terms of the function: PCGrad, GradNorm) or ``'free'``
    (``step(closure)`` evaluated without gradients: CMA-ES, DE, PSO).
    """

    label: str
    family: str
    cls: type
    kwargs: dict                    # problem name -> keyword arguments
    how: str = "grad"
    base: tuple = None              # (class, kwargs per problem) for Lookahead
    shown: tuple = ("lr",)          # hyper-parameters named in the legend
    extra: dict = field(default_factory=dict)   # keyword arguments for both problems
    average: str = None             # a state entry drawn as a second, dashed path (ASGD)
    style: str = "-"                # line style of the path

    def build(self, params, problem):
        kwargs = {**self.extra, **self.kwargs[problem]}
        if self.base is not None:
            base_cls, base_kwargs = self.base
            return self.cls(base_cls(params, **base_kwargs[problem]), **kwargs)
        return self.cls(params, **kwargs)

    def legend(self, problem):
        kwargs = dict(self.kwargs[problem])
        if self.base is not None:
            kwargs.update(self.base[1][problem])
        shown = [f"{k}={kwargs[k]:g}" for k in self.shown if k in kwargs]
        return self.label + (f" ({', '.join(shown)})" if shown else "")


def _per_problem(rosenbrock, quadratic):
    return {"rosenbrock": rosenbrock, "quadratic": quadratic}


def _lr(rosenbrock, quadratic, **common):
    return _per_problem(dict(lr=rosenbrock, **common), dict(lr=quadratic, **common))


#: Optimizer families: page name -> (title, the ``Run`` labels drawn on that page).
FAMILIES = {
    "sgd": "SGD, momentum and averaging",
    "adaptive": "Per-coordinate step sizes: Adagrad, Adadelta, RMSprop",
    "adam": "The Adam family",
    "sign": "Sign-based steps: Rprop and Lion",
    "layerwise": "Layer-wise trust ratios: LARS and LAMB",
    "second_order": "Curvature: L-BFGS and Shampoo",
    "wrappers": "Wrappers: SAM, ASAM, Lookahead, PCGrad, GradNorm",
    "gradient_free": "Gradient-free search: CMA-ES, differential evolution, particle swarms",
}

RUNS = [
    # SGD and friends
    Run("SGD", "sgd", optim.SGD, _lr(1e-3, 0.09)),
    Run("SGD + momentum 0.9", "sgd", optim.SGD, _lr(2e-4, 0.02, momentum=0.9)),
    Run("SGD + Nesterov 0.9", "sgd", optim.SGD, _lr(2e-4, 0.02, momentum=0.9, nesterov=True)),
    Run("ASGD", "sgd", optim.ASGD, _lr(1e-3, 0.09, t0=50), average="ax",
        style=":"),
    # per-coordinate step sizes
    Run("Adagrad", "adaptive", optim.Adagrad, _lr(0.5, 0.5)),
    Run("Adadelta", "adaptive", optim.Adadelta, _lr(10.0, 10.0)),
    Run("RMSprop", "adaptive", optim.RMSprop, _lr(0.01, 0.01)),
    Run("RMSprop centered + momentum", "adaptive", optim.RMSprop,
        _lr(2e-3, 2e-3, centered=True, momentum=0.9)),
    # Adam family
    Run("Adam", "adam", optim.Adam, _lr(0.05, 0.05)),
    Run("Adam (AMSGrad)", "adam", optim.Adam, _lr(0.05, 0.05, amsgrad=True)),
    Run("AdamW", "adam", optim.AdamW, _lr(0.05, 0.05, weight_decay=0.1),
        shown=("lr", "weight_decay")),
    Run("Adamax", "adam", optim.Adamax, _lr(0.05, 0.05)),
    Run("NAdam", "adam", optim.NAdam, _lr(0.05, 0.05)),
    Run("RAdam", "adam", optim.RAdam, _lr(5e-3, 0.05)),
    # sign-based
    Run("Rprop", "sign", optim.Rprop, _lr(0.01, 0.01)),
    Run("Lion", "sign", optim.Lion, _lr(0.01, 0.03)),
    # layer-wise trust ratios (the whole point is one tensor, so 1-D is not excluded)
    Run("LARS", "layerwise", optim.LARS, _lr(2.0, 2.0, trust_coefficient=1e-3,
                                                exclude_1d=False)),
    Run("LAMB", "layerwise", optim.LAMB, _lr(0.02, 0.02)),
    # curvature
    Run("L-BFGS (strong Wolfe)", "second_order", optim.LBFGS,
        _lr(1.0, 1.0, max_iter=1, max_eval=25, line_search_fn="strong_wolfe"),
        how="closure"),
    Run("Shampoo", "second_order", optim.Shampoo, _lr(0.05, 0.3)),
    # wrappers
    Run("SAM over SGD", "wrappers", optim.SAM, _lr(1e-3, 0.05, rho=0.05),
        how="closure", shown=("lr", "rho")),
    Run("ASAM over SGD", "wrappers", optim.ASAM, _lr(1e-3, 0.05, rho=0.5),
        how="closure", shown=("lr", "rho")),
    Run("Lookahead over Adam", "wrappers", optim.Lookahead, _per_problem({}, {}),
        base=(optim.Adam, _lr(0.05, 0.05)), extra=dict(k=5, alpha=0.5)),
    Run("PCGrad over Adam", "wrappers", optim.PCGrad, _lr(0.05, 0.05, seed=0), how="tasks"),
    Run("GradNorm over Adam", "wrappers", optim.GradNorm, _lr(0.05, 0.05), how="tasks"),
    # gradient-free
    Run("CMA-ES", "gradient_free", optim.CMAES, _per_problem(dict(sigma=0.5), dict(sigma=0.5)),
        how="free", extra=dict(seed=0), shown=("sigma",)),
    Run("Differential evolution", "gradient_free", optim.DifferentialEvolution,
        _per_problem(dict(init_scale=0.5), dict(init_scale=0.5)), how="free",
        extra=dict(seed=0, population_size=15, tol=0.0), shown=()),
    Run("Particle swarm", "gradient_free", optim.ParticleSwarmOptimization,
        _per_problem(dict(init_scale=0.5), dict(init_scale=0.5)), how="free",
        extra=dict(seed=0, swarm_size=15, inertia_weight=0.7298, cognitive_weight=1.49618,
                   social_weight=1.49618), shown=()),
]


def trajectory(run, problem, steps):
    """The path of ``run`` on ``problem``: ``(steps + 1, 2)`` points and their losses.

    With ``run.average`` set, a third item is the path of that state entry (ASGD's
    running average), else None.
    """
    p = na.Parameter(np.array(problem.start, dtype=np.float64))
    opt = run.build([p], problem.name)

    def closure():
        opt.zero_grad()
        loss = problem.loss(p)
        loss.backward()
        return loss

    def value():
        return problem.loss(p)

    points = [p.numpy().copy()]
    averages = [p.numpy().copy()]
    for _ in range(steps):
        if run.how == "grad":
            closure()
            opt.step()
        elif run.how == "closure":
            opt.step(closure)
        elif run.how == "tasks":
            opt.zero_grad()
            opt.step(list(problem.terms(p)))
        elif run.how == "free":
            opt.step(value)
        else:
            raise ValueError(f"unknown way to drive an optimizer: {run.how!r}")
        points.append(p.numpy().copy())
        if run.average is not None:
            averages.append(na.backend.asnumpy(opt.state[p][run.average]).copy())
    points = np.array(points)
    losses = problem.grid(points[:, 0], points[:, 1])
    return points, losses, (np.array(averages) if run.average is not None else None)


def all_trajectories(steps=DEFAULT_STEPS, runs=RUNS):
    """``{(label, problem): (points, losses)}`` for every run on both problems."""
    return {(run.label, name): trajectory(run, problem, steps)
            for run in runs for name, problem in PROBLEMS.items()}


# ---- drawing -------------------------------------------------------------------------

DPI = 100      # pixels per inch of the PNG files


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


@functools.lru_cache(maxsize=None)
def _contours(name):
    """The grid and the contour levels of a problem (computed once per problem)."""
    problem = PROBLEMS[name]
    xx, yy = np.meshgrid(np.linspace(*problem.xlim, 200), np.linspace(*problem.ylim, 200))
    zz = problem.grid(xx, yy)
    return xx, yy, zz, np.logspace(-2, math.log10(zz.max()), 18)


def _landscape(ax, problem, title=None, fontsize=9, ticks=True):
    xx, yy, zz, levels = _contours(problem.name)
    ax.contour(xx, yy, zz, levels=levels, colors="0.75", linewidths=0.6)
    ax.plot(*problem.start, "o", color="black", ms=4)
    ax.plot(*problem.minimum, "*", color="black", ms=9)
    ax.set_xlim(problem.xlim)
    ax.set_ylim(problem.ylim)
    ax.set_aspect("equal")
    if ticks:
        ax.tick_params(labelsize=7)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title or problem.title, fontsize=fontsize)


def _path(ax, points, color, label=None, style="-"):
    pts = points[np.all(np.isfinite(points), axis=1)]
    ax.plot(pts[:, 0], pts[:, 1], style, color=color, lw=1.3, alpha=0.9, label=label)
    ax.plot(pts[-1, 0], pts[-1, 1], "o", color=color, ms=4)


LOSS_FLOOR, LOSS_CEILING = 1e-16, 1e4     # the loss axes' range (diverged runs leave it)


def family_figure(family, runs, paths, steps):
    """One family: its members' paths on both problems, and their losses per step."""
    members = [r for r in runs if r.family == family]
    fig = _figure(15, 5.0)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.25, 1.1]})
    colors = _colors(len(members))
    for ax, (name, problem) in zip(axes, PROBLEMS.items()):
        _landscape(ax, problem, f"{problem.title}, {steps} steps")
        for run, color in zip(members, colors):
            points, losses, averages = paths[run.label, name]
            _path(ax, points, color, f"{run.legend(name)}: {losses[-1]:.2g}", run.style)
            if averages is not None:
                final = problem.grid(*averages[-1])
                _path(ax, averages, color, f"{run.label}, average '{run.average}': "
                      f"{final:.2g}", style="--")
        ax.legend(fontsize=7, loc="lower right" if name == "quadratic" else "upper left",
                  title="final loss", title_fontsize=7, framealpha=0.85)
    ax = axes[2]
    for run, color in zip(members, colors):
        for (name, problem), style in zip(PROBLEMS.items(), ["-", "--"]):
            losses = np.clip(paths[run.label, name][1], LOSS_FLOOR, None)
            ax.semilogy(losses, style, color=color, lw=1.1)
    ax.plot([], [], "-", color="0.3", label=PROBLEMS["rosenbrock"].title)
    ax.plot([], [], "--", color="0.3", label="rotated quadratic")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_ylim(LOSS_FLOOR / 10, LOSS_CEILING)
    ax.set_xlim(0, steps)
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, lw=0.4, alpha=0.5)
    ax.set_title("loss per step (colours as in the paths)", fontsize=9)
    fig.tight_layout()
    return fig


def gallery_figure(problem_name, runs, paths, steps, columns=6):
    """Every optimizer on one problem, one small panel each, from the same start."""
    problem = PROBLEMS[problem_name]
    rows = math.ceil(len(runs) / columns)
    fig = _figure(2.6 * columns, 2.5 * rows + 0.4)
    axes = np.atleast_2d(fig.subplots(rows, columns))
    families = list(FAMILIES)
    colors = dict(zip(families, _colors(len(families))))
    for ax, run in zip(axes.flat, runs):
        points, losses, _ = paths[run.label, problem_name]
        _landscape(ax, problem, f"{run.label}\nloss {losses[-1]:.2g}", fontsize=8,
                   ticks=False)
        _path(ax, points, colors[run.family])
    for ax in axes.flat[len(runs):]:
        ax.set_visible(False)
    fig.suptitle(f"{problem.title}: {steps} steps from {problem.start}", fontsize=11)
    fig.tight_layout()
    return fig


def final_loss_figure(runs, paths, steps):
    """The loss each optimizer reached, both problems, as bars on a log scale."""
    fig = _figure(12, 0.26 * len(runs) + 1.6)
    axes = fig.subplots(1, 2, sharey=True)
    families = list(FAMILIES)
    colors = dict(zip(families, _colors(len(families))))
    rows = np.arange(len(runs))[::-1]
    for ax, (name, problem) in zip(axes, PROBLEMS.items()):
        final = np.array([paths[run.label, name][1][-1] for run in runs])
        start = problem.grid(*problem.start)
        shown = np.where(np.isfinite(final), np.clip(final, LOSS_FLOOR, None), LOSS_CEILING)
        ax.barh(rows, shown, left=0, color=[colors[r.family] for r in runs], height=0.7)
        for row, value in zip(rows, final):
            if not np.isfinite(value) or value > LOSS_CEILING:
                ax.text(LOSS_CEILING, row, " diverged", va="center", fontsize=7)
        ax.axvline(start, color="0.3", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlim(LOSS_FLOOR / 10, LOSS_CEILING * 100)
        ax.set_title(f"{problem.title}: loss after {steps} steps\n(dashed: the start's "
                     f"loss; bars at {LOSS_FLOOR:g} reached it or below)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(True, axis="x", lw=0.4, alpha=0.5)
    axes[0].set_yticks(rows)
    axes[0].set_yticklabels([run.label for run in runs], fontsize=8)
    fig.tight_layout()
    return fig


def _colors(n):
    from matplotlib import colormaps
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ---- what the docs include -------------------------------------------------------------

def figure_names():
    """The file names this script writes (the docs' pages refer to these)."""
    return list(_drawers())


def _drawers():
    """File name -> function of (paths, steps) that draws that figure."""
    drawers = {f"{family}.png": functools.partial(family_figure, family, RUNS)
               for family in FAMILIES}
    drawers["gallery_rosenbrock.png"] = functools.partial(gallery_figure, "rosenbrock", RUNS)
    drawers["gallery_quadratic.png"] = functools.partial(gallery_figure, "quadratic", RUNS)
    drawers["gallery_final.png"] = functools.partial(final_loss_figure, RUNS)
    return drawers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for the PNG files (default {DEFAULT_OUT})")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"steps of every optimizer (default {DEFAULT_STEPS})")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=figure_names(),
                        help="draw only these figures (file names, e.g. adam.png)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    start = time.perf_counter()
    drawers = _drawers()
    names = args.only or list(drawers)
    with na.autograd.grad_clip(None):     # show the optimizers, not the engine's clamp
        paths = all_trajectories(args.steps)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        fig = drawers[name](paths, args.steps)
        # No software or date in the PNG's metadata, so a re-run with the same
        # numbers writes the same bytes.
        fig.savefig(args.out / name, metadata={"Software": None})
    print(f"make_figures: {len(names)} figures of {len(RUNS)} optimizers in {args.out} "
          f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
