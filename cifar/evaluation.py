"""Accuracy and speed of a backend: top-1 on the test set, batch-1 latency, batch throughput."""

from __future__ import annotations

import time

import numpy as np
import torch

from cifar.backends import Backend
from cifar.transforms import normalize

LATENCY_WARMUP_CALLS = 50
LATENCY_CALLS = 1000
THROUGHPUT_BATCH = 256
THROUGHPUT_MIN_SECONDS = 2.0
THROUGHPUT_MIN_CALLS = 5
# Batch-1 latency runs on one thread by default, because one small image is too little work to
# share, and each operator would have to wake sleeping threads. README.md shows the measured effect.
LATENCY_THREADS = 1


def top1(backend: Backend, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Return the fraction of uint8 ``images`` whose argmax logit equals the label."""
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = backend.predict(normalize(images[start : start + batch_size]).numpy())
        correct += int((logits.argmax(1) == labels[start : start + batch_size].numpy()).sum())
    return correct / len(images)


def latency_ms(backend: Backend, images: np.ndarray, calls: int = LATENCY_CALLS, warmup: int = LATENCY_WARMUP_CALLS) -> dict:
    """Time ``calls`` single-image predictions after ``warmup`` untimed ones.

    Images cycle through ``images`` (normalized float32), each pre-sliced so the timed region is
    the backend's ``predict`` alone. Returns mean, p50, p90 and p99 in milliseconds.
    """
    singles = [np.ascontiguousarray(images[i : i + 1]) for i in range(min(len(images), calls))]
    for i in range(warmup):
        backend.predict(singles[i % len(singles)])

    timings_ns = np.empty(calls, dtype=np.int64)
    for i in range(calls):
        image = singles[i % len(singles)]
        start = time.perf_counter_ns()
        backend.predict(image)
        timings_ns[i] = time.perf_counter_ns() - start

    timings = timings_ns / 1e6
    return {
        "mean": float(timings.mean()),
        "p50": float(np.percentile(timings, 50)),
        "p90": float(np.percentile(timings, 90)),
        "p99": float(np.percentile(timings, 99)),
        "calls": calls,
    }


def images_per_s(
    backend: Backend,
    images: np.ndarray,
    batch_size: int = THROUGHPUT_BATCH,
    min_seconds: float = THROUGHPUT_MIN_SECONDS,
) -> float:
    """Return images per second at ``batch_size``, over at least ``min_seconds`` after one warm-up call."""
    batch = np.ascontiguousarray(np.resize(images, (batch_size, *images.shape[1:])))
    backend.predict(batch)

    calls = 0
    start = time.perf_counter()
    while calls < THROUGHPUT_MIN_CALLS or time.perf_counter() - start < min_seconds:
        backend.predict(batch)
        calls += 1
    return calls * batch_size / (time.perf_counter() - start)


def evaluate_backend(
    backend: Backend,
    images: torch.Tensor,
    labels: torch.Tensor,
    latency_calls: int = LATENCY_CALLS,
    throughput_seconds: float = THROUGHPUT_MIN_SECONDS,
    latency_threads: int | None = LATENCY_THREADS,
) -> dict:
    """Measure one backend: ``top1`` (fraction), ``latency_ms`` at batch 1, ``images_per_s`` at batch 256.

    Latency runs on ``latency_threads`` threads, or on the current count for None. Accuracy and
    throughput run on the current count, torch's ``get_num_threads()``.
    """
    sample = normalize(images[:THROUGHPUT_BATCH]).numpy()
    with backend.using_threads(latency_threads):
        latency = latency_ms(backend, sample, calls=latency_calls)
    latency["threads"] = latency_threads or torch.get_num_threads()
    return {
        "top1": top1(backend, images, labels),
        "latency_ms": latency,
        "images_per_s": images_per_s(backend, sample, min_seconds=throughput_seconds),
        "throughput_batch": THROUGHPUT_BATCH,
    }


def add_speedups(results: dict[str, dict], reference: str = "eager") -> None:
    """Add ``latency_speedup`` and ``throughput_speedup`` over ``reference`` to each result in place."""
    base = results.get(reference)
    if not base or "top1" not in base:
        return
    for result in results.values():
        if "top1" not in result:
            continue
        result["latency_speedup"] = base["latency_ms"]["mean"] / result["latency_ms"]["mean"]
        result["throughput_speedup"] = result["images_per_s"] / base["images_per_s"]
