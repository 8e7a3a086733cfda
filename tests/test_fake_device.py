"""Every public op, and the engine, on the fake CuPy device, compared with the CPU.

The fake CuPy (``tests/fake_cupy.py``) refuses to mix NumPy arrays into device
arrays, as CuPy does, so an op that builds a host array with ``np.`` where it
should use ``xp = get_array_module(x)`` fails here on a machine without a GPU.

``OPS`` is the table that drives it: op name -> cases. A case runs the op on
float64 inputs on one device, then its backward and the backward of its backward
(``create_graph=True``), and every result must equal the CPU's and live on the
device. ``test_every_public_op_is_in_the_table`` fails for any name of
``neural_arch.functional.__all__`` that the table lacks, so a new op cannot slip
through. ``tests/test_cupy.py`` runs the same table and checks on real CuPy.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

import neural_arch as na
import neural_arch.functional as F
from neural_arch import backend
from neural_arch.core import creation
from tests import fake_cupy

fake_cupy.register()

#: The devices this file runs on; ``tests/test_cupy.py`` runs ``'cuda'``.
DEVICES = ["cpu", "fake"]


class Place:
    """Puts constants (masks, index arrays) on the device a case runs on."""

    def __init__(self, device):
        self.device = device

    def __call__(self, a):
        """The array ``a`` on this device (a raw array, not a Tensor)."""
        return backend.to_device(np.asarray(a), self.device)

    def tensor(self, a):
        """The array ``a`` as a constant Tensor on this device."""
        return na.Tensor(self(a))


class Case:
    """One way to call an op: ``fn(on, *tensors)`` on inputs of the given shapes.

    ``bounds`` maps an input index to the (low, high) of its uniform values
    (default (-2, 2)); ``grad=False`` for ops without a gradient (only the
    forward is compared).
    """

    def __init__(self, fn, *shapes, bounds=None, grad=True):
        self.fn = fn
        self.shapes = shapes
        self.bounds = bounds or {}
        self.grad = grad


C = Case
POS = {0: (0.3, 2.0)}            # inputs that must be positive (log, sqrt, ...)
MASK34 = np.array([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 0]], dtype=bool)
ZEROS34 = np.array([[1, 0, 1, 1], [1, 1, 1, 1], [0, 1, 0, 1]], dtype=np.float64)
ZERO_ROW = np.array([[1.0], [0.0], [1.0]])
IDX32 = np.array([[0, 3], [2, 2], [1, 0]])
INF = float("inf")

OPS = {
    # ---- math ------------------------------------------------------------------
    "add": [C(lambda on, x, y: F.add(x, y), (3, 4), (4,)),
            C(lambda on, x: F.add(2.5, x), (3,))],
    "sub": [C(lambda on, x, y: F.sub(x, y), (2, 1, 3), (4, 1)),
            C(lambda on, x: F.sub(1.5, x), (3,))],
    "mul": [C(lambda on, x, y: F.mul(x, y), (3, 4), (4,)),
            C(lambda on, x: F.mul(x, 3.0), ())],
    "div": [C(lambda on, x, y: F.div(x, y), (3, 4), (3, 1), bounds={1: (0.5, 2.0)}),
            C(lambda on, x: F.div(2.0, x), (3,), bounds=POS)],
    "neg": [C(lambda on, x: F.neg(x), (3, 2))],
    "pow": [C(lambda on, x, y: F.pow(x, y), (3, 4), (4,), bounds=POS),
            C(lambda on, x: F.pow(x, 3), (5,)),
            C(lambda on, x: F.pow(2.0, x), (5,))],
    "abs": [C(lambda on, x: F.abs(x), (3, 4))],
    "maximum": [C(lambda on, x, y: F.maximum(x, y), (3, 4), (4,)),
                C(lambda on, x: F.maximum(F.clip(x, -0.5, None), -0.5), (6,))],  # ties
    "minimum": [C(lambda on, x, y: F.minimum(x, y), (3, 4), (3, 1)),
                C(lambda on, x: F.minimum(F.clip(x, None, 0.5), 0.5), (6,))],
    "clip": [C(lambda on, x: F.clip(x, -0.5, 0.7), (3, 4)),
             C(lambda on, x: F.clip(x, None, 0.1), (5,)),
             C(lambda on, x, lo, hi: F.clip(x, lo, hi), (3, 4), (4,), (3, 1),
               bounds={1: (-1.5, 0.0), 2: (0.0, 1.5)})],
    "clamp": [C(lambda on, x: F.clamp(x, min=-0.3), (3, 4))],
    "where": [C(lambda on, x, y: F.where(on(MASK34), x, y), (3, 4), (4,)),
              C(lambda on, x: F.where(on.tensor(MASK34), x, 0.0), (3, 4))],
    "exp": [C(lambda on, x: F.exp(x), (3, 4))],
    "log": [C(lambda on, x: F.log(x), (3, 4), bounds=POS)],
    "log1p": [C(lambda on, x: F.log1p(x), (3, 4), bounds={0: (-0.5, 2.0)})],
    "expm1": [C(lambda on, x: F.expm1(x), (3, 4))],
    "sqrt": [C(lambda on, x: F.sqrt(x), (3, 4), bounds=POS)],
    "square": [C(lambda on, x: F.square(x), (3, 4))],
    "sin": [C(lambda on, x: F.sin(x), (3, 4))],
    "cos": [C(lambda on, x: F.cos(x), (3, 4))],
    "tanh": [C(lambda on, x: F.tanh(x), (3, 4))],
    "erf": [C(lambda on, x: F.erf(x), (3, 4))],
    "sign": [C(lambda on, x: F.sign(x), (3, 4), grad=False)],
    # ---- reductions --------------------------------------------------------------
    "sum": [C(lambda on, x: F.sum(x), (3, 4)),
            C(lambda on, x: F.sum(x, axis=(0, 2), keepdims=True), (2, 3, 4))],
    "mean": [C(lambda on, x: F.mean(x, axis=-1), (3, 4)),
             C(lambda on, x: F.mean(x), (2, 3))],
    "var": [C(lambda on, x: F.var(x, axis=0), (3, 4)),
            C(lambda on, x: F.var(x, correction=0), (3, 4))],
    "std": [C(lambda on, x: F.std(x, axis=1, keepdims=True), (3, 4))],
    "max": [C(lambda on, x: F.max(x), (3, 4)),
            C(lambda on, x: F.max(F.clip(x, None, 0.5), axis=1, keepdims=True), (3, 6))],
    "min": [C(lambda on, x: F.min(x, axis=0), (3, 4)),
            C(lambda on, x: F.min(F.clip(x, -0.5, None)), (3, 6))],
    "prod": [C(lambda on, x: F.prod(x, axis=1), (3, 4)),
             C(lambda on, x: F.prod(x * on.tensor(ZEROS34), axis=1), (3, 4))],   # 0, 1, 2 zeros
    "logsumexp": [C(lambda on, x: F.logsumexp(x, axis=1), (3, 4)),
                  C(lambda on, x: F.logsumexp(x * 1e4), (5,))],
    "norm": [C(lambda on, x: F.norm(x), (3, 4)),
             C(lambda on, x: F.norm(x, 1, axis=1), (3, 4)),
             C(lambda on, x: F.norm(x, INF, axis=0), (3, 4)),
             C(lambda on, x: F.norm(x, -INF, axis=1, keepdims=True), (3, 4)),
             C(lambda on, x: F.norm(x, "fro", axis=(0, 1)), (3, 4)),
             C(lambda on, x: F.norm(x * on.tensor(ZERO_ROW), axis=1), (3, 4))],  # at 0
    "cumsum": [C(lambda on, x: F.cumsum(x, axis=1), (3, 4)),
               C(lambda on, x: F.cumsum(x), (3, 4))],
    "argmax": [C(lambda on, x: F.argmax(x), (3, 4), grad=False),
               C(lambda on, x: F.argmax(x, axis=1, keepdims=True), (3, 4), grad=False)],
    "argmin": [C(lambda on, x: F.argmin(x, axis=0), (3, 4), grad=False)],
    # ---- shape ---------------------------------------------------------------------
    "reshape": [C(lambda on, x: F.reshape(x, (6, -1)), (2, 3, 4))],
    "transpose": [C(lambda on, x: F.transpose(x), (2, 3, 4)),
                  C(lambda on, x: F.transpose(x, (2, 0, 1)), (2, 3, 4))],
    "permute": [C(lambda on, x: F.permute(x, (1, 0, 2)), (2, 3, 4))],
    "swapaxes": [C(lambda on, x: F.swapaxes(x, 0, 2), (2, 3, 4))],
    "broadcast_to": [C(lambda on, x: F.broadcast_to(x, (2, 3, 4)), (3, 1))],
    "expand": [C(lambda on, x: F.expand(x, 2, 3, 4), (3, 1))],
    "sum_to": [C(lambda on, x: F.sum_to(x, (3, 1)), (2, 3, 4))],
    "squeeze": [C(lambda on, x: F.squeeze(x, 1), (3, 1, 4)),
                C(lambda on, x: F.squeeze(x), (1, 3, 1))],
    "unsqueeze": [C(lambda on, x: F.unsqueeze(x, -1), (3, 4))],
    "flatten": [C(lambda on, x: F.flatten(x, 1), (2, 3, 4))],
    "concat": [C(lambda on, x, y: F.concat([x, y], axis=1), (2, 3), (2, 2))],
    "cat": [C(lambda on, x, y: F.cat((x, y)), (2, 3), (1, 3))],
    "stack": [C(lambda on, x, y: F.stack([x, y], axis=1), (2, 3), (2, 3))],
    "split": [C(lambda on, x: F.split(x, 2), (6, 4)),
              C(lambda on, x: F.split(x, [1, 3], axis=1)[1], (6, 4))],   # unused outputs
    "chunk": [C(lambda on, x: F.chunk(x, 3), (6, 4)),
              C(lambda on, x: F.chunk(x, 2, axis=1)[0], (6, 4))],
    "getitem": [C(lambda on, x: F.getitem(x, (slice(1, None), slice(None, None, -1))), (3, 4)),
                C(lambda on, x: F.getitem(x, (Ellipsis, None, 0)), (2, 3, 4)),
                C(lambda on, x: F.getitem(x, on([0, 2, 0, 0])), (3, 4)),         # repeats
                C(lambda on, x: F.getitem(x, on.tensor([[1, 1], [0, 2]])), (3, 4)),
                C(lambda on, x: F.getitem(x, (slice(None), on([3, 3, 0]))), (3, 4)),
                C(lambda on, x: F.getitem(x, on(MASK34)), (3, 4)),
                C(lambda on, x: F.getitem(x, [2, 2, 1]), (3, 4)),                # a list
                C(lambda on, x: F.getitem(x, np.array([0, 0, 1])), (3, 4))],     # host index
    "pad": [C(lambda on, x: F.pad(x, ((1, 1), (0, 2)), value=0.5), (3, 4)),
            C(lambda on, x: F.pad(x, ((0, 0), (2, 1)), mode="reflect"), (3, 4)),
            C(lambda on, x: F.pad(x, 1, mode="edge"), (3, 4))],
    "flip": [C(lambda on, x: F.flip(x, 1), (3, 4)),
             C(lambda on, x: F.flip(x), (2, 3))],
    "repeat": [C(lambda on, x: F.repeat(x, 2, axis=1), (3, 4)),
               C(lambda on, x: F.repeat(x, [1, 2, 0], axis=0), (3, 4)),
               C(lambda on, x: F.repeat(x, 2), (2, 3))],
    "tile": [C(lambda on, x: F.tile(x, (2, 1, 2)), (3, 4))],
    "gather": [C(lambda on, x: F.gather(x, 1, on.tensor(IDX32)), (3, 4))],
    "take_along_axis": [C(lambda on, x: F.take_along_axis(x, on(IDX32), axis=1), (3, 4))],
    "scatter_add": [C(lambda on, x, s: F.scatter_add(x, 1, on.tensor(IDX32), s), (3, 4),
                      (3, 2))],
    "astype": [C(lambda on, x: F.astype(x, "float32"), (3, 4))],
    "to_device": [C(lambda on, x: F.to_device(F.to_device(x, "cpu") * 2.0, on.device),
                    (3, 4))],
    # ---- linalg ----------------------------------------------------------------------
    "matmul": [C(lambda on, a, b: F.matmul(a, b), (3, 4), (4, 2)),
               C(lambda on, a, b: F.matmul(a, b), (4,), (4, 2)),
               C(lambda on, a, b: F.matmul(a, b), (2, 3, 4), (4,)),
               C(lambda on, a, b: F.matmul(a, b), (2, 1, 3, 4), (5, 4, 2))],
    "einsum": [C(lambda on, a, b: F.einsum("ij,jk->ik", a, b), (3, 4), (4, 2)),
               C(lambda on, a: F.einsum("ii->i", a), (3, 3)),
               C(lambda on, a, b: F.einsum("bij,bjk->bik", a, b), (2, 3, 4), (2, 4, 2)),
               C(lambda on, a, b: F.einsum("i,j->ij", a, b), (3,), (4,)),
               C(lambda on, a: F.einsum("ijk->", a), (2, 3, 4))],
    # ---- activations -----------------------------------------------------------------
    "sigmoid": [C(lambda on, x: F.sigmoid(x), (3, 4)),
                C(lambda on, x: F.sigmoid(x * 1e4), (6,))],
    "softplus": [C(lambda on, x: F.softplus(x), (3, 4)),
                 C(lambda on, x: F.softplus(x, beta=2.0, threshold=1.0), (3, 4))],
    "relu": [C(lambda on, x: F.relu(x), (3, 4))],
    "leaky_relu": [C(lambda on, x: F.leaky_relu(x, 0.1), (3, 4))],
    "elu": [C(lambda on, x: F.elu(x, alpha=1.5), (3, 4))],
    "selu": [C(lambda on, x: F.selu(x), (3, 4))],
    "gelu": [C(lambda on, x: F.gelu(x), (3, 4)),
             C(lambda on, x: F.gelu(x, approximate="tanh"), (3, 4))],
    "silu": [C(lambda on, x: F.silu(x), (3, 4))],
    "mish": [C(lambda on, x: F.mish(x), (3, 4))],
    "hardtanh": [C(lambda on, x: F.hardtanh(x, -0.5, 1.5), (3, 4))],
    "softmax": [C(lambda on, x: F.softmax(x), (3, 4)),
                C(lambda on, x: F.softmax(x, axis=0), (3, 4))],
    "log_softmax": [C(lambda on, x: F.log_softmax(x, axis=1), (3, 4)),
                    C(lambda on, x: F.log_softmax(x * 1e4), (5,))],
    # ---- layers ----------------------------------------------------------------------
    "linear": [C(lambda on, x, w, b: F.linear(x, w, b), (2, 3), (4, 3), (4,)),
               C(lambda on, x, w: F.linear(x, w), (2, 2, 3), (4, 3))],
    "bilinear": [C(lambda on, x1, x2, w, b: F.bilinear(x1, x2, w, b), (2, 3), (2, 4),
                   (5, 3, 4), (5,)),
                 C(lambda on, x1, x2, w: F.bilinear(x1, x2, w), (2, 3), (2, 4), (5, 3, 4))],
    "dropout": [C(lambda on, x: F.dropout(x, 0.0), (3, 4)),
                C(lambda on, x: F.dropout(x, 0.5, training=False), (3, 4)),
                C(lambda on, x: _dropout_residual(x, 0.25), (4, 5))],
    "embedding": [C(lambda on, w: F.embedding(on.tensor([[0, 2], [4, 2]]), w), (5, 3)),
                  C(lambda on, w: F.embedding(on([1, 1, 3]), w, padding_idx=1), (5, 3))],
    "batch_norm": [C(lambda on, x, g, b: _batch_norm_train(on, x, g, b), (4, 3, 2), (3,), (3,)),
                   C(lambda on, x, g, b: F.batch_norm(x, on.tensor([0.1, -0.2, 0.3]),
                                                      on.tensor([1.5, 0.5, 2.0]), g, b),
                     (4, 3), (3,), (3,))],
    "layer_norm": [C(lambda on, x, w, b: F.layer_norm(x, (4,), w, b), (2, 3, 4), (4,), (4,)),
                   C(lambda on, x: F.layer_norm(x, (3, 4)), (2, 3, 4))],
    "group_norm": [C(lambda on, x, w, b: F.group_norm(x, 2, w, b), (2, 4, 3), (4,), (4,))],
    # ---- convolution and pooling -------------------------------------------------------
    "conv1d": [C(lambda on, x, w, b: F.conv1d(x, w, b, stride=2, padding=1), (2, 2, 7),
                 (3, 2, 3), (3,))],
    "conv2d": [C(lambda on, x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, groups=2),
                 (2, 4, 5, 4), (4, 2, 3, 2), (4,)),
               C(lambda on, x, w: F.conv2d(x, w, padding="same", dilation=2), (1, 2, 5, 5),
                 (3, 2, 2, 3))],
    "conv_transpose1d": [C(lambda on, x, w: F.conv_transpose1d(x, w, stride=2, dilation=2),
                           (2, 2, 3), (2, 3, 2))],
    "conv_transpose2d": [C(lambda on, x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                                  output_padding=1),
                           (1, 2, 3, 3), (2, 3, 3, 3), (3,))],
    "max_pool1d": [C(lambda on, x: F.max_pool1d(x, 3, 2, 1, ceil_mode=True), (2, 3, 8))],
    "max_pool2d": [C(lambda on, x: F.max_pool2d(x, 3, 2, 1), (2, 2, 5, 5)),
                   C(lambda on, x: F.max_pool2d(x, 2, return_indices=True)[1], (1, 2, 4, 4),
                     grad=False)],
    "avg_pool1d": [C(lambda on, x: F.avg_pool1d(x, 3, 2, 1, count_include_pad=False),
                     (2, 3, 8))],
    "avg_pool2d": [C(lambda on, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                count_include_pad=False), (2, 2, 5, 5))],
    "adaptive_avg_pool1d": [C(lambda on, x: F.adaptive_avg_pool1d(x, 3), (2, 3, 7))],
    "adaptive_avg_pool2d": [C(lambda on, x: F.adaptive_avg_pool2d(x, (3, 2)), (2, 2, 5, 5))],
}


def _dropout_residual(x, p):
    """Dropout draws other masks on other devices, so compare what must hold on any:
    every output element is 0 or ``x / (1 - p)``. The residual is 0 (and so is its
    gradient) wherever dropout is right; the op still runs forward and backward twice."""
    y = F.dropout(x, p)
    kept = y.data != 0
    return y - F.where(kept, x / (1 - p), 0.0)


def _batch_norm_train(on, x, g, b):
    """Batch norm in training, with the running statistics it updates in place as outputs."""
    running_mean, running_var = on.tensor(np.zeros(3)), on.tensor(np.ones(3))
    y = F.batch_norm(x, running_mean, running_var, g, b, training=True)
    return y, running_mean, running_var

#: (op name, case index) pairs, the parameters of the per-op tests.
CASES = [(name, i) for name in OPS for i in range(len(OPS[name]))]


def full_device(device):
    """``'fake'`` -> ``'fake:0'``; ``'cpu'`` stays ``'cpu'``."""
    return device if device == "cpu" or ":" in device else device + ":0"


def host(t, device):
    """The values of Tensor ``t`` on the host, after checking that it lives on ``device``."""
    assert isinstance(t, na.Tensor), f"expected a Tensor, got {type(t).__name__}"
    assert t.device == full_device(device), \
        f"a result lives on {t.device}, expected {full_device(device)}"
    xp = backend.array_module_for(device)
    assert isinstance(t.data, xp.ndarray), \
        f"a result holds {type(t.data).__name__}, not an array of the device's module"
    return t.numpy()


def run_case(case, device, seed=0):
    """Run one case on ``device``: outputs, gradients and second-order gradients on the host.

    The gradients are those of ``sum(w * out)`` for a random ``w``; the second-order
    ones are those of ``sum(v * grad)`` for a random ``v``, through the graph that
    backward recorded with ``create_graph=True``.
    """
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(*case.bounds.get(i, (-2.0, 2.0)), size=s)
              for i, s in enumerate(case.shapes)]
    on = Place(device)
    xs = [na.Tensor(on(a), requires_grad=case.grad) for a in arrays]
    with na.autograd.grad_clip(None):
        outs = case.fn(on, *xs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        res = {"out": [host(o, device) for o in outs]}
        for a, x in zip(arrays, xs):
            np.testing.assert_array_equal(x.numpy(), a, err_msg="the op changed its input")
        if not case.grad:
            return res
        live = [o for o in outs if o.requires_grad]
        ws = [na.Tensor(on(rng.standard_normal(o.shape).astype(o.dtype))) for o in live]
        gs = na.autograd.grad(live, xs, ws, create_graph=True, allow_unused=True)
        res["grad"] = [np.zeros(x.shape) if g is None else host(g, device)
                       for g, x in zip(gs, xs)]
        terms = [(g * na.Tensor(on(rng.standard_normal(g.shape)))).sum()
                 for g in gs if g is not None and g.requires_grad]
        g2 = [None] * len(xs)
        if terms:
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            g2 = na.autograd.grad(total, xs, allow_unused=True)
        res["grad2"] = [np.zeros(x.shape) if g is None else host(g, device)
                        for g, x in zip(g2, xs)]
    return res


def assert_same(got, want, device, what):
    """Device results equal the CPU's (to rounding: real GPUs round differently)."""
    for key in want:
        for i, (g, w) in enumerate(zip(got[key], want[key])):
            assert g.shape == w.shape and g.dtype == w.dtype, \
                f"{what}: {key}[{i}] is {g.dtype}{g.shape} on {device}, {w.dtype}{w.shape} on cpu"
            tol = 1e-5 if g.dtype == np.float32 else 1e-9
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol * 1e-3,
                                       err_msg=f"{what}: {key}[{i}] differs on {device}")


