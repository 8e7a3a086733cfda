"""neural_arch.data: datasets, random_split, DataLoader, the shipped digits, generators."""
from __future__ import annotations

import hashlib
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neural_arch as na
import neural_arch.nn as nn
from neural_arch import backend
from neural_arch.data import (Batch, ConcatDataset, DataLoader, Dataset, Subset,
                              TensorDataset, default_collate, load_digits, make_circles,
                              make_moons, make_regression, make_spirals, make_xor,
                              random_split)
from neural_arch.losses.functional import cross_entropy
from tests import fake_cupy

fake_cupy.register()


def _np(t):
    return backend.asnumpy(t.data if isinstance(t, na.Tensor) else t)


class ListDataset(Dataset):
    """A dataset read example by example (no batch gather)."""

    def __init__(self, items):
        self.items = list(items)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


# ---- the shipped digits -------------------------------------------------------------------

def test_digits_file_is_the_uci_test_set_unchanged():
    X, y = load_digits(normalize=False, flatten=False, dtype="float64")
    assert X.shape == (1797, 1, 8, 8) and y.shape == (1797,) and y.dtype == np.int64
    images = X.reshape(1797, 8, 8).astype(np.uint8)
    digest = hashlib.sha256(images.tobytes() + y.astype(np.uint8).tobytes()).hexdigest()
    assert digest == "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert X.min() == 0 and X.max() == 16 and np.all(X == np.round(X))
    # The first image is a zero (its top row in the UCI file: 0 0 5 13 9 1 0 0).
    assert y[0] == 0 and X[0, 0, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def test_load_digits_options():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    raw, _ = load_digits(normalize=False)
    np.testing.assert_array_equal(X * 16, raw)
    na.set_default_dtype("float64")
    assert load_digits()[0].dtype == np.float64
    ds = load_digits(as_dataset=True, flatten=False)
    assert isinstance(ds, TensorDataset) and len(ds) == 1797
    assert tuple(ds[5][0].shape) == (1, 8, 8) and ds[5][1].item() == y[5]
    with pytest.raises(TypeError, match="floating dtype"):
        load_digits(dtype="int32")


def test_load_digits_returns_fresh_arrays():
    X, y = load_digits()
    X[:] = -1.0
    y[:] = 99
    X2, y2 = load_digits()
    assert X2.min() == 0.0 and y2.max() == 9


# ---- Dataset, TensorDataset, Subset, ConcatDataset ----------------------------------------

def test_tensor_dataset_rows_and_no_copy():
    x = np.arange(12.0).reshape(6, 2)
    t = na.Tensor(np.arange(6))
    ds = TensorDataset(x, t)
    assert len(ds) == 6 and ds.tensors[0] is x and ds.tensors[1] is t.data
    a, b = ds[4]
    assert isinstance(a, na.Tensor) and a.tolist() == [8.0, 9.0] and b.item() == 4
    assert "TensorDataset((6, 2), (6,))" == repr(ds)


def test_tensor_dataset_from_lists():
    ds = TensorDataset([[0.5, 1.0], [2.0, 3.0]], [0, 1])
    assert ds.tensors[0].dtype == np.float32 and ds.tensors[1].dtype == np.int64


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match="same length.*\\[3, 4\\]"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(np.zeros(3), np.float64(1.0))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(TypeError, match="objects"):
        TensorDataset([object(), object()])


def test_base_dataset_must_be_subclassed():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="__len__"):
        len(Dataset())


def test_subset_and_concat():
    base = ListDataset("abcdef")
    sub = Subset(base, [5, 0, -1])
    assert len(sub) == 3 and [sub[i] for i in range(3)] == ["f", "a", "f"]
    cat = base + ListDataset("xy")
    assert isinstance(cat, ConcatDataset) and len(cat) == 8
    assert [cat[i] for i in range(8)] == list("abcdefxy") and cat[-1] == "y"
    with pytest.raises(IndexError, match="out of range"):
        cat[8]
    with pytest.raises(IndexError, match="length 6"):
        Subset(base, [0, 6])
    with pytest.raises(TypeError, match="integers"):
        Subset(base, [0.5])


