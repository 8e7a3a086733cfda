"""Reductions over axes: sums, means, spreads, extrema, products, norms, scans.

Every reduction takes ``axis`` (None for all axes, an int, or a tuple of ints;
negative values count from the end; an empty tuple reduces nothing, as in NumPy;
a 0-d tensor accepts axis 0 or -1, as in PyTorch) and ``keepdims`` (keep the reduced
axes with length one), with NumPy's names and PyTorch's semantics. ``forward`` reduces the raw
array in one library call; ``backward`` spreads the gradient back over the reduced
axes with differentiable ops, so second derivatives come from the same formula.
"""
from __future__ import annotations

import math as _pymath
import operator

from ..backend import get_array_module
from ..core.function import Function
from ..core.tensor import Tensor
from .math import abs as _abs
from .math import exp, pow, where
from .shape import broadcast_to, reshape, transpose

__all__ = ["sum", "mean", "var", "std", "max", "min", "prod", "logsumexp", "norm",
           "cumsum", "argmax", "argmin"]

_inf = float("inf")


# ==== helpers =========================================================================

def _ndim(x, name):
    nd = getattr(x, "ndim", None)
    if nd is None:
        raise TypeError(f"{name} expects a Tensor, got {type(x).__name__}")
    return nd


def _axes(axis, ndim, name):
    """``axis`` as a tuple of non-negative ints, in the order given (None -> all axes).

    A 0-d tensor accepts axis 0 and -1 (as PyTorch does) and reduces over nothing.
    """
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        items = axis
    else:
        items = (axis,)
    bound = ndim if ndim else 1
    out = []
    for a in items:
        if isinstance(a, bool):
            raise TypeError(f"{name}: axis must be an int, a tuple of ints or None, got {a!r}")
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(f"{name}: axis must be an int, a tuple of ints or None, "
                            f"got {type(a).__name__} ({a!r})") from None
        if not -bound <= a < bound:
            raise ValueError(f"{name}: axis {a} is out of range for a tensor with {ndim} "
                             f"dims (expected an axis in [{-bound}, {bound - 1}])")
        a %= bound
        if a in out:
            raise ValueError(f"{name}: axis {a} appears more than once in axis={axis!r}")
        out.append(a)
    return tuple(out) if ndim else ()


def _np_axis(axes, ndim):
    """The ``axis=`` argument for the array library: None for a full reduction."""
    return None if len(axes) == ndim else axes


def _kept_shape(shape, axes):
    """``shape`` with every reduced axis set to one (the ``keepdims=True`` shape)."""
    s = list(shape)
    for a in axes:
        s[a] = 1
    return tuple(s)


def _count(shape, axes):
    """How many elements each reduction combines."""
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _expand(gy, shape, axes, keepdims):
    """Reshape a reduced gradient (or output) so that it broadcasts against the input."""
    if keepdims:
        return gy
    return reshape(gy, _kept_shape(shape, axes))


def _safe_nonzero(y):
    """``y`` with its zeros replaced by one (a differentiable divisor for backward)."""
    zero = y.data == 0
    if zero.any():
        return where(zero, 1.0, y)
    return y


# ==== sum, mean, var, std =============================================================

class Sum(Function):
    # Each input element receives the gradient of exactly one output element.
    grad_bounded = True

    def __init__(self, axes, keepdims):
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, x):
        return x.sum(axis=_np_axis(self.axes, x.ndim), keepdims=self.keepdims)

    def backward(self, gy):
        shape = self.inputs[0].shape
        return broadcast_to(_expand(gy, shape, self.axes, self.keepdims), shape)


class Mean(Function):
    grad_bounded = True

    def __init__(self, axes, keepdims):
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, x):
        return x.mean(axis=_np_axis(self.axes, x.ndim), keepdims=self.keepdims)

    def backward(self, gy):
        shape = self.inputs[0].shape
        n = _count(shape, self.axes)
        g = _expand(gy, shape, self.axes, self.keepdims) * (1.0 / n if n else _inf)
        return broadcast_to(g, shape)


