"""The training job behind ``neural-arch train`` and ``neural-arch evaluate``.

Kept apart from :mod:`neural_arch.cli` (which only parses arguments) so that it can
be driven from Python as well::

    from neural_arch import train_job
    cfg = train_job.resolve_config(train_job.builtin_config("mlp"), {"epochs": 5})
    result = train_job.train(cfg)
    result["test_acc"]

A configuration is a nested dict (read from YAML with ``yaml.safe_load``):

* ``seed``: seeds initialisation, shuffling, dropout and augmentation.
* ``epochs``, ``batch_size``.
* ``model``: ``name`` (``mlp`` or ``cnn``) and that model's settings.
* ``optimizer``: ``name`` (any optimizer class of :mod:`neural_arch.optim`, by
  lower-case name, e.g. ``adam``, ``sgd``) and its hyper-parameters.
* ``scheduler``: ``constant`` or ``cosine`` (per-step cosine decay to zero).
* ``data``: ``dataset`` (``digits``), ``test_fraction``, ``split_seed`` (the
  train/test split, kept apart from ``seed``), ``limit`` (train on at most this
  many examples), ``augment`` (random one-pixel shifts of the training images).
* ``output``: folder in which run folders are made; ``run_name``: the run
  folder's name (default ``<model>-<date>-<time>``); ``device``; ``threads``
  (OpenBLAS threads during the run, 1 by default; null leaves them as they are).

Unknown keys and bad values raise :class:`ConfigError` naming the key.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import datetime
import inspect
import json
import numbers
import os
import sys
import time

import numpy as np
import yaml

from . import backend, io
from . import nn, optim
from .optim import factory
from .optim.gradient_free import GradientFreeOptimizer
from .core.grad_mode import no_grad
from .core.tensor import Tensor
from .data import DataLoader, Subset, TensorDataset, load_digits
from .losses.functional import cross_entropy
from .optim.lr_scheduler import CosineAnnealingLR

__all__ = ["ConfigError", "DEFAULT_CONFIG", "builtin_config", "read_config",
           "resolve_config", "set_key", "build_model", "build_optimizer", "train",
           "evaluate", "TrainResult"]


class ConfigError(ValueError):
    """A configuration key that does not exist, or a value that is not allowed."""


#: The configuration of ``neural-arch train`` with no arguments.
DEFAULT_CONFIG = """\
# neural-arch train: the default run, an MLP on the built-in 8x8 digits with Adam.
seed: 0                # initialisation, shuffling, dropout, augmentation
epochs: 40
batch_size: 32
model:
  name: mlp            # mlp | cnn
  hidden: [512, 256]   # widths of the hidden layers
  activation: relu     # relu | tanh | gelu | silu | elu | leaky_relu | sigmoid
  dropout: 0.2
optimizer:
  name: adam           # any optimizer of neural_arch.optim, by lower-case name
  lr: 0.002            # further keys are that optimizer's hyper-parameters
scheduler: cosine      # constant | cosine (per-step decay to zero)
data:
  dataset: digits
  test_fraction: 0.2   # 359 of the 1797 images are held out for testing
  split_seed: 0        # the train/test split (independent of seed)
  limit: null          # train on at most this many examples (quick checks)
  augment: false       # random one-pixel shifts of the training images
output: runs           # run folders are created inside this folder
run_name: null         # default: <model>-<date>-<time>
device: cpu            # cpu | cuda | cuda:N
threads: 1             # BLAS threads (small models train fastest on one); null: as is
"""

_CNN_CONFIG = """\
# neural-arch train --config cnn: a small convolutional network on the digits.
seed: 0
epochs: 30
batch_size: 32
model:
  name: cnn
  channels: [16, 32]   # two 3x3 convolutions (padding 1), then 2x2 max-pooling
  hidden: 128          # width of the fully connected layer
  dropout: 0.25
optimizer:
  name: adam
  lr: 0.002