def check_op_case(name, index, device):
    """Run ``OPS[name][index]`` on ``device`` and on the CPU and compare everything."""
    if name not in F.__all__:
        pytest.skip(f"{name} is not (yet) in neural_arch.functional.__all__")
    case = OPS[name][index]
    want = run_case(case, "cpu")
    got = run_case(case, device)
    assert_same(got, want, device, f"{name} case {index}")


# ---- the engine on a device ------------------------------------------------------------

def _leaf(a, device, requires_grad=True):
    return na.Tensor(backend.to_device(np.asarray(a, dtype=np.float64), device),
                     requires_grad=requires_grad)


def check_mlp(device):
    """A two-layer network: loss, and every parameter's gradient, equal the CPU's."""
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in [(4, 3), (3, 5), (5,), (5, 2), (4, 2)]]

    def run(dev):
        x, w1, b1, w2, target = [_leaf(a, dev, i in (1, 2, 3)) for i, a in enumerate(arrays)]
        h = F.tanh(F.matmul(x, w1) + b1)
        err = F.matmul(h, w2) - target
        loss = F.mean(err * err) + 0.1 * F.sum(F.relu(h))
        loss.backward()
        return [host(loss, dev)] + [host(p.grad, dev) for p in (w1, b1, w2)]

    for got, want in zip(run(device), run("cpu")):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def check_accumulation(device):
    """Gradients accumulate over two backward passes and stay on the device."""
    x = _leaf([0.5, -1.0, 2.0], device)
    for _ in range(2):
        (x * x).sum().backward()
    np.testing.assert_allclose(host(x.grad, device), 4 * np.array([0.5, -1.0, 2.0]))


