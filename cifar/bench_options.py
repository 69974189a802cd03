"""The ``--cifar-*`` pytest options: their parsers, help text and the checked settings they give."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from cifar.backends import BACKEND_FORMATS, DEFAULT_BACKENDS
from cifar.evaluation import LATENCY_THREADS
from cifar.models import MODELS

DEFAULT_BATCH_SIZES = (1, 256)


def _names(text: str) -> list[str]:
    names = [item.strip() for item in text.split(",") if item.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list, got an empty value")
    return names


def _batch_sizes(text: str) -> list[int]:
    sizes = []
    for item in _names(text):
        if not item.isdigit() or int(item) < 1:
            raise argparse.ArgumentTypeError(f"batch sizes must be whole numbers of at least 1, got {item!r}")
        sizes.append(int(item))
    return sizes


def _threads(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"thread count must be a whole number of at least 1, got {text!r}")
    return int(text)


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--cifar-*`` options under their own group in ``pytest --help``."""
    group = parser.getgroup("cifar", "cifar-bench")
    group.addoption("--cifar-data-dir", default=None, metavar="DIR",
                    help="folder containing cifar-10-batches-py/ (default: $CIFAR10_ROOT, then the cache "
                         "folder, where it is downloaded when missing)")
    group.addoption("--cifar-cache-dir", default=None, metavar="DIR",
                    help="cache for trained checkpoints, exports and test-set accuracy "
                         "(default: $CIFAR_BENCH_CACHE or ~/.cache/cifar-bench)")
    group.addoption("--cifar-retrain", action="store_true", default=False,
                    help="train, export and score again even when the cache has the entries")
    group.addoption("--cifar-full", action="store_true", default=False,
                    help="train with each model's full recipe instead of the quick one (a few epochs of it)")
    group.addoption("--cifar-models", type=_names, default=list(MODELS), metavar="NAMES",
                    help=f"comma-separated models to benchmark (default: {','.join(MODELS)})")
    group.addoption("--cifar-backends", type=_names, default=list(DEFAULT_BACKENDS), metavar="NAMES",
                    help=f"comma-separated backends to benchmark (default: {','.join(DEFAULT_BACKENDS)}; "
                         f"also: {','.join(b for b in BACKEND_FORMATS if b not in DEFAULT_BACKENDS)})")
    group.addoption("--cifar-batch-sizes", type=_batch_sizes, default=list(DEFAULT_BATCH_SIZES), metavar="SIZES",
                    help=f"comma-separated inference batch sizes in images "
                         f"(default: {','.join(map(str, DEFAULT_BATCH_SIZES))})")
    group.addoption("--cifar-threads", type=_threads, default=None, metavar="N",
                    help="CPU threads for torch and ONNX Runtime (default: torch's default)")
    group.addoption("--cifar-latency-threads", type=_threads, default=LATENCY_THREADS, metavar="N",
                    help=f"CPU threads for batch-1 benchmarks (default {LATENCY_THREADS}). "
                         f"Larger batches use --cifar-threads.")


@dataclass(frozen=True)
class BenchSettings:
    """The ``--cifar-*`` options of one pytest session, checked."""

    data_dir: str | None
    cache_dir: str | None
    retrain: bool
    full: bool
    models: tuple[str, ...]
    backends: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    threads: int | None
    latency_threads: int

    @classmethod
    def from_config(cls, config: pytest.Config) -> BenchSettings:
        """Read the options; raise pytest.UsageError naming any unknown model or backend."""
        option = config.getoption
        settings = cls(
            data_dir=option("cifar_data_dir"),
            cache_dir=option("cifar_cache_dir"),
            retrain=option("cifar_retrain"),
            full=option("cifar_full"),
            models=tuple(dict.fromkeys(option("cifar_models"))),
            backends=tuple(dict.fromkeys(option("cifar_backends"))),
            batch_sizes=tuple(dict.fromkeys(option("cifar_batch_sizes"))),
            threads=option("cifar_threads"),
            latency_threads=option("cifar_latency_threads"),
        )
        unknown_models = [name for name in settings.models if name not in MODELS]
        if unknown_models:
            raise pytest.UsageError(
                f"--cifar-models: unknown model(s) {', '.join(unknown_models)}; choose from: {', '.join(MODELS)}"
            )
        unknown_backends = [name for name in settings.backends if name not in BACKEND_FORMATS]
        if unknown_backends:
            raise pytest.UsageError(
                f"--cifar-backends: unknown backend(s) {', '.join(unknown_backends)}; "
                f"choose from: {', '.join(BACKEND_FORMATS)}"
            )
        return settings
