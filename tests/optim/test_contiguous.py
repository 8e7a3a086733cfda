"""Contiguous mode: flat buffers, one kernel call per group, the same numbers.

Optimizers that are not elementwise (LARS, LAMB: one trust ratio per tensor) keep
the flat buffers but update per tensor on their views.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import SGD, Adam, flatten_parameters
from tests.optim.cases import CASES, get_case, mlp_arrays, na_mlp, train
from tests.optim.test_state_dict import assert_identical, snapshot


def make(case, kwargs, contiguous, seed=0, groups=True):
    params, loss = na_mlp(mlp_arrays(seed))
    spec = [dict(params=params[:2]), dict(params=params[2:], lr=kwargs["lr"] * 0.3)] \
        if groups else params
    return case.cls(spec, contiguous=contiguous, **kwargs), params, loss


def counting(opt):
    """Count the calls of ``opt._update`` (one per tensor, or one per flat bucket)."""
    calls = []
    update = opt._update

    def spy(param, grad, state, group):
        calls.append(param.shape)
        return update(param, grad, state, group)
    opt._update = spy
    return calls


@pytest.mark.parametrize("draw", range(3))
@pytest.mark.parametrize("case", CASES, ids=str)
def test_contiguous_mode_gives_exactly_the_per_tensor_numbers(case, draw):
    kwargs = case.sample(np.random.default_rng(500 + draw))
    flat, fparams, floss = make(case, kwargs, True, seed=draw)
    ref, rparams, rloss = make(case, kwargs, False, seed=draw)
    calls = counting(flat)
    train(flat, fparams, floss, 20)
    train(ref, rparams, rloss, 20)
    if case.cls.elementwise:                     # one call per group: 15 + 5 and 10 + 2
        assert calls == [(20,), (12,)] * 20
    else:                                        # per tensor (on the views): trust ratios
        assert calls == [(3, 5), (5,), (5, 2), (2,)] * 20
        assert np.shares_memory(fparams[0].data, flat._flat[0].buckets[0].param)
    assert_identical(snapshot(flat, fparams), snapshot(ref, rparams))


def test_parameters_and_state_are_views_into_flat_buffers():
    opt, params, loss = make(get_case("adam"), dict(lr=0.01, amsgrad=True), True, groups=False)
    train(opt, params, loss, 2)
    (bucket,) = opt._flat[0].buckets
    assert bucket.param.shape == (32,)
    for p, view in zip(params, bucket.param_views):
        assert p.data is view and np.shares_memory(p.data, bucket.param)
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            s = opt.state[p][key]
            assert s.shape == p.shape and np.shares_memory(s, bucket.state_buffers[key])
        assert opt.state[p]["step"] == 2
    assert opt.m[params[0]] is opt.state[params[0]]["exp_avg"]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_parameter_without_gradient_falls_back_to_per_tensor_updates(case):
    kwargs = case.sample(np.random.default_rng(9))
    runs = []
    for contiguous in (True, False):
        opt, params, loss = make(case, kwargs, contiguous, groups=False)
        train(opt, params, loss, 3)
        for _ in range(3):                        # b2 gets no gradient for a while
            opt.zero_grad()
            loss().backward()
            params[3].grad = None
            opt.step()
        train(opt, params, loss, 3)
        runs.append(snapshot(opt, params))
    assert_identical(*runs)


def test_fast_path_resumes_when_states_agree_again():
    opt, params, loss = make(get_case("sgd"), dict(lr=0.1, momentum=0.9), True, groups=False)
    calls = counting(opt)
    train(opt, params, loss, 1)
    opt.zero_grad()
    loss().backward()
    params[0].grad = None
    opt.step()                                    # per tensor: 3 calls
    train(opt, params, loss, 1)                   # SGD has no step counter: flat again
    assert calls == [(32,), (5,), (5, 2), (2,), (32,)]


def test_replacing_param_data_is_noticed():
    kwargs = dict(lr=0.05, momentum=0.5)
    runs = []
    for contiguous in (True, False):
        opt, params, loss = make(get_case("sgd"), kwargs, contiguous, groups=False)
        train(opt, params, loss, 2)
        params[1].data = np.full(5, 0.25)         # same shape: copied into the buffer
        train(opt, params, loss, 2)
        runs.append(snapshot(opt, params))
        if contiguous:
            assert np.shares_memory(params[1].data, opt._flat[0].buckets[0].param)
    assert_identical(*runs)


def test_changing_a_parameter_shape_reflattens_the_group():
    p, q = na.Parameter(np.ones(3)), na.Parameter(np.ones(2))
    opt = SGD([p, q], lr=0.1, contiguous=True)
    p.data = np.ones(4)
    p.grad, q.grad = na.Tensor(np.ones(4)), na.Tensor(np.ones(2))
    opt.step()
    np.testing.assert_allclose(p.data, 0.9)
    assert opt._flat[0].buckets[0].param.shape == (6,)


def test_state_dict_moves_between_contiguous_and_per_tensor_optimizers():
    case = get_case("adam")
    kwargs = dict(lr=0.01, amsgrad=True, weight_decay=0.1)
    runs = []
    for first, second in ((True, False), (False, True), (False, False)):
        opt, params, loss = make(case, kwargs, first)
        train(opt, params, loss, 4)
        sd = opt.state_dict()
        other, oparams, oloss = make(case, kwargs, second)
        for p, q in zip(params, oparams):
            q.data[...] = p.data
        other.load_state_dict(sd)
        if second:                                # loaded state lives in the flat buffers
            b = other._flat[0].buckets[0]
            assert np.shares_memory(other.state[oparams[0]]["exp_avg"],
                                    b.state_buffers["exp_avg"])
        train(other, oparams, oloss, 4)
        runs.append(snapshot(other, oparams))
    assert_identical(runs[0], runs[2])
    assert_identical(runs[1], runs[2])


def test_mixed_dtypes_get_one_bucket_each():
    a = na.Parameter(np.ones(3))
    b = na.Parameter(np.ones(2, dtype=np.float32))
    c = na.Parameter(np.ones(4))
    buckets = flatten_parameters([a, b, c])
    assert [bk.param.dtype for bk in buckets] == [np.float64, np.float32]
    assert [len(bk.params) for bk in buckets] == [2, 1]
    opt = Adam([a, b, c], lr=0.1, contiguous=True)
    calls = counting(opt)
    for p in (a, b, c):
        p.grad = na.Tensor(np.ones(p.shape, dtype=p.dtype))
    opt.step()
    assert calls == [(7,), (2,)]
    assert b.data.dtype == np.float32 and opt.state[b]["exp_avg"].dtype == np.float32


def test_non_elementwise_optimizers_update_per_tensor_on_the_views():
    class PerTensor(SGD):
        elementwise = False

    p, q = na.Parameter(np.ones(3)), na.Parameter(np.ones(2))
    opt = PerTensor([p, q], lr=0.1, contiguous=True)
    calls = counting(opt)
    p.grad, q.grad = na.Tensor(np.ones(3)), na.Tensor(np.ones(2))
    opt.step()
    assert calls == [(3,), (2,)]
    np.testing.assert_allclose(opt._flat[0].buckets[0].param, 0.9)


def test_gradients_are_copied_not_aliased():
    p = na.Parameter(np.ones(3))
    opt = SGD([p], lr=0.1, contiguous=True)
    g = na.Tensor(np.array([1.0, 2.0, 3.0]))
    p.grad = g
    opt.step()
    assert p.grad is g and not np.shares_memory(g.data, opt._flat[0].buckets[0].grad)
    np.testing.assert_allclose(p.data, [0.9, 0.8, 0.7])