def check_second_derivative(device):
    """``create_graph=True``: d/dx sum(d/dx f) for f = sum(x^3 tanh x), as on the CPU."""
    a = np.array([0.3, -1.2, 0.8, 2.0])

    def run(dev):
        x = _leaf(a, dev)
        f = F.sum(x ** 3 * F.tanh(x))
        (g,) = na.autograd.grad(f, x, create_graph=True)
        (h,) = na.autograd.grad(F.sum(g), x)
        return host(g, dev), host(h, dev)

    for got, want in zip(run(device), run("cpu")):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    t = np.tanh(a)
    np.testing.assert_allclose(run(device)[0], 3 * a**2 * t + a**3 * (1 - t**2), rtol=1e-9)


def check_clamp(device):
    """The automatic clamp: same clamped gradient and count as on the CPU."""
    def run(dev, create_graph):
        x = _leaf([1.0, -2.0, 3.0], dev)
        with na.autograd.grad_clip(10.0):
            y = F.sum(x * 100.0) + F.sum(x)
            (g,) = na.autograd.grad(y, x, create_graph=create_graph)
            count = na.autograd.last_clamped_count()
        return host(g, dev), count

    for create_graph in (False, True):
        (g, n), (g_cpu, n_cpu) = run(device, create_graph), run("cpu", create_graph)
        np.testing.assert_array_equal(g, g_cpu)
        assert n == n_cpu == 3
        np.testing.assert_array_equal(g, [11.0, 11.0, 11.0])   # 10 (clamped) + 1


