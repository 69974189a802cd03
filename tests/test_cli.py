import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cifar.cli import main
from cifar.models import create

FAST = ["--synthetic", "--latency-calls", "20", "--throughput-seconds", "0.05", "-q"]


@pytest.fixture(scope="module")
def run_once(tmp_path_factory):
    """One `python -m cifar run` on synthetic data, through the real entry point."""
    folder = tmp_path_factory.mktemp("run")
    command = [sys.executable, "-m", "cifar", "run", "--epochs", "1", "--cache-dir", str(folder / "cache"),
               "--json", str(folder / "results.json"), *FAST]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    return folder, completed


def test_run_exits_zero_and_prints_table(run_once):
    _, completed = run_once
    assert completed.returncode == 0, completed.stderr
    assert "backend" in completed.stdout
    assert "images/s @256" in completed.stdout
    for label in ("Torch", "TorchScript", "ONNX"):
        assert f"\n{label} Model Accuracy: " in completed.stdout
    assert "Mean Inference Time: " in completed.stdout
    assert "Traceback" not in completed.stderr


def test_run_json_schema(run_once):
    folder, _ = run_once
    results = json.loads((folder / "results.json").read_text())
    assert results["model"] == "tutorial"
    assert results["threads"] >= 1
    assert results["latency_threads"] == 1
    assert {"torch", "onnxruntime"} <= set(results["versions"])
    assert set(results["backends"]) == {"eager", "torchscript", "onnxruntime"}
    for name, backend in results["backends"].items():
        assert 0 <= backend["top1"] <= 1, name
        assert set(backend["latency_ms"]) >= {"mean", "p50", "p90", "p99"}, name
        assert backend["latency_ms"]["threads"] == 1, name
        assert backend["images_per_s"] > 0, name
    tops = {b["top1"] for b in results["backends"].values()}
    assert len(tops) == 1  # the exports passed the parity gate, so they score the same
    assert results["backends"]["eager"]["latency_speedup"] == 1.0


def test_second_run_reuses_cache(run_once, capsys):
    folder, _ = run_once
    checkpoints = sorted((folder / "cache" / "checkpoints").glob("*.pt"))
    code = main(["run", "--epochs", "1", "--cache-dir", str(folder / "cache"), "--backends", "eager", *FAST])
    assert code == 0
    assert "(cached)" in capsys.readouterr().out
    assert sorted((folder / "cache" / "checkpoints").glob("*.pt")) == checkpoints


