"""Classification losses: torch parity (functional and Module), NumPy formulas, derivatives."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neural_arch as na
import neural_arch.losses as L
import neural_arch.losses.functional as LF
from neural_arch.autograd import gradcheck, gradgradcheck
from tests.helpers import requires_torch, torch
from tests.losses import assert_parity, grad_tensors

if torch is not None:
    import torch.nn.functional as TF

REDUCTIONS = ["mean", "sum", "none"]
SHAPES = [(5, 4), (4,), (2, 3, 4, 2)]          # (N, C), unbatched (C,), (N, C, d1, d2)


def _class_shape(shape):
    return shape[1:2] if len(shape) == 1 else shape[:1] + shape[2:]


def _logits(shape, seed=0, scale=3.0):
    return np.random.default_rng(seed).uniform(-scale, scale, shape)


def _indices(shape, seed=0, ignore=None):
    """Class indices for logits of ``shape``; about a third set to ``ignore`` if given."""
    rng = np.random.default_rng(seed + 100)
    n_classes = shape[0] if len(shape) == 1 else shape[1]
    t = rng.integers(0, n_classes, _class_shape(shape) if len(shape) > 1 else ())
    if ignore is not None:
        mask = rng.random(t.shape) < 0.35
        if t.ndim == 0:
            mask = np.asarray(False)
        elif not mask.any():
            mask.flat[0] = True
        t = np.where(mask, ignore, t)
    return np.asarray(t, dtype=np.int64)


def _probabilities(shape, seed=0):
    axis = 0 if len(shape) == 1 else 1
    e = np.exp(np.random.default_rng(seed + 200).normal(size=shape))
    return e / e.sum(axis=axis, keepdims=True)


def _class_weight(shape, seed=0):
    n_classes = shape[0] if len(shape) == 1 else shape[1]
    return np.random.default_rng(seed + 300).uniform(0.2, 2.0, n_classes)


# ---- cross-entropy ---------------------------------------------------------------------------

# (weighted, ignore_index or None, label_smoothing)
CE_OPTIONS = [(w, ig, ls) for w, ig, ls in itertools.product([False, True], [None, -100, 1],
                                                              [0.0, 0.2])]


def _ce_case(shape, weighted, ignore, seed=0):
    w = _class_weight(shape, seed) if weighted else None
    t = _indices(shape, seed, ignore=ignore)
    kwargs = {} if ignore is None else {"ignore_index": ignore}
    return w, t, kwargs


# One unbatched sample is not combined with ignore_index: ignoring it leaves nothing.
CE_INDEX_CASES = [(shape,) + opt for shape in SHAPES for opt in CE_OPTIONS
                  if len(shape) > 1 or opt[1] is None]


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,weighted,ignore,smoothing", CE_INDEX_CASES,
                         ids=lambda v: str(v).replace(" ", ""))
def test_cross_entropy_class_indices_match_torch(shape, weighted, ignore, smoothing,
                                                 reduction):
    w, t, kw = _ce_case(shape, weighted, ignore)
    x = _logits(shape)
    tw = None if w is None else torch.tensor(w)
    assert_parity(
        lambda a, b: LF.cross_entropy(a, b, weight=w, reduction=reduction,
                                      label_smoothing=smoothing, **kw),
        lambda a, b: TF.cross_entropy(a, b, weight=tw, reduction=reduction,
                                      label_smoothing=smoothing, **kw),
        [x, t])
    assert_parity(
        L.CrossEntropyLoss(weight=w, reduction=reduction, label_smoothing=smoothing, **kw),
        torch.nn.CrossEntropyLoss(weight=tw, reduction=reduction, label_smoothing=smoothing,
                                  **kw),
        [x, t])


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,smoothing", [(False, 0.0), (True, 0.0), (False, 0.3),
                                                (True, 0.3)])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cross_entropy_probabilities_match_torch(shape, weighted, smoothing, reduction):
    x, p = _logits(shape, 1), _probabilities(shape, 1)
    w = _class_weight(shape, 1) if weighted else None
    tw = None if w is None else torch.tensor(w)
    # The gradient reaches the target too.
    assert_parity(
        lambda a, b: LF.cross_entropy(a, b, weight=w, reduction=reduction,
                                      label_smoothing=smoothing),
        lambda a, b: TF.cross_entropy(a, b, weight=tw, reduction=reduction,
                                      label_smoothing=smoothing),
        [x, p], grad=(0, 1))
    assert_parity(
        L.CrossEntropyLoss(weight=w, reduction=reduction, label_smoothing=smoothing),
        torch.nn.CrossEntropyLoss(weight=tw, reduction=reduction, label_smoothing=smoothing),
        [x, p])


@requires_torch
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(2, 4),
       spatial=st.lists(st.integers(1, 3), max_size=2), weighted=st.booleans(),
       ignore=st.sampled_from([None, -100, 0]), smoothing=st.sampled_from([0.0, 0.15]),
       reduction=st.sampled_from(REDUCTIONS), seed=st.integers(0, 50))
def test_cross_entropy_any_spatial_dims_match_torch(n, c, spatial, weighted, ignore,
                                                    smoothing, reduction, seed):
    shape = (n, c) + tuple(spatial)
    w, t, kw = _ce_case(shape, weighted, ignore, seed)
    tw = None if w is None else torch.tensor(w)
    # Every target may be ignored: then 'mean' is NaN with a zero gradient, as in torch.
    assert_parity(
        lambda a, b: LF.cross_entropy(a, b, weight=w, reduction=reduction,
                                      label_smoothing=smoothing, **kw),
        lambda a, b: TF.cross_entropy(a, b, weight=tw, reduction=reduction,
                                      label_smoothing=smoothing, **kw),
        [_logits(shape, seed), t])


def test_cross_entropy_equals_log_softmax_then_nll_and_has_an_alias():
    x, t = _logits((6, 5), 2), _indices((6, 5), 2)
    a = LF.cross_entropy(na.Tensor(x), t).item()
    b = LF.nll_loss(na.functional.log_softmax(na.Tensor(x), 1), t).item()
    ref = -np.mean((x - np.log(np.exp(x).sum(1, keepdims=True)))[np.arange(6), t])
    np.testing.assert_allclose([a, b], [ref, ref], rtol=1e-13)
    assert LF.cross_entropy_loss is LF.cross_entropy


def test_cross_entropy_accepts_tensor_targets_and_list_weights():
    x, t = _logits((4, 3), 3), _indices((4, 3), 3)
    a = LF.cross_entropy(na.Tensor(x), na.Tensor(t), weight=[1.0, 2.0, 0.5])
    b = LF.cross_entropy(na.Tensor(x), t, weight=np.array([1.0, 2.0, 0.5]))
    assert a.item() == b.item()


@pytest.mark.parametrize("fn", [LF.cross_entropy, LF.nll_loss])
def test_mean_with_every_target_ignored_is_nan_with_zero_gradient_like_torch(fn):
    x = na.Tensor(_logits((3, 4)), requires_grad=True)
    t = np.full(3, -100)
    loss = fn(x, t)
    loss.backward()
    assert np.isnan(loss.item())
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))
    assert fn(x, t, reduction="sum").item() == 0.0


CE_GRAD_CASES = [
    ("plain", (3, 4), dict()),
    ("weight_ignore_smoothing", (2, 3, 2), dict(weight=np.array([0.5, 1.0, 2.0]),
                                               ignore_index=1, label_smoothing=0.1)),
    ("unbatched_sum", (4,), dict(reduction="sum")),
]


@pytest.mark.parametrize("name,shape,kw", CE_GRAD_CASES, ids=[c[0] for c in CE_GRAD_CASES])
def test_cross_entropy_gradcheck_and_gradgradcheck(name, shape, kw):
    t = _indices(shape, 4)
    xs = grad_tensors([_logits(shape, 4, 1.5)])
    fn = lambda x: LF.cross_entropy(x, t, **kw)       # noqa: E731
    assert gradcheck(fn, xs)
    assert gradgradcheck(fn, xs)


def test_cross_entropy_probability_targets_second_derivatives_in_both_inputs():
    shape = (3, 4)
    xs = grad_tensors([_logits(shape, 5, 1.5), _probabilities(shape, 5)], grad=(0, 1))
    fn = lambda x, p: LF.cross_entropy(x, p, weight=np.array([1.0, 0.5, 2.0, 1.5]),  # noqa
                                       label_smoothing=0.2)
    assert gradcheck(fn, xs)
    assert gradgradcheck(fn, xs)


@requires_torch
def test_cross_entropy_hessian_vector_product_matches_torch():
    x, t = _logits((3, 4), 6), _indices((3, 4), 6)
    v = np.random.default_rng(6).standard_normal((3, 4))
    a = na.Tensor(x, requires_grad=True)
    (g,) = na.autograd.grad(LF.cross_entropy(a, t, label_smoothing=0.1), [a],
                            create_graph=True)
    (hv,) = na.autograd.grad((g * na.Tensor(v)).sum(), [a])
    ta = torch.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad(TF.cross_entropy(ta, torch.from_numpy(t), label_smoothing=0.1),
                                ta, create_graph=True)
    (thv,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), ta)
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-9, atol=1e-12)


# ---- NLL ---------------------------------------------------------------------------------

NLL_CASES = [(shape, w, ig) for shape in SHAPES
             for w, ig in [(False, None), (True, None), (False, -100), (True, 2)]
             if len(shape) > 1 or ig is None]


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,weighted,ignore", NLL_CASES,
                         ids=lambda v: str(v).replace(" ", ""))
def test_nll_loss_matches_torch(shape, weighted, ignore, reduction):
    w, t, kw = _ce_case(shape, weighted, ignore, seed=7)
    x = _logits(shape, 7)          # any scores work as log-probabilities for the parity
    tw = None if w is None else torch.tensor(w)
    assert_parity(lambda a, b: LF.nll_loss(a, b, weight=w, reduction=reduction, **kw),
                  lambda a, b: TF.nll_loss(a, b, weight=tw, reduction=reduction, **kw),
                  [x, t])
    assert_parity(L.NLLLoss(weight=w, reduction=reduction, **kw),
                  torch.nn.NLLLoss(weight=tw, reduction=reduction, **kw), [x, t])


def test_nll_loss_gradcheck_and_ignores_minus_inf_elsewhere():
    t = _indices((2, 3, 2), 8, ignore=-100)
    xs = grad_tensors([_logits((2, 3, 2), 8)])
    fn = lambda x: LF.nll_loss(x, t, weight=np.array([0.5, 1.0, 2.0]))   # noqa: E731
    assert gradcheck(fn, xs)
    assert gradgradcheck(fn, xs)
    # log(0) = -inf for classes that are not the target does no harm.
    with np.errstate(divide="ignore"):
        logp = np.log(np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]))
    assert LF.nll_loss(na.Tensor(logp), np.array([0, 2])).item() == pytest.approx(
        0.5 * np.log(2.0))


# ---- binary cross-entropy ----------------------------------------------------------------

def _bce_inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, shape), rng.uniform(0.0, 1.0, shape)


# (input shape, weight shape broadcastable against it)
BCE_CASES = [((4,), None), ((4,), (4,)), ((2, 3), None), ((2, 3), (3,)), ((2, 3), (2, 1)),
             ((2, 2, 3), None), ((2, 2, 3), (2, 1, 3))]


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,weight_shape", BCE_CASES,
                         ids=lambda v: str(v).replace(" ", ""))
def test_binary_cross_entropy_matches_torch(shape, weight_shape, reduction):
    x, y = _bce_inputs(shape, 9)
    w = None if weight_shape is None else np.random.default_rng(9).uniform(0.5, 2, weight_shape)
    tw = None if w is None else torch.tensor(w)
    assert_parity(lambda a, b: LF.binary_cross_entropy(a, b, weight=w, reduction=reduction),
                  lambda a, b: TF.binary_cross_entropy(a, b, weight=tw, reduction=reduction),
                  [x, y], grad=(0, 1))
    assert_parity(L.BCELoss(weight=w, reduction=reduction),
                  torch.nn.BCELoss(weight=tw, reduction=reduction), [x, y])


def test_binary_cross_entropy_gradcheck():
    x, y = _bce_inputs((3, 2), 10)
    xs = grad_tensors([x, y], grad=(0, 1))
    fn = lambda a, b: LF.binary_cross_entropy(a, b, weight=np.array([1.0, 2.0]))  # noqa: E731
    assert gradcheck(fn, xs)
    assert gradgradcheck(fn, xs)


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,pos_weighted", [(False, False), (True, False),
                                                   (False, True), (True, True)])
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 3)])
def test_binary_cross_entropy_with_logits_matches_torch(shape, weighted, pos_weighted,
                                                        reduction):
    rng = np.random.default_rng(11)
    x, y = rng.uniform(-4, 4, shape), rng.uniform(0, 1, shape)
    w = rng.uniform(0.5, 2, shape) if weighted else None
    pw = rng.uniform(0.5, 3, shape[-1:]) if pos_weighted else None
    tw = None if w is None else torch.tensor(w)
    tpw = None if pw is None else torch.tensor(pw)
    assert_parity(
        lambda a, b: LF.binary_cross_entropy_with_logits(a, b, weight=w, reduction=reduction,
                                                         pos_weight=pw),
        lambda a, b: TF.binary_cross_entropy_with_logits(a, b, weight=tw, reduction=reduction,
                                                         pos_weight=tpw),
        [x, y], grad=(0, 1))
    assert_parity(L.BCEWithLogitsLoss(weight=w, reduction=reduction, pos_weight=pw),
                  torch.nn.BCEWithLogitsLoss(weight=tw, reduction=reduction, pos_weight=tpw),
                  [x, y])


def test_binary_cross_entropy_with_logits_gradcheck_and_agrees_with_bce():
    rng = np.random.default_rng(12)
    x, y = rng.uniform(-3, 3, (3, 2)), rng.uniform(0, 1, (3, 2))
    pw = np.array([2.0, 0.5])
    xs = grad_tensors([x, y], grad=(0, 1))
    fn = lambda a, b: LF.binary_cross_entropy_with_logits(a, b, pos_weight=pw)  # noqa: E731
    assert gradcheck(fn, xs)
    assert gradgradcheck(fn, xs)
    p = na.functional.sigmoid(na.Tensor(x))
    np.testing.assert_allclose(LF.binary_cross_entropy_with_logits(na.Tensor(x), y).item(),
                               LF.binary_cross_entropy(p, y).item(), rtol=1e-12)


# ---- KL divergence -----------------------------------------------------------------------

@requires_torch
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 2)])
def test_kl_div_matches_torch(shape, log_target, reduction):
    x = np.log(_probabilities(shape, 13))
    y = _probabilities(shape, 14)
    y.flat[0] = 0.0                          # 0 log 0 = 0
    if log_target:
        y = np.log(np.where(y > 0, y, 0.1))
    assert_parity(lambda a, b: LF.kl_div(a, b, reduction=reduction, log_target=log_target),
                  lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target),
                  [x, y], grad=(0,))
    assert_parity(L.KLDivLoss(reduction=reduction, log_target=log_target),
                  torch.nn.KLDivLoss(reduction=reduction, log_target=log_target), [x, y])


@requires_torch
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_target_gradient_matches_torch(log_target):
    x = np.log(_probabilities((3, 4), 15))
    y = _probabilities((3, 4), 16)
    if log_target:
        y = np.log(y)
    assert_parity(lambda a, b: LF.kl_div(a, b, "batchmean", log_target),
                  lambda a, b: TF.kl_div(a, b, reduction="batchmean", log_target=log_target),
                  [x, y], grad=(0, 1))
    xs = grad_tensors([x, y], grad=(0, 1))
    fn = lambda a, b: LF.kl_div(a, b, "sum", log_target)   # noqa: E731
    assert gradcheck(fn, xs)
    assert gradgradcheck(fn, xs)


def test_kl_div_batchmean_is_the_divergence_per_sample():
    p, q = _probabilities((4, 3), 17), _probabilities((4, 3), 18)
    ref = np.mean(np.sum(p * np.log(p / q), axis=1))
    out = LF.kl_div(na.Tensor(np.log(q)), p, reduction="batchmean")
    np.testing.assert_allclose(out.item(), ref, rtol=1e-13)


# ---- focal loss --------------------------------------------------------------------------

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _torchvision_focal(x, y, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss, reduction='none', written out in NumPy."""
    p = _sigmoid(x)
    ce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


