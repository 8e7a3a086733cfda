"""Kernels run large arrays in cache-sized blocks: same numbers, bounded scratch memory."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import _kernels, adam_update, adamw_update, contiguous, sgd_update
from neural_arch.optim._kernels import blocks


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of 64 bytes (8 float64 elements), so small test arrays are split."""
    monkeypatch.setattr(_kernels, "BLOCK_BYTES", 64)


def _state(seed, shape=(7, 13)):            # 91 elements: 11 blocks of 8 and a tail of 3
    rng = np.random.default_rng(seed)
    theta, grad, m = rng.normal(size=(3,) + shape)
    v, vmax = np.abs(rng.normal(size=(2,) + shape))
    return [theta, grad, m, v, vmax]


ADAM_FLAGS = [dict(), dict(weight_decay=0.1), dict(maximize=True),
              dict(amsgrad=True, weight_decay=0.05, maximize=True)]


@pytest.mark.parametrize("kernel", [adam_update, adamw_update])
@pytest.mark.parametrize("flags", ADAM_FLAGS)
def test_blocked_adam_is_bit_identical_to_whole_arrays(kernel, flags, monkeypatch):
    results = []
    for block_bytes in (1 << 40, 64):
        monkeypatch.setattr(_kernels, "BLOCK_BYTES", block_bytes)
        theta, grad, m, v, vmax = _state(0)
        kernel(theta, grad, m, v, step=3, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8,
               max_exp_avg_sq=vmax, **flags)
        results.append([theta, m, v, vmax])
    for whole, blocked in zip(*results):
        np.testing.assert_array_equal(blocked, whole)


SGD_FLAGS = [dict(), dict(momentum=0.9), dict(momentum=0.9, dampening=0.3, weight_decay=0.1),
             dict(momentum=0.9, nesterov=True, maximize=True),
             dict(momentum=0.5, fresh_buffer=True)]


@pytest.mark.parametrize("flags", SGD_FLAGS)
def test_blocked_sgd_is_bit_identical_to_whole_arrays(flags, monkeypatch):
    results = []
    for block_bytes in (1 << 40, 64):
        monkeypatch.setattr(_kernels, "BLOCK_BYTES", block_bytes)
        theta, grad, b = _state(1)[:3]
        sgd_update(theta, grad, b, lr=0.1, **flags)
        results.append([theta, b])
    for whole, blocked in zip(*results):
        np.testing.assert_array_equal(blocked, whole)


def test_blocks_split_into_matching_views(tiny_blocks):
    a, b = np.arange(20.0), np.arange(20.0) * 2
    parts = list(blocks(a, b, None))
    assert [len(p[0]) for p in parts] == [8, 8, 4]
    for pa, pb, none, s in parts:
        assert np.shares_memory(pa, a) and np.shares_memory(pb, b) and none is None
        np.testing.assert_array_equal(pb, 2 * pa)
        assert s.shape == pa.shape and s.dtype == a.dtype
    # one block-sized scratch array serves every block
    assert len({p[3].__array_interface__["data"][0] for p in parts}) == 1


def test_blocks_use_the_given_scratch(tiny_blocks):
    a, scratch = np.zeros(20), np.empty(20)
    for *_, s in blocks(a, scratch=scratch):
        assert np.shares_memory(s, scratch)
    with pytest.raises(ValueError, match="scratch buffer has shape"):
        list(blocks(a, scratch=np.empty(3)))


@pytest.mark.parametrize("make", [
    lambda: (np.zeros(10), np.zeros(10)),                         # under two blocks
    lambda: (np.zeros((20, 2)).T, np.zeros((2, 20))),             # not C-contiguous
    lambda: (np.zeros(20), np.zeros(20)[::-1]),                   # a reversed view
], ids=["small", "transposed", "reversed"])
def test_blocks_keep_small_or_strided_arrays_whole(make, tiny_blocks):
    a, b = make()
    (part,) = list(blocks(a, b))
    assert part[0] is a and part[1] is b and part[2].shape == a.shape


def test_per_tensor_steps_reuse_one_kept_scratch_buffer():
    params = _model(8, [(30, 20), (20,), (7, 3)])
    opt = na.optim.Adam(params, lr=0.01)
    for p in params:
        p.grad = na.Tensor(np.ones(p.shape))
    opt.step()
    (buf,) = [v for k, v in opt._kept_scratch.items() if not isinstance(k, tuple)]
    assert buf.shape == (600,)                   # as long as the largest parameter
    tracemalloc.start()
    try:
        opt.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2000                           # no parameter-sized array (4800 bytes)


def test_adam_step_on_a_large_array_allocates_one_block_of_scratch():
    n = 1 << 20                                      # 4 MiB per float32 array
    theta, grad, m, v = (np.ones(n, np.float32) for _ in range(4))
    kwargs = dict(step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    adam_update(theta, grad, m, v, **kwargs)
    tracemalloc.start()
    try:
        adam_update(theta, grad, m, v, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _kernels.BLOCK_BYTES <= peak < _kernels.BLOCK_BYTES + 64 * 1024


def _model(seed, shapes):
    rng = np.random.default_rng(seed)
    return [na.Parameter(rng.normal(size=s)) for s in shapes]


@pytest.fixture
def small_per_tensor_limit(monkeypatch):
    """Tensors of 64 bytes (8 float64 elements) and more count as large."""
    monkeypatch.setattr(contiguous, "PER_TENSOR_BYTES", 64)


@pytest.mark.parametrize("cls, kwargs", [(na.optim.Adam, dict(lr=0.01, amsgrad=True)),
                                         (na.optim.SGD, dict(lr=0.1, momentum=0.9))])
def test_contiguous_groups_of_large_tensors_update_per_tensor_without_gathering(
        cls, kwargs, small_per_tensor_limit, tiny_blocks):
    shapes = [(6, 5), (40,), (3, 11)]           # 103 elements: large, and blocked too
    flat_params, ref_params = _model(2, shapes), _model(2, shapes)
    flat = cls(flat_params, contiguous=True, **kwargs)
    ref = cls(ref_params, **kwargs)
    (bucket,) = flat._flat[0].buckets
    assert bucket.large_tensors
    bucket.grad[...] = 7.0                     # gathering would overwrite this
    rng = np.random.default_rng(3)
    for _ in range(4):
        for fp, rp in zip(flat_params, ref_params):
            g = rng.normal(size=fp.shape)
            fp.grad, rp.grad = na.Tensor(g), na.Tensor(g.copy())
        flat.step()
        ref.step()
    for fp, rp, view in zip(flat_params, ref_params, bucket.param_views):
        assert fp.data is view
        np.testing.assert_array_equal(fp.data, rp.data)
        for key, value in ref.state[rp].items():
            np.testing.assert_array_equal(flat.state[fp][key], value)
            if isinstance(value, np.ndarray):
                assert np.shares_memory(flat.state[fp][key], bucket.state_buffers[key])
    assert (bucket.grad == 7.0).all()


def test_contiguous_groups_of_small_tensors_still_gather(small_per_tensor_limit):
    params = _model(4, [(3,), (2, 2), (5,)])    # 12 elements: 32 bytes per tensor
    opt = na.optim.Adam(params, contiguous=True, lr=0.01)
    (bucket,) = opt._flat[0].buckets
    assert not bucket.large_tensors
    for p in params:
        p.grad = na.Tensor(np.full(p.shape, 0.5))
    opt.step()
    np.testing.assert_array_equal(bucket.grad, 0.5)
