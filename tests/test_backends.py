import numpy as np
import pytest
import torch

from cifar.backends import BACKEND_FORMATS, OnnxRuntimeBackend, TorchModuleBackend, check_images, load_backend
from cifar.errors import InputError


@pytest.fixture(scope="module")
def backends(exported):
    """Every backend, each loaded from its own file, keyed by name."""
    return {name: load_backend(name, path) for name, path in exported.items() if name != "compile"}


def test_all_backends_agree(backends, parity_images):
    expected = backends["eager"].predict(parity_images)
    for name, backend in backends.items():
        logits = backend.predict(parity_images)
        assert logits.shape == (64, 10), name
        assert logits.dtype == np.float32, name
        assert np.abs(logits - expected).max() < 1e-4, name


@pytest.mark.parametrize("shape", [(3, 32, 32), (2, 32, 32, 3), (2, 1, 32, 32), (0, 3, 32, 32), (2, 3, 28, 28)])
def test_wrong_shape_rejected_by_every_backend(backends, shape):
    for name, backend in backends.items():
        with pytest.raises(InputError, match=r"expected images shaped \(N, 3, 32, 32\).*got \(" + str(shape[0])):
            backend.predict(np.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, bool])
def test_integer_dtype_rejected_by_every_backend(backends, dtype):
    for name, backend in backends.items():
        with pytest.raises(InputError, match="expected float32 images, got"):
            backend.predict(np.zeros((2, 3, 32, 32), dtype=dtype))


def test_float64_and_strided_input_converted(backends, parity_images):
    strided = np.ascontiguousarray(parity_images[:8].transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert not strided.flags.c_contiguous
    for name, backend in backends.items():
        expected = backend.predict(parity_images[:8])
        assert np.allclose(backend.predict(parity_images[:8].astype(np.float64)), expected, atol=1e-6), name
        assert np.allclose(backend.predict(strided), expected, atol=1e-6), name
        assert np.allclose(backend.predict(torch.from_numpy(parity_images[:8])), expected, atol=1e-6), name


def test_check_images_returns_contiguous_float32():
    out = check_images(np.zeros((1, 3, 32, 32), dtype=np.float64))
    assert out.dtype == np.float32
    assert out.flags.c_contiguous


def test_onnxruntime_threads_follow_torch(exported):
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        backend = OnnxRuntimeBackend(exported["onnxruntime"])
        assert backend.threads == 1
        options = backend.session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    finally:
        torch.set_num_threads(previous)


def test_onnxruntime_switches_thread_pool_for_a_block(exported, parity_images):
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        backend = OnnxRuntimeBackend(exported["onnxruntime"])
        before = backend.predict(parity_images)
        with backend.using_threads(1):
            assert torch.get_num_threads() == 1
            assert backend.session.get_session_options().intra_op_num_threads == 1
            inside = backend.predict(parity_images)
        assert torch.get_num_threads() == 2
        assert backend.threads == 2
        assert backend.session.get_session_options().intra_op_num_threads == 2
        np.testing.assert_allclose(inside, before, atol=1e-5)
    finally:
        torch.set_num_threads(previous)


def test_torch_backend_thread_block_restores_count(backends):
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with backends["eager"].using_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with backends["eager"].using_threads(None):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_unknown_backend_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        load_backend("tensorrt", tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="onnxruntime backend: file .*missing.onnx not found"):
        load_backend("onnxruntime", tmp_path / "missing.onnx")


def test_every_format_has_a_backend():
    assert set(BACKEND_FORMATS) >= {"eager", "torchscript", "onnxruntime"}
    assert isinstance(TorchModuleBackend(torch.nn.Identity(), "x").predict(np.zeros((1, 3, 32, 32), np.float32)), np.ndarray)
