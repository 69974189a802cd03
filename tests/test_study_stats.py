import math

import pytest

from cifar.study_stats import (
    band,
    censored_epochs,
    epochs_to_target,
    loss_rises,
    rank,
    reachable_target,
    spread,
    summarize_runs,
)


def history(train_losses, test_losses=None, top1=None, seconds=1.0):
    """Build history rows like ``cifar.training.train`` returns from a list of training losses."""
    test_losses = test_losses or train_losses
    top1 = top1 or [0.5] * len(train_losses)
    return [
        {"epoch": epoch, "train_loss": train, "test_loss": test, "test_top1": accuracy, "lr": 0.1, "seconds": seconds}
        for epoch, (train, test, accuracy) in enumerate(zip(train_losses, test_losses, top1), start=1)
    ]


def test_band_per_epoch():
    result = band([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    assert result["mean"] == [2.0, 2.0, 2.0]
    assert result["min"] == [1.0, 2.0, 1.0]
    assert result["max"] == [3.0, 2.0, 3.0]


def test_spread_of_values():
    assert spread([1.0, 2.0, 6.0]) == {"mean": 3.0, "min": 1.0, "max": 6.0}


def test_epochs_to_target_first_epoch_at_or_below():
    assert epochs_to_target([2.0, 1.5, 1.0, 0.9], 1.0) == 3
    assert epochs_to_target([2.0, 1.5], 2.0) == 1


def test_epochs_to_target_never_reached():
    assert epochs_to_target([2.0, 1.5], 1.0) is None
    assert epochs_to_target([math.nan, math.nan], 1.0) is None


def test_censored_epochs_count_budget_plus_one():
    assert censored_epochs([2, None, 4], budget=5) == [2, 6, 4]


def test_loss_rises_counts_and_sizes():
    rises = loss_rises([2.0, 1.5, 1.7, 1.2, 1.3])
    assert rises["fraction"] == 0.5
    assert rises["total"] == pytest.approx(0.3)
    assert rises["max"] == pytest.approx(0.2)


def test_loss_rises_monotone_curve():
    assert loss_rises([2.0, 1.0, 0.5]) == {"fraction": 0.0, "total": 0.0, "max": 0.0}


def test_loss_rises_single_epoch():
    assert loss_rises([2.0]) == {"fraction": 0.0, "total": 0.0, "max": 0.0}


def test_loss_rises_divergence_is_infinite():
    rises = loss_rises([2.0, math.nan, math.nan])
    assert rises["fraction"] == 0.5
    assert rises["total"] == math.inf


def test_reachable_target_is_highest_minimum():
    assert reachable_target({"fast": [2.0, 1.0, 0.5], "slow": [2.0, 1.8, 1.2]}) == 1.2


def test_reachable_target_skips_diverged():
    assert reachable_target({"fast": [2.0, 1.0], "diverged": [2.0, math.nan]}) == 1.0
    assert math.isnan(reachable_target({"diverged": [math.inf]}))


def test_summarize_runs_figures():
    runs = [history([2.0, 1.0, 1.1], seconds=2.0), history([2.0, 1.6, 0.9], seconds=3.0)]
    summary = summarize_runs(runs, wall_seconds=[10.0, 12.0], target=1.0)

    assert summary["epochs"] == 3
    assert summary["train_loss"]["mean"] == pytest.approx([2.0, 1.3, 1.0])
    assert summary["epochs_to_target"] == [2, 3]
    assert summary["epochs_to_target_spread"] == {"mean": 2.5, "min": 2, "max": 3}
    assert summary["target_reached"] == 2
    assert summary["final_train_loss"]["min"] == 0.9
    assert summary["train_loss_rises"]["fraction"]["mean"] == 0.25
    assert summary["train_seconds"]["mean"] == 7.5
    assert summary["wall_seconds"]["max"] == 12.0


def test_summarize_runs_censors_missed_target():
    summary = summarize_runs([history([2.0, 1.5]), history([2.0, 0.5])], wall_seconds=[1.0, 1.0], target=1.0)
    assert summary["epochs_to_target"] == [None, 2]
    assert summary["epochs_to_target_spread"]["mean"] == 2.5  # the miss counts as epoch 3
    assert summary["target_reached"] == 1


def test_rank_by_epochs_then_final_loss():
    summaries = {
        "slow": summarize_runs([history([2.0, 1.5, 1.0])], [1.0], target=1.0),
        "fast_high": summarize_runs([history([1.0, 0.9, 0.8])], [1.0], target=1.0),
        "fast_low": summarize_runs([history([1.0, 0.5, 0.2])], [1.0], target=1.0),
        "diverged": summarize_runs([history([2.0, math.nan, math.nan])], [1.0], target=1.0),
    }
    assert rank(summaries) == ["fast_low", "fast_high", "slow", "diverged"]
