"""The Optimizer base contract: groups, validation, aliases, step/closure, hooks, lr.

Also the optimizer examples of seed 003 that need only an optimizer and
parameters, run as written with a tiny model made of Parameters.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import SGD, Adam, AdamW, Optimizer, required
from tests.helpers import torch
from tests.optim.cases import CASES


def P(*shape, value=1.0):
    return na.Parameter(np.full(shape, value))


def quad_loss(*params):
    out = None
    for p in params:
        term = (p * p).sum()
        out = term if out is None else out + term
    return out


# ---- parameter groups ------------------------------------------------------------

def test_bare_iterables_become_one_group():
    a, b = P(2), P(3)
    for spec in ([a, b], (a, b), iter([a, b]), (p for p in [a, b])):
        opt = SGD(spec, lr=0.1)
        assert len(opt.param_groups) == 1
        got = opt.param_groups[0]["params"]
        assert len(got) == 2 and got[0] is a and got[1] is b


def test_dict_of_named_parameters_is_one_group_with_names():
    a, b = P(2), P(3)
    opt = Adam({"w": a, "b": b}, lr=0.1)
    group = opt.param_groups[0]
    assert [p is q for p, q in zip(group["params"], [a, b])] == [True, True]
    assert group["param_names"] == ["w", "b"]
    opt2 = Adam([("w", a), ("b", b)])
    assert opt2.param_groups[0]["param_names"] == ["w", "b"]


def test_a_parameter_named_params_is_not_taken_for_a_group():
    a = P(2)
    opt = SGD({"params": a, "other": P(1)}, lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["params", "other"]


def test_group_dicts_override_defaults():
    a, b = P(2), P(3)
    opt = Adam([{"params": [a]}, {"params": b, "lr": 0.5, "betas": [0.8, 0.9]}], lr=0.1)
    g0, g1 = opt.param_groups
    assert g0["lr"] == 0.1 and g0["betas"] == (0.9, 0.999)
    assert g1["lr"] == 0.5 and g1["betas"] == (0.8, 0.9)      # list normalised to a tuple
    assert g1["params"][0] is b


def test_group_entries_take_aliases_and_keep_extra_keys():
    a = P(2)
    opt = Adam([{"params": [a], "learning_rate": 0.3, "beta1": 0.5, "tag": "head"}])
    g = opt.param_groups[0]
    assert g["lr"] == 0.3 and g["betas"] == (0.5, 0.999) and g["tag"] == "head"
    assert "learning_rate" not in g and "beta1" not in g


@pytest.mark.parametrize("params,err,match", [
    (P(2), TypeError, "single Parameter; wrap it in a list"),
    ({P(2)}, TypeError, "ordered collection"),
    ([], ValueError, "empty parameter list"),
    ([P(2), {"params": [P(1)]}], TypeError, "mixes parameter-group dicts"),
    ([P(2), "w"], TypeError, "can only optimize Tensors, but parameter 1 of group 0 is a str"),
    ([{"params": []}], ValueError, "group 0 has no parameters"),
    ([{"lr": 0.1}], ValueError, "needs a 'params' entry"),
])
def test_bad_params_are_rejected(params, err, match):
    with pytest.raises(err, match=match):
        SGD(params, lr=0.1)


def test_non_leaf_integer_and_duplicate_parameters_are_rejected():
    a = P(2)
    with pytest.raises(ValueError, match="non-leaf Tensor.*made by Mul"):
        SGD([a * 2.0], lr=0.1)
    with pytest.raises(TypeError, match="floating-point.*int64"):
        SGD([na.Tensor(np.arange(3))], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        SGD([a, a], lr=0.1)


def test_add_param_group_rejects_a_parameter_of_another_group_and_changes_nothing():
    a, b = P(2), P(3)
    opt = SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [b, a]})
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.add_param_group({"params": [b], "lr": -1})
    assert len(opt.param_groups) == 1
    opt.add_param_group({"params": [b], "momentum": 0.9})
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.1


def test_required_hyperparameter_must_be_given():
    class Plain(Optimizer):
        hyperparameters = {"lr": na.optim._args.non_negative}

        def __init__(self, params, lr=required):
            super().__init__(params, {"lr": lr})

        def _update(self, param, grad, state, group):
            param -= group["lr"] * grad

    with pytest.raises(ValueError, match="required hyper-parameter 'lr'"):
        Plain([P(2)])
    opt = Plain([{"params": [P(2)], "lr": 0.5}])
    assert opt.param_groups[0]["lr"] == 0.5


# ---- validation ----------------------------------------------------------------

@pytest.mark.parametrize("cls,kwargs,err,message", [
    (Adam, dict(betas=(1.5, 0.999)), ValueError,
     "Invalid beta parameter at index 0: 1.5 (expected 0 <= beta < 1)"),
    (Adam, dict(betas=(0.9, -0.1)), ValueError,
     "Invalid beta parameter at index 1: -0.1 (expected 0 <= beta < 1)"),
    (Adam, dict(beta2=1.0), ValueError,
     "Invalid beta parameter at index 1: 1.0 (expected 0 <= beta < 1)"),
    (Adam, dict(lr=-0.1), ValueError, "Invalid learning rate: -0.1 (expected lr >= 0)"),
    (AdamW, dict(eps=-1e-8), ValueError, "Invalid epsilon value: -1e-08 (expected eps >= 0)"),
    (AdamW, dict(weight_decay=-1), ValueError,
     "Invalid weight_decay value: -1.0 (expected weight_decay >= 0)"),
    (SGD, dict(momentum=-0.5), ValueError,
     "Invalid momentum value: -0.5 (expected momentum >= 0)"),
    (SGD, dict(dampening=2.0), ValueError,
     "Invalid dampening value: 2.0 (expected 0 <= dampening <= 1)"),
    (SGD, dict(lr=float("nan")), ValueError, "Invalid learning rate: nan (expected a finite"),
    (SGD, dict(lr="0.1"), TypeError, "lr must be a real number, got '0.1' (str)"),
    (SGD, dict(lr=True), TypeError, "lr must be a real number, got True (bool)"),
    (Adam, dict(amsgrad=1), TypeError, "amsgrad must be True or False, got 1 (int)"),
    (Adam, dict(betas=0.9), TypeError, "betas must be a tuple of 2 numbers, got 0.9"),
    (SGD, dict(nesterov=True), ValueError,
     "Nesterov momentum requires a momentum and zero dampening (got momentum=0.0"),
    (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError,
     "Nesterov momentum requires a momentum and zero dampening"),
    (SGD, dict(contiguous="yes"), TypeError, "contiguous must be True or False"),
])
def test_invalid_hyperparameters_name_argument_value_and_range(cls, kwargs, err, message):
    with pytest.raises(err) as info:
        cls([P(2)], **kwargs)
    assert message in str(info.value)


def test_valid_edges_are_accepted():
    Adam([P(2)], lr=0.0, betas=(0.0, 0.0), eps=0.0)
    SGD([P(2)], lr=0.0, momentum=0.0, dampening=1.0)
    SGD([P(2)], momentum=0.9, nesterov=True, lr=np.float32(0.1))


def test_numpy_bools_are_accepted_as_flags_and_stored_as_bools():
    group = Adam([P(2)], amsgrad=np.bool_(True), maximize=np.True_).param_groups[0]
    assert group["amsgrad"] is True and group["maximize"] is True
    with pytest.raises(TypeError, match="amsgrad must be True or False, got 1"):
        Adam([P(2)], amsgrad=1)


# ---- aliases -------------------------------------------------------------------

@pytest.mark.parametrize("alias,canonical", [
    (dict(learning_rate=0.2), dict(lr=0.2)),
    (dict(beta1=0.8, beta2=0.99), dict(betas=(0.8, 0.99))),
    (dict(beta_1=0.8, beta_2=0.99), dict(betas=(0.8, 0.99))),
    (dict(beta2=0.99), dict(betas=(0.9, 0.99))),
    (dict(epsilon=1e-6), dict(eps=1e-6)),
    (dict(learning_rate=0.2, beta_1=0.7, epsilon=1e-7), dict(lr=0.2, betas=(0.7, 0.999),
                                                         eps=1e-7)),
])
@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_aliases_map_onto_the_pytorch_names(cls, alias, canonical):
    a, b = cls([P(2)], **alias), cls([P(2)], **canonical)
    ga = {k: v for k, v in a.param_groups[0].items() if k != "params"}
    gb = {k: v for k, v in b.param_groups[0].items() if k != "params"}
    assert ga == gb


@pytest.mark.parametrize("cls,args,kwargs,match", [
    (Adam, (), dict(lr=0.1, learning_rate=0.1), "both 'lr' and its alias 'learning_rate'"),
    (Adam, (0.1,), dict(learning_rate=0.1), "both 'lr' and its alias 'learning_rate'"),
    (Adam, (), dict(betas=(0.9, 0.99), beta1=0.9), "both 'betas' and its alias 'beta1'"),
    (Adam, (), dict(beta1=0.9, beta_1=0.9), "both 'beta1' and 'beta_1'"),
    (AdamW, (), dict(eps=1e-8, epsilon=1e-8), "both 'eps' and its alias 'epsilon'"),
    (Adam, (), dict(lr=0.1, momentum=0.9, foo=1), "unexpected keyword argument(s) 'foo', "
                                                   "'momentum'; it accepts"),
    (SGD, (), dict(beta1=0.9), "unexpected keyword argument(s) 'beta1'"),
])
def test_alias_conflicts_and_unknown_keywords_are_type_errors(cls, args, kwargs, match):
    with pytest.raises(TypeError) as info:
        cls([P(2)], *args, **kwargs)
    assert match in str(info.value)


def test_signature_shows_pytorch_names_and_defaults():
    import inspect
    sig = inspect.signature(Adam.__init__)
    assert sig.parameters["betas"].default == (0.9, 0.999)
    assert inspect.signature(AdamW.__init__).parameters["weight_decay"].default == 1e-2


# ---- step, closure, zero_grad ------------------------------------------------------

def test_step_returns_the_closure_loss_and_runs_it_with_grad_on():
    p = P(3)
    opt = SGD([p], lr=0.1)
    seen = []

    def closure():
        seen.append(na.is_grad_enabled())
        opt.zero_grad()
        loss = quad_loss(p)
        loss.backward()
        return loss

    with na.no_grad():
        loss = opt.step(closure)
    assert seen == [True]
    assert loss.item() == 3.0
    np.testing.assert_allclose(p.data, 0.8)       # 1 - 0.1 * 2
    assert opt.step() is None


def test_parameters_without_gradient_are_skipped():
    a, b = P(2), P(2)
    opt = Adam([a, b], lr=0.1)
    quad_loss(a).backward()
    opt.step()
    assert not np.array_equal(a.data, 1.0) and np.array_equal(b.data, np.ones(2))
    assert b not in opt.m and a in opt.m
    assert not opt.state.get(b)


def test_gradient_set_by_hand_is_used_and_not_modified():
    p = P(2)
    opt = SGD([p], lr=0.5, weight_decay=1.0, maximize=True)
    g = na.Tensor(np.array([1.0, -2.0]))
    p.grad = g
    opt.step()
    np.testing.assert_allclose(p.data, 1.0 - 0.5 * (-g.data + 1.0))
    np.testing.assert_array_equal(g.data, [1.0, -2.0])
    p.grad = np.array([2.0, 2.0])                    # a raw array works as well
    opt.step()


def test_gradient_of_the_wrong_shape_or_dtype_is_an_error():
    p = P(2)
    opt = SGD([p], lr=0.5)
    p.grad = na.Tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(2,\) has shape \(3,\)"):
        opt.step()
    p.grad = na.Tensor(np.ones(2, dtype=np.float32))
    with pytest.raises(TypeError, match="float64 parameter has dtype float32"):
        opt.step()


def test_zero_grad_sets_to_none_or_fills_zeros():
    a, b = P(2), P(2)
    opt = SGD([a, b], lr=0.1)
    quad_loss(a, b).backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.data, 0.0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


# ---- hooks and step_count ------------------------------------------------------

def test_step_hooks_run_in_order_and_are_removable():
    p = P(2)
    opt = SGD([p], lr=0.1)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, args, kw: calls.append(("pre", o.step_count)))
    h2 = opt.register_step_post_hook(lambda o, args, kw: calls.append(("post", o.step_count)))
    quad_loss(p).backward()
    opt.step()
    assert calls == [("pre", 0), ("post", 1)]
    h1.remove()
    h2.remove()
    opt.step()
    assert len(calls) == 2 and opt.step_count == 2


def test_pre_hook_may_replace_the_step_arguments():
    p = P(2)
    opt = SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = quad_loss(p)
        loss.backward()
        return loss
    opt.register_step_pre_hook(lambda o, args, kw: ((closure,), {}))
    assert opt.step() is not None
    np.testing.assert_allclose(p.data, 0.8)


def test_a_subclass_step_is_counted_and_hooked_once():
    class Twice(SGD):
        def step(self, closure=None):
            super().step(closure)
            return super().step(closure)

    p = P(2)
    opt = Twice([p], lr=0.1)
    pre = []
    opt.register_step_pre_hook(lambda o, a, k: pre.append(1))
    quad_loss(p).backward()
    opt.step()
    assert opt.step_count == 1 and pre == [1]
    np.testing.assert_allclose(p.data, 1.0 - 0.2 * 2)


# ---- lr, m, v, repr ----------------------------------------------------------------

def test_lr_reads_and_writes_every_group():
    a, b = P(2), P(2)
    opt = Adam([{"params": [a]}, {"params": [b]}], lr=0.01)
    assert opt.lr == 0.01 and isinstance(opt.lr, float)
    opt.lr *= 0.1
    assert [g["lr"] for g in opt.param_groups] == [0.01 * 0.1] * 2
    opt.lr = 0.5
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.lr = -1.0
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]


def test_lr_arithmetic_keeps_the_ratio_of_groups_with_different_rates():
    a, b = P(2), P(2)
    opt = SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}])
    assert opt.lr == 1.0                         # the first group's
    opt.lr *= 0.5
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.05]
    opt.lr = opt.lr / 5
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    opt.lr = 0.3                                 # a plain number sets every group
    assert [g["lr"] for g in opt.param_groups] == [0.3, 0.3]


def test_moment_views_are_live_and_read_only():
    p, q = P(2), P(3)
    opt = Adam([p, q], lr=0.1)
    assert len(opt.m) == 0 and p not in opt.v
    quad_loss(p, q).backward()
    opt.step()
    assert opt.m[p] is opt.state[p]["exp_avg"] and opt.v[q] is opt.state[q]["exp_avg_sq"]
    assert list(opt.m) == [p, q] and len(opt.v) == 2
    with pytest.raises(TypeError):
        opt.m[p] = np.zeros(2)
    assert not hasattr(SGD([P(1)]), "m")


def test_repr_lists_groups():
    text = repr(AdamW([P(2)], lr=0.1))
    assert text.startswith("AdamW (") and "Parameter Group 0" in text and "lr: 0.1" in text


@pytest.mark.parametrize("case", CASES, ids=str)
def test_state_uses_pytorch_key_names(case):
    p = P(3)
    opt = case.cls([p], **case.full)
    quad_loss(p).backward()
    opt.step()
    assert set(opt.state[p]) == case.state_keys
    if case.torch_name is not None and torch is not None:      # the twin's own keys
        tp = torch.ones(3, dtype=torch.float64, requires_grad=True)
        topt = getattr(torch.optim, case.torch_name)([tp], **case.to_torch(case.full))
        (tp * tp).sum().backward()
        topt.step()
        assert set(topt.state[tp]) == case.state_keys


# ---- the examples of seed 003, with a tiny model made of Parameters --------------------

class TinyLinear:
    """y = x W + b, standing in for na.Linear in the seed's examples."""

    def __init__(self, n_in, n_out, rng):
        self.weight = na.Parameter(rng.normal(0, 0.5, size=(n_in, n_out)))
        self.bias = na.Parameter(np.zeros(n_out))

    def parameters(self):
        return {"weight": self.weight, "bias": self.bias}

    def __call__(self, x):
        return x @ self.weight + self.bias