# ---- random_split -------------------------------------------------------------------------

def test_random_split_sizes_partition_and_seed():
    ds = ListDataset(range(10))
    a, b, c = random_split(ds, [5, 3, 2], seed=3)
    got = [[p[i] for i in range(len(p))] for p in (a, b, c)]
    assert [len(g) for g in got] == [5, 3, 2]
    assert sorted(sum(got, [])) == list(range(10))
    again = random_split(ds, [5, 3, 2], generator=np.random.default_rng(3))
    assert [list(p.indices) for p in again] == [list(p.indices) for p in (a, b, c)]
    other = random_split(ds, [5, 3, 2], seed=4)
    assert [list(p.indices) for p in other] != [list(p.indices) for p in (a, b, c)]


def test_random_split_global_generator_follows_manual_seed():
    ds = ListDataset(range(20))
    na.manual_seed(7)
    first = [list(p.indices) for p in random_split(ds, [10, 10])]
    na.manual_seed(7)
    assert [list(p.indices) for p in random_split(ds, [10, 10])] == first


@pytest.mark.parametrize("n, fractions", [(10, [0.8, 0.2]), (11, [0.5, 0.5]),
                                          (7, [0.3, 0.3, 0.4]), (1797, [0.8, 0.2])])
def test_random_split_fraction_sizes_match_torch(n, fractions):
    torch = pytest.importorskip("torch")
    ds = ListDataset(range(n))
    expected = [len(p) for p in torch.utils.data.random_split(range(n), fractions)]
    assert [len(p) for p in random_split(ds, fractions, seed=0)] == expected


