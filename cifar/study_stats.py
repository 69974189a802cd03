"""Figures of the optimizer study, computed from per-epoch training histories.

Every function here is pure: it takes history rows as ``cifar.training.train`` returns them
(``epoch``, ``train_loss``, ``test_loss``, ``test_top1``, ``seconds``) and returns numbers, so the
ranking and the conclusion follow from the curves alone and can be tested on made-up curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def band(curves: Sequence[Sequence[float]]) -> dict[str, list[float]]:
    """Return the per-epoch mean, min and max of equally long curves (one per seed)."""
    columns = list(zip(*curves))  # (epochs, seeds)
    return {
        "mean": [math.fsum(column) / len(column) for column in columns],
        "min": [min(column) for column in columns],
        "max": [max(column) for column in columns],
    }


def spread(values: Sequence[float]) -> dict[str, float]:
    """Return the mean, min and max of one figure over seeds."""
    return {"mean": math.fsum(values) / len(values), "min": min(values), "max": max(values)}


def epochs_to_target(losses: Sequence[float], target: float) -> int | None:
    """Return the first epoch (1-based) whose mean training loss is at or below ``target``, else None."""
    for epoch, loss in enumerate(losses, start=1):
        if loss <= target:
            return epoch
    return None


def censored_epochs(epochs: Sequence[int | None], budget: int) -> list[int]:
    """Count a run that never reached the target as ``budget + 1`` epochs.

    That is a lower bound on the true figure, so a mean over such runs flatters the slow optimizer
    and never invents a difference that the runs did not show.
    """
    return [budget + 1 if value is None else value for value in epochs]


def loss_rises(losses: Sequence[float]) -> dict[str, float]:
    """Measure how often and by how much a per-epoch loss went up from one epoch to the next.

    Returns ``fraction`` (rises per epoch-to-epoch step, 0 to 1), ``total`` (sum of the rises in
    loss units) and ``max`` (the largest single rise). A non-finite loss counts as a rise of inf.
    """
    steps = list(zip(losses, losses[1:]))
    if not steps:
        return {"fraction": 0.0, "total": 0.0, "max": 0.0}
    rises = []
    for before, after in steps:
        if not math.isfinite(after) and math.isfinite(before):
            rises.append(math.inf)
        elif after > before:
            rises.append(after - before)
    return {
        "fraction": len(rises) / len(steps),
        "total": math.fsum(rises) if rises else 0.0,
        "max": max(rises, default=0.0),
    }


def summarize_runs(histories: Sequence[Sequence[dict]], wall_seconds: Sequence[float], target: float) -> dict:
    """Reduce one optimizer's runs (one history per seed) to the study's figures.

    ``train_seconds`` counts training steps only and ``wall_seconds`` whole runs, evaluation included.
    """
    epochs = len(histories[0])
    train_curves = [[row["train_loss"] for row in history] for history in histories]
    test_curves = [[row["test_loss"] for row in history] for history in histories]
    top1_curves = [[row["test_top1"] for row in history] for history in histories]
    reached = [epochs_to_target(curve, target) for curve in train_curves]
    train_rises = [loss_rises(curve) for curve in train_curves]
    test_rises = [loss_rises(curve) for curve in test_curves]

    return {
        "epochs": epochs,
        "train_loss": band(train_curves),
        "test_loss": band(test_curves),
        "test_top1": band(top1_curves),
        "final_train_loss": spread([curve[-1] for curve in train_curves]),
        "final_test_loss": spread([curve[-1] for curve in test_curves]),
        "final_test_top1": spread([curve[-1] for curve in top1_curves]),
        "epochs_to_target": reached,
        "epochs_to_target_spread": spread(censored_epochs(reached, epochs)),
        "target_reached": sum(value is not None for value in reached),
        "train_loss_rises": {key: spread([r[key] for r in train_rises]) for key in ("fraction", "total", "max")},
        "test_loss_rises": {key: spread([r[key] for r in test_rises]) for key in ("fraction", "total", "max")},
        "train_seconds": spread([math.fsum(row["seconds"] for row in history) for history in histories]),
        "wall_seconds": spread(list(wall_seconds)),
    }


def reachable_target(mean_train_curves: dict[str, Sequence[float]]) -> float:
    """Pick the lowest training loss that every optimizer's mean curve reaches within the budget.

    That is the highest of the per-optimizer minima, so the slowest optimizer reaches it by its last
    epoch and epochs-to-target separates the others. Diverged (non-finite) curves are left out.
    """
    minima = [min(curve) for curve in mean_train_curves.values() if all(math.isfinite(x) for x in curve)]
    if not minima:
        return math.nan
    return max(minima)


def rank(summaries: dict[str, dict]) -> list[str]:
    """Order optimizers by mean epochs to the target, then by mean final training loss.

    Runs that missed the target count as one epoch past the budget (see ``censored_epochs``).
    A diverged optimizer (non-finite final loss) goes last.
    """

    def key(name: str) -> tuple[float, float]:
        summary = summaries[name]
        final = summary["final_train_loss"]["mean"]
        if not math.isfinite(final):
            return (math.inf, math.inf)
        return (summary["epochs_to_target_spread"]["mean"], final)

    return sorted(summaries, key=key)
