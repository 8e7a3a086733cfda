"""Shape ops: reshaping, broadcasting, joining and splitting, indexing, padding.

Every op here moves or copies elements without arithmetic on them, so each
backward is another shape op (a reshape undoes a reshape, a scatter undoes a
gather) and second derivatives come for free. Ops whose gradient flows through
each element at most once, unchanged, declare ``grad_bounded = True``; those
that sum gradients (broadcasting, repeat, tile, gathers with repeated indices)
do not.

Axis arguments are named ``axis`` (as in the rest of neural_arch); where NumPy
and PyTorch disagree on semantics, each docstring says which one it follows.
"""
from __future__ import annotations

import operator

from .. import backend
from ..backend import get_array_module
from ..core.dtypes import to_dtype
from ..core.function import Function
from ..core.tensor import Tensor
from ._util import needs_grad, normalize_axis, raw

__all__ = ["reshape", "transpose", "permute", "swapaxes", "broadcast_to", "expand", "sum_to",
           "squeeze", "unsqueeze", "flatten", "concat", "cat", "stack", "split", "chunk",
           "getitem", "pad", "flip", "repeat", "tile", "gather", "take_along_axis",
           "scatter_add", "astype", "to_device"]

_make = Tensor._make


def _axis(axis, ndim, what="axis"):
    """Validate one axis for a tensor with ``ndim`` dims; return it non-negative."""
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"{what} must be an int, got {type(axis).__name__}") from None
    if not -ndim <= a < ndim:
        raise ValueError(f"{what} {axis} is out of range for a tensor with {ndim} dims "
                         f"(expected {-ndim} <= {what} < {ndim})")
    return a % ndim


def _ints(values, what):
    """A tuple of ints from an int or a sequence of ints (shapes, reps, sizes)."""
    if isinstance(values, int):
        return (values,)
    try:
        return tuple(operator.index(v) for v in values)
    except TypeError:
        raise TypeError(f"{what} must be an int or a sequence of ints, got {values!r}") from None


def _axis_slices(axis, index):
    """An index tuple that applies ``index`` along ``axis`` and keeps the other axes."""
    return (slice(None),) * axis + (index,)


# ==== reshaping ========================================================================

class Reshape(Function):
    grad_bounded = True

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.inputs[0].shape)


class Transpose(Function):
    grad_bounded = True

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        try:
            return x.transpose(self.axes)
        except ValueError:
            raise ValueError(f"axes {self.axes} are not a permutation of the {x.ndim} axes "
                             f"of a tensor of shape {tuple(x.shape)}") from None

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        n = len(self.axes)
        inv = [0] * n
        for i, a in enumerate(self.axes):
            inv[a % n] = i
        return transpose(gy, tuple(inv))


class SwapAxes(Function):
    grad_bounded = True

    def __init__(self, a, b):
        self.a, self.b = a, b

    def forward(self, x):
        try:
            return x.swapaxes(self.a, self.b)
        except ValueError:
            raise ValueError(f"cannot swap axes {self.a} and {self.b} of a tensor of shape "
                             f"{tuple(x.shape)}") from None

    def backward(self, gy):
        return swapaxes(gy, self.a, self.b)


def reshape(x, shape):
    """Give ``x`` a new shape with the same number of elements.

    Parameters
    ----------
    x : Tensor
    shape : int or tuple of int
        The new shape; one entry may be -1 and is then inferred.

    Returns
    -------
    Tensor
        ``x`` itself when the shape is unchanged, else a reshaped tensor whose
        gradient is reshaped back.
    """
    if type(shape) is not tuple:
        shape = _ints(shape, "shape")
    if x.shape == shape:
        return x
    return Reshape(shape)(x)


def transpose(x, axes=None):
    """Permute the axes of ``x`` (NumPy semantics).

    Parameters
    ----------
    x : Tensor
    axes : sequence of int, optional
        A permutation of ``range(x.ndim)``; the axes are reversed when None.
        (PyTorch's two-axis ``transpose(x, a, b)`` is :func:`swapaxes` here.)
    """
    return Transpose(None if axes is None else tuple(axes))(x)


