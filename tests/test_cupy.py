"""The op table and engine checks of ``tests/test_fake_device.py`` on real CuPy ('cuda').

Skipped, not failed, where ``neural_arch.backend.cupy_available()`` is False (no CuPy,
or CuPy without a usable GPU). The table and the checks are imported from
``tests/test_fake_device.py``, so the fake and the real device run the same cases.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
import neural_arch.functional as F
from neural_arch import backend
from tests.test_fake_device import (CASES, CREATION, check_accumulation, check_anomaly,
                                    check_clamp, check_creation, check_gradcheck, check_mlp,
                                    check_op_case, check_second_derivative, host)

pytestmark = pytest.mark.skipif(not backend.cupy_available(),
                                reason="CuPy with a usable GPU is not available")

DEVICE = "cuda"


@pytest.mark.parametrize("name, index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_op_matches_cpu_on_cuda(name, index):
    check_op_case(name, index, DEVICE)


@pytest.mark.parametrize("check", [check_mlp, check_accumulation, check_second_derivative,
                                   check_clamp, check_anomaly, check_gradcheck],
                         ids=lambda f: f.__name__[6:])
def test_engine_on_cuda(check):
    check(DEVICE)


@pytest.mark.parametrize("name", sorted(CREATION))
def test_creation_on_cuda(name):
    check_creation(name, DEVICE)


def test_backend_sees_cupy_arrays():
    cupy = backend.cupy
    a = cupy.arange(3.0)
    assert backend.get_array_module(a) is cupy
    assert backend.get_array_module(na.Tensor(a)) is cupy
    assert backend.device_of(a) == "cuda:0"
    np.testing.assert_array_equal(backend.asnumpy(a), [0.0, 1.0, 2.0])
    assert type(backend.to_device(np.ones(2), "cuda")) is cupy.ndarray
    assert backend.to_device(a, "cuda:0") is a


def test_tensor_cuda_round_trip_and_gradient_reaches_the_cpu_leaf():
    x = na.Tensor([1.0, -2.0, 0.5], requires_grad=True, dtype="float64")
    d = x.cuda()
    assert d.device == "cuda:0"
    y = F.sum(d * d).cpu()
    y.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())


def test_use_device_cuda():
    with na.use_device("cuda"):
        assert na.zeros(2).device == "cuda:0"
        assert na.Tensor([1.0]).device == "cuda:0"
    assert na.zeros(2).device == "cpu"


def test_mixing_cuda_and_cpu_names_both_devices():
    with pytest.raises(backend.DeviceError, match=r"'cpu'.*'cuda:0'"):
        F.add(na.Tensor([1.0]).cuda(), na.Tensor([1.0]))


def test_manual_seed_repeats_cuda_numbers():
    na.manual_seed(5)
    a = na.randn(4, device="cuda")
    na.manual_seed(5)
    b = na.randn(4, device="cuda")
    np.testing.assert_array_equal(host(a, DEVICE), host(b, DEVICE))


def test_scatter_add_on_cuda_accumulates_repeated_indices():
    cupy = backend.cupy
    t = cupy.zeros(4)
    backend.scatter_add(t, cupy.asarray([0, 1, 0, 3, 0]), cupy.asarray([1.0, 2, 3, 4, 5]))
    np.testing.assert_array_equal(backend.asnumpy(t), [9.0, 2.0, 0.0, 4.0])


def test_erf_on_cuda_matches_the_host():
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(backend.asnumpy(backend.erf(backend.to_device(x, "cuda"))),
                               backend.erf(x), rtol=1e-12, atol=1e-15)


def test_cached_kernel_builds_once_on_a_gpu():
    built = []

    @backend.cached_kernel
    def make(n):
        built.append(n)
        return object()

    assert make(2) is make(2)
    assert built == [2]
