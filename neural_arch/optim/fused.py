"""Fused CuPy kernels: one GPU launch per update, beside each optimizer's NumPy kernel.

A NumPy kernel (``adam_update``, ...) is a dozen array passes; on a GPU each pass
is a kernel launch that streams the arrays through memory again. The optimizers
people use most (SGD, Adam, AdamW, Lion, LAMB, RMSprop, Adagrad) therefore also
carry a :class:`FusedKernel`: a ``cupy.ElementwiseKernel`` whose CUDA-C body is
the NumPy kernel written again, line for line and name for name, with the same
equation comments. One kernel per optimizer takes its variants (``maximize``,
``amsgrad``, ``nesterov``, ...) as runtime ``int32`` flags.

How the CUDA-C mirrors the NumPy code:

* Hyper-parameters arrive as scalars of the array type ``T``: CuPy casts a Python
  float to ``T`` as NumPy casts a Python float operand of a float32 array, so the
  kernel computes with the same numbers. Scalars that the NumPy code derives on
  the host (``1 - beta1``, Adam's folded ``step_size`` and ``eps_hat``) are
  computed on the host in float64 here too and passed already folded.
* The helpers of ``_kernels.py`` have ``__device__`` twins of the same name in
  :data:`PREAMBLE` (``effective_grad``, ``moving_average``, ``lerp``, ``descend``, and
  ``maximum`` and ``sign`` for NumPy's ufuncs), so a kernel reads like its NumPy
  kernel.
* State arrays that a flag may switch off (AMSGrad's ``max_exp_avg_sq``, the
  momentum buffer, RMSprop's ``grad_avg``) are ``raw`` parameters, read and
  written as ``buffer[i]`` only when their flag is on; when it is off, a
  one-element :func:`placeholder` takes their place, so no parameter-sized dummy
  is ever allocated. (``raw`` arrays are exempt from CuPy's shape checks and
  broadcasting.)

Dispatch: an optimizer's ``_update`` calls :func:`use_fused` and runs the fused
kernel when the parameter is a CuPy float32/float64 array and the group's
``fused`` entry is not False; everything else (NumPy, the test suite's fake
device, float16, ``fused=False``) runs the NumPy kernel. In contiguous mode the
flat buffer of a group goes through ``_update`` once, so the whole group is one
launch. ``fused=True`` makes the fused kernel mandatory: parameters that cannot
take it are an error at construction and again at each step, before anything
changes (:class:`FusedOptimizer`).

Kernels are built lazily: nothing touches CuPy at import, and each spec becomes a
``cupy.ElementwiseKernel`` at its first launch (:func:`build`, cached). Two seams
let the tests run the fused path without a GPU: :func:`build` (the tests build a
C++ twin of each spec with g++) and :func:`on_device` (which arrays count as GPU
arrays).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .. import backend
from .optimizer import Optimizer

__all__ = ["FusedKernel", "FusedOptimizer", "PREAMBLE", "build", "launch", "use_fused",
           "on_device", "placeholder", "check_fused", "check_new_group", "FUSED_DTYPES"]

#: dtypes the fused kernels are written and tested for (``numpy.dtype.char``).
FUSED_DTYPES = "fd"

#: ``__device__`` twins of the ``_kernels.py`` helpers and of the NumPy ufuncs the
#: kernels use, put before every kernel. Templates: ``T`` is float or double.
PREAMBLE = r"""
// g = ±grad + λ·param (- under maximize): _kernels.effective_grad
template <typename T>
__device__ __forceinline__ T effective_grad(T grad, T param, T weight_decay, int maximize) {
    if (weight_decay == T(0)) return maximize ? -grad : grad;
    T out = param * weight_decay;
    return maximize ? out - grad : out + grad;
}

// β·avg + (1-β)·x, with 1-β folded on the host: _kernels.moving_average_
template <typename T>
__device__ __forceinline__ T moving_average(T avg, T x, T beta, T one_minus_beta) {
    return avg * beta + x * one_minus_beta;
}

// avg + w·(x - avg), the same average in lerp form: _kernels.lerp_
template <typename T>
__device__ __forceinline__ T lerp(T avg, T x, T w) {
    return avg + (x - avg) * w;
}

// θ - step_size·direction: _kernels.descend_
template <typename T>
__device__ __forceinline__ T descend(T param, T direction, T step_size) {
    return param - direction * step_size;
}

// numpy.maximum: NaN if either is NaN
template <typename T>
__device__ __forceinline__ T maximum(T a, T b) {
    return (a > b || a != a) ? a : b;
}

