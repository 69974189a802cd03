from pathlib import Path

import numpy as np
import pytest

from cifar.bench_artifacts import CacheEvent
from cifar.bench_report import BenchResults, familiar_line, summary_lines, timing_figures, warm_up


def row(model: str, batch_size: int, backend: str, mean_ms: float | None, top1: float = 0.6) -> dict:
    info = {"model": model, "batch_size": batch_size, "backend": backend, "recipe": "quick", "threads": 2,
            "test_top1": top1}
    if mean_ms is not None:
        info["latency_ms"] = {"mean": mean_ms, "p50": mean_ms, "p90": mean_ms, "p99": 2 * mean_ms}
        info["images_per_s"] = batch_size * 1e3 / mean_ms
    return info


def test_timing_figures_from_rounds():
    rounds = [0.001] * 98 + [0.002, 0.010]  # seconds per call

    figures = timing_figures(rounds, batch_size=4)

    assert figures["latency_ms"]["mean"] == pytest.approx(1.10)
    assert figures["latency_ms"]["p50"] == pytest.approx(1.0)
    assert figures["latency_ms"]["p90"] == pytest.approx(1.0)
    assert figures["latency_ms"]["p99"] == pytest.approx(np.percentile(np.array(rounds) * 1e3, 99))
    assert figures["images_per_s"] == pytest.approx(4 / 0.00110)
    assert figures["rounds"] == 100


def test_warm_up_calls_at_least_three_times():
    calls = []

    class Counting:
        def predict(self, images):
            calls.append(images)

    made = warm_up(Counting(), np.zeros((1, 3, 32, 32), np.float32))

    assert made == len(calls) >= 3


def test_speedups_pair_eager_by_model_and_batch():
    results = BenchResults()
    for info in (row("tutorial", 1, "eager", 0.4), row("tutorial", 1, "onnxruntime", 0.1),
                 row("tutorial", 256, "onnxruntime", 5.0), row("resnet", 1, "eager", 2.0),
                 row("resnet", 1, "torchscript", None)):
        results.add(info)

    results.add_speedups()

    speedups = [info["speedup_over_eager"] for info in results.rows]
    assert speedups == [1.0, pytest.approx(4.0), None, 1.0, None]


def test_familiar_line_format():
    line = familiar_line(row("tutorial", 1, "onnxruntime", 0.0712, top1=0.61234))

    assert line == "ONNX Model Accuracy: 61.23%, Mean Inference Time: 0.07 ms"


def test_summary_tables_familiar_lines_and_cache():
    results = BenchResults()
    for info in (row("tutorial", 1, "eager", 0.4), row("tutorial", 1, "torchscript", 0.2),
                 row("tutorial", 64, "eager", 3.0)):
        results.add(info)
    results.add_speedups()
    events = [CacheEvent("checkpoint", "tutorial", Path("/cache/t.pt"), built=False, seconds=0.05)]

    lines = summary_lines(results, events, ["cache entry /cache/x.pt is corrupt (truncated); rebuilding it"])

    assert "tutorial, batch 1 (quick recipe, 2 threads)" in lines
    assert "tutorial, batch 64 (quick recipe, 2 threads)" in lines
    torchscript = next(line for line in lines if line.startswith("torchscript"))
    assert torchscript.split() == ["torchscript", "60.00%", "0.200", "0.400", "5,000", "2.00x"]
    familiar = [line for line in lines if "Model Accuracy" in line]
    assert familiar == ["Torch Model Accuracy: 60.00%, Mean Inference Time: 0.40 ms",
                        "TorchScript Model Accuracy: 60.00%, Mean Inference Time: 0.20 ms"]
    assert "  checkpoint tutorial: reused in 0.05 s (/cache/t.pt)" in lines
    assert lines[-1] == "WARNING cache entry /cache/x.pt is corrupt (truncated); rebuilding it"


def test_summary_marks_untimed_rows():
    results = BenchResults()
    results.add(row("resnet", 1, "eager", None))
    results.add_speedups()

    lines = summary_lines(results, [], [])

    eager = next(line for line in lines if line.startswith("eager"))
    assert eager.split() == ["eager", "60.00%", "-", "-", "-", "-"]
    assert not [line for line in lines if "Model Accuracy" in line]
