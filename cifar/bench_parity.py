"""Agreement of a backend with eager PyTorch on a fixed set of test images.

The benchmark suite runs this check before timing a backend, so a fast backend that computes
something else fails its benchmark instead of publishing a speedup.
"""

from __future__ import annotations

import numpy as np

from cifar.backends import Backend
from cifar.errors import ParityError

# The first AGREEMENT_IMAGES test images, so every run and every backend compares on the same set.
AGREEMENT_IMAGES = 1000
MIN_TOP1_AGREEMENT = 0.995
MAX_ABS_LOGIT_DIFF = 1e-3
# Batch size for computing the logits. It bounds activation memory and does not change the figures.
LOGITS_BATCH = 250


def predict_in_batches(backend: Backend, images: np.ndarray, batch_size: int = LOGITS_BATCH) -> np.ndarray:
    """Return ``backend``'s logits (N, 10) for normalized float32 ``images`` (N, 3, 32, 32)."""
    parts = [backend.predict(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
    return np.concatenate(parts)


def compare_logits(logits: np.ndarray, reference: np.ndarray) -> dict:
    """Return ``top1_agreement`` (fraction of equal argmax), ``max_abs_logit_diff`` and ``images``."""
    if logits.shape != reference.shape:
        raise ParityError(f"backend returned logits shaped {logits.shape}, eager {reference.shape}")
    return {
        "top1_agreement": float((logits.argmax(1) == reference.argmax(1)).mean()),
        "max_abs_logit_diff": float(np.abs(logits - reference).max()),
        "images": len(logits),
    }


def check_agreement(figures: dict, backend: str) -> None:
    """Raise ParityError when ``figures`` (from ``compare_logits``) break either limit.

    The message names both figures, so a failure shows whether the predictions changed, the
    logits drifted, or both.
    """
    agreement = figures["top1_agreement"]
    diff = figures["max_abs_logit_diff"]
    if agreement >= MIN_TOP1_AGREEMENT and diff <= MAX_ABS_LOGIT_DIFF:
        return
    raise ParityError(
        f"{backend} disagrees with eager on {figures['images']} fixed test images: top-1 agreement "
        f"{agreement:.2%} (minimum {MIN_TOP1_AGREEMENT:.1%}), max |logit diff| {diff:.3g} "
        f"(maximum {MAX_ABS_LOGIT_DIFF:g})"
    )
