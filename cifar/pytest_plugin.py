"""pytest options, fixtures and hooks for the benchmark suite, all in the ``--cifar-*`` namespace.

The fixtures give each benchmark a trained checkpoint per model and an exported file per model and
format, from the cache (``cifar.bench_artifacts``). The hooks parametrize ``cifar_model`` x
``cifar_batch_size`` x ``cifar_backend`` from the options, add each backend's speedup over eager
before pytest-benchmark saves the run, and print the summary (``cifar.bench_report``) at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import warnings
from dataclasses import dataclass

import pytest

from cifar.backends import BACKEND_FORMATS, DEFAULT_BACKENDS
from cifar.models import MODELS

DEFAULT_BATCH_SIZES = (1, 256)


def _names(text: str) -> list[str]:
    names = [item.strip() for item in text.split(",") if item.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names, got an empty value")
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


def pytest_addoption(parser: pytest.Parser) -> None:
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


class WarningCollector(logging.Handler):
    """Keep the message of every warning the ``cifar`` loggers emit, for the summary."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


settings_key = pytest.StashKey[BenchSettings]()
results_key = pytest.StashKey["BenchResults"]()
artifacts_key = pytest.StashKey["BenchArtifacts"]()
warnings_key = pytest.StashKey[WarningCollector]()


def pytest_configure(config: pytest.Config) -> None:
    from cifar.bench_report import BenchResults

    settings = BenchSettings.from_config(config)
    config.stash[settings_key] = settings
    config.stash[results_key] = BenchResults()
    if settings.threads:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(settings.threads)
        config.add_cleanup(lambda: torch.set_num_threads(previous))

    collector = WarningCollector()
    config.stash[warnings_key] = collector
    logging.getLogger("cifar").addHandler(collector)
    config.add_cleanup(lambda: logging.getLogger("cifar").removeHandler(collector))

    if config.getoption("benchmark_compare", None) is True:
        _hide_missing_baseline_warning(config)


def _hide_missing_baseline_warning(config: pytest.Config) -> None:
    """Silence pytest-benchmark's two-line warning about a missing saved run (pytest-benchmark 5.x).

    It is emitted while pytest-benchmark configures itself, after this hook; ``pytest_sessionstart``
    replaces it with one line. The filter is removed when the session ends.
    """
    try:
        from pytest_benchmark.logger import PytestBenchmarkWarning
    except ImportError:
        return
    filters = warnings.catch_warnings()
    filters.__enter__()
    config.add_cleanup(lambda: filters.__exit__(None, None, None))
    warnings.filterwarnings("ignore", message=r"Can't compare\. No benchmark files", category=PytestBenchmarkWarning)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Turn ``--benchmark-compare`` with no saved run yet into one line instead of a crash.

    pytest-benchmark (5.x) otherwise raises a UsageError with a traceback at the end of the
    session when ``--benchmark-compare-fail`` is also given.
    """
    benchmark_session = getattr(session.config, "_benchmarksession", None)
    if benchmark_session is None or benchmark_session.compare is not True or benchmark_session.compared_mapping:
        return
    benchmark_session.compare_fail = None
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = (f"cifar-bench: no saved benchmark run in {benchmark_session.storage} to compare with; "
               f"this run is not compared (save one with --benchmark-autosave)")
    if reporter is not None:
        reporter.write_line(message, yellow=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``cifar_model``, ``cifar_batch_size`` and ``cifar_backend`` from the options.

    Models vary slowest and backends fastest, so the tests of one model and batch size run together.
    """
    settings = metafunc.config.stash[settings_key]
    explicit = _parametrized_names(metafunc)
    axes = (
        ("cifar_model", list(settings.models), None),
        ("cifar_batch_size", list(settings.batch_sizes), lambda size: f"batch{size}"),
        ("cifar_backend", list(settings.backends), None),
    )
    for name, values, ids in axes:
        if name in metafunc.fixturenames and name not in explicit:
            metafunc.parametrize(name, values, ids=ids)


def _parametrized_names(metafunc: pytest.Metafunc) -> set[str]:
    """Return the argument names that the test's own ``parametrize`` marks already cover."""
    names: set[str] = set()
    for marker in metafunc.definition.iter_markers("parametrize"):
        argnames = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = argnames.split(",")
        names.update(name.strip() for name in argnames)
    return names


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    # Runs before pytest-benchmark's own sessionfinish, which saves the run, so the saved JSON
    # carries the speedups too.
    session.config.stash[results_key].add_speedups()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config):
    # Printed after pytest-benchmark's tables, and also when pytest-benchmark raises because
    # of a regression.
    try:
        return (yield)
    finally:
        _write_summary(terminalreporter, config)


def _write_summary(terminalreporter, config: pytest.Config) -> None:
    from cifar.bench_report import summary_lines

    results = config.stash[results_key]
    artifacts = config.stash.get(artifacts_key, None)
    if not results.rows and artifacts is None:
        return
    events = artifacts.events if artifacts is not None else []
    terminalreporter.section("cifar-bench summary", sep="-")
    for line in summary_lines(results, events, config.stash[warnings_key].messages):
        terminalreporter.write_line(line)


@contextlib.contextmanager
def _uncaptured(config: pytest.Config):
    """Lift pytest's output capture, so training progress reaches the terminal."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield


@pytest.fixture(scope="session")
def cifar_settings(request: pytest.FixtureRequest) -> BenchSettings:
    """The checked ``--cifar-*`` options."""
    return request.config.stash[settings_key]


@pytest.fixture(scope="session")
def cifar_data(cifar_settings: BenchSettings):
    """The real CIFAR-10, found as ``cifar`` finds it (downloaded when missing)."""
    from cifar.data import load_cifar10, locate_or_download

    return load_cifar10(locate_or_download(cifar_settings.data_dir))


@pytest.fixture(scope="session")
def cifar_recipes(cifar_settings: BenchSettings) -> dict:
    """The training config per selected model: the quick recipe, or the full one with ``--cifar-full``."""
    from cifar.bench_artifacts import bench_recipe

    return {model: bench_recipe(model, cifar_settings.full) for model in cifar_settings.models}


@pytest.fixture(scope="session")
def cifar_artifacts(request: pytest.FixtureRequest, cifar_settings: BenchSettings, cifar_data, cifar_recipes):
    """Checkpoints, exports, loaded backends and accuracy figures, cached on disk and per session."""
    from cifar.bench_artifacts import BenchArtifacts
    from cifar.cache import Cache

    artifacts = BenchArtifacts(
        Cache(cifar_settings.cache_dir),
        cifar_data,
        cifar_recipes,
        retrain=cifar_settings.retrain,
        threads=cifar_settings.threads,
        building=lambda: _uncaptured(request.config),
    )
    request.config.stash[artifacts_key] = artifacts
    return artifacts


@pytest.fixture(scope="session")
def cifar_results(request: pytest.FixtureRequest):
    """The figures of every benchmark in this session, for speedups and the summary."""
    return request.config.stash[results_key]
