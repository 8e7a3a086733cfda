"""Linear algebra: matrix products and Einstein summation."""
from __future__ import annotations

import functools
import string

from ..backend import get_array_module
from ..core.function import Function
from ._util import needs_grad
from .shape import reshape, swapaxes

__all__ = ["matmul", "einsum"]


# ==== matmul ==========================================================================

class MatMul(Function):
    def forward(self, a, b):
        try:
            return get_array_module(a, b).matmul(a, b)
        except ValueError:
            raise ValueError(_matmul_mismatch(a.shape, b.shape)) from None

    def backward(self, gy):
        a, b = self.inputs
        # Treat 1-D operands as a row (left) or a column (right), as matmul does;
        # the engine sums broadcast batch axes back to each operand's shape.
        a2 = a if a.ndim > 1 else reshape(a, (1, a.shape[0]))
        b2 = b if b.ndim > 1 else reshape(b, (b.shape[0], 1))
        gshape = list(gy.shape)
        if a.ndim == 1:
            gshape.insert(len(gshape) - (0 if b.ndim == 1 else 1), 1)
        if b.ndim == 1:
            gshape.append(1)
        g2 = reshape(gy, tuple(gshape))
        ga = matmul(g2, swapaxes(b2, -1, -2)) if needs_grad(a) else None
        gb = matmul(swapaxes(a2, -1, -2), g2) if needs_grad(b) else None
        if ga is not None and a.ndim == 1:
            ga = reshape(ga, ga.shape[:-2] + (ga.shape[-1],))
        if gb is not None and b.ndim == 1:
            gb = reshape(gb, gb.shape[:-1])
        return ga, gb


def _matmul_mismatch(sa, sb):
    """Say why shapes ``sa`` and ``sb`` cannot be multiplied."""
    sa, sb = tuple(sa), tuple(sb)
    if not sa or not sb:
        return f"matmul needs operands with at least one dim, got shapes {sa} and {sb}"
    ka = sa[-1]
    kb = sb[-2] if len(sb) > 1 else sb[0]
    if ka != kb:
        return (f"shapes {sa} and {sb} do not align for matmul: the last dim of the first "
                f"({ka}) must equal the {'second-to-last' if len(sb) > 1 else 'only'} dim "
                f"of the second ({kb})")
    return (f"the batch dims of shapes {sa} and {sb} do not broadcast: "
            f"{sa[:-2]} against {sb[:-2]}")


def matmul(a, b):
    """Matrix product with NumPy/PyTorch semantics.

    Two 1-D operands give their dot product; a 1-D left operand acts as a row
    and a 1-D right operand as a column (the added axis is removed again); with
    more than two dims the leading (batch) dims broadcast.

    Raises
    ------
    ValueError
        When the inner dims differ or the batch dims do not broadcast; the
        message names both shapes.
    """
    return MatMul()(a, b)


# ==== einsum ==========================================================================

_LETTERS = string.ascii_letters


@functools.lru_cache(maxsize=512)
def _parse_einsum(subscripts, ndims):
    """Resolve implicit output and ``...`` into explicit letters.

    Returns ``(inputs, output, expr)``: one letter string per operand, the output
    letters, and the explicit expression handed to the array module's einsum.
    """
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum subscripts must be a string, got {type(subscripts).__name__}")
    spec = subscripts.replace(" ", "")
    lhs, arrow, rhs = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s) but "
                         f"{len(ndims)} were given")
    for t in terms + [rhs]:
        if t.replace("...", "", 1).strip(_LETTERS):
            raise ValueError(f"einsum: bad subscripts {subscripts!r}: use letters, ',' "
                             "between operands, at most one '...' per operand and one '->'")
    # Each ellipsis stands for fresh letters, aligned from the right as in broadcasting.
    n_ell = 0
    for k, (t, nd) in enumerate(zip(terms, ndims)):
        named = len(t) - (3 if "..." in t else 0)
        if ("..." in t and named > nd) or ("..." not in t and named != nd):
            raise ValueError(f"einsum: operand {k} has {nd} dims but its subscripts {t!r} "
                             f"name {named}")
        if "..." in t:
            n_ell = max(n_ell, nd - named)
    spare = [c for c in _LETTERS if c not in spec]
    if n_ell > len(spare):
        raise ValueError("einsum: too many dims for the 52 available index letters")
    ell = "".join(spare[:n_ell])
    ins = []
    for t, nd in zip(terms, ndims):
        if "..." in t:
            k = nd - (len(t) - 3)
            t = t.replace("...", ell[n_ell - k:])
        ins.append(t)
    if arrow:
        out = rhs.replace("...", ell)
        for c in out:
            if out.count(c) > 1:
                raise ValueError(f"einsum: output letter {c!r} appears more than once in "
                                 f"{subscripts!r}")
            if not any(c in t for t in ins):
                raise ValueError(f"einsum: output letter {c!r} of {subscripts!r} is not in "
                                 "any input")
    else:
        # Implicit mode: the letters used exactly once, in alphabetical (ASCII) order.
        joined = "".join(terms).replace("...", "")
        out = ell + "".join(sorted(c for c in set(joined) if joined.count(c) == 1))
    return tuple(ins), out, ",".join(ins) + "->" + out