def _multiclass_focal(x, t, alpha, gamma):
    """-alpha_y (1 - p_y)^gamma log p_y over the class axis 1 (Lin et al., eq. 5)."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p_y = np.take_along_axis(p, t[:, None], axis=1)[:, 0]
    a = 1.0 if alpha is None else (np.asarray(alpha)[t] if np.ndim(alpha) else alpha)
    return -a * (1 - p_y) ** gamma * np.log(p_y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.6, 1.5), (-1, 2.0), (0.25, 0.0)])
def test_binary_focal_matches_torchvision_formula(alpha, gamma, reduction):
    rng = np.random.default_rng(19)
    x = rng.uniform(-4, 4, (3, 5))
    y = (rng.random((3, 5)) < 0.4).astype(np.float64)
    ref = _torchvision_focal(x, y, alpha, gamma)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    out = LF.focal_loss(na.Tensor(x), y, alpha=alpha, gamma=gamma, reduction=reduction)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-15)
    mod = L.FocalLoss(alpha=alpha, gamma=gamma, reduction=reduction)
    np.testing.assert_allclose(mod(na.Tensor(x), y).numpy(), ref, rtol=1e-12, atol=1e-15)


@requires_torch
def test_binary_focal_gradient_matches_torch_autograd_of_torchvision_formula():
    rng = np.random.default_rng(20)
    x, y = rng.uniform(-4, 4, (4, 3)), rng.uniform(0, 1, (4, 3))   # soft labels allowed

    def tv(a, b, alpha=0.25, gamma=2.0):
        p = torch.sigmoid(a)
        ce = TF.binary_cross_entropy_with_logits(a, b, reduction="none")
        p_t = p * b + (1 - p) * (1 - b)
        return ((alpha * b + (1 - alpha) * (1 - b)) * ce * (1 - p_t) ** gamma).mean()

    assert_parity(lambda a, b: LF.focal_loss(a, b), tv, [x, y], grad=(0, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (None, 2.0), ([0.2, 0.3, 0.5], 1.0),
                                         (1.0, 0.0)])
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 2)])
def test_multiclass_focal_matches_numpy(shape, alpha, gamma, reduction):
    x, t = _logits(shape, 21), _indices(shape, 21)
    ref = _multiclass_focal(x, t, alpha, gamma)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    out = LF.focal_loss(na.Tensor(x), t, alpha=alpha, gamma=gamma, reduction=reduction)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-15)


@requires_torch
def test_multiclass_focal_with_gamma_0_and_alpha_1_is_cross_entropy():
    x, t = _logits((2, 4, 3), 22), _indices((2, 4, 3), 22)
    assert_parity(lambda a: LF.focal_loss(a, t, alpha=1.0, gamma=0.0),
                  lambda a: TF.cross_entropy(a, torch.from_numpy(t)), [x])


FOCAL_GRAD_CASES = [
    ("binary", (3, 4), "binary"),
    ("binary_one_channel", (2, 1, 2, 2), "mask"),
    ("multiclass", (2, 3, 2), "index"),
]


@pytest.mark.parametrize("name,shape,kind", FOCAL_GRAD_CASES, ids=[c[0] for c in FOCAL_GRAD_CASES])
def test_focal_gradcheck_and_gradgradcheck(name, shape, kind):
    rng = np.random.default_rng(23)
    if kind == "index":
        t = _indices(shape, 23)
    elif kind == "mask":
        t = rng.integers(0, 2, (shape[0],) + shape[2:])
    else:
        t = (rng.random(shape) < 0.5).astype(np.float64)
    xs = grad_tensors([_logits(shape, 23, 2.0)])
    fn = lambda x: LF.focal_loss(x, t, alpha=0.3, gamma=2.0)   # noqa: E731
    assert gradcheck(fn, xs)
    assert gradgradcheck(fn, xs)


def test_focal_loss_module_takes_segmentation_shapes_as_they_come():
    rng = np.random.default_rng(24)
    focal = L.FocalLoss(alpha=0.25, gamma=2.0)
    # (N, C, H, W) logits with integer (N, H, W) class maps: multi-class.
    x = na.Tensor(rng.normal(size=(2, 4, 3, 3)), requires_grad=True)
    t = rng.integers(0, 4, (2, 3, 3))
    loss = focal(x, t)
    np.testing.assert_allclose(loss.item(), _multiclass_focal(x.numpy(), t, 0.25, 2.0).mean(),
                               rtol=1e-12)
    loss.backward()
    assert x.grad.shape == x.shape
    # (N, 1, H, W) logits with a {0, 1} mask, given as (N, H, W) ints or (N, 1, H, W) floats.
    x1 = rng.normal(size=(2, 1, 3, 3))
    mask = rng.integers(0, 2, (2, 3, 3))
    ref = _torchvision_focal(x1[:, 0], mask, 0.25, 2.0).mean()
    np.testing.assert_allclose(focal(na.Tensor(x1), mask).item(), ref, rtol=1e-12)
    np.testing.assert_allclose(focal(na.Tensor(x1), mask[:, None].astype(float)).item(), ref,
                               rtol=1e-12)
    assert focal(na.Tensor(x1), mask).shape == ()
    assert L.FocalLoss(reduction="none")(na.Tensor(x1), mask).shape == (2, 3, 3)


# ---- margin and embedding losses --------------------------------------------------------------

def _signs(shape, seed):
    return np.where(np.random.default_rng(seed).random(shape) < 0.5, -1.0, 1.0)


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.7])
@pytest.mark.parametrize("shape", [(6,), (3, 4)])
def test_margin_ranking_loss_matches_torch(shape, margin, reduction):
    rng = np.random.default_rng(25)
    x1, x2, y = rng.normal(size=shape), rng.normal(size=shape), _signs(shape, 25)
    assert_parity(lambda a, b, c: LF.margin_ranking_loss(a, b, c, margin, reduction),
                  lambda a, b, c: TF.margin_ranking_loss(a, b, c, margin=margin,
                                                         reduction=reduction),
                  [x1, x2, y], grad=(0, 1))
    assert_parity(L.MarginRankingLoss(margin, reduction),
                  torch.nn.MarginRankingLoss(margin=margin, reduction=reduction),
                  [x1, x2, y], grad=(0, 1))


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.5])
@pytest.mark.parametrize("shape", [(6,), (3, 4)])
def test_hinge_embedding_loss_matches_torch(shape, margin, reduction):
    x = np.random.default_rng(26).uniform(0, 2, shape)
    y = _signs(shape, 26)
    assert_parity(lambda a, b: LF.hinge_embedding_loss(a, b, margin, reduction),
                  lambda a, b: TF.hinge_embedding_loss(a, b, margin=margin,
                                                       reduction=reduction), [x, y])
    assert_parity(L.HingeEmbeddingLoss(margin, reduction),
                  torch.nn.HingeEmbeddingLoss(margin=margin, reduction=reduction), [x, y])


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3])
@pytest.mark.parametrize("n", [None, 5])
def test_cosine_embedding_loss_matches_torch(n, margin, reduction):
    rng = np.random.default_rng(27)
    shape = (4,) if n is None else (n, 4)
    x1, x2 = rng.normal(size=shape), rng.normal(size=shape)
    y = _signs(shape[:-1], 27)
    assert_parity(lambda a, b, c: LF.cosine_embedding_loss(a, b, c, margin, reduction),
                  lambda a, b, c: TF.cosine_embedding_loss(a, b, c, margin=margin,
                                                           reduction=reduction),
                  [x1, x2, y], grad=(0, 1))
    assert_parity(L.CosineEmbeddingLoss(margin, reduction),
                  torch.nn.CosineEmbeddingLoss(margin=margin, reduction=reduction),
                  [x1, x2, y], grad=(0, 1))


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p,swap", [(2.0, False), (2.0, True), (1.0, False), (3.0, True)])
@pytest.mark.parametrize("n", [None, 5])
def test_triplet_margin_loss_matches_torch(n, p, swap, reduction):
    rng = np.random.default_rng(28)
    shape = (4,) if n is None else (n, 4)
    a, pos, neg = (rng.normal(size=shape) for _ in range(3))
    pos = a + 0.5 * pos                       # some triplets inside the margin, some not
    assert_parity(lambda *t: LF.triplet_margin_loss(*t, margin=1.0, p=p, swap=swap,
                                                    reduction=reduction),
                  lambda *t: TF.triplet_margin_loss(*t, margin=1.0, p=p, swap=swap,
                                                    reduction=reduction),
                  [a, pos, neg], grad=(0, 1, 2))
    assert_parity(L.TripletMarginLoss(p=p, swap=swap, reduction=reduction),
                  torch.nn.TripletMarginLoss(p=p, swap=swap, reduction=reduction),
                  [a, pos, neg], grad=(0, 1, 2))


EMBEDDING_GRAD_CASES = [
    ("margin_ranking", 3, lambda a, b, c: LF.margin_ranking_loss(a, b, c, 0.2)),
    ("hinge_embedding", 2, lambda a, b: LF.hinge_embedding_loss(a, b, 1.5)),
    ("cosine_embedding", 3, lambda a, b, c: LF.cosine_embedding_loss(a, b, c, 0.1)),
    ("triplet", 3, lambda a, b, c: LF.triplet_margin_loss(a, b, c, margin=3.0, swap=True)),
]


@pytest.mark.parametrize("name,n_inputs,fn", EMBEDDING_GRAD_CASES,
                         ids=[c[0] for c in EMBEDDING_GRAD_CASES])
def test_embedding_losses_gradcheck_and_gradgradcheck(name, n_inputs, fn):
    rng = np.random.default_rng(29)
    if name == "hinge_embedding":
        arrays = [rng.uniform(0, 1.4, (3, 2)), _signs((3, 2), 29)]
    elif name == "cosine_embedding":
        arrays = [rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), _signs((3,), 29)]
    elif name == "triplet":
        arrays = [rng.normal(size=(3, 4)) for _ in range(3)]
    else:
        arrays = [rng.normal(size=(5,)), rng.normal(size=(5,)), _signs((5,), 29)]
    grad = (0, 1, 2) if name == "triplet" else (0, 1) if n_inputs == 3 else (0,)
    xs = grad_tensors(arrays, grad)
    assert gradcheck(fn, xs)
    assert gradgradcheck(fn, xs)


# ---- Modules ----------------------------------------------------------------------------------

def test_weight_buffers_are_saved_in_the_state_dict():
    ce = L.CrossEntropyLoss(weight=np.array([1.0, 2.0, 3.0]))
    assert set(ce.state_dict()) == {"weight"}
    bce = L.BCEWithLogitsLoss(pos_weight=np.array([2.0]))
    assert set(bce.state_dict()) == {"pos_weight"}
    assert L.NLLLoss().weight is None
    assert "label_smoothing=0.0" in repr(L.CrossEntropyLoss())


def test_every_loss_is_exported_in_both_forms():
    functional = ["cross_entropy", "cross_entropy_loss", "nll_loss", "binary_cross_entropy",
                  "binary_cross_entropy_with_logits", "kl_div", "focal_loss",
                  "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss",
                  "triplet_margin_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
                  "huber_loss", "log_cosh_loss", "quantile_loss"]
    modules = ["CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss",
               "FocalLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss",
               "TripletMarginLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss",
               "LogCoshLoss", "QuantileLoss"]
    for name in functional:
        assert name in LF.__all__ and callable(getattr(LF, name))
    for name in modules:
        assert name in L.__all__ and issubclass(getattr(L, name), na.nn.Module)
