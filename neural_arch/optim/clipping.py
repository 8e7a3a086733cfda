r"""Explicit gradient clipping: by global norm, by value, per tensor, adaptive (AGC).

Each function here rewrites the ``.grad`` arrays of the parameters it is given,
in place, between ``loss.backward()`` and ``optimizer.step()``. With :math:`g`
one parameter's gradient, :math:`G` all of them and :math:`\epsilon = 10^{-6}`
(PyTorch's guard against a zero norm):

==================================  =======================================================
:func:`clip_grad_norm_`             :math:`g \leftarrow g\,\min(1, c / (\|G\|_p+\epsilon))`
                                    with :math:`\|G\|_p = \|(\|g_1\|_p, \ldots,
                                    \|g_n\|_p)\|_p`, one coefficient for all
:func:`clip_grad_value_`            :math:`g \leftarrow \mathrm{clamp}(g, -c, c)`
:func:`clip_grad_norm_per_tensor_`  :math:`g \leftarrow g\,\min(1, c / (\|g\|_p+\epsilon))`,
                                    a coefficient per tensor (Keras' ``clipnorm``)
:func:`adaptive_clip_grad_`         per unit :math:`i`: :math:`g_i \leftarrow g_i\,
                                    \lambda \max(\|w_i\|, \varepsilon)/\|g_i\|` where
                                    :math:`\|g_i\| / \max(\|w_i\|, \varepsilon) > \lambda`
==================================  =======================================================

:func:`clip_grad_norm_` and :func:`clip_grad_value_` follow
``torch.nn.utils`` (arguments, return values, non-finite handling). Parameters
without a gradient are skipped; a parameter listed twice counts once.

Composition
-----------
:class:`GradientClipper` and :func:`apply_gradient_clipping` run several kinds
in one fixed order, each only when configured:

1. by value (``clip_value`` / Keras ``clipvalue``),
2. per-tensor norm (``per_tensor_max_norm`` / ``clipnorm``),
3. adaptive (``adaptive=True``),
4. global norm (``max_norm`` / ``global_clipnorm``).

Every optimizer also takes ``max_grad_norm=`` (see
:attr:`neural_arch.optim.Optimizer.max_grad_norm`): :func:`clip_grad_norm_`
over all its parameters before each update.

Not the engine's clamp
----------------------
This module is unrelated to the automatic clamp of the backward pass
(:func:`neural_arch.autograd.set_grad_clip`, ``c = 1e6`` by default). That clamp
bounds every gradient flowing along every edge of the graph, elementwise, as a
guard against overflow, and is always on unless switched off. The clipping here
acts once on the finished gradients of the leaves, as a training technique, and
happens only when asked for.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..backend import device_of, get_array_module, to_device
from ..core.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grad_norm_per_tensor_",
           "adaptive_clip_grad_", "GradientClipper", "apply_gradient_clipping",
           "KERAS_CLIPPING_KEYS"]

_GUARD = 1e-6       # added to a norm before dividing by it (PyTorch's value)

#: Seed 002's configuration keys -> the Keras argument names of apply_gradient_clipping.
KERAS_CLIPPING_KEYS = {
    "gradient_clipping_by_value": "clipvalue",
    "gradient_clipping_by_norm_local": "clipnorm",
    "gradient_clipping_by_norm": "global_clipnorm",
}


# ---- argument checks -----------------------------------------------------------------

def _real(owner, name, value, *, positive=False, allow_inf=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r} "
                        f"({type(value).__name__})")
    value = float(value)
    bad = math.isnan(value) or value < 0 or (positive and value == 0) \
        or (not allow_inf and math.isinf(value))
    if bad:
        rng = f"{name} {'>' if positive else '>='} 0" + ("" if allow_inf else ", finite")
        raise ValueError(f"{owner}: invalid {name} {value!r} (expected {rng})")
    return value


def _norm_type(owner, norm_type):
    """A p-norm order: a positive number or infinity (``'inf'`` accepted)."""
    if isinstance(norm_type, str) and norm_type.strip().lower() in ("inf", "+inf"):
        return math.inf
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) \
            or not float(norm_type) > 0:
        raise ValueError(f"{owner}: norm_type must be a positive number or inf, got "
                         f"{norm_type!r}")
    return float(norm_type)


def _flag(owner, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def _parameters(parameters, owner):
    """The distinct Tensors of ``parameters`` (a Tensor or an iterable of them)."""
    if isinstance(parameters, Tensor):
        return [parameters]
    if isinstance(parameters, (str, bytes)) or not hasattr(parameters, "__iter__"):
        raise TypeError(f"{owner} expects a Tensor or an iterable of Tensors (such as "
                        f"model.parameters()), got {type(parameters).__name__}")
    out, seen = [], set()
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            hint = " (for a dict of named parameters pass .values())" \
                if isinstance(p, str) else ""
            raise TypeError(f"{owner}: element {i} of parameters is a {type(p).__name__}, "
                            f"not a Tensor{hint}")
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _grad(p):
    """The raw gradient array of ``p``, or None (``.grad`` may hold a Tensor or an array)."""
    g = p.grad
    if g is None:
        return None
    return g.data if isinstance(g, Tensor) else g


def _grads(parameters, owner):
    return [g for g in map(_grad, _parameters(parameters, owner)) if g is not None]


# ---- norms ------------------------------------------------------------------------------

def _norm(a, p, axis=None):
    """The p-norm of ``a`` (over ``axis``, kept as size-1 dims), in ``a``'s dtype."""
    xp = get_array_module(a)
    keep = axis is not None
    if a.size == 0:
        return xp.zeros((1,) * a.ndim if keep else (), dtype=a.dtype)
    if p == 2.0:
        return xp.sqrt(xp.sum(a * a, axis=axis, keepdims=keep))
    if p == math.inf:
        return xp.max(xp.abs(a), axis=axis, keepdims=keep)
    if p == 1.0:
        return xp.sum(xp.abs(a), axis=axis, keepdims=keep)
    return xp.sum(xp.abs(a) ** p, axis=axis, keepdims=keep) ** (1.0 / p)


