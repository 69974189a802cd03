"""The ``--cifar-*`` pytest plugin driven through pytester: options, cache reuse, locking, parity, summary.

Every inner session runs the real ``benchmarks/test_inference.py`` (or a one-line test) on
synthetic data, with the tutorial model trained for one epoch, and short benchmark rounds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cifar.bench_artifacts
import cifar.pipeline

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
BENCHMARK_FILE = REPO / "benchmarks" / "test_inference.py"

# Synthetic data and a one-epoch recipe replace the real data set and the quick recipes.
SYNTHETIC_CONFTEST = """
import pytest

from cifar.training import TrainConfig
from cifar.transforms import synthetic_cifar10

pytest_plugins = ["cifar.pytest_plugin"]


@pytest.fixture(scope="session")
def cifar_data():
    return synthetic_cifar10(train_count=256, test_count=128)


@pytest.fixture(scope="session")
def cifar_recipes(cifar_settings):
    return {model: TrainConfig(model=model, epochs=1, batch_size=64) for model in cifar_settings.models}
"""

# Two processes wait for each other before asking for the checkpoint, and training is slowed
# down, so both are inside the cache lookup at once. Each training appends a line to trained.log.
CONCURRENT_CONFTEST = SYNTHETIC_CONFTEST + """

import os
import time
from pathlib import Path

import cifar.pipeline

HERE = Path(__file__).parent


@pytest.fixture(scope="session", autouse=True)
def both_processes_started():
    (HERE / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while len(list(HERE.glob("ready-*"))) < 2:
        assert time.monotonic() < deadline, "the other pytest process never started"
        time.sleep(0.05)


@pytest.fixture(scope="session", autouse=True)
def slow_counted_training():
    original = cifar.pipeline.train

    def train(*args, **kwargs):
        with open(HERE / "trained.log", "a") as log:
            log.write(f"{os.getpid()}\\n")
        time.sleep(2)
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cifar.pipeline, "train", train)
        yield
"""

FAST_ROUNDS = ["--benchmark-max-time=0.02", "--benchmark-min-rounds=3", "-p", "no:cacheprovider"]


@pytest.fixture
def bench_dir(pytester: pytest.Pytester, exported) -> pytest.Pytester:
    """A pytester folder with the real benchmark file and the synthetic-data conftest.

    ``exported`` trains and exports once in this process first. An in-process pytest run drops
    the modules it imported when it ends, and torch cannot import some of them twice (its
    operator libraries register once per process), so they must be imported before.
    """
    pytester.makeconftest(SYNTHETIC_CONFTEST)
    pytester.makepyfile(test_inference=BENCHMARK_FILE.read_text())
    return pytester


@pytest.fixture
def training_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count trainings of in-process sessions: the list gets one entry per training."""
    calls: list[int] = []
    original = cifar.pipeline.train

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(cifar.pipeline, "train", counted)
    return calls


