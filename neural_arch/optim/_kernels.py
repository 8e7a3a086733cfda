"""Pieces of update rules written once and shared by the optimizer kernels.

Every function works in place on raw arrays (NumPy or CuPy) and takes its array
module from the data (``xp = get_array_module(param)``). Temporaries go into a
caller-supplied scratch array (``out=``), so a whole update needs at most one
parameter-sized scratch buffer.

Large arrays on the CPU are updated in cache-sized blocks (:func:`blocks`): an
update is a dozen NumPy passes, and over arrays larger than the cache each pass
would fetch its operands from main memory again. Block by block, only the first
touch of each array comes from memory; the other passes find the block in the
cache. The passes are elementwise, so the numbers are bit for bit those of
whole-array passes; ``benchmarks/optim_step.py`` measures the gain.

Conventions, the same in every kernel:

* ``g`` is the *effective* gradient: the loss gradient, negated under
  ``maximize``, plus the L2 term ``λθ`` when weight decay means L2 (Adam, SGD);
* moving averages are ``avg ← β·avg + (1-β)·x`` (:func:`moving_average_`), or the
  same value in ``lerp`` form ``avg ← avg + (1-β)·(x - avg)`` (:func:`lerp_`) where
  that saves a trip to memory;
* bias corrections are ``1 - β^t`` with ``t`` the 1-based step.
"""
from __future__ import annotations

from ..backend import device_of, get_array_module

__all__ = ["scratch_like", "scratch_for", "blocks", "BLOCK_BYTES", "effective_grad",
           "moving_average_", "lerp_", "bias_correction", "decoupled_weight_decay_", "descend_"]

#: Bytes of each array in one block of :func:`blocks`. The five or six arrays of an
#: Adam block (parameter, gradient, two moments, scratch) then take about 3 MiB,
#: which stays in a shared L3 cache. Measured with benchmarks/optim_step.py's
#: arrays (Adam, float32, one 10M array, one thread): whole arrays 32 ms, blocks of
#: 32 KiB 31 ms (per-call overhead), 128 KiB 21 ms, 512 KiB 18 ms, 1-2 MiB 17 ms.
BLOCK_BYTES = 1 << 19


def scratch_like(param, scratch=None):
    """The scratch buffer of one update: ``scratch`` when given, else a new empty array."""
    if scratch is None:
        return get_array_module(param).empty_like(param)
    if scratch.shape != param.shape or scratch.dtype != param.dtype:
        raise ValueError(f"scratch buffer has shape {scratch.shape} and dtype {scratch.dtype}; "
                         f"expected those of the parameter, {param.shape} and {param.dtype}")
    return scratch


