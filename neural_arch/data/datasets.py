"""Built-in datasets: the 8x8 handwritten digits (shipped) and seeded toy generators.

Nothing here touches the network. Every function returns NumPy arrays ``(X, y)``:
inputs in the default float dtype (unless ``dtype`` is given) and integer labels
as int64 (regression targets are floats). Wrap them in
:class:`~neural_arch.data.TensorDataset` to feed a :class:`~neural_arch.data.DataLoader`.

The generators take ``seed`` (an int, or a ``numpy.random.Generator``); without
one they draw from neural_arch's global generator, which
:func:`neural_arch.manual_seed` seeds. Same seed, same data.
"""
from __future__ import annotations

import functools
import numbers
from importlib import resources

import numpy as np

from .. import backend
from ..core.dtypes import get_default_dtype, to_dtype
from .dataset import TensorDataset

__all__ = ["load_digits", "make_spirals", "make_moons", "make_circles", "make_xor",
           "make_regression"]

DIGITS_FILE = "digits.npz"


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    ref = resources.files(__package__).joinpath(DIGITS_FILE)
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _float_dtype(dtype):
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"dtype must be a floating dtype, got {d}")
    return d


def load_digits(*, flatten=True, normalize=True, dtype=None, as_dataset=False):
    """The UCI optical-recognition handwritten digits: 1,797 images of 8x8 pixels.

    Each pixel counts the "on" pixels of a 4x4 block of a 32x32 bitmap, so it lies
    in 0..16; the labels are the digits 0-9 (about 180 images each). The data ship
    inside the package (``neural_arch/data/digits.npz``); nothing is downloaded.

    Parameters
    ----------
    flatten : bool, default True
        Return images as rows of 64 features, shape ``(1797, 64)``; with False, as
        one-channel images of shape ``(1797, 1, 8, 8)`` (for convolutions).
    normalize : bool, default True
        Divide the pixels by 16, so they lie in ``[0, 1]``.
    dtype : dtype, optional
        Float dtype of the images; the default float dtype when omitted.
    as_dataset : bool, default False
        Return a :class:`TensorDataset` instead of the arrays.

    Returns
    -------
    X : ndarray
        Images, in the original order of the data set.
    y : ndarray of int64, shape (1797,)
        Labels.

    Notes
    -----
    Source: the test part of "Optical Recognition of Handwritten Digits" from the
    UCI Machine Learning Repository (E. Alpaydin and C. Kaynak, 1998; licensed
    CC BY 4.0), in the copy bundled with scikit-learn, converted once to a
    compressed ``.npz`` of uint8 images and labels. Reference: E. Alpaydin,
    C. Kaynak, "Cascading Classifiers", Kybernetika 34(4), 1998.

    Examples
    --------
    >>> X, y = load_digits()
    >>> X.shape, y.shape, float(X.max())
    ((1797, 64), (1797,), 1.0)
    """
    images, labels = _digits_arrays()
    X = images.astype(_float_dtype(dtype))
    if normalize:
        X /= 16
    X = X.reshape(len(X), 64) if flatten else X.reshape(len(X), 1, 8, 8)
    y = labels.astype(np.int64)
    return TensorDataset(X, y) if as_dataset else (X, y)


# --- generators ------------------------------------------------------------------------

def _rng(seed):
    if seed is None:
        return backend.default_generator(np)
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or a numpy.random.Generator, "
                         f"got {seed!r}")
    return np.random.default_rng(int(seed))


def _check_count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_noise(noise):
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not noise >= 0:
        raise ValueError(f"noise must be a non-negative number, got {noise!r}")
    return float(noise)


