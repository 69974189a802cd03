"""Figures of each inference benchmark and the end-of-session summary that prints them.

Each benchmark's figures live in its pytest-benchmark ``extra_info`` dict, so the saved JSON and
the terminal summary read the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from cifar.backends import DISPLAY_NAMES, Backend
from cifar.bench_artifacts import CacheEvent
from cifar.report import format_table, plural

# Untimed calls before the rounds, so one-off work (memory allocation, TorchScript's profiling
# runs, ONNX Runtime's first-run setup) stays out of the figures.
WARMUP_MIN_CALLS = 3
WARMUP_MIN_SECONDS = 0.5


def warm_up(backend: Backend, images: np.ndarray) -> int:
    """Call ``backend.predict(images)`` at least ``WARMUP_MIN_CALLS`` times and for ``WARMUP_MIN_SECONDS``.

    Returns the number of calls made.
    """
    calls = 0
    started = time.perf_counter()
    while calls < WARMUP_MIN_CALLS or time.perf_counter() - started < WARMUP_MIN_SECONDS:
        backend.predict(images)
        calls += 1
    return calls


def timing_figures(round_seconds: Sequence[float], batch_size: int) -> dict:
    """Turn per-call round times (seconds) into latency percentiles (ms) and images per second.

    pytest-benchmark stores each round's time divided by its iterations. A round has one iteration
    when a call takes longer than the calibration target (5 us by default), so each value is one call.
    """
    times_ms = np.asarray(round_seconds, dtype=np.float64) * 1e3
    mean_ms = float(times_ms.mean())
    return {
        "latency_ms": {
            "mean": mean_ms,
            "p50": float(np.percentile(times_ms, 50)),
            "p90": float(np.percentile(times_ms, 90)),
            "p99": float(np.percentile(times_ms, 99)),
        },
        "images_per_s": batch_size * 1e3 / mean_ms,
        "rounds": len(times_ms),
    }


class BenchResults:
    """Every benchmark's ``extra_info`` of one session, in the order they ran."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, extra_info: dict) -> None:
        """Keep ``extra_info`` (the benchmark's own dict, so later updates reach the saved JSON)."""
        self.rows.append(extra_info)

    def add_speedups(self) -> None:
        """Set ``speedup_over_eager`` on each timed row: eager's mean latency over the row's.

        Eager must have run for the same model and batch size in this session; otherwise the
        speedup is None.
        """
        eager_ms = {
            (row["model"], row["batch_size"]): row["latency_ms"]["mean"]
            for row in self.rows
            if row["backend"] == "eager" and "latency_ms" in row
        }
        for row in self.rows:
            base = eager_ms.get((row["model"], row["batch_size"]))
            row["speedup_over_eager"] = base / row["latency_ms"]["mean"] if base and "latency_ms" in row else None

    def groups(self) -> dict[tuple[str, int], list[dict]]:
        grouped: dict[tuple[str, int], list[dict]] = {}
        for row in self.rows:
            grouped.setdefault((row["model"], row["batch_size"]), []).append(row)
        return grouped


def _figure(value: float | None, template: str) -> str:
    return "-" if value is None else template.format(value)


def group_table(rows: list[dict]) -> str:
    """Tabulate one model and batch size: accuracy, mean and p99 latency, images/s, speedup."""
    table = []
    for row in rows:
        latency = row.get("latency_ms", {})
        table.append([
            row["backend"],
            _figure(row.get("test_top1"), "{:.2%}"),
            _figure(latency.get("mean"), "{:.3f}"),
            _figure(latency.get("p99"), "{:.3f}"),
            _figure(row.get("images_per_s"), "{:,.0f}"),
            _figure(row.get("speedup_over_eager"), "{:.2f}x"),
        ])
    return format_table(["backend", "top-1", "mean ms", "p99 ms", "images/s", "speedup vs eager"], table)


def familiar_line(row: dict) -> str:
    """Format ``row`` as ``<Backend> Model Accuracy: X%, Mean Inference Time: Y ms``."""
    name = DISPLAY_NAMES.get(row["backend"], row["backend"])
    return (f"{name} Model Accuracy: {row['test_top1']:.2%}, "
            f"Mean Inference Time: {row['latency_ms']['mean']:.2f} ms")


def summary_lines(results: BenchResults, events: list[CacheEvent], warnings: list[str]) -> list[str]:
    """Build the end-of-session summary: one table per model and batch size, then the familiar
    batch-1 lines per model, then what the cache reused or built, then warnings."""
    lines: list[str] = []
    groups = results.groups()

    for (model, batch_size), rows in groups.items():
        first = rows[0]
        threads = plural(first["threads"], "thread")
        lines += ["", f"{model}, batch {batch_size} ({first['recipe']} recipe, {threads})"]
        lines += group_table(rows).splitlines()

    for (model, batch_size), rows in groups.items():
        timed = [row for row in rows if "latency_ms" in row]
        if batch_size == 1 and timed:
            lines += ["", f"{model}, batch 1:"]
            lines += [familiar_line(row) for row in timed]

    if events:
        lines += ["", "cache:"]
        lines += [f"  {event.artifact} {event.model}: {'built' if event.built else 'reused'} in "
                  f"{event.seconds:.2f} s ({event.path})" for event in events]

    lines += [f"WARNING {message}" for message in warnings]
    return lines
