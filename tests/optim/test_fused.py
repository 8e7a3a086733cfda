"""The fused CuPy kernels of SGD, Adam, AdamW, Lion, LAMB, RMSprop and Adagrad.

Three independent checks hold each :class:`~neural_arch.optim.fused.FusedKernel`
to its optimizer's NumPy kernel:

a. on a GPU (skipped without CuPy): for every flag combination, 20 steps of the
   fused kernel, of ``fused=False`` on CuPy and of NumPy on the CPU agree
   (float32 and float64), per tensor and in contiguous mode;
b. without a GPU: :class:`CpuElementwiseKernel` turns the *same* spec into C++
   by CuPy's binding rules, compiles it with g++ and runs it on NumPy arrays
   through ctypes. With the dispatch seams patched, whole optimizer steps take the
   fused path on the CPU and must give the NumPy kernel's numbers bit for bit, for
   every flag, in float32 and float64 (and on the strict fake CuPy device, for the
   Python side of the fused path). This is the proof of the kernels' arithmetic;
c. ``nvcc --ptx`` compiles every spec wrapped as CuPy wraps it (an ``extern "C"
   __global__`` function with a grid-stride loop over ``i``), for float and
   double: the CUDA-C is valid CUDA, and the float kernels do no double-precision
   arithmetic;

and d. checks the ``fused`` argument itself: validation, the error of
``fused=True`` without GPU arrays (before anything changes), the state dict.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import itertools
import re
import shutil
import subprocess

import numpy as np
import pytest

import neural_arch as na
from neural_arch import backend
from neural_arch.optim import LAMB, SGD, Adagrad, Adam, AdamW, Lion, RMSprop, fused
from neural_arch.optim.adagrad import ADAGRAD_KERNEL
from neural_arch.optim.adam import ADAM_KERNEL
from neural_arch.optim.lamb import LAMB_KERNEL
from neural_arch.optim.lion import LION_KERNEL
from neural_arch.optim.rmsprop import RMSPROP_KERNEL
from neural_arch.optim.sgd import SGD_KERNEL

SPECS = [SGD_KERNEL, ADAM_KERNEL, LION_KERNEL, LAMB_KERNEL, RMSPROP_KERNEL, ADAGRAD_KERNEL]
STEPS = 20
SHAPES = [(3, 4), (5,), ()]


# ==== the optimizers, their flags and random hyper-parameters ============================

def _log_uniform(rng, low, high):
    return float(10 ** rng.uniform(np.log10(low), np.log10(high)))


def _sgd(flags, rng):
    momentum, nesterov, dampening, decay, maximize = flags
    return dict(lr=_log_uniform(rng, 1e-3, 0.1),
                momentum=float(rng.uniform(0.5, 0.95)) if momentum else 0.0,
                dampening=float(rng.uniform(0.1, 0.9)) if dampening else 0.0,
                weight_decay=_log_uniform(rng, 1e-4, 0.1) if decay else 0.0,
                nesterov=nesterov, maximize=maximize)


def _sgd_valid(flags):
    momentum, nesterov, dampening, _, _ = flags
    return not (nesterov and (not momentum or dampening)) and not (dampening and not momentum)


def _adam(flags, rng):
    amsgrad, decay, maximize = flags
    return dict(lr=_log_uniform(rng, 1e-4, 1e-2),
                betas=(float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.9, 0.9999))),
                eps=_log_uniform(rng, 1e-10, 1e-6),
                weight_decay=_log_uniform(rng, 1e-4, 0.1) if decay else 0.0,
                amsgrad=amsgrad, maximize=maximize)


def _lion(flags, rng):
    decay, maximize = flags
    return dict(lr=_log_uniform(rng, 1e-4, 1e-2),
                betas=(float(rng.uniform(0.0, 0.99)), float(rng.uniform(0.9, 0.999))),
                weight_decay=_log_uniform(rng, 1e-3, 1.0) if decay else 0.0,
                maximize=maximize)


def _lamb(flags, rng):
    bias_correction, decay, maximize = flags
    return dict(lr=_log_uniform(rng, 1e-4, 1e-2),
                betas=(float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.9, 0.9999))),
                eps=_log_uniform(rng, 1e-10, 1e-6),
                weight_decay=_log_uniform(rng, 1e-4, 0.1) if decay else 0.0,
                bias_correction=bias_correction, maximize=maximize)


def _rmsprop(flags, rng):
    momentum, centered, decay, maximize = flags
    return dict(lr=_log_uniform(rng, 1e-4, 1e-2), alpha=float(rng.uniform(0.9, 0.999)),
                eps=_log_uniform(rng, 1e-10, 1e-6),
                weight_decay=_log_uniform(rng, 1e-4, 0.1) if decay else 0.0,
                momentum=float(rng.uniform(0.1, 0.9)) if momentum else 0.0,
                centered=centered, maximize=maximize)


def _adagrad(flags, rng):
    lr_decay, decay, maximize = flags
    return dict(lr=_log_uniform(rng, 1e-3, 0.1),
                lr_decay=_log_uniform(rng, 1e-4, 0.1) if lr_decay else 0.0,
                weight_decay=_log_uniform(rng, 1e-4, 0.1) if decay else 0.0,
                initial_accumulator_value=float(rng.uniform(0.0, 0.5)),
                eps=_log_uniform(rng, 1e-10, 1e-6), maximize=maximize)


#: name -> (class, number of flags, kwargs(flags, rng), which flag tuples are valid)
OPTIMIZERS = {
    "sgd": (SGD, 5, _sgd, _sgd_valid),
    "adam": (Adam, 3, _adam, None),
    "adamw": (AdamW, 3, _adam, None),
    "lion": (Lion, 2, _lion, None),
    "lamb": (LAMB, 3, _lamb, None),
    "rmsprop": (RMSprop, 4, _rmsprop, None),
    "adagrad": (Adagrad, 3, _adagrad, None),
}


def flag_combinations(name):
    """(class, [kwargs for each valid flag combination]) with seeded random magnitudes."""
    cls, count, make, valid = OPTIMIZERS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    combos = [c for c in itertools.product((False, True), repeat=count)
              if valid is None or valid(c)]
    return cls, [make(c, rng) for c in combos]


def problem(dtype, seed=0):
    """Initial values and ``STEPS`` rounds of gradients for the parameters ``SHAPES``."""
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads = [[rng.normal(size=s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    return init, grads


def run(cls, kwargs, init, grads, *, device="cpu", fused_flag=None, contiguous=False,
        groups=False):
    """Train parameters from ``init`` with ``grads``; (host parameters, host state)."""
    params = [na.Parameter(backend.to_device(a.copy(), device)) for a in init]
    spec = params if not groups else [dict(params=params[:2]),
                                      dict(params=params[2:], lr=kwargs["lr"] * 0.5)]
    opt = cls(spec, fused=fused_flag, contiguous=contiguous, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = na.Tensor(backend.to_device(g, device))
        opt.step()
    state = [{k: backend.asnumpy(v) if hasattr(v, "shape") else v
              for k, v in opt.state[p].items()} for p in params]
    return [backend.asnumpy(p.data) for p in params], state


def assert_close(got, want, rtol, what):
    """Parameters and state of two runs agree to ``rtol`` relative to each array's scale."""
    (gp, gs), (wp, ws) = got, want
    for i, (a, b) in enumerate(zip(gp, wp)):
        assert a.dtype == b.dtype, f"{what}: dtype of parameter {i}"
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale,
                                   err_msg=f"{what}: parameter {i}")
    for i, (a, b) in enumerate(zip(gs, ws)):
        assert a.keys() == b.keys(), f"{what}: state keys of parameter {i}"
        for k in a:
            if hasattr(b[k], "shape"):
                scale = max(1.0, float(np.abs(b[k]).max()))
                np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=rtol * scale,
                                           err_msg=f"{what}: state {k!r} of parameter {i}")
            else:
                assert a[k] == b[k], f"{what}: state {k!r} of parameter {i}"


