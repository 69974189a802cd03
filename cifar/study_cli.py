"""CLI commands of the optimizer study: ``compare-optimizers`` and ``lr-sweep``."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifar.models import MODELS

STUDY_FILE = "study.json"
STUDY_PLOT = "loss.png"
SWEEP_FILE = "sweep.json"
SWEEP_PLOT = "sweep.png"
SWEEP_EPOCHS = 3


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add_recipe_options(parser: argparse.ArgumentParser, epochs_help: str) -> None:
    from cifar.optim import OPTIMIZERS

    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), metavar="NAME",
                        help=f"optimizers to train (default: all of {' '.join(OPTIMIZERS)})")
    parser.add_argument("--model", default="tutorial", choices=list(MODELS), help="model to train (default tutorial)")
    parser.add_argument("--epochs", type=_positive_int, help=epochs_help)
    parser.add_argument("--batch-size", type=_positive_int, help="training batch size (default: the model's recipe)")
    parser.add_argument("--subset", type=_positive_int, metavar="N",
                        help="train on the first N training images (default: all); the test set stays whole")


def _add_grid_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lr-min", type=_positive_float, help="lowest learning rate of the grid (default: per optimizer)")
    parser.add_argument("--lr-max", type=_positive_float, help="highest learning rate of the grid (default: per optimizer)")
    parser.add_argument("--lr-points", type=_positive_int,
                        help="learning rates in the grid, log-spaced (default: 2 per decade, ends included)")


def add_study_commands(commands, add_data_options, add_common_options) -> None:
    """Register the optimizer-study subcommands on ``commands``."""
    compare = commands.add_parser(
        "compare-optimizers",
        help="train each optimizer over several seeds and rank them by convergence",
        description="Train one recipe with each optimizer over several seeds; write all curves as JSON, "
                    "a loss plot, and print a ranked table with a conclusion drawn from the numbers.",
    )
    _add_recipe_options(compare, "epochs per run (default: the model's recipe)")
    compare.add_argument("--seeds", type=_positive_int, default=3, help="seeds per optimizer (default 3)")
    compare.add_argument("--first-seed", type=int, default=0, help="first seed; the others follow it (default 0)")
    compare.add_argument("--target-loss", type=_positive_float,
                         help="training loss for the epochs-to-target figure (default: the lowest loss that "
                              "every optimizer's mean curve reaches)")
    compare.add_argument("--out", default="optimizer-study", metavar="DIR",
                         help=f"folder for {STUDY_FILE} and {STUDY_PLOT} (default ./optimizer-study)")
    compare.add_argument("--sweep", action="store_true",
                         help="pick each learning rate with a sweep first instead of using the defaults")
    compare.add_argument("--sweep-epochs", type=_positive_int, default=SWEEP_EPOCHS,
                         help=f"epochs per sweep run (default {SWEEP_EPOCHS}); the sweep uses --subset too")
    _add_grid_options(compare)
    add_data_options(compare)
    add_common_options(compare)

    sweep = commands.add_parser(
        "lr-sweep",
        help="pick each optimizer's learning rate by short runs over a log grid",
        description="Train briefly at each learning rate of a log grid per optimizer and pick the rate with "
                    "the lowest final training loss.",
    )
    _add_recipe_options(sweep, f"epochs per run (default {SWEEP_EPOCHS})")
    sweep.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    _add_grid_options(sweep)
    sweep.add_argument("--out", default="lr-sweep", metavar="DIR",
                       help=f"folder for {SWEEP_FILE} and {SWEEP_PLOT} (default ./lr-sweep)")
    add_data_options(sweep)
    add_common_options(sweep)


def _grid(args) -> tuple[float, float] | None:
    """Return the --lr-min/--lr-max range, or None for the per-optimizer ranges."""
    from cifar.study import StudyError

    if (args.lr_min is None) != (args.lr_max is None):
        raise StudyError("pass --lr-min and --lr-max together, or neither for the per-optimizer grids")
    if args.lr_min is None:
        return None
    return args.lr_min, args.lr_max


def _base_config(args, epochs: int | None, seed: int = 0):
    from cifar.training import default_config

    return default_config(args.model).replace(epochs=epochs, batch_size=args.batch_size, seed=seed,
                                              train_subset=args.subset)


def _load(args):
    from cifar.cli import load_data
    from cifar.study import check_subset

    data = load_data(args)
    check_subset(args.subset, data)
    return data


def _write_plot(plot, document: dict, path: Path) -> None:
    from cifar.study_plot import PLOT_MISSING, plotting_available

    if not plotting_available():
        print(PLOT_MISSING)
        return
    plot(document, path)
    print(f"plot written to {path}")


def _run_sweep(args, base, optimizers, grid, data, out: Path) -> dict:
    from cifar.report import write_json
    from cifar.study_plot import plot_sweep
    from cifar.study_report import sweep_table
    from cifar.study_sweep import chosen_lrs, sweep_lrs

    sweep = sweep_lrs(base, optimizers, data, grid=grid, points=args.lr_points, progress=not args.quiet)
    print(f"\nlearning-rate sweep: {sweep['model']}, {sweep['epochs']} epochs, seed {sweep['seed']}, "
          f"{sweep['data']['train_images']:,} training images, {sweep['seconds']:.0f} s")
    print(sweep_table(sweep))
    print("chosen: " + ", ".join(f"{name} {lr:g}" for name, lr in chosen_lrs(sweep).items()))
    write_json(out / SWEEP_FILE, sweep)
    print(f"sweep written to {out / SWEEP_FILE}")
    _write_plot(plot_sweep, sweep, out / SWEEP_PLOT)
    return sweep


def cmd_lr_sweep(args) -> None:
    from cifar.study import check_optimizers, prepare_out_dir

    optimizers = check_optimizers(args.optimizers)
    grid = _grid(args)
    base = _base_config(args, args.epochs or SWEEP_EPOCHS, seed=args.seed)
    out = prepare_out_dir(args.out)
    data = _load(args)
    _run_sweep(args, base, optimizers, grid, data, out)


def cmd_compare_optimizers(args) -> None:
    from cifar.report import write_json
    from cifar.study import StudyConfig, check_optimizers, prepare_out_dir, run_study, seeds_from
    from cifar.study_plot import plot_study
    from cifar.study_report import study_table
    from cifar.study_sweep import chosen_lrs

    optimizers = check_optimizers(args.optimizers)
    grid = _grid(args)
    base = _base_config(args, args.epochs)
    config = StudyConfig(base, optimizers, seeds_from(args.seeds, args.first_seed), target_train_loss=args.target_loss)
    out = prepare_out_dir(args.out)
    data = _load(args)

    if args.sweep:
        sweep_base = base.replace(epochs=args.sweep_epochs, seed=args.first_seed)
        sweep = _run_sweep(args, sweep_base, optimizers, grid, data, out)
        config = StudyConfig(base, optimizers, config.seeds, lrs=chosen_lrs(sweep), target_train_loss=args.target_loss)

    document = run_study(config, data, progress=not args.quiet)
    images = document["data"]
    print(f"\noptimizer study: {document['model']}, {document['epochs']} epochs, seeds {document['seeds']}, "
          f"{images['train_images']:,} training and {images['test_images']:,} test images, threads: {document['threads']}, "
          f"{document['seconds']:.0f} s")
    print(study_table(document))
    print()
    for line in document["conclusion"]:
        print(line)
    print()
    write_json(out / STUDY_FILE, document)
    print(f"results written to {out / STUDY_FILE}")
    _write_plot(plot_study, document, out / STUDY_PLOT)


STUDY_COMMANDS = {"compare-optimizers": cmd_compare_optimizers, "lr-sweep": cmd_lr_sweep}
