"""Command line: ``neural-arch train`` and ``neural-arch evaluate`` (also ``python -m neural_arch``).

This module only parses arguments; the work is done by :mod:`neural_arch.train_job`.
"""
from __future__ import annotations

import argparse
import sys

import yaml

__all__ = ["main", "build_parser"]

_TRAIN_EPILOG = """\
configuration:
  Settings are taken, later ones winning, from: the built-in default (printed by
  --print-config), the --config file, the options above, and --set KEY=VALUE.
  A config file may give only the keys it changes, e.g.

      model:
        name: cnn            # mlp | cnn
      optimizer:
        name: sgd            # any optimizer of neural_arch.optim
        lr: 0.05
        momentum: 0.9
      epochs: 20

  Unknown keys and bad values are errors that name the key. Files are read with
  yaml.safe_load. Built-in configs: 'mlp' (the default) and 'cnn'.

output:
  One metrics line per epoch, then a run folder OUTPUT/NAME holding
  checkpoint.npz (neural_arch.io format), config.yaml, metrics.json, metrics.csv
  and curves.png; the last line reports test_acc. Same seed, same numbers.

examples:
  neural-arch train
  neural-arch train --config cnn --epochs 10
  neural-arch train --config my.yaml --set optimizer.weight_decay=1e-4
  mpirun -n 2 neural-arch train --distributed
  neural-arch evaluate runs/mlp-20250101-120000/checkpoint.npz
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``neural-arch``."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="neural-arch",
        description="Train and evaluate neural_arch models on the built-in 8x8 digits.")
    parser.add_argument("--version", action="version", version=f"neural_arch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser(
        "train", help="train a model (default: an MLP with Adam) and write a run folder",
        description="Train a model on the built-in 8x8 handwritten digits (1,797 images,\n"
                    "shipped with neural_arch) and write a run folder with the checkpoint,\n"
                    "metrics and loss/accuracy curves. With no arguments: an MLP trained\n"
                    "with Adam, at least 97% test accuracy in well under a minute on two\n"
                    "CPU cores.",
        epilog=_TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", metavar="FILE.yaml",
                   help="YAML config file, or a built-in config name (mlp, cnn)")
    t.add_argument("--epochs", type=int, metavar="N", help="number of epochs")
    t.add_argument("--batch-size", type=int, metavar="N", help="examples per batch")
    t.add_argument("--lr", type=float, metavar="LR", help="learning rate (optimizer.lr)")
    t.add_argument("--model", metavar="NAME", help="model: mlp or cnn (model.name)")
    t.add_argument("--optimizer", metavar="NAME",
                   help="optimizer, e.g. adam, adamw, sgd (optimizer.name)")
    t.add_argument("--seed", type=int, metavar="N",
                   help="seed for initialisation, shuffling, dropout and augmentation")
    t.add_argument("--output", metavar="DIR",
                   help="folder in which the run folder is created (default: runs)")
    t.add_argument("--name", metavar="NAME",
                   help="name of the run folder (default: <model>-<date>-<time>)")
    t.add_argument("--limit", type=int, metavar="N",
                   help="train on at most N examples (quick checks; data.limit)")
    t.add_argument("--device", metavar="DEV", help="cpu, cuda or cuda:N")
    t.add_argument("--threads", type=int, metavar="N",
                   help="BLAS threads during the run (default 1: small models train "
                        "fastest on one)")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel training over the processes of an MPI job: "
                        "mpirun -n N neural-arch train --distributed (batch size per "
                        "process; rank 0 prints and writes the run folder)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set any config key, e.g. --set model.dropout=0.1 (VALUE is read "
                        "as YAML); may be repeated")
    t.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar and no per-epoch lines; only the final lines")
    t.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration as YAML and exit")

    e = sub.add_parser(
        "evaluate", help="report the test accuracy of a checkpoint",
        description="Load a checkpoint written by 'neural-arch train', rebuild its model "
                    "and test split, and report test_loss and test_acc.")
    e.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="checkpoint.npz of a run (or the run folder)")
    e.add_argument("--device", metavar="DEV",
                   help="cpu, cuda or cuda:N (default: the run's device, if available)")
    return parser


def _overrides(args) -> dict:
    from .train_job import ConfigError, set_key

    over: dict = {}
    if args.model is not None:
        set_key(over, "model.name", args.model)
    if args.optimizer is not None:
        set_key(over, "optimizer.name", args.optimizer)
    if args.lr is not None:
        set_key(over, "optimizer.lr", args.lr)
    for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size),
                       ("seed", args.seed), ("output", args.output),
                       ("run_name", args.name), ("device", args.device),
                       ("threads", args.threads),
                       ("data.limit", args.limit)):
        if value is not None:
            set_key(over, key, value)
    sets: dict = {}
    for item in args.set:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. optimizer.lr=0.01), got {item!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {key}: cannot read {text!r} as a value: {err}") from None
        set_key(sets, key.strip(), value)
    return over, sets


def _train(args) -> int:
    from . import train_job

    over, sets = _overrides(args)
    file_cfg = train_job.read_config(args.config) if args.config else None
    cfg = train_job.resolve_config(file_cfg, over, sets)
    if args.print_config:
        print(yaml.safe_dump(cfg, sort_keys=False), end="")
        return 0
    train_job.train(cfg, quiet=args.quiet, distributed=args.distributed)
    return 0


def _evaluate(args) -> int:
    from . import train_job

    train_job.evaluate(args.checkpoint, device=args.device)
    return 0


def main(argv=None) -> int:
    """Run ``neural-arch`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Configuration and checkpoint problems are reported as one ``error:`` line on
    stderr with exit code 2 (no traceback).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from .io import CheckpointError
    from .train_job import ConfigError
    try:
        return _train(args) if args.command == "train" else _evaluate(args)
    except (ConfigError, CheckpointError, FileNotFoundError, FileExistsError,
            IsADirectoryError) as err:
        print(f"neural-arch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neural-arch {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":   # pragma: no cover
    sys.exit(main())
