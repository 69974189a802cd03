"""CIFAR-10 on disk: find the data root, read the batch files into uint8 tensors, download.

The files are torchvision's on-disk layout, ``cifar-10-batches-py/data_batch_1..5`` and
``test_batch``: Python pickles of a dict with ``data`` (uint8, shape (10000, 3072), each row the
red, green and blue 32x32 planes in row-major order) and ``labels`` (ints 0..9).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cifar.cache import default_cache_dir
from cifar.errors import DataError, first_line

log = logging.getLogger(__name__)

BASE_FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGES_PER_FILE = 10_000
ENV_ROOT = "CIFAR10_ROOT"


@dataclass(frozen=True)
class Cifar10:
    """The whole data set in memory: images uint8 (N, 3, 32, 32), labels int64 (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    fingerprint: str
    source: str

    def subset(self, train_count: int | None = None, test_count: int | None = None) -> Cifar10:
        """Return the first ``train_count``/``test_count`` images (None keeps all)."""
        train = slice(0, train_count)
        test = slice(0, test_count)
        return Cifar10(
            self.train_images[train],
            self.train_labels[train],
            self.test_images[test],
            self.test_labels[test],
            fingerprint=f"{self.fingerprint}:{train_count}:{test_count}",
            source=self.source,
        )


def resolve_root(data_dir: str | os.PathLike | None) -> tuple[Path, str]:
    """Pick the data root: ``data_dir``, then ``$CIFAR10_ROOT``, then the default cache folder.

    Returns the root and a word saying where it came from, for messages.
    """
    if data_dir:
        return Path(data_dir).expanduser(), "--data-dir"
    if os.environ.get(ENV_ROOT):
        return Path(os.environ[ENV_ROOT]).expanduser(), f"${ENV_ROOT}"
    return default_cache_dir() / "data", "the default cache folder"


def find_batches(root: Path) -> Path | None:
    """Return the folder holding the batch files under ``root``, or None.

    ``root`` may be the folder that contains ``cifar-10-batches-py`` or that folder itself.
    """
    for folder in (root / BASE_FOLDER, root):
        if all((folder / name).is_file() for name in TRAIN_FILES + TEST_FILES):
            return folder
    return None


def missing_data_message(root: Path, origin: str, reason: str) -> str:
    return (
        f"CIFAR-10 not found in {root} (from {origin}): {reason}. Provide the data in one of "
        f"three ways: pass --data-dir DIR, set ${ENV_ROOT}=DIR, or let `cifar download` fetch it "
        f"into {default_cache_dir() / 'data'}. DIR is the folder that contains {BASE_FOLDER}/."
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
    except Exception as error:
        # A damaged pickle fails with many types (UnpicklingError, EOFError, KeyError, IndexError
        # and more), and each of them means the same thing here.
        raise DataError(
            f"cannot read CIFAR-10 batch file {path}: {type(error).__name__}: {first_line(error)}. "
            f"The file is truncated or not a CIFAR-10 pickle; replace it with an intact copy, or "
            f"delete {path.parent} and run `cifar download` to fetch the whole set again."
        ) from error

    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise DataError(f"{path} is not a CIFAR-10 batch: expected a dict with 'data' and 'labels'")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])

    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"{path}: 'data' has dtype {data.dtype} and shape {data.shape}, "
            f"expected uint8 (N, 3072)"
        )
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataError(f"{path}: labels span {labels.min()}..{labels.max()}, expected 0..9")
    return data, labels.astype(np.int64)


def _to_tensors(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    data = np.concatenate([d for d, _ in parts])
    labels = np.concatenate([lab for _, lab in parts])
    # Each row is channel-major already, so this reshape is the CHW layout: (N, 3, 32, 32).
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def official_checksums() -> dict[str, str]:
    """Return the release's md5 per batch file, from torchvision's table."""
    from torchvision.datasets import CIFAR10

    return dict(CIFAR10.train_list + CIFAR10.test_list)


def _fingerprint(*tensors: torch.Tensor) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for tensor in tensors:
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def load_cifar10(folder: str | os.PathLike) -> Cifar10:
    """Read every batch file in ``folder`` (a data root or ``cifar-10-batches-py`` itself).

    Extra files are ignored. A copy whose md5 sums differ from the official release (a re-encoded
    copy, say) loads with one warning.
    """
    root = Path(folder)
    batches = find_batches(root)
    if batches is None:
        missing = [n for n in TRAIN_FILES + TEST_FILES if not (root / BASE_FOLDER / n).is_file()]
        raise DataError(missing_data_message(root, "the given path", f"missing {', '.join(missing)}"))

    parts = {name: _read_batch(batches / name) for name in TRAIN_FILES + TEST_FILES}
    train_images, train_labels = _to_tensors([parts[n] for n in TRAIN_FILES])
    test_images, test_labels = _to_tensors([parts[n] for n in TEST_FILES])

    checksums = official_checksums()
    differing = [n for n in checksums if _md5(batches / n) != checksums[n]]
    if differing:
        log.warning(
            "CIFAR-10 in %s differs from the official release (md5 mismatch in %d of %d files); "
            "accuracy may differ slightly from published figures",
            batches, len(differing), len(checksums),
        )

    return Cifar10(
        train_images,
        train_labels,
        test_images,
        test_labels,
        fingerprint=_fingerprint(train_images, train_labels, test_images, test_labels),
        source=str(batches),
    )


def download(root: str | os.PathLike) -> Path:
    """Fetch the release archive into ``root`` with torchvision's downloader; return the batch folder.

    The archive is checked against its md5 and unpacked in a temporary folder inside ``root``, and
    only a complete ``cifar-10-batches-py`` is moved into place, so an interrupted download leaves
    nothing that looks like data.
    """
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive

    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    except OSError as error:
        raise DataError(f"cannot create the data folder {root}: {error}") from error

    try:
        download_and_extract_archive(CIFAR10.url, str(staging), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
        if find_batches(staging) is None:
            raise DataError(f"the archive from {CIFAR10.url} has no complete {BASE_FOLDER}/ folder")
        target = root / BASE_FOLDER
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / BASE_FOLDER, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def locate_or_download(data_dir: str | os.PathLike | None, allow_download: bool = True) -> Path:
    """Return the batch folder for ``data_dir`` (see ``resolve_root``), downloading when absent."""
    root, origin = resolve_root(data_dir)
    batches = find_batches(root)
    if batches is not None:
        return batches
    if not allow_download:
        raise DataError(missing_data_message(root, origin, "no batch files and downloading is off"))

    log.info("CIFAR-10 not found in %s; downloading it there", root)
    try:
        return download(root)
    except Exception as error:  # any network, disk or archive failure means "no data"
        raise DataError(missing_data_message(root, origin, f"the download failed ({error})")) from error
