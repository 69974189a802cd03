"""Inference speed of every model x batch size x backend, gated on agreement with eager PyTorch.

Run with ``pytest benchmarks``. The ``--cifar-*`` options (``pytest --help``) choose models,
backends, batch sizes and threads; docs/benchmarks.md explains every figure in ``extra_info``.
"""

from __future__ import annotations

import pytest
import torch

from cifar.bench_artifacts import recipe_label
from cifar.bench_parity import check_agreement
from cifar.bench_report import timing_figures, warm_up
from cifar.errors import BackendUnavailableError, ParityError


# A backend that fails the agreement check is never timed, so pytest-benchmark would warn that
# its fixture went unused.
@pytest.mark.filterwarnings("ignore:Benchmark fixture was not used")
def test_inference(benchmark, cifar_settings, cifar_artifacts, cifar_results, cifar_model, cifar_backend,
                   cifar_batch_size):
    # Loading creates the inference session. It and the accuracy figures stay outside the rounds.
    disagreement = None
    try:
        backend = cifar_artifacts.backend(cifar_model, cifar_backend)
        agreement = cifar_artifacts.agreement(cifar_model, cifar_backend)
        check_agreement(agreement, cifar_backend)
    except BackendUnavailableError as error:
        pytest.skip(f"{cifar_backend} is unavailable: {error}")
    except ParityError as error:
        disagreement = str(error)
    if disagreement:
        pytest.fail(disagreement, pytrace=False)

    info = benchmark.extra_info
    info.update({
        "model": cifar_model,
        "backend": cifar_backend,
        "batch_size": cifar_batch_size,
        "recipe": recipe_label(cifar_artifacts.recipe(cifar_model)),
        "test_top1": cifar_artifacts.test_top1(cifar_model, cifar_backend),
        "test_images": len(cifar_artifacts.data.test_images),
        "top1_agreement": agreement["top1_agreement"],
        "max_abs_logit_diff": agreement["max_abs_logit_diff"],
        "agreement_images": agreement["images"],
    })
    cifar_results.add(info)

    # Batch 1 runs on --cifar-latency-threads, like `cifar evaluate`. Other sizes use --cifar-threads.
    with backend.using_threads(cifar_settings.latency_threads if cifar_batch_size == 1 else None):
        info["threads"] = getattr(backend, "threads", None) or torch.get_num_threads()
        images = cifar_artifacts.batch(cifar_batch_size)
        warm_up(backend, images)
        benchmark.group = f"{cifar_model} batch {cifar_batch_size}"
        benchmark(backend.predict, images)

    # pytest-benchmark keeps no stats when it is disabled (--benchmark-disable, xdist).
    if benchmark.stats is not None:
        info.update(timing_figures(benchmark.stats.stats.data, cifar_batch_size))