scheduler: cosine
data:
  dataset: digits
  test_fraction: 0.2
  split_seed: 0
  limit: null
  augment: true
output: runs
run_name: null
device: cpu
threads: 1
"""

_BUILTIN = {"mlp": DEFAULT_CONFIG, "cnn": _CNN_CONFIG}

#: Settings of each model, with their defaults (used when a config names the
#: model but leaves a setting out).
MODEL_DEFAULTS = {
    "mlp": {"hidden": [512, 256], "activation": "relu", "dropout": 0.2},
    "cnn": {"channels": [16, 32], "hidden": 128, "dropout": 0.25},
}

#: Hyper-parameters a config gets when it names the optimizer but not these.
OPTIMIZER_DEFAULTS = {
    "adam": {"lr": 0.002},
    "adamw": {"lr": 0.002, "weight_decay": 0.01},
    "sgd": {"lr": 0.05, "momentum": 0.9},
}

_ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "gelu": "GELU", "silu": "SiLU", "elu": "ELU",
                "leaky_relu": "LeakyReLU", "sigmoid": "Sigmoid"}
_SCHEDULERS = ("constant", "cosine")
_CLOSURE_ONLY = ("LBFGS",)      # step() must re-evaluate the loss: not for this loop
_TOP_KEYS = ("seed", "epochs", "batch_size", "model", "optimizer", "scheduler", "data",
             "output", "run_name", "device", "threads")
_DATA_KEYS = ("dataset", "test_fraction", "split_seed", "limit", "augment")
_DATASETS = ("digits",)
N_CLASSES = 10


# --- configuration -------------------------------------------------------------------------

def builtin_config(name: str = "mlp") -> dict:
    """The built-in configuration ``name`` (``'mlp'``, the default run, or ``'cnn'``)."""
    if name not in _BUILTIN:
        raise ConfigError(f"no built-in config {name!r}; built-in configs: {sorted(_BUILTIN)}")
    return yaml.safe_load(_BUILTIN[name])


def read_config(source) -> dict:
    """Read a configuration: a built-in name (``mlp``, ``cnn``) or a YAML file's path.

    The file is parsed with ``yaml.safe_load`` (no Python objects can be built from it)
    and must hold a mapping; it may give only the keys it changes.
    """
    source = os.fspath(source)
    if source in _BUILTIN and not os.path.exists(source):
        return builtin_config(source)
    try:
        with open(source, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {source!r} not found (built-in configs: "
                          f"{sorted(_BUILTIN)})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {source!r} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {source!r} must hold a mapping of keys to values, "
                          f"got {type(data).__name__}")
    return data


def set_key(config: dict, dotted: str, value) -> None:
    """Set ``config['a']['b'] = value`` for ``dotted = 'a.b'`` (creating sections)."""
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"bad config key {dotted!r}; expected e.g. 'optimizer.lr'")
    node = config
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None or isinstance(nxt, str) and p in ("model", "optimizer"):
            nxt = {} if nxt is None else {"name": nxt}
            node[p] = nxt
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {dotted!r}: {p!r} is not a section")
        node = nxt
    node[parts[-1]] = value


def _section(value, key):
    """A section given as a mapping, or as a bare name (``model: cnn``)."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, dict):
        raise ConfigError(f"config key {key!r} must be a mapping (or a name), got {value!r}")
    return dict(value)


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k in ("model", "optimizer"):
            v = _section(v, k)
            prev = _section(out.get(k), k)
            if "name" in v and v["name"] != prev.get("name"):
                prev = {}       # another model/optimizer: start from its own defaults
            prev.update(v)
            out[k] = prev
        elif k == "data" and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = copy.deepcopy(v)
    return out


