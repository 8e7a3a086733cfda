"""MixedPrecisionOptimizer: seed 001's call, equality with the hand-written AMP loop and
with plain float32 training, skipped steps, closures, resume, schedulers, errors."""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch.amp import GradScaler, autocast
from neural_arch.optim import AdamW, MixedPrecisionOptimizer, create_scheduler
from neural_arch.optim.factory import ConfigError

F16, F32 = np.dtype("float16"), np.dtype("float32")


def make_model(seed=0):
    na.manual_seed(seed)
    return na.nn.Sequential(na.nn.Linear(5, 8), na.nn.ReLU(), na.nn.Linear(8, 3))


def batch(i):
    rng = np.random.default_rng(100 + i)
    return na.Tensor(rng.normal(size=(16, 5)).astype(np.float32)), rng.integers(0, 3, 16)


def weights(model):
    return [p.data.copy() for p in model.parameters()]


def assert_same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_seed_001_call_runs_as_written():
    model = make_model()
    from neural_arch.optimizers import MixedPrecisionOptimizer

    # Create mixed precision optimizer
    mp_optimizer = MixedPrecisionOptimizer(
        model=model,
        optimizer_type='adamw',
        learning_rate=1e-4,
        use_amp=True  # Automatic Mixed Precision
    )
    assert isinstance(mp_optimizer.optimizer, AdamW)
    assert mp_optimizer.param_groups[0]["lr"] == 1e-4 and mp_optimizer.lr == 1e-4
    assert mp_optimizer.get_scale() == 2.0 ** 16 and mp_optimizer.scaler.is_enabled()
    x, y = batch(0)
    mp_optimizer.zero_grad()
    with mp_optimizer.autocast():
        logits = model(x)
        loss = na.cross_entropy_loss(logits, y)
    mp_optimizer.step(loss)
    assert logits.dtype == F16 and mp_optimizer.step_count == 1
    assert all(p.dtype == F32 for p in model.parameters())