def permute(x, axes):
    """Permute the axes of ``x``: ``permute(x, (2, 0, 1))`` as in ``torch.permute``."""
    return Transpose(_ints(axes, "axes"))(x)


def swapaxes(x, axis1, axis2):
    """Exchange two axes of ``x`` (``torch.transpose(x, axis1, axis2)``)."""
    return SwapAxes(axis1, axis2)(x)


# ==== broadcasting =====================================================================

class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        try:
            return get_array_module(x).broadcast_to(x, self.shape)
        except ValueError:
            raise ValueError(f"cannot broadcast a tensor of shape {tuple(x.shape)} to shape "
                             f"{self.shape}") from None

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)


class SumTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return _sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.inputs[0].shape)


def _sum_to_array(x, shape):
    """Sum the array ``x`` down to ``shape`` (the inverse of broadcasting)."""
    lead = x.ndim - len(shape)
    if lead >= 0:
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        if lead:
            y = y.reshape(shape)
        if y.shape == shape:
            return y
    raise ValueError(f"cannot sum a tensor of shape {tuple(x.shape)} down to shape {shape}: "
                     "the target must broadcast to the source")


def _resolve_expand(shape, old):
    """Replace each -1 of ``shape`` by the size of the matching (right-aligned) old axis."""
    lead = len(shape) - len(old)
    out = []
    for i, n in enumerate(shape):
        if n == -1:
            if i < lead:
                raise ValueError(f"-1 in shape {shape} is not allowed for the new leading "
                                 f"axis {i} (the tensor has shape {tuple(old)})")
            n = old[i - lead]
        out.append(n)
    return tuple(out)


def broadcast_to(x, shape):
    """Broadcast ``x`` to ``shape`` (NumPy rules); the gradient is summed back.

    An entry of -1 keeps the size of the corresponding axis of ``x`` (as in
    ``torch.Tensor.expand``). The result is a read-only view in the forward pass.
    """
    if type(shape) is not tuple:
        shape = _ints(shape, "shape")
    if x.shape == shape:
        return x
    if -1 in shape:
        shape = _resolve_expand(shape, x.shape)
    return BroadcastTo(shape)(x)


def expand(x, *shape):
    """``torch.Tensor.expand``: broadcast to ``shape``, where -1 keeps an axis's size.

    Accepts ``expand(x, 2, 3)`` and ``expand(x, (2, 3))``.
    """
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return broadcast_to(x, _ints(shape, "shape"))


def sum_to(x, shape):
    """Sum ``x`` down to ``shape``: the adjoint of :func:`broadcast_to`.

    Leading axes are summed away and axes where ``shape`` has 1 are summed with
    ``keepdims``. ``shape`` must broadcast to ``x.shape``.
    """
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return SumTo(shape)(x)


# ==== adding and removing axes ==========================================================

def squeeze(x, axis=None):
    """Drop axes of length one: all of them when ``axis`` is None.

    Unlike ``torch.squeeze``, naming an axis whose length is not one is an error
    (NumPy semantics), since it is almost always a mistake.
    """
    shape = x.shape
    if axis is None:
        axes = [i for i, n in enumerate(shape) if n == 1]
    else:
        axes = normalize_axis(axis, len(shape))
        for a in axes:
            if shape[a] != 1:
                raise ValueError(f"cannot squeeze axis {a} of a tensor of shape "
                                 f"{tuple(shape)}: its length is {shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(shape) if i not in axes))


def unsqueeze(x, axis):
    """Insert an axis of length one at position ``axis`` (``-1`` appends one)."""
    shape = list(x.shape)
    axis = _axis(axis, len(shape) + 1)
    shape.insert(axis, 1)
    return reshape(x, tuple(shape))


def flatten(x, start_dim=0, end_dim=-1):
    """Merge the axes ``start_dim`` through ``end_dim`` (inclusive) into one.

    A 0-d tensor becomes a 1-d tensor with one element, as in ``torch.flatten``.
    """
    shape = tuple(x.shape)
    nd = len(shape)
    if nd == 0:
        return reshape(x, (1,))
    s, e = _axis(start_dim, nd, "start_dim"), _axis(end_dim, nd, "end_dim")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                         f"for a tensor with {nd} dims")
    n = 1
    for d in shape[s:e + 1]:
        n *= d
    return reshape(x, shape[:s] + (n,) + shape[e + 1:])