class Var(Function):
    def __init__(self, axes, correction, keepdims):
        self.axes = axes
        self.correction = correction
        self.keepdims = keepdims

    def forward(self, x):
        return get_array_module(x).var(x, axis=_np_axis(self.axes, x.ndim),
                                       ddof=self.correction, keepdims=self.keepdims)

    def backward(self, gy):
        # d var / dx_i = 2 (x_i - mean) / (N - correction)
        x = self.inputs[0]
        d = _centered(x, self.axes)
        scale = _inv_dof(x.shape, self.axes, self.correction)
        return _expand(gy, x.shape, self.axes, self.keepdims) * d * (2 * scale)


class Std(Function):
    def __init__(self, axes, correction, keepdims):
        self.axes = axes
        self.correction = correction
        self.keepdims = keepdims

    def forward(self, x):
        return get_array_module(x).std(x, axis=_np_axis(self.axes, x.ndim),
                                       ddof=self.correction, keepdims=self.keepdims)

    def backward(self, gy):
        # d std / dx_i = (x_i - mean) / ((N - correction) std); taken as 0 where std == 0
        # (a constant slice), as PyTorch does, instead of 0/0.
        x = self.inputs[0]
        d = _centered(x, self.axes)
        scale = _inv_dof(x.shape, self.axes, self.correction)
        g = gy / _safe_nonzero(self.output())
        return _expand(g, x.shape, self.axes, self.keepdims) * d * scale


def _centered(x, axes):
    """``x - mean(x)`` over ``axes``, recorded so that second derivatives see the mean."""
    return x - Mean(axes, True)(x)


def _inv_dof(shape, axes, correction):
    """``1 / max(N - correction, 0)`` (inf when no degrees of freedom are left)."""
    dof = _count(shape, axes) - correction
    return 1.0 / dof if dof > 0 else _inf


def _check_correction(correction, name):
    if isinstance(correction, bool) or not isinstance(correction, (int, float)):
        raise TypeError(f"{name}: correction must be a number (1 for the unbiased "
                        f"estimate, 0 for the population value), got {correction!r}")


def sum(x, axis=None, keepdims=False):
    """Sum of the elements over ``axis``.

    Parameters
    ----------
    x : Tensor
        Input.
    axis : int or tuple of int, optional
        Axes to reduce (negative values count from the end); all axes when None.
    keepdims : bool, default False
        Keep the reduced axes, with length one.

    Returns
    -------
    Tensor
        The sums; the gradient is the upstream gradient copied to every summed element.
    """
    return Sum(_axes(axis, _ndim(x, "sum"), "sum"), keepdims)(x)


def mean(x, axis=None, keepdims=False):
    """Arithmetic mean over ``axis`` (all axes when None).

    Parameters
    ----------
    x : Tensor
        Input.
    axis : int or tuple of int, optional
        Axes to reduce; all axes when None.
    keepdims : bool, default False
        Keep the reduced axes, with length one.

    Returns
    -------
    Tensor
        The means; each element receives ``1/N`` of the upstream gradient.
    """
    return Mean(_axes(axis, _ndim(x, "mean"), "mean"), keepdims)(x)


def var(x, axis=None, correction=1, keepdims=False):
    """Variance over ``axis``: ``sum((x - mean)^2) / (N - correction)``.

    Parameters
    ----------
    x : Tensor
        Input.
    axis : int or tuple of int, optional
        Axes to reduce; all axes when None.
    correction : int or float, default 1
        Subtracted from the element count ``N`` in the divisor: 1 gives the unbiased
        sample variance (PyTorch's default), 0 the population variance (NumPy's
        default ``ddof=0``). When ``N - correction <= 0`` the result is inf or NaN,
        as in PyTorch.
    keepdims : bool, default False
        Keep the reduced axes, with length one.

    Returns
    -------
    Tensor
        The variances.
    """
    _check_correction(correction, "var")
    return Var(_axes(axis, _ndim(x, "var"), "var"), correction, keepdims)(x)


