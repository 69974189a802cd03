import numpy as np
import pytest
import torch

from cifar.backends import Backend
from cifar.evaluation import add_speedups, evaluate_backend, images_per_s, latency_ms, top1


class LabelOracle(Backend):
    """Predicts the class stored in pixel (0, 0, 0) of each image, for exact accuracy checks."""

    name = "oracle"

    def __init__(self):
        self.calls = []

    def _run(self, images):
        self.calls.append(len(images))
        logits = np.zeros((len(images), 10), dtype=np.float32)
        logits[np.arange(len(images)), np.clip(np.round(images[:, 0, 0, 0]).astype(int), 0, 9)] = 1
        return logits


def test_top1_counts_exactly(monkeypatch):
    monkeypatch.setattr("cifar.evaluation.normalize", lambda images: images.float())
    labels = torch.arange(2500) % 10
    images = torch.zeros(2500, 3, 32, 32, dtype=torch.uint8)
    images[:, 0, 0, 0] = labels.to(torch.uint8)
    images[:250, 0, 0, 0] = (labels[:250] + 1) % 10  # the first 250 are wrong
    oracle = LabelOracle()
    assert top1(oracle, images, labels) == pytest.approx(0.9)
    assert oracle.calls == [1000, 1000, 500]


def test_latency_statistics_ordered():
    stats = latency_ms(LabelOracle(), np.zeros((8, 3, 32, 32), np.float32), calls=200, warmup=5)
    assert set(stats) == {"mean", "p50", "p90", "p99", "calls"}
    assert 0 < stats["p50"] <= stats["p90"] <= stats["p99"]
    assert stats["calls"] == 200


def test_throughput_uses_requested_batch():
    oracle = LabelOracle()
    rate = images_per_s(oracle, np.zeros((8, 3, 32, 32), np.float32), batch_size=32, min_seconds=0.05)
    assert rate > 0
    assert set(oracle.calls) == {32}
    assert len(oracle.calls) >= 6  # one warm-up and at least five timed calls


def test_evaluate_backend_fields(synthetic):
    result = evaluate_backend(LabelOracle(), synthetic.test_images, synthetic.test_labels,
                              latency_calls=20, throughput_seconds=0.05)
    assert set(result) == {"top1", "latency_ms", "images_per_s", "throughput_batch"}
    assert 0 <= result["top1"] <= 1
    assert result["throughput_batch"] == 256
    assert result["latency_ms"]["threads"] == 1


def test_latency_runs_on_its_own_thread_count(synthetic):
    class ThreadRecorder(LabelOracle):
        """Also records the torch thread count seen by each batch size."""

        def __init__(self):
            super().__init__()
            self.threads_by_batch = {}

        def _run(self, images):
            self.threads_by_batch.setdefault(len(images), set()).add(torch.get_num_threads())
            return super()._run(images)

    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        backend = ThreadRecorder()
        result = evaluate_backend(backend, synthetic.test_images, synthetic.test_labels,
                                  latency_calls=20, throughput_seconds=0.05, latency_threads=1)
        assert backend.threads_by_batch[1] == {1}
        assert backend.threads_by_batch[256] == {2}
        assert result["latency_ms"]["threads"] == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_speedups_relative_to_eager():
    results = {
        "eager": {"top1": 0.5, "latency_ms": {"mean": 1.0}, "images_per_s": 100.0},
        "onnxruntime": {"top1": 0.5, "latency_ms": {"mean": 0.25}, "images_per_s": 300.0},
        "torchscript": {"unavailable": "no torch.jit"},
    }
    add_speedups(results)
    assert results["eager"]["latency_speedup"] == 1.0
    assert results["onnxruntime"]["latency_speedup"] == 4.0
    assert results["onnxruntime"]["throughput_speedup"] == 3.0
    assert "latency_speedup" not in results["torchscript"]