def test_random_split_errors():
    ds = ListDataset(range(5))
    with pytest.raises(ValueError, match="sum to 4, but the dataset has 5"):
        random_split(ds, [2, 2])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.6])
    with pytest.raises(ValueError, match="sum to 1, got \\[2.0, 0.6\\]"):
        random_split(ds, [2, 0.6])
    with pytest.raises(TypeError, match="all integers or all fractions"):
        random_split(ds, ["3", 2])
    with pytest.raises(ValueError, match="either generator or seed"):
        random_split(ds, [5], generator=np.random.default_rng(0), seed=0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        random_split(ds, [5], generator=0)
    with pytest.raises(ValueError, match="non-negative integer"):
        random_split(ds, [5], seed=-1)


# ---- DataLoader ---------------------------------------------------------------------------

def _pairs(n=10, d=3):
    x = np.arange(n * d, dtype=np.float32).reshape(n, d)
    return TensorDataset(x, np.arange(n))


@pytest.mark.parametrize("n, bs, drop_last, sizes", [
    (10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, True, [4, 4]),
    (3, 5, False, [3]), (3, 5, True, [])])
def test_loader_batches_in_order(n, bs, drop_last, sizes):
    loader = DataLoader(_pairs(n), batch_size=bs, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) and [len(b.targets) for b in batches] == sizes
    seen = np.concatenate([_np(b.targets) for b in batches]) if batches else np.array([])
    np.testing.assert_array_equal(seen, np.arange(sum(sizes)))


def test_loader_yields_batches_of_tensors_named_inputs_targets():
    x, y = next(iter(DataLoader(_pairs(), batch_size=4)))
    b = next(iter(DataLoader(_pairs(), batch_size=4)))
    assert isinstance(b, Batch) and isinstance(b, tuple)
    assert b.inputs is b[0] and isinstance(x, na.Tensor) and not x.requires_grad
    assert x.shape == (4, 3) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(_np(y), [0, 1, 2, 3])


def test_shuffle_with_seed_is_reproducible_and_new_each_epoch():
    a = DataLoader(_pairs(20), batch_size=6, shuffle=True, seed=1)
    b = DataLoader(_pairs(20), batch_size=6, shuffle=True, seed=1)
    epochs_a = [np.concatenate([_np(t) for _, t in a]) for _ in range(3)]
    epochs_b = [np.concatenate([_np(t) for _, t in b]) for _ in range(3)]
    for ea, eb in zip(epochs_a, epochs_b):
        np.testing.assert_array_equal(ea, eb)
        assert sorted(ea.tolist()) == list(range(20))      # each epoch sees everything once
    assert not np.array_equal(epochs_a[0], epochs_a[1])
    c = DataLoader(_pairs(20), batch_size=6, shuffle=True, seed=2)
    assert not np.array_equal(np.concatenate([_np(t) for _, t in c]), epochs_a[0])


def test_shuffle_without_seed_follows_manual_seed():
    loader = DataLoader(_pairs(30), batch_size=30, shuffle=True)
    na.manual_seed(11)
    first = _np(next(iter(loader)).targets)
    na.manual_seed(11)
    np.testing.assert_array_equal(_np(next(iter(loader)).targets), first)
    gen = DataLoader(_pairs(30), batch_size=30, shuffle=True,
                     generator=np.random.default_rng(5))
    np.testing.assert_array_equal(_np(next(iter(gen)).targets),
                                  np.random.default_rng(5).permutation(30))


def test_fast_gather_equals_example_by_example_collate():
    ds = _pairs(13)
    fast = DataLoader(ds, batch_size=5, shuffle=True, seed=0)
    slow = DataLoader(ds, batch_size=5, shuffle=True, seed=0, collate_fn=default_collate)
    for bf, bs in zip(fast, slow):
        assert type(bf) is type(bs) is Batch
        for tf, ts in zip(bf, bs):
            assert tf.dtype == ts.dtype and tf.shape == ts.shape
            np.testing.assert_array_equal(_np(tf), _np(ts))
    # A Subset of a TensorDataset gathers too, in the subset's order.
    sub = Subset(ds, [12, 3, 7])
    assert _np(next(iter(DataLoader(sub, batch_size=3))).targets).tolist() == [12, 3, 7]


def test_subclass_overriding_getitem_is_read_example_by_example():
    class Doubled(TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x * 2, y

    b = next(iter(DataLoader(Doubled(np.ones((4, 2)), np.arange(4)), batch_size=4)))
    np.testing.assert_array_equal(_np(b.inputs), np.full((4, 2), 2.0))


def test_single_array_dataset_gives_one_tuple():
    (x,) = next(iter(DataLoader(TensorDataset(np.arange(6.0)), batch_size=4)))
    assert _np(x).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_default_collate_structures():
    Pair = namedtuple("Pair", "image label")
    out = default_collate([Pair(np.zeros(2), 1), Pair(np.ones(2), 2)])
    assert type(out) is Pair and _np(out.label).tolist() == [1, 2]
    out = default_collate([{"x": 1.5, "name": "a", "ok": True},
                           {"x": 2.5, "name": "b", "ok": False}])
    assert out["x"].dtype == np.float32 and _np(out["x"]).tolist() == [1.5, 2.5]
    assert out["name"] == ["a", "b"] and out["ok"].dtype == np.bool_
    three = default_collate([(1, 2.0, np.zeros(3)), (4, 5.0, np.ones(3))])
    assert type(three) is tuple and len(three) == 3 and three[2].shape == (2, 3)
    as_list = default_collate([[1, 2], [3, 4]])
    assert isinstance(as_list, list) and _np(as_list[0]).tolist() == [1, 3]


def test_default_collate_errors():
    with pytest.raises(ValueError, match="different shapes"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match="different numbers of fields"):
        default_collate([(1, 2), (1, 2, 3)])
    with pytest.raises(TypeError, match="cannot batch examples of type object"):
        default_collate([object()])
    with pytest.raises(ValueError, match="empty"):
        default_collate([])


def test_custom_collate_fn_output_moved_to_device():
    def collate(samples):
        return {"x": np.stack([s[0] for s in samples]), "n": len(samples)}

    loader = DataLoader(ListDataset([(np.ones(2), 0)] * 3), batch_size=2, collate_fn=collate,
                        device="fake")
    first = next(iter(loader))
    assert isinstance(first["x"], na.Tensor) and first["x"].device == "fake:0"
    assert first["n"] == 2


def test_loader_puts_batches_on_the_device():
    loader = DataLoader(_pairs(7), batch_size=3, shuffle=True, seed=0, device="fake")
    batches = list(loader)
    assert all(t.device == "fake:0" for b in batches for t in b)
    host = list(DataLoader(_pairs(7), batch_size=3, shuffle=True, seed=0))
    for bd, bh in zip(batches, host):
        np.testing.assert_array_equal(_np(bd.inputs), _np(bh.inputs))
    # Data already on the device stays there and is gathered there.
    x = backend.to_device(np.arange(8.0).reshape(4, 2), "fake")
    y = backend.to_device(np.arange(4), "fake")
    b = next(iter(DataLoader(TensorDataset(x, y), batch_size=2, shuffle=True, seed=0)))
    assert b.inputs.device == "fake:0" and b.targets.device == "fake:0"
    np.testing.assert_array_equal(_np(b.inputs), _np(x)[_np(b.targets)])
    # With the default device set, host data goes there.
    na.set_default_device("fake")
    assert next(iter(DataLoader(_pairs(3), batch_size=3))).inputs.device == "fake:0"


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(batch_size=0), ValueError, "batch_size must be a positive integer, got 0"),
    (dict(batch_size=2.0), ValueError, "batch_size"),
    (dict(batch_size=True), ValueError, "batch_size"),
    (dict(shuffle="yes"), TypeError, "shuffle must be True or False"),
    (dict(drop_last=1), TypeError, "drop_last"),
    (dict(collate_fn=3), TypeError, "collate_fn must be callable"),
    (dict(device="tpu"), Exception, "unknown device 'tpu'"),
    (dict(seed=1.5), ValueError, "seed must be a non-negative integer"),
])
def test_loader_rejects_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        DataLoader(_pairs(), **kwargs)