# ==== a. on a GPU ===========================================================================

requires_gpu = pytest.mark.skipif(not backend.cupy_available(),
                                  reason="CuPy with a usable GPU is not available")

#: fused kernels round through fused multiply-adds, which NumPy does not
GPU_RTOL = {np.float32: 1e-4, np.float64: 1e-10}


@requires_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fused_kernels_match_the_array_kernels_on_the_gpu(name, dtype, monkeypatch):
    cls, draws = flag_combinations(name)
    init, grads = problem(dtype)
    launches = []
    build = fused.build

    def counting_build(spec):              # launch() builds (from its cache) every time
        launches.append(spec.name)
        return build(spec)
    monkeypatch.setattr(fused, "build", counting_build)
    for kwargs in draws:
        what = f"{cls.__name__}({kwargs}, {np.dtype(dtype).name})"
        cpu = run(cls, kwargs, init, grads, fused_flag=False)
        launches.clear()
        xp_kernel = run(cls, kwargs, init, grads, device="cuda", fused_flag=False)
        assert not launches, f"{what}: fused=False launched a fused kernel"
        fused_run = run(cls, kwargs, init, grads, device="cuda")
        assert len(launches) == STEPS * len(SHAPES), what
        launches.clear()
        flat = run(cls, kwargs, init, grads, device="cuda", contiguous=True, groups=True)
        assert len(launches) == STEPS * (2 if cls.elementwise else len(SHAPES)), what
        flat_ref = run(cls, kwargs, init, grads, fused_flag=False, groups=True)
        rtol = GPU_RTOL[dtype]
        assert_close(fused_run, cpu, rtol, what + ": fused vs NumPy")
        assert_close(fused_run, xp_kernel, rtol, what + ": fused vs fused=False on CuPy")
        assert_close(flat, flat_ref, rtol, what + ": fused contiguous vs NumPy")


