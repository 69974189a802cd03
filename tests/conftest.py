"""Shared fixtures: small synthetic CIFAR-10, a fake data folder on disk, a briefly trained model."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cifar.data import BASE_FOLDER, TEST_FILES, TRAIN_FILES
from cifar.training import TrainConfig, train
from cifar.transforms import synthetic_cifar10


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one torch thread: the tiny models gain nothing from more, and on a busy
    machine extra threads wait for cores and slow every step down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def synthetic():
    return synthetic_cifar10(train_count=512, test_count=256, seed=0)


def write_batch(path: Path, data: np.ndarray, labels: list[int]) -> None:
    """Write one batch file the way the release does: a pickle of 'data' (N, 3072) and 'labels'."""
    with open(path, "wb") as f:
        pickle.dump({"batch_label": path.name, "data": data, "labels": labels, "filenames": []}, f, protocol=2)


def write_cifar_folder(root: Path, images_per_file: int = 20, seed: int = 0) -> Path:
    """Create ``root/cifar-10-batches-py`` with all six batch files of random images; return it."""
    folder = root / BASE_FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in TRAIN_FILES + TEST_FILES:
        data = rng.integers(0, 256, size=(images_per_file, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, size=images_per_file)]
        write_batch(folder / name, data, labels)
    (folder / "batches.meta").write_bytes(b"not read")
    (folder / "readme.html").write_text("extra files are ignored")
    return folder


@pytest.fixture
def cifar_folder(tmp_path: Path) -> Path:
    write_cifar_folder(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def trained(synthetic):
    """A tutorial model trained for two epochs on synthetic data, with its config and history."""
    config = TrainConfig(model="tutorial", epochs=2, batch_size=32, seed=0, lr=0.05)
    model, history = train(config, synthetic, progress=False)
    return model, config, history


@pytest.fixture(scope="session")
def parity_images(synthetic) -> np.ndarray:
    from cifar.transforms import normalize

    return normalize(synthetic.test_images[:64]).numpy()



@pytest.fixture(scope="session")
def exported(trained, parity_images, tmp_path_factory) -> dict[str, Path]:
    """The trained model saved as a checkpoint and exported to every format, keyed by backend."""
    from cifar.backends import BACKEND_FORMATS
    from cifar.checkpoint import save_checkpoint
    from cifar.export import FORMATS, export

    folder = tmp_path_factory.mktemp("exported")
    model, config, history = trained
    files = {"eager": save_checkpoint(folder / "model.pt", model, "tutorial", config=config.as_dict(), history=history)}
    for backend, fmt in BACKEND_FORMATS.items():
        if fmt is not None:
            files[backend] = folder / f"model{FORMATS[fmt]}"
            export(model, fmt, files[backend], parity_images)
    return files
