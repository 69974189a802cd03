import json
import math

import pytest

from cifar import optim
from cifar.errors import CifarError
from cifar.study import (
    StudyConfig,
    StudyError,
    check_optimizers,
    check_subset,
    prepare_out_dir,
    run_study,
    study_document,
)
from cifar.study_report import conclusion, study_table
from cifar.training import TrainConfig


def history(train_losses: list[float]) -> list[dict]:
    """Build history rows like ``cifar.training.train`` returns, test loss equal to training loss."""
    return [
        {"epoch": epoch, "train_loss": loss, "test_loss": loss, "test_top1": 0.5, "lr": 0.1, "seconds": 1.0}
        for epoch, loss in enumerate(train_losses, start=1)
    ]


def fake_runs(curves: dict[str, list[list[float]]]) -> dict[str, list[dict]]:
    """Wrap per-seed training-loss curves as finished runs of each optimizer."""
    return {
        name: [{"seed": seed, "wall_seconds": 1.0, "history": history(curve)} for seed, curve in enumerate(seed_curves)]
        for name, seed_curves in curves.items()
    }


def document_for(curves: dict[str, list[list[float]]], synthetic, target: float | None = None) -> dict:
    config = StudyConfig(TrainConfig(epochs=len(next(iter(curves.values()))[0])), tuple(curves),
                         seeds=tuple(range(len(next(iter(curves.values()))))), target_train_loss=target)
    return study_document(config, synthetic, fake_runs(curves), seconds=1.0)


def test_study_error_is_cifar_error():
    assert issubclass(StudyError, CifarError)


def test_check_optimizers_drops_repeats():
    assert check_optimizers(["adam", "sgd", "adam"]) == ("adam", "sgd")


def test_check_optimizers_unknown_name():
    with pytest.raises(StudyError, match=r"unknown optimizer 'nadam'; choose from: sgd, momentum"):
        check_optimizers(["sgd", "nadam"])


def test_check_optimizers_empty():
    with pytest.raises(StudyError, match="no optimizers given"):
        check_optimizers([])


def test_check_optimizers_muon_without_torch_support(monkeypatch):
    registry = {name: spec for name, spec in optim.OPTIMIZERS.items() if name != "muon"}
    monkeypatch.setattr("cifar.study.OPTIMIZERS", registry)
    with pytest.raises(StudyError, match=r"needs torch\.optim\.Muon"):
        check_optimizers(["muon"])


def test_check_subset_larger_than_data(synthetic):
    with pytest.raises(StudyError, match=r"--subset 513 is more than the 512 training images.*--subset 512 or less"):
        check_subset(513, synthetic)


def test_check_subset_fits(synthetic):
    check_subset(512, synthetic)
    check_subset(None, synthetic)


def test_prepare_out_dir_creates_folder(tmp_path):
    out = prepare_out_dir(tmp_path / "a" / "b")
    assert out.is_dir()
    assert list(out.iterdir()) == []


def test_prepare_out_dir_under_a_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(StudyError, match=r"cannot write to the output folder .*file\.txt/out.*Pass --out"):
        prepare_out_dir(blocker / "out")


def test_study_config_rejects_bad_target():
    with pytest.raises(StudyError, match="--target-loss must be a positive loss"):
        StudyConfig(TrainConfig(), ("sgd",), target_train_loss=-1.0)


def test_study_config_lr_defaults_and_overrides():
    config = StudyConfig(TrainConfig(lr=0.5), ("sgd", "adam"), lrs={"adam": 0.01})
    assert config.run_config("adam", seed=3).lr == 0.01
    assert config.run_config("adam", seed=3).seed == 3
    # The recipe's own lr belongs to its optimizer, so every study run takes its optimizer's rate.
    assert config.run_config("sgd", seed=0).lr == optim.OPTIMIZERS["sgd"].default_lr


def test_run_study_document(synthetic):
    base = TrainConfig(epochs=2, batch_size=32, train_subset=128)
    document = run_study(StudyConfig(base, ("sgd", "adam"), seeds=(0, 1)), synthetic)

    assert set(document["optimizers"]) == {"sgd", "adam"}
    assert sorted(document["ranking"]) == ["adam", "sgd"]
    assert document["data"]["train_images"] == 128
    assert document["seeds"] == [0, 1]
    for name in ("sgd", "adam"):
        entry = document["optimizers"][name]
        assert [run["seed"] for run in entry["runs"]] == [0, 1]
        assert all(len(run["history"]) == 2 for run in entry["runs"])
        assert len(entry["summary"]["train_loss"]["mean"]) == 2
        assert entry["lr"] == optim.OPTIMIZERS[name].default_lr
    assert document["conclusion"]
    json.dumps(document, allow_nan=True)  # the document is written as JSON


def test_run_study_seeds_differ(synthetic):
    base = TrainConfig(epochs=1, batch_size=32, train_subset=64)
    document = run_study(StudyConfig(base, ("adam",), seeds=(0, 1)), synthetic)
    first, second = (run["history"][0]["train_loss"] for run in document["optimizers"]["adam"]["runs"])
    assert first != second


def test_run_study_rejects_large_subset(synthetic):
    with pytest.raises(StudyError, match="--subset 5000"):
        run_study(StudyConfig(TrainConfig(train_subset=5000), ("sgd",)), synthetic)