def _unknown(keys, valid, where):
    bad = [k for k in keys if k not in valid]
    if bad:
        raise ConfigError(f"unknown config key{'s' if len(bad) > 1 else ''} "
                          f"{', '.join(repr(where + str(k)) for k in bad)}; valid keys "
                          f"{'in ' + repr(where[:-1]) + ' ' if where else ''}are: "
                          f"{', '.join(valid)}")


def _int(value, key, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"config key {key!r} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _number(value, key):
    """A real number; strings such as '1e-3' (which YAML 1.1 leaves as text) are accepted."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"config key {key!r} must be a number, got {value!r}")
    return float(value)


def _choice(value, key, choices):
    if value not in choices:
        raise ConfigError(f"config key {key!r} must be one of {', '.join(map(str, choices))}; "
                          f"got {value!r}")
    return value


def _int_list(value, key, allow_empty=True):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or (not value and not allow_empty):
        raise ConfigError(f"config key {key!r} must be a list of positive integers, "
                          f"got {value!r}")
    return [_int(v, key, 1) for v in value]


def _optimizer_classes() -> dict:
    """The registered optimizers (:mod:`neural_arch.optim.factory`) a plain loop can drive.

    By canonical registry name. Left out: wrappers that take a ``base_optimizer``
    (SAM, Lookahead, ...), optimizers whose ``step`` needs a closure (LBFGS) and the
    gradient-free searches, which evaluate the loss themselves.
    """
    out = {}
    for name in factory.available_optimizers():
        cls = factory.get_optimizer_class(name)
        if not issubclass(cls, optim.Optimizer) or issubclass(cls, GradientFreeOptimizer):
            continue
        try:
            init = inspect.signature(cls.__init__).parameters
            closure = inspect.signature(cls.step).parameters.get("closure")
        except (TypeError, ValueError):
            continue
        if "base_optimizer" in init or "optimizer_type" in init \
                or cls.__name__ in _CLOSURE_ONLY or (
                    closure is not None and closure.default is inspect.Parameter.empty):
            continue
        out[name] = cls
    return out


def _check_model(m):
    name = _choice(m.get("name"), "model.name", tuple(MODEL_DEFAULTS))
    full = {"name": name, **MODEL_DEFAULTS[name], **m}
    _unknown(full, ("name",) + tuple(MODEL_DEFAULTS[name]), "model.")
    if name == "mlp":
        full["hidden"] = _int_list(full["hidden"], "model.hidden")
        full["activation"] = _choice(full["activation"], "model.activation",
                                     tuple(_ACTIVATIONS))
    else:
        full["channels"] = _int_list(full["channels"], "model.channels", allow_empty=False)
        full["hidden"] = _int(full["hidden"], "model.hidden", 1)
    full["dropout"] = _number(full["dropout"], "model.dropout")
    if not 0.0 <= full["dropout"] < 1.0:
        raise ConfigError(f"config key 'model.dropout' must lie in [0, 1), "
                          f"got {full['dropout']!r}")
    return full


def _check_optimizer(o):
    classes = _optimizer_classes()
    name = o.get("name")
    if not isinstance(name, str) or name.lower() not in classes:
        raise ConfigError(f"config key 'optimizer.name' must be one of "
                          f"{', '.join(sorted(classes))}; got {name!r}")
    name = name.lower()
    full = {"name": name, **OPTIMIZER_DEFAULTS.get(name, {}), **o}
    full["name"] = name
    for k, v in full.items():
        if isinstance(v, str) and k != "name":
            try:
                full[k] = float(v)          # '1e-3' is text in YAML 1.1
            except ValueError:
                pass
        elif isinstance(v, list):
            full[k] = tuple(v)              # betas: [0.9, 0.999]
    # Let the optimizer itself check its hyper-parameters (names and ranges) on a
    # throw-away parameter, so a bad value fails now, not after data loading; adding
    # the keys one at a time tells which key is at fault.
    cls = classes[name]
    kwargs = {}
    for k, v in full.items():
        if k == "name":
            continue
        kwargs[k] = v
        try:
            cls([nn.Parameter(np.zeros(1, dtype=np.float32))], **kwargs)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"config key 'optimizer.{k}' ({name}): {e}") from None
    return full


def resolve_config(*layers) -> dict:
    """Merge configuration layers over the built-in default and validate the result.

    Parameters
    ----------
    *layers : dict
        Partial configurations, later ones winning. A layer that names another
        model or optimizer than the one before starts that section afresh from the
        new one's defaults (``{'model': 'cnn'}`` gives the cnn's settings, not the
        mlp's).

    Returns
    -------
    dict
        The complete configuration, every key present.

    Raises
    ------
    ConfigError
        An unknown key (the message lists the valid ones) or a bad value (the
        message names the key and what is allowed).
    """
    cfg = builtin_config("mlp")
    for layer in layers:
        if layer is None:
            continue
        if not isinstance(layer, dict):
            raise ConfigError(f"a configuration must be a mapping, got {type(layer).__name__}")
        _unknown(layer, _TOP_KEYS, "")
        cfg = _merge(cfg, layer)
    cfg["seed"] = _int(cfg["seed"], "seed", 0)
    cfg["epochs"] = _int(cfg["epochs"], "epochs", 1)
    cfg["batch_size"] = _int(cfg["batch_size"], "batch_size", 1)
    cfg["model"] = _check_model(_section(cfg["model"], "model"))
    cfg["optimizer"] = _check_optimizer(_section(cfg["optimizer"], "optimizer"))
    cfg["scheduler"] = _choice(cfg["scheduler"] or "constant", "scheduler", _SCHEDULERS)
    data = cfg["data"]
    if not isinstance(data, dict):
        raise ConfigError(f"config key 'data' must be a mapping, got {data!r}")
    _unknown(data, _DATA_KEYS, "data.")
    _choice(data["dataset"], "data.dataset", _DATASETS)
    tf = _number(data["test_fraction"], "data.test_fraction")
    if not 0.0 < tf < 1.0:
        raise ConfigError(f"config key 'data.test_fraction' must lie strictly between 0 and "
                          f"1, got {tf!r}")
    data["test_fraction"] = tf
    data["split_seed"] = _int(data["split_seed"], "data.split_seed", 0)
    if data["limit"] is not None:
        data["limit"] = _int(data["limit"], "data.limit", 1)
    if not isinstance(data["augment"], bool):
        raise ConfigError(f"config key 'data.augment' must be true or false, "
                          f"got {data['augment']!r}")
    if not isinstance(cfg["output"], str) or not cfg["output"]:
        raise ConfigError(f"config key 'output' must be a folder name, got {cfg['output']!r}")
    rn = cfg["run_name"]
    if rn is not None and (not isinstance(rn, str) or not rn or os.sep in rn or rn in ".."
                           or (os.altsep and os.altsep in rn)):
        raise ConfigError(f"config key 'run_name' must be a plain folder name (no path "
                          f"separators), got {rn!r}")
    if not isinstance(cfg["device"], str):
        raise ConfigError(f"config key 'device' must be a string such as 'cpu' or 'cuda', "
                          f"got {cfg['device']!r}")
    try:
        backend.array_module_for(cfg["device"])
    except (backend.DeviceError, TypeError) as e:
        raise ConfigError(f"config key 'device': {e}") from None
    if cfg["threads"] is not None:
        cfg["threads"] = _int(cfg["threads"], "threads", 1)
    return cfg


# --- model, optimizer, data ------------------------------------------------------------

def build_model(model_cfg: dict):
    """The model a (validated) ``model`` section describes, for 10 digit classes."""
    name = model_cfg["name"]
    p = model_cfg["dropout"]
    layers = []
    if name == "mlp":
        width = 64
        act = getattr(nn, _ACTIVATIONS[model_cfg["activation"]])
        for h in model_cfg["hidden"]:
            layers += [nn.Linear(width, h), act()]
            if p:
                layers.append(nn.Dropout(p))
            width = h
        layers.append(nn.Linear(width, N_CLASSES))
        return nn.Sequential(*layers)
    if not (hasattr(nn, "Conv2d") and hasattr(nn, "MaxPool2d")):
        raise ConfigError("model 'cnn' needs neural_arch.nn.Conv2d and MaxPool2d, which "
                          "this installation does not have yet; use model 'mlp'")
    c_in = 1
    for c in model_cfg["channels"]:
        layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU()]
        c_in = c
    layers += [nn.MaxPool2d(2), nn.Flatten()]
    if p:
        layers.append(nn.Dropout(p))
    layers += [nn.Linear(c_in * 4 * 4, model_cfg["hidden"]), nn.ReLU()]
    if p:
        layers.append(nn.Dropout(p))
    layers.append(nn.Linear(model_cfg["hidden"], N_CLASSES))
    return nn.Sequential(*layers)


def build_optimizer(opt_cfg: dict, params):
    """The optimizer an ``optimizer`` section describes, over ``params``."""
    cls = _optimizer_classes()[opt_cfg["name"]]
    kwargs = {k: v for k, v in opt_cfg.items() if k != "name"}
    try:
        return cls(params, **kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config key 'optimizer' ({opt_cfg['name']}): {e}") from None


def _digits_split(cfg):
    """Train and test arrays for ``cfg``; the test part depends only on the data keys."""
    data = cfg["data"]
    X, y = load_digits(flatten=cfg["model"]["name"] == "mlp")
    perm = np.random.default_rng(data["split_seed"]).permutation(len(X))
    n_test = int(round(len(X) * data["test_fraction"]))
    if not 0 < n_test < len(X):
        raise ConfigError("config key 'data.test_fraction' leaves no train or no test "
                          f"examples ({data['test_fraction']!r} of {len(X)})")
    test, train = perm[:n_test], perm[n_test:]
    if data["limit"] is not None:
        train = train[:data["limit"]]
    return X[train], y[train], X[test], y[test]


def _shift_images(x, rng, size=(8, 8)):
    """Shift each image of ``x`` by -1, 0 or +1 pixels in each direction (zero fill).

    ``x`` holds one image of ``size`` per row, flattened ``(N, H*W)`` or as
    ``(N, C, H, W)``; the result has the shape of ``x``.
    """
    xp = backend.get_array_module(x)
    n, (h, w) = x.shape[0], size
    padded = xp.pad(x.reshape(n, -1, h, w), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = backend.sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, 3, 3, H, W)
    dy = xp.asarray(rng.integers(0, 3, n))
    dx = xp.asarray(rng.integers(0, 3, n))
    shifted = windows[xp.arange(n), :, dy, dx]                          # (N, C, H, W)
    return xp.ascontiguousarray(shifted).reshape(x.shape)


def _evaluate(model, X, y, batch_size=512):
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) on arrays X, y."""
    model.eval()
    loss_sum = 0.0
    correct = 0
    with no_grad():
        for s in range(0, len(X), batch_size):
            xb, yb = Tensor._make(X[s:s + batch_size]), Tensor._make(y[s:s + batch_size])
            logits = model(xb)
            loss_sum += float(cross_entropy(logits, yb, reduction="sum").item())
            correct += int((logits.data.argmax(axis=1) == yb.data).sum())
    return loss_sum / len(X), correct / len(X)


# --- BLAS threads ----------------------------------------------------------------------

def _openblas_functions():
    """(get, set) thread-count functions of the OpenBLAS that NumPy loaded, or None.

    Found by name in the shared libraries of this process (Linux), as threadpoolctl
    does; NumPy's wheels ship OpenBLAS with a ``scipy_`` prefix and a ``64_`` suffix.
    """
    import ctypes
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {ln.split()[-1] for ln in f
                     if "openblas" in ln.lower() and ".so" in ln.split()[-1]}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    return get, put
    return None


@contextlib.contextmanager
def _blas_threads(n):
    """Run the block with OpenBLAS limited to ``n`` threads (None: leave it alone).

    The matrices of this job are small: splitting each product over threads gains
    little, and on a busy machine the threads' spinning costs far more (the default
    run took over a minute instead of seconds with other work on the same cores).
    """
    funcs = _openblas_functions() if n is not None else None
    if funcs is None:
        yield
        return
    get, put = funcs
    before = get()
    put(int(n))
    try:
        yield
    finally:
        put(before)


# --- the run ---------------------------------------------------------------------------

class TrainResult(dict):
    """What :func:`train` returns: ``run_dir``, ``history``, ``test_loss``, ``test_acc``."""


def _progress(iterable, total, desc, show):
    if not show:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr,
                unit="batch", dynamic_ncols=True)


