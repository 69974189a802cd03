"""Trained checkpoints, exported files and test-set accuracy for the benchmark suite, all cached.

Every artifact is a content-keyed cache entry (see ``cifar.cache``): a hit costs a file lock and a
load check, and a miss trains or exports under that entry's lock, so concurrent pytest processes
build it once. Each lookup is logged as a ``CacheEvent`` for the end-of-session summary.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar.backends import BACKEND_FORMATS, Backend, load_backend
from cifar.bench_parity import AGREEMENT_IMAGES, compare_logits, predict_in_batches
from cifar.cache import Cache, content_key
from cifar.checkpoint import library_versions
from cifar.data import Cifar10
from cifar.evaluation import top1
from cifar.pipeline import ensure_checkpoint, ensure_export, file_digest
from cifar.training import TrainConfig, default_config
from cifar.transforms import normalize

# Epochs of each model's recipe that the quick variant keeps. Only the epoch count changes, so
# the schedule still warms up and decays to zero. On an idle 2-core Xeon VM with 2 torch threads,
# the quick recipes trained in 24 s (tutorial) and 128 s (resnet) from a cold cache.
QUICK_EPOCHS = {"tutorial": 5, "resnet": 2}


def bench_recipe(model: str, full: bool) -> TrainConfig:
    """Return ``model``'s full training recipe, or its quick variant with ``QUICK_EPOCHS`` epochs.

    A model without an entry in ``QUICK_EPOCHS`` keeps an eighth of its recipe's epochs.
    """
    config = default_config(model)
    if full:
        return config
    return config.replace(epochs=QUICK_EPOCHS.get(model, max(1, config.epochs // 8)))


def recipe_label(config: TrainConfig) -> str:
    """Name ``config`` for reports: "full", "quick" (see ``bench_recipe``) or "custom"."""
    if config == bench_recipe(config.model, full=True):
        return "full"
    if config == bench_recipe(config.model, full=False):
        return "quick"
    return "custom"


@dataclass(frozen=True)
class CacheEvent:
    """One cache lookup: what was requested, whether it was built now, and how long it took."""

    artifact: str  # "checkpoint", "onnx export", "eager top-1", ...
    model: str
    path: Path
    built: bool
    seconds: float


class BenchArtifacts:
    """The session's checkpoints, exports, loaded backends and accuracy figures, each made once.

    ``building`` wraps every call that may train or export; the pytest plugin passes a context
    manager that lifts output capture, so training progress is visible.
    """

    def __init__(
        self,
        cache: Cache,
        data: Cifar10,
        recipes: dict[str, TrainConfig],
        retrain: bool = False,
        threads: int | None = None,
        building: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.cache = cache
        self.data = data
        self.recipes = recipes
        self.retrain = retrain
        self.threads = threads
        self.building = building
        self.events: list[CacheEvent] = []
        self._checkpoints: dict[str, Path] = {}
        self._sources: dict[tuple[str, str], Path] = {}
        self._backends: dict[tuple[str, str], Backend] = {}
        self._test_top1: dict[tuple[str, str], float] = {}
        self._agreement: dict[tuple[str, str], dict] = {}
        self._reference_logits: dict[str, np.ndarray] = {}
        self._agreement_images: np.ndarray | None = None

    def recipe(self, model: str) -> TrainConfig:
        if model not in self.recipes:
            raise ValueError(f"no training recipe for model {model!r}; recipes exist for: {', '.join(self.recipes)}")
        return self.recipes[model]

    def checkpoint(self, model: str) -> Path:
        """Return the cached checkpoint of ``model`` trained by its recipe, training it on a miss."""
        if model in self._checkpoints:
            return self._checkpoints[model]

        started = time.perf_counter()
        with self.building():
            path, built = ensure_checkpoint(self.cache, self.recipe(model), self.data, retrain=self.retrain)
        self._log("checkpoint", model, path, built, started)
        self._checkpoints[model] = path
        return path

    def source(self, model: str, backend: str) -> Path:
        """Return the file ``backend`` loads for ``model``: the checkpoint or its cached export."""
        if backend not in BACKEND_FORMATS:
            raise ValueError(f"unknown backend {backend!r}; choose from: {', '.join(BACKEND_FORMATS)}")
        fmt = BACKEND_FORMATS[backend]
        if fmt is None:
            return self.checkpoint(model)
        if (model, fmt) in self._sources:
            return self._sources[(model, fmt)]

        checkpoint = self.checkpoint(model)
        started = time.perf_counter()
        with self.building():
            path, built = ensure_export(self.cache, checkpoint, fmt, self.data, rebuild=self.retrain)
        self._log(f"{fmt} export", model, path, built, started)
        self._sources[(model, fmt)] = path
        return path

    def backend(self, model: str, backend: str) -> Backend:
        """Return ``backend`` loaded for ``model`` (an inference session, created once per session)."""
        key = (model, backend)
        if key not in self._backends:
            self._backends[key] = load_backend(backend, self.source(model, backend), model_name=model,
                                               threads=self.threads)
        return self._backends[key]

    def test_top1(self, model: str, backend: str) -> float:
        """Return ``backend``'s top-1 on the whole test set, cached as JSON beside its artifact.

        The file name carries a key of the backend, the artifact's bytes, the data and the library
        versions, so retrained weights, a new ONNX Runtime or another test set get their own figure.
        """
        key = (model, backend)
        if key in self._test_top1:
            return self._test_top1[key]

        source = self.source(model, backend)
        versions = library_versions()
        digest = content_key(backend, file_digest(source), self.data.fingerprint, versions)
        path = source.with_name(f"{source.name}.{backend}-{digest}.top1.json")

        def build(temporary: Path) -> None:
            figure = top1(self.backend(model, backend), self.data.test_images, self.data.test_labels)
            document = {"model": model, "backend": backend, "artifact": source.name, "top1": figure,
                        "test_images": len(self.data.test_images), "data_fingerprint": self.data.fingerprint,
                        "versions": versions}
            temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")

        started = time.perf_counter()
        with self.building():
            path, built = self.cache.get_or_build(path, build, check=self._read_top1)
        self._log(f"{backend} top-1", model, path, built, started)
        self._test_top1[key] = self._read_top1(path)
        return self._test_top1[key]

    def _read_top1(self, path: Path) -> float:
        document = json.loads(path.read_text())
        figure = document["top1"]
        if not isinstance(figure, float) or not 0.0 <= figure <= 1.0:
            raise ValueError(f"top1 is {figure!r}, expected a fraction between 0 and 1")
        if document.get("test_images") != len(self.data.test_images):
            raise ValueError(f"scored on {document.get('test_images')} images, the test set has {len(self.data.test_images)}")
        return figure

    def agreement_images(self) -> np.ndarray:
        """Return the fixed agreement set: the first ``AGREEMENT_IMAGES`` test images, normalized."""
        if self._agreement_images is None:
            self._agreement_images = normalize(self.data.test_images[:AGREEMENT_IMAGES]).numpy()
        return self._agreement_images

    def agreement(self, model: str, backend: str) -> dict:
        """Compare ``backend`` with eager on the agreement set (see ``cifar.bench_parity``), once per session."""
        key = (model, backend)
        if key in self._agreement:
            return self._agreement[key]

        images = self.agreement_images()
        if model not in self._reference_logits:
            self._reference_logits[model] = predict_in_batches(self.backend(model, "eager"), images)
        logits = predict_in_batches(self.backend(model, backend), images)
        self._agreement[key] = compare_logits(logits, self._reference_logits[model])
        return self._agreement[key]

    def batch(self, batch_size: int) -> np.ndarray:
        """Return ``batch_size`` normalized test images (N, 3, 32, 32), repeating the set if it is smaller."""
        count = min(batch_size, len(self.data.test_images))
        images = normalize(self.data.test_images[:count]).numpy()
        return np.ascontiguousarray(np.resize(images, (batch_size, *images.shape[1:])), dtype=np.float32)

    def _log(self, artifact: str, model: str, path: Path, built: bool, started: float) -> None:
        self.events.append(CacheEvent(artifact, model, path, built, time.perf_counter() - started))