def test_document_target_computed_when_not_given(synthetic):
    document = document_for({"adam": [[2.0, 1.0, 0.5]], "sgd": [[2.0, 1.8, 1.2]]}, synthetic)
    assert document["target_train_loss"] == 1.2
    assert document["optimizers"]["sgd"]["summary"]["epochs_to_target"] == [3]


def test_document_target_given(synthetic):
    document = document_for({"adam": [[2.0, 1.0, 0.5]], "sgd": [[2.0, 1.8, 1.2]]}, synthetic, target=1.0)
    assert document["target_train_loss"] == 1.0
    assert document["target_source"] == "given"
    assert document["optimizers"]["sgd"]["summary"]["epochs_to_target"] == [None]


FAST = [[2.0, 1.0, 0.8, 0.6], [2.0, 1.1, 0.8, 0.6]]
SLOW = [[2.0, 1.8, 1.4, 1.0], [2.0, 1.9, 1.5, 1.0]]
WAVY = [[2.0, 1.6, 1.8, 1.0], [2.0, 1.5, 1.7, 1.0]]


def test_conclusion_follows_faster_adam(synthetic):
    lines = document_for({"adam": FAST, "sgd": SLOW}, synthetic, target=1.0)["conclusion"]
    assert lines[0].startswith("Fastest to training loss 1.000: adam (2.5 epochs")
    assert "slowest: sgd (4.0 epochs)" in lines[0]
    assert "Claim 'Adam converges faster than SGD': supported (adam 2.5 vs sgd 4.0" in "\n".join(lines)


def test_conclusion_flips_with_numbers(synthetic):
    lines = document_for({"adam": SLOW, "sgd": FAST}, synthetic, target=1.0)["conclusion"]
    assert lines[0].startswith("Fastest to training loss 1.000: sgd")
    assert "Claim 'Adam converges faster than SGD': not supported (adam 4.0 vs sgd 2.5" in "\n".join(lines)


def test_conclusion_overlapping_seeds(synthetic):
    adam = [[2.0, 1.0, 0.8], [2.0, 1.5, 0.9]]  # epochs to 1.0: 2 and 3
    sgd = [[2.0, 1.5, 1.0], [2.0, 1.4, 0.9]]  # 3 and 3
    text = "\n".join(document_for({"adam": adam, "sgd": sgd}, synthetic, target=1.0)["conclusion"])
    assert "supported on the mean only (adam 2.5 vs sgd 3.0 epochs to the target; the seed ranges overlap)" in text
    assert "The seed ranges of adam and sgd overlap" in text


def test_conclusion_stability_from_rises(synthetic):
    lines = document_for({"adam": FAST, "sgd": WAVY}, synthetic, target=1.0)["conclusion"]
    text = "\n".join(lines)
    assert "most wavy: sgd (rose in 33% of epoch steps, adding up to 0.200)" in text
    assert "Claim 'Adam converges more stably than SGD': supported" in text

    lines = document_for({"adam": WAVY, "sgd": FAST}, synthetic, target=1.0)["conclusion"]
    assert "Claim 'Adam converges more stably than SGD': not supported" in "\n".join(lines)


def test_conclusion_stability_mixed(synthetic):
    adam = [[2.0, 1.0, 0.8, 0.6], [2.0, 1.1, 0.9, 0.9]]  # smooth curves, but the seeds end 0.3 apart
    lines = document_for({"adam": adam, "sgd": WAVY}, synthetic, target=1.0)["conclusion"]
    claim = next(line for line in lines if "more stably" in line)
    assert "mixed: adam is lower on training-loss rises and test-loss rises" in claim
    assert "but higher on final training loss spread over seeds" in claim


def test_conclusion_stability_no_difference(synthetic):
    lines = document_for({"adam": FAST, "sgd": FAST}, synthetic, target=1.0)["conclusion"]
    claim = next(line for line in lines if "more stably" in line)
    assert "not supported, no difference" in claim


def test_conclusion_without_adam_and_sgd_skips_claim(synthetic):
    lines = document_for({"rmsprop": FAST, "momentum": SLOW}, synthetic, target=1.0)["conclusion"]
    assert not any("Claim" in line for line in lines)


def test_conclusion_single_optimizer(synthetic):
    assert conclusion(document_for({"adam": FAST}, synthetic)) == ["Only adam was trained, so there is nothing to compare."]


def test_conclusion_with_diverged_optimizer(synthetic):
    diverged = [[2.0, math.nan, math.nan, math.nan]] * 2
    document = document_for({"adam": FAST, "sgd": diverged}, synthetic)
    assert document["ranking"] == ["adam", "sgd"]
    assert "slowest: sgd (at least 5.0 epochs, 2 of 2 seeds never got there)" in document["conclusion"][0]


def test_study_table_ranked_rows(synthetic):
    table = study_table(document_for({"sgd": SLOW, "adam": FAST}, synthetic, target=1.0))
    lines = table.splitlines()
    assert "epochs to loss 1.000" in lines[0]
    assert lines[2].split()[:3] == ["1", "adam", f"{optim.OPTIMIZERS['adam'].default_lr:g}"]
    assert lines[3].split()[:2] == ["2", "sgd"]
    assert "2.5 (2-3)" in lines[2]


def test_study_table_missed_target(synthetic):
    table = study_table(document_for({"adam": FAST, "sgd": [[2.0, 1.5, 1.2, 1.1], SLOW[0]]}, synthetic, target=1.0))
    assert ">=4.5 (1/2 reached)" in table