def scratch_for(optimizer, param):
    """The scratch array for one update of ``param`` by ``optimizer``, kept between steps.

    In contiguous mode, the flat group's own buffer (``optimizer._scratch``).
    Otherwise, on the CPU, a view in ``param``'s shape of one flat buffer per dtype
    that the optimizer keeps, as long as the largest parameter that asked for one:
    it saves allocating a fresh parameter-sized array per tensor per step (and the
    page faults when the allocator gave that memory back to the OS). Parameters
    that :func:`blocks` splits, and arrays on other devices (whose allocators keep
    pools), get None: the kernel then allocates its own.
    """
    scratch = optimizer._scratch(param)
    if scratch is not None:
        return scratch
    if device_of(param) != "cpu" or param.size >= 2 * (BLOCK_BYTES // param.itemsize):
        return None
    kept = optimizer.__dict__.get("_kept_scratch")
    if kept is None:
        kept = optimizer._kept_scratch = {}         # (shape, dtype) -> view; dtype -> buffer
    view = kept.get((param.shape, param.dtype))
    if view is None:
        buf = kept.get(param.dtype)
        if buf is None or buf.size < param.size:
            # A new, longer buffer: views of the old one are dropped with it.
            kept.clear()
            buf = kept[param.dtype] = get_array_module(param).empty(param.size, param.dtype)
        view = kept[param.shape, param.dtype] = buf[:param.size].reshape(param.shape)
    return view


def blocks(param, *arrays, scratch=None):
    """Split an elementwise update of ``param`` into cache-sized blocks.

    Yields tuples ``(param_block, *array_blocks, scratch_block)``: matching flat
    views of ``param`` and of each of ``arrays`` (entries that are None stay
    None) over consecutive ranges of :data:`BLOCK_BYTES` each, and a scratch
    array of the block's length. The scratch is a view of ``scratch`` when one
    is given (parameter-sized, as :func:`scratch_like` checks), else one new
    block-sized array, reused for every block.

    Arrays that are small (under two blocks), not on the CPU (a GPU kernel runs
    whole arrays best), not C-contiguous, or not all of one shape come back
    whole: one tuple, with a parameter-sized scratch.
    """
    n = param.size
    size = BLOCK_BYTES // param.itemsize
    if (n < 2 * size or device_of(param) != "cpu" or not param.flags.c_contiguous
            or any(a is not None and (a.shape != param.shape or not a.flags.c_contiguous)
                   for a in arrays)):
        yield (param, *arrays, scratch_like(param, scratch))
        return
    flat = [param.reshape(-1)] + [None if a is None else a.reshape(-1) for a in arrays]
    if scratch is None:
        s = get_array_module(param).empty(size, param.dtype)
    else:
        s = scratch_like(param, scratch).reshape(-1)
    for i in range(0, n, size):
        j = min(i + size, n)
        yield tuple(None if a is None else a[i:j] for a in flat) + (s[:j - i],)


def effective_grad(grad, param, weight_decay, maximize, out):
    """``g = ±grad + λ·param`` (``-`` under ``maximize``; L2 weight decay ``λ``).

    Returns ``grad`` itself, uncopied, when there is nothing to add or negate;
    otherwise writes into ``out`` and returns it. ``grad`` is never modified (it
    is the user-visible ``.grad``).
    """
    xp = get_array_module(param)
    if weight_decay == 0:
        return xp.negative(grad, out=out) if maximize else grad
    xp.multiply(param, weight_decay, out=out)
    if maximize:
        out -= grad
    else:
        out += grad
    return out


def moving_average_(avg, x, beta, out):
    """In place: ``avg ← β·avg + (1-β)·x``. ``x`` may be ``out`` (it is used up)."""
    get_array_module(avg).multiply(x, 1 - beta, out=out)
    avg *= beta
    avg += out
    return avg


def lerp_(avg, x, weight, out):
    """In place: ``avg ← avg + w·(x - avg)``, the moving average in lerp form.

    The value of :func:`moving_average_` with ``β = 1 - w`` (PyTorch's Adam writes
    its first moment this way, ``exp_avg.lerp_(grad, 1 - β1)``). Its first pass
    reads ``x`` and ``avg`` together: for arrays fetched from main memory that is
    one trip where the ``β·avg + (1-β)·x`` form makes two, which is why Adam's first
    moment uses it. ``x`` may be ``out`` (it is used up).
    """
    get_array_module(avg).subtract(x, avg, out=out)     # x - avg
    out *= weight
    avg += out                                          # avg + w (x - avg)
    return avg


def bias_correction(beta, step):
    """``1 - β^t``: the mass a zero-initialised moving average lacks after ``t`` steps."""
    return 1 - beta ** step


def decoupled_weight_decay_(param, lr, weight_decay):
    """In place: ``θ ← θ·(1 - lr·λ)``, weight decay apart from the gradient (AdamW)."""
    if weight_decay != 0:
        param *= 1 - lr * weight_decay
    return param


def descend_(param, direction, step_size, out):
    """In place: ``θ ← θ - step_size·direction``. ``direction`` may be ``out``."""
    get_array_module(param).multiply(direction, step_size, out=out)
    param -= out
    return param
