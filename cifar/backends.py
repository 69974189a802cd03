"""Inference backends behind one interface: ``predict(images) -> logits``.

Every backend takes float32 images shaped (N, 3, 32, 32), normalized as ``cifar.transforms.
normalize`` does, and returns float32 logits (N, 10) as a NumPy array.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from cifar.errors import BackendUnavailableError, InputError
from cifar.models import INPUT_SHAPE

# Display names match the lines users already compare: "Torch Model Accuracy: ...".
DISPLAY_NAMES = {
    "eager": "Torch",
    "torchscript": "TorchScript",
    "onnxruntime": "ONNX",
    "torch-export": "Torch Export",
    "compile": "Torch Compile",
}
DEFAULT_BACKENDS = ("eager", "torchscript", "onnxruntime")
# The file format each backend loads; None means the checkpoint itself.
BACKEND_FORMATS = {"eager": None, "compile": None, "torchscript": "torchscript", "onnxruntime": "onnx", "torch-export": "pt2"}


@contextlib.contextmanager
def quiet_torchscript():
    """Hide torch's FutureWarning that TorchScript is deprecated; nothing else is filtered."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=FutureWarning)
        yield


def check_images(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """Return ``images`` as a C-contiguous float32 array (N, 3, 32, 32), or raise InputError.

    float64 and float16 are converted to float32 and non-contiguous arrays are copied. Integer
    arrays are rejected because they are almost always unnormalized uint8 pixels.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    images = np.asarray(images)

    if images.ndim != 4 or images.shape[1:] != INPUT_SHAPE or images.shape[0] < 1:
        raise InputError(
            f"expected images shaped (N, 3, 32, 32) with N >= 1, got {images.shape}; "
            f"for (N, 32, 32, 3) arrays transpose with images.transpose(0, 3, 1, 2)"
        )
    if not np.issubdtype(images.dtype, np.floating):
        raise InputError(
            f"expected float32 images, got {images.dtype}; scale and normalize uint8 pixels "
            f"with cifar.transforms.normalize first"
        )
    return np.ascontiguousarray(images, dtype=np.float32)


class Backend:
    """One way to run a trained model. Subclasses implement ``_run`` on a checked float32 array."""

    name = "backend"

    def predict(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """Return float32 logits (N, 10) for float images (N, 3, 32, 32)."""
        return self._run(check_images(images))

    def _run(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @contextlib.contextmanager
    def using_threads(self, count: int | None):
        """Run the predictions inside this block on ``count`` CPU threads, or as before for None.

        torch's thread count is set for the block and restored after it. A backend with its own
        thread pool (ONNX Runtime) switches to a pool of the same size.
        """
        if not count:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(count)
        own_previous = self._use_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(previous)
            if own_previous is not None:
                self._use_threads(own_previous)

    def _use_threads(self, count: int) -> int | None:
        """Resize the backend's own thread pool, if it has one, and return its previous size."""
        return None

    @property
    def display_name(self) -> str:
        return DISPLAY_NAMES.get(self.name, self.name)


class TorchModuleBackend(Backend):
    """Any callable torch module, run under ``torch.inference_mode``."""

    def __init__(self, module, name: str) -> None:
        self.module = module
        self.name = name

    def _run(self, images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(images)).float().numpy()


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on the CPU provider, with torch's thread count and no busy-waiting threads.

    Spinning is off because idle ORT threads that spin steal cores from the other backends
    measured in the same process.
    """

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = str(path)
        self.sessions: dict = {}
        self.threads: int | None = None
        self._use_threads(threads or torch.get_num_threads())
        self.input_name = self.session.get_inputs()[0].name

    def _use_threads(self, count: int) -> int | None:
        """Switch to a session whose intra-op pool has ``count`` threads (built once per count)."""
        import onnxruntime as ort

        if count not in self.sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = count
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
            self.sessions[count] = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.session = self.sessions[count]
        previous, self.threads = self.threads, count
        return previous

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: images})[0]


def load_torchscript(path: str | os.PathLike):
    if not hasattr(torch, "jit"):
        raise BackendUnavailableError(f"torch {torch.__version__} has no TorchScript (torch.jit)")
    with quiet_torchscript():
        return torch.jit.load(str(path), map_location="cpu")


def load_backend(
    name: str,
    path: str | os.PathLike,
    model_name: str | None = None,
    threads: int | None = None,
) -> Backend:
    """Load backend ``name`` from ``path``: a checkpoint for ``eager`` and ``compile``, else the
    exported file of that backend's format (see ``BACKEND_FORMATS``)."""
    if name not in BACKEND_FORMATS:
        raise ValueError(f"unknown backend {name!r}; choose from: {', '.join(BACKEND_FORMATS)}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{name} backend: file {path} not found")
    if threads:
        torch.set_num_threads(threads)

    if name in ("eager", "compile"):
        from cifar.checkpoint import load_model

        model, _ = load_model(path, model_name)
        if name == "compile":
            return compiled_backend(model)
        return TorchModuleBackend(model, "eager")
    if name == "torchscript":
        return TorchModuleBackend(load_torchscript(path), "torchscript")
    if name == "torch-export":
        return TorchModuleBackend(torch.export.load(str(path)).module(), "torch-export")
    try:
        return OnnxRuntimeBackend(path, threads)
    except ImportError as error:
        raise BackendUnavailableError(f"onnxruntime is not installed: {error}") from error


def compiled_backend(model: torch.nn.Module) -> Backend:
    """Wrap ``model`` in ``torch.compile`` (Inductor; compiles on first call of each batch size)."""
    try:
        compiled = torch.compile(model, dynamic=False)
    except RuntimeError as error:
        raise BackendUnavailableError(f"torch.compile is unavailable: {error}") from error
    return TorchModuleBackend(compiled, "compile")
