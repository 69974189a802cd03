import hashlib
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from cifar import data as cifar_data
from cifar.data import BASE_FOLDER, find_batches, load_cifar10, locate_or_download, resolve_root
from cifar.errors import DataError
from tests.conftest import write_batch, write_cifar_folder


def test_load_shapes_and_dtypes(cifar_folder):
    data = load_cifar10(cifar_folder)
    assert data.train_images.shape == (100, 3, 32, 32)
    assert data.test_images.shape == (20, 3, 32, 32)
    assert data.train_images.dtype == torch.uint8
    assert data.train_labels.dtype == torch.int64
    assert data.train_labels.shape == (100,)


def test_load_accepts_batch_folder_itself(cifar_folder):
    from_root = load_cifar10(cifar_folder)
    from_folder = load_cifar10(cifar_folder / BASE_FOLDER)
    assert from_root.fingerprint == from_folder.fingerprint


def test_pixel_lands_at_row_col_channel(tmp_path):
    folder = write_cifar_folder(tmp_path)
    image = np.zeros((20, 3, 32, 32), dtype=np.uint8)
    image[3, 2, 5, 7] = 200  # image 3, blue channel, row 5, column 7
    image[3, 0, 31, 0] = 100  # image 3, red channel, last row, first column
    write_batch(folder / "test_batch", image.reshape(20, 3072), [0] * 20)

    test_images = load_cifar10(tmp_path).test_images
    assert test_images[3, 2, 5, 7] == 200
    assert test_images[3, 0, 31, 0] == 100
    assert int(test_images.sum()) == 300


def test_truncated_file_names_the_file(cifar_folder):
    path = cifar_folder / BASE_FOLDER / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_3"):
        load_cifar10(cifar_folder)


def test_damaged_pickle_names_the_file(cifar_folder):
    path = cifar_folder / BASE_FOLDER / "data_batch_4"
    for value in range(256):  # some first bytes make pickle fail with IndexError, KeyError and others
        path.write_bytes(bytes([value]))
        with pytest.raises(DataError, match="cannot read CIFAR-10 batch file .*data_batch_4"):
            load_cifar10(cifar_folder)


def test_wrong_shape_rejected(cifar_folder):
    write_batch(cifar_folder / BASE_FOLDER / "data_batch_2", np.zeros((4, 100), dtype=np.uint8), [0] * 4)
    with pytest.raises(DataError, match=r"data_batch_2.*\(4, 100\)"):
        load_cifar10(cifar_folder)


def test_label_out_of_range_rejected(cifar_folder):
    write_batch(cifar_folder / BASE_FOLDER / "data_batch_1", np.zeros((2, 3072), dtype=np.uint8), [0, 10])
    with pytest.raises(DataError, match="0..10"):
        load_cifar10(cifar_folder)


def test_missing_file_error_lists_three_ways(cifar_folder):
    (cifar_folder / BASE_FOLDER / "test_batch").unlink()
    with pytest.raises(DataError) as error:
        load_cifar10(cifar_folder)
    message = str(error.value)
    assert "test_batch" in message
    assert "--data-dir" in message
    assert "$CIFAR10_ROOT" in message
    assert "cifar download" in message


def test_checksum_mismatch_warns_once(cifar_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="cifar.data"):
        load_cifar10(cifar_folder)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "differs from the official release" in warnings[0].getMessage()


def test_matching_checksums_load_silently(cifar_folder, caplog, monkeypatch):
    folder = cifar_folder / BASE_FOLDER
    sums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.name in cifar_data.official_checksums()}
    monkeypatch.setattr(cifar_data, "official_checksums", lambda: sums)
    with caplog.at_level(logging.WARNING, logger="cifar.data"):
        load_cifar10(cifar_folder)
    assert not caplog.records


def test_root_order_flag_env_default(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "env"))
    monkeypatch.setenv("CIFAR_BENCH_CACHE", str(tmp_path / "cache"))
    assert resolve_root(tmp_path / "flag") == (tmp_path / "flag", "--data-dir")
    assert resolve_root(None) == (tmp_path / "env", "$CIFAR10_ROOT")
    monkeypatch.delenv("CIFAR10_ROOT")
    assert resolve_root(None)[0] == tmp_path / "cache" / "data"


def test_no_download_error_lists_three_ways(tmp_path):
    with pytest.raises(DataError) as error:
        locate_or_download(tmp_path / "empty", allow_download=False)
    message = str(error.value)
    assert str(tmp_path / "empty") in message
    assert "--data-dir" in message
    assert "$CIFAR10_ROOT" in message
    assert "cifar download" in message


def fake_archive_downloader(source_folder: Path, fail_after_extract: bool = False):
    """Stand in for torchvision's downloader: unpack a local tarball of ``source_folder``."""

    def download_and_extract_archive(url, download_root, filename=None, md5=None):
        archive = Path(download_root) / filename
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(source_folder, arcname=BASE_FOLDER)
        with tarfile.open(archive) as tar:
            tar.extractall(download_root, filter="data")
        if fail_after_extract:
            raise ConnectionError("connection reset by peer")

    return download_and_extract_archive


def test_download_moves_complete_folder(tmp_path, monkeypatch):
    source = write_cifar_folder(tmp_path / "source")
    monkeypatch.setattr("torchvision.datasets.utils.download_and_extract_archive", fake_archive_downloader(source))
    folder = locate_or_download(tmp_path / "root")
    assert folder == tmp_path / "root" / BASE_FOLDER
    assert find_batches(tmp_path / "root") == folder
    assert [p.name for p in (tmp_path / "root").iterdir()] == [BASE_FOLDER]


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    source = write_cifar_folder(tmp_path / "source")
    downloader = fake_archive_downloader(source, fail_after_extract=True)
    monkeypatch.setattr("torchvision.datasets.utils.download_and_extract_archive", downloader)
    with pytest.raises(DataError, match="download failed.*connection reset"):
        locate_or_download(tmp_path / "root")
    assert find_batches(tmp_path / "root") is None
    assert list((tmp_path / "root").iterdir()) == []


def test_subset_keeps_first_images(cifar_folder):
    data = load_cifar10(cifar_folder)
    small = data.subset(10, 5)
    assert torch.equal(small.train_images, data.train_images[:10])
    assert len(small.test_labels) == 5
    assert small.fingerprint != data.fingerprint
