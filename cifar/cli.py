"""The ``cifar`` command line: download, models, train, export, evaluate, run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import torch

from cifar import __version__
from cifar.backends import BACKEND_FORMATS, DEFAULT_BACKENDS
from cifar.cache import Cache
from cifar.errors import CifarError, InputError
from cifar.models import MODELS

log = logging.getLogger("cifar")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def check_output_path(path: str | None, option: str) -> None:
    """Raise InputError before a long run if ``path`` could not be written at its end.

    Missing parent folders are fine, because they are created when the file is written.
    """
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{option} {path} is a folder; give a file path such as {target / 'results.json'}")
    existing = target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{option} {path}: {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK):
        raise InputError(f"{option} {path}: folder {existing} is not writable; choose another path")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder containing cifar-10-batches-py/ (else $CIFAR10_ROOT, else the cache)")
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading when no data is found")
    parser.add_argument("--synthetic", action="store_true", help="use small synthetic data instead of CIFAR-10 (smoke tests)")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", help="cache for checkpoints and exports (default $CIFAR_BENCH_CACHE, else "
                             "$XDG_CACHE_HOME/cifar-bench, else ~/.cache/cifar-bench)")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for torch and ONNX Runtime (default: torch's default)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print warnings and results only")


def add_eval_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backends", nargs="+", default=list(DEFAULT_BACKENDS), choices=list(BACKEND_FORMATS),
                        metavar="NAME", help=f"backends to evaluate (default: {' '.join(DEFAULT_BACKENDS)}; "
                                             f"also: {' '.join(b for b in BACKEND_FORMATS if b not in DEFAULT_BACKENDS)})")
    parser.add_argument("--json", metavar="PATH", help="write the results document to PATH")
    parser.add_argument("--latency-calls", type=positive_int, help="timed batch-1 calls per backend (default 1000)")
    parser.add_argument("--throughput-seconds", type=positive_float,
                        help="seconds of batch-256 calls per backend, and at least 5 calls (default 2)")
    parser.add_argument("--latency-threads", type=positive_int,
                        help="CPU threads for the batch-1 latency calls (default 1). Accuracy and throughput use --threads.")


def add_train_options(parser: argparse.ArgumentParser) -> None:
    from cifar.optim import OPTIMIZERS

    parser.add_argument("--model", default="tutorial", choices=list(MODELS), help="model to train (default tutorial)")
    parser.add_argument("--epochs", type=positive_int, help="epochs (default: the model's recipe)")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), help="optimizer (default: the model's recipe)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's, else the optimizer's)")
    parser.add_argument("--batch-size", type=positive_int, help="training batch size (default: the recipe's)")
    parser.add_argument("--seed", type=int, help="seed for initialization, shuffling and augmentation (default: the recipe's, 0)")
    parser.add_argument("--retrain", action="store_true", help="train again even when the cache has this checkpoint")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cifar", description="Train, export and benchmark CIFAR-10 classifiers.")
    parser.add_argument("--version", action="version", version=f"cifar-bench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    download = commands.add_parser("download", help="fetch CIFAR-10 into the data folder")
    download.add_argument("--data-dir", help="where to put cifar-10-batches-py/ (else $CIFAR10_ROOT, else the cache)")

    commands.add_parser("models", help="list models with parameter count and FLOPs per image")

    train = commands.add_parser("train", help="train a model (or reuse the cached checkpoint) and print its history")
    add_train_options(train)
    add_data_options(train)
    add_common_options(train)
    train.add_argument("--out", metavar="PATH", help="also copy the checkpoint to PATH")

    export = commands.add_parser("export", help="export a checkpoint, gated on parity with eager",
                                 description="Export a checkpoint; the file is kept only if it matches eager.")
    export.add_argument("checkpoint", help="checkpoint file (.pt) from `cifar train` or a bare state_dict")
    export.add_argument("--format", default="onnx", choices=["onnx", "torchscript", "pt2"])
    export.add_argument("--out", metavar="PATH", required=True, help="file to write")
    add_data_options(export)
    add_common_options(export)

    evaluate = commands.add_parser("evaluate", help="measure accuracy and speed of a checkpoint on each backend",
                                   description="Measure top-1, batch-1 latency and batch-256 throughput per backend.")
    evaluate.add_argument("checkpoint", help="checkpoint file (.pt) from `cifar train` or a bare state_dict")
    add_eval_options(evaluate)
    add_data_options(evaluate)
    add_common_options(evaluate)

    run = commands.add_parser("run", help="the main job: train or reuse, export, evaluate every backend",
                              description="Train (or reuse the cached checkpoint), export, and measure every backend.")
    add_train_options(run)
    add_eval_options(run)
    add_data_options(run)
    add_common_options(run)

    from cifar.study_cli import add_study_commands

    add_study_commands(commands, add_data_options, add_common_options)
    return parser


def load_data(args):
    from cifar.data import load_cifar10, locate_or_download
    from cifar.transforms import synthetic_cifar10

    if args.synthetic:
        return synthetic_cifar10(train_count=1024, test_count=512)
    return load_cifar10(locate_or_download(args.data_dir, allow_download=not args.no_download))


def train_config(args):
    from cifar.training import default_config

    import dataclasses

    recipe = default_config(args.model)
    config = recipe.replace(epochs=args.epochs, optimizer=args.optimizer, lr=args.lr,
                            batch_size=args.batch_size, seed=args.seed)
    if args.lr is None and config.optimizer != recipe.optimizer:
        # The recipe's learning rate suits its own optimizer; another one starts from its default.
        config = dataclasses.replace(config, lr=None)
    return config


def print_results(results: dict, json_path: str | None) -> None:
    from cifar.models import create, flops_per_image, parameter_count
    from cifar.report import backend_table, familiar_lines, machine_info, plural, write_json

    model = create(results["model"])
    results["parameters"] = parameter_count(model)
    results["flops_per_image"] = flops_per_image(model)
    results["machine"] = machine_info()
    print(f"\nmodel {results['model']}: {results['parameters']:,} parameters, "
          f"{results['flops_per_image'] / 1e6:.2f} MFLOPs per image; {results['data']['test_images']:,} test "
          f"images; {results['machine']['cpu']}")
    print(f"latency: batch 1 on {plural(results['latency_threads'], 'thread')}; accuracy and throughput "
          f"(batch 256) on {plural(results['threads'], 'thread')}")
    print(backend_table(results))
    print()
    print(familiar_lines(results))
    if json_path:
        write_json(json_path, results)
        print(f"\nresults written to {json_path}")


def cmd_download(args) -> None:
    from cifar.data import download, find_batches, resolve_root

    root, origin = resolve_root(args.data_dir)
    existing = find_batches(root)
    if existing:
        print(f"CIFAR-10 already present in {existing}")
        return
    try:
        folder = download(root)
    except CifarError:
        raise
    except Exception as error:
        raise CifarError(f"download into {root} (from {origin}) failed: {error}") from error
    print(f"CIFAR-10 downloaded to {folder}")


def cmd_models(args) -> None:
    from cifar.models import create, flops_per_image, parameter_count
    from cifar.report import format_table
    from cifar.training import default_config, describe

    rows = []
    for name in MODELS:
        model = create(name)
        rows.append([name, f"{parameter_count(model):,}", f"{flops_per_image(model) / 1e6:.2f}"])
    print(format_table(["model", "parameters", "MFLOPs/image"], rows))
    print("\ndefault recipes:")
    for name in MODELS:
        print(f"  {name}: {describe(default_config(name))}")


def cmd_train(args) -> None:
    import shutil

    from cifar.checkpoint import read_checkpoint
    from cifar.pipeline import ensure_checkpoint
    from cifar.report import history_table

    check_output_path(args.out, "--out")
    data = load_data(args)
    path, trained = ensure_checkpoint(Cache(args.cache_dir), train_config(args), data, retrain=args.retrain,
                                      progress=not args.quiet)
    payload = read_checkpoint(path)
    print(history_table(payload["history"]))
    print(f"\ncheckpoint {'trained' if trained else 'reused from cache'}: {path}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, args.out)
        print(f"copied to {args.out}")


def cmd_export(args) -> None:
    from cifar.checkpoint import load_model
    from cifar.export import export
    from cifar.pipeline import PARITY_IMAGES
    from cifar.transforms import normalize

    model, _ = load_model(args.checkpoint)  # reject a bad checkpoint before any data download
    data = load_data(args)
    parity = export(model, args.format, args.out, normalize(data.test_images[:PARITY_IMAGES]).numpy())
    print(f"exported {args.format} to {args.out}; parity with eager: max |logit diff| "
          f"{parity['max_abs_diff']:.2e} at batch sizes {parity['batch_sizes']}")


def cmd_evaluate(args) -> None:
    from cifar.checkpoint import load_model
    from cifar.pipeline import evaluate_checkpoint

    load_model(args.checkpoint)  # reject a bad checkpoint before any data download
    check_output_path(args.json, "--json")
    data = load_data(args)
    results = evaluate_checkpoint(Cache(args.cache_dir), Path(args.checkpoint), args.backends, data,
                                  args.latency_calls, args.throughput_seconds, args.latency_threads)
    print_results(results, args.json)


def cmd_run(args) -> None:
    from cifar.pipeline import ensure_checkpoint, evaluate_checkpoint

    started = time.perf_counter()
    check_output_path(args.json, "--json")
    cache = Cache(args.cache_dir)
    data = load_data(args)
    checkpoint, trained = ensure_checkpoint(cache, train_config(args), data, retrain=args.retrain,
                                            progress=not args.quiet)
    log.info("checkpoint %s: %s", "trained" if trained else "reused from cache", checkpoint)

    results = evaluate_checkpoint(cache, checkpoint, args.backends, data, args.latency_calls,
                                  args.throughput_seconds, args.latency_threads)
    results["trained_now"] = trained
    results["total_seconds"] = time.perf_counter() - started
    print_results(results, args.json)
    metrics = results["training"]["metrics"]
    print(f"\ntraining: {metrics['train_seconds']:.0f} s ({'now' if trained else 'cached'}); "
          f"whole run: {results['total_seconds']:.0f} s")


COMMANDS = {"download": cmd_download, "models": cmd_models, "train": cmd_train,
            "export": cmd_export, "evaluate": cmd_evaluate, "run": cmd_run}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return 0 on success, 2 on bad input or usage. Other errors propagate (exit 1)."""
    args = build_parser().parse_args(argv)
    # Other libraries (onnxscript, torch) stay at WARNING; our own loggers report progress too.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("cifar").setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)

    from cifar.study_cli import STUDY_COMMANDS

    try:
        {**COMMANDS, **STUDY_COMMANDS}[args.command](args)
    except CifarError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