def std(x, axis=None, correction=1, keepdims=False):
    """Standard deviation over ``axis``: ``sqrt(var(x, axis, correction))``.

    Parameters
    ----------
    x : Tensor
        Input.
    axis : int or tuple of int, optional
        Axes to reduce; all axes when None.
    correction : int or float, default 1
        Subtracted from the element count in the divisor (see :func:`var`).
    keepdims : bool, default False
        Keep the reduced axes, with length one.

    Returns
    -------
    Tensor
        The standard deviations.

    Notes
    -----
    Where the standard deviation is 0 (all elements of a slice equal) the square
    root has no derivative; the gradient is taken as 0 there, as in PyTorch.
    """
    _check_correction(correction, "std")
    return Std(_axes(axis, _ndim(x, "std"), "std"), correction, keepdims)(x)


# ==== max, min ========================================================================

class _Extreme(Function):
    # The gradient is shared among ties, so no element receives more than gy.
    grad_bounded = True

    def __init__(self, axes, keepdims):
        self.axes = axes
        self.keepdims = keepdims

    def backward(self, gy):
        x = self.inputs[0]
        xd = x.data
        kept = _kept_shape(xd.shape, self.axes)
        hit = xd == self.output().data.reshape(kept)
        # Every element equal to the extreme gets an equal share (like torch.amax).
        share = hit / hit.sum(axis=self.axes, keepdims=True)
        return _expand(gy, xd.shape, self.axes, self.keepdims) * share.astype(xd.dtype)


class Max(_Extreme):
    def forward(self, x):
        return x.max(axis=_np_axis(self.axes, x.ndim), keepdims=self.keepdims)


class Min(_Extreme):
    def forward(self, x):
        return x.min(axis=_np_axis(self.axes, x.ndim), keepdims=self.keepdims)


def max(x, axis=None, keepdims=False):
    """Largest element over ``axis`` (all axes when None).

    Like ``torch.amax``: only the values are returned (use :func:`argmax` for the
    positions; :func:`maximum` is the elementwise maximum of two tensors).

    Parameters
    ----------
    x : Tensor
        Input (not empty along the reduced axes).
    axis : int or tuple of int, optional
        Axes to reduce; all axes when None.
    keepdims : bool, default False
        Keep the reduced axes, with length one.

    Returns
    -------
    Tensor
        The maxima.

    Notes
    -----
    When several elements tie for the maximum, the gradient is split evenly among
    them (each of ``k`` tied elements gets ``1/k`` of it), as ``torch.amax`` does.
    """
    return Max(_axes(axis, _ndim(x, "max"), "max"), keepdims)(x)


def min(x, axis=None, keepdims=False):
    """Smallest element over ``axis`` (all axes when None).

    Like ``torch.amin``: only the values are returned; ties split the gradient
    evenly among the tied elements (see :func:`max`).

    Parameters
    ----------
    x : Tensor
        Input (not empty along the reduced axes).
    axis : int or tuple of int, optional
        Axes to reduce; all axes when None.
    keepdims : bool, default False
        Keep the reduced axes, with length one.

    Returns
    -------
    Tensor
        The minima.
    """
    return Min(_axes(axis, _ndim(x, "min"), "min"), keepdims)(x)


# ==== prod ============================================================================

class Prod(Function):
    def __init__(self, axes, keepdims):
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, x):
        return x.prod(axis=_np_axis(self.axes, x.ndim), keepdims=self.keepdims)

    def backward(self, gy):
        x = self.inputs[0]
        g = _expand(gy, x.shape, self.axes, self.keepdims)
        if not (x.data == 0).any():
            # d prod / dx_i = prod / x_i, exact (to every order) away from zeros.
            return g * _expand(self.output(), x.shape, self.axes, self.keepdims) / x
        # With zeros, prod / x_i is 0/0: use the product of the other elements.
        return g * ProdOthers(self.axes)(x)


