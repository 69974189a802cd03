"""PNG figures of the optimizer study and the learning-rate sweep (needs the ``plot`` extra)."""

from __future__ import annotations

import math
from pathlib import Path

CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over the 10 classes
PLOT_MISSING = "matplotlib is not installed, so no plot was written; install it with: pip install 'cifar-bench[plot]'"


def plotting_available() -> bool:
    """Return whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def _integer_locator():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def plot_study(document: dict, path: str | Path) -> Path:
    """Plot training loss, test loss and test top-1 per epoch: a line per optimizer (mean over
    seeds) and a band from the lowest to the highest seed."""
    plt = _pyplot()
    panels = (("train_loss", "training loss"), ("test_loss", "test loss"), ("test_top1", "test top-1"))
    figure, axes = plt.subplots(1, len(panels), figsize=(15, 4.5), constrained_layout=True)

    for axis, (key, label) in zip(axes, panels):
        for name in document["ranking"]:
            curve = document["optimizers"][name]["summary"][key]
            epochs = range(1, len(curve["mean"]) + 1)
            (line,) = axis.plot(epochs, curve["mean"], marker="o", markersize=3,
                                label=f"{name} (lr {document['optimizers'][name]['lr']:g})")
            axis.fill_between(epochs, curve["min"], curve["max"], color=line.get_color(), alpha=0.2)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(_integer_locator())
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    target = document["target_train_loss"]
    if math.isfinite(target):
        axes[0].axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.3f}")
    axes[0].legend(fontsize=8)
    figure.suptitle(f"{document['model']} on {document['data']['train_images']:,} training images, "
                    f"{len(document['seeds'])} seeds (band: min-max over seeds)")

    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_sweep(sweep: dict, path: str | Path) -> Path:
    """Plot final training loss against learning rate (log scale), one line per optimizer."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for name, entry in sweep["optimizers"].items():
        lrs = [row["lr"] for row in entry["rows"]]
        losses = [row["final_train_loss"] if math.isfinite(row["final_train_loss"]) else math.nan
                  for row in entry["rows"]]
        (line,) = axis.plot(lrs, losses, marker="o", label=name)
        best = next(row for row in entry["rows"] if row["lr"] == entry["lr"])
        axis.plot([best["lr"]], [best["final_train_loss"]], marker="*", markersize=14, color=line.get_color())
    axis.set_xscale("log")
    # Diverged runs can end far above chance, so the axis stops at 1.5x chance to keep the rest readable.
    axis.set_ylim(bottom=0, top=1.5 * CHANCE_LOSS)
    axis.set_xlabel("peak learning rate")
    axis.set_ylabel(f"training loss after {sweep['epochs']} epochs")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    figure.suptitle(f"learning-rate sweep, {sweep['model']}, {sweep['data']['train_images']:,} images (star: chosen)")

    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
