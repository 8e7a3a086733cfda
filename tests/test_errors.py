"""Bad input gives an error that says what was expected and what came."""
import numpy as np
import pytest

import neural_arch as na
from neural_arch import backend
from neural_arch.core.function import Function


def leaf(values):
    return na.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# ---- shapes -----------------------------------------------------------------------------

def test_matmul_inner_dimension_mismatch_names_both_shapes():
    with pytest.raises(ValueError) as info:
        na.zeros(2, 3) @ na.zeros(4, 5)
    msg = str(info.value)
    assert "(2, 3)" in msg and "(4, 5)" in msg


def test_matmul_of_a_scalar_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(\)"):
        na.matmul(na.tensor(2.0), na.zeros(2))


def test_broadcast_mismatch_names_the_op_and_shapes():
    with pytest.raises(ValueError) as info:
        na.zeros(2, 3) + na.zeros(4)
    msg = str(info.value)
    assert "Add" in msg
    assert "(2,3)" in msg.replace(" ", "") and "(4,)" in msg


def test_reshape_to_a_wrong_size_names_the_shapes():
    with pytest.raises(ValueError, match=r"6.*\(4, 2\)|\(4, 2\).*6|size 6"):
        na.zeros(2, 3).reshape(4, 2)


# ---- backward misuse ----------------------------------------------------------------

def test_backward_on_non_scalar_without_grad():
    y = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(RuntimeError, match=r"one element.*shape \(2,\)"):
        y.backward()


def test_backward_with_wrong_shape_grad_names_both_shapes():
    y = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but the output has shape "
                                         r"\(2,\)"):
        y.backward(na.Tensor(np.ones(3)))


def test_backward_on_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (na.zeros(2) * 2.0).sum().backward()


def test_backward_on_result_computed_under_no_grad():
    x = leaf([1.0])
    with na.no_grad():
        y = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()


def test_backward_twice_names_retain_graph():
    y = (leaf([1.0]).exp()).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()


class WrongCount(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy


class WrongShape(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return na.Tensor(np.ones((3, 3)))


class NoBackward(Function):
    def forward(self, x):
        return x * 2


def test_backward_returning_too_few_gradients():
    a, b = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="WrongCount.backward returned 1 gradients for "
                                           "2 inputs"):
        WrongCount()(a, b).sum().backward()


def test_backward_returning_a_gradient_of_the_wrong_shape():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"WrongShape.backward gave a gradient of shape "
                                           r"\(3, 3\) for an input of shape \(2,\)"):
        WrongShape()(x).sum().backward()


def test_function_without_backward_says_so():
    x = leaf([1.0])
    with pytest.raises(NotImplementedError, match="NoBackward is not differentiable"):
        NoBackward()(x).sum().backward()


# ---- requires_grad and dtypes -----------------------------------------------------------

def test_requires_grad_on_integer_tensor():
    with pytest.raises(TypeError, match=r"floating-point.*int64"):
        na.Tensor(np.arange(3), requires_grad=True)
    t = na.Tensor(np.arange(3))
    with pytest.raises(TypeError, match="floating-point"):
        t.requires_grad = True
    with pytest.raises(TypeError, match="floating-point"):
        na.Tensor(np.array([True]), requires_grad=True)


def test_switching_off_requires_grad_on_a_non_leaf():
    y = leaf([1.0]) * 2.0
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad = False


def test_in_place_assignment_into_a_tensor_that_requires_grad():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="no_grad"):
        x[0] = 5.0
    with na.no_grad():
        x[0] = 5.0
    assert x.numpy()[0] == 5.0


def test_default_dtype_must_be_floating():
    with pytest.raises(TypeError, match="floating dtype"):
        na.set_default_dtype("int32")
    with pytest.raises(TypeError, match="not a dtype"):
        na.set_default_dtype("floaty")


def test_tensor_of_objects():
    with pytest.raises(TypeError, match="objects"):
        na.Tensor([object()])


def test_item_and_bool_of_many_elements():
    t = na.zeros(3)
    with pytest.raises(ValueError, match=r"one element.*\(3,\)"):
        t.item()
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t)
    with pytest.raises(TypeError, match="0-d"):
        len(na.tensor(1.0))


def test_manual_seed_must_be_a_non_negative_integer():
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="non-negative integer"):
            na.manual_seed(bad)


# ---- devices -------------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["tpu", "gpu", "cuda0", "CPU"])
def test_unknown_device_string(device):
    with pytest.raises(backend.DeviceError, match=f"unknown device '{device}'.*'cpu'"):
        na.Tensor([1.0], device=device)


def test_bad_device_index():
    with pytest.raises(backend.DeviceError, match="bad device index"):
        na.Tensor([1.0]).to("cpu:x")


def test_device_must_be_a_string():
    with pytest.raises(TypeError, match="device must be a string"):
        na.Tensor([1.0], device=1)


@pytest.mark.skipif(backend.cupy_available(), reason="CuPy with a GPU is present")
@pytest.mark.parametrize("call", [
    lambda: na.Tensor([1.0]).to("cuda"),
    lambda: na.Tensor([1.0]).cuda(),
    lambda: na.zeros(2, device="cuda:0"),
    lambda: na.set_default_device("cuda"),
    lambda: backend.use_device("cuda").__enter__(),
])
def test_cuda_without_cupy_gives_device_error_with_install_hint(call):
    with pytest.raises(backend.DeviceError) as info:
        call()
    msg = str(info.value)
    assert "CuPy" in msg and "pip install" in msg and "device='cpu'" in msg
    assert backend.get_default_device() == "cpu"


@pytest.fixture
def fake():
    fake_cupy = pytest.importorskip("tests.fake_cupy")
    fake_cupy.register()
    return fake_cupy


def test_mixing_devices_in_an_op_names_both(fake):
    a = na.Tensor([1.0, 2.0]).to("fake")
    b = na.Tensor([3.0, 4.0])
    for op in (lambda: a + b, lambda: b * a, lambda: na.matmul(a, b)):
        with pytest.raises(backend.DeviceError) as info:
            op()
        msg = str(info.value)
        assert "cpu" in msg and "fake:0" in msg and ".to(" in msg


def test_fake_device_index_that_does_not_exist(fake):
    with pytest.raises(backend.DeviceError, match="fake:3"):
        na.Tensor([1.0]).to("fake:3")


# ---- grad clamp and autograd arguments -----------------------------------------------------

def test_grad_with_non_tensor_output():
    x = leaf([1.0])
    with pytest.raises(TypeError, match="outputs must be a Tensor.*got float"):
        na.autograd.grad(3.0, x)
    with pytest.raises(TypeError, match="backward expects Tensors, got float"):
        na.autograd.grad([3.0], x)


def test_grad_inputs_must_require_grad():
    x = leaf([1.0])
    c = na.Tensor([2.0])
    with pytest.raises(RuntimeError, match="must be a Tensor that requires grad"):
        na.autograd.grad((x * c).sum(), c)