def test_equals_the_hand_written_autocast_and_gradscaler_loop():
    def by_hand():
        model = make_model()
        opt = AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
        scaler = GradScaler(init_scale=2.0 ** 12)
        for i in range(4):
            x, y = batch(i)
            opt.zero_grad()
            with autocast():
                loss = na.cross_entropy_loss(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        return weights(model), scaler.get_scale()

    def wrapped(one_call):
        model = make_model()
        mp = MixedPrecisionOptimizer(model=model, optimizer_type="adamw", learning_rate=1e-2,
                                     weight_decay=0.1, init_scale=2.0 ** 12)
        for i in range(4):
            x, y = batch(i)
            mp.zero_grad()
            with mp.autocast():
                loss = na.cross_entropy_loss(model(x), y)
            if one_call:
                mp.step(loss)
            else:
                mp.backward(loss)
                mp.step()
        return weights(model), mp.get_scale()

    expected, scale = by_hand()
    for one_call in (True, False):
        got, got_scale = wrapped(one_call)
        assert_same(got, expected)
        assert got_scale == scale


def test_use_amp_false_is_plain_float32_training():
    model = make_model()
    opt = AdamW(model.parameters(), lr=1e-2)
    for i in range(3):
        x, y = batch(i)
        opt.zero_grad()
        na.cross_entropy_loss(model(x), y).backward()
        opt.step()
    expected = weights(model)

    model = make_model()
    mp = MixedPrecisionOptimizer(model=model, optimizer_type="adamw", learning_rate=1e-2,
                                 use_amp=False)
    for i in range(3):
        x, y = batch(i)
        mp.zero_grad()
        with mp.autocast():
            logits = model(x)
        na.cross_entropy_loss(logits, y).backward()     # a plain backward is fine here
        mp.step()
    assert logits.dtype == F32 and mp.get_scale() == 1.0
    assert_same(weights(model), expected)


def test_plain_backward_with_amp_on_is_an_error_not_a_silent_division():
    model = make_model()
    mp = MixedPrecisionOptimizer(model=model, optimizer_type="sgd", learning_rate=0.1)
    x, y = batch(0)
    na.cross_entropy_loss(model(x), y).backward()
    with pytest.raises(RuntimeError, match=r"mp.backward\(loss\)"):
        mp.step()
    mp.zero_grad()
    mp.backward(na.cross_entropy_loss(model(x), y))
    mp.step()
    with pytest.raises(RuntimeError, match="no scaled backward since the last step"):
        mp.step()                                        # the same gradients twice


def test_overflow_skips_the_step_counts_it_and_halves_the_scale():
    model = make_model()
    mp = MixedPrecisionOptimizer(model=model, optimizer_type="adam", learning_rate=1e-2)
    before = weights(model)
    x, _ = batch(0)
    with mp.autocast():
        loss = model(x).sum()                            # float16 gradient S > 65504: inf
    assert mp.step(loss) is None
    assert mp.skipped_steps == 1 and mp.step_count == 0 and mp.get_scale() == 2.0 ** 15
    assert_same(weights(model), before)
    calls = 1
    while mp.step_count == 0:                            # back off until the gradients fit
        mp.zero_grad()
        with mp.autocast():
            loss = model(x).sum()
        mp.step(loss)
        calls += 1
    assert mp.skipped_steps == calls - 1 and mp.get_scale() == 2.0 ** (16 - mp.skipped_steps)
    assert not np.array_equal(weights(model)[0], before[0])


def test_closure_optimizer_through_step():
    model = make_model()
    mp = MixedPrecisionOptimizer(model=model, optimizer_type="lbfgs", learning_rate=0.5,
                                 max_iter=3, init_scale=2.0 ** 10)
    x, y = batch(0)

    def closure():
        mp.zero_grad()
        with mp.autocast():
            loss = na.cross_entropy_loss(model(x), y)
        mp.backward(loss)
        return loss

    first = float(mp.step(closure))
    later = float(mp.step(closure))
    assert later < first and mp.skipped_steps == 0


def test_state_dict_resumes_bit_for_bit_including_the_scaler():
    def make():
        model = make_model()
        return model, MixedPrecisionOptimizer(model=model, optimizer_type="adam",
                                              learning_rate=1e-2, init_scale=2.0 ** 10,
                                              growth_interval=2)

    def train(model, mp, steps):
        for i in steps:
            x, y = batch(i)
            mp.zero_grad()
            with mp.autocast():
                loss = na.cross_entropy_loss(model(x), y)
            mp.step(loss)

    model, mp = make()
    train(model, mp, range(5))
    expected, scale = weights(model), mp.get_scale()

    model, mp = make()
    train(model, mp, range(3))
    sd = mp.state_dict()
    saved_weights = weights(model)
    assert sd["mixed_precision"]["scaler"]["scale"] == 2.0 ** 11
    model2, mp2 = make()
    for p, w in zip(model2.parameters(), saved_weights):
        p.data[...] = w
    mp2.load_state_dict(sd)
    assert mp2.get_scale() == 2.0 ** 11 and mp2.step_count == 3
    train(model2, mp2, range(3, 5))
    assert_same(weights(model2), expected)
    assert mp2.get_scale() == scale
    bad = mp.state_dict()
    bad["mixed_precision"]["scaler"]["growth_factor"] = 0.5
    with pytest.raises(ValueError, match="growth_factor"):
        mp2.load_state_dict(bad)


def test_schedulers_and_optimizer_arguments_reach_the_wrapped_optimizer():
    model = make_model()
    mp = MixedPrecisionOptimizer(model=model, optimizer_type="adamw", learning_rate=0.1,
                                 weight_decay=0.05, max_grad_norm=1.0, betas=(0.8, 0.9))
    group = mp.optimizer.param_groups[0]
    assert group["weight_decay"] == 0.05 and group["betas"] == (0.8, 0.9)
    assert mp.optimizer.max_grad_norm == 1.0
    sched = create_scheduler(mp, scheduler_name="cosine", epochs=4, eta_min=0.0)
    for i in range(2):
        x, y = batch(i)
        mp.zero_grad()
        with mp.autocast():
            loss = na.cross_entropy_loss(model(x), y)
        mp.step(loss)
        sched.step()
    assert mp.optimizer.lr == pytest.approx(0.05)


def test_wrapping_a_built_optimizer_and_argument_errors():
    model = make_model()
    built = na.optim.SGD(model.parameters(), lr=0.1)
    mp = MixedPrecisionOptimizer(optimizer_type=built)
    assert mp.optimizer is built and mp.base_optimizer is built
    with pytest.raises(TypeError, match="already built SGD, so model, learning_rate"):
        MixedPrecisionOptimizer(model=model, optimizer_type=built, learning_rate=0.1)
    with pytest.raises(ConfigError, match="adamw"):
        MixedPrecisionOptimizer(model=model, optimizer_type="adamz")
    with pytest.raises(TypeError, match="needs model="):
        MixedPrecisionOptimizer(optimizer_type="adam")
    with pytest.raises(TypeError, match="optimizer name"):
        MixedPrecisionOptimizer(model=model, optimizer_type=AdamW)
    with pytest.raises(TypeError, match="use_amp must be True or False"):
        MixedPrecisionOptimizer(model=model, use_amp="yes")
    with pytest.raises(TypeError, match="NumPy, which has none"):
        MixedPrecisionOptimizer(model=model, dtype="bfloat16")
    with pytest.raises(TypeError, match="a loss Tensor or a closure"):
        mp.step(3.0)
    text = repr(MixedPrecisionOptimizer(model=model, optimizer_type="sgd", learning_rate=0.1))
    assert "MixedPrecisionOptimizer (base_optimizer: SGD" in text and "use_amp=True" in text


def test_digits_float16_matches_float32_through_the_wrapper():
    X, y = na.data.load_digits()
    idx = np.random.default_rng(0).permutation(len(X))
    train, test = idx[:1437], idx[1437:]

    def accuracy(use_amp):
        na.manual_seed(0)
        model = na.nn.Sequential(na.nn.Linear(64, 32), na.nn.ReLU(), na.nn.Linear(32, 10))
        mp = MixedPrecisionOptimizer(model=model, optimizer_type="adam", learning_rate=1e-2,
                                     use_amp=use_amp)
        order = np.random.default_rng(1)
        for _ in range(5):
            perm = order.permutation(train)
            for i in range(0, len(perm), 128):
                b = perm[i:i + 128]
                mp.zero_grad()
                with mp.autocast():
                    loss = na.cross_entropy_loss(model(na.Tensor(X[b])), y[b])
                mp.step(loss)
        with na.no_grad(), mp.autocast():
            pred = model(na.Tensor(X[test])).data.argmax(axis=1)
        return 100.0 * float((pred == y[test]).mean())

    acc32, acc16 = accuracy(False), accuracy(True)
    assert acc32 > 93.0 and abs(acc16 - acc32) <= 0.5, (acc16, acc32)