def run_bench(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    # "--option=PATH" in one word: pytest takes a separate word naming an existing folder for a
    # test path, and would then look for conftest.py there instead of in the pytester folder.
    return pytester.runpytest(f"--cifar-cache-dir={cache}", "--cifar-models", "tutorial", *FAST_ROUNDS, *args)


def summary(result: pytest.RunResult) -> list[str]:
    """Return the lines of the cifar-bench summary section."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "cifar-bench summary" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("====")), len(lines))
    return lines[start + 1 : end]


def test_help_describes_every_option(pytester: pytest.Pytester):
    pytester.makeconftest('pytest_plugins = ["cifar.pytest_plugin"]')
    result = pytester.runpytest("--help")
    help_text = " ".join(" ".join(result.outlines).split())  # undo the line wrapping

    for option in ("--cifar-data-dir=DIR", "--cifar-cache-dir=DIR", "--cifar-retrain", "--cifar-full",
                   "--cifar-models=NAMES", "--cifar-backends=NAMES", "--cifar-batch-sizes=SIZES",
                   "--cifar-threads=N", "--cifar-latency-threads=N"):
        assert option in help_text
    assert "folder containing cifar-10-batches-py/" in help_text
    assert "inference batch sizes in images (default: 1,256)" in help_text
    assert "models to benchmark (default: tutorial,resnet)" in help_text
    assert "backends to benchmark (default: eager,torchscript,onnxruntime" in help_text
    assert "CPU threads for torch and ONNX Runtime" in help_text
    assert "CPU threads for batch-1 benchmarks (default 1). Larger batches use --cifar-threads." in help_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cifar-models", "tutorial,vgg"], "--cifar-models: unknown model(s) vgg; choose from: tutorial, resnet"),
        (["--cifar-backends", "tensorrt"], "--cifar-backends: unknown backend(s) tensorrt; choose from: eager,"),
        (["--cifar-batch-sizes", "1,0"], "batch sizes must be whole numbers of at least 1, got '0'"),
        (["--cifar-batch-sizes", ","], "expected a comma-separated list, got an empty value"),
        (["--cifar-threads", "0"], "thread count must be a whole number of at least 1, got '0'"),
    ],
    ids=["model", "backend", "batch-size", "empty-list", "threads"],
)
def test_invalid_option_is_usage_error(pytester: pytest.Pytester, args: list[str], message: str):
    pytester.makeconftest('pytest_plugins = ["cifar.pytest_plugin"]')
    result = pytester.runpytest(*args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in "\n".join(result.errlines)


def test_options_choose_parameters(bench_dir: pytest.Pytester):
    result = bench_dir.runpytest("--collect-only", "-q", "--cifar-models", "resnet,tutorial",
                                 "--cifar-backends", "eager,onnxruntime", "--cifar-batch-sizes", "32,1")
    collected = [line for line in result.outlines if line.startswith("test_inference.py::")]

    assert collected == [
        f"test_inference.py::test_inference[{model}-batch{size}-{backend}]"
        for model in ("resnet", "tutorial") for size in (32, 1) for backend in ("eager", "onnxruntime")
    ]


def test_run_prints_summary_and_records_extra_info(bench_dir: pytest.Pytester, tmp_path: Path):
    saved = tmp_path / "run.json"
    result = run_bench(bench_dir, tmp_path / "cache", "--cifar-batch-sizes", "1,4", "--cifar-threads", "2",
                       f"--benchmark-json={saved}")
    result.assert_outcomes(passed=6)
    lines = summary(result)

    assert "tutorial, batch 1 (custom recipe, 1 thread)" in lines
    assert "tutorial, batch 4 (custom recipe, 2 threads)" in lines
    header = next(line for line in lines if line.startswith("backend"))
    assert header.split() == ["backend", "top-1", "mean", "ms", "p99", "ms", "images/s", "speedup", "vs", "eager"]
    familiar = [line for line in lines if "Model Accuracy" in line]
    assert [line.split(" Model")[0] for line in familiar] == ["Torch", "TorchScript", "ONNX"]
    for line in familiar:
        assert re.fullmatch(r"\w+ Model Accuracy: \d+\.\d\d%, Mean Inference Time: \d+\.\d\d ms", line)
    assert sum(": built in " in line for line in lines) == 6  # checkpoint, 2 exports, 3 top-1 files

    benchmarks = json.loads(saved.read_text())["benchmarks"]
    assert {b["group"] for b in benchmarks} == {"tutorial batch 1", "tutorial batch 4"}
    for bench in benchmarks:
        info = bench["extra_info"]
        assert set(info) == {"model", "backend", "batch_size", "recipe", "test_top1", "test_images",
                             "top1_agreement", "max_abs_logit_diff", "agreement_images", "threads",
                             "latency_ms", "images_per_s", "rounds", "speedup_over_eager"}
        assert info["test_images"] == 128
        assert info["agreement_images"] == 128
        assert info["top1_agreement"] == 1.0
        assert info["max_abs_logit_diff"] <= 1e-3
        assert 0.0 <= info["test_top1"] <= 1.0
        assert info["latency_ms"]["p50"] <= info["latency_ms"]["p90"] <= info["latency_ms"]["p99"]
        assert info["rounds"] == bench["stats"]["rounds"]
        assert info["images_per_s"] == pytest.approx(info["batch_size"] / bench["stats"]["mean"])
        assert info["latency_ms"]["mean"] == pytest.approx(bench["stats"]["mean"] * 1e3)
        assert info["threads"] == (1 if info["batch_size"] == 1 else 2)
        if info["backend"] == "eager":
            assert info["speedup_over_eager"] == 1.0


def test_second_session_reuses_cache(bench_dir: pytest.Pytester, tmp_path: Path, training_count: list[int]):
    args = ("--cifar-backends", "eager,torchscript", "--cifar-batch-sizes", "1")
    first = run_bench(bench_dir, tmp_path / "cache", *args)
    second = run_bench(bench_dir, tmp_path / "cache", *args)

    first.assert_outcomes(passed=2)
    second.assert_outcomes(passed=2)
    assert len(training_count) == 1
    reused = [line for line in summary(second) if ": reused in " in line]
    assert len(reused) == 4  # checkpoint, torchscript export, two top-1 files
    assert not [line for line in summary(second) if ": built in " in line]
    for line in reused:
        assert float(re.search(r"reused in ([\d.]+) s", line).group(1)) < 1.0, line


def test_retrain_rebuilds_every_entry(bench_dir: pytest.Pytester, tmp_path: Path, training_count: list[int]):
    args = ("--cifar-backends", "eager,torchscript", "--cifar-batch-sizes", "1")
    run_bench(bench_dir, tmp_path / "cache", *args).assert_outcomes(passed=2)

    result = run_bench(bench_dir, tmp_path / "cache", *args, "--cifar-retrain")

    result.assert_outcomes(passed=2)
    assert len(training_count) == 2
    assert len([line for line in summary(result) if ": built in " in line]) == 4
    assert not [line for line in summary(result) if ": reused in " in line]


def test_corrupt_checkpoint_rebuilt_with_one_warning(bench_dir: pytest.Pytester, tmp_path: Path,
                                                     training_count: list[int]):
    cache = tmp_path / "cache"
    run_bench(bench_dir, cache, "--cifar-backends", "eager", "--cifar-batch-sizes", "1").assert_outcomes(passed=1)
    (checkpoint,) = (cache / "checkpoints").glob("tutorial-*.pt")
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])  # a truncated write

    result = run_bench(bench_dir, cache, "--cifar-backends", "eager", "--cifar-batch-sizes", "1")

    result.assert_outcomes(passed=1)
    warnings = [line for line in result.outlines + result.errlines if "is corrupt" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"WARNING cache entry {checkpoint} is corrupt (cannot read checkpoint")
    assert len(training_count) == 2
    assert any(line.startswith("  checkpoint tutorial: built in ") for line in summary(result))


def test_concurrent_sessions_train_once(pytester: pytest.Pytester, tmp_path: Path):
    pytester.makeconftest(CONCURRENT_CONFTEST)
    pytester.makepyfile(test_checkpoint="def test_checkpoint(cifar_artifacts):\n"
                                        "    assert cifar_artifacts.checkpoint('tutorial').is_file()\n")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cifar-models", "tutorial",
               f"--cifar-cache-dir={tmp_path / 'cache'}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

    processes = [subprocess.Popen(command, cwd=pytester.path, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300)[0] for process in processes]

    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output
    assert len((pytester.path / "trained.log").read_text().splitlines()) == 1
    statuses = sorted(re.search(r"checkpoint tutorial: (built|reused)", output).group(1) for output in outputs)
    assert statuses == ["built", "reused"]


def perturb_logits(shift: str):
    """Return a ``load_backend`` replacement whose torchscript backend alters every logit row."""
    original = cifar.bench_artifacts.load_backend

    def load_backend(name, path, **kwargs):
        backend = original(name, path, **kwargs)
        if name != "torchscript":
            return backend
        predict = backend.predict
        if shift == "offset":
            backend.predict = lambda images: predict(images) + np.float32(0.01)
        else:  # reverse the classes, so the argmax moves almost everywhere
            backend.predict = lambda images: np.ascontiguousarray(predict(images)[:, ::-1])
        return backend

    return load_backend


@pytest.mark.parametrize(
    ("shift", "figures"),
    [
        ("offset", r"top-1 agreement 100\.00% \(minimum 99\.5%\), max \|logit diff\| 0\.01 \(maximum 0\.001\)"),
        ("reverse", r"top-1 agreement \d+\.\d\d% \(minimum 99\.5%\), max \|logit diff\| [\d.]+ \(maximum 0\.001\)"),
    ],
    ids=["offset", "reverse"],
)
def test_perturbed_backend_fails_benchmark(bench_dir: pytest.Pytester, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, shift: str, figures: str):
    monkeypatch.setattr(cifar.bench_artifacts, "load_backend", perturb_logits(shift))
    result = run_bench(bench_dir, tmp_path / "cache", "--cifar-backends", "eager,torchscript",
                       "--cifar-batch-sizes", "1")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines([
        r"_+ test_inference\[tutorial-batch1-torchscript\] _+$",
        r"torchscript disagrees with eager on 128 fixed test images: " + figures + "$",
    ])


def test_compare_without_saved_run_says_so_once(bench_dir: pytest.Pytester, tmp_path: Path):
    result = run_bench(bench_dir, tmp_path / "cache", "--cifar-backends", "eager", "--cifar-batch-sizes", "1",
                       f"--benchmark-storage=file://{tmp_path / 'runs'}", "--benchmark-compare",
                       "--benchmark-compare-fail=median:25%")
    output = result.outlines + result.errlines

    assert result.ret == pytest.ExitCode.OK
    notes = [line for line in output if "no saved benchmark run" in line]
    assert notes == [f"cifar-bench: no saved benchmark run in {tmp_path / 'runs'} to compare with; "
                     f"this run is not compared (save one with --benchmark-autosave)"]
    assert not [line for line in output if "Can't compare" in line or "Traceback" in line]


def test_compare_against_saved_run(bench_dir: pytest.Pytester, tmp_path: Path):
    args = ("--cifar-backends", "eager", "--cifar-batch-sizes", "1", f"--benchmark-storage=file://{tmp_path / 'runs'}")
    run_bench(bench_dir, tmp_path / "cache", *args, "--benchmark-autosave").assert_outcomes(passed=1)

    result = run_bench(bench_dir, tmp_path / "cache", *args, "--benchmark-compare",
                       "--benchmark-compare-fail=median:1000%")

    assert result.ret == pytest.ExitCode.OK
    result.stderr.fnmatch_lines(["Comparing against benchmarks from: *0001_*.json"])
    # pytest-benchmark sorts the two rows by their minimum, so their order varies.
    result.stdout.fnmatch_lines(["test_inference?tutorial-batch1-eager? (NOW) *"])
    result.stdout.fnmatch_lines(["test_inference?tutorial-batch1-eager? (0001_*"])
    assert not [line for line in result.outlines if "no saved benchmark run" in line]


def test_compare_fails_on_regression(bench_dir: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    args = ("--cifar-backends", "eager", "--cifar-batch-sizes", "1", f"--benchmark-storage=file://{tmp_path / 'runs'}")
    run_bench(bench_dir, tmp_path / "cache", *args, "--benchmark-autosave").assert_outcomes(passed=1)
    original = cifar.bench_artifacts.load_backend

    def slowed(name, path, **kwargs):
        backend = original(name, path, **kwargs)
        predict = backend.predict

        def slow_predict(images):
            time.sleep(0.25)  # far above any unslowed call, even on a loaded machine
            return predict(images)

        backend.predict = slow_predict
        return backend

    monkeypatch.setattr(cifar.bench_artifacts, "load_backend", slowed)
    result = run_bench(bench_dir, tmp_path / "cache", *args, "--benchmark-compare",
                       "--benchmark-compare-fail=min:100%")

    output = result.outlines + result.errlines
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert any("Performance has regressed" in line for line in output)
    regressions = [line for line in output if "has failed PercentageRegressionCheck" in line]
    assert len(regressions) == 1
    assert "test_inference[tutorial-batch1-eager] (0001_" in regressions[0]
    assert "Field 'min' has failed" in regressions[0]
    assert any("Torch Model Accuracy" in line for line in summary(result))
    assert not [line for line in output if "Traceback" in line]
    assert summary(result)[-1] == "cifar-bench: performance regressed against the saved run; exit status 1"
