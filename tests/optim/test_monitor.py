"""OptimizerMonitor and GradientMonitor: histories, logging, CSV/JSON files, plots.

Also the seed-001 monitoring code blocks, run as written with a small model.
"""
from __future__ import annotations

import csv
import json
import logging
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

import neural_arch as na
from neural_arch.optim import SGD, Adam, GradientMonitor, OptimizerMonitor
from neural_arch.optim.lr_scheduler import StepLR

LOGGER = "neural_arch.optim.monitor"


class TinyModel(na.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = na.nn.Linear(3, 2)

    def forward(self, batch):
        x, y = batch
        return ((self.fc(x) - y) ** 2).mean()


def batches(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(na.Tensor(rng.normal(size=(4, 3))), na.Tensor(rng.normal(size=(4, 2))))
            for _ in range(n)]


# ---- OptimizerMonitor ---------------------------------------------------------------------

def test_optimizer_monitor_records_every_interval_the_lr_of_each_group(caplog):
    a, b = na.Parameter(np.ones(2)), na.Parameter(np.ones(3))
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    sched = StepLR(opt, step_size=2, gamma=0.1)
    monitor = OptimizerMonitor(opt, log_interval=2)
    seen = []
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for i in range(5):
            seen.append(monitor.log_lr(i))
            opt.step()
            sched.step()
    assert monitor.calls == 5
    assert [r["call"] for r in monitor.history] == [0, 2, 4]
    assert [r["step"] for r in monitor.history] == [0, 2, 4]
    assert [r["step_count"] for r in monitor.history] == [0, 2, 4]
    np.testing.assert_allclose([r["lr"] for r in monitor.history],
                               [[0.1, 0.5], [0.01, 0.05], [0.001, 0.005]], rtol=1e-12)
    np.testing.assert_allclose(seen[1], [0.1, 0.5])          # returned on every call
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(messages) == 3 and "0.01, 0.05" in messages[1]


def test_optimizer_monitor_saves_csv_and_json(tmp_path):
    opt = Adam([na.Parameter(np.ones(2))], lr=1e-3)
    monitor = OptimizerMonitor(opt, log_interval=1)
    for i in range(3):
        monitor.log_lr(i)
        opt.lr = opt.lr * 0.5
    with open(monitor.save(tmp_path / "lr.json")) as f:
        assert json.load(f) == monitor.history
    with open(monitor.save(str(tmp_path / "lr.csv"))) as f:
        rows = list(csv.DictReader(f))
    assert [float(r["lr/0"]) for r in rows] == [1e-3, 5e-4, 2.5e-4]
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    monitor.save(tmp_path / "lr.txt", format="json")
    assert json.loads((tmp_path / "lr.txt").read_text()) == monitor.history
    with pytest.raises(ValueError, match="'csv' or 'json'"):
        monitor.save(tmp_path / "lr.xlsx")


def test_optimizer_monitor_plot_is_a_figure_with_one_line_per_group():
    opt = SGD([{"params": [na.Parameter(np.ones(1))]},
               {"params": [na.Parameter(np.ones(1))], "lr": 0.2}], lr=0.1)
    monitor = OptimizerMonitor(opt, log_interval=1)
    for i in range(4):
        monitor.log_lr(i)
    fig = monitor.plot()
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.2] * 4)
    fig.savefig(__import__("io").BytesIO(), format="png")    # renders headless (Agg)


