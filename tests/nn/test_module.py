"""nn.Module and the containers: registration, traversal, modes, state dicts, repr."""
from collections import OrderedDict

import numpy as np
import pytest

import neural_arch as na
from neural_arch import nn
from tests import fake_cupy
from tests.helpers import requires_torch, torch


class XORNet(nn.Module):
    """A plain model written as in the seeds: layers and a parameter by attribute."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(2, 4)
        self.out = nn.Linear(4, 1)
        self.scale = nn.Parameter(na.ones(1))
        self.register_buffer("calls", na.zeros((), dtype="int64"))
        self.note = "not registered"

    def forward(self, x):
        self.calls.data += 1
        return self.out(na.tanh(self.hidden(x))) * self.scale


class Block(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(n, n)
        self.norm = nn.BatchNorm1d(n)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.norm(self.fc(x)))


def _nested():
    return nn.Sequential(OrderedDict([
        ("stem", nn.Linear(3, 4)),
        ("blocks", nn.ModuleList([Block(4), nn.Linear(4, 4)])),
        ("heads", nn.ModuleDict({"cls": nn.Linear(4, 2), "drop": nn.Dropout(0.1)})),
    ]))


def _torch_nested():
    t = torch.nn

    class TBlock(t.Module):
        def __init__(self, n):
            super().__init__()
            self.fc = t.Linear(n, n)
            self.norm = t.BatchNorm1d(n)
            self.act = t.ReLU()

        def forward(self, x):
            return self.act(self.norm(self.fc(x)))
    return t.Sequential(OrderedDict([
        ("stem", t.Linear(3, 4)),
        ("blocks", t.ModuleList([TBlock(4), t.Linear(4, 4)])),
        ("heads", t.ModuleDict({"cls": t.Linear(4, 2), "drop": t.Dropout(0.1)})),
    ]))


# ---- registration and traversal -----------------------------------------------------------

def test_attributes_register_parameters_buffers_and_modules():
    net = XORNet()
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert [n for n, _ in net.named_buffers()] == ["calls"]
    assert [n for n, _ in net.named_children()] == ["hidden", "out"]
    assert [type(m).__name__ for m in net.modules()] == ["XORNet", "Linear", "Linear"]
    assert net.note == "not registered" and "note" not in net.state_dict()
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]


def test_shared_parameters_and_modules_are_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.modules())) == 3            # Sequential, Linear, ReLU


@requires_torch
def test_names_and_repr_match_torch_for_a_nested_model():
    net, tnet = _nested(), _torch_nested()
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in tnet.named_parameters()]
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert [n for n, _ in net.named_modules()] == [n for n, _ in tnet.named_modules()]
    # TBlock and Block differ only in the class name.
    assert repr(net) == repr(tnet).replace("TBlock", "Block")


@requires_torch
def test_a_torch_state_dict_loads_and_gives_the_same_outputs():
    torch.manual_seed(0)
    net, tnet = _nested(), _torch_nested().double()
    net.double()
    tnet.eval()
    net.eval()
    with torch.no_grad():
        for m in tnet.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    net.load_state_dict({k: v.numpy() for k, v in tnet.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 3))

    def run(model, x):
        h = model.stem(x)
        for b in model.blocks:
            h = b(h)
        return model.heads["cls"](model.heads["drop"](h))
    with torch.no_grad():
        expected = run(tnet, torch.tensor(x)).numpy()
    np.testing.assert_allclose(run(net, na.Tensor(x)).numpy(), expected, rtol=1e-12)


# ---- modes, gradients, apply -------------------------------------------------------------

def test_train_and_eval_reach_every_submodule():
    net = _nested()
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not net.heads["drop"].training
    with pytest.raises(TypeError, match="expects a bool"):
        net.train("yes")


def test_zero_grad_and_requires_grad():
    net = XORNet()
    net(na.randn(3, 2)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_apply_visits_children_first():
    net = _nested()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen[-1] == "Sequential" and seen[0] == "Linear"
    assert seen.index("Block") > seen.index("BatchNorm1d")
    net.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert not net.stem.weight.numpy().any() and not net.heads["cls"].weight.numpy().any()


def test_custom_module_trains_with_a_plain_gradient_step():
    na.manual_seed(0)
    net = XORNet()
    x = na.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = na.tensor([[0.0], [1.0], [1.0], [0.0]])
    first = None
    for _ in range(300):
        loss = ((net(x) - y) ** 2).mean()
        first = first if first is not None else loss.item()
        net.zero_grad()
        loss.backward()
        for p in net.parameters():
            p.data -= 0.3 * p.grad.data
    assert loss.item() < 0.05 < first
    assert int(net.calls.data) == 300


# ---- state dicts ------------------------------------------------------------------------------

def test_state_dict_round_trip():
    a, b = XORNet(), XORNet()
    sd = a.state_dict()
    # Own parameters, own buffers, then each child's (PyTorch's order).
    assert list(sd) == ["scale", "calls", "hidden.weight", "hidden.bias", "out.weight",
                        "out.bias"]
    assert sd["hidden.weight"] is a.hidden.weight.data         # live arrays, as in torch
    assert b.load_state_dict(sd) == ([], [])
    x = na.randn(4, 2)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    assert b.hidden.weight.data is not a.hidden.weight.data    # copied in


def test_strict_loading_lists_missing_unexpected_and_mismatched_keys():
    net = XORNet()
    before = {k: v.copy() for k, v in net.state_dict().items()}
    sd = dict(XORNet().state_dict())
    del sd["out.bias"]
    sd["extra.weight"] = np.zeros(3)
    sd["hidden.weight"] = np.zeros((5, 2))
    with pytest.raises(ValueError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    assert "missing keys: ['out.bias']" in msg and "unexpected keys: ['extra.weight']" in msg
    assert "shape mismatch for 'hidden.weight': expected (4, 2), got (5, 2)" in msg
    for k, v in net.state_dict().items():                      # nothing half-loaded
        np.testing.assert_array_equal(v, before[k])


def test_non_strict_loading_reports_and_still_refuses_shape_mismatches():
    net = XORNet()
    sd = {"out.bias": np.full(1, 3.0), "stray": np.zeros(2)}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert unexpected == ["stray"] and "hidden.weight" in missing and "out.bias" not in missing
    assert net.out.bias.numpy()[0] == 3.0 and net.out.bias.dtype == np.float32
    with pytest.raises(ValueError, match="shape mismatch for 'out.bias'"):
        net.load_state_dict({"out.bias": np.zeros(2)}, strict=False)


def test_register_buffer_persistent_and_not():
    m = nn.Module()
    m.register_buffer("kept", na.ones(2))
    m.register_buffer("scratch", na.zeros(2), persistent=False)
    m.register_buffer("empty", None)
    assert list(m.state_dict()) == ["kept"]
    assert [n for n, _ in m.named_buffers()] == ["kept", "scratch"]
    assert list(m.parameters()) == []
    with pytest.raises(TypeError, match="buffer 'bad' must be a Tensor or None"):
        m.register_buffer("bad", np.zeros(2))
    m.kept = na.zeros(2)                                       # reassigning a buffer
    assert not m.state_dict()["kept"].any()


# ---- containers -------------------------------------------------------------------------------

def test_sequential_spellings_indexing_and_append():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    for seq in (nn.Sequential(*layers), nn.Sequential(layers), nn.Sequential(tuple(layers))):
        assert len(seq) == 3 and list(seq) == layers and seq[-1] is layers[2]
        assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
        x = na.randn(4, 2)
        np.testing.assert_array_equal(seq(x).numpy(),
                                      layers[2](layers[1](layers[0](x))).numpy())
    head = nn.Sequential(layers)[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    seq = nn.Sequential().append(nn.Tanh())
    assert len(seq) == 1 and [n for n, _ in seq.named_children()] == ["0"]
    named = nn.Sequential(OrderedDict([("a", nn.Linear(1, 1)), ("b", nn.Sigmoid())]))
    assert list(named.state_dict()) == ["a.weight", "a.bias"]
    with pytest.raises(TypeError, match="Sequential item 1 is not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_module_list_and_module_dict():
    ml = nn.ModuleList([nn.Linear(2, 2)])
    ml.append(nn.Linear(2, 3)).extend([nn.ReLU()])
    assert len(ml) == 3 and isinstance(ml[1], nn.Linear) and len(ml[1:]) == 2
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    md = nn.ModuleDict({"enc": nn.Linear(2, 2)})
    md["dec"] = nn.Linear(2, 1)
    assert "dec" in md and list(md) == ["enc", "dec"] and len(md) == 2
    assert list(md.keys()) == ["enc", "dec"] and md["enc"] is list(md.values())[0]
    assert [n for n, _ in md.named_parameters()] == ["enc.weight", "enc.bias", "dec.weight",
                                                     "dec.bias"]
    with pytest.raises(TypeError, match="is not a Module"):
        ml.append("relu")


# ---- attribute rules, devices, dtypes -------------------------------------------------------

def test_attribute_rules():
    class Early(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)
    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) first"):
        Early()
    net = XORNet()
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'scale'"):
        net.scale = np.ones(1)
    with pytest.raises(TypeError, match="cannot assign int to sub-module 'out'"):
        net.out = 3
    net.scale = None
    assert "scale" not in net.state_dict()
    del net.out
    assert [n for n, _ in net.named_children()] == ["hidden"]
    with pytest.raises(AttributeError, match="'XORNet' object has no attribute 'out'"):
        net.out


def test_to_moves_and_casts_parameters_and_buffers():
    fake_cupy.register()
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    assert net.double() is net
    assert net[0].weight.dtype == np.float64 and net[1].running_var.dtype == np.float64
    assert net[1].num_batches_tracked.dtype == np.int64         # integers are not cast
    net.to("fake")
    assert {t.device for t in list(net.parameters()) + list(net.buffers())} == {"fake:0"}
    y = net(na.randn(4, 2, dtype="float64").to("fake"))
    y.sum().backward()
    assert net[0].weight.grad.device == "fake:0"
    net.to("cpu")
    assert net[0].weight.grad.device == "cpu" and net[1].running_mean.device == "cpu"