# ==== joining and splitting ============================================================

class Concat(Function):
    grad_bounded = True

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        try:
            return get_array_module(*xs).concatenate(xs, axis=self.axis)
        except ValueError:
            shapes = ", ".join(str(tuple(x.shape)) for x in xs)
            raise ValueError(f"cannot concatenate shapes {shapes} along axis {self.axis}: "
                             "every tensor needs the same number of dims and the same "
                             "sizes on all other axes") from None

    def backward(self, gy):
        gxs = []
        start = 0
        for x in self.inputs:
            n = x.shape[self.axis]
            gxs.append(GetItem(_axis_slices(self.axis, slice(start, start + n)))(gy)
                       if needs_grad(x) else None)
            start += n
        return tuple(gxs)


class Stack(Function):
    grad_bounded = True

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        try:
            return get_array_module(*xs).stack(xs, axis=self.axis)
        except ValueError:
            shapes = ", ".join(str(tuple(x.shape)) for x in xs)
            raise ValueError(f"cannot stack shapes {shapes}: every tensor needs the same "
                             "shape") from None

    def backward(self, gy):
        return tuple(GetItem(_axis_slices(self.axis, i))(gy) if needs_grad(x) else None
                     for i, x in enumerate(self.inputs))


class Split(Function):
    grad_bounded = True

    def __init__(self, sizes, axis):
        self.sizes = sizes
        self.axis = axis

    def forward(self, x):
        cuts = []
        total = 0
        for n in self.sizes[:-1]:
            total += n
            cuts.append(total)
        return tuple(get_array_module(x).split(x, cuts, axis=self.axis))

    def backward(self, *gys):
        # An output that was not used gets None from the engine: it contributes zeros.
        like = next(g for g in gys if g is not None).data
        xp = get_array_module(like)
        shape = list(self.inputs[0].shape)
        parts = []
        for n, g in zip(self.sizes, gys):
            if g is None:
                shape[self.axis] = n
                g = _make(xp.zeros(tuple(shape), dtype=like.dtype))
            parts.append(g)
        return parts[0] if len(parts) == 1 else Concat(self.axis)(*parts)


def _sequence(tensors, what):
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{what} expects a list or tuple of tensors, got "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{what} expects at least one tensor, got an empty sequence")
    return tensors


def concat(tensors, axis=0):
    """Join tensors along an existing axis (``torch.cat``, ``numpy.concatenate``).

    Parameters
    ----------
    tensors : sequence of Tensor
        Tensors with the same number of dims and equal sizes except along ``axis``.
    axis : int, default 0

    Raises
    ------
    ValueError
        When the shapes do not fit together; the message lists them.
    """
    tensors = _sequence(tensors, "concat")
    nd = tensors[0].ndim
    if nd == 0:
        raise ValueError("concat cannot join 0-d tensors (they have no axis); use stack")
    return Concat(_axis(axis, nd))(*tensors)


cat = concat


def stack(tensors, axis=0):
    """Join tensors of one shape along a new axis inserted at ``axis`` (``torch.stack``)."""
    tensors = _sequence(tensors, "stack")
    return Stack(_axis(axis, tensors[0].ndim + 1))(*tensors)


