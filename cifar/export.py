"""Export a trained model to ONNX, TorchScript or a torch.export program, behind a parity gate.

An exported file is only kept after it matches the eager model on real images at several batch
sizes. A failed gate raises ParityError and leaves nothing at the destination.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cifar.backends import Backend, TorchModuleBackend, load_backend, quiet_torchscript
from cifar.cache import atomic_path
from cifar.errors import BackendUnavailableError, ParityError, first_line

OPSET = 18
PARITY_BATCH_SIZES = (1, 2, 7, 64)
PARITY_MAX_ABS_DIFF = 1e-4
# Batch size of the example used for tracing; 1 would let exporters specialize the batch axis.
EXAMPLE_BATCH = 2
FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "pt2": ".pt2"}
FORMAT_BACKENDS = {"onnx": "onnxruntime", "torchscript": "torchscript", "pt2": "torch-export"}


def check_parity(backend: Backend, model: nn.Module, images: np.ndarray) -> dict:
    """Compare ``backend`` with eager ``model`` at each of ``PARITY_BATCH_SIZES``.

    ``images`` are normalized float32 (N, 3, 32, 32) with N >= 64. Returns the worst max |logit
    difference|; raises ParityError when it exceeds ``PARITY_MAX_ABS_DIFF`` or any top-1 differs.
    """
    if len(images) < max(PARITY_BATCH_SIZES):
        raise ValueError(f"parity check needs at least {max(PARITY_BATCH_SIZES)} images, got {len(images)}")
    eager = TorchModuleBackend(model.eval(), "eager")
    worst = 0.0

    for batch_size in PARITY_BATCH_SIZES:
        batch = images[:batch_size]
        expected = eager.predict(batch)
        try:
            actual = backend.predict(batch)
        except Exception as error:  # each runtime raises its own types, and any failure here fails the gate
            raise ParityError(
                f"{backend.name} export failed to run at batch {batch_size}: {first_line(error)}; "
                f"the exported file was discarded"
            ) from error
        if actual.shape != expected.shape:
            raise ParityError(f"{backend.name} returned logits {actual.shape} at batch {batch_size}, eager {expected.shape}")
        diff = float(np.abs(actual - expected).max())
        mismatches = int((actual.argmax(1) != expected.argmax(1)).sum())
        worst = max(worst, diff)
        if diff > PARITY_MAX_ABS_DIFF or mismatches:
            raise ParityError(
                f"{backend.name} export disagrees with eager at batch {batch_size}: max |logit diff| "
                f"{diff:.3g} (limit {PARITY_MAX_ABS_DIFF:g}), {mismatches} of {batch_size} top-1 differ; "
                f"the exported file was discarded"
            )
    return {"max_abs_diff": worst, "batch_sizes": list(PARITY_BATCH_SIZES)}


def _write_onnx(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    import onnx

    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=True,
        opset_version=OPSET,
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
        external_data=False,
        verbose=False,
    )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def _write_torchscript(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    if not hasattr(torch, "jit") or not hasattr(torch.jit, "trace"):
        raise BackendUnavailableError(f"torch {torch.__version__} has no TorchScript tracing")
    with quiet_torchscript(), torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(model, example))
        torch.jit.save(traced, str(path))


def _write_pt2(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript, "pt2": _write_pt2}


def export(model: nn.Module, fmt: str, path: str | os.PathLike, parity_images: np.ndarray) -> dict:
    """Export eval-mode ``model`` to ``path`` in format ``fmt``, gated by ``check_parity``.

    Returns the parity figures. The file appears at ``path`` only when the gate passes.
    """
    if fmt not in WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; choose from: {', '.join(WRITERS)}")
    model = model.eval()
    example = torch.from_numpy(np.ascontiguousarray(parity_images[:EXAMPLE_BATCH], dtype=np.float32))

    with atomic_path(path) as temporary:
        WRITERS[fmt](model, temporary, example)
        backend = load_backend(FORMAT_BACKENDS[fmt], temporary)
        return check_parity(backend, model, parity_images)