@requires_gpu
def test_fused_true_accepts_cupy_parameters_and_the_kernel_builds_once():
    p = na.Parameter(backend.to_device(np.ones(4, np.float32), "cuda"))
    opt = Adam([p], lr=0.1, fused=True)
    p.grad = na.Tensor(backend.to_device(np.ones(4, np.float32), "cuda"))
    opt.step()
    np.testing.assert_allclose(backend.asnumpy(p.data), 0.9, rtol=1e-6)
    assert fused.build(ADAM_KERNEL) is fused.build(ADAM_KERNEL)


# ==== b. the CPU twin of cupy.ElementwiseKernel =============================================

#: NumPy dtype name -> (C type, ctypes type) of kernel arguments
C_TYPES = {"float32": ("float", ctypes.c_float), "float64": ("double", ctypes.c_double),
           "int32": ("int", ctypes.c_int32), "int64": ("long long", ctypes.c_int64),
           "bool": ("bool", ctypes.c_bool)}

#: What CUDA's headers give a kernel that <cmath> does not: the ``__device__``
#: qualifiers, float overloads of the math functions in the global namespace,
#: ``max``/``min`` on floats (CUDA's are fmax/fmin), ``rsqrt``; and the two CuPy
#: objects a loop body may use: raw arrays (bounds-checked here, so that a
#: placeholder that is read, or written, beyond its one element is caught) and ``_ind``.
COMPAT = r"""
#include <cmath>
#include <cstddef>
#define __device__
#define __host__
#define __forceinline__ inline
using std::sqrt; using std::exp; using std::log; using std::fabs; using std::pow;
using std::fmax; using std::fmin; using std::copysign; using std::isnan; using std::isinf;
inline float max(float a, float b) { return std::fmax(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline float min(float a, float b) { return std::fmin(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline int max(int a, int b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }

template <typename T>
class RawArray {
    T *data_;
    ptrdiff_t size_;
    int *out_of_bounds_;
    ptrdiff_t check(ptrdiff_t k) const {
        if (k < 0 || k >= size_) { *out_of_bounds_ = 1; return 0; }
        return k;
    }
  public:
    RawArray(T *data, ptrdiff_t size, int *flag) : data_(data), size_(size),
                                                    out_of_bounds_(flag) {}
    ptrdiff_t size() const { return size_; }
    T &operator[](ptrdiff_t k) { return data_[check(k)]; }
    const T &operator[](ptrdiff_t k) const { return data_[check(k)]; }
};

class Indexer {
    ptrdiff_t size_, index_;
  public:
    explicit Indexer(ptrdiff_t size) : size_(size), index_(0) {}
    ptrdiff_t size() const { return size_; }
    void set(ptrdiff_t i) { index_ = i; }
    ptrdiff_t get() const { return index_; }
};
"""

#: g++ flags: no contraction into fused multiply-adds (NumPy has none), and any implicit
#: float <-> double conversion is an error, so a float kernel computes in float only.
CXX_FLAGS = ["-O2", "-std=c++17", "-shared", "-fPIC", "-ffp-contract=off",
             "-Werror=double-promotion", "-Werror=float-conversion", "-Werror=return-type",
             "-Werror=uninitialized"]


class Param:
    """One entry of an ElementwiseKernel argument list: ``[raw] <type> <name>``."""

    def __init__(self, text, is_const):
        *keywords, self.type, self.name = text.split()
        if set(keywords) - {"raw"}:
            raise ValueError(f"unknown keyword in {text!r}")
        self.raw = "raw" in keywords
        self.is_const = is_const
        if self.name in ("i", "n") or self.name.startswith("_"):
            raise ValueError(f"{self.name!r} is reserved by CuPy")
        if len(self.type) != 1 and self.type not in C_TYPES:
            raise ValueError(f"unknown type {self.type!r} in {text!r}")

    @property
    def placeholder(self):
        return len(self.type) == 1


def _params(text, is_const):
    return [Param(p, is_const) for p in text.split(",") if p.strip()]


