"""Terminal tables and the written conclusion of the optimizer study and the learning-rate sweep.

The conclusion is built from the figures in the results document, so it changes when the numbers
do. Only its wording is fixed in advance.
"""

from __future__ import annotations

import math

from cifar.report import format_table


def _range(spread: dict, digits: int = 3) -> str:
    return f"{spread['mean']:.{digits}f} ({spread['min']:.{digits}f}-{spread['max']:.{digits}f})"


def _percent_range(spread: dict) -> str:
    return f"{spread['mean']:.2%} ({spread['min']:.2%}-{spread['max']:.2%})"


def _epochs_cell(summary: dict, seeds: int) -> str:
    """Mean epochs to the target with the seed range, or how many seeds got there at all."""
    spread = summary["epochs_to_target_spread"]
    reached = summary["target_reached"]
    if reached == seeds:
        return f"{spread['mean']:.1f} ({spread['min']:.0f}-{spread['max']:.0f})"
    if reached == 0:
        return f"not reached (0/{seeds})"
    return f">={spread['mean']:.1f} ({reached}/{seeds} reached)"


def _rises_cell(rises: dict) -> str:
    return f"{rises['fraction']['mean']:.0%}, +{rises['total']['mean']:.3f}"


def study_table(document: dict) -> str:
    """Format one row per optimizer, in ranking order, with the study's figures."""
    seeds = len(document["seeds"])
    headers = ["rank", "optimizer", "lr", f"epochs to loss {document['target_train_loss']:.3f}",
               "final train loss", "final test loss", "test top-1", "train loss rises", "test loss rises", "s/run"]
    rows = []
    for position, name in enumerate(document["ranking"], start=1):
        entry = document["optimizers"][name]
        summary = entry["summary"]
        rows.append([
            str(position),
            name,
            f"{entry['lr']:g}",
            _epochs_cell(summary, seeds),
            _range(summary["final_train_loss"]),
            _range(summary["final_test_loss"]),
            _percent_range(summary["final_test_top1"]),
            _rises_cell(summary["train_loss_rises"]),
            _rises_cell(summary["test_loss_rises"]),
            f"{summary['wall_seconds']['mean']:.0f}",
        ])
    return format_table(headers, rows)


def sweep_table(sweep: dict) -> str:
    """Format one row per optimizer and learning rate, with the picked rate marked."""
    rows = []
    for name, entry in sweep["optimizers"].items():
        for row in entry["rows"]:
            mark = ""
            if row["lr"] == entry["lr"]:
                mark = "chosen (grid end)" if entry["at_edge"] else "chosen"
            loss = row["final_train_loss"]
            rows.append([name, f"{row['lr']:g}", f"{loss:.4f}" if math.isfinite(loss) else "diverged",
                         f"{row['final_test_top1']:.2%}", mark])
    return format_table(["optimizer", "lr", "final train loss", "test top-1", ""], rows)


def _overlap(a: dict, b: dict) -> bool:
    """Return whether two min-max seed ranges overlap."""
    return a["min"] <= b["max"] and b["min"] <= a["max"]


def _epochs_text(summary: dict, seeds: int) -> str:
    spread = summary["epochs_to_target_spread"]
    if summary["target_reached"] == seeds:
        return f"{spread['mean']:.1f} epochs"
    return f"at least {spread['mean']:.1f} epochs, {seeds - summary['target_reached']} of {seeds} seeds never got there"


def _speed_lines(document: dict, summaries: dict, seeds: int) -> list[str]:
    ranking = document["ranking"]
    target = document["target_train_loss"]
    first, last = ranking[0], ranking[-1]
    lines = [f"Fastest to training loss {target:.3f}: {first} ({_epochs_text(summaries[first], seeds)}, "
             f"mean of {seeds} seeds); slowest: {last} ({_epochs_text(summaries[last], seeds)})."]
    runner_up = ranking[1]
    if _overlap(summaries[first]["epochs_to_target_spread"], summaries[runner_up]["epochs_to_target_spread"]):
        lines.append(f"The seed ranges of {first} and {runner_up} overlap, so {seeds} seeds do not settle "
                     f"which of the two is faster.")
    return lines


