"""pytest fixtures and hooks for the benchmark suite.

The ``--cifar-*`` options are defined in ``cifar.bench_options``. The fixtures give each benchmark a trained checkpoint per model and an exported file per model and
format, from the cache (``cifar.bench_artifacts``). The hooks parametrize ``cifar_model`` x
``cifar_batch_size`` x ``cifar_backend`` from the options, add each backend's speedup over eager
before pytest-benchmark saves the run, and print the summary (``cifar.bench_report``) at the end.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

import pytest

from cifar.bench_options import BenchSettings, add_options


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


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
session_key = pytest.StashKey[pytest.Session]()
regressed_key = pytest.StashKey[bool]()


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
    session.config.stash[session_key] = session
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
    # The summary follows pytest-benchmark's tables, and is printed on a regression too.
    try:
        return (yield)
    except Exception as error:
        # pytest-benchmark (5.x) reports a regression under --benchmark-compare-fail by printing
        # it and then raising PerformanceRegression, which pytest shows as a long traceback.
        # Exit status 1 carries the same verdict without the traceback.
        if type(error).__name__ != "PerformanceRegression" or session_key not in config.stash:
            raise
        config.stash[session_key].exitstatus = pytest.ExitCode.TESTS_FAILED
        config.stash[regressed_key] = True
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
    if config.stash.get(regressed_key, False):
        terminalreporter.write_line("cifar-bench: performance regressed against the saved run; exit status 1", red=True)


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