def check_anomaly(device):
    """Anomaly mode finds a NaN made on the device and names the op."""
    x = _leaf([1.0, -1.0], device)
    with na.autograd.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(na.AnomalyError, match="Log"):
            F.log(x)


def check_gradcheck(device):
    """gradcheck and gradgradcheck run on device tensors."""
    x = _leaf([0.3, -0.7, 1.1], device)
    y = _leaf([[0.5, 0.1, -0.2], [0.4, -1.0, 0.9]], device)
    assert na.autograd.gradcheck(lambda a, b: F.tanh(F.matmul(b, a)), [x, y])
    assert na.autograd.gradgradcheck(lambda a, b: F.tanh(F.matmul(b, a)), [x, y])


#: Creation functions -> a call on a device (``dev``) and the dtype kind it must give.
CREATION = {
    "tensor": (lambda dev: na.tensor([[1, 2], [3, 4]], device=dev), "i"),
    "zeros": (lambda dev: na.zeros(2, 3, device=dev), "f"),
    "ones": (lambda dev: na.ones((2, 3), device=dev, dtype="float64"), "f"),
    "full": (lambda dev: na.full((2,), 7.0, device=dev), "f"),
    "empty": (lambda dev: na.empty(3, device=dev), "f"),
    "arange": (lambda dev: na.arange(5, device=dev), "i"),
    "linspace": (lambda dev: na.linspace(0, 1, 5, device=dev), "f"),
    "eye": (lambda dev: na.eye(3, device=dev), "f"),
    "rand": (lambda dev: na.rand(2, 3, device=dev), "f"),
    "randn": (lambda dev: na.randn(2, 3, device=dev, requires_grad=True), "f"),
    "randint": (lambda dev: na.randint(0, 5, (4,), device=dev), "i"),
    "zeros_like": (lambda dev: na.zeros_like(na.ones(2, device=dev)), "f"),
    "ones_like": (lambda dev: na.ones_like(na.ones(2, device=dev)), "f"),
    "full_like": (lambda dev: na.full_like(na.ones(2, device=dev), 3.0), "f"),
    "rand_like": (lambda dev: na.rand_like(na.ones(2, device=dev)), "f"),
    "randn_like": (lambda dev: na.randn_like(na.ones(2, device=dev)), "f"),
}