class CpuElementwiseKernel:
    """``cupy.ElementwiseKernel`` on NumPy arrays, by way of g++ (a test double).

    It takes the same arguments and binds them as CuPy does: each type
    placeholder (``T``) is the dtype of the arrays bound to it (outputs first,
    then inputs; scalars do not decide it) and becomes a ``typedef``; an input
    array ``x`` is ``const T &x = x[i]``, an output ``y`` is ``T &y = y[i]``, a
    ``raw`` array is indexed by hand (``y[i]``, not broadcast, checked against its
    bounds here), a scalar is passed by value as its declared type (CuPy casts a
    Python number to it), ``i`` is the loop index and ``_ind.size()`` the loop
    size. Calls take every input and every output, as ``launch`` passes them;
    non-raw arrays must share one shape and be C-contiguous. Each (kernel, type
    map) is compiled once into a shared library in ``directory``.
    """

    directory = None          # set by the session fixture
    _compiled: dict = {}      # source hash -> ctypes function

    def __init__(self, in_params, out_params, operation, name="kernel", preamble="",
                 **options):
        self.in_params = _params(in_params, True)
        self.out_params = _params(out_params, False)
        names = [p.name for p in self.in_params + self.out_params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.operation = operation
        self.name = name
        self.preamble = preamble
        self.launches = 0

    def type_map(self, args):
        """Placeholder -> NumPy dtype name, decided from the arrays as CuPy does."""
        params = self.in_params + self.out_params
        types = {}
        order = list(zip(self.out_params, args[len(self.in_params):]))
        order += list(zip(self.in_params, args[:len(self.in_params)]))
        for p, a in order:
            if not isinstance(a, np.ndarray):
                if p.raw or not np.isscalar(a):
                    raise TypeError(f"{self.name}: {p.name} must be an array, got {a!r}")
                continue
            dtype = a.dtype.name
            if not p.placeholder:
                if dtype != p.type:
                    raise TypeError(f"{self.name}: {p.name} is {dtype}, declared {p.type}")
            elif types.setdefault(p.type, dtype) != dtype:
                raise TypeError(f"{self.name}: {p.name} is {dtype} but {p.type} is "
                                f"{types[p.type]}")
        missing = {p.type for p in params if p.placeholder} - set(types)
        if missing:
            raise TypeError(f"{self.name}: cannot decide the type of {sorted(missing)}")
        return types

    def compile(self, types, scalars):
        """The ctypes function of this kernel for ``types``; ``scalars``: names of scalar args."""
        def ctype(p):
            return C_TYPES[types[p.type] if p.placeholder else p.type][0]
        sig, bind, raw = [], [], []
        for p in self.in_params + self.out_params:
            const = "const " if p.is_const else ""
            if p.raw:
                sig.append(f"{ctype(p)} *_raw_{p.name}, ptrdiff_t _size_{p.name}")
                raw.append(f"{const}RawArray<{ctype(p)}> {p.name}(_raw_{p.name}, "
                           f"_size_{p.name}, &_out_of_bounds);")
            elif p.name in scalars:
                sig.append(f"{const}{ctype(p)} {p.name}")
            else:
                sig.append(f"{const}{ctype(p)} *_raw_{p.name}")
                bind.append(f"{const}{p.type} &{p.name} = _raw_{p.name}[_ind.get()];")
        typedefs = "".join(f"typedef {C_TYPES[t][0]} {c};\n" for c, t in sorted(types.items()))
        symbol = f"{self.name}_{'_'.join(f'{c}{t}' for c, t in sorted(types.items()))}"
        nl = "\n        "
        code = f"""{COMPAT}
namespace {{
{typedefs}{self.preamble}
}}
extern "C" int {symbol}({", ".join(sig + ["ptrdiff_t _n"])}) {{
    int _out_of_bounds = 0;
    Indexer _ind(_n);
    {nl.join(raw)}
    for (ptrdiff_t i = 0; i < _ind.size(); ++i) {{
        _ind.set(i);
        {nl.join(bind)}
        {self.operation};
    }}
    return _out_of_bounds;
}}
"""
        key = hashlib.sha256(code.encode()).hexdigest()[:16]
        fn = self._compiled.get(key)
        if fn is None:
            if self.directory is None:
                raise RuntimeError("CpuElementwiseKernel.directory is not set")
            src = self.directory / f"{symbol}_{key}.cpp"
            lib = self.directory / f"{symbol}_{key}.so"
            src.write_text(code)
            done = subprocess.run(["g++", *CXX_FLAGS, str(src), "-o", str(lib)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise AssertionError(f"g++ rejected kernel {self.name} ({types}):\n"
                                     f"{done.stderr}\n{code}")
            fn = getattr(ctypes.CDLL(str(lib)), symbol)
            fn.restype = ctypes.c_int
            self._compiled[key] = fn
        return fn

    def __call__(self, *args):
        params = self.in_params + self.out_params
        if len(args) != len(params):
            raise TypeError(f"{self.name} takes {len(params)} arguments (inputs and "
                            f"outputs), got {len(args)}")
        types = self.type_map(args)
        shapes = {a.shape for p, a in zip(params, args)
                  if isinstance(a, np.ndarray) and not p.raw}
        if len(shapes) != 1:
            raise ValueError(f"{self.name}: the non-raw arrays must share one shape, "
                             f"got {shapes}")
        size = int(np.prod(shapes.pop()))
        scalars = {p.name for p, a in zip(params, args) if not isinstance(a, np.ndarray)}
        fn = self.compile(types, scalars)
        values = []
        for p, a in zip(params, args):
            if isinstance(a, np.ndarray):
                if not a.flags.c_contiguous:
                    raise ValueError(f"{self.name}: {p.name} is not C-contiguous")
                values.append(ctypes.c_void_p(a.ctypes.data))
                if p.raw:
                    values.append(ctypes.c_ssize_t(a.size))
            else:
                dtype = types[p.type] if p.placeholder else p.type
                values.append(C_TYPES[dtype][1](np.dtype(dtype).type(a).item()))
        values.append(ctypes.c_ssize_t(size))
        self.launches += 1
        if fn(*values):
            raise IndexError(f"{self.name}: a raw array was indexed out of its bounds "
                             f"(a placeholder read or written?)")


requires_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory):
    CpuElementwiseKernel.directory = tmp_path_factory.mktemp("fused_kernels")
    return CpuElementwiseKernel.directory


@pytest.fixture
def emulated(kernel_dir, monkeypatch):
    """Patch the seams: NumPy float arrays count as device arrays, and each spec is
    built as its CPU twin. Yields spec name -> the twin (with its launch count)."""
    twins = {}

    def build(spec):
        twin = twins.get(spec.name)
        if twin is None:
            twin = twins[spec.name] = CpuElementwiseKernel(
                spec.in_params, spec.out_params, spec.operation, spec.name,
                preamble=spec.source_preamble)
        return twin
    monkeypatch.setattr(fused, "build", build)
    monkeypatch.setattr(fused, "on_device", lambda a: isinstance(a, np.ndarray))
    return twins


def _launches(twins):
    return sum(t.launches for t in twins.values())


@requires_gxx
def test_the_cpu_twin_follows_cupys_documented_examples(kernel_dir):
    # CuPy's user guide: a type-generic kernel, and a raw argument indexed by hand.
    squared_diff = CpuElementwiseKernel("T x, T y", "T z", "z = (x - y) * (x - y)", "sqd")
    x, y = np.arange(10.0, dtype=np.float32), np.full(10, 4.0, np.float32)
    z = np.empty_like(x)
    squared_diff(x, y, z)
    np.testing.assert_array_equal(z, (x - y) ** 2)
    add_reverse = CpuElementwiseKernel("T x, raw T y", "T z",
                                       "z = x + y[_ind.size() - i - 1]", "add_reverse")
    for dtype in (np.float32, np.float64):
        x, y = np.arange(5, dtype=dtype), np.arange(5, dtype=dtype) * 10
        z = np.empty_like(x)
        add_reverse(x, y, z)
        np.testing.assert_array_equal(z, x + y[::-1])
    # a scalar takes its declared type (T here: float32), as CuPy casts it
    scale = CpuElementwiseKernel("T x, T a, int32 flag", "T z", "z = flag ? x * a : x", "sc")
    x, z = np.full(3, 3.0, np.float32), np.empty(3, np.float32)
    scale(x, 0.1, 1, z)
    np.testing.assert_array_equal(z, x * np.float32(0.1))


@requires_gxx
def test_the_cpu_twin_refuses_what_cupy_refuses(kernel_dir):
    with pytest.raises(ValueError, match="reserved"):
        CpuElementwiseKernel("T i", "T z", "z = i", "bad")
    k = CpuElementwiseKernel("T x", "T z, raw T buf", "z = x + buf[i]", "oob")
    x = np.ones(3)
    with pytest.raises(TypeError, match="float32"):
        k(x, np.empty(3, np.float32), np.zeros(3))
    with pytest.raises(IndexError, match="out of its bounds"):
        k(x, np.empty(3), np.zeros(1))               # a one-element placeholder, read
    assign = CpuElementwiseKernel("T x", "T z", "x = z", "assign_input")
    with pytest.raises(AssertionError, match="g\\+\\+ rejected"):
        assign(np.ones(2), np.ones(2))               # inputs are const, as in CuPy
    promote = CpuElementwiseKernel("T x", "T z", "z = x * 0.5", "promote")
    with pytest.raises(AssertionError, match="double"):
        promote(np.ones(2, np.float32), np.ones(2, np.float32))   # float -> double


#: Fused vs NumPy on the CPU must agree bit for bit: the kernels repeat the NumPy
#: kernels' operations in the same order, in the same precision, with the same host-side
#: scalars (IEEE arithmetic, no fused multiply-adds on either side). A tolerance would
#: let through slips that matter little on one step but are still wrong, such as
#: ``sqrt(G + eps)`` for ``sqrt(G) + eps``. So when a NumPy kernel is rewritten (for
#: speed, say) in another order of operations, its CUDA-C twin must follow.
MIRROR_HINT = ("the fused kernel no longer repeats its NumPy kernel operation for operation; "
               "if the NumPy kernel was reordered, reorder the CUDA-C of its FusedKernel the "
               "same way")


@requires_gxx
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fused_kernels_equal_the_numpy_kernels_on_the_cpu(name, dtype, emulated):
    cls, draws = flag_combinations(name)
    init, grads = problem(dtype)
    for kwargs in draws:
        what = f"{cls.__name__}({kwargs}, {np.dtype(dtype).name})"
        before = _launches(emulated)
        reference = run(cls, kwargs, init, grads, fused_flag=False)
        assert _launches(emulated) == before, f"{what}: fused=False ran the fused kernel"
        got = run(cls, kwargs, init, grads)
        assert _launches(emulated) == before + STEPS * len(SHAPES), what
        assert_close(got, reference, 0.0, f"{what}: {MIRROR_HINT}")
        strict = run(cls, kwargs, init, grads, fused_flag=True)
        assert_close(strict, got, 0.0, what + ": fused=True")


@requires_gxx
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_contiguous_mode_launches_once_per_group(name, emulated):
    cls, draws = flag_combinations(name)
    init, grads = problem(np.float32, seed=1)
    kwargs = draws[-1]                                     # every flag on
    before = _launches(emulated)
    flat = run(cls, kwargs, init, grads, contiguous=True, groups=True)
    launches = _launches(emulated) - before
    if cls.elementwise:
        assert launches == 2 * STEPS                       # two groups, one launch each
    else:                                                  # LAMB: per tensor (trust ratio)
        assert launches == len(SHAPES) * STEPS
    reference = run(cls, kwargs, init, grads, fused_flag=False, groups=True)
    assert_close(flat, reference, 0.0, f"{cls.__name__} contiguous: {MIRROR_HINT}")


@requires_gxx
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_the_fused_path_keeps_device_arrays_on_their_device(name, emulated, monkeypatch):
    # The Python side of the fused path (placeholders, scratch, LAMB's norms) on the
    # strict fake CuPy, which refuses NumPy arrays mixed into device data: the g++ twin
    # takes the arrays inside the fake ones.
    from tests import fake_cupy
    fake_cupy.register()
    build = fused.build

    def unwrapping_build(spec):
        twin = build(spec)
        return lambda *args: twin(*(a._a if type(a) is fake_cupy.FakeArray else a
                                    for a in args))
    monkeypatch.setattr(fused, "build", unwrapping_build)
    monkeypatch.setattr(fused, "on_device", lambda a: type(a) is fake_cupy.FakeArray)
    cls, draws = flag_combinations(name)
    init, grads = problem(np.float32, seed=2)
    before = _launches(emulated)
    got = run(cls, draws[-1], init, grads[:3], device="fake")
    assert _launches(emulated) == before + 3 * len(SHAPES)
    assert_close(got, run(cls, draws[-1], init, grads[:3], fused_flag=False), 0.0,
                 f"{name} on the fake device: {MIRROR_HINT}")


@requires_gxx
def test_only_float32_and_float64_take_the_fused_kernel(emulated):
    p = na.Parameter(np.ones(3, np.float16))
    opt = Adam([p], lr=0.1)
    p.grad = na.Tensor(np.ones(3, np.float16))
    opt.step()
    assert _launches(emulated) == 0
    with pytest.raises(backend.DeviceError, match="float16 array"):
        Adam([p], fused=True)


def test_without_cupy_fused_none_runs_the_numpy_kernel(monkeypatch):
    def refuse(spec):
        raise AssertionError(f"built {spec.name} for NumPy arrays")
    monkeypatch.setattr(fused, "build", refuse)
    for name in OPTIMIZERS:
        cls, draws = flag_combinations(name)
        init, grads = problem(np.float64)
        assert_close(run(cls, draws[-1], init, grads[:2]),
                     run(cls, draws[-1], init, grads[:2], fused_flag=False), 0.0, name)


# ==== c. the CUDA-C compiles as CUDA =======================================================

def cupy_headers():
    """The ``#include`` lines CuPy puts before every kernel, when CuPy is installed (with
    or without a GPU: only its header files are used); else None."""
    import importlib.util
    import pathlib
    spec = importlib.util.find_spec("cupy")
    for location in (spec.submodule_search_locations or []) if spec else []:
        include = pathlib.Path(location) / "_core" / "include"
        if (include / "cupy" / "carray.cuh").exists():
            return include, "".join(f"#include <cupy/{h}>\n" for h in (
                "complex.cuh", "carray.cuh", "atomics.cuh", "math_constants.h"))
    return None


#: Without CuPy: the parts of CuPy's kernel header (cupy/carray.cuh) that a loop body
#: sees: CArray with its integer indexing, CIndexer, and the grid-stride loop CUPY_FOR.
CUDA_HEADER = r"""
#include <cstddef>
template <typename T, int ndim>
class CArray {
    T *data_;
    ptrdiff_t size_, shape_[ndim], strides_[ndim];
  public:
    __device__ ptrdiff_t size() const { return size_; }
    __device__ const T &operator[](ptrdiff_t i) const {
        ptrdiff_t offset = 0;
        for (int dim = ndim; --dim >= 0;) {
            offset += strides_[dim] * (i % shape_[dim]);
            i /= shape_[dim];
        }
        return *reinterpret_cast<const T *>(reinterpret_cast<const char *>(data_) + offset);
    }
    __device__ T &operator[](ptrdiff_t i) {
        return const_cast<T &>(const_cast<const CArray &>(*this)[i]);
    }
};
template <int ndim>
class CIndexer {
    ptrdiff_t size_, index_;
  public:
    __device__ ptrdiff_t size() const { return size_; }
    __device__ void set(ptrdiff_t i) { index_ = i; }
    __device__ ptrdiff_t get() const { return index_; }
};
#define CUPY_FOR(i, n) \
    for (ptrdiff_t i = static_cast<ptrdiff_t>(blockIdx.x) * blockDim.x + threadIdx.x; \
         i < (n); i += static_cast<ptrdiff_t>(blockDim.x) * gridDim.x)
"""


def recorded_launches():
    """spec name -> (spec, names of its scalar arguments), as the optimizers launch them.

    Whether an argument is an array or a scalar is decided by the call, as in CuPy: one
    step of each optimizer (every flag on) with ``launch`` replaced by a recorder.
    """
    seen = {}

    def record(spec, *args):
        params = _params(spec.in_params, True) + _params(spec.out_params, False)
        assert len(args) == len(params), spec.name
        seen[spec.name] = (spec, {p.name for p, a in zip(params, args)
                                  if not isinstance(a, np.ndarray)})
    with pytest.MonkeyPatch.context() as mp, np.errstate(all="ignore"):
        mp.setattr(fused, "build", lambda spec: functools.partial(record, spec))
        mp.setattr(fused, "on_device", lambda a: isinstance(a, np.ndarray))
        for name in OPTIMIZERS:
            cls, draws = flag_combinations(name)
            init, grads = problem(np.float64)
            run(cls, draws[-1], init, grads[:1])
    return seen


def cuda_kernel_source(spec, scalars, ctype):
    """``spec`` as CuPy's ElementwiseKernel writes it for arrays of ``ctype``: the
    broadcast arrays reduced to one dimension, the raw ones (not reduced) 2-d."""
    params, bind = [], []
    for p in _params(spec.in_params, True) + _params(spec.out_params, False):
        t = "T" if p.placeholder else C_TYPES[p.type][0]
        const = "const " if p.is_const else ""
        if p.name in scalars:
            params.append(f"{const}{t} {p.name}")
        elif p.raw:
            params.append(f"{const}CArray<{t}, 2> {p.name}")
        else:
            params.append(f"{const}CArray<{t}, 1> _raw_{p.name}")
            bind.append(f"{const}{t} &{p.name} = _raw_{p.name}[_ind.get()];")
    nl = "\n        "
    return f"""
namespace {spec.name}_{ctype} {{
typedef {ctype} T;
{spec.source_preamble}
extern "C" __global__ void {spec.name}_{ctype}({", ".join(params + ["CIndexer<1> _ind"])}) {{
    #pragma unroll 1
    CUPY_FOR(i, _ind.size()) {{
        _ind.set(i);
        {nl.join(bind)}
        {spec.operation};
    }}
}}
}}
"""


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_every_kernel_compiles_with_nvcc_and_float_kernels_stay_in_float(tmp_path):
    launched = recorded_launches()
    assert sorted(launched) == sorted(spec.name for spec in SPECS)
    found = cupy_headers()            # CuPy's own headers where installed
    header, flags = (CUDA_HEADER, []) if found is None else (found[1], ["-I", str(found[0])])
    code = header + "".join(cuda_kernel_source(spec, launched[spec.name][1], ctype)
                            for spec in SPECS for ctype in ("float", "double"))
    src = tmp_path / "fused_kernels.cu"
    src.write_text(code)
    done = subprocess.run(["nvcc", "--ptx", "-arch=sm_80", "-std=c++17", *flags, str(src),
                           "-o", str(tmp_path / "fused_kernels.ptx")],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"nvcc rejected the kernels:\n{done.stderr}"
    ptx = (tmp_path / "fused_kernels.ptx").read_text()
    entries = dict(re.findall(r"\.entry (\w+)\((.*?)\n}", ptx, flags=re.S))
    for spec in SPECS:
        for ctype in ("float", "double"):
            assert f"{spec.name}_{ctype}" in entries, f"no PTX entry for {spec.name}_{ctype}"
        body = entries[f"{spec.name}_float"]
        assert ".f64" not in body, f"{spec.name}: the float kernel computes in double"
        assert "sqrt" not in spec.operation or "sqrt.rn.f32" in body, spec.name


# ==== d. the fused argument ================================================================

CLASSES = [cls for cls, *_ in OPTIMIZERS.values()]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_fused_is_a_group_entry_like_pytorchs(cls):
    p = na.Parameter(np.ones(3))
    opt = cls([p], lr=0.1)
    assert opt.defaults["fused"] is None and opt.param_groups[0]["fused"] is None
    opt.add_param_group({"params": [na.Parameter(np.ones(2))], "fused": False})
    assert opt.param_groups[1]["fused"] is False
    assert cls([p], lr=0.1, fused=np.bool_(False)).param_groups[0]["fused"] is False
    with pytest.raises(TypeError, match=r"fused must be None, True or False, got 'yes'"):
        cls([p], lr=0.1, fused="yes")
    with pytest.raises(TypeError, match=r"fused must be None, True or False, got 1 \(int\)"):
        cls([p], lr=0.1, fused=1)


def test_pytorch_has_fused_in_its_groups_too():
    torch = pytest.importorskip("torch")
    t = torch.ones(2, requires_grad=True)
    for name in ("SGD", "Adam", "AdamW", "Adagrad"):       # (not RMSprop: no fused one)
        assert getattr(torch.optim, name)([t], lr=0.1).param_groups[0]["fused"] is None


def _snapshot(opt, params):
    return ([p.data.copy() for p in params],
            {i: {k: v.copy() if hasattr(v, "copy") else v for k, v in opt.state[p].items()}
             for i, p in enumerate(params)})


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_fused_true_without_gpu_arrays_is_an_error_naming_optimizer_and_device(cls):
    a, b = na.Parameter(np.ones(3)), na.Parameter(np.ones(2, np.float32))
    with pytest.raises(backend.DeviceError,
                       match=rf"{cls.__name__}\(fused=True\) needs every parameter to be a "
                             r"float32 or float64 CuPy array, but parameter 0 of group 0 is a "
                             r"float64 array on device 'cpu'"):
        cls([a], lr=0.1, fused=True)
    opt = cls([a], lr=0.1)
    with pytest.raises(backend.DeviceError, match="parameter 'w' of group 1 is a float32"):
        opt.add_param_group({"params": {"w": b}, "fused": True})
    assert len(opt.param_groups) == 1
    # set afterwards (or loaded from a state dict): the step refuses before any change
    for p in (a, b):
        p.grad = na.Tensor(np.ones(p.shape, p.data.dtype))
    opt.add_param_group({"params": [b]})
    opt.step()
    before = _snapshot(opt, [a, b])
    opt.param_groups[1]["fused"] = True
    with pytest.raises(backend.DeviceError, match="parameter 0 of group 1"):
        opt.step()
    after = _snapshot(opt, [a, b])
    for x, y in zip(before[0], after[0]):
        np.testing.assert_array_equal(x, y)
    for i in before[1]:
        for k, v in before[1][i].items():
            np.testing.assert_array_equal(after[1][i][k], v)
    assert opt.step_count == 1


def test_fused_true_refuses_the_fake_device():
    from tests import fake_cupy
    fake_cupy.register()
    p = na.Parameter(backend.to_device(np.ones(3), "fake"))
    with pytest.raises(backend.DeviceError, match="on device 'fake:0'"):
        SGD([p], lr=0.1, fused=True)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_state_dict_keeps_fused_and_old_state_dicts_load(cls):
    p = na.Parameter(np.ones(3))
    opt = cls([p], lr=0.1, fused=False)
    p.grad = na.Tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["fused"] is False
    fresh = cls([na.Parameter(np.ones(3))], lr=0.1)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["fused"] is False
    del sd["param_groups"][0]["fused"]          # saved before the fused path existed
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["fused"] is None
    sd["param_groups"][0]["fused"] = "no"
    with pytest.raises(TypeError, match="fused must be None, True or False"):
        fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["fused"] is None


def test_backend_helpers_without_cupy():
    assert not backend.is_cupy_array(np.ones(2))
    assert not backend.is_cupy_array(na.Tensor(np.ones(2)))
    if not backend.cupy_available():
        with pytest.raises(backend.DeviceError, match="CuPy"):
            backend.elementwise_kernel("T x", "T y", "y = x", "copy")
        with pytest.raises(backend.DeviceError):
            fused.build(SGD_KERNEL)


def test_placeholders_are_one_element_of_the_parameter_dtype():
    for dtype in (np.float32, np.float64):
        ph = fused.placeholder(np.ones((4, 5), dtype))
        assert ph.shape == (1,) and ph.dtype == dtype
        assert fused.placeholder(np.ones(7, dtype)) is ph


def test_kernels_are_plain_specs_built_only_on_demand():
    for spec in SPECS:
        assert spec.name.startswith("neural_arch_") and spec.operation.strip()
        assert hash(spec) == hash(fused.FusedKernel(spec.name, spec.in_params,
                                                    spec.out_params, spec.operation,
                                                    spec.preamble))
        outputs = _params(spec.out_params, False)
        assert any(p.name in ("param", "update") for p in outputs), spec.name
        for p in _params(spec.in_params, True):
            assert not p.raw, f"{spec.name}: optional state arrays are outputs ({p.name})"
    # AdamW reuses Adam's kernel
    assert fused.FusedOptimizer in AdamW.__mro__ and AdamW.fused_kernel is not Adam.fused_kernel