def test_loader_needs_a_dataset():
    with pytest.raises(TypeError, match="__len__ and __getitem__, got int"):
        DataLoader(5)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 40), bs=st.integers(1, 12), drop_last=st.booleans(),
       shuffle=st.booleans())
def test_loader_covers_the_dataset(n, bs, drop_last, shuffle):
    loader = DataLoader(_pairs(n, 2), batch_size=bs, shuffle=shuffle, drop_last=drop_last,
                        seed=0)
    batches = list(loader)
    assert len(batches) == len(loader)
    assert all(len(b.targets) == bs for b in batches[:-1])
    seen = [int(v) for b in batches for v in _np(b.targets)]
    assert len(seen) == len(set(seen)) == (n // bs * bs if drop_last else n)
    for b in batches:
        np.testing.assert_array_equal(_np(b.inputs)[:, 0], 2 * _np(b.targets))


def test_training_through_the_loader_learns_the_digits():
    # A softmax regression on 600 digits for 3 epochs: the loader feeds real training.
    X, y = load_digits()
    loader = DataLoader(TensorDataset(X[:600], y[:600]), batch_size=50, shuffle=True, seed=0)
    na.manual_seed(0)
    model = nn.Linear(64, 10)
    opt = na.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        for xb, yb in loader:
            loss = cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with na.no_grad():
        pred = model(na.Tensor(X[600:])).data.argmax(axis=1)
    assert (pred == y[600:]).mean() > 0.85


# ---- generators ---------------------------------------------------------------------------

GENERATORS = [make_spirals, make_moons, make_circles, make_xor]


@pytest.mark.parametrize("make", GENERATORS)
def test_generators_shape_dtype_balance_and_seed(make):
    X, y = make(101, seed=0)
    assert X.shape == (101, 2) and X.dtype == np.float32 and y.dtype == np.int64
    counts = np.bincount(y)
    assert counts.max() - counts.min() <= 1
    X2, y2 = make(101, seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = make(101, seed=1)
    assert not np.array_equal(X, X3)
    assert make(10, seed=0, dtype="float64")[0].dtype == np.float64
    na.manual_seed(3)
    a = make(20)
    na.manual_seed(3)
    np.testing.assert_array_equal(a[0], make(20)[0])


@pytest.mark.parametrize("make", GENERATORS + [make_regression])
def test_generators_reject_bad_arguments(make):
    with pytest.raises(ValueError, match="n_samples must be an integer"):
        make(0)
    with pytest.raises(ValueError, match="noise must be a non-negative number"):
        make(20, noise=-0.1)
    with pytest.raises(ValueError, match="seed must be"):
        make(20, seed="a")


def test_generator_geometry_without_noise():
    X, y = make_circles(200, noise=0.0, factor=0.3, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(r[y == 1], 0.3, rtol=1e-6)
    X, y = make_moons(200, noise=0.0, seed=0)
    np.testing.assert_allclose(np.hypot(X[y == 0, 0], X[y == 0, 1]), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.hypot(X[y == 1, 0] - 1, X[y == 1, 1] - 0.5), 1.0,
                               rtol=1e-6)
    assert (X[y == 0, 1] >= -1e-6).all() and (X[y == 1, 1] <= 0.5 + 1e-6).all()
    X, y = make_xor(40, noise=0.0, seed=0)
    np.testing.assert_array_equal(np.abs(X), 1.0)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(int))
    X, y = make_spirals(90, n_classes=3, noise=0.0, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.max() <= 1.0 + 1e-6 and np.bincount(y).tolist() == [30, 30, 30]
    with pytest.raises(ValueError, match="factor"):
        make_circles(10, factor=1.0)
    with pytest.raises(ValueError, match="n_classes"):
        make_spirals(10, n_classes=1)


def test_noisy_xor_and_moons_stay_near_their_clean_shapes():
    X, y = make_xor(400, noise=0.1, seed=0)
    assert ((X[:, 0] * X[:, 1] < 0).astype(int) == y).mean() > 0.99
    X, y = make_spirals(300, noise=0.2, seed=0, shuffle=False)
    assert y[:100].tolist() == [0] * 100          # shuffle=False keeps class order


def test_make_regression_recovers_its_coefficients():
    X, y, coef = make_regression(500, n_features=3, n_targets=2, noise=0.01, bias=1.5,
                                 return_coef=True, seed=0, dtype="float64")
    assert X.shape == (500, 3) and y.shape == (500, 2) and coef.shape == (3, 2)
    A = np.hstack([X, np.ones((500, 1))])
    sol = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(sol[:3], coef, atol=5e-3)
    np.testing.assert_allclose(sol[3], 1.5, atol=5e-3)
    resid = y - A @ sol
    assert 0.008 < resid.std() < 0.012                    # the noise level asked for
    X1, y1 = make_regression(seed=0)
    assert X1.shape == (200, 1) and y1.shape == (200, 1) and y1.dtype == np.float32


def test_sampler_decides_the_indices_and_their_order():
    ds = TensorDataset(na.arange(10).astype("float32"), na.arange(10))
    loader = DataLoader(ds, batch_size=3, sampler=[9, 1, 4, 4, 0])
    batches = [b.targets.numpy().tolist() for b in loader]
    assert batches == [[9, 1, 4], [4, 0]] and len(loader) == 2
    assert len(DataLoader(ds, batch_size=3, drop_last=True, sampler=[9, 1, 4, 4, 0])) == 1


def test_sampler_with_shuffle_or_without_len_is_refused():
    ds = TensorDataset(na.arange(4).astype("float32"))
    with pytest.raises(ValueError, match="sampler and shuffle=True"):
        DataLoader(ds, shuffle=True, sampler=[0, 1])
    with pytest.raises(TypeError, match="sampler must be an iterable"):
        DataLoader(ds, sampler=iter([0, 1]))
