"""neural_arch.distributed and DistributedOptimizer.

Two kinds of tests:

* in this process (a job of one: no launcher), the API, its errors, the sampler
  against PyTorch's, and the wrappers against their base optimizer;
* under ``mpirun`` (scripts in tests/distributed_scripts/, run by subprocess with a
  timeout): 2-process training against one process on the concatenated batches,
  ZeRO-1 against plain data parallelism, a failing rank, seed 001 with 4 processes,
  and ``neural-arch train --distributed``. These are skipped when ``mpirun`` or
  mpi4py is missing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neural_arch as na
from neural_arch import distributed as dist
from neural_arch import nn
from neural_arch.distributed import _comm
from neural_arch.losses.functional import mse_loss
from neural_arch.optim import DistributedOptimizer

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tests" / "distributed_scripts"
MPIRUN = shutil.which("mpirun")
HAVE_MPI = MPIRUN is not None and dist.is_available()
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs mpirun and mpi4py "
                               "(pip install 'neural_arch[dist]', apt-get install openmpi-bin)")


@pytest.fixture(autouse=True)
def _fresh_group(monkeypatch):
    """Each test starts without a process group (and leaves none behind)."""
    for name in _comm._LAUNCHER_VARIABLES + ("NEURAL_ARCH_DIST_TIMEOUT",):
        monkeypatch.delenv(name, raising=False)
    _comm._GROUP[0] = None
    yield
    _comm._GROUP[0] = None


def _model(seed=0):
    na.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()


def _data(seed=0, n=5):
    rng = np.random.default_rng(seed)
    return na.Tensor(rng.standard_normal((n, 4))), na.Tensor(rng.standard_normal((n, 2)))


# ---- the process group without a launcher ------------------------------------------------

def test_one_process_without_a_launcher():
    assert not dist.is_initialized()
    assert (dist.rank(), dist.world_size(), dist.local_rank()) == (0, 1, 0)
    assert dist.is_initialized()
    g = dist.init()
    assert g is dist.init() and g.size == 1 and not g.gpu_aware
    dist.barrier()
    t = na.Tensor([1.0, 2.0])
    assert dist.all_reduce(t, op="mean") is t and t.data.tolist() == [1.0, 2.0]
    objs = [None]
    dist.all_gather_object(objs, {"a": 1})
    assert objs == [{"a": 1}]
    assert dist.get_rank is dist.rank and dist.get_world_size is dist.world_size


def test_init_arguments_are_checked():
    with pytest.raises(ValueError, match="backend must be 'mpi'"):
        dist.init(backend="nccl")
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        dist.init(timeout=0)
    with pytest.raises(TypeError, match="abort_on_error"):
        dist.init(abort_on_error="yes")
    assert dist.init(timeout=5).timeout == 5.0
    assert dist.init(timeout=7).timeout == 7.0          # a second call may change it


def test_timeout_from_the_environment(monkeypatch):
    monkeypatch.setenv("NEURAL_ARCH_DIST_TIMEOUT", "12.5")
    assert dist.init().timeout == 12.5
    _comm._GROUP[0] = None
    monkeypatch.setenv("NEURAL_ARCH_DIST_TIMEOUT", "soon")
    with pytest.raises(dist.DistributedError, match="NEURAL_ARCH_DIST_TIMEOUT"):
        dist.init()
    _comm._GROUP[0] = None
    monkeypatch.delenv("NEURAL_ARCH_DIST_TIMEOUT")
    assert dist.init().timeout == dist.DEFAULT_TIMEOUT


def test_launched_without_mpi4py_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)       # import mpi4py fails
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    assert _comm.launched_by_mpi()
    with pytest.raises(dist.DistributedError, match=r"pip install 'neural_arch\[dist\]'"):
        dist.init()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")        # mpirun -n 1: one process
    assert not _comm.launched_by_mpi()
    assert dist.world_size() == 1


def test_collective_arguments_are_checked():
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(na.Tensor([1.0]), op="avg")
    with pytest.raises(TypeError, match="Tensor or an array"):
        dist.all_reduce([1.0, 2.0])
    with pytest.raises(ValueError, match=r"src must be a rank in \[0, 0\]"):
        dist.broadcast(na.Tensor([1.0]), src=1)
    with pytest.raises(ValueError, match="list of world_size"):
        dist.all_gather_object([None, None], 1)
    a = np.arange(6.0).reshape(2, 3).T                  # not contiguous: works through a copy
    assert dist.broadcast(a, src=0) is a


# ---- DistributedDataParallel in one process --------------------------------------------------

def test_ddp_in_one_process_is_the_module():
    x, y = _data()
    plain, wrapped = _model(), dist.DistributedDataParallel(_model())
    for m in (plain, wrapped):
        mse_loss(m(x), y).backward()
    for p, q in zip(plain.parameters(), wrapped.parameters()):
        np.testing.assert_array_equal(p.grad.data, q.grad.data)
    assert list(wrapped.state_dict()) == ["module." + k for k in plain.state_dict()]
    assert wrapped.module is not plain and "world_size=1" in repr(wrapped)
    assert dist.DDP is dist.DistributedDataParallel
    wrapped.sync_gradients()                  # one process: nothing changes
    np.testing.assert_array_equal(wrapped.module[0].weight.grad.data,
                                  plain[0].weight.grad.data)


def test_sync_point_runs_once_every_gradient_is_complete():
    # What DDP relies on: the sync point, recorded before the module's forward, runs
    # its backward only after every later node, so the gradients it averages are final.
    from neural_arch.distributed.ddp import _attach, _SyncPoint

    class Recorder:
        calls = []

        def _after_backward(self):
            self.calls.append([None if p.grad is None else p.grad.data.copy()
                               for p in model.parameters()])

    model = _model()
    x, y = _data()
    anchor = na.Tensor(np.zeros(()), requires_grad=True)
    z = _SyncPoint(Recorder())(anchor)
    h = model[1](model[0](x))
    out = _attach({"logits": model[2](h), "extra": (h, "text")}, z)
    assert isinstance(out, dict) and out["extra"][1] == "text"
    # The loss also uses a parameter directly, after the forward pass.
    loss = mse_loss(out["logits"], y) + (out["extra"][0] ** 2).mean() \
        + (model[0].weight ** 2).sum()
    loss.backward()
    assert len(Recorder.calls) == 1 and anchor.grad is None
    for seen, p in zip(Recorder.calls[0], model.parameters()):
        np.testing.assert_array_equal(seen, p.grad.data)


def test_ddp_arguments_are_checked():
    with pytest.raises(TypeError, match="wraps a Module"):
        dist.DistributedDataParallel(lambda x: x)
    with pytest.raises(ValueError, match="bucket_cap_mb must be a positive"):
        dist.DistributedDataParallel(_model(), bucket_cap_mb=0)
    with pytest.raises(TypeError, match="broadcast_buffers"):
        dist.DistributedDataParallel(_model(), broadcast_buffers=1)
    ddp = dist.DistributedDataParallel(_model())
    with pytest.raises(TypeError, match="already a DistributedDataParallel"):
        dist.DistributedDataParallel(ddp)


def test_no_sync_restores_the_flag_after_an_error():
    ddp = dist.DistributedDataParallel(_model())
    with pytest.raises(KeyError):
        with ddp.no_sync():
            assert ddp.require_backward_grad_sync is False
            raise KeyError("inside")
    assert ddp.require_backward_grad_sync is True


def test_seed000_block_runs_in_one_process():
    # Seed 000: "model = DDP(model)" then LARS(model.parameters(), lr=1e-3, momentum=0.9,
    # weight_decay=1e-4); the process group comes from init().
    from neural_arch.distributed import DistributedDataParallel as DDP
    dist.init()
    model = DDP(_model())
    optimizer = na.optimizers.LARS(model.parameters(), lr=1e-3, momentum=0.9,
                                   weight_decay=1e-4)
    before = [p.data.copy() for p in model.parameters()]
    x, y = _data()
    mse_loss(model(x), y).backward()
    optimizer.step()
    assert any(not np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))


# ---- DistributedSampler -----------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 23), replicas=st.integers(1, 5), drop_last=st.booleans(),
       data=st.data())
def test_sampler_matches_torch_without_shuffle(n, replicas, drop_last, data):
    torch_data = pytest.importorskip("torch.utils.data")
    rank = data.draw(st.integers(0, replicas - 1))
    ours = dist.DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False,
                                   drop_last=drop_last)
    ref = torch_data.DistributedSampler(range(n), num_replicas=replicas, rank=rank,
                                        shuffle=False, drop_last=drop_last)
    assert list(ours) == list(ref)
    assert len(ours) == len(ref) == ours.num_samples
    assert ours.total_size == ref.total_size


@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shuffles_one_order_shared_by_the_ranks(drop_last):
    n, replicas = 17, 3

    def shares(epoch, seed=4):
        out = []
        for r in range(replicas):
            s = dist.DistributedSampler(range(n), replicas, r, shuffle=True, seed=seed,
                                        drop_last=drop_last)
            s.set_epoch(epoch)
            out.append(list(s))
        return out

    for epoch in (0, 1):
        parts = shares(epoch)
        flat = [i for part in parts for i in part]
        assert len({len(p) for p in parts}) == 1
        if drop_last:
            assert len(set(flat)) == len(flat) == 15          # disjoint, tail dropped
        else:
            assert set(flat) == set(range(n)) and len(flat) == 18   # one index repeated
    assert shares(0) == shares(0)                         # the same on every call
    assert shares(0) != shares(1)                         # set_epoch changes the order
    assert shares(0) != shares(0, seed=5)


def test_sampler_defaults_come_from_the_group_and_bad_input_is_refused():
    s = dist.DistributedSampler(range(4))
    assert (s.num_replicas, s.rank, s.shuffle, s.seed, s.drop_last) == (1, 0, True, 0, False)
    assert sorted(s) == [0, 1, 2, 3] and "rank 0 of 1" in repr(s)
    with pytest.raises(ValueError, match=r"rank must lie in \[0, 1\]"):
        dist.DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be an integer >= 1"):
        dist.DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        dist.DistributedSampler(range(4), 1, 0, shuffle="yes")
    with pytest.raises(TypeError, match="__len__"):
        dist.DistributedSampler(iter(range(4)), 1, 0)
    with pytest.raises(ValueError, match="epoch must be an integer"):
        s.set_epoch(-1)


# ---- DistributedOptimizer in one process --------------------------------------------------------

def _train(opt_of, steps=3, seed=0):
    model = _model(seed)
    opt = opt_of(model)
    for t in range(steps):
        x, y = _data(t)
        opt.zero_grad()
        mse_loss(model(x), y).backward()
        opt.step()
    return [p.data.copy() for p in model.parameters()], opt


@pytest.mark.parametrize("stage", [0, 1])
def test_distributed_optimizer_in_one_process_is_its_base(stage):
    ref, base = _train(lambda m: na.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1))
    got, opt = _train(lambda m: DistributedOptimizer(
        model=m, optimizer_type="adamw", learning_rate=1e-2, weight_decay=0.1,
        zero_stage=stage))
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)
    assert type(opt.base_optimizer) is na.optim.AdamW and opt.step_count == 3
    assert opt.state_bytes() == 2 * sum(a.nbytes for a in ref)      # exp_avg, exp_avg_sq
    sd = opt.state_dict()
    assert sd["step_count"] == 3 and sorted(sd["state"]) == list(range(4))
    ref_sd = base.state_dict()
    for k in ref_sd["state"]:
        np.testing.assert_array_equal(sd["state"][k]["exp_avg"], ref_sd["state"][k]["exp_avg"])


def test_distributed_optimizer_spellings():
    model = _model()
    by_class = DistributedOptimizer(model.parameters(), na.optim.SGD, 0.1, momentum=0.9)
    assert by_class.lr == 0.1 and by_class.base_optimizer.param_groups[0]["momentum"] == 0.9
    built = na.optim.Adam(model.parameters(), lr=3e-3)
    wrapped = DistributedOptimizer(base_optimizer=built)
    assert wrapped.base_optimizer is built and wrapped.param_groups is built.param_groups
    assert wrapped.state is built.state
    wrapped.lr = 1e-3
    assert built.lr == 1e-3
    assert "zero_stage=0" in repr(wrapped) and "AdamW" not in repr(wrapped)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(optimizer_type="adam"), TypeError, "needs the parameters"),
    (dict(model="both", params="both", optimizer_type="adam"), TypeError, "one of them"),
    (dict(model="m"), TypeError, "needs optimizer_type"),
    (dict(model="m", optimizer_type=3), TypeError, "optimizer name or class"),
    (dict(model="m", optimizer_type="adam", world_size=4), ValueError,
     r"has 1 process\(es\); start it with: mpirun -n 4"),
    (dict(model="m", optimizer_type="adam", world_size=0), ValueError, "positive integer"),
    (dict(model="m", optimizer_type="adam", zero_stage=2), ValueError, "zero_stage must be"),
    (dict(model="m", optimizer_type="adam", bucket_cap_mb=-1), ValueError, "bucket_cap_mb"),
    (dict(model="m", optimizer_type=na.optim.SGD, learning_rate=0.1, lr=0.2), TypeError,
     "given twice"),
    (dict(base_optimizer="built", learning_rate=0.1), TypeError, "base_optimizer= and also"),
    (dict(base_optimizer="not an optimizer"), TypeError, "built Optimizer"),
])
def test_distributed_optimizer_arguments_are_checked(kwargs, error, match):
    model = _model()
    kwargs = dict(kwargs)
    for key in ("model", "params"):
        if key in kwargs:
            kwargs[key] = model if key == "model" else model.parameters()
    if kwargs.get("base_optimizer") == "built":
        kwargs["base_optimizer"] = na.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(error, match=match):
        DistributedOptimizer(**kwargs)


def test_seed001_block_names_the_missing_processes():
    # Seed 001 as written: in a job of 4 processes it works (test_seed001_with_4_processes);
    # run alone it says how to start it.
    from neural_arch.optimizers import DistributedOptimizer as FromAlias
    assert FromAlias is DistributedOptimizer
    with pytest.raises(ValueError, match="mpirun -n 4"):
        FromAlias(model=_model(), optimizer_type='adamw', learning_rate=1e-4, world_size=4)
    opt = FromAlias(model=_model(), optimizer_type='adamw', learning_rate=1e-4, world_size=1)
    assert type(opt.base_optimizer).__name__ == "AdamW"


@pytest.mark.parametrize("make, match", [
    (lambda ps: na.optim.LBFGS(ps), "LBFGS couples all parameters"),
    (lambda ps: na.optim.SAM(ps, na.optim.SGD, lr=0.1), "SAM couples all parameters"),
    (lambda ps: na.optim.Adam(ps, contiguous=True), "contiguous"),
    (lambda ps: na.optim.create_optimizer(ps, optimizer_name="sgd", lr=0.1,
                                          gradient_clipping={"max_norm": 1.0}),
     "use max_grad_norm="),
])
def test_zero1_refuses_optimizers_it_cannot_shard(make, match):
    with pytest.raises(ValueError, match=match):
        DistributedOptimizer(base_optimizer=make(_model().parameters()), zero_stage=1)


def test_zero1_clips_over_all_parameters_and_schedulers_reach_the_base():
    ref, _ = _train(lambda m: na.optim.SGD(m.parameters(), lr=0.5, max_grad_norm=0.01))
    got, opt = _train(lambda m: DistributedOptimizer(
        m.parameters(), "sgd", 0.5, max_grad_norm=0.01, zero_stage=1))
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)
    assert opt.max_grad_norm == 0.01 and opt.base_optimizer.max_grad_norm is None
    opt.max_grad_norm = 0.02
    assert opt.max_grad_norm == 0.02 and opt.base_optimizer.max_grad_norm is None
    sched = na.optim.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    assert opt.lr == 0.25 and opt.base_optimizer.param_groups[0]["lr"] == 0.5
    opt.step()                        # the group's hyper-parameters reach the base
    assert opt.base_optimizer.param_groups[0]["lr"] == 0.25


@pytest.mark.parametrize("stage", [0, 1])
def test_added_groups_are_optimized(stage):
    model = _model()
    opt = DistributedOptimizer(model[0].parameters(), "sgd", 0.1, zero_stage=stage)
    opt.add_param_group({"params": model[2].parameters(), "lr": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert sum(len(g["params"]) for g in opt.base_optimizer.param_groups) == 4
    before = [p.data.copy() for p in model.parameters()]
    x, y = _data()
    mse_loss(model(x), y).backward()
    grads = [p.grad.data.copy() for p in model.parameters()]
    opt.step()
    for p, b, g, lr in zip(model.parameters(), before, grads, [0.1, 0.1, 0.5, 0.5]):
        np.testing.assert_allclose(p.data, b - lr * g, rtol=1e-12)


def test_closure_loss_is_returned():
    model = _model()
    opt = DistributedOptimizer(model.parameters(), na.optim.LBFGS, lr=1, max_iter=3)
    x, y = _data()

    def closure():
        opt.zero_grad()
        loss = mse_loss(model(x), y)
        loss.backward()
        return loss
    first = float(opt.step(closure).item())
    assert first > float(closure().item())


def test_zero1_state_dict_loads_into_an_unsharded_optimizer():
    _, sharded = _train(lambda m: DistributedOptimizer(m.parameters(), "adam", 1e-2,
                                                       zero_stage=1))
    sd = sharded.state_dict()
    model = _model()
    plain = na.optim.Adam(model.parameters(), lr=1e-2)
    plain.load_state_dict(sd)
    assert plain.step_count == 3
    again = DistributedOptimizer(model.parameters(), "adam", 1e-2, zero_stage=1)
    again.load_state_dict(plain.state_dict())
    assert again.step_count == 3 and len(again.state) == 4
    with pytest.raises(ValueError, match="parameter groups"):
        again.load_state_dict({"state": {}, "param_groups": [], "step_count": 0})


# ---- under mpirun -------------------------------------------------------------------------

def _mpirun(n, *args, timeout=60):
    """Run ``mpirun -n n python args...`` from the repository root; (result, seconds)."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    start = time.monotonic()
    r = subprocess.run([MPIRUN, "-n", str(n), sys.executable, *map(str, args)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - start


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "results.json"
    r, _ = _mpirun(2, SCRIPTS / "equivalence.py", out)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(out.read_text())


@needs_mpi
@pytest.mark.parametrize("check", ["ddp_sgd", "ddp_lars", "distopt_zero0", "distopt_zero1",
                                   "ddp_zero1_lars", "ddp_two_calls", "ddp_no_sync",
                                   "distopt_lbfgs", "ddp_fake_device"])
def test_two_processes_train_like_one_on_the_whole_batch(two_process_results, check):
    res = two_process_results[check]
    assert res["max_diff"] < 1e-12, res
    assert res["replicas_equal"]


@needs_mpi
def test_two_process_details(two_process_results):
    r = two_process_results
    assert r["ddp_no_sync"]["local_differ"]               # no_sync really kept them local
    assert r["distopt_lbfgs"]["loss_diff"] < 1e-12        # the closure's loss is averaged
    assert r["ddp_fake_device"]["device"] == "fake:0"
    assert not r["ddp_fake_device"]["gpu_aware"]          # so through host copies
    assert r["ddp_batchnorm"]["buckets"] == 6             # one tensor per tiny bucket
    assert r["ddp_batchnorm"]["replicas_equal"] and r["ddp_batchnorm"]["buffers_equal"]
    assert r["ddp_batchnorm"]["local_stats_differ"]       # so the broadcast did the work
    assert r["unused_params"] == {"unused_is_none": True, "rank0_only_grad": [0.5, 0.5],
                                  "replicas_equal": True}
    assert r["collectives"] == {"mean": [1.5, 3.0], "max": [1.0],
                                "broadcast": [10.0, 11.0, 12.0],
                                "objects": [{"rank": 0}, {"rank": 1}]}
    for epoch in (0, 1):
        a, b = (share[epoch] for share in r["sampler"]["shares"])
        assert len(a) == len(b) == 6 and set(a) | set(b) == set(range(11))


@needs_mpi
def test_zero1_gives_the_parameters_of_plain_data_parallelism(two_process_results):
    r = two_process_results
    assert r["zero1_vs_plain"]["identical"]
    assert r["ddp_zero1_lars"]["identical_to_ddp"]        # DDP + LARS, sharded or not
    assert r["zero1_added_group"] == {"identical": True, "replicas_equal": True}
    # Each rank keeps about half of AdamW's state (whole tensors, so not exactly half).
    plain, sharded = r["distopt_zero0"]["state_bytes"], r["distopt_zero1"]["state_bytes"]
    assert plain == 1200 and sharded < 0.6 * plain
    assert r["zero1_state_dict"] == {"same_keys": True, "identical": True, "step_count": 4}
    assert r["zero1_resume"] == {"identical": True, "step_count": 5}


@needs_mpi
@pytest.mark.parametrize("mode, message", [
    ("raise", "rank 1 of 2 stopped on ValueError: rank 1 failed on purpose at step 2"),
    ("timeout", "did not complete within 2 s"),
])
def test_a_failing_rank_ends_the_job(mode, message):
    r, seconds = _mpirun(2, SCRIPTS / "failure.py", mode, timeout=40)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert "aborting all 2 processes" in r.stderr
    assert "finished" not in r.stdout
    assert seconds < 20


@needs_mpi
def test_seed001_with_4_processes():
    r, _ = _mpirun(4, SCRIPTS / "seed001.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {
        "world_size": 4, "replicas_equal": True, "base": "AdamW", "lr": 1e-4, "step_count": 3}


@needs_mpi
def test_cli_train_distributed(tmp_path):
    r, _ = _mpirun(2, "-m", "neural_arch", "train", "--distributed", "--epochs", "2",
                   "--limit", "160", "--batch-size", "20", "--output", tmp_path,
                   "--name", "run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("test_acc:") == 1                # rank 0 speaks for the job
    assert "2 processes (batch 20 each)" in r.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["history"]) == 2
    # The checkpoint holds the bare model, so evaluate reproduces the final numbers.
    from neural_arch import train_job
    again = train_job.evaluate(tmp_path / "run", stream=open(os.devnull, "w"))
    assert again["test_acc"] == pytest.approx(metrics["final"]["test_acc"])
