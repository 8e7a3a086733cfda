"""state_dict / load_state_dict: plain data, bit-for-bit resume, all-or-nothing loading."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import SGD, Adam, AdamW
from tests.optim.cases import CASES, get_case, mlp_arrays, na_mlp, train

ADAM = get_case("adam")


def snapshot(opt, params):
    """Deep copy of the parameters, the groups' hyper-parameters and the state."""
    state = {i: {k: (v.copy() if hasattr(v, "copy") else v) for k, v in opt.state[p].items()}
             for i, p in enumerate(params) if opt.state.get(p)}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    return [p.data.copy() for p in params], copy.deepcopy(groups), state, opt.step_count


def assert_identical(a, b):
    pa, ga, sa, ca = a
    pb, gb, sb, cb = b
    for x, y in zip(pa, pb):
        np.testing.assert_array_equal(x, y)
    assert ga == gb and ca == cb and sa.keys() == sb.keys()
    for i in sa:
        assert sa[i].keys() == sb[i].keys()
        for k in sa[i]:
            np.testing.assert_array_equal(sa[i][k], sb[i][k])


def build(case, kwargs, arrays, groups):
    params, loss = na_mlp(arrays)
    spec = params if not groups else [dict(params=params[:2], **groups[0]),
                                      dict(params=params[2:], **groups[1])]
    return case.cls(spec, **kwargs), params, loss