def split(x, sections_or_size, axis=0):
    """Split ``x`` along ``axis`` into pieces (``torch.split`` semantics).

    Parameters
    ----------
    x : Tensor
    sections_or_size : int or sequence of int
        An int is the size of each piece (the last one may be smaller); a
        sequence gives the size of every piece and must add up to
        ``x.shape[axis]``. Note that ``numpy.split`` reads an int as the *number*
        of pieces instead; for that, use :func:`chunk`.
    axis : int, default 0

    Returns
    -------
    tuple of Tensor
        Gradients of pieces that are not used count as zero.
    """
    axis = _axis(axis, x.ndim)
    n = x.shape[axis]
    if isinstance(sections_or_size, int):
        size = sections_or_size
        if size <= 0:
            raise ValueError(f"split size must be a positive int, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else []) or [0]
    else:
        sizes = list(_ints(sections_or_size, "sections_or_size"))
        if not sizes or min(sizes) < 0 or sum(sizes) != n:
            raise ValueError(f"split sizes {sizes} must be non-negative and add up to the "
                             f"length {n} of axis {axis} (shape {tuple(x.shape)})")
    return Split(sizes, axis)(x)


def chunk(x, chunks, axis=0):
    """Split ``x`` into ``chunks`` pieces of equal size along ``axis`` (``torch.chunk``).

    Each piece has ``ceil(n / chunks)`` elements along the axis, except the last,
    which may be smaller; so fewer than ``chunks`` pieces can come back (as in
    PyTorch: 6 elements in 4 chunks give sizes 2, 2, 2).
    """
    if not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"chunks must be a positive int, got {chunks!r}")
    axis = _axis(axis, x.ndim)
    n = x.shape[axis]
    if n == 0:
        return Split([0] * chunks, axis)(x)
    return split(x, -(-n // chunks), axis)


# ==== indexing ========================================================================

def _has_int_array(index):
    """True when the index holds an integer array, which may repeat positions."""
    for i in (index if type(index) is tuple else (index,)):
        if hasattr(i, "dtype") and i.dtype.kind in "iu":
            return True
    return False


class GetItem(Function):
    def __init__(self, index):
        self.index = index

    @property
    def grad_bounded(self):
        # Basic slicing and boolean masks move each element at most once; integer
        # arrays may pick one element several times, and their gradients add up.
        return not _has_int_array(self.index)

    def forward(self, x):
        return x[self.index]

    def backward(self, gy):
        return GetItemGrad(self.index, self.inputs[0].shape)(gy)


class GetItemGrad(Function):
    """Scatter a gradient back into a zero array of the indexed tensor's shape."""

    grad_bounded = True

    def __init__(self, index, shape):
        self.index = index
        self.shape = shape

    def forward(self, gy):
        gx = get_array_module(gy).zeros(self.shape, dtype=gy.dtype)
        if _has_int_array(self.index):
            backend.scatter_add(gx, self.index, gy)
        else:
            gx[self.index] = gy
        return gx

    def backward(self, ggx):
        return GetItem(self.index)(ggx)


_BASIC = (int, slice, type(None), type(Ellipsis))


def _index_item(i, xp):
    if isinstance(i, Tensor):
        return i.data
    if isinstance(i, list):
        return xp.asarray(i) if i else xp.zeros(0, dtype="int64")
    return i


def getitem(x, index):
    """``x[index]`` with everything NumPy indexing offers.

    Basic slices (negative steps too), ``...``, ``None``, integer arrays (repeats
    allowed: their gradients add up), boolean masks, and Tensors or lists as
    indices. The gradient is scattered back into zeros of ``x``'s shape.
    """
    if type(index) is tuple:
        for i in index:
            if not isinstance(i, _BASIC):
                xp = get_array_module(x)
                index = tuple(_index_item(i, xp) for i in index)
                break
    elif not isinstance(index, _BASIC):
        index = _index_item(index, get_array_module(x))
    return GetItem(index)(x)


def _grid_index(index, axis, sizes, xp):
    """A full integer index: ``index`` on ``axis``, an ``arange`` on every other axis.

    ``sizes[d]`` is the length of the ``arange`` on axis ``d``; the aranges are
    shaped to broadcast against ``index``.
    """
    nd = index.ndim
    out = []
    for d in range(nd):
        if d == axis:
            out.append(index)
        else:
            shape = [1] * nd
            shape[d] = sizes[d]
            out.append(xp.arange(sizes[d]).reshape(shape))
    return tuple(out)


def _check_index(index, x, axis, what):
    index = raw(index)
    if isinstance(index, (list, tuple)):
        index = get_array_module(x).asarray(index)
    if not hasattr(index, "dtype") or index.dtype.kind not in "iu":
        raise TypeError(f"{what} needs an integer index array, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    if index.ndim != x.ndim:
        raise ValueError(f"{what}: the index has {index.ndim} dims but the tensor has "
                         f"{x.ndim} (shapes {tuple(index.shape)} and {tuple(x.shape)})")
    return index, _axis(axis, x.ndim)


def gather(x, axis, index):
    """Pick values along ``axis`` at ``index`` (``torch.gather`` semantics).

    ``out[i, j, k] = x[index[i, j, k], j, k]`` for ``axis=0``, and likewise for
    the other axes. ``index`` has as many dims as ``x`` and is no longer than
    ``x`` on the other axes; the output has ``index``'s shape. Negative indices
    count from the end. Repeated indices add their gradients.
    """
    index, axis = _check_index(index, x, axis, "gather")
    for d, (m, n) in enumerate(zip(index.shape, x.shape)):
        if d != axis and m > n:
            raise ValueError(f"gather: index shape {tuple(index.shape)} is larger than the "
                             f"tensor's shape {tuple(x.shape)} on axis {d}")
    return GetItem(_grid_index(index, axis, index.shape, get_array_module(index)))(x)


def take_along_axis(x, indices, axis=-1):
    """Pick values along ``axis`` at ``indices`` (``numpy.take_along_axis`` semantics).

    Like :func:`gather`, but ``indices`` broadcasts against ``x`` on the other
    axes; with ``axis=None`` ``x`` is flattened first and ``indices`` is 1-d.
    """
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    indices, axis = _check_index(indices, x, axis, "take_along_axis")
    return GetItem(_grid_index(indices, axis, x.shape, get_array_module(indices)))(x)


class ScatterAdd(Function):
    # The gradient of x is gy itself; src's is gy gathered at the index (no sums).
    grad_bounded = True

    def __init__(self, axis, index):
        self.axis = axis
        self.index = index

    def forward(self, x, src):
        xp = get_array_module(x, src)
        self.where = _grid_index(self.index, self.axis, self.index.shape, xp)
        if src.shape != self.index.shape:
            src = src[tuple(slice(0, n) for n in self.index.shape)]
        out = x.copy()
        backend.scatter_add(out, self.where, src)
        return out

    def backward(self, gy):
        x, src = self.inputs
        gsrc = None
        if needs_grad(src):
            gsrc = GetItem(self.where)(gy)
            if src.shape != gsrc.shape:
                gsrc = pad(gsrc, [(0, s - n) for s, n in zip(src.shape, gsrc.shape)])
        return gy, gsrc


def scatter_add(x, axis, index, src):
    """Return a copy of ``x`` with ``src`` added at ``index`` along ``axis``.

    ``torch.scatter_add`` semantics, without changing ``x``: for ``axis=0``,
    ``out[index[i, j, k], j, k] += src[i, j, k]``; repeated indices accumulate.
    ``index`` has as many dims as ``x`` and ``src`` and is no larger than ``src``
    (only that corner of ``src`` is used) nor than ``x`` on the other axes.
    Differentiable in ``x`` and ``src``.
    """
    index, axis = _check_index(index, x, axis, "scatter_add")
    if src.ndim != x.ndim:
        raise ValueError(f"scatter_add: src has {src.ndim} dims but the tensor has {x.ndim}")
    for d, m in enumerate(index.shape):
        if m > src.shape[d] or (d != axis and m > x.shape[d]):
            raise ValueError(f"scatter_add: index shape {tuple(index.shape)} must not exceed "
                             f"src's shape {tuple(src.shape)}, nor the tensor's shape "
                             f"{tuple(x.shape)} on axes other than {axis}")
    return ScatterAdd(axis, index)(x, src)


# ==== padding, flipping, repeating ====================================================

class Pad(Function):
    """Constant padding; its gradient is the un-padded middle of ``gy``."""

    grad_bounded = True

    def __init__(self, width, value):
        self.width = width
        self.value = value

    def forward(self, x):
        return get_array_module(x).pad(x, self.width, mode="constant",
                                       constant_values=self.value)

    def backward(self, gy):
        shape = self.inputs[0].shape
        return GetItem(tuple(slice(b, b + n) for (b, _), n in zip(self.width, shape)))(gy)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge",
              "replicate": "edge", "symmetric": "symmetric", "wrap": "wrap",
              "circular": "wrap"}


def _pad_width(pad_width, ndim):
    """NumPy's pad_width forms -> one ``(before, after)`` pair of ints per axis."""
    bad = ValueError(f"pad_width must be an int, a (before, after) pair, or one pair per "
                     f"axis ({ndim} axes) of non-negative ints; got {pad_width!r}")
    try:
        if isinstance(pad_width, int):
            pairs = [(pad_width, pad_width)] * ndim
        else:
            items = list(pad_width)
            if items and all(isinstance(p, int) for p in items):
                if len(items) > 2:
                    raise bad
                pairs = [(items[0], items[-1])] * ndim
            else:
                pairs = [tuple(p) for p in items]
                if len(pairs) == 1:
                    pairs = pairs * ndim
                if len(pairs) != ndim or any(len(p) not in (1, 2) for p in pairs):
                    raise bad
                pairs = [(p[0], p[-1]) for p in pairs]
        pairs = tuple((operator.index(b), operator.index(a)) for b, a in pairs)
    except TypeError:
        raise bad from None
    if any(b < 0 or a < 0 for b, a in pairs):
        raise bad
    return pairs


def pad(x, pad_width, mode="constant", value=0):
    """Pad ``x`` with NumPy-style ``pad_width``.

    Parameters
    ----------
    x : Tensor
    pad_width : int, (before, after) or sequence of (before, after)
        How many values to add at each end of each axis, as ``numpy.pad`` reads
        it. (``torch.nn.functional.pad`` lists pairs from the last axis
        backwards, flattened; convert before calling.)
    mode : str, default 'constant'
        ``'constant'`` fills with ``value``; ``'reflect'`` mirrors without
        repeating the edge; ``'edge'`` (alias ``'replicate'``) repeats the edge;
        ``'symmetric'`` mirrors with the edge; ``'wrap'`` (alias ``'circular'``)
        continues periodically. The non-constant modes gather elements, so
        their gradients add up where an element is copied.
    value : float, default 0
        The fill value of ``'constant'`` mode.
    """
    np_mode = _PAD_MODES.get(mode)
    if np_mode is None:
        raise ValueError(f"unknown pad mode {mode!r}; expected one of {sorted(_PAD_MODES)}")
    width = _pad_width(pad_width, x.ndim)
    if np_mode == "constant":
        return Pad(width, raw(value))(x)
    if value != 0:
        raise ValueError(f"pad: value={value!r} applies only to mode='constant', not {mode!r}")
    xp = get_array_module(x)
    for axis, (b, a) in enumerate(width):
        if b or a:
            n = x.shape[axis]
            if n == 0:
                raise ValueError(f"pad: mode {mode!r} cannot pad the empty axis {axis}")
            idx = xp.pad(xp.arange(n), (b, a), mode=np_mode)
            x = GetItem(_axis_slices(axis, idx))(x)
    return x


class Flip(Function):
    grad_bounded = True

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return get_array_module(x).flip(x, self.axes)

    def backward(self, gy):
        return Flip(self.axes)(gy)


def flip(x, axis=None):
    """Reverse the order of elements along ``axis`` (all axes when None)."""
    return Flip(normalize_axis(axis, x.ndim))(x)


class Repeat(Function):
    def __init__(self, repeats, axis):
        self.repeats = repeats
        self.axis = axis

    def forward(self, x):
        return get_array_module(x).repeat(x, self.repeats, axis=self.axis)

    def backward(self, gy):
        shape = self.inputs[0].shape
        ax, r = self.axis, self.repeats
        if isinstance(r, int):
            # The r copies of each element sit side by side: split them onto their
            # own axis and sum it away.
            wide = shape[:ax] + (shape[ax], r) + shape[ax + 1:]
            narrow = shape[:ax] + (shape[ax], 1) + shape[ax + 1:]
            return reshape(sum_to(reshape(gy, wide), narrow), shape)
        xp = get_array_module(gy.data)
        where = xp.repeat(xp.arange(shape[ax]), xp.asarray(r))
        return GetItemGrad(_axis_slices(ax, where), shape)(gy)


def repeat(x, repeats, axis=None):
    """Repeat each element ``repeats`` times along ``axis`` (``numpy.repeat`` semantics).

    This is ``torch.repeat_interleave``, not ``torch.Tensor.repeat`` (which tiles;
    see :func:`tile`).

    Parameters
    ----------
    x : Tensor
    repeats : int or sequence of int
        One count for all elements, or one per element along ``axis``.
    axis : int, optional
        When None, ``x`` is flattened first.
    """
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    else:
        axis = _axis(axis, x.ndim)
    reps = _ints(raw(repeats).tolist() if hasattr(raw(repeats), "tolist") else repeats,
                 "repeats")
    if min(reps, default=0) < 0:
        raise ValueError(f"repeats must be non-negative, got {repeats!r}")
    if len(reps) == 1:
        reps = reps[0]
    elif len(reps) != x.shape[axis]:
        raise ValueError(f"repeat: {len(reps)} counts given for an axis of length "
                         f"{x.shape[axis]}; give one count, or one per element")
    return Repeat(reps, axis)(x)


class Tile(Function):
    def __init__(self, reps):
        self.reps = reps

    def forward(self, x):
        return get_array_module(x).tile(x, self.reps)

    def backward(self, gy):
        # Output axis d holds reps[d] copies of input axis d: give each copy its
        # own axis in front of it and sum those axes away.
        shape = self.inputs[0].shape
        wide, narrow = [], []
        for r, n in zip(self.reps, shape):
            wide += [r, n]
            narrow += [1, n]
        return reshape(sum_to(reshape(gy, tuple(wide)), tuple(narrow)), shape)


def tile(x, reps):
    """Repeat the whole of ``x`` ``reps[d]`` times along each axis ``d`` (``torch.tile``).

    When ``reps`` is shorter than ``x.ndim`` it is padded with ones in front;
    when longer, ``x`` gets new leading axes of length one (NumPy and PyTorch
    agree on this).
    """
    reps = _ints(reps, "reps")
    if min(reps, default=0) < 0:
        raise ValueError(f"tile reps must be non-negative, got {reps}")
    nd = x.ndim
    if len(reps) < nd:
        reps = (1,) * (nd - len(reps)) + reps
    elif len(reps) > nd:
        x = reshape(x, (1,) * (len(reps) - nd) + tuple(x.shape))
    if all(r == 1 for r in reps):
        return x
    return Tile(reps)(x)


# ==== dtype and device ================================================================

class AsType(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        return x.astype(self.dtype)

    def backward(self, gy):
        return astype(gy, self.inputs[0].dtype)


class ToDevice(Function):
    grad_bounded = True

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.src = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return to_device(gy, self.src)


def astype(x, dtype):
    """Cast to ``dtype``; the gradient is cast back.

    Casting to a non-floating dtype (integers, bool) ends the graph: the result
    does not require grad, as in PyTorch.
    """
    dtype = to_dtype(dtype)
    if dtype.kind not in "fc":
        return _make(raw(x).astype(dtype))
    return AsType(dtype)(x)


def to_device(x, device):
    """Move to ``device`` (``'cpu'``, ``'cuda:N'``); the gradient moves back."""
    return ToDevice(device)(x)
