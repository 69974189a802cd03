"""End-to-end runs of ``cifar compare-optimizers`` and ``cifar lr-sweep`` on synthetic data."""

import json
import sys

import pytest

from cifar.cli import main


QUICK = ["--synthetic", "--subset", "128", "--epochs", "2", "--batch-size", "32", "-q"]


def test_compare_optimizers_writes_outputs(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["compare-optimizers", "--optimizers", "sgd", "adam", "--seeds", "2", "--out", str(out), *QUICK]) == 0

    printed = capsys.readouterr().out
    assert "optimizer study: tutorial, 2 epochs, seeds [0, 1], 128 training and 512 test images" in printed
    assert "Claim 'Adam converges faster than SGD'" in printed
    assert f"results written to {out / 'study.json'}" in printed

    document = json.loads((out / "study.json").read_text())
    assert set(document["optimizers"]) == {"sgd", "adam"}
    assert len(document["optimizers"]["adam"]["runs"]) == 2
    assert document["conclusion"] == [line for line in printed.splitlines() if line in document["conclusion"]]
    assert (out / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_compare_optimizers_table_in_ranking_order(tmp_path, capsys):
    out = tmp_path / "study"
    main(["compare-optimizers", "--optimizers", "sgd", "adam", "rmsprop", "--seeds", "1", "--out", str(out), *QUICK])
    printed = capsys.readouterr().out
    ranking = json.loads((out / "study.json").read_text())["ranking"]
    rows = [line.split() for line in printed.splitlines() if line[:1].isdigit()]
    assert [row[1] for row in rows] == ranking


def test_compare_optimizers_first_seed_and_target(tmp_path):
    out = tmp_path / "study"
    main(["compare-optimizers", "--optimizers", "adam", "--seeds", "2", "--first-seed", "5", "--target-loss", "2.0",
          "--out", str(out), *QUICK])
    document = json.loads((out / "study.json").read_text())
    assert document["seeds"] == [5, 6]
    assert document["target_train_loss"] == 2.0


def test_compare_optimizers_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    out = tmp_path / "study"
    assert main(["compare-optimizers", "--optimizers", "adam", "--seeds", "1", "--out", str(out), *QUICK]) == 0

    lines = [line for line in capsys.readouterr().out.splitlines() if "matplotlib" in line]
    assert lines == ["matplotlib is not installed, so no plot was written; "
                     "install it with: pip install 'cifar-bench[plot]'"]
    assert (out / "study.json").is_file()
    assert not (out / "loss.png").exists()


def test_compare_optimizers_with_sweep(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["compare-optimizers", "--optimizers", "sgd", "adam", "--seeds", "1", "--sweep", "--sweep-epochs", "1",
                 "--lr-min", "0.001", "--lr-max", "0.1", "--lr-points", "2", "--out", str(out), *QUICK]) == 0

    sweep = json.loads((out / "sweep.json").read_text())
    study = json.loads((out / "study.json").read_text())
    assert sweep["epochs"] == 1
    for name in ("sgd", "adam"):
        assert study["optimizers"][name]["lr"] == sweep["optimizers"][name]["lr"]
    assert "chosen: sgd" in capsys.readouterr().out


def test_lr_sweep_writes_outputs(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["lr-sweep", "--optimizers", "adam", "--lr-points", "2", "--lr-min", "1e-3", "--lr-max", "1e-2",
                 "--out", str(out), *QUICK]) == 0

    printed = capsys.readouterr().out
    assert "learning-rate sweep: tutorial, 2 epochs, seed 0, 128 training images" in printed
    sweep = json.loads((out / "sweep.json").read_text())
    assert [row["lr"] for row in sweep["optimizers"]["adam"]["rows"]] == [0.001, 0.01]
    assert (out / "sweep.png").is_file()


@pytest.mark.parametrize("command", ["compare-optimizers", "lr-sweep"])
def test_unknown_optimizer_exits_2(command, tmp_path, capsys):
    assert main([command, "--optimizers", "sgd", "nadam", "--out", str(tmp_path), *QUICK]) == 2
    assert "error: unknown optimizer 'nadam'; choose from: sgd" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["compare-optimizers", "lr-sweep"])
def test_subset_larger_than_data_exits_2(command, tmp_path, capsys):
    assert main([command, "--optimizers", "sgd", "--out", str(tmp_path), "--synthetic", "--subset", "5000", "-q"]) == 2
    err = capsys.readouterr().err
    assert "error: --subset 5000 is more than the 1,024 training images" in err
    assert "pass --subset 1024 or less" in err


@pytest.mark.parametrize("command", ["compare-optimizers", "lr-sweep"])
def test_unwritable_out_exits_2(command, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert main([command, "--optimizers", "sgd", "--out", str(blocker / "out"), *QUICK]) == 2
    assert "error: cannot write to the output folder" in capsys.readouterr().err


def test_lr_min_without_max_exits_2(tmp_path, capsys):
    assert main(["lr-sweep", "--optimizers", "sgd", "--lr-min", "0.01", "--out", str(tmp_path), *QUICK]) == 2
    assert "pass --lr-min and --lr-max together" in capsys.readouterr().err


def test_zero_seeds_rejected_by_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare-optimizers", "--seeds", "0", *QUICK])
    assert exit_info.value.code == 2
    assert "must be at least 1, got 0" in capsys.readouterr().err