def _split_counts(n, k):
    """``n`` items over ``k`` classes, as evenly as possible (first classes get the extra)."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _finish(X, y, rng, noise, shuffle, dtype):
    if noise:
        X = X + rng.normal(0.0, noise, size=X.shape)
    if shuffle:
        perm = rng.permutation(len(X))
        X, y = X[perm], y[perm]
    return X.astype(_float_dtype(dtype)), y.astype(np.int64)


def make_spirals(n_samples=300, n_classes=3, noise=0.2, *, turns=1.0, shuffle=True,
                 seed=None, dtype=None):
    """Interleaved spiral arms in the plane, one arm per class.

    Arm ``k`` starts at the origin and winds outwards: for radius ``r`` running from
    0 to 1, the angle is ``2*pi*k/n_classes + 2*pi*turns*r``. The noise is added
    to the angle (Gaussian, in radians), so the arms blur sideways while each
    point keeps its distance from the centre.

    Parameters
    ----------
    n_samples : int, default 300
        Total number of points, spread evenly over the classes.
    n_classes : int, default 3
        Number of arms (and labels).
    noise : float, default 0.2
        Standard deviation of the angular noise, in radians.
    turns : float, default 1.0
        How many full turns each arm makes.
    shuffle : bool, default True
        Shuffle the points; otherwise they come class by class.
    seed : int or numpy.random.Generator, optional
        Randomness; the global generator when omitted.
    dtype : dtype, optional
        Float dtype of ``X``.

    Returns
    -------
    X : ndarray, shape (n_samples, 2)
    y : ndarray of int64, shape (n_samples,)
    """
    n = _check_count("n_samples", n_samples)
    k = _check_count("n_classes", n_classes, 2)
    noise = _check_noise(noise)
    rng = _rng(seed)
    xs, ys = [], []
    for c, m in enumerate(_split_counts(n, k)):
        r = np.linspace(0.0, 1.0, m)
        theta = 2 * np.pi * c / k + 2 * np.pi * float(turns) * r
        if noise:
            theta = theta + rng.normal(0.0, noise, size=m)
        xs.append(np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1))
        ys.append(np.full(m, c))
    return _finish(np.concatenate(xs), np.concatenate(ys), rng, 0.0, shuffle, dtype)


def make_moons(n_samples=200, noise=0.1, *, shuffle=True, seed=None, dtype=None):
    """Two interleaving half circles (label 0 the upper one, label 1 the lower one).

    Parameters
    ----------
    n_samples : int, default 200
        Total number of points (the upper moon gets the extra one when odd).
    noise : float, default 0.1
        Standard deviation of Gaussian noise added to each coordinate.
    shuffle, seed, dtype
        As in :func:`make_spirals`.

    Returns
    -------
    X : ndarray, shape (n_samples, 2)
    y : ndarray of int64, shape (n_samples,)
    """
    n = _check_count("n_samples", n_samples, 2)
    noise = _check_noise(noise)
    rng = _rng(seed)
    n0, n1 = _split_counts(n, 2)
    t0 = np.linspace(0.0, np.pi, n0)
    t1 = np.linspace(0.0, np.pi, n1)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    y = np.concatenate([np.zeros(n0), np.ones(n1)])
    return _finish(np.concatenate([upper, lower]), y, rng, noise, shuffle, dtype)


def make_circles(n_samples=200, noise=0.05, *, factor=0.5, shuffle=True, seed=None,
                 dtype=None):
    """A small circle (label 1) inside a large one (label 0).

    Parameters
    ----------
    n_samples : int, default 200
        Total number of points (the outer circle gets the extra one when odd).
    noise : float, default 0.05
        Standard deviation of Gaussian noise added to each coordinate.
    factor : float, default 0.5
        Radius of the inner circle (the outer has radius 1); ``0 < factor < 1``.
    shuffle, seed, dtype
        As in :func:`make_spirals`.

    Returns
    -------
    X : ndarray, shape (n_samples, 2)
    y : ndarray of int64, shape (n_samples,)
    """
    n = _check_count("n_samples", n_samples, 2)
    noise = _check_noise(noise)
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) \
            or not 0.0 < factor < 1.0:
        raise ValueError(f"factor must lie strictly between 0 and 1, got {factor!r}")
    rng = _rng(seed)
    n0, n1 = _split_counts(n, 2)
    t0 = np.linspace(0.0, 2 * np.pi, n0, endpoint=False)
    t1 = np.linspace(0.0, 2 * np.pi, n1, endpoint=False)
    outer = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    inner = float(factor) * np.stack([np.cos(t1), np.sin(t1)], axis=1)
    y = np.concatenate([np.zeros(n0), np.ones(n1)])
    return _finish(np.concatenate([outer, inner]), y, rng, noise, shuffle, dtype)


def make_xor(n_samples=200, noise=0.1, *, shuffle=True, seed=None, dtype=None):
    """The XOR problem: four clusters at the corners ``(+-1, +-1)``.

    A point's label is 1 when its cluster's coordinates have different signs
    (``(1, -1)`` and ``(-1, 1)``) and 0 otherwise, so no straight line separates
    the classes.

    Parameters
    ----------
    n_samples : int, default 200
        Total number of points, spread evenly over the four corners.
    noise : float, default 0.1
        Standard deviation of Gaussian noise added to each coordinate.
    shuffle, seed, dtype
        As in :func:`make_spirals`.

    Returns
    -------
    X : ndarray, shape (n_samples, 2)
    y : ndarray of int64, shape (n_samples,)
    """
    n = _check_count("n_samples", n_samples, 4)
    noise = _check_noise(noise)
    rng = _rng(seed)
    corners = np.array([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    which = np.repeat(np.arange(4), _split_counts(n, 4))
    X = corners[which]
    y = (which >= 2).astype(np.int64)
    return _finish(X, y, rng, noise, shuffle, dtype)


def make_regression(n_samples=200, n_features=1, noise=0.1, *, n_targets=1, bias=0.0,
                    return_coef=False, seed=None, dtype=None):
    """A noisy linear regression problem: ``y = X @ coef + bias + noise * N(0, 1)``.

    Inputs are standard normal; the true coefficients are drawn uniformly from
    ``[-2, 2]``.

    Parameters
    ----------
    n_samples : int, default 200
        Number of examples.
    n_features : int, default 1
        Number of input features.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise on the targets.
    n_targets : int, default 1
        Number of outputs; ``y`` has shape ``(n_samples, n_targets)``, matching a
        ``Linear(n_features, n_targets)`` model's output.
    bias : float, default 0.0
        Constant added to every target.
    return_coef : bool, default False
        Also return the true coefficients, shape ``(n_features, n_targets)``.
    seed, dtype
        As in :func:`make_spirals`.

    Returns
    -------
    X : ndarray, shape (n_samples, n_features)
    y : ndarray, shape (n_samples, n_targets)
    coef : ndarray, shape (n_features, n_targets)
        Only with ``return_coef=True``.
    """
    n = _check_count("n_samples", n_samples)
    f = _check_count("n_features", n_features)
    t = _check_count("n_targets", n_targets)
    noise = _check_noise(noise)
    rng = _rng(seed)
    d = _float_dtype(dtype)
    coef = rng.uniform(-2.0, 2.0, size=(f, t))
    X = rng.standard_normal((n, f))
    y = X @ coef + float(bias)
    if noise:
        y = y + rng.normal(0.0, noise, size=y.shape)
    out = (X.astype(d), y.astype(d))
    return out + (coef.astype(d),) if return_coef else out