def check_creation(name, device):
    """A creation function with ``device=`` makes its array there, with the right dtype kind."""
    if name not in creation.__all__:
        pytest.skip(f"{name} is not (yet) in neural_arch.core.creation.__all__")
    call, kind = CREATION[name]
    t = call(device)
    host(t, device)
    assert t.dtype.kind == kind


# ---- the tests ---------------------------------------------------------------------------

def test_every_public_op_is_in_the_table():
    missing = sorted(set(F.__all__) - set(OPS))
    assert not missing, (f"public ops without a case in tests/test_fake_device.py OPS: "
                         f"{missing}; add one so they run on the fake and CuPy devices")


def test_every_creation_function_is_in_the_table():
    missing = sorted(set(creation.__all__) - set(CREATION))
    assert not missing, f"creation functions without a case in CREATION: {missing}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_op_matches_cpu(name, index, device):
    check_op_case(name, index, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("check", [check_mlp, check_accumulation, check_second_derivative,
                                   check_clamp, check_anomaly, check_gradcheck],
                         ids=lambda f: f.__name__[6:])
def test_engine_on_device(check, device):
    check(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(CREATION))
def test_creation_on_device(name, device):
    check_creation(name, device)


@settings(max_examples=15, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
def test_broadcasting_binary_ops_match_cpu_on_fake(shapes):
    """Broadcast gradients are summed back to each input's shape on the device too."""
    a, b = shapes.input_shapes
    for fn in (F.add, F.mul, F.maximum, lambda x, y: F.div(x, F.exp(y))):
        case = Case(lambda on, x, y: fn(x, y), a, b)
        assert_same(run_case(case, "fake"), run_case(case, "cpu"), "fake", f"{fn} {a} {b}")


def test_use_device_fake_makes_new_tensors_there():
    with na.use_device("fake"):
        assert na.Tensor([1.0, 2.0]).device == "fake:0"
        assert na.zeros(2).device == "fake:0"
    assert na.Tensor([1.0]).device == "cpu"


def test_host_array_in_a_device_op_is_refused():
    """The property the whole file relies on: a NumPy array meeting a fake one raises."""
    x = na.Tensor([1.0, 2.0]).to("fake")
    with pytest.raises(TypeError, match="NumPy array"):
        x.data + np.ones(2)
    with pytest.raises(TypeError):
        np.ones(2) * x.data
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(x.data)