def test_missing_data_exits_2_with_three_ways(tmp_path, capsys):
    code = main(["run", "--data-dir", str(tmp_path / "nothing"), "--no-download", "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "--data-dir" in err
    assert "$CIFAR10_ROOT" in err
    assert "cifar download" in err
    assert "Traceback" not in err


def test_failed_download_exits_2(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("torchvision.datasets.utils.download_and_extract_archive", offline)
    code = main(["run", "--data-dir", str(tmp_path / "nothing"), "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "download failed (network is unreachable)" in err
    assert not (tmp_path / "nothing" / "cifar-10-batches-py").exists()


def test_corrupt_checkpoint_exits_2(tmp_path, capsys):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"\x00" * 100)
    assert main(["evaluate", str(path), "--cache-dir", str(tmp_path), *FAST]) == 2
    assert f"cannot read checkpoint {path}" in capsys.readouterr().err


def test_bad_checkpoint_rejected_before_data(tmp_path, capsys, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("data was looked up before the checkpoint was checked")

    monkeypatch.setattr("cifar.cli.load_data", no_data)
    path = tmp_path / "broken.pt"
    path.write_bytes(b"\x00" * 100)
    for command in (["evaluate", str(path)], ["export", str(path), "--out", str(tmp_path / "m.onnx")]):
        assert main([*command, "--cache-dir", str(tmp_path)]) == 2, command
        assert "cannot read checkpoint" in capsys.readouterr().err


def test_other_architecture_exits_2(tmp_path, capsys):
    torch.save({"layer.weight": torch.zeros(1)}, tmp_path / "other.pt")
    assert main(["evaluate", str(tmp_path / "other.pt"), "--cache-dir", str(tmp_path), *FAST]) == 2
    assert "keys match none of the models (tutorial, resnet)" in capsys.readouterr().err


def test_unwritable_cache_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "--epochs", "1", "--cache-dir", str(blocker), "--synthetic", "-q"]) == 2
    assert f"cannot create the cache folder {blocker}" in capsys.readouterr().err


def test_bad_json_path_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = tmp_path / "cache"
    assert main(["run", "--json", str(blocker / "out.json"), "--cache-dir", str(cache), *FAST]) == 2
    assert f"--json {blocker / 'out.json'}: {blocker} is a file, not a folder" in capsys.readouterr().err
    assert not list(cache.glob("checkpoints/*.pt"))  # nothing was trained


def test_json_path_that_is_a_folder_exits_2(tmp_path, capsys):
    assert main(["run", "--json", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), *FAST]) == 2
    assert f"--json {tmp_path} is a folder" in capsys.readouterr().err


def test_nonpositive_throughput_seconds_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--throughput-seconds", "0", "--cache-dir", str(tmp_path), "--synthetic"])
    assert exit_info.value.code == 2
    assert "--throughput-seconds: must be greater than 0, got 0" in capsys.readouterr().err


def test_json_parent_folders_created(run_once, tmp_path, capsys):
    folder, _ = run_once
    (checkpoint,) = (folder / "cache" / "checkpoints").glob("*.pt")
    out = tmp_path / "new" / "nested" / "eval.json"
    code = main(["evaluate", str(checkpoint), "--backends", "eager", "--json", str(out),
                 "--cache-dir", str(folder / "cache"), *FAST])
    assert code == 0
    assert json.loads(out.read_text())["backends"]["eager"]["top1"] >= 0


def test_evaluate_writes_same_schema(run_once, tmp_path, capsys):
    folder, _ = run_once
    (checkpoint,) = (folder / "cache" / "checkpoints").glob("*.pt")
    out = tmp_path / "eval.json"
    code = main(["evaluate", str(checkpoint), "--backends", "eager", "onnxruntime", "--json", str(out),
                 "--cache-dir", str(folder / "cache"), *FAST])
    assert code == 0
    results = json.loads(out.read_text())
    assert set(results["backends"]) == {"eager", "onnxruntime"}
    assert set(results["backends"]["onnxruntime"]) >= {"top1", "latency_ms", "images_per_s"}


def test_export_command_writes_file(run_once, tmp_path, capsys):
    folder, _ = run_once
    (checkpoint,) = (folder / "cache" / "checkpoints").glob("*.pt")
    assert main(["export", str(checkpoint), "--format", "torchscript", "--out", str(tmp_path / "m.ts"), "--synthetic", "-q"]) == 0
    assert (tmp_path / "m.ts").stat().st_size > 0
    assert "max |logit diff|" in capsys.readouterr().out


def test_models_lists_params_and_flops(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "62,006" in out
    assert "1.30" in out
    assert "resnet" in out
    assert "  tutorial: momentum (SGD with Nesterov momentum 0.9), peak lr 0.05, 15 epochs, batch 64" in out
    assert "2-pixel crop (reflect padding), alternate flip" in out


def test_usage_errors_exit_2(capsys):
    for argv in (["run", "--epochs", "0"], ["run", "--model", "vgg"], ["frobnicate"], ["run", "--backends", "tensorrt"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, argv


def test_bare_state_dict_evaluates(tmp_path, capsys):
    torch.save({"module." + k: v for k, v in create("tutorial").state_dict().items()}, tmp_path / "bare.pt")
    code = main(["evaluate", str(tmp_path / "bare.pt"), "--backends", "eager", "--cache-dir", str(tmp_path), *FAST])
    assert code == 0
    assert "Torch Model Accuracy:" in capsys.readouterr().out


def test_json_to_unwritable_place_exits_2(run_once, tmp_path, capsys):
    folder, _ = run_once
    blocker = tmp_path / "file"
    blocker.write_text("")
    (checkpoint,) = (folder / "cache" / "checkpoints").glob("*.pt")
    code = main(["evaluate", str(checkpoint), "--backends", "eager", "--json", str(blocker / "r.json"),
                 "--cache-dir", str(folder / "cache"), *FAST])
    assert code == 2
    assert str(blocker) in capsys.readouterr().err
    assert Path(blocker).read_text() == ""


def test_other_optimizer_takes_its_default_lr():
    from cifar.cli import build_parser, train_config

    parser = build_parser()
    assert train_config(parser.parse_args(["run"])).lr == 0.05
    assert train_config(parser.parse_args(["run", "--optimizer", "adam"])).lr is None
    assert train_config(parser.parse_args(["run", "--optimizer", "adam", "--lr", "0.01"])).lr == 0.01
