import numpy as np
import onnx
import pytest
import torch

from cifar import export as cifar_export
from cifar.backends import OnnxRuntimeBackend, TorchModuleBackend
from cifar.errors import BackendUnavailableError, ParityError
from cifar.export import FORMATS, OPSET, PARITY_BATCH_SIZES, check_parity, export
from cifar.models import create


def test_onnx_opset_names_and_dynamic_batch(exported):
    graph = onnx.load(str(exported["onnxruntime"]))
    onnx.checker.check_model(graph)
    assert {o.domain: o.version for o in graph.opset_import}[""] == OPSET >= 17
    (images,) = graph.graph.input
    assert images.name == "images"
    assert images.type.tensor_type.shape.dim[0].dim_param  # symbolic batch axis
    assert graph.graph.output[0].name == "logits"


def test_parity_figures_returned(trained, parity_images, tmp_path):
    parity = export(trained[0], "onnx", tmp_path / "m.onnx", parity_images)
    assert parity["batch_sizes"] == list(PARITY_BATCH_SIZES) == [1, 2, 7, 64]
    assert parity["max_abs_diff"] <= 1e-4


def test_altered_onnx_graph_fails_gate(trained, parity_images, tmp_path, monkeypatch):
    original = cifar_export.WRITERS["onnx"]

    def write_then_alter(model, path, example):
        original(model, path, example)
        graph = onnx.load(str(path))
        bias = next(t for t in graph.graph.initializer if tuple(t.dims) == (10,))  # the last layer's bias
        values = onnx.numpy_helper.to_array(bias).copy()
        values[3] += 0.5
        bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
        onnx.save(graph, str(path))

    monkeypatch.setitem(cifar_export.WRITERS, "onnx", write_then_alter)
    with pytest.raises(ParityError, match=r"onnxruntime export disagrees with eager at batch 1: max \|logit diff\| 0.5"):
        export(trained[0], "onnx", tmp_path / "m.onnx", parity_images)
    assert list(tmp_path.iterdir()) == []


def test_top1_mismatch_fails_even_within_tolerance(trained, parity_images):
    model = trained[0]

    class SwapTop(TorchModuleBackend):
        def _run(self, images):
            logits = super()._run(images)
            logits[0] = logits[0][::-1]  # reorder one row: same values, other argmax
            return logits

    with pytest.raises(ParityError, match="top-1 differ"):
        check_parity(SwapTop(model, "swapped"), model, parity_images)


def test_export_failing_a_batch_fails_gate(trained, parity_images):
    class FixedBatchBackend(TorchModuleBackend):
        """Runs only batches of 2, like a graph traced with its example's batch size baked in."""

        def _run(self, images):
            if len(images) != 2:
                raise RuntimeError(f"The size of tensor a (2) must match the size of tensor b ({len(images)})")
            return super()._run(images)

    backend = FixedBatchBackend(trained[0], "torchscript")
    with pytest.raises(ParityError, match=r"torchscript export failed to run at batch 1: The size of tensor a"):
        check_parity(backend, trained[0], parity_images)


def test_parity_needs_64_images(trained, parity_images):
    with pytest.raises(ValueError, match="at least 64 images, got 10"):
        check_parity(TorchModuleBackend(trained[0], "eager"), trained[0], parity_images[:10])


def test_torchscript_unavailable_is_reported(trained, parity_images, tmp_path, monkeypatch):
    monkeypatch.delattr(torch.jit, "trace")
    with pytest.raises(BackendUnavailableError, match="no TorchScript"):
        export(trained[0], "torchscript", tmp_path / "m.ts", parity_images)
    assert list(tmp_path.iterdir()) == []


def test_exported_files_run_any_batch(exported, parity_images):
    backend = OnnxRuntimeBackend(exported["onnxruntime"])
    for batch in (1, 3, 64):
        assert backend.predict(parity_images[:batch]).shape == (batch, 10)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "pt2"])
def test_resnet_exports_pass_parity_at_every_batch(fmt, parity_images, tmp_path):
    # The resnet averages over a mirrored copy inside forward. The export must keep that batch
    # split symbolic, or the parity gate's batches other than the example's would fail.
    torch.manual_seed(0)
    model = create("resnet").eval()
    model.init_whitening(torch.from_numpy(parity_images))
    parity = export(model, fmt, tmp_path / f"resnet{FORMATS[fmt]}", parity_images)
    assert parity["batch_sizes"] == [1, 2, 7, 64]
    assert parity["max_abs_diff"] <= 1e-4


def test_unknown_format(trained, parity_images, tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'tflite'"):
        export(trained[0], "tflite", tmp_path / "m", parity_images)
    assert np.isfinite(parity_images).all()
