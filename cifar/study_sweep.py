"""Learning-rate sweep: short runs over a log grid per optimizer, picked by final training loss.

Each optimizer gets the same short recipe at every grid point, and the learning rate whose run
ends with the lowest training loss wins. Runs whose loss became NaN or inf count as diverged and
are never picked.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from cifar.data import Cifar10
from cifar.study import StudyError, check_optimizers, check_subset
from cifar.training import TrainConfig, train

log = logging.getLogger(__name__)

# Grid ends per optimizer family, each three decades around the values these methods are
# commonly run at. A pick on either end is flagged, so the range can be widened.
SWEEP_RANGES: dict[str, tuple[float, float]] = {
    "sgd": (1e-3, 1.0),
    "momentum": (1e-3, 1.0),
    "adam": (1e-4, 1e-1),
    "adamw": (1e-4, 1e-1),
    "rmsprop": (1e-5, 1e-2),
    "muon": (1e-4, 1e-1),
}
POINTS_PER_DECADE = 2


def lr_grid(low: float, high: float, points: int | None = None) -> list[float]:
    """Return ``points`` learning rates spaced evenly in log scale from ``low`` to ``high``.

    Values are rounded to three significant digits so they read well in tables and docs. The
    default count gives ``POINTS_PER_DECADE`` steps per decade, ends included.
    """
    if not 0 < low < high:
        raise StudyError(f"the learning-rate range needs 0 < low < high, got {low:g} to {high:g}")
    if points is None:
        points = round(math.log10(high / low) * POINTS_PER_DECADE) + 1
    if points < 2:
        raise StudyError(f"a learning-rate grid needs at least 2 points, got {points}")
    return [float(f"{lr:.3g}") for lr in np.geomspace(low, high, points)]


def pick_lr(rows: list[dict]) -> dict:
    """Return the row with the lowest finite final training loss. Raise StudyError if all diverged."""
    finite = [row for row in rows if math.isfinite(row["final_train_loss"])]
    if not finite:
        lrs = ", ".join(f"{row['lr']:g}" for row in rows)
        raise StudyError(f"every run diverged at learning rates {lrs}; sweep a lower range with --lr-min/--lr-max")
    return min(finite, key=lambda row: row["final_train_loss"])


def sweep_lrs(
    base: TrainConfig,
    optimizers: list[str] | tuple[str, ...],
    data: Cifar10,
    grid: tuple[float, float] | None = None,
    points: int | None = None,
    progress: bool = False,
) -> dict:
    """Train ``base`` (short) with each optimizer at each grid point and return the sweep document.

    ``grid`` overrides ``SWEEP_RANGES`` for every optimizer. The document maps each optimizer to its
    rows (``lr``, ``final_train_loss``, ``final_test_top1``, ``history``), the chosen ``lr``, and
    ``at_edge``: whether the pick is an end of the grid, so the true best may lie outside it.
    """
    optimizers = check_optimizers(optimizers)
    check_subset(base.train_subset, data)
    started = time.perf_counter()
    results = {}

    for name in optimizers:
        low, high = grid or SWEEP_RANGES.get(name, (1e-4, 1e-1))
        lrs = lr_grid(low, high, points)
        rows = []
        for lr in lrs:
            log.info("sweep %s: lr %g (%d of %d)", name, lr, len(rows) + 1, len(lrs))
            _, history = train(base.replace(optimizer=name, lr=lr), data, progress=progress)
            rows.append({
                "lr": lr,
                "final_train_loss": history[-1]["train_loss"],
                "final_test_top1": history[-1]["test_top1"],
                "history": history,
            })

        best = pick_lr(rows)
        at_edge = best["lr"] in (lrs[0], lrs[-1])
        if at_edge:
            log.warning("the best learning rate for %s, %g, is an end of the grid %g..%g; "
                        "widen the range with --lr-min/--lr-max", name, best["lr"], lrs[0], lrs[-1])
        results[name] = {"lr": best["lr"], "at_edge": at_edge, "rows": rows}

    return {
        "kind": "lr-sweep",
        "model": base.model,
        "epochs": base.epochs,
        "seed": base.seed,
        "recipe": {key: value for key, value in base.as_dict().items() if key not in ("optimizer", "lr")},
        "data": {"source": data.source, "fingerprint": data.fingerprint,
                 "train_images": min(len(data.train_images), base.train_subset or len(data.train_images)),
                 "test_images": len(data.test_images)},
        "optimizers": results,
        "seconds": time.perf_counter() - started,
    }


def chosen_lrs(sweep: dict) -> dict[str, float]:
    """Return the picked learning rate per optimizer from a sweep document."""
    return {name: entry["lr"] for name, entry in sweep["optimizers"].items()}