def test_monitor_arguments_are_checked():
    opt = SGD([na.Parameter(np.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="log_interval"):
        OptimizerMonitor(opt, log_interval=0)
    with pytest.raises(ValueError, match="log_interval"):
        GradientMonitor([na.Parameter(np.ones(1))], log_interval=2.5)
    with pytest.raises(TypeError, match="param_groups"):
        OptimizerMonitor("adam")
    with pytest.raises(TypeError, match="Module"):
        GradientMonitor(3)
    with pytest.raises(TypeError, match="not a Parameter"):
        GradientMonitor({"w": np.ones(2)})
    with pytest.raises(ValueError, match="max_norm"):
        GradientMonitor([na.Parameter(np.ones(1))], max_norm=-1)
    with pytest.raises(TypeError, match="logger"):
        OptimizerMonitor(opt, logger=3)


# ---- GradientMonitor ----------------------------------------------------------------------

def test_gradient_monitor_norms_clip_rate_and_history():
    w, b = na.Parameter(np.zeros((2, 2))), na.Parameter(np.zeros(2))
    monitor = GradientMonitor({"w": w, "b": b}, log_interval=2, max_norm=1.0,
                              track_updates=False)
    scales = [3.0, 0.1, 2.0, 0.1, 0.1]
    norms = []
    for s in scales:
        w.grad = na.Tensor(np.full((2, 2), s))
        b.grad = na.Tensor(np.array([0.0, s]))
        norms.append(monitor.log_gradients())
    expect = [math.sqrt(5) * s for s in scales]
    np.testing.assert_allclose(norms, expect, rtol=1e-12)
    assert monitor.calls == 5 and monitor.clipped_calls == 2
    assert monitor.clip_rate == pytest.approx(0.4)
    assert [r["call"] for r in monitor.history] == [0, 2, 4]
    first = monitor.history[0]
    assert first["global_norm"] == pytest.approx(expect[0])
    assert first["grad_norm"] == pytest.approx({"w": 6.0, "b": 3.0})
    assert first["clip_rate"] == 1.0 and monitor.history[1]["clip_rate"] == pytest.approx(2 / 3)
    assert first["nan_count"] == 0 and first["inf_count"] == 0
    assert first["update_ratio"] is None


def test_gradient_monitor_counts_nan_and_inf_and_warns(caplog):
    w, b = na.Parameter(np.zeros(4)), na.Parameter(np.zeros(2))
    w.grad = na.Tensor(np.array([np.nan, 1.0, np.inf, -np.inf]))
    b.grad = na.Tensor(np.array([np.nan, 0.0]))
    monitor = GradientMonitor([w, b], log_interval=1, max_norm=1.0)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        total = monitor.log_gradients()
    assert math.isnan(total)
    rec = monitor.history[0]
    assert rec["nan_count"] == 2 and rec["inf_count"] == 2
    assert monitor.nonfinite_calls == 1 and monitor.clipped_calls == 0
    assert set(rec["grad_norm"]) == {"0", "1"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "nan 2, inf 2" in warnings[0].getMessage()


def test_update_ratio_is_the_next_calls_parameter_change_over_the_old_norm(caplog):
    rng = np.random.default_rng(0)
    w0, b0 = rng.normal(size=(3, 2)), rng.normal(size=2)
    w, b = na.Parameter(w0.copy()), na.Parameter(b0.copy())
    opt = SGD([w, b], lr=0.1)
    monitor = GradientMonitor({"w": w, "b": b}, log_interval=2)
    grads = [(rng.normal(size=(3, 2)), rng.normal(size=2)) for _ in range(3)]
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for gw, gb in grads:
            w.grad, b.grad = na.Tensor(gw), na.Tensor(gb)
            monitor.log_gradients()
            opt.step()
    gw, gb = grads[0]
    dw, db = 0.1 * gw, 0.1 * gb          # the step taken with the recorded gradients
    rec = monitor.history[0]
    assert rec["layer_update_ratio"]["w"] == pytest.approx(
        np.linalg.norm(dw) / np.linalg.norm(w0), rel=1e-12)
    assert rec["layer_update_ratio"]["b"] == pytest.approx(
        np.linalg.norm(db) / np.linalg.norm(b0), rel=1e-12)
    assert rec["update_ratio"] == pytest.approx(
        math.sqrt((np.sum(dw ** 2) + np.sum(db ** 2)) / (np.sum(w0 ** 2) + np.sum(b0 ** 2))),
        rel=1e-12)
    assert monitor.history[1]["update_ratio"] is None     # no call after it yet
    assert any("update/parameter ratio" in r.getMessage() for r in caplog.records)


def test_update_ratio_of_zero_parameters():
    z = na.Parameter(np.zeros(2))
    monitor = GradientMonitor([z], log_interval=1)
    z.grad = na.Tensor(np.ones(2))
    monitor.log_gradients()
    monitor.log_gradients()                   # nothing moved
    z.data[:] = 1.0
    monitor.log_gradients()                   # moved from zero
    assert monitor.history[0]["update_ratio"] == 0.0
    assert monitor.history[1]["update_ratio"] == math.inf


def test_gradient_monitor_without_gradients_and_with_a_module():
    model = TinyModel()
    monitor = GradientMonitor(model, log_interval=1)
    assert monitor.log_gradients() == 0.0
    assert monitor.history[0]["grad_norm"] == {}
    model(batches(1)[0]).backward()
    monitor.log_gradients()
    assert set(monitor.history[1]["grad_norm"]) == {"fc.weight", "fc.bias"}
    assert monitor.clip_rate is None


def test_gradient_monitor_saves_and_plots(tmp_path):
    na.manual_seed(0)
    model = TinyModel()
    opt = SGD(model.parameters(), lr=0.1)
    monitor = GradientMonitor(model, log_interval=1, max_norm=0.5)
    for batch in batches(4):
        opt.zero_grad()
        model(batch).backward()
        monitor.log_gradients()
        opt.step()
    assert monitor.save(tmp_path / "g.json") == str(tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text()) == monitor.history
    with open(monitor.save(tmp_path / "g.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert float(rows[0]["grad_norm/fc.weight"]) == pytest.approx(
        monitor.history[0]["grad_norm"]["fc.weight"])
    assert float(rows[0]["layer_update_ratio/fc.bias"]) == pytest.approx(
        monitor.history[0]["layer_update_ratio"]["fc.bias"])
    assert rows[3]["update_ratio"] == ""                   # filled by a later call only
    fig = monitor.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    norm_ax, ratio_ax = fig.axes
    labels = [line.get_label() for line in norm_ax.lines]
    assert labels == ["fc.weight", "fc.bias", "global", "max_norm"]
    np.testing.assert_allclose(norm_ax.lines[2].get_ydata(),
                               [r["global_norm"] for r in monitor.history])
    assert len(ratio_ax.lines[0].get_xdata()) == 3
    fig.savefig(__import__("io").BytesIO(), format="png")


# ---- seed 001, as written ------------------------------------------------------------------

def test_seed_001_monitoring_blocks_run_as_written():
    from neural_arch.optim import OptimizerMonitor
    from neural_arch.optim import GradientMonitor
    na.manual_seed(0)
    model = TinyModel()
    optimizer = na.optim.AdamW(model.parameters(), lr=1e-3)
    num_epochs = 2
    dataloader = batches(3)

    # Create monitor
    monitor = OptimizerMonitor(
        optimizer=optimizer,
        log_interval=100
    )

    # Use in training
    for epoch in range(num_epochs):
        for batch_idx, batch in enumerate(dataloader):
            # Training code here
            monitor.log_lr(batch_idx)

    # Monitor gradient norms
    gradient_monitor = GradientMonitor(
        model=model,
        log_interval=100
    )

    # Use in training
    for batch in dataloader:
        loss = model(batch)
        loss.backward()

        # Log gradient norms
        gradient_monitor.log_gradients()

        optimizer.step()

    assert monitor.calls == 6 and len(monitor.history) == 1
    assert gradient_monitor.calls == 3 and len(gradient_monitor.history) == 1
    assert gradient_monitor.history[0]["update_ratio"] > 0
