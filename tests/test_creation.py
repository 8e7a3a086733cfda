"""Creation functions: shapes, dtypes, devices, requires_grad, seeding, torch parity."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neural_arch as na
from neural_arch import backend
from tests.helpers import requires_torch, torch

SHAPED = [na.zeros, na.ones, na.empty, na.rand, na.randn]

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


# ---- shapes ---------------------------------------------------------------------------

@pytest.mark.parametrize("fn", SHAPED)
def test_shape_as_arguments_tuple_or_list(fn):
    assert fn(2, 3).shape == (2, 3)
    assert fn((2, 3)).shape == (2, 3)
    assert fn([2, 3]).shape == (2, 3)
    assert fn(4).shape == (4,)
    assert fn(()).shape == ()


@settings(max_examples=15, deadline=None)
@given(shape=shapes, value=st.floats(-10, 10))
def test_constant_creators_fill_any_shape(shape, value):
    np.testing.assert_array_equal(na.zeros(shape).numpy(), np.zeros(shape, np.float32))
    np.testing.assert_array_equal(na.ones(shape).numpy(), np.ones(shape, np.float32))
    np.testing.assert_array_equal(na.full(shape, value).numpy(),
                                  np.full(shape, value, np.float32))


@settings(max_examples=15, deadline=None)
@given(shape=shapes)
def test_random_creators_have_the_shape_and_range(shape):
    r = na.rand(shape)
    assert r.shape == shape and r.dtype == np.float32
    assert np.all((r.numpy() >= 0) & (r.numpy() < 1))
    assert na.randn(shape).shape == shape
    k = na.randint(-3, 4, shape)
    assert k.shape == shape and k.dtype == np.int64
    assert np.all((k.numpy() >= -3) & (k.numpy() < 4))


def test_full_accepts_an_int_size():
    np.testing.assert_array_equal(na.full(3, 2.5).numpy(), [2.5, 2.5, 2.5])


def test_eye_square_and_rectangular():
    np.testing.assert_array_equal(na.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(na.eye(2, 4).numpy(), np.eye(2, 4))


# ---- dtypes ---------------------------------------------------------------------------

def test_default_float_dtype_is_float32():
    for t in (na.zeros(2), na.ones(2), na.empty(2), na.full((2,), 1.5), na.rand(2),
              na.randn(2), na.linspace(0, 1, 3), na.eye(2), na.arange(0.0, 1.0, 0.5),
              na.tensor([1.5, 2.0])):
        assert t.dtype == np.float32


def test_set_default_dtype_changes_what_creators_make():
    na.set_default_dtype("float64")
    for t in (na.zeros(2), na.rand(2), na.randn(2), na.linspace(0, 1, 3),
              na.arange(0.5, 2), na.tensor([1.5]), na.Tensor([1, 2])):
        assert t.dtype == np.float64


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", na.float64, np.float32])
def test_dtype_argument_is_honoured(dtype):
    d = np.dtype(dtype)
    for t in (na.zeros(2, dtype=dtype), na.ones(2, dtype=dtype), na.rand(3, dtype=dtype),
              na.randn(3, dtype=dtype), na.full((2,), 1, dtype=dtype),
              na.arange(3, dtype=dtype), na.linspace(0, 1, 4, dtype=dtype),
              na.eye(2, dtype=dtype), na.tensor([1, 2], dtype=dtype)):
        assert t.dtype == d


def test_integer_and_bool_inference_follows_torch():
    assert na.arange(5).dtype == np.int64
    assert na.arange(1, 7, 2).dtype == np.int64
    assert na.arange(0, 2, 0.5).dtype == np.float32
    assert na.full((2,), 7).dtype == np.int64
    assert na.full((2,), True).dtype == np.bool_
    assert na.tensor([1, 2]).dtype == np.int64
    assert na.tensor([True, False]).dtype == np.bool_
    assert na.randint(5, (2,)).dtype == np.int64
    assert na.zeros(2, dtype="int32").dtype == np.int32


def test_tensor_keeps_the_dtype_of_numpy_arrays():
    assert na.tensor(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert na.tensor(np.zeros(2, dtype=np.float64)).dtype == np.float64
    assert na.tensor(np.float64(2.0)).dtype == np.float64


def test_tensor_class_turns_python_lists_into_float32():
    assert na.Tensor([1, 2, 3]).dtype == np.float32
    assert na.Tensor([[1.5, 2.0]]).dtype == np.float32
    assert na.Tensor(3).dtype == np.float32


def test_tensor_class_keeps_integer_numpy_arrays_integer():
    a = np.arange(4, dtype=np.int64)
    t = na.Tensor(a)
    assert t.dtype == np.int64
    assert t.data is a                      # no copy either


def test_like_functions_copy_shape_and_dtype():
    src = na.tensor(np.zeros((2, 3), dtype=np.float64))
    for fn in (na.zeros_like, na.ones_like, na.rand_like, na.randn_like):
        t = fn(src)
        assert t.shape == (2, 3) and t.dtype == np.float64 and t.device == "cpu"
    f = na.full_like(src, 4.0)
    np.testing.assert_array_equal(f.numpy(), np.full((2, 3), 4.0))
    assert na.zeros_like(src, dtype="float32").dtype == np.float32
    i = na.full_like(na.tensor([1, 2]), 2.7)
    assert i.dtype == np.int64 and i.tolist() == [2, 2]
    assert na.ones_like(np.zeros((1, 2), dtype=np.int32)).dtype == np.int32


def test_like_functions_do_not_inherit_requires_grad():
    src = na.zeros(2, requires_grad=True)
    assert not na.zeros_like(src).requires_grad
    assert na.zeros_like(src, requires_grad=True).requires_grad


# ---- values against torch ----------------------------------------------------------------

@requires_torch
@pytest.mark.parametrize("args", [(5,), (2, 9), (1, 10, 3), (0.0, 1.0, 0.1), (-1, 1, 0.3),
                                  (10, 0, -2), (0,)])
def test_arange_matches_torch(args):
    na.set_default_dtype("float64")
    got = na.arange(*args)
    want = torch.arange(*args)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    assert (got.dtype == np.int64) == (want.dtype == torch.int64)


@requires_torch
@pytest.mark.parametrize("args", [(0, 1, 5), (-2, 3, 1), (1, 1, 4), (3, -3, 7), (0, 1, 0)])
def test_linspace_matches_torch(args):
    np.testing.assert_allclose(na.linspace(*args, dtype="float64").numpy(),
                               torch.linspace(*args, dtype=torch.float64).numpy(),
                               rtol=1e-12, atol=1e-15)


@requires_torch
def test_eye_and_full_match_torch():
    np.testing.assert_array_equal(na.eye(3, 5).numpy(), torch.eye(3, 5).numpy())
    np.testing.assert_array_equal(na.full((2, 2), -1.25).numpy(),
                                  torch.full((2, 2), -1.25).numpy())


# ---- copies and requires_grad -------------------------------------------------------------

def test_tensor_copies_its_data():
    a = np.arange(3.0)
    t = na.tensor(a)
    t.data[0] = 99.0
    assert a[0] == 0.0
    src = na.tensor([1.0, 2.0], requires_grad=True)
    c = na.tensor(src)
    assert c.data is not src.data and c.is_leaf and not c.requires_grad


def test_requires_grad_makes_a_differentiable_leaf():
    for t in (na.zeros(2, requires_grad=True), na.rand(2, requires_grad=True),
              na.tensor([1.0], requires_grad=True), na.eye(2, requires_grad=True),
              na.full((2,), 1.0, requires_grad=True), na.linspace(0, 1, 2,
                                                                  requires_grad=True)):
        assert t.requires_grad and t.is_leaf
    x = na.ones(3, dtype="float64", requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])


@pytest.mark.parametrize("make", [
    lambda: na.arange(3, requires_grad=True),
    lambda: na.randint(0, 5, (2,), requires_grad=True),
    lambda: na.zeros(2, dtype="int64", requires_grad=True),
    lambda: na.tensor([1, 2], requires_grad=True),
    lambda: na.Tensor(np.arange(2), requires_grad=True),
])
def test_requires_grad_on_integer_tensor_raises(make):
    with pytest.raises(TypeError, match="floating-point"):
        make()


# ---- devices -------------------------------------------------------------------------------

def test_device_cpu_and_default_device():
    assert na.zeros(2, device="cpu").device == "cpu"
    assert na.zeros(2).device == backend.get_default_device() == "cpu"
    assert isinstance(na.rand(2, device="cpu").data, np.ndarray)


def test_unknown_device_raises_device_error():
    with pytest.raises(backend.DeviceError, match="unknown device 'tpu'"):
        na.zeros(2, device="tpu")
    with pytest.raises(TypeError, match="device must be a string"):
        na.ones(2, device=0)


@pytest.mark.skipif(backend.cupy_available(), reason="CuPy with a GPU is present")
def test_cuda_without_cupy_raises_with_install_hint():
    with pytest.raises(backend.DeviceError, match=r"pip install"):
        na.zeros(2, device="cuda")


# ---- seeding -------------------------------------------------------------------------------

def test_manual_seed_reproduces_random_tensors():
    na.manual_seed(1234)
    a = [na.rand(3, 2), na.randn(4), na.randint(0, 100, (5,)), na.rand_like(na.zeros(2))]
    na.manual_seed(1234)
    b = [na.rand(3, 2), na.randn(4), na.randint(0, 100, (5,)), na.rand_like(na.zeros(2))]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    na.manual_seed(1235)
    assert not np.array_equal(na.rand(3, 2).numpy(), a[0].numpy())


def test_consecutive_draws_differ():
    na.manual_seed(0)
    assert not np.array_equal(na.randn(8).numpy(), na.randn(8).numpy())


def test_float64_draws_are_not_float32_draws_cast():
    na.manual_seed(3)
    r = na.rand(1000, dtype="float64").numpy()
    assert not np.array_equal(r, r.astype(np.float32).astype(np.float64))


# ---- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("call, err, match", [
    (lambda: na.zeros(-1), ValueError, "non-negative"),
    (lambda: na.ones(2.5), TypeError, "integers"),
    (lambda: na.rand("3"), TypeError, "integers"),
    (lambda: na.zeros(), TypeError, "needs a size"),
    (lambda: na.randint(5, 5, (2,)), ValueError, "greater than low"),
    (lambda: na.randint(5), TypeError, "needs a size"),
    (lambda: na.randint(0.5, 3, (2,)), TypeError, "low must be an integer"),
    (lambda: na.arange(0, 5, 0), ValueError, "non-zero"),
    (lambda: na.arange(0, 5, -1), ValueError, "flip the sign"),
    (lambda: na.arange("a"), TypeError, "real number"),
    (lambda: na.linspace(0, 1, -2), ValueError, "non-negative integer"),
    (lambda: na.rand(2, dtype="int64"), TypeError, "floating-point"),
    (lambda: na.randn_like(na.tensor([1, 2])), TypeError, "floating-point"),
    (lambda: na.tensor([[1.0], [1.0, 2.0]]), ValueError, "rectangular"),
    (lambda: na.tensor(["a", "b"]), TypeError, "numbers"),
    (lambda: na.zeros_like([1.0, 2.0]), TypeError, "Tensor or an array"),
])
def test_bad_arguments_raise_clear_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


# ---- the strict fake CuPy device -------------------------------------------------------------

@pytest.fixture
def fake():
    fake_cupy = pytest.importorskip("tests.fake_cupy")
    fake_cupy.register()
    return fake_cupy


@pytest.mark.parametrize("make", [
    lambda: na.zeros(2, 3, device="fake"),
    lambda: na.ones(2, device="fake", dtype="float64"),
    lambda: na.empty(2, device="fake"),
    lambda: na.full((2,), 3, device="fake"),
    lambda: na.arange(4, device="fake"),
    lambda: na.linspace(0, 1, 3, device="fake"),
    lambda: na.eye(2, device="fake"),
    lambda: na.rand(2, device="fake"),
    lambda: na.randn(2, device="fake", dtype="float16"),
    lambda: na.randint(0, 5, (3,), device="fake"),
    lambda: na.tensor([1.0, 2.0], device="fake"),
    lambda: na.tensor(np.arange(3), device="fake"),
])
def test_creators_make_arrays_on_the_fake_device(fake, make):
    t = make()
    assert type(t.data) is fake.FakeArray
    assert t.device == "fake:0"


def test_like_functions_and_tensor_stay_on_the_fake_device(fake):
    src = na.tensor([1.0, 2.0], device="fake")
    for t in (na.zeros_like(src), na.full_like(src, 2.0), na.randn_like(src),
              na.tensor(src)):
        assert type(t.data) is fake.FakeArray and t.shape == (2,)
    c = na.tensor(src)
    assert c.data is not src.data
    np.testing.assert_array_equal(c.numpy(), [1.0, 2.0])
    assert na.zeros_like(src, device="cpu").device == "cpu"


def test_manual_seed_reproduces_draws_on_the_fake_device(fake):
    na.manual_seed(7)
    a = na.randn(5, device="fake").numpy()
    na.manual_seed(7)
    b = na.randn(5, device="fake").numpy()
    np.testing.assert_array_equal(a, b)


def test_default_device_is_used_by_creators(fake):
    with backend.use_device("fake"):
        assert na.zeros(2).device == "fake:0"
        assert na.tensor([1.0]).device == "fake:0"
    assert na.zeros(2).device == "cpu"