def mse(pred, target):
    d = pred - target
    return (d * d).mean()


def _data(rng):
    x = rng.normal(size=(16, 10))
    return na.Tensor(x), na.Tensor(x @ rng.normal(size=(10, 1)))


def test_seed_basic_training_loop_and_adam_with_beta1_beta2_spelling():
    rng = np.random.default_rng(0)
    model = TinyLinear(10, 1, rng)
    inputs, targets = _data(rng)
    optimizer = na.Adam(model.parameters(), lr=0.001)
    first = None
    for epoch in range(100):
        predictions = model(inputs)
        loss = mse(predictions, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        first = loss.item() if first is None else first
    assert loss.item() < first

    optimizer = na.Adam(model.parameters(), lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8,
                        weight_decay=0.01)
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    optimizer = na.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    optimizer = na.AdamW(model.parameters(), lr=0.001, weight_decay=0.01)


def test_seed_manual_lr_schedule_step_count_and_moment_estimates(capsys):
    rng = np.random.default_rng(1)
    model = TinyLinear(10, 1, rng)
    inputs, targets = _data(rng)
    optimizer = na.Adam(model.parameters(), lr=0.001)

    def train_step(model, optimizer, data):
        optimizer.zero_grad()
        loss = mse(model(data[0]), data[1])
        loss.backward()
        optimizer.step()
        return loss.item()

    for epoch in range(100):
        if epoch % 30 == 0 and epoch > 0:
            optimizer.lr *= 0.1
        loss = train_step(model, optimizer, (inputs, targets))
        print(f"Epoch {epoch}, LR: {optimizer.lr}, Loss: {loss}")
    assert optimizer.lr == pytest.approx(1e-6)
    assert optimizer.step_count == 100
    assert hasattr(optimizer, "m") and hasattr(optimizer, "v")
    print(f"Step count: {optimizer.step_count}")
    print(f"Learning rate: {optimizer.lr}")
    out = capsys.readouterr().out
    assert "Epoch 99, LR: 1.0000000000000002e-06" in out or "Epoch 99, LR: 1e-06" in out
    assert "Step count: 100" in out


def test_seed_parameter_groups_via_one_dict():
    rng = np.random.default_rng(2)
    backbone, head = TinyLinear(10, 4, rng), TinyLinear(4, 1, rng)
    all_params = {}
    all_params.update({"backbone." + k: v for k, v in backbone.parameters().items()})
    all_params.update({"head." + k: v for k, v in head.parameters().items()})
    optimizer = na.Adam(all_params, lr=0.001)
    assert len(optimizer.param_groups) == 1
    assert len(optimizer.param_groups[0]["params"]) == 4
    inputs, targets = _data(rng)
    mse(head(na.tanh(backbone(inputs))), targets).backward()
    optimizer.step()
    assert all(p in optimizer.m for p in all_params.values())


# ---- devices: the strict fake CuPy catches NumPy arrays mixed into device data ----------

@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_updates_on_the_fake_cupy_device_equal_the_cpu(case, contiguous):
    from neural_arch import backend
    from tests import fake_cupy
    fake_cupy.register()
    rng = np.random.default_rng(42)
    kwargs = case.sample(rng)
    kwargs.update(case.full)                 # every optional feature on
    shapes = [(3, 2), (2,), ()]
    init = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(4)]
    results = {}
    for device in ("cpu", "fake"):
        params = [na.Parameter(backend.to_device(a.copy(), device)) for a in init]
        opt = case.cls(params, contiguous=contiguous, **kwargs)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = na.Tensor(backend.to_device(g, device))
            opt.step()
        sd = opt.state_dict()
        again = case.cls(params, contiguous=contiguous, **kwargs)
        again.load_state_dict(sd)
        assert all(backend.device_of(v) == params[0].device
                   for s in again.state.values() for v in s.values() if hasattr(v, "shape"))
        results[device] = ([backend.asnumpy(p.data) for p in params],
                           {i: {k: backend.asnumpy(v) if hasattr(v, "shape") else v
                                for k, v in opt.state[p].items()}
                            for i, p in enumerate(params)})
    for a, b in zip(results["cpu"][0], results["fake"][0]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    for i, s in results["cpu"][1].items():
        for k, v in s.items():
            np.testing.assert_allclose(results["fake"][1][i][k], v, rtol=1e-12, atol=1e-14)


# ---- the kernels against the algorithm boxes, written out of place --------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from neural_arch.optim import adam_update, adamw_update, sgd_update  # noqa: E402

_unit = st.floats(0.0, 0.999)
_rate = st.floats(0.0, 1.0)


def _arrays(seed, n=4, shape=(3, 2)):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for _ in range(n)]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), step=st.integers(1, 50), lr=_rate, b1=_unit, b2=_unit,
       eps=st.floats(0.0, 1.0), wd=_rate, amsgrad=st.booleans(), maximize=st.booleans(),
       decoupled=st.booleans())