class ProdOthers(Function):
    """For every element, the product of the other elements of its slice.

    This is the gradient of :func:`prod`, computed without dividing by zero: per slice,
    with ``Q`` the product of the non-zero elements and ``z`` the number of zeros,

    * ``z == 0``: ``Q / x_i``;
    * ``z == 1``: ``Q`` at the zero, 0 elsewhere;
    * ``z >= 2``: 0 everywhere.

    Its own derivative (the second derivative of prod) is exact too; the third
    derivative at zeros is not (it treats the zero pattern as constant).
    """

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        xp = get_array_module(x)
        zero = x == 0
        safe = xp.where(zero, 1, x)
        q = safe.prod(axis=self.axes, keepdims=True)
        nz = zero.sum(axis=self.axes, keepdims=True)
        return xp.where(nz == 0, q / safe, xp.where(zero & (nz == 1), q, 0))

    def backward(self, h):
        # d/dx_k sum_i h_i prod_{j != i} x_j = sum_{i != k} h_i prod_{j != i, k} x_j,
        # again split by the number of zeros z in the slice (Q, r_i = h_i / x_i over
        # the non-zero elements; the zeros are at a and b):
        #   z == 0: Q / x_k * (sum_i r_i - r_k)
        #   z == 1: h_a Q / x_k off the zero, Q sum_i r_i at the zero
        #   z == 2: Q h_b at a, Q h_a at b, 0 elsewhere
        x = self.inputs[0]
        xd = x.data
        dt = xd.dtype
        zero = xd == 0
        nz = zero.sum(axis=self.axes, keepdims=True)
        zf = zero.astype(dt)
        keep = 1 - zf
        safe = where(zero, 1.0, x)
        q_over_x = Prod(self.axes, True)(safe) / safe
        r = h / safe
        t_nonzero = Sum(self.axes, True)(r * keep)     # sum of h_i / x_i off the zeros
        t_zero = Sum(self.axes, True)(h * zf)          # sum of h_i at the zeros
        inner = None
        for k, term in ((0, lambda: t_nonzero - r),
                        (1, lambda: keep * t_zero + zf * t_nonzero),
                        (2, lambda: zf * (t_zero - h))):
            c = nz == k
            if c.any():
                part = c.astype(dt) * term()
                inner = part if inner is None else inner + part
        if inner is None:               # three or more zeros in every slice
            return h * 0.0
        return q_over_x * inner


def prod(x, axis=None, keepdims=False):
    """Product of the elements over ``axis`` (all axes when None).

    Parameters
    ----------
    x : Tensor
        Input.
    axis : int or tuple of int, optional
        Axes to reduce; all axes when None.
    keepdims : bool, default False
        Keep the reduced axes, with length one.

    Returns
    -------
    Tensor
        The products.

    Notes
    -----
    The gradient of element ``i`` is the product of the other elements of its
    slice. It is computed as ``prod / x_i`` when the input has no zeros, and
    without any division by zero otherwise: with one zero in a slice only the
    zero receives a gradient, with two or more zeros none does. First and second
    derivatives are exact in both cases.
    """
    return Prod(_axes(axis, _ndim(x, "prod"), "prod"), keepdims)(x)


# ==== logsumexp =======================================================================

