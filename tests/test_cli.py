"""``neural-arch train`` / ``evaluate``: help, config handling, the run folder, determinism."""
from __future__ import annotations

import csv
from io import StringIO
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import neural_arch.nn as nn
from neural_arch import cli, io, train_job
from neural_arch.train_job import ConfigError, resolve_config

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--epochs", "1", "--limit", "120", "--batch-size", "40"]


def _python_m(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "neural_arch", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def _main(capsys, *args):
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


# ---- help -----------------------------------------------------------------------------

def test_python_m_train_help():
    r = _python_m("train", "--help")
    assert r.returncode == 0, r.stderr
    for word in ("--config", "FILE.yaml", "--epochs", "--output", "--seed", "--set",
                 "--quiet", "test_acc", "yaml.safe_load", "mlp", "cnn", "checkpoint.npz"):
        assert word in r.stdout
    r = _python_m("evaluate", "--help")
    assert r.returncode == 0 and "CHECKPOINT" in r.stdout


def test_no_command_prints_usage_and_fails(capsys):
    rc, out, _ = _main(capsys)
    assert rc == 2 and "train" in out and "evaluate" in out


# ---- the end-to-end run -------------------------------------------------------------------

def test_train_writes_the_run_folder_and_reports_test_acc(tmp_path):
    r = _python_m("train", *QUICK, "--output", str(tmp_path), "--name", "run1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    epoch_lines = [ln for ln in lines if ln.startswith("epoch ")]
    assert len(epoch_lines) == 1 and "test_acc" in epoch_lines[0]
    assert lines[-1].startswith("test_acc: ") and lines[-2].startswith("test_loss: ")
    printed_acc = float(lines[-1].split()[1])

    run = tmp_path / "run1"
    assert sorted(os.listdir(run)) == ["checkpoint.npz", "config.yaml", "curves.png",
                                      "metrics.csv", "metrics.json"]
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["history"]) == 1
    assert round(metrics["final"]["test_acc"], 4) == printed_acc
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["test_acc"]) == metrics["final"]["test_acc"]
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["epochs"] == 1 and cfg["data"]["limit"] == 120 and cfg["model"]["name"] == "mlp"

    ckpt = io.load(run / "checkpoint.npz")
    assert ckpt["config"] == resolve_config(cfg)
    model = train_job.build_model(ckpt["config"]["model"])
    model.load_state_dict(ckpt["model"])            # strict: every key, right shapes
    assert ckpt["optimizer"]["step_count"] == 3     # 120 examples / 40 per batch
    assert ckpt["metrics"]["test_acc"] == metrics["final"]["test_acc"]

    r = _python_m("evaluate", str(run / "checkpoint.npz"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == lines[-1]


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path, capsys):
    def history(name, seed):
        rc, out, _ = _main(capsys, "train", "--epochs", "2", "--limit", "100", "--seed",
                           str(seed), "--set", "model.hidden=[32]", "--output",
                           str(tmp_path), "--name", name)
        assert rc == 0
        hist = json.loads((tmp_path / name / "metrics.json").read_text())["history"]
        return [{k: v for k, v in row.items() if k != "seconds"} for row in hist], out

    a, out_a = history("a", 3)
    b, out_b = history("b", 3)
    c, _ = history("c", 4)
    assert a == b and a != c
    strip = [ln.rsplit("  ", 1)[0] for ln in out_a.splitlines() if ln.startswith("epoch")]
    assert strip == [ln.rsplit("  ", 1)[0] for ln in out_b.splitlines()
                     if ln.startswith("epoch")]


def test_quiet_prints_only_the_final_lines(tmp_path, capsys):
    rc, out, _ = _main(capsys, "train", *QUICK, "--quiet", "--output", str(tmp_path))
    lines = out.strip().splitlines()
    assert rc == 0 and len(lines) == 3 and lines[0].startswith("run folder: ")
    assert lines[-1].startswith("test_acc: ")
    (run,) = os.listdir(tmp_path)
    assert run.startswith("mlp-")


def test_config_file_and_overrides(tmp_path, capsys):
    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text("optimizer:\n  name: sgd\n  lr: 1e-2\nmodel:\n  hidden: [16]\n"
                        "epochs: 7\n")
    rc, out, _ = _main(capsys, "train", "--config", str(cfg_file), "--epochs", "2",
                       "--set", "model.dropout=0", "--set", "optimizer.nesterov=true",
                       "--print-config")
    assert rc == 0
    cfg = yaml.safe_load(out)
    assert cfg["epochs"] == 2 and cfg["model"]["hidden"] == [16]
    assert cfg["model"]["dropout"] == 0.0
    assert cfg["optimizer"] == {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True}
    assert set(cfg) == set(train_job.builtin_config())


def test_print_config_of_the_default_and_of_cnn(capsys):
    rc, out, _ = _main(capsys, "train", "--print-config")
    assert rc == 0 and yaml.safe_load(out) == resolve_config()
    assert yaml.safe_load(out) == resolve_config(train_job.builtin_config("mlp"))
    rc, out, _ = _main(capsys, "train", "--model", "cnn", "--print-config")
    model = yaml.safe_load(out)["model"]
    assert model == {"name": "cnn", **train_job.MODEL_DEFAULTS["cnn"]}
    rc, out, _ = _main(capsys, "train", "--config", "cnn", "--print-config")
    assert yaml.safe_load(out) == resolve_config(train_job.builtin_config("cnn"))


def test_default_config_targets():
    cfg = resolve_config()
    assert cfg["model"]["name"] == "mlp" and cfg["optimizer"]["name"] == "adam"
    assert train_job.builtin_config("cnn")["model"]["name"] == "cnn"


@pytest.mark.parametrize("layer, match", [
    ({"epoch": 3}, "unknown config key 'epoch'; valid keys are: seed, epochs, batch_size"),
    ({"model": {"name": "mlp", "width": 3}},
     "unknown config key 'model.width'; valid keys in 'model' are: name, hidden"),
    ({"model": {"name": "cnn", "activation": "relu"}}, "'model.activation'"),
    ({"data": {"shuffle": True}}, "unknown config key 'data.shuffle'.*test_fraction"),
    ({"model": "resnet"}, "'model.name' must be one of mlp, cnn; got 'resnet'"),
    ({"optimizer": "nope"}, "'optimizer.name' must be one of .*adam.*sgd"),
    ({"optimizer": {"name": "adam", "lr": -1}}, "'optimizer.lr' \\(adam\\): Invalid learning"),
    ({"optimizer": {"name": "adam", "momentum": 0.9}}, "'optimizer.momentum'.*unexpected"),
    ({"optimizer": {"name": "adam", "betas": [0.9, 1.5]}}, "'optimizer.betas'"),
    ({"epochs": 0}, "'epochs' must be an integer >= 1, got 0"),
    ({"batch_size": 2.5}, "'batch_size' must be an integer"),
    ({"seed": -1}, "'seed' must be an integer >= 0"),
    ({"model": {"hidden": [64, 0]}}, "'model.hidden' must be an integer >= 1"),
    ({"model": {"hidden": "wide"}}, "'model.hidden' must be a list"),
    ({"model": {"dropout": 1.0}}, "'model.dropout' must lie in \\[0, 1\\)"),
    ({"model": {"activation": "swish"}}, "'model.activation' must be one of relu"),
    ({"scheduler": "step"}, "'scheduler' must be one of constant, cosine"),
    ({"data": {"test_fraction": 1.0}}, "'data.test_fraction' must lie strictly"),
    ({"data": {"dataset": "mnist"}}, "'data.dataset' must be one of digits"),
    ({"data": {"limit": 0}}, "'data.limit' must be an integer >= 1"),
    ({"data": {"augment": "yes"}}, "'data.augment' must be true or false"),
    ({"data": 3}, "'data' must be a mapping"),
    ({"run_name": "a/b"}, "'run_name' must be a plain folder name"),
    ({"device": "tpu"}, "'device'.*unknown device 'tpu'"),
    ({"output": ""}, "'output' must be a folder name"),
    ({"threads": 0}, "'threads' must be an integer >= 1, got 0"),
])
def test_bad_config_keys_and_values_name_the_key(layer, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(layer)


def test_config_errors_exit_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\nlearning_rate: 0.1\n")
    rc, out, err = _main(capsys, "train", "--config", str(bad))
    assert rc == 2 and out == ""
    assert err.startswith("neural-arch train: error: unknown config key 'learning_rate'")
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    rc, _, err = _main(capsys, "train", "--config", str(tmp_path / "list.yaml"))
    assert rc == 2 and "must hold a mapping" in err
    (tmp_path / "broken.yaml").write_text("model: [\n")
    rc, _, err = _main(capsys, "train", "--config", str(tmp_path / "broken.yaml"))
    assert rc == 2 and "not valid YAML" in err
    rc, _, err = _main(capsys, "train", "--config", str(tmp_path / "none.yaml"))
    assert rc == 2 and "not found" in err
    rc, _, err = _main(capsys, "train", "--set", "epochs")
    assert rc == 2 and "--set expects KEY=VALUE" in err
    rc, _, err = _main(capsys, "train", "--set", "epochs.x=1")
    assert rc == 2 and "config key 'epochs' must be an integer" in err


def test_yaml_is_read_safely(tmp_path, capsys):
    evil = tmp_path / "evil.yaml"
    evil.write_text("epochs: !!python/object/apply:os.system ['echo pwned']\n")
    rc, _, err = _main(capsys, "train", "--config", str(evil))
    assert rc == 2 and "not valid YAML" in err


def test_existing_run_name_is_refused(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    rc, _, err = _main(capsys, "train", *QUICK, "--output", str(tmp_path), "--name", "taken")
    assert rc == 2 and "already exists" in err


def test_evaluate_refuses_other_files(tmp_path, capsys):
    io.save({"weights": np.zeros(2)}, tmp_path / "other.npz")
    rc, _, err = _main(capsys, "evaluate", str(tmp_path / "other.npz"))
    assert rc == 2 and "not one written by 'neural-arch train'" in err
    (tmp_path / "x.pkl").write_bytes(b"\x80\x04K\x01.")
    rc, _, err = _main(capsys, "evaluate", str(tmp_path / "x.pkl"))
    assert rc == 2 and "pickled" in err
    rc, _, err = _main(capsys, "evaluate", str(tmp_path / "missing.npz"))
    assert rc == 2 and "no checkpoint" in err


def test_evaluate_accepts_the_run_folder(tmp_path, capsys):
    rc, out, _ = _main(capsys, "train", *QUICK, "--seed", "1", "--output", str(tmp_path),
                       "--name", "r")
    assert rc == 0
    rc, out2, _ = _main(capsys, "evaluate", str(tmp_path / "r"))
    assert rc == 0 and out2.splitlines()[-1] == out.splitlines()[-1]


@pytest.mark.skipif(not hasattr(nn, "Conv2d"), reason="nn.Conv2d not available yet")
def test_cnn_config_runs(tmp_path, capsys):
    rc, out, _ = _main(capsys, "train", "--config", "cnn", *QUICK, "--output", str(tmp_path),
                       "--name", "c")
    assert rc == 0 and out.splitlines()[-1].startswith("test_acc: ")
    ckpt = io.load(tmp_path / "c" / "checkpoint.npz")
    assert ckpt["model"]["0.weight"].shape == (16, 1, 3, 3)
    assert ckpt["config"]["data"]["augment"] is True


def test_shift_augmentation_moves_images_by_at_most_one_pixel():
    rng = np.random.default_rng(0)
    x = np.zeros((50, 64), dtype=np.float32)
    x[:, 3 * 8 + 4] = 1.0                               # one bright pixel at (3, 4)
    out = train_job._shift_images(x, rng)
    assert out.shape == x.shape and out.dtype == x.dtype
    rows, cols = np.nonzero(out.reshape(50, 8, 8).sum(0))
    assert set(rows) <= {2, 3, 4} and set(cols) <= {3, 4, 5} and len(set(zip(rows, cols))) > 3
    assert (out.reshape(50, -1).sum(1) == 1).all()      # every image keeps its pixel
    imgs = rng.random((4, 1, 8, 8))
    np.testing.assert_array_equal(train_job._shift_images(imgs, np.random.default_rng(1))
                                  .shape, imgs.shape)


def test_train_and_evaluate_on_the_fake_device(tmp_path):
    # The strict CuPy stand-in catches host arrays mixed into device computations in the
    # training loop, the augmentation, the evaluation and the checkpoint.
    from tests import fake_cupy
    fake_cupy.register()
    cfg = resolve_config({"device": "fake", "epochs": 1, "data": {"limit": 64, "augment": True},
                          "model": {"hidden": [16]}, "output": str(tmp_path),
                          "run_name": "f"})
    result = train_job.train(cfg, quiet=True, stream=StringIO())
    ckpt = io.load(tmp_path / "f" / "checkpoint.npz")
    assert type(ckpt["model"]["0.weight"]) is np.ndarray         # saved from the host
    again = train_job.evaluate(tmp_path / "f", stream=StringIO())
    assert again["test_acc"] == result["test_acc"]
    on_cpu = train_job.evaluate(tmp_path / "f", device="cpu", stream=StringIO())
    assert on_cpu["test_acc"] == result["test_acc"]


def test_blas_threads_are_limited_during_the_run_and_restored():
    funcs = train_job._openblas_functions()
    if funcs is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS found by name")
    get, put = funcs
    before = get()
    put(2)
    try:
        with train_job._blas_threads(1):
            assert get() == 1
        assert get() == 2
        with train_job._blas_threads(None):
            assert get() == 2
    finally:
        put(before)
    assert resolve_config()["threads"] == 1 and resolve_config({"threads": None})["threads"] is None


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    cfg = resolve_config({"epochs": 1, "data": {"limit": 40}, "model": {"hidden": [8]},
                          "output": str(tmp_path)})
    train_job.train(cfg, progress=True)
    out, err = capsys.readouterr()
    assert "epoch 1/1" in err and "batch" in err            # tqdm's bar
    assert out.splitlines()[-1].startswith("test_acc: ")