def _accuracy_line(summaries: dict, seeds: int) -> str:
    by_top1 = sorted(summaries, key=lambda name: -summaries[name]["final_test_top1"]["mean"])
    best, second = by_top1[0], by_top1[1]
    best_top1, second_top1 = summaries[best]["final_test_top1"], summaries[second]["final_test_top1"]
    line = (f"Best final test top-1: {best} ({best_top1['mean']:.2%}), then {second} "
            f"({second_top1['mean']:.2%}); ")
    if _overlap(best_top1, second_top1):
        return line + f"their seed ranges overlap, so {seeds} seeds do not separate them."
    return line + f"the worst seed of {best} beats the best seed of {second}."


def _stability_line(summaries: dict) -> str:
    totals = {name: summaries[name]["train_loss_rises"]["total"]["mean"] for name in summaries}
    if all(total == 0 for total in totals.values()):
        return "The per-epoch training loss fell every epoch for every optimizer and seed, so it shows no instability."
    calmest = min(totals, key=totals.get)
    wildest = max(totals, key=totals.get)
    rises = summaries[wildest]["train_loss_rises"]
    return (f"Least wavy training loss: {calmest} (rises add up to {totals[calmest]:.3f}); most wavy: {wildest} "
            f"(rose in {rises['fraction']['mean']:.0%} of epoch steps, adding up to {totals[wildest]:.3f}).")


def _claim_lines(summaries: dict) -> list[str]:
    """Judge the claim of an earlier one-seed comparison: Adam converges faster and more stably than SGD."""
    adam, sgd = summaries["adam"], summaries["sgd"]
    adam_epochs, sgd_epochs = adam["epochs_to_target_spread"], sgd["epochs_to_target_spread"]
    figures = f"adam {adam_epochs['mean']:.1f} vs sgd {sgd_epochs['mean']:.1f} epochs to the target"
    if adam_epochs["mean"] >= sgd_epochs["mean"]:
        faster = f"not supported ({figures})."
    elif adam_epochs["max"] < sgd_epochs["min"]:
        faster = f"supported ({figures}; every adam seed beat every sgd seed)."
    else:
        faster = f"supported on the mean only ({figures}; the seed ranges overlap)."

    # NOTE: the histories hold per-epoch means, so waviness within an epoch (the batch-to-batch
    # loss that a running-loss printout shows) is not measured here.
    measures = {
        "training-loss rises": (adam["train_loss_rises"]["total"]["mean"], sgd["train_loss_rises"]["total"]["mean"]),
        "test-loss rises": (adam["test_loss_rises"]["total"]["mean"], sgd["test_loss_rises"]["total"]["mean"]),
        "final training loss spread over seeds": (
            adam["final_train_loss"]["max"] - adam["final_train_loss"]["min"],
            sgd["final_train_loss"]["max"] - sgd["final_train_loss"]["min"],
        ),
    }
    better = [label for label, (adam_value, sgd_value) in measures.items() if adam_value < sgd_value]
    worse = [label for label, (adam_value, sgd_value) in measures.items() if adam_value > sgd_value]
    figures = "; ".join(f"{label} {adam_value:.3f} for adam vs {sgd_value:.3f} for sgd"
                        for label, (adam_value, sgd_value) in measures.items())
    if better and not worse:
        stable = f"supported ({figures})."
    elif better:
        stable = f"mixed: adam is lower on {' and '.join(better)} but higher on {' and '.join(worse)} ({figures})."
    elif worse:
        stable = f"not supported ({figures})."
    else:
        stable = f"not supported, no difference ({figures})."
    return [f"Claim 'Adam converges faster than SGD': {faster}", f"Claim 'Adam converges more stably than SGD': {stable}"]


def conclusion(document: dict) -> list[str]:
    """Write the study's conclusion, one sentence or two per line, from the figures in ``document``."""
    summaries = {name: entry["summary"] for name, entry in document["optimizers"].items()}
    seeds = len(document["seeds"])
    if len(summaries) == 1:
        (name,) = summaries
        return [f"Only {name} was trained, so there is nothing to compare."]

    lines = _speed_lines(document, summaries, seeds)
    lines.append(_accuracy_line(summaries, seeds))
    lines.append(_stability_line(summaries))
    if "adam" in summaries and "sgd" in summaries:
        lines.extend(_claim_lines(summaries))
    return lines
