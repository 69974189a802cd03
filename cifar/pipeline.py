"""The main job's steps, each cached by content: train, export, evaluate every backend."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

from cifar.backends import BACKEND_FORMATS, DISPLAY_NAMES, load_backend
from cifar.cache import Cache, content_key
from cifar.checkpoint import library_versions, load_model, save_checkpoint
from cifar.data import Cifar10
from cifar.errors import BackendUnavailableError
from cifar.evaluation import LATENCY_THREADS, add_speedups, evaluate_backend
from cifar.export import FORMATS, OPSET, export
from cifar.models import source_digest
from cifar.training import TrainConfig, train
from cifar.transforms import normalize

log = logging.getLogger(__name__)

PARITY_IMAGES = 64


def checkpoint_key(config: TrainConfig, data_fingerprint: str) -> str:
    """Key a trained checkpoint by model, training config, data and the model definition's source."""
    return content_key(config.model, config.as_dict(), data_fingerprint, source_digest(config.model))


def ensure_checkpoint(
    cache: Cache, config: TrainConfig, data: Cifar10, retrain: bool = False, progress: bool = True
) -> tuple[Path, bool]:
    """Return the cached checkpoint for ``config`` on ``data``, training it on a miss."""
    path = cache.path("checkpoints", f"{config.model}-{checkpoint_key(config, data.fingerprint)}.pt")
    if retrain and path.is_file():
        path.unlink()

    def build(temporary: Path) -> None:
        model, history = train(config, data, progress=progress)
        final = history[-1]
        save_checkpoint(
            temporary,
            model,
            config.model,
            config=config.as_dict(),
            history=history,
            metrics={"test_top1": final["test_top1"], "test_loss": final["test_loss"],
                     "train_seconds": sum(row["seconds"] for row in history)},
            data_fingerprint=data.fingerprint,
        )

    return cache.get_or_build(path, build, check=lambda p: load_model(p, config.model))


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:20]


def ensure_export(
    cache: Cache, checkpoint: Path, fmt: str, data: Cifar10, rebuild: bool = False
) -> tuple[Path, bool]:
    """Return the cached export of ``checkpoint`` in ``fmt``, exporting it on a miss or when ``rebuild``."""
    key = content_key(file_digest(checkpoint), fmt, OPSET, torch.__version__)
    path = cache.path("exports", f"{checkpoint.stem.split('-')[0]}-{key}{FORMATS[fmt]}")
    backend = next(name for name, f in BACKEND_FORMATS.items() if f == fmt)
    if rebuild and path.is_file():
        path.unlink()

    def build(temporary: Path) -> None:
        model, _ = load_model(checkpoint)
        parity_images = normalize(data.test_images[:PARITY_IMAGES]).numpy()
        parity = export(model, fmt, temporary, parity_images)
        log.info("exported %s to %s (max |logit diff| vs eager %.2g)", fmt, path, parity["max_abs_diff"])

    return cache.get_or_build(path, build, check=lambda p: load_backend(backend, p))


def backend_source(cache: Cache, name: str, checkpoint: Path, data: Cifar10) -> Path:
    """Return the file backend ``name`` loads: the checkpoint, or its (cached) export."""
    fmt = BACKEND_FORMATS[name]
    return checkpoint if fmt is None else ensure_export(cache, checkpoint, fmt, data)[0]


def evaluate_checkpoint(
    cache: Cache,
    checkpoint: Path,
    backends: list[str],
    data: Cifar10,
    latency_calls: int | None = None,
    throughput_seconds: float | None = None,
    latency_threads: int | None = None,
) -> dict:
    """Evaluate ``checkpoint`` on every backend; return the results document (see README)."""
    model, payload = load_model(checkpoint)
    options = {k: v for k, v in (("latency_calls", latency_calls), ("throughput_seconds", throughput_seconds),
                                 ("latency_threads", latency_threads)) if v}
    results: dict[str, dict] = {}

    for name in backends:
        try:
            backend = load_backend(name, backend_source(cache, name, checkpoint, data))
        except BackendUnavailableError as error:
            log.warning("%s backend unavailable: %s", name, error)
            results[name] = {"unavailable": str(error)}
            continue
        log.info("evaluating %s", name)
        results[name] = {"display_name": DISPLAY_NAMES.get(name, name),
                         **evaluate_backend(backend, data.test_images, data.test_labels, **options)}

    add_speedups(results)
    return {
        "model": payload["model"],
        "checkpoint": str(checkpoint),
        "training": {"config": payload.get("config"), "metrics": payload.get("metrics"),
                     "history": payload.get("history")},
        "data": {"source": data.source, "fingerprint": data.fingerprint, "test_images": len(data.test_images)},
        "threads": torch.get_num_threads(),
        "latency_threads": latency_threads or LATENCY_THREADS,
        "versions": library_versions(),
        "backends": results,
    }