class LogSumExp(Function):
    # The gradient is gy times a softmax, whose entries lie in [0, 1].
    grad_bounded = True

    def __init__(self, axes, keepdims):
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, x):
        xp = get_array_module(x)
        # Shift by the maximum so that exp never overflows: log sum e^x = m + log sum e^(x-m).
        m = x.max(axis=self.axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        y = xp.log(xp.exp(x - m).sum(axis=self.axes, keepdims=True))
        y += m
        if not self.keepdims:
            y = y.reshape(tuple(n for i, n in enumerate(x.shape) if i not in self.axes))
        return y

    def backward(self, gy):
        # d/dx_i log sum_j e^{x_j} = e^{x_i - y}, a softmax that stays finite for large x.
        x = self.inputs[0]
        y = _expand(self.output(), x.shape, self.axes, self.keepdims)
        return _expand(gy, x.shape, self.axes, self.keepdims) * exp(x - y)


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` over ``axis``, computed without overflow.

    Parameters
    ----------
    x : Tensor
        Input.
    axis : int or tuple of int, optional
        Axes to reduce; all axes when None.
    keepdims : bool, default False
        Keep the reduced axes, with length one.

    Returns
    -------
    Tensor
        The log-sum-exp values.

    Notes
    -----
    The maximum ``m`` is subtracted before exponentiating
    (``m + log(sum(exp(x - m)))``), so inputs such as 1e4 give finite results; the
    gradient is the softmax ``exp(x - y)``.
    """
    return LogSumExp(_axes(axis, _ndim(x, "logsumexp"), "logsumexp"), keepdims)(x)


# ==== norm ============================================================================

class VectorNorm(Function):
    """``(sum |x|^p)^(1/p)`` over ``axes`` for a finite ``p > 0``."""

    def __init__(self, p, axes, keepdims):
        self.p = p
        self.axes = axes
        self.keepdims = keepdims
        # |d/dx_i| = (|x_i| / ||x||)^(p-1) <= 1 for p >= 1.
        self.grad_bounded = p >= 1

    def forward(self, x):
        xp = get_array_module(x)
        axis = _np_axis(self.axes, x.ndim)
        p = self.p
        if p == 2:
            return xp.sqrt((x * x).sum(axis=axis, keepdims=self.keepdims))
        a = xp.abs(x)
        if p == 1:
            return a.sum(axis=axis, keepdims=self.keepdims)
        return (a ** p).sum(axis=axis, keepdims=self.keepdims) ** (1.0 / p)

    def backward(self, gy):
        # d||x||_p / dx_i = sign(x_i) |x_i|^(p-1) / ||x||_p^(p-1). At x = 0 the norm has
        # no derivative; dividing by 1 instead of 0 there gives the gradient 0 (PyTorch's
        # choice) rather than NaN.
        x = self.inputs[0]
        p = self.p
        g = _expand(gy, x.shape, self.axes, self.keepdims)
        if p == 1:
            return g * get_array_module(x.data).sign(x.data)
        y = _expand(_safe_nonzero(self.output()), x.shape, self.axes, self.keepdims)
        if p == 2:
            return g * x / y
        sign = get_array_module(x.data).sign(x.data)
        return g * sign * pow(_abs(x), p - 1) / pow(y, p - 1)


class SingularNorm(Function):
    """A norm of the singular values of the matrices in the last two axes.

    ``kind`` is ``'max'`` (ord=2), ``'min'`` (ord=-2) or ``'sum'`` (nuclear norm).
    """

    def __init__(self, kind):
        self.kind = kind

    def forward(self, a):
        s = get_array_module(a).linalg.svd(a, compute_uv=False)
        if self.kind == "max":
            return s[..., 0]
        if self.kind == "min":
            return s[..., -1]
        return s.sum(axis=-1)

    def backward(self, gy):
        a = self.inputs[0]
        return reshape(gy, gy.shape + (1, 1)) * SingularGrad(self.kind)(a)


class SingularGrad(Function):
    """The gradient of a :class:`SingularNorm`: ``u_k v_k^T`` (or ``U V^T`` for 'sum')."""

    def __init__(self, kind):
        self.kind = kind

    def forward(self, a):
        xp = get_array_module(a)
        u, _, vh = xp.linalg.svd(a, full_matrices=False)
        if self.kind == "sum":
            return u @ vh
        k = 0 if self.kind == "max" else -1
        return u[..., :, k:k + 1 or None] @ vh[..., k:k + 1 or None, :]

    def backward(self, gg):
        raise NotImplementedError(
            "second derivatives of the matrix norms ord=2, ord=-2 and ord='nuc' are not "
            "implemented (they need the derivative of the SVD); use ord='fro', 1 or inf, "
            "or avoid create_graph=True through this norm")


_VECTOR_ORDS = "a number p > 0, 0, inf or -inf"
_MATRIX_ORDS = "'fro', 'nuc', 1, -1, 2, -2, inf or -inf"


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector or matrix norm, with the conventions of ``torch.linalg.norm``.

    Parameters
    ----------
    x : Tensor
        Input.
    ord : {None, number, inf, -inf, 'fro', 'nuc'}, optional
        Which norm. With one axis (a vector norm): ``p > 0`` gives
        ``(sum |x|^p)^(1/p)`` (2 by default), ``inf`` / ``-inf`` the largest /
        smallest ``|x|``, ``0`` the number of non-zero elements (no gradient). With
        two axes (a matrix norm, rows along the first axis, columns along the
        second): ``'fro'`` (default), ``'nuc'`` (sum of singular values), ``1`` /
        ``-1`` (largest / smallest column sum of ``|x|``), ``inf`` / ``-inf`` (largest
        / smallest row sum), ``2`` / ``-2`` (largest / smallest singular value).
    axis : int or tuple of int, optional
        One axis (vector norm) or two (matrix norm). When None: with ``ord=None`` the
        2-norm of all elements; otherwise ``x`` must be 1-D or 2-D and gives a vector
        or a matrix norm. With ``ord=None`` any number of axes gives the 2-norm over
        them.
    keepdims : bool, default False
        Keep the reduced axes, with length one.

    Returns
    -------
    Tensor
        The norms.

    Raises
    ------
    ValueError
        For an ``ord`` that does not fit the number of axes, or ``axis=None`` with an
        ``ord`` on a tensor that is not 1-D or 2-D.

    Notes
    -----
    At ``x = 0`` the 2-norm (and any p-norm) has no derivative; its gradient is
    taken as 0 there, as in PyTorch, so training never sees NaN from it. Ties in
    the ``inf`` / ``-inf`` / ``1`` / ``-1`` norms share the gradient evenly (see
    :func:`max`). The singular-value norms (``2``, ``-2``, ``'nuc'``) have first
    derivatives only.
    """
    nd = _ndim(x, "norm")
    if axis is None:
        if ord is None:
            return VectorNorm(2, tuple(range(nd)), keepdims)(x)
        if nd not in (1, 2):
            raise ValueError(f"norm: ord={ord!r} with axis=None needs a 1-D or 2-D tensor, "
                             f"got {nd} dims; pass axis= (one axis for a vector norm, two "
                             "for a matrix norm)")
        axes = tuple(range(nd))
    else:
        axes = _axes(axis, nd, "norm")
    if ord is None:
        return VectorNorm(2, axes, keepdims)(x)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes, keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError(f"norm: ord={ord!r} needs one axis (vector norm) or two (matrix "
                     f"norm), got axis={axis!r}")


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _vector_norm(x, ord, axes, keepdims):
    if not _is_number(ord) or _pymath.isnan(ord) or (ord < 0 and ord != -_inf):
        raise ValueError(f"norm: invalid ord={ord!r} for a vector norm; expected "
                         f"{_VECTOR_ORDS}")
    if ord == _inf:
        return max(_abs(x), axes, keepdims)
    if ord == -_inf:
        return min(_abs(x), axes, keepdims)
    if ord == 0:
        # The count of non-zero elements is piecewise constant: no gradient.
        d = x.data
        return Tensor._make((d != 0).sum(axis=axes, keepdims=keepdims).astype(d.dtype))
    return VectorNorm(ord, axes, keepdims)(x)


def _matrix_norm(x, ord, axes, keepdims):
    row, col = axes
    shape = x.shape
    out_shape = tuple(n for i, n in enumerate(shape) if i not in axes)
    if ord == "fro":
        return VectorNorm(2, axes, keepdims)(x)
    if ord in ("nuc", 2, -2):
        kind = {"nuc": "sum", 2: "max", -2: "min"}[ord]
        rest = [i for i in range(len(shape)) if i not in axes]
        y = SingularNorm(kind)(transpose(x, tuple(rest) + (row, col)))
    elif ord in (1, -1, _inf, -_inf):
        # 1: largest column sum (sum over rows first); inf: largest row sum.
        inner, outer = (row, col) if ord in (1, -1) else (col, row)
        sums = sum(_abs(x), inner, keepdims=True)
        y = (max if ord > 0 else min)(sums, outer, keepdims=True)
    else:
        raise ValueError(f"norm: invalid ord={ord!r} for a matrix norm; expected "
                         f"{_MATRIX_ORDS}")
    return reshape(y, _kept_shape(shape, axes) if keepdims else out_shape)


# ==== cumsum ==========================================================================

class Cumsum(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        if self.axis is None:
            return xp.cumsum(x)
        if x.ndim == 0:
            return x.copy()
        return xp.cumsum(x, axis=self.axis)

    def backward(self, gy):
        # y_j = sum_{i <= j} x_i, so dL/dx_i = sum_{j >= i} gy_j: a cumsum from the end.
        x = self.inputs[0]
        if self.axis is None:
            return reshape(ReverseCumsum(0)(gy), x.shape)
        if x.ndim == 0:
            return gy
        return ReverseCumsum(self.axis)(gy)


class ReverseCumsum(Function):
    """Cumulative sum from the end of ``axis``: ``y_i = sum_{j >= i} x_j``."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        a = self.axis
        return xp.flip(xp.cumsum(xp.flip(x, axis=a), axis=a), axis=a)

    def backward(self, gy):
        return Cumsum(self.axis)(gy)


def cumsum(x, axis=None):
    """Cumulative sum along ``axis``.

    Parameters
    ----------
    x : Tensor
        Input.
    axis : int, optional
        The axis to accumulate along. None (the default) flattens ``x`` first and
        returns a 1-D result, as ``numpy.cumsum`` does (``torch.cumsum`` needs a dim).

    Returns
    -------
    Tensor
        Running sums, the shape of ``x`` (1-D when ``axis`` is None).
    """
    nd = _ndim(x, "cumsum")
    if axis is not None:
        if isinstance(axis, (tuple, list)):
            raise TypeError(f"cumsum: axis must be a single int or None, got {axis!r}")
        axis = _axes(axis, nd, "cumsum")
        axis = axis[0] if axis else 0
    return Cumsum(axis)(x)


# ==== argmax, argmin ==================================================================

def _arg_extreme(x, axis, keepdims, name):
    nd = _ndim(x, name)
    d = x.data if isinstance(x, Tensor) else x
    if axis is not None:
        if isinstance(axis, (tuple, list)):
            raise TypeError(f"{name}: axis must be a single int or None, got {axis!r}")
        axes = _axes(axis, nd, name)
        if not axes:                   # a 0-d tensor: its only element is at index 0
            return Tensor._make(get_array_module(d).zeros((), dtype="int64"))
        axis = axes[0]
    if d.size == 0:
        raise ValueError(f"{name} of an empty tensor (shape {tuple(d.shape)}) is undefined")
    f = d.argmax if name == "argmax" else d.argmin
    # A full reduction gives a NumPy scalar; a Tensor always holds an array.
    idx = get_array_module(d).asarray(f(axis=axis, keepdims=keepdims))
    return Tensor._make(idx.astype("int64", copy=False))


def argmax(x, axis=None, keepdims=False):
    """Index of the largest element along ``axis`` (of the flattened tensor when None).

    Parameters
    ----------
    x : Tensor
        Input.
    axis : int, optional
        The axis to search; None searches the flattened tensor.
    keepdims : bool, default False
        Keep the searched axis (all axes when ``axis`` is None) with length one.

    Returns
    -------
    Tensor
        int64 indices; ties give the first occurrence. Indices carry no gradient.
    """
    return _arg_extreme(x, axis, keepdims, "argmax")


def argmin(x, axis=None, keepdims=False):
    """Index of the smallest element along ``axis`` (of the flattened tensor when None).

    Parameters
    ----------
    x : Tensor
        Input.
    axis : int, optional
        The axis to search; None searches the flattened tensor.
    keepdims : bool, default False
        Keep the searched axis (all axes when ``axis`` is None) with length one.

    Returns
    -------
    Tensor
        int64 indices; ties give the first occurrence. Indices carry no gradient.
    """
    return _arg_extreme(x, axis, keepdims, "argmin")
