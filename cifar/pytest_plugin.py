"""pytest options and fixtures for the benchmark suite, all in the ``--cifar-*`` namespace."""

from __future__ import annotations

import pytest

from cifar.backends import DEFAULT_BACKENDS
from cifar.models import MODELS


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cifar", "cifar-bench")
    group.addoption("--cifar-data-dir", default=None,
                    help="folder containing cifar-10-batches-py/ (default: $CIFAR10_ROOT, then the cache folder)")
    group.addoption("--cifar-cache-dir", default=None,
                    help="cache for trained checkpoints and exports (default: $CIFAR_BENCH_CACHE or ~/.cache/cifar-bench)")
    group.addoption("--cifar-retrain", action="store_true", default=False,
                    help="train and export again even when the cache has the entry")
    group.addoption("--cifar-full", action="store_true", default=False,
                    help="train with each model's full recipe instead of the quick one")
    group.addoption("--cifar-models", type=_csv, default=list(MODELS),
                    help=f"comma-separated models to benchmark (default: {','.join(MODELS)})")
    group.addoption("--cifar-backends", type=_csv, default=list(DEFAULT_BACKENDS),
                    help=f"comma-separated backends to benchmark (default: {','.join(DEFAULT_BACKENDS)})")
    group.addoption("--cifar-batch-sizes", type=lambda text: [int(x) for x in _csv(text)], default=[1, 256],
                    help="comma-separated batch sizes to benchmark (default: 1,256)")
    group.addoption("--cifar-threads", type=int, default=None,
                    help="CPU threads for torch and ONNX Runtime (default: torch's default)")


@pytest.fixture(scope="session")
def cifar_data(request: pytest.FixtureRequest):
    """The real CIFAR-10, found as ``cifar`` finds it (downloaded when missing)."""
    from cifar.data import load_cifar10, locate_or_download

    return load_cifar10(locate_or_download(request.config.getoption("--cifar-data-dir")))
