import math

import pytest

from cifar.study import StudyError
from cifar.study_report import sweep_table
from cifar.study_sweep import SWEEP_RANGES, chosen_lrs, lr_grid, pick_lr, sweep_lrs
from cifar.training import TrainConfig


def test_lr_grid_two_points_per_decade():
    assert lr_grid(1e-3, 1.0) == [0.001, 0.00316, 0.01, 0.0316, 0.1, 0.316, 1.0]


def test_lr_grid_given_points():
    assert lr_grid(1e-4, 1e-2, points=3) == [1e-4, 1e-3, 1e-2]


@pytest.mark.parametrize("low, high", [(0.1, 0.01), (0.0, 1.0), (0.1, 0.1)])
def test_lr_grid_bad_range(low, high):
    with pytest.raises(StudyError, match="0 < low < high"):
        lr_grid(low, high)


def test_lr_grid_too_few_points():
    with pytest.raises(StudyError, match="at least 2 points, got 1"):
        lr_grid(1e-3, 1e-1, points=1)


def test_every_study_optimizer_has_a_range():
    from cifar.study import STUDY_OPTIMIZERS

    assert set(STUDY_OPTIMIZERS) == set(SWEEP_RANGES)


def test_pick_lr_lowest_finite_loss():
    rows = [{"lr": 0.01, "final_train_loss": 1.5}, {"lr": 0.1, "final_train_loss": 1.2},
            {"lr": 1.0, "final_train_loss": math.nan}]
    assert pick_lr(rows)["lr"] == 0.1


def test_pick_lr_all_diverged():
    rows = [{"lr": 1.0, "final_train_loss": math.nan}, {"lr": 10.0, "final_train_loss": math.inf}]
    with pytest.raises(StudyError, match="every run diverged at learning rates 1, 10"):
        pick_lr(rows)


def test_sweep_picks_per_optimizer(synthetic):
    base = TrainConfig(epochs=1, batch_size=32, train_subset=128)
    sweep = sweep_lrs(base, ["sgd", "adam"], synthetic, grid=(1e-3, 1e-1), points=3)

    assert list(sweep["optimizers"]) == ["sgd", "adam"]
    for entry in sweep["optimizers"].values():
        assert [row["lr"] for row in entry["rows"]] == [1e-3, 1e-2, 1e-1]
        best = min(entry["rows"], key=lambda row: row["final_train_loss"])
        assert entry["lr"] == best["lr"]
        assert entry["at_edge"] == (entry["lr"] in (1e-3, 1e-1))
    assert chosen_lrs(sweep) == {name: entry["lr"] for name, entry in sweep["optimizers"].items()}
    assert sweep["data"]["train_images"] == 128


def test_sweep_table_marks_choice():
    sweep = {"optimizers": {"adam": {"lr": 0.01, "at_edge": False, "rows": [
        {"lr": 0.001, "final_train_loss": 1.5, "final_test_top1": 0.4},
        {"lr": 0.01, "final_train_loss": 1.2, "final_test_top1": 0.5},
        {"lr": 0.1, "final_train_loss": math.nan, "final_test_top1": 0.1},
    ]}}}
    lines = sweep_table(sweep).splitlines()
    assert lines[3].split() == ["adam", "0.01", "1.2000", "50.00%", "chosen"]
    assert "diverged" in lines[4]


def test_sweep_table_marks_grid_end():
    sweep = {"optimizers": {"sgd": {"lr": 1.0, "at_edge": True, "rows": [
        {"lr": 0.1, "final_train_loss": 1.5, "final_test_top1": 0.4},
        {"lr": 1.0, "final_train_loss": 1.2, "final_test_top1": 0.5},
    ]}}}
    assert "chosen (grid end)" in sweep_table(sweep)
