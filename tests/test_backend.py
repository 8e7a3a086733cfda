"""The array-module switch (``neural_arch.backend``) and the fake CuPy it is tested with.

The fake device (``tests/fake_cupy.py``) stands in for CuPy on machines without a
GPU; the first block of tests pins down that it behaves like CuPy where it matters,
the rest test the backend through it.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
import neural_arch.functional as F
from neural_arch import backend
from neural_arch.backend import DeviceError
from tests import fake_cupy
from tests.fake_cupy import FakeArray, fakecupy

fake_cupy.register()

no_cupy = pytest.mark.skipif(backend.cupy_available(), reason="CuPy with a GPU is present")


def fake(a):
    """A fake device array holding a copy of ``a``."""
    return fakecupy.asarray(np.asarray(a, dtype=np.float64))


# ---- the fake behaves like CuPy where it matters ---------------------------------------

def test_fake_array_is_not_a_numpy_array_and_refuses_implicit_conversion():
    a = fake([1.0, 2.0])
    assert not isinstance(a, np.ndarray)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.array([a, a])
    np.testing.assert_array_equal(a.get(), [1.0, 2.0])
    np.testing.assert_array_equal(fakecupy.asnumpy(a), [1.0, 2.0])


@pytest.mark.parametrize("mix", [
    lambda a, h: a + h, lambda a, h: h + a, lambda a, h: h * a, lambda a, h: a < h,
    lambda a, h: fakecupy.exp(h), lambda a, h: fakecupy.maximum(a, h),
    lambda a, h: fakecupy.concatenate([a, h]), lambda a, h: fakecupy.zeros_like(h),
    lambda a, h: fakecupy.matmul(h, a), lambda a, h: a.dot(h),
], ids=["fake+np", "np+fake", "np*fake", "fake<np", "exp", "maximum", "concatenate",
        "zeros_like", "matmul", "dot"])
def test_fake_refuses_host_arrays_like_cupy(mix):
    a, h = fake([1.0, 2.0]), np.ones(2)
    with pytest.raises(TypeError, match="NumPy array|Implicit conversion"):
        mix(a, h)


def test_fake_takes_scalars_and_gives_device_arrays():
    a = fake([[1.0, 2.0], [3.0, 4.0]])
    for r in (a + 1, 2.0 * a, a * np.float32(2), np.float64(1) - a, a ** 2,
              fakecupy.add(a, np.array(2.0)), np.exp(a), np.sum(a), np.concatenate([a, a]),
              a.sum(), a.max(axis=0), a[0], a[1, 1], a > 2):
        assert type(r) is FakeArray
    assert a.sum().shape == () and a[1, 1].shape == ()       # 0-d arrays, never scalars
    assert float(a.sum()) == 10.0 and int(a[0, 1]) == 2 and bool(a[1, 1] > 3)
    with pytest.raises(TypeError, match="no implementation found"):
        np.savetxt("unused.txt", a)                             # not in (fake) CuPy


def test_fake_views_and_in_place_ops_share_memory():
    a = fake(np.arange(6.0))
    v = a.reshape(2, 3)
    v[0, 1] = 10.0
    a += 1
    np.testing.assert_array_equal(v.get(), [[1, 11, 3], [4, 5, 6]])
    assert v.base is not None and a.base is None
    t = fakecupy.zeros(3)
    fakecupy.add.at(t, np.array([0, 2, 0]), fake([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(t.get(), [4.0, 0.0, 2.0])


def test_fake_data_attribute_is_a_pointer_not_the_array():
    a = fake([1.0])
    assert not isinstance(a.data, (FakeArray, np.ndarray))   # as cupy.ndarray.data


def test_fake_random_stream_differs_from_numpy_for_the_same_seed():
    f = fakecupy.random.default_rng(3).standard_normal(4)
    assert type(f) is FakeArray
    np.testing.assert_array_equal(f.get(), fakecupy.random.default_rng(3).standard_normal(4).get())
    assert not np.allclose(f.get(), np.random.default_rng(3).standard_normal(4))


# ---- get_array_module, device_of, asnumpy, to_device ---------------------------------

def test_get_array_module_of_host_values_is_numpy():
    assert backend.get_array_module() is np
    assert backend.get_array_module(np.ones(2)) is np
    assert backend.get_array_module(na.Tensor([1.0])) is np
    assert backend.get_array_module(1, 2.5, np.float32(1), None, True) is np


def test_get_array_module_of_device_values():
    a = fake([1.0])
    assert backend.get_array_module(a) is fakecupy
    assert backend.get_array_module(na.Tensor(a)) is fakecupy
    assert backend.get_array_module(np.ones(2), 3.0, a) is fakecupy
    assert backend.get_array_module(na.Tensor([1.0]), na.Tensor([1.0]).to("fake")) is fakecupy


def test_device_of():
    assert backend.device_of(np.ones(2)) == "cpu"
    assert backend.device_of(3.0) == "cpu"
    assert backend.device_of(na.Tensor([1.0])) == "cpu"
    assert backend.device_of(fake([1.0])) == "fake:0"
    assert backend.device_of(na.Tensor(fake([1.0]))) == "fake:0"
    assert na.Tensor(fake([1.0])).device == "fake:0"
    with pytest.raises(TypeError, match="expected an array"):
        backend.device_of(object())


def test_asnumpy():
    h = np.ones(3)
    assert backend.asnumpy(h) is h
    a = fake([1.0, 2.0])
    out = backend.asnumpy(a)
    assert type(out) is np.ndarray
    out[0] = 99.0                                    # a copy: the device array is untouched
    np.testing.assert_array_equal(a.get(), [1.0, 2.0])
    np.testing.assert_array_equal(backend.asnumpy(na.Tensor(a)), [1.0, 2.0])
    np.testing.assert_array_equal(backend.asnumpy([1, 2]), [1, 2])


def test_to_device_round_trip():
    h = np.arange(4.0)
    assert backend.to_device(h, "cpu") is h                  # already there: no copy
    d = backend.to_device(h, "fake")
    assert type(d) is FakeArray and backend.device_of(d) == "fake:0"
    h[0] = 50.0                                              # the upload was a copy
    np.testing.assert_array_equal(d.get(), [0.0, 1.0, 2.0, 3.0])
    assert backend.to_device(d, "fake") is d
    assert backend.to_device(d, "fake:0") is d
    back = backend.to_device(d, "cpu")
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(backend.to_device([1.0, 2.0], "fake").get(), [1.0, 2.0])


def test_array_module_for():
    assert backend.array_module_for("cpu") is np
    assert backend.array_module_for("fake") is fakecupy
    with na.use_device("fake"):
        assert backend.array_module_for() is fakecupy


# ---- default device -------------------------------------------------------------------

def test_set_default_device_and_restore():
    assert backend.get_default_device() == "cpu"
    try:
        na.set_default_device("fake")
        assert backend.get_default_device() == "fake"
        assert na.Tensor([1.0, 2.0]).device == "fake:0"
        assert na.zeros(2).device == "fake:0"
    finally:
        na.set_default_device("cpu")
    assert na.Tensor([1.0]).device == "cpu"


def test_set_default_device_rejects_bad_devices_and_keeps_the_old_one():
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        na.set_default_device("tpu")
    assert backend.get_default_device() == "cpu"


def test_use_device_restores_even_after_an_error_and_nests():
    with na.use_device("fake"):
        assert na.ones(1).device == "fake:0"
        with na.use_device("cpu"):
            assert na.ones(1).device == "cpu"
        assert na.ones(1).device == "fake:0"
    assert backend.get_default_device() == "cpu"
    with pytest.raises(RuntimeError, match="boom"):
        with na.use_device("fake"):
            raise RuntimeError("boom")
    assert backend.get_default_device() == "cpu"
    assert na.ones(1).device == "cpu"


def test_explicit_device_beats_the_default():
    with na.use_device("fake"):
        assert na.Tensor([1.0], device="cpu").device == "cpu"
    assert na.Tensor([1.0], device="fake").device == "fake:0"


# ---- bad devices ------------------------------------------------------------------------

@no_cupy
@pytest.mark.parametrize("call", [
    lambda: backend.to_device(np.ones(2), "cuda"),
    lambda: backend.to_device(np.ones(2), "cuda:1"),
    lambda: na.Tensor([1.0]).to("cuda"),
    lambda: na.Tensor([1.0]).cuda(),
    lambda: na.Tensor([1.0], device="cuda"),
    lambda: na.zeros(2, device="cuda"),
    lambda: na.set_default_device("cuda"),
    lambda: na.use_device("cuda").__enter__(),
    backend.require_cupy,
], ids=["to_device", "to_device-1", "Tensor.to", "Tensor.cuda", "Tensor(device)", "zeros",
        "set_default_device", "use_device", "require_cupy"])
def test_cuda_without_cupy_raises_with_an_install_hint(call):
    with pytest.raises(DeviceError, match=r"CuPy.*pip install"):
        call()
    assert backend.get_default_device() == "cpu"


@no_cupy
def test_cupy_available_is_false_without_cupy():
    assert backend.cupy_available() is False
    assert na.cupy_available() is False


def test_unknown_device_names_what_exists():
    with pytest.raises(DeviceError, match=r"unknown device 'tpu:0'.*'cpu'"):
        backend.to_device(np.ones(1), "tpu:0")
    with pytest.raises(DeviceError, match="bad device index"):
        backend.to_device(np.ones(1), "fake:x")
    with pytest.raises(TypeError, match="device must be a string"):
        backend.to_device(np.ones(1), 0)


# ---- random generators -----------------------------------------------------------------

@pytest.mark.parametrize("xp", [np, fakecupy], ids=["numpy", "fake"])
def test_manual_seed_repeats_the_numbers_of_each_backend(xp):
    na.manual_seed(123)
    first = backend.asnumpy(backend.default_generator(xp).standard_normal(5))
    na.manual_seed(123)
    again = backend.asnumpy(backend.default_generator(xp).standard_normal(5))
    na.manual_seed(124)
    other = backend.asnumpy(backend.default_generator(xp).standard_normal(5))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_manual_seed_drives_random_tensors_on_the_fake_device():
    na.manual_seed(7)
    a = na.randn(4, device="fake")
    na.manual_seed(7)
    b = na.randn(4, device="fake")
    assert a.device == "fake:0"
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3", None])
def test_manual_seed_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        na.manual_seed(seed)


# ---- cached kernels -----------------------------------------------------------------------

@no_cupy
def test_cached_kernel_refuses_without_cupy_and_never_builds():
    built = []

    @backend.cached_kernel
    def make_kernel(n):
        built.append(n)
        return object()

    with pytest.raises(DeviceError, match="CuPy"):
        make_kernel(3)
    assert built == []


# ---- spelling helpers ------------------------------------------------------------------------

@pytest.mark.parametrize("to", [lambda a: a, fake], ids=["numpy", "fake"])
def test_scatter_add_accumulates_repeated_indices(to):
    target = to(np.zeros(4))
    out = backend.scatter_add(target, np.array([0, 1, 0, 3, 0]), to([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert out is target
    np.testing.assert_array_equal(backend.asnumpy(target), [9.0, 2.0, 0.0, 4.0])
    grid = to(np.zeros((2, 3)))
    backend.scatter_add(grid, (np.array([1, 1, 0]), np.array([2, 2, 0])), to([1.0, 1.0, 5.0]))
    np.testing.assert_array_equal(backend.asnumpy(grid), [[5, 0, 0], [0, 0, 2]])


@pytest.mark.parametrize("to", [lambda a: a, fake], ids=["numpy", "fake"])
def test_sliding_window_view(to):
    w = backend.sliding_window_view(to(np.arange(5.0)), 3)
    assert backend.get_array_module(w) is backend.get_array_module(to(np.ones(1)))
    np.testing.assert_array_equal(backend.asnumpy(w), [[0, 1, 2], [1, 2, 3], [2, 3, 4]])


@pytest.mark.parametrize("to", [lambda a: a, fake], ids=["numpy", "fake"])
def test_erf_on_each_backend(to):
    from math import erf
    x = [-1.5, 0.0, 0.3, 2.0]
    np.testing.assert_allclose(backend.asnumpy(backend.erf(to(x))), [erf(v) for v in x],
                               rtol=1e-14)


# ---- tensors across devices ----------------------------------------------------------------

@pytest.mark.parametrize("op", [
    lambda d, c: F.add(d, c), lambda d, c: c * d, lambda d, c: F.matmul(c, d),
    lambda d, c: F.maximum(d, c), lambda d, c: F.where(c.data > 0, d, c),
], ids=["add", "mul", "matmul", "maximum", "where"])
def test_mixing_devices_in_an_op_names_both(op):
    d = na.Tensor([[1.0, 2.0], [3.0, 4.0]]).to("fake")
    c = na.Tensor([[1.0, -1.0], [0.5, 2.0]])
    with pytest.raises(DeviceError, match=r"different devices.*'cpu'.*'fake:0'"):
        op(d, c)


def test_to_fake_and_back_keeps_values_and_gradient_reaches_the_cpu_leaf():
    x = na.Tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True, dtype="float64")
    d = x.to("fake")
    assert d.device == "fake:0" and type(d.data) is FakeArray
    np.testing.assert_array_equal(d.numpy(), x.numpy())
    assert d.to("fake") is d                                 # already there
    y = F.sum(F.tanh(d) * d)
    back = y.to("cpu")
    assert back.device == "cpu" and type(back.data) is np.ndarray
    back.backward()
    assert x.grad.device == "cpu" and type(x.grad.data) is np.ndarray
    t = np.tanh(x.numpy())
    np.testing.assert_allclose(x.grad.numpy(), t + x.numpy() * (1 - t * t), rtol=1e-12)


def test_round_trip_cpu_fake_cpu_is_identity_in_value_and_gradient():
    x = na.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.to("fake").to("cpu")
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    (y * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_fake_leaf_gets_a_fake_gradient():
    x = na.Tensor([1.0, 2.0], requires_grad=True, device="fake")
    (x * x).sum().backward()
    assert x.grad.device == "fake:0"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_repr_and_item_of_a_fake_tensor():
    t = na.Tensor([1.5], device="fake")
    assert "device='fake:0'" in repr(t)
    assert t.item() == 1.5 and float(t) == 1.5
    np.testing.assert_array_equal(np.asarray(t), [1.5])     # Tensor.__array__: explicit copy