def test_adam_kernels_follow_the_box(seed, step, lr, b1, b2, eps, wd, amsgrad, maximize,
                                     decoupled):
    theta, grad, m, v = _arrays(seed)
    v = np.abs(v)
    vmax = v + np.abs(_arrays(seed + 1, 1)[0])
    # out of place, one line per row of the box
    p = theta * (1 - lr * wd) if decoupled else theta
    g = (-grad if maximize else grad) + (0.0 if decoupled else wd * theta)
    m_t = b1 * m + (1 - b1) * g
    v_t = b2 * v + (1 - b2) * g * g
    v_hat = np.maximum(vmax, v_t) if amsgrad else v_t
    denom = np.sqrt(v_hat) / np.sqrt(1 - b2 ** step) + eps
    expected = p - lr / (1 - b1 ** step) * m_t / np.where(denom == 0, 1.0, denom)

    kernel = adamw_update if decoupled else adam_update
    args = [x.copy() for x in (theta, grad, m, v, vmax)]
    with np.errstate(all="ignore"):
        kernel(args[0], args[1], args[2], args[3], step=step, lr=lr, beta1=b1, beta2=b2,
               eps=eps, weight_decay=wd, amsgrad=amsgrad, max_exp_avg_sq=args[4],
               maximize=maximize)
    ok = denom != 0
    np.testing.assert_allclose(args[0][ok], expected[ok], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(args[2], m_t, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(args[3], v_t, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(args[1], grad)                       # grad untouched
    if amsgrad:
        np.testing.assert_allclose(args[4], np.maximum(vmax, v_t), rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), lr=_rate, momentum=st.floats(0.0, 1.5), dampening=_rate,
       wd=_rate, nesterov=st.booleans(), maximize=st.booleans(), fresh=st.booleans())
def test_sgd_kernel_follows_the_box(seed, lr, momentum, dampening, wd, nesterov, maximize,
                                    fresh):
    theta, grad, b, _ = _arrays(seed)
    if nesterov:
        momentum, dampening = max(momentum, 0.1), 0.0
    g = (-grad if maximize else grad) + wd * theta
    if momentum != 0:
        b_t = g if fresh else momentum * b + (1 - dampening) * g
        d = g + momentum * b_t if nesterov else b_t
    else:
        b_t, d = b, g
    expected = theta - lr * d

    args = [x.copy() for x in (theta, grad, b)]
    sgd_update(args[0], args[1], args[2], lr=lr, momentum=momentum, dampening=dampening,
               weight_decay=wd, nesterov=nesterov, maximize=maximize, fresh_buffer=fresh)
    np.testing.assert_allclose(args[0], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(args[2], b_t, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(args[1], grad)


def test_kernels_reject_a_scratch_buffer_of_the_wrong_shape():
    theta, grad, m, v = _arrays(0)
    with pytest.raises(ValueError, match=r"scratch buffer has shape \(4,\)"):
        adam_update(theta, grad, m, v, step=1, lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8,
                    scratch=np.empty(4))
