"""Weight initialisation, with PyTorch's names, arguments and formulas.

Every initialiser overwrites a tensor's values **in place** (the array object
inside the tensor is kept, so views of it and optimizer state keyed by the
parameter stay valid) and returns the tensor. The new values are written
straight into ``tensor.data``, so no graph is ever recorded, as if under
``no_grad``. Random draws come from the seeded generator of the tensor's array
module (:func:`neural_arch.backend.default_generator`), so
:func:`neural_arch.manual_seed` makes them reproducible on one backend; a
``generator=`` argument (a NumPy/CuPy ``Generator``) overrides it.

The "fans" of a weight follow PyTorch: for a ``(out, in, k1, k2, ...)`` weight,
``fan_in = in * k1 * k2 * ...`` and ``fan_out = out * k1 * k2 * ...``.
"""
from __future__ import annotations

import math
import numbers

from .. import backend
from ..core.tensor import Tensor

__all__ = ["calculate_gain", "calculate_fan_in_and_fan_out", "zeros_", "ones_", "constant_",
           "uniform_", "normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "orthogonal_", "trunc_normal_"]


# ==== helpers ===========================================================================

def _check_tensor(tensor, name, floating=True):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} expects a Tensor (or Parameter), got {type(tensor).__name__}")
    if floating and tensor.data.dtype.kind != "f":
        raise TypeError(f"{name} draws floating-point values; the tensor has dtype "
                        f"{tensor.data.dtype}")


def _generator(tensor, generator):
    if generator is not None:
        return generator
    return backend.default_generator(backend.get_array_module(tensor.data))


def _write(tensor, values):
    """Copy ``values`` into the tensor's own array (cast to its dtype) and return the tensor."""
    tensor.data[...] = values
    return tensor


def _check_number(value, what, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {what} must be a real number, got {value!r}")


# ==== gains and fans ====================================================================

_LINEAR_LIKE = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                "conv_transpose2d", "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity, param=None):
    """The recommended scale of the weights in front of a nonlinearity.

    The gain keeps the variance of activations roughly constant from layer to
    layer; the values are PyTorch's:

    ================= ====================================
    nonlinearity      gain
    ================= ====================================
    linear, conv*,    1
    sigmoid
    tanh              5/3
    relu              sqrt(2)
    leaky_relu        sqrt(2 / (1 + negative_slope^2))
    selu              3/4
    ================= ====================================

    Parameters
    ----------
    nonlinearity : str
        One of the names above.
    param : float, optional
        The negative slope for ``'leaky_relu'`` (default 0.01).

    Returns
    -------
    float
    """
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        else:
            _check_number(param, "the negative slope (param)", "calculate_gain")
            slope = param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected "
                     f"one of {list(_LINEAR_LIKE) + ['tanh', 'relu', 'leaky_relu', 'selu']}")


def calculate_fan_in_and_fan_out(tensor):
    """Return ``(fan_in, fan_out)`` of a weight of at least two dims.

    For a ``(out, in, *kernel)`` weight, ``fan_in = in * prod(kernel)`` and
    ``fan_out = out * prod(kernel)`` (PyTorch's ``_calculate_fan_in_and_fan_out``).

    Raises
    ------
    ValueError
        For tensors with fewer than two dims, which have no fans.
    """
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dims, got shape "
                         f"{shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


_calculate_fan_in_and_fan_out = calculate_fan_in_and_fan_out   # PyTorch's spelling


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# ==== constants ==========================================================================

def constant_(tensor, val):
    """Fill ``tensor`` with ``val`` in place and return it."""
    _check_tensor(tensor, "constant_", floating=False)
    _check_number(val, "val", "constant_")
    return _write(tensor, val)


def zeros_(tensor):
    """Fill ``tensor`` with zeros in place and return it."""
    _check_tensor(tensor, "zeros_", floating=False)
    return _write(tensor, 0)


def ones_(tensor):
    """Fill ``tensor`` with ones in place and return it."""
    _check_tensor(tensor, "ones_", floating=False)
    return _write(tensor, 1)


# ==== uniform and normal ================================================================