def _run_dir(cfg):
    name = cfg["run_name"] or (cfg["model"]["name"] + "-"
                               + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    base = os.path.join(cfg["output"], name)
    path, i = base, 1
    while os.path.exists(path):
        if cfg["run_name"]:
            raise FileExistsError(f"run folder {path!r} already exists; choose another "
                                  "run_name (--name) or remove it")
        i += 1
        path = f"{base}-{i}"
    os.makedirs(path)
    return path


def train(cfg: dict, *, quiet: bool = False, progress: bool | None = None,
          stream=None, distributed: bool = False) -> TrainResult:
    """Train the model ``cfg`` describes on the digits and write a run folder.

    Parameters
    ----------
    cfg : dict
        A configuration as returned by :func:`resolve_config`.
    quiet : bool, default False
        Print only the final lines (run folder, ``test_loss``, ``test_acc``).
    progress : bool, optional
        Show a progress bar (tqdm, on stderr). Default: when not quiet and stderr
        is a terminal.
    stream : file, optional
        Where the metrics lines go (default ``sys.stdout``).
    distributed : bool, default False
        Data-parallel training over the processes of an MPI job (``mpirun -n N
        neural-arch train --distributed``): the model is wrapped in
        :class:`~neural_arch.distributed.DistributedDataParallel`, each process
        trains on its share of every epoch
        (:class:`~neural_arch.distributed.DistributedSampler`), ``batch_size`` is
        per process (a step sees ``N * batch_size`` examples), dropout and
        augmentation draw different numbers on each process, and only rank 0
        prints and writes the run folder. The train metrics are summed over all
        processes. Without ``mpirun`` it is a job of one process.

    Returns
    -------
    TrainResult
        ``run_dir``, ``history`` (one dict per epoch), ``test_loss``, ``test_acc``.

    Notes
    -----
    The run folder holds ``config.yaml`` (the resolved configuration),
    ``checkpoint.npz`` (model, optimizer and scheduler state plus the config,
    written with :func:`neural_arch.io.save`), ``metrics.json``, ``metrics.csv``
    and ``curves.png``. The same configuration gives the same numbers.
    """
    with _blas_threads(cfg.get("threads")):
        return _train(cfg, quiet, progress, stream, distributed)


def _train(cfg, quiet, progress, stream, distributed=False):
    group = None
    if distributed:
        from . import distributed as dist
        group = dist.init()
    rank, world = (group.rank, group.size) if group is not None else (0, 1)
    out = stream or sys.stdout
    if rank != 0:
        quiet = True        # rank 0 speaks for the job
    say = (lambda *a: None) if quiet else (lambda msg: print(msg, file=out, flush=True))
    if progress is None:
        progress = not quiet and sys.stderr.isatty()
    device = cfg["device"]
    backend.manual_seed(cfg["seed"])
    Xtr, ytr, Xte, yte = _digits_split(cfg)
    Xte_d, yte_d = backend.to_device(Xte, device), backend.to_device(yte, device)
    model = build_model(cfg["model"]).to(device)
    net = model                 # what is trained and saved (without the wrapper)
    if group is not None:
        model = dist.DistributedDataParallel(net)
        backend.manual_seed(cfg["seed"] + rank)     # dropout: other masks on each rank
    opt = build_optimizer(cfg["optimizer"], model.parameters())
    train_set = TensorDataset(Xtr, ytr)
    sampler = None if group is None else dist.DistributedSampler(train_set, seed=cfg["seed"])
    if sampler is None:
        loader = DataLoader(train_set, batch_size=cfg["batch_size"], shuffle=True,
                            seed=cfg["seed"], device=device)
    else:
        loader = _share_loader(cfg, train_set, sampler, device)
    aug_rng = np.random.default_rng([cfg["seed"], 1] + ([rank] if group is not None else []))
    total_steps = cfg["epochs"] * len(loader)
    # Stepped once per batch: the learning rate follows half a cosine from lr to 0.
    sched = (CosineAnnealingLR(opt, T_max=total_steps) if cfg["scheduler"] == "cosine"
             else None)
    n_params = sum(p.size for p in model.parameters())
    say(f"neural-arch train: {cfg['model']['name']} ({n_params:,} parameters), "
        f"{cfg['optimizer']['name']}, {len(Xtr)} train / {len(Xte)} test digits, "
        f"{cfg['epochs']} epochs, device {device}"
        + (f", {world} process{'es' if world > 1 else ''} (batch {cfg['batch_size']} each)"
           if group else ""))
    history = []
    start = time.perf_counter()
    for epoch in range(1, cfg["epochs"] + 1):
        t0 = time.perf_counter()
        model.train()
        if sampler is not None and epoch > 1:
            sampler.set_epoch(epoch - 1)
            loader = _share_loader(cfg, train_set, sampler, device)
        losses, correct = [], []
        for xb, yb in _progress(loader, len(loader), f"epoch {epoch}/{cfg['epochs']}",
                                progress):
            if cfg["data"]["augment"]:
                xb = Tensor._make(_shift_images(xb.data, aug_rng))
            logits = model(xb)
            loss = cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(loss.data * len(yb))
            correct.append((logits.data.argmax(axis=1) == yb.data).sum())
        xp = backend.get_array_module(losses[0])
        sums = np.array([float(xp.stack(losses).sum()), float(xp.stack(correct).sum()),
                         float(len(loader.dataset) if sampler is not None else len(Xtr))])
        if group is not None:
            group.allreduce_(sums, "sum", "all-reduce of the epoch's train metrics")
        train_loss, train_acc = sums[0] / sums[2], sums[1] / sums[2]
        test_loss, test_acc = _evaluate(model, Xte_d, yte_d)
        row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
               "test_loss": test_loss, "test_acc": test_acc,
               "lr": float(opt.param_groups[0]["lr"]),
               "seconds": round(time.perf_counter() - t0, 3)}
        history.append(row)
        say(f"epoch {epoch:>{len(str(cfg['epochs']))}}/{cfg['epochs']}  "
            f"train_loss {train_loss:.4f}  train_acc {train_acc:.4f}  "
            f"test_loss {test_loss:.4f}  test_acc {test_acc:.4f}  "
            f"lr {row['lr']:.2e}  {row['seconds']:.2f}s")
    elapsed = time.perf_counter() - start
    if rank != 0:
        run_dir = group.broadcast_object(None, what="name of rank 0's run folder")
        if isinstance(run_dir, BaseException):
            raise RuntimeError(f"rank 0 could not write the run folder: {run_dir}")
        return TrainResult(run_dir=run_dir, history=history,
                           test_loss=history[-1]["test_loss"],
                           test_acc=history[-1]["test_acc"])

    try:
        run_dir = _run_dir(cfg)
    except Exception as err:
        if group is not None:           # the other ranks wait for the folder's name
            group.broadcast_object(err, what="name of rank 0's run folder")
        raise
    if group is not None:
        group.broadcast_object(run_dir, what="name of rank 0's run folder")
    final = {"test_loss": history[-1]["test_loss"], "test_acc": history[-1]["test_acc"],
             "train_seconds": round(elapsed, 3)}
    io.save({"kind": "neural-arch-train", "version": 1, "config": cfg,
             "model": net.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": None if sched is None else sched.state_dict(),
             "epoch": cfg["epochs"], "metrics": final},
            os.path.join(run_dir, "checkpoint.npz"))
    with open(os.path.join(run_dir, "config.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    with open(os.path.join(run_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump({"history": history, "final": final}, f, indent=2)
    with open(os.path.join(run_dir, "metrics.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    _plot_curves(history, os.path.join(run_dir, "curves.png"))

    print(f"run folder: {run_dir}  ({elapsed:.1f}s of training)", file=out)
    print(f"test_loss: {final['test_loss']:.4f}", file=out)
    print(f"test_acc: {final['test_acc']:.4f}", file=out, flush=True)
    return TrainResult(run_dir=run_dir, history=history, test_loss=final["test_loss"],
                       test_acc=final["test_acc"])


def _share_loader(cfg, train_set, sampler, device):
    """This rank's batches of the sampler's current epoch (distributed runs)."""
    return DataLoader(Subset(train_set, sampler.indices()), batch_size=cfg["batch_size"],
                      device=device)


def _plot_curves(history, path):
    """Loss and accuracy per epoch, train and test, as a PNG."""
    import matplotlib
    matplotlib.use("Agg", force=True)       # no display needed
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    for split, style in (("train", "-"), ("test", "--")):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in history], style, label=split)
        ax_acc.plot(epochs, [r[f"{split}_acc"] for r in history], style, label=split)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- evaluate --------------------------------------------------------------------------

def evaluate(checkpoint, *, device=None, stream=None) -> dict:
    """Test loss and accuracy of a checkpoint written by :func:`train`.

    Parameters
    ----------
    checkpoint : str or os.PathLike
        The ``checkpoint.npz`` file, or the run folder holding it.
    device : str, optional
        Where to run (default: the device the run trained on, or the CPU when that
        one is not available here).
    stream : file, optional
        Where the result lines go (default ``sys.stdout``).

    Returns
    -------
    dict
        ``test_loss`` and ``test_acc``: the held-out part of the same split the
        run was trained with, so they equal the run's final numbers.
    """
    out = stream or sys.stdout
    path = os.fspath(checkpoint)
    if os.path.isdir(path):
        path = os.path.join(path, "checkpoint.npz")
    ckpt = io.load(path)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "neural-arch-train" \
            or "config" not in ckpt or "model" not in ckpt:
        raise ConfigError(f"{path!r} is a neural_arch checkpoint, but not one written by "
                          "'neural-arch train' (it lacks the config and model state)")
    saved = ckpt["config"]
    if device is None:
        device = saved.get("device", "cpu")
        try:
            backend.array_module_for(device)
        except backend.DeviceError:
            device = "cpu"
    cfg = resolve_config(saved, {"device": device})
    model = build_model(cfg["model"])
    model.load_state_dict(ckpt["model"])
    model.to(device)
    _, _, Xte, yte = _digits_split(cfg)
    with _blas_threads(cfg["threads"]):
        test_loss, test_acc = _evaluate(model, backend.to_device(Xte, device),
                                        backend.to_device(yte, device))
    print(f"checkpoint: {path}  ({cfg['model']['name']}, {len(Xte)} test digits)", file=out)
    print(f"test_loss: {test_loss:.4f}", file=out)
    print(f"test_acc: {test_acc:.4f}", file=out, flush=True)
    return {"test_loss": test_loss, "test_acc": test_acc}