// numpy.sign: -1, 0 or 1 (NaN stays NaN)
template <typename T>
__device__ __forceinline__ T sign(T x) {
    return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x);
}
"""


@dataclass(frozen=True)
class FusedKernel:
    """The text of one fused kernel: the one source of what CuPy compiles.

    Attributes
    ----------
    name : str
        Kernel name (shown by profilers).
    in_params, out_params : str
        CuPy's argument lists: arrays and scalars of the placeholder type ``T``,
        ``int32`` flags, ``raw T`` for optional state arrays (indexed ``buf[i]``).
        Parameters and state arrays that the kernel updates are outputs.
    operation : str
        The CUDA-C loop body, mirroring the optimizer's NumPy kernel.
    preamble : str
        Extra ``__device__`` helpers, placed after :data:`PREAMBLE`.
    """

    name: str
    in_params: str
    out_params: str
    operation: str
    preamble: str = ""

    @property
    def source_preamble(self):
        """:data:`PREAMBLE` followed by the kernel's own helpers."""
        return PREAMBLE + self.preamble


@backend.cached_kernel
def _cupy_kernel(spec):
    return backend.elementwise_kernel(spec.in_params, spec.out_params, spec.operation,
                                      spec.name, preamble=spec.source_preamble,
                                      no_return=True)


def build(spec):
    """The callable kernel of ``spec``: a ``cupy.ElementwiseKernel``, built once per spec.

    A seam: the tests replace it by a CPU twin of the kernel.
    """
    return _cupy_kernel(spec)


def launch(spec, *args):
    """Run ``spec`` once: ``args`` are its inputs, then its outputs, in declaration order."""
    build(spec)(*args)


def on_device(array):
    """True when ``array`` is a GPU array that the fused kernels take (a seam for tests)."""
    return backend.is_cupy_array(array)


def use_fused(param, group):
    """Whether the update of ``param`` (a raw array) in ``group`` runs the fused kernel.

    Yes for CuPy float32/float64 arrays unless the group says ``fused=False``.
    """
    return (group.get("fused") is not False and on_device(param)
            and param.dtype.char in FUSED_DTYPES)


_PLACEHOLDERS: dict = {}


def placeholder(param):
    """A one-element array of ``param``'s type and device, for a ``raw`` state array
    that a flag turns off (the kernel never reads it)."""
    xp = backend.get_array_module(param)
    key = (xp, param.dtype, backend.device_of(param))
    p = _PLACEHOLDERS.get(key)
    if p is None:
        p = _PLACEHOLDERS[key] = xp.zeros(1, dtype=param.dtype)
    return p


def check_fused(owner, group, index=None):
    """Raise :class:`~neural_arch.backend.DeviceError` unless every parameter of ``group``
    can take the fused kernel (only checked when the group says ``fused=True``).

    Parameters
    ----------
    owner : str
        The optimizer's class name, for the message.
    group : dict
        A parameter group; nothing is checked unless its ``fused`` entry is True.
    index : int, optional
        The group's position, for the message.
    """
    if group.get("fused") is not True:
        return
    for i, p in enumerate(group.get("params", ())):
        a = p.data
        if not (on_device(a) and a.dtype.char in FUSED_DTYPES):
            names = group.get("param_names")
            which = f"parameter {names[i]!r}" if names else f"parameter {i}"
            if index is not None:
                which += f" of group {index}"
            raise backend.DeviceError(
                f"{owner}(fused=True) needs every parameter to be a float32 or float64 "
                f"CuPy array, but {which} is a {a.dtype} array on device "
                f"{backend.device_of(a)!r}; move the model to 'cuda', or use fused=None "
                f"(the fused kernel wherever it applies) or fused=False")


def check_new_group(optimizer, group):
    """The ``check_group`` part of ``fused``: a group being added with ``fused=True``
    must hold GPU arrays only (the defaults and loaded groups, without ``'params'``,
    are checked at the step)."""
    if group.get("fused") is True and "params" in group:
        check_fused(type(optimizer).__name__, group, len(optimizer.param_groups))


class FusedOptimizer(Optimizer):
    """Base of the optimizers with a fused kernel: the checks behind ``fused=True``.

    ``fused`` is a group entry, like PyTorch's: None (the default) runs the fused
    kernel for CuPy parameters and the NumPy kernel otherwise, False always the
    NumPy kernel, True always the fused one. With True, a parameter that cannot
    take it (not a float32/float64 CuPy array) is a
    :class:`~neural_arch.backend.DeviceError` when the group is added and again at
    every step, before any parameter or state changes.
    """

    def check_group(self, group):
        super().check_group(group)
        check_new_group(self, group)

    def step(self, closure=None):
        """As :meth:`Optimizer.step`; first checks the groups that say ``fused=True``."""
        for i, group in enumerate(self.param_groups):
            if group.get("fused") is True:
                check_fused(type(self).__name__, group, i)
        return super().step(closure)

    def load_state_dict(self, state_dict):
        """As :meth:`Optimizer.load_state_dict`; groups saved before ``fused`` existed
        load with this optimizer's default."""
        groups = state_dict.get("param_groups") if isinstance(state_dict, Mapping) else None
        if isinstance(groups, list) and any(isinstance(g, Mapping) and "fused" not in g
                                            for g in groups):
            state_dict = dict(state_dict)
            state_dict["param_groups"] = [
                {**g, "fused": self.defaults.get("fused")}
                if isinstance(g, Mapping) and "fused" not in g else g for g in groups]
        return super().load_state_dict(state_dict)