def _total_norm(grads, p):
    """The p-norm of the per-tensor p-norms, on the first gradient's device."""
    norms = [_norm(g, p) for g in grads]
    device = device_of(grads[0])
    norms = [to_device(n, device) for n in norms]
    return _norm(get_array_module(norms[0]).stack(norms), p)


def _scale_(g, coef):
    """``g *= coef`` in place, the 0-d array ``coef`` moved to ``g``'s device if needed."""
    g *= to_device(coef, device_of(g))


def _check_finite(total, norm_type, error_if_nonfinite):
    if error_if_nonfinite and not bool(get_array_module(total).isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            f"non-finite ({float(total)}), so it cannot be clipped. To disable this error "
            f"and scale the gradients by the non-finite norm anyway, set "
            f"`error_if_nonfinite=False`")


# ---- the clipping functions -------------------------------------------------------------

def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    r"""Scale all gradients together so that their total norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of the vector of per-tensor norms
    (equal to the norm of all gradients concatenated). Every gradient is
    multiplied, in place, by :math:`\min(1, \mathrm{max\_norm}/(\|G\| + 10^{-6}))`.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
        Parameters whose ``.grad`` is clipped; those without a gradient are skipped.
    max_norm : float
        Largest allowed total norm (``>= 0``; ``inf`` leaves the gradients as they are).
    norm_type : float or 'inf', default 2.0
        Order ``p > 0`` of the norm; ``inf`` is the largest absolute value.
    error_if_nonfinite : bool, default False
        Raise if the total norm is NaN or infinite. Otherwise the gradients are
        scaled by the (zero or NaN) coefficient, as PyTorch does.
    foreach : bool or None, default None
        Accepted for PyTorch compatibility; the arithmetic is the same either way.

    Returns
    -------
    Tensor
        The total norm of the gradients *before* clipping, a 0-d Tensor on the
        first gradient's device (``Tensor(0.)`` when no parameter has a gradient).

    Raises
    ------
    RuntimeError
        ``error_if_nonfinite`` and a non-finite total norm (nothing is changed).
    TypeError, ValueError
        A parameter that is not a Tensor, a negative or NaN ``max_norm``, a
        ``norm_type`` that is not positive.

    Examples
    --------
    >>> import neural_arch as na
    >>> w = na.Parameter([3.0, 4.0]); w.grad = na.Tensor([3.0, 4.0])
    >>> float(clip_grad_norm_([w], max_norm=1.0))
    5.0
    >>> [round(v, 4) for v in w.grad.tolist()]
    [0.6, 0.8]
    """
    owner = "clip_grad_norm_"
    max_norm = _real(owner, "max_norm", max_norm)
    norm_type = _norm_type(owner, norm_type)
    error_if_nonfinite = _flag(owner, "error_if_nonfinite", error_if_nonfinite)
    if foreach is not None:
        _flag(owner, "foreach", foreach)
    grads = _grads(parameters, owner)
    if not grads:
        return Tensor(0.0)
    total = _total_norm(grads, norm_type)
    _check_finite(total, norm_type, error_if_nonfinite)
    xp = get_array_module(total)
    # No host round trip: the coefficient stays a 0-d array on the device.
    coef = xp.minimum(max_norm / (total + _GUARD), 1.0)
    for g in grads:
        _scale_(g, coef)
    return Tensor._make(total)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient elementwise to ``[-clip_value, clip_value]``, in place.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
        Parameters whose ``.grad`` is clipped; those without a gradient are skipped.
    clip_value : float
        Bound on the absolute value of each element (``>= 0``). NaNs stay NaN.
    foreach : bool or None, default None
        Accepted for PyTorch compatibility.

    Returns
    -------
    None
    """
    owner = "clip_grad_value_"
    clip_value = _real(owner, "clip_value", clip_value)
    if foreach is not None:
        _flag(owner, "foreach", foreach)
    for g in _grads(parameters, owner):
        get_array_module(g).clip(g, -clip_value, clip_value, out=g)


def clip_grad_norm_per_tensor_(parameters, max_norm, norm_type=2.0,
                               error_if_nonfinite=False):
    r"""Clip each gradient to norm ``max_norm`` on its own ("local" norm clipping).

    Each gradient is multiplied by :math:`\min(1, \mathrm{max\_norm}/(\|g\| +
    10^{-6}))` with its own norm, so large gradients shrink while small ones keep
    their size (Keras' ``clipnorm``; seed 002's ``gradient_clipping_by_norm_local``).
    The direction of the whole update changes, unlike :func:`clip_grad_norm_`.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
    max_norm : float
        Largest allowed norm of each gradient (``>= 0``).
    norm_type : float or 'inf', default 2.0
    error_if_nonfinite : bool, default False
        Raise (before changing anything) if any gradient's norm is NaN or infinite.

    Returns
    -------
    list of Tensor
        The norm of each gradient before clipping (0-d Tensors), in parameter
        order, for the parameters that have a gradient.
    """
    owner = "clip_grad_norm_per_tensor_"
    max_norm = _real(owner, "max_norm", max_norm)
    norm_type = _norm_type(owner, norm_type)
    error_if_nonfinite = _flag(owner, "error_if_nonfinite", error_if_nonfinite)
    grads = _grads(parameters, owner)
    norms = [_norm(g, norm_type) for g in grads]
    for n in norms:
        _check_finite(n, norm_type, error_if_nonfinite)
    for g, n in zip(grads, norms):
        g *= get_array_module(n).minimum(max_norm / (n + _GUARD), 1.0)
    return [Tensor._make(n) for n in norms]


def _unit_norms(a):
    """The 2-norm of each output unit of ``a``: over all axes but the first (ndim >= 2)."""
    if a.ndim <= 1:
        return _norm(a, 2.0)
    return _norm(a, 2.0, axis=tuple(range(1, a.ndim)))


def _adaptive_clip(params, clip_factor, eps):
    """AGC on the gradients of ``params``; returns per-tensor counts of clipped units.

    The counts stay 0-d device arrays (no host round trip unless someone reads them).
    """
    counts = []
    for p in params:
        g = _grad(p)
        if g is None:
            continue
        xp = get_array_module(g)
        w_norm = xp.maximum(_unit_norms(p.data), eps)
        g_norm = _unit_norms(g)
        allowed = clip_factor * w_norm
        over = g_norm > allowed
        counts.append(xp.sum(over))
        g *= xp.where(over, allowed / xp.maximum(g_norm, _GUARD), 1.0)
    return counts


def adaptive_clip_grad_(parameters, clip_factor=0.01, eps=1e-3):
    r"""Adaptive gradient clipping (AGC), unit by unit, in place.

    For each unit :math:`i` of a parameter :math:`W` with gradient :math:`G`,
    with Frobenius norms and :math:`\lambda` = ``clip_factor``:

    .. math::

        G_i \leftarrow \begin{cases}
            \lambda \dfrac{\max(\|W_i\|, \varepsilon)}{\|G_i\|}\, G_i &
                \text{if } \dfrac{\|G_i\|}{\max(\|W_i\|, \varepsilon)} > \lambda \\
            G_i & \text{otherwise}
        \end{cases}

    so no unit's gradient exceeds a fraction :math:`\lambda` of its weights' norm
    (Brock, De, Smith and Simonyan 2021, "High-Performance Large-Scale Image
    Recognition Without Normalization", arXiv:2102.06171, section 4.1).

    Units: for a parameter with two or more dimensions, a unit is one index of
    the *first* axis with all other axes reduced: a row of a ``Linear`` weight
    ``(out, in)``, one filter of a ``Conv2d`` weight ``(out, in, kh, kw)``. A 1-D
    parameter (a bias, a norm gain) or a scalar is a single unit. The paper does
    not clip the final classifier layer; pass the parameters to clip.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
        Parameters whose ``.grad`` is clipped; those without a gradient are skipped.
    clip_factor : float, default 0.01
        :math:`\lambda > 0`, the largest allowed ratio of gradient to weight norm.
    eps : float, default 1e-3
        :math:`\varepsilon \ge 0`, the smallest weight norm used, so that units
        with zero weights (fresh biases) can still move.

    Returns
    -------
    Tensor
        The global 2-norm of the gradients before clipping (0-d; ``Tensor(0.)`` when
        no parameter has a gradient), as :func:`clip_grad_norm_` returns it.
    """
    owner = "adaptive_clip_grad_"
    clip_factor = _real(owner, "clip_factor", clip_factor, positive=True, allow_inf=False)
    eps = _real(owner, "eps", eps, allow_inf=False)
    params = _parameters(parameters, owner)
    grads = [g for g in map(_grad, params) if g is not None]
    if not grads:
        return Tensor(0.0)
    total = _total_norm(grads, 2.0)          # measured before the in-place clipping
    _adaptive_clip(params, clip_factor, eps)
    return Tensor._make(total)


def _exceeds(g, bound):
    """Whether some element of ``g`` lies outside ``[-bound, bound]``."""
    xp = get_array_module(g)
    return bool(xp.any(xp.abs(g) > bound))


# ---- composition -------------------------------------------------------------------------

class GradientClipper:
    """Clip gradients with a fixed recipe, and keep count of what it did.

    The configured kinds run in this order on every call (see the module
    docstring): by value, per-tensor norm, adaptive, global norm.

    Parameters
    ----------
    max_norm : float, optional
        Global norm bound (:func:`clip_grad_norm_`), applied last.
    norm_type : float or 'inf', default 2.0
        Order of the global and per-tensor norms (AGC always uses 2-norms).
    adaptive : bool, default False
        Apply adaptive gradient clipping (:func:`adaptive_clip_grad_`).
    clip_factor : float, default 0.01
        AGC's ratio bound :math:`\\lambda`.
    eps : float, default 1e-3
        AGC's smallest weight norm.
    clip_value : float, optional
        Elementwise bound (:func:`clip_grad_value_`), applied first.
    per_tensor_max_norm : float, optional
        Per-tensor norm bound (:func:`clip_grad_norm_per_tensor_`).
    error_if_nonfinite : bool, default False
        Passed to the norm clippings.

    Attributes
    ----------
    calls : int
        Number of :meth:`clip_gradients` calls.
    clipped_calls : int
        Calls in which some clipping changed the gradients: the global norm
        exceeded ``max_norm``, a unit was clipped by AGC, a tensor by its
        per-tensor bound, or an element by ``clip_value``.
    last_norm : float or None
        The total gradient norm measured by the last call (see :meth:`clip_gradients`).

    Examples
    --------
    >>> import neural_arch as na
    >>> w = na.Parameter([3.0, 4.0]); w.grad = na.Tensor([3.0, 4.0])
    >>> clipper = GradientClipper(max_norm=1.0, norm_type=2)
    >>> float(clipper.clip_gradients([w])), clipper.clip_rate
    (5.0, 1.0)
    """

    def __init__(self, max_norm=None, norm_type=2.0, adaptive=False, clip_factor=0.01,
                 eps=1e-3, clip_value=None, per_tensor_max_norm=None,
                 error_if_nonfinite=False):
        owner = "GradientClipper"
        self.max_norm = None if max_norm is None else _real(owner, "max_norm", max_norm)
        self.norm_type = _norm_type(owner, norm_type)
        self.adaptive = _flag(owner, "adaptive", adaptive)
        self.clip_factor = _real(owner, "clip_factor", clip_factor, positive=True,
                                 allow_inf=False)
        self.eps = _real(owner, "eps", eps, allow_inf=False)
        self.clip_value = None if clip_value is None else _real(owner, "clip_value",
                                                                clip_value)
        self.per_tensor_max_norm = None if per_tensor_max_norm is None else _real(
            owner, "per_tensor_max_norm", per_tensor_max_norm)
        self.error_if_nonfinite = _flag(owner, "error_if_nonfinite", error_if_nonfinite)
        if self.max_norm is None and not self.adaptive and self.clip_value is None \
                and self.per_tensor_max_norm is None:
            raise ValueError("GradientClipper has nothing to do: give max_norm, clip_value, "
                             "per_tensor_max_norm, or adaptive=True")
        self.calls = 0
        self.clipped_calls = 0
        self.last_norm = None

    @property
    def clip_rate(self) -> float:
        """Fraction of calls that changed the gradients (0.0 before the first call)."""
        return self.clipped_calls / self.calls if self.calls else 0.0

    def clip_gradients(self, parameters):
        """Clip the gradients of ``parameters`` in place.

        Parameters
        ----------
        parameters : Tensor or iterable of Tensor
            Such as ``model.parameters()``; parameters without a gradient are skipped.

        Returns
        -------
        Tensor
            The total norm (``norm_type``) of the gradients as they were *before*
            this call, a 0-d Tensor (as :func:`clip_grad_norm_` returns it); also
            stored as a float in :attr:`last_norm`.
        """
        params = _parameters(parameters, "GradientClipper.clip_gradients")
        grads = [g for g in map(_grad, params) if g is not None]
        self.calls += 1
        if not grads:
            self.last_norm = 0.0
            return Tensor(0.0)
        before = _total_norm(grads, self.norm_type)
        clipped = False
        if self.clip_value is not None:
            clipped |= any(_exceeds(g, self.clip_value) for g in grads)
            clip_grad_value_(params, self.clip_value)
        if self.per_tensor_max_norm is not None:
            norms = clip_grad_norm_per_tensor_(params, self.per_tensor_max_norm,
                                               self.norm_type, self.error_if_nonfinite)
            clipped |= any(float(n) > self.per_tensor_max_norm for n in norms)
        if self.adaptive:
            counts = _adaptive_clip(params, self.clip_factor, self.eps)
            clipped |= any(int(c) > 0 for c in counts)
        if self.max_norm is not None:
            total = clip_grad_norm_(params, self.max_norm, self.norm_type,
                                    self.error_if_nonfinite)
            clipped |= float(total) > self.max_norm
        self.clipped_calls += bool(clipped)
        self.last_norm = float(before)
        return Tensor._make(before)

    __call__ = clip_gradients

    def to_config(self):
        """The constructor arguments as a dict; ``GradientClipper(**config)`` rebuilds it."""
        return {"max_norm": self.max_norm, "norm_type": self.norm_type,
                "adaptive": self.adaptive, "clip_factor": self.clip_factor, "eps": self.eps,
                "clip_value": self.clip_value, "per_tensor_max_norm": self.per_tensor_max_norm,
                "error_if_nonfinite": self.error_if_nonfinite}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_config().items())
        return f"GradientClipper({args})"


def apply_gradient_clipping(parameters, clipvalue=None, clipnorm=None, global_clipnorm=None,
                            **keys):
    """Apply Keras-style clipping options in the fixed order value, local norm, global norm.

    Keras lets an optimizer take only one of its three options; here they
    compose: first every element is clamped to ``[-clipvalue, clipvalue]``, then
    each gradient is clipped to 2-norm ``clipnorm``, then all of them together to
    global 2-norm ``global_clipnorm``. Order matters: a gradient ``[3, 4]`` with
    ``clipvalue=1`` and ``clipnorm=1`` becomes ``[1, 1] / sqrt(2)``, not
    ``[0.6, 0.8]``.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
    clipvalue, clipnorm, global_clipnorm : float, optional
        The bounds; None skips that kind. Seed 002's configuration keys are
        accepted as keyword spellings: ``gradient_clipping_by_value`` (clipvalue),
        ``gradient_clipping_by_norm_local`` (clipnorm) and
        ``gradient_clipping_by_norm`` (global_clipnorm).

    Returns
    -------
    Tensor or None
        With ``global_clipnorm``, the global norm the last stage measured (after
        the first two stages, before its own clip); otherwise None.

    Raises
    ------
    TypeError
        An unknown keyword, or one option given under two spellings.
    """
    values = {"clipvalue": clipvalue, "clipnorm": clipnorm, "global_clipnorm": global_clipnorm}
    for key, value in keys.items():
        name = KERAS_CLIPPING_KEYS.get(key)
        if name is None:
            raise TypeError(f"apply_gradient_clipping got an unexpected keyword {key!r}; it "
                            f"accepts clipvalue, clipnorm, global_clipnorm or "
                            f"{', '.join(KERAS_CLIPPING_KEYS)}")
        if values[name] is not None:
            raise TypeError(f"apply_gradient_clipping got both {name!r} and its spelling "
                            f"{key!r}; give one")
        values[name] = value
    owner = "apply_gradient_clipping"
    for name, value in values.items():
        if value is not None:
            values[name] = _real(owner, name, value)
    params = _parameters(parameters, owner)
    if values["clipvalue"] is not None:
        clip_grad_value_(params, values["clipvalue"])
    if values["clipnorm"] is not None:
        clip_grad_norm_per_tensor_(params, values["clipnorm"])
    if values["global_clipnorm"] is not None:
        return clip_grad_norm_(params, values["global_clipnorm"])
    return None
