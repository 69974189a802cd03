"""Plain-text tables and the results document that the CLI prints and writes."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from cifar.cache import atomic_path


def machine_info() -> dict:
    """Describe the CPU the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()}


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Right-align every column but the first, with widths from the longest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(row[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def backend_table(results: dict) -> str:
    headers = ["backend", "top-1", "mean ms", "p50 ms", "p90 ms", "p99 ms", "images/s @256",
               "latency vs eager", "throughput vs eager"]
    rows = []
    for name, result in results["backends"].items():
        if "top1" not in result:
            rows.append([name, "unavailable", *[""] * 7])
            continue
        latency = result["latency_ms"]
        rows.append([
            name,
            f"{result['top1']:.2%}",
            f"{latency['mean']:.3f}",
            f"{latency['p50']:.3f}",
            f"{latency['p90']:.3f}",
            f"{latency['p99']:.3f}",
            f"{result['images_per_s']:,.0f}",
            f"{result.get('latency_speedup', float('nan')):.2f}x",
            f"{result.get('throughput_speedup', float('nan')):.2f}x",
        ])
    return format_table(headers, rows)


def familiar_lines(results: dict) -> str:
    """Format one line per backend in the form of the original study, e.g. ``ONNX Model Accuracy: ...``."""
    lines = []
    for result in results["backends"].values():
        if "top1" in result:
            lines.append(
                f"{result['display_name']} Model Accuracy: {result['top1']:.2%}, "
                f"Mean Inference Time: {result['latency_ms']['mean']:.2f} ms"
            )
    return "\n".join(lines)


def history_table(history: list[dict]) -> str:
    rows = [[str(row["epoch"]), f"{row['train_loss']:.4f}", f"{row['test_loss']:.4f}",
             f"{row['test_top1']:.2%}", f"{row['lr']:.2e}", f"{row['seconds']:.1f}"] for row in history]
    return format_table(["epoch", "train loss", "test loss", "test top-1", "lr", "seconds"], rows)


def write_json(path: str | os.PathLike, document: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(document, indent=2) + "\n")
