import numpy as np
import pytest

from cifar.backends import Backend
from cifar.bench_parity import MAX_ABS_LOGIT_DIFF, check_agreement, compare_logits, predict_in_batches
from cifar.errors import ParityError


class RecordingBackend(Backend):
    """Return each image's mean pixel as every logit and remember the batch sizes it saw."""

    name = "recording"

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def _run(self, images: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(images))
        return np.repeat(images.mean(axis=(1, 2, 3))[:, None], 10, axis=1).astype(np.float32)


def test_predict_in_batches_keeps_order():
    images = np.random.default_rng(0).normal(size=(7, 3, 32, 32)).astype(np.float32)
    backend = RecordingBackend()

    logits = predict_in_batches(backend, images, batch_size=3)

    assert backend.batch_sizes == [3, 3, 1]
    np.testing.assert_allclose(logits[:, 0], images.mean(axis=(1, 2, 3)), rtol=1e-6)


def test_compare_logits_figures():
    reference = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]  # argmax 0, 1, 2, 3
    logits = reference.copy()
    logits[3] = np.eye(10, dtype=np.float32)[4]  # one changed prediction
    logits[0, 5] += 0.25

    figures = compare_logits(logits, reference)

    assert figures["top1_agreement"] == 0.75
    assert figures["max_abs_logit_diff"] == 1.0
    assert figures["images"] == 4


def test_compare_logits_rejects_shape_mismatch():
    with pytest.raises(ParityError, match=r"logits shaped \(4, 9\), eager \(4, 10\)"):
        compare_logits(np.zeros((4, 9), np.float32), np.zeros((4, 10), np.float32))


def test_check_agreement_passes_at_limits():
    check_agreement({"top1_agreement": 0.995, "max_abs_logit_diff": MAX_ABS_LOGIT_DIFF, "images": 1000}, "onnxruntime")


@pytest.mark.parametrize(
    ("agreement", "diff"),
    [(0.994, 0.0), (1.0, 2e-3), (0.5, 3.0), (1.0, float("nan"))],
    ids=["agreement", "diff", "both", "nan"],
)
def test_check_agreement_names_both_figures(agreement: float, diff: float):
    figures = {"top1_agreement": agreement, "max_abs_logit_diff": diff, "images": 1000}

    with pytest.raises(ParityError) as failure:
        check_agreement(figures, "onnxruntime")

    message = str(failure.value)
    assert message.startswith("onnxruntime disagrees with eager on 1000 fixed test images: ")
    assert f"top-1 agreement {agreement:.2%} (minimum 99.5%)" in message
    assert f"max |logit diff| {diff:.3g} (maximum 0.001)" in message