def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill ``tensor`` in place with draws from the uniform distribution on ``[a, b)``.

    Parameters
    ----------
    tensor : Tensor
        A floating-point tensor.
    a, b : float, default 0 and 1
        The bounds, ``a <= b``.
    generator : Generator, optional
        Draw from this generator instead of the seeded default.

    Returns
    -------
    Tensor
        ``tensor`` itself.
    """
    _check_tensor(tensor, "uniform_")
    _check_number(a, "a", "uniform_")
    _check_number(b, "b", "uniform_")
    if a > b:
        raise ValueError(f"uniform_ needs a <= b, got a={a}, b={b}")
    return _write(tensor, _generator(tensor, generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill ``tensor`` in place with draws from the normal distribution ``N(mean, std^2)``.

    Parameters
    ----------
    tensor : Tensor
        A floating-point tensor.
    mean : float, default 0
    std : float, default 1
        Must be non-negative.
    generator : Generator, optional
        Draw from this generator instead of the seeded default.

    Returns
    -------
    Tensor
        ``tensor`` itself.
    """
    _check_tensor(tensor, "normal_")
    _check_number(mean, "mean", "normal_")
    _check_number(std, "std", "normal_")
    if std < 0:
        raise ValueError(f"normal_ needs std >= 0, got {std}")
    # CuPy's Generator has standard_normal but no normal: scale and shift by hand.
    z = _generator(tensor, generator).standard_normal(tensor.shape)
    z *= std
    z += mean
    return _write(tensor, z)


