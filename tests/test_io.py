"""neural_arch.io: pickle-free checkpoints, damage detection, atomic saves, state round trips."""
from __future__ import annotations

import io as _pyio
import json
import math
import os
import pickle
import stat
import zipfile
from collections import OrderedDict, namedtuple

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neural_arch as na
import neural_arch.nn as nn
from neural_arch import backend
from neural_arch.io import CheckpointError, load, save
from tests import fake_cupy

fake_cupy.register()


def _same(a, b):
    """Equal in type, structure, dtype and every bit (NaN equal to NaN)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, na.Tensor):
        assert a.requires_grad == b.requires_grad
        _same(backend.asnumpy(a.data), backend.asnumpy(b.data))
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a)
                                                     == math.copysign(1, b))
    else:
        assert a == b


def _roundtrip(obj, tmp_path, **kw):
    p = tmp_path / "ckpt.npz"
    save(obj, p, **kw)
    return load(p)


# ---- what round-trips ---------------------------------------------------------------------

def test_nested_structure_round_trips_exactly(tmp_path):
    obj = OrderedDict([
        ("none", None), ("yes", True), ("no", False), ("int", -(2 ** 70)), ("zero", 0),
        ("float", 0.1), ("neg0", -0.0), ("nan", float("nan")), ("inf", float("inf")),
        ("ninf", -float("inf")), ("text", "grüße ✓\n"), ("empty", ""),
        ("list", [1, [2.5, "x"], (), []]), ("tuple", (0.9, 0.999)),
        ("scalars", [np.float32(1.5), np.int64(-3), np.bool_(True), np.float16(0.1),
                     np.complex128(1 - 2j), np.uint8(255)]),
        ("arrays", {
            "f32": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32),
            "f64_0d": np.array(2.5), "empty": np.zeros((0, 3)), "bool": np.array([True, False]),
            "int8": np.arange(-4, 4, dtype=np.int8), "c128": np.array([1j, 2 + 0j]),
            "f16": np.array([1e-3, 6e4], dtype=np.float16),
            "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
            "strided": np.arange(20.0)[::3], "big_endian": np.arange(3, dtype=">i4"),
        }),
        (3, "int key"), (2.5, "float key"), (None, "None key"), (True, "bool key"),
        ((1, "a"), "tuple key"),
    ])
    _same(obj, _roundtrip(obj, tmp_path))
    plain = {"b": 1, "a": 2}
    back = _roundtrip(plain, tmp_path)
    assert type(back) is dict and list(back) == ["b", "a"]
    _same(obj, _roundtrip(obj, tmp_path, compress=False))


def test_tensors_and_parameters_round_trip(tmp_path):
    t = na.Tensor(np.arange(3.0), requires_grad=True)
    t.grad = na.Tensor(np.ones(3))
    p = nn.Parameter(np.ones((2, 2), dtype=np.float32))
    frozen = nn.Parameter(np.zeros(2), requires_grad=False)
    labels = na.Tensor(np.array([1, 2]))
    back = _roundtrip({"t": t, "p": p, "frozen": frozen, "labels": labels}, tmp_path)
    assert type(back["t"]) is na.Tensor and back["t"].requires_grad and back["t"].grad is None
    assert type(back["p"]) is nn.Parameter and back["p"].requires_grad
    assert type(back["frozen"]) is nn.Parameter and not back["frozen"].requires_grad
    assert back["labels"].dtype == np.int64 and not back["labels"].requires_grad
    _same(p, back["p"])


json_leaves = (st.none() | st.booleans() | st.integers() | st.text(max_size=5)
               | st.floats(allow_nan=True, allow_infinity=True))
arrays = st.builds(lambda shape, seed, dt: np.random.default_rng(seed).integers(
    -50, 50, size=shape).astype(dt),
    st.lists(st.integers(0, 3), max_size=3).map(tuple), st.integers(0, 99),
    st.sampled_from(["float32", "float64", "int32", "uint8", "bool"]))
trees = st.recursive(json_leaves | arrays, lambda kids: (
    st.lists(kids, max_size=3) | st.lists(kids, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=3) | st.integers(-5, 5), kids, max_size=3)),
    max_leaves=8)


@settings(max_examples=20, deadline=None)
@given(obj=trees)
def test_random_trees_round_trip(obj, tmp_path_factory):
    _same(obj, _roundtrip(obj, tmp_path_factory.mktemp("h")))


def test_model_state_dict_round_trip_gives_identical_outputs(tmp_path):
    na.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    x = na.Tensor(np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32))
    model(x)                                   # move BatchNorm's running statistics
    model.eval()
    save(model.state_dict(), tmp_path / "m.npz")
    na.manual_seed(1)
    other = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    other.eval()
    assert not np.array_equal(other(x).data, model(x).data)
    loaded = load(tmp_path / "m.npz")
    assert isinstance(loaded, OrderedDict) and list(loaded) == list(model.state_dict())
    other.load_state_dict(loaded)
    np.testing.assert_array_equal(other(x).data, model(x).data)


def _train_steps(model, opt, sched, x, y, n):
    from neural_arch.losses.functional import mse_loss
    for _ in range(n):
        loss = mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()


@pytest.mark.parametrize("make_opt", [
    lambda ps: na.Adam(ps, lr=0.01, betas=(0.8, 0.99), amsgrad=True),
    lambda ps: na.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: na.AdamW(ps, lr=0.01, weight_decay=0.1),
])
def test_optimizer_and_scheduler_resume_bit_for_bit(tmp_path, make_opt):
    from neural_arch.optim.lr_scheduler import StepLR
    rng = np.random.default_rng(0)
    x = na.Tensor(rng.standard_normal((8, 4)))
    y = na.Tensor(rng.standard_normal((8, 2)))

    def fresh(seed):
        na.manual_seed(seed)
        model = nn.Linear(4, 2).double()
        opt = make_opt(model.parameters())
        return model, opt, StepLR(opt, step_size=2, gamma=0.5)

    model, opt, sched = fresh(0)
    _train_steps(model, opt, sched, x, y, 3)
    save({"model": model.state_dict(), "optimizer": opt.state_dict(),
          "scheduler": sched.state_dict()}, tmp_path / "c.npz")
    _train_steps(model, opt, sched, x, y, 4)               # the uninterrupted run

    model2, opt2, sched2 = fresh(5)
    ckpt = load(tmp_path / "c.npz")
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    _train_steps(model2, opt2, sched2, x, y, 4)            # the resumed run
    for a, b in zip(model.parameters(), model2.parameters()):
        assert a.data.tobytes() == b.data.tobytes()
    assert opt.state_dict()["param_groups"] == opt2.state_dict()["param_groups"]
    assert sched.state_dict() == sched2.state_dict()


def test_optimizer_state_dict_types_survive(tmp_path):
    model = nn.Linear(2, 2)
    opt = na.Adam(model.parameters(), lr=0.01)
    model(na.Tensor(np.ones((1, 2), dtype=np.float32))).sum().backward()
    opt.step()
    sd = opt.state_dict()
    _same(sd, _roundtrip(sd, tmp_path))     # int state keys, betas tuple, step int


def test_device_arrays_are_saved_from_the_host_and_loaded_where_asked(tmp_path):
    dev = backend.to_device(np.arange(4.0), "fake")
    t = na.Tensor(np.ones(2)).to("fake")
    save({"a": dev, "t": t}, tmp_path / "d.npz")
    host = load(tmp_path / "d.npz")
    assert type(host["a"]) is np.ndarray and host["t"].device == "cpu"
    np.testing.assert_array_equal(host["a"], np.arange(4.0))
    on_dev = load(tmp_path / "d.npz", device="fake")
    assert backend.device_of(on_dev["a"]) == "fake:0" and on_dev["t"].device == "fake:0"


def test_file_is_a_plain_npz_with_a_json_manifest(tmp_path):
    save({"w": np.arange(3.0), "step": 7}, tmp_path / "c.ckpt")
    assert os.listdir(tmp_path) == ["c.ckpt"]            # no suffix added, no temp left
    with np.load(tmp_path / "c.ckpt", allow_pickle=False) as f:
        assert sorted(f.files) == ["__manifest__", "a0"]
        manifest = json.loads(f["__manifest__"].tobytes())
        np.testing.assert_array_equal(f["a0"], np.arange(3.0))
    assert manifest["format"] == "neural_arch.io" and manifest["version"] == 1
    kinds = [item[1]["t"] for item in manifest["root"]["items"]]
    assert kinds == ["array", "int"]


# ---- what is refused when saving ----------------------------------------------------------

@pytest.mark.parametrize("obj, match", [
    ({"a": [1, object()]}, r"obj\['a'\]\[1\]: objects of type object"),
    ({"s": {1, 2}}, "type set"),
    ({"f": len}, "builtin_function_or_method"),
    ({"o": np.array([1, "a"], dtype=object)}, "array of Python objects"),
    ({frozenset(): 1}, "dict key"),
    ({"nt": namedtuple("P", "x")(1)}, "named tuple P"),
    (b"bytes", "type bytes"),
])
def test_save_rejects_what_it_cannot_store(tmp_path, obj, match):
    with pytest.raises(TypeError, match=match):
        save(obj, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_save_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save({}, tmp_path / "missing" / "x.npz")
    with pytest.raises(IsADirectoryError, match="folder"):
        save({}, tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load(tmp_path / "nothing.npz")
    with pytest.raises(IsADirectoryError):
        load(tmp_path)


# ---- atomic save --------------------------------------------------------------------------

def test_crash_mid_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save({"version": "old", "w": np.zeros(1000)}, path)
    before = path.read_bytes()

    def dying_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(np, "savez_compressed", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        save({"version": "new", "w": np.ones(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.npz"]
    assert load(path)["version"] == "old"


def test_failed_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save({"version": "old"}, path)
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError, match="disk"):
        save({"version": "new"}, path)
    monkeypatch.undo()
    assert load(path)["version"] == "old" and os.listdir(tmp_path) == ["c.npz"]


def test_save_keeps_permissions_of_an_existing_file(tmp_path):
    path = tmp_path / "c.npz"
    save({}, path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask
    os.chmod(path, 0o600)
    save({"x": 1}, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# ---- what is refused when loading ---------------------------------------------------------

def test_pickle_files_are_refused_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"payload": Boom()}))
    with pytest.raises(CheckpointError, match="pickled data.*never unpickles"):
        load(path)
    assert not (tmp_path / "pwned").exists()


def test_torch_save_files_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match="pickled data"):
        load(path)


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write_members(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def _npy(arr, allow_pickle=False):
    buf = _pyio.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _manifest(members):
    return json.loads(np.load(_pyio.BytesIO(members["__manifest__.npy"])).tobytes())


def _with_manifest(members, manifest):
    raw = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    return {**members, "__manifest__.npy": _npy(raw)}


def test_object_array_inside_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "c.npz"
    save({"w": np.zeros(2)}, path)
    m = _members(path)
    man = _manifest(m)
    man["root"]["items"][0][1]["dtype"] = "|O"
    m = _with_manifest(m, man)
    m["a0.npy"] = _npy(np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    _write_members(path, m)
    with pytest.raises(CheckpointError, match="'a0' holds pickled Python objects"):
        load(path)


@pytest.mark.parametrize("keep", [0.0, 0.05, 0.5, 0.9, 0.999])
def test_truncated_files_are_refused(tmp_path, keep):
    path = tmp_path / "c.npz"
    save({"w": np.random.default_rng(0).standard_normal(5000), "b": np.arange(10)}, path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated|corrupted"):
        load(path)


@pytest.mark.parametrize("compress", [True, False])
def test_flipped_bytes_are_detected(tmp_path, compress):
    path = tmp_path / "c.npz"
    save({"w": np.arange(2000.0)}, path, compress=compress)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("a0.npy")
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged|corrupted"):
        load(path)


def _tamper(tmp_path, edit):
    path = tmp_path / "c.npz"
    save({"w": np.arange(4.0), "n": 1}, path)
    m = _members(path)
    m = edit(m, _manifest(m))
    _write_members(path, m)
    return path


@pytest.mark.parametrize("edit, match", [
    (lambda m, man: {k: v for k, v in m.items() if k != "a0.npy"},
     "'a0'.*missing from the file"),
    (lambda m, man: {**m, "a1.npy": _npy(np.zeros(2))}, "does not list: \\['a1'\\]"),
    (lambda m, man: {**m, "a0.npy": _npy(np.arange(5.0))}, "shape \\[5\\].*manifest says"),
    (lambda m, man: {**m, "a0.npy": _npy(np.arange(4, dtype=np.float32))}, "dtype <f4"),
    (lambda m, man: {**m, "a0.npy": _npy(np.arange(4.0) + 1)}, "SHA-256"),
    (lambda m, man: {k: v for k, v in m.items() if k != "__manifest__.npy"},
     "no manifest"),
    (lambda m, man: {**m, "__manifest__.npy": _npy(np.frombuffer(b"{not json",
                                                                 dtype=np.uint8))},
     "manifest is unreadable"),
    (lambda m, man: _with_manifest(m, {**man, "format": "other"}),
     "does not describe a neural_arch checkpoint"),
    (lambda m, man: _with_manifest(m, {**man, "version": 99}), "version 99"),
    (lambda m, man: _with_manifest(m, {**man, "root": {"t": "pickle", "v": "x"}}),
     "unknown type 'pickle'"),
    (lambda m, man: _with_manifest(m, {**man, "root": {"t": "int", "v": "3"}}),
     "should hold a int"),
    (lambda m, man: _with_manifest(m, {**man, "root": {"t": "list", "items": [
        man["root"]["items"][0][1], man["root"]["items"][0][1]]}}), "listed twice"),
    (lambda m, man: _with_manifest(m, {**man, "root": [1, 2]}), "malformed"),
])
def test_tampered_files_are_refused(tmp_path, edit, match):
    path = _tamper(tmp_path, edit)
    with pytest.raises(CheckpointError, match=match):
        load(path)


def test_other_numpy_files_are_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(3))
    with pytest.raises(CheckpointError, match="single .npy array"):
        load(tmp_path / "a.npy")
    np.savez(tmp_path / "b.npz", x=np.arange(3))
    with pytest.raises(CheckpointError, match="no manifest"):
        load(tmp_path / "b.npz")
    (tmp_path / "c.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="neither an .npz nor an .npy"):
        load(tmp_path / "c.txt")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated"):
        load(tmp_path / "empty")


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)