class Einsum(Function):
    def __init__(self, ins, out, expr):
        self.ins = ins
        self.out = out
        self.expr = expr

    def forward(self, *xs):
        xp = get_array_module(*xs)
        try:
            # Beyond two operands the contraction order matters a great deal;
            # for two, NumPy's direct loop avoids the planning overhead.
            return xp.einsum(self.expr, *xs, optimize=len(xs) > 2)
        except ValueError:
            raise ValueError(_einsum_mismatch(self.ins, [x.shape for x in xs])) from None

    def backward(self, gy):
        return tuple(self._grad(k, gy) if needs_grad(x) else None
                     for k, x in enumerate(self.inputs))

    def _grad(self, k, gy):
        # d out / d operand k is the einsum of gy with all other operands, written
        # out to operand k's letters. Two fixes make that a valid einsum:
        # * a letter repeated in operand k (a diagonal, 'ii') gets a fresh letter per
        #   extra occurrence, tied to the first by an identity matrix;
        # * a letter that only operand k has (summed out, 'ij->i') is broadcast
        #   by a vector of ones.
        sub = self.ins[k]
        shape = self.inputs[k].shape
        terms = [self.out] + [s for j, s in enumerate(self.ins) if j != k]
        ops = [gy] + [x for j, x in enumerate(self.inputs) if j != k]
        xp = get_array_module(gy.data)
        dtype = gy.dtype
        used = set(self.expr)
        spare = (c for c in _LETTERS if c not in used)
        target = []
        consts = []
        for pos, c in enumerate(sub):
            if c in target:
                f = next(spare)
                target.append(f)
                consts.append((c + f, xp.eye(shape[pos], dtype=dtype)))
            else:
                target.append(c)
        have = set("".join(terms) + "".join(t for t, _ in consts))
        for pos, c in enumerate(sub):
            if c not in have:
                have.add(c)
                consts.append((c, xp.ones(shape[pos], dtype=dtype)))
        expr = ",".join(terms + [t for t, _ in consts]) + "->" + "".join(target)
        return einsum(expr, *ops, *[a for _, a in consts])


def _einsum_mismatch(ins, shapes):
    sizes = {}
    for k, (t, shape) in enumerate(zip(ins, shapes)):
        for c, n in zip(t, shape):
            if c in sizes and n != 1 and sizes[c][0] not in (1, n):
                m, j = sizes[c]
                return (f"einsum: index {c!r} has size {m} in operand {j} (shape "
                        f"{tuple(shapes[j])}) but {n} in operand {k} (shape {tuple(shape)})")
            if c not in sizes or sizes[c][0] == 1:
                sizes[c] = (n, k)
    return f"einsum: operands of shapes {[tuple(s) for s in shapes]} do not fit {ins}"


def einsum(subscripts, *operands):
    """Einstein summation over the operands, as ``torch.einsum`` / ``numpy.einsum``.

    Parameters
    ----------
    subscripts : str
        One group of letters per operand, separated by commas, optionally
        ``'->'`` and the output letters (``'bij,bjk->bik'``). Without ``'->'``
        the output holds the letters used exactly once, in alphabetical order.
        ``'...'`` stands for the remaining (broadcast) dims. A letter repeated
        within one operand takes a diagonal (``'ii->i'``); letters missing from
        the output are summed over (``'ii->'`` is the trace).
    *operands : Tensor
        The tensors (a single list or tuple of them is accepted too). Dims of
        size one broadcast against the same letter elsewhere.

    Returns
    -------
    Tensor
        Differentiable in every operand, to any order: each gradient is itself
        an einsum.

    Notes
    -----
    Ellipsis dims that do not appear in an explicit output are summed, as in
    PyTorch (NumPy raises instead).
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    try:
        ndims = tuple(o.ndim for o in operands)
    except AttributeError:
        raise TypeError("einsum operands must be Tensors or arrays, got "
                        f"{[type(o).__name__ for o in operands]}") from None
    ins, out, expr = _parse_einsum(subscripts, ndims)
    return Einsum(ins, out, expr)(*operands)