def _phi(z):
    """Standard normal CDF of a Python float."""
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill ``tensor`` in place from ``N(mean, std^2)`` truncated to ``[a, b]``.

    As in PyTorch, ``a`` and ``b`` are absolute bounds, not multiples of ``std``.
    Values are drawn by rejection (out-of-range draws are drawn again); when the
    interval holds little probability, or draws are still out of range after a
    few rounds, the rest come from the inverse CDF (by bisection on ``erf``), so
    even a far-tail interval is filled quickly and exactly.

    Parameters
    ----------
    tensor : Tensor
        A floating-point tensor.
    mean, std : float, default 0 and 1
        Of the normal distribution before truncation; ``std > 0``.
    a, b : float, default -2 and 2
        The truncation bounds, ``a < b``.
    generator : Generator, optional
        Draw from this generator instead of the seeded default.

    Returns
    -------
    Tensor
        ``tensor`` itself.
    """
    _check_tensor(tensor, "trunc_normal_")
    for v, n in ((mean, "mean"), (std, "std"), (a, "a"), (b, "b")):
        _check_number(v, n, "trunc_normal_")
    if not std > 0:
        raise ValueError(f"trunc_normal_ needs std > 0, got {std}")
    if not a < b:
        raise ValueError(f"trunc_normal_ needs a < b, got a={a}, b={b}")
    xp = backend.get_array_module(tensor.data)
    gen = _generator(tensor, generator)
    lo, hi = (a - mean) / std, (b - mean) / std          # bounds in standard units
    # The CDF is accurate in the left tail, where it is small, and not in the right,
    # where it rounds to 1: an interval right of 0 is drawn mirrored and negated.
    flip = lo > 0
    if flip:
        lo, hi = -hi, -lo
    p_lo, p_hi = _phi(lo), _phi(hi)
    z = gen.standard_normal(tensor.shape)
    if p_hi - p_lo > 0.25:
        # Rejection: each round keeps a fraction p_hi - p_lo of the redraws.
        for _ in range(8):
            bad = (z < lo) | (z > hi)
            n_bad = int(bad.sum())
            if n_bad == 0:
                break
            z[bad] = gen.standard_normal(n_bad)
        bad = (z < lo) | (z > hi)
    else:
        bad = xp.ones(z.shape, dtype=bool)
    n_bad = int(bad.sum())
    if n_bad:
        z[bad] = _inverse_cdf(xp, gen.uniform(p_lo, p_hi, n_bad), lo, hi)
    z *= -std if flip else std
    z += mean
    # Rounding to the tensor's dtype must not step outside [a, b].
    return _write(tensor, xp.clip(z, a, b))


def _inverse_cdf(xp, u, lo, hi):
    """Solve ``Phi(z) = u`` for ``z`` in ``[lo, hi]`` by bisection (to float64 precision)."""
    left = xp.full(u.shape, max(lo, -40.0))
    right = xp.full(u.shape, min(hi, 40.0))
    for _ in range(64):       # halves an interval of width <= 80 below 1e-17
        mid = (left + right) * 0.5
        below = 0.5 * (1 + backend.erf(mid * (1 / math.sqrt(2)))) < u
        left = xp.where(below, mid, left)
        right = xp.where(below, right, mid)
    return (left + right) * 0.5


# ==== variance-scaling schemes ============================================================

def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot/Xavier uniform initialisation, in place.

    Draws from ``U(-bound, bound)`` with
    ``bound = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio, 2010).

    Parameters
    ----------
    tensor : Tensor
        A floating-point tensor of at least two dims.
    gain : float, default 1
        Scale, e.g. from :func:`calculate_gain`.
    generator : Generator, optional

    Returns
    -------
    Tensor
        ``tensor`` itself.
    """
    _check_tensor(tensor, "xavier_uniform_")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot/Xavier normal initialisation, in place.

    Draws from ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Parameters
    ----------
    tensor : Tensor
        A floating-point tensor of at least two dims.
    gain : float, default 1
    generator : Generator, optional

    Returns
    -------
    Tensor
        ``tensor`` itself.
    """
    _check_tensor(tensor, "xavier_normal_")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor, a, mode, nonlinearity, name):
    _check_tensor(tensor, name)
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    return gain / math.sqrt(fan) if fan else 0.0


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He/Kaiming uniform initialisation, in place.

    Draws from ``U(-bound, bound)`` with ``bound = gain * sqrt(3 / fan)``, where
    ``gain = calculate_gain(nonlinearity, a)`` (He et al., 2015).

    Parameters
    ----------
    tensor : Tensor
        A floating-point tensor of at least two dims.
    a : float, default 0
        Negative slope of the rectifier that follows (used with ``'leaky_relu'``).
        PyTorch's layers use ``a = sqrt(5)``, which gives ``bound = 1 / sqrt(fan_in)``.
    mode : {'fan_in', 'fan_out'}, default 'fan_in'
        ``'fan_in'`` keeps the forward variance, ``'fan_out'`` the backward one.
    nonlinearity : str, default 'leaky_relu'
        See :func:`calculate_gain`; ``'relu'`` or ``'leaky_relu'`` are the usual.
    generator : Generator, optional

    Returns
    -------
    Tensor
        ``tensor`` itself.
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He/Kaiming normal initialisation, in place.

    Draws from ``N(0, std^2)`` with ``std = gain / sqrt(fan)``, where
    ``gain = calculate_gain(nonlinearity, a)``.

    Parameters
    ----------
    tensor : Tensor
        A floating-point tensor of at least two dims.
    a : float, default 0
        Negative slope of the rectifier that follows (used with ``'leaky_relu'``).
    mode : {'fan_in', 'fan_out'}, default 'fan_in'
    nonlinearity : str, default 'leaky_relu'
    generator : Generator, optional

    Returns
    -------
    Tensor
        ``tensor`` itself.
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain=1.0, generator=None):
    """Fill ``tensor`` in place with a (semi-)orthogonal matrix times ``gain``.

    The tensor is viewed as a ``(rows, cols)`` matrix with ``rows = shape[0]``;
    its rows (if ``rows <= cols``) or columns (otherwise) come out orthonormal.
    The matrix is the Q factor of a Gaussian matrix, with the signs fixed by R's
    diagonal, so it is uniformly distributed (Saxe et al., 2013).

    Parameters
    ----------
    tensor : Tensor
        A floating-point tensor of at least two dims.
    gain : float, default 1
    generator : Generator, optional

    Returns
    -------
    Tensor
        ``tensor`` itself.
    """
    _check_tensor(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_ needs a tensor with at least 2 dims, got shape "
                         f"{tuple(tensor.shape)}")
    if tensor.size == 0:
        return tensor
    xp = backend.get_array_module(tensor.data)
    rows = tensor.shape[0]
    cols = tensor.size // rows
    m = _generator(tensor, generator).standard_normal((rows, cols))
    if rows < cols:
        m = m.T
    q, r = xp.linalg.qr(m)
    q *= xp.sign(xp.diagonal(r))          # make the factorisation unique
    if rows < cols:
        q = q.T
    q *= gain
    return _write(tensor, q.reshape(tensor.shape))