def assert_plain(obj):
    """Only dicts, lists/tuples, strings, numbers, bools, None and arrays."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, (str, int)), k
            assert_plain(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            assert_plain(v)
    else:
        assert obj is None or isinstance(obj, (str, int, float, bool, np.ndarray)), type(obj)


@pytest.mark.parametrize("with_groups", [False, True])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_resume_from_a_mid_run_state_dict_is_bit_for_bit(case, with_groups):
    rng = np.random.default_rng(7)
    kwargs = case.sample(rng)
    groups = [dict(lr=kwargs["lr"] * 0.5), case.sample(rng)] if with_groups else None
    with na.autograd.grad_clip(None):
        opt, params, loss = build(case, kwargs, mlp_arrays(3), groups)
        train(opt, params, loss, 10)
        sd = opt.state_dict()
        mid = {k: p.data.copy() for k, p in zip("abcd", params)}
        train(opt, params, loss, 10)
        reference = snapshot(opt, params)

        arrays = dict(mlp_arrays(3))
        arrays.update(zip(["W1", "b1", "W2", "b2"], mid.values()))
        # a fresh optimizer built with other settings: load_state_dict brings them back
        fresh, fparams, floss = build(case, {}, arrays, [{}, {}] if with_groups else None)
        fresh.load_state_dict(sd)
        assert fresh.step_count == 10
        train(fresh, fparams, floss, 10)
    assert_identical(snapshot(fresh, fparams), reference)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_state_dict_is_plain_indexed_and_a_copy(case):
    opt, params, loss = build(case, case.sample(np.random.default_rng(1)), mlp_arrays(), None)
    train(opt, params, loss, 3)
    sd = opt.state_dict()
    assert_plain(sd)
    assert set(sd) == {"state", "param_groups", "step_count"}
    assert sd["param_groups"][0]["params"] == [0, 1, 2, 3]
    before = copy.deepcopy(sd)
    train(opt, params, loss, 2)
    for i, s in sd["state"].items():
        for k, v in s.items():
            np.testing.assert_array_equal(v, before["state"][i][k])


def test_string_keys_and_list_betas_are_accepted():
    opt, params, loss = build(ADAM, {}, mlp_arrays(), None)
    train(opt, params, loss, 2)
    sd = opt.state_dict()
    sd["state"] = {str(k): v for k, v in sd["state"].items()}
    sd["param_groups"][0]["betas"] = list(sd["param_groups"][0]["betas"])
    fresh, fparams, _ = build(ADAM, {}, mlp_arrays(), None)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["betas"] == (0.9, 0.999)
    assert fresh.state[fparams[0]]["step"] == 2


def _trained_adam():
    opt, params, loss = build(ADAM, dict(lr=0.01, amsgrad=True), mlp_arrays(), None)
    train(opt, params, loss, 3)
    return opt, params


def _mutations():
    def fewer_groups(sd):
        sd["param_groups"].append(copy.deepcopy(sd["param_groups"][0]))

    def bigger_group(sd):
        sd["param_groups"][0]["params"].append(4)

    def wrong_shape(sd):
        sd["state"][1]["exp_avg"] = np.zeros(7)

    def bad_hyper(sd):
        sd["param_groups"][0]["betas"] = (1.5, 0.9)

    def other_optimizer(sd):
        p = [na.Parameter(np.ones(s)) for s in [(3, 5), (5,), (5, 2), (2,)]]
        o = SGD(p, lr=0.1, momentum=0.9)
        sd.clear()
        sd.update(o.state_dict())

    def stray_index(sd):
        sd["state"][9] = sd["state"][0]

    return [(fewer_groups, "2 parameter groups, this Adam has 1"),
            (bigger_group, "group 0 of the loaded state dict has 5 parameters"),
            (wrong_shape, r"state 'exp_avg' of parameter 1 has shape \(7,\), but the "
                          r"parameter has shape \(5,\)"),
            (bad_hyper, "Invalid beta parameter at index 0: 1.5"),
            (other_optimizer, "lacks .*'amsgrad', 'betas', 'eps'.*another optimizer"),
            (stray_index, "state for parameter 9")]


@pytest.mark.parametrize("mutate,match", _mutations(), ids=lambda x: getattr(x, "__name__", ""))
def test_mismatched_state_dict_raises_and_changes_nothing(mutate, match):
    opt, params = _trained_adam()
    sd = opt.state_dict()
    mutate(sd)
    target, tparams = _trained_adam()
    target.param_groups[0]["lr"] = 0.5
    before = snapshot(target, tparams)
    with pytest.raises((ValueError, TypeError), match=match):
        target.load_state_dict(sd)
    assert_identical(snapshot(target, tparams), before)


def test_loaded_state_takes_the_parameter_dtype_and_is_not_shared():
    p = na.Parameter(np.ones(3, dtype=np.float32))
    src = Adam([na.Parameter(np.ones(3))], lr=0.1)
    src.param_groups[0]["params"][0].grad = na.Tensor(np.ones(3))
    src.step()
    sd = src.state_dict()
    opt = Adam([p], lr=0.1)
    opt.load_state_dict(sd)
    assert opt.state[p]["exp_avg"].dtype == np.float32
    assert opt.state[p]["exp_avg"] is not sd["state"][0]["exp_avg"]


def test_load_keeps_group_objects_and_param_names():
    a = na.Parameter(np.ones(2))
    opt = AdamW({"w": a}, lr=0.1)
    group = opt.param_groups[0]
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = 0.25
    opt.load_state_dict(sd)
    assert opt.param_groups[0] is group and group["lr"] == 0.25
    assert group["param_names"] == ["w"] and group["params"][0] is a


def test_non_dict_is_a_type_error():
    with pytest.raises(TypeError, match="expects a dict with 'state' and 'param_groups'"):
        SGD([na.Parameter(np.ones(2))]).load_state_dict([1, 2])


def test_a_step_counter_stored_as_a_0d_array_loads_as_a_number():
    p = na.Parameter(np.ones(3))
    opt = Adam([p], lr=0.1)
    p.grad = na.Tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["step"] = np.array(1.0, dtype=np.float32)     # as PyTorch stores it
    opt.load_state_dict(sd)
    assert opt.state[p]["step"] == 1 and not hasattr(opt.state[p]["step"], "shape")
    opt.step()
    assert opt.state[p]["step"] == 2
