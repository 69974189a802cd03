"""Checkpoints: a state_dict plus the metadata needed to rebuild, trust and compare the model."""

from __future__ import annotations

import os
import pickle
import re
import platform
from pathlib import Path

import torch
from torch import nn

from cifar.cache import atomic_path
from cifar.errors import CheckpointError, first_line
from cifar.models import MODELS, create

FORMAT = "cifar-bench-checkpoint/1"
# Wrappers that prefix state_dict keys: DataParallel/DistributedDataParallel and torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def library_versions() -> dict[str, str]:
    import numpy
    import onnx
    import onnxruntime

    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": numpy.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def unwrap(model: nn.Module) -> nn.Module:
    """Return the module inside DataParallel/DDP or torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        else:
            return model


def strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (``module.``, ``_orig_mod.``) from every key, however nested."""
    stripped = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        stripped[key] = value
    return stripped


def save_checkpoint(path: str | os.PathLike, model: nn.Module, model_name: str, **metadata) -> Path:
    """Write the unwrapped model's state_dict and ``metadata`` to ``path`` atomically.

    Typical metadata: ``config`` (a dict), ``history``, ``metrics``, ``data_fingerprint``.
    """
    payload = {
        "format": FORMAT,
        "model": model_name,
        "state_dict": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
        "versions": library_versions(),
        **metadata,
    }
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)
    return Path(path)


def _guess_architecture(keys: set[str]) -> str | None:
    for name, factory in MODELS.items():
        if set(factory().state_dict()) == keys:
            return name
    return None


def _unpickler_reason(error: Exception) -> str | None:
    """Return the reason inside torch's weights-only UnpicklingError, or None for other errors.

    The message opens with general advice to retry with ``weights_only=False``, which is unsafe and
    irrelevant for a damaged file. The reason itself follows "WeightsUnpickler error:".
    """
    if not isinstance(error, pickle.UnpicklingError):
        return None
    _, marker, rest = str(error).partition("WeightsUnpickler error:")
    reason = next((line.strip() for line in rest.splitlines() if line.strip()), "")
    return reason if marker and reason else None


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint (or a bare state_dict) with ``weights_only=True`` onto the CPU.

    A bare state_dict comes back as ``{"model": None, "state_dict": ...}``.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder, not a file; give the path of a .pt file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; train one with `cifar train` or `cifar run`")
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        # torch wraps every unpickling failure in one UnpicklingError message, and only
        # "Unsupported global" means a valid pickle of objects that weights_only loading rejects.
        found = None
        if isinstance(error, pickle.UnpicklingError):
            found = re.search(r"Unsupported global: GLOBAL ([A-Za-z_][\w.]*)", str(error))
        if found is not None:
            raise CheckpointError(
                f"cannot read checkpoint {path}: it contains a {found.group(1)} object, which "
                f"torch.load(weights_only=True) rejects. Save only the state_dict and plain metadata."
            ) from error
        # Arbitrary bytes fail inside torch.load with many types (BadZipFile, EOFError, KeyError,
        # IndexError and more), and each of them means the same thing here.
        message = _unpickler_reason(error) or first_line(error)
        detail = message if message == type(error).__name__ else f"{type(error).__name__}: {message}"
        raise CheckpointError(
            f"cannot read checkpoint {path} ({detail}). The file is corrupt or not a PyTorch "
            f"checkpoint; train it again or point to another file."
        ) from error

    if isinstance(payload, dict) and "state_dict" in payload:
        payload = dict(payload)
    elif isinstance(payload, dict) and all(isinstance(v, torch.Tensor) for v in payload.values()):
        payload = {"model": None, "state_dict": payload}
    else:
        raise CheckpointError(f"{path} contains a {type(payload).__name__}, not a state_dict or a cifar-bench checkpoint")

    payload["state_dict"] = strip_prefixes(payload["state_dict"])
    return payload


def load_model(path: str | os.PathLike, model_name: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model saved in ``path`` in eval mode; return it and the checkpoint's metadata.

    ``model_name`` is needed for a bare state_dict and checked against a full checkpoint.
    """
    payload = read_checkpoint(path)
    saved_name = payload.get("model")
    state_dict = payload["state_dict"]
    keys_arch = _guess_architecture(set(state_dict))

    if saved_name and model_name and saved_name != model_name:
        raise CheckpointError(f"checkpoint {path} contains a {saved_name!r} model, but {model_name!r} was requested")
    name = model_name or saved_name or keys_arch
    if name is None:
        raise CheckpointError(
            f"checkpoint {path} is a bare state_dict whose keys match none of the models "
            f"({', '.join(MODELS)}); save the state_dict of one of them, or train with `cifar train`"
        )
    if name not in MODELS:
        raise CheckpointError(f"checkpoint {path} names unknown model {name!r}; known: {', '.join(MODELS)}")

    model = create(name)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        found = keys_arch or "an unknown architecture"
        raise CheckpointError(
            f"checkpoint {path} contains weights of {found}, not of {name!r}; pass the checkpoint of a "
            f"{name!r} model, or train one with `cifar train --model {name}`"
        ) from error
    payload["model"] = name
    return model.eval(), payload
