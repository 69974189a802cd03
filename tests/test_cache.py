import logging
import os
import threading

import pytest

from cifar.cache import Cache, atomic_path, content_key
from cifar.errors import CacheError


def test_content_key_depends_on_every_part():
    base = content_key("tutorial", {"epochs": 15}, "data-a")
    assert base == content_key("tutorial", {"epochs": 15}, "data-a")
    assert base != content_key("resnet", {"epochs": 15}, "data-a")
    assert base != content_key("tutorial", {"epochs": 16}, "data-a")
    assert base != content_key("tutorial", {"epochs": 15}, "data-b")


def test_atomic_path_failure_leaves_nothing(tmp_path):
    target = tmp_path / "entry.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_old_file_until_done(tmp_path):
    target = tmp_path / "entry.bin"
    target.write_bytes(b"old")
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"


def test_builds_once_then_reuses(tmp_path):
    cache = Cache(tmp_path)
    calls = []
    path = cache.path("things", "a.txt")

    def build(temporary):
        calls.append(1)
        temporary.write_text("built")

    assert cache.get_or_build(path, build) == (path, True)
    assert cache.get_or_build(path, build) == (path, False)
    assert calls == [1]
    assert path.read_text() == "built"


def test_corrupt_entry_rebuilt_with_one_warning(tmp_path, caplog):
    cache = Cache(tmp_path)
    path = cache.path("things", "a.txt")
    path.parent.mkdir(parents=True)
    path.write_text("garbage")

    def check(p):
        if p.read_text() != "good":
            raise ValueError("bad header\nsecond line")

    with caplog.at_level(logging.WARNING, logger="cifar.cache"):
        _, built = cache.get_or_build(path, lambda t: t.write_text("good"), check)
    assert built
    assert path.read_text() == "good"
    assert [r.getMessage() for r in caplog.records] == [f"cache entry {path} is corrupt (bad header); rebuilding it"]


def test_concurrent_requests_build_once(tmp_path):
    calls = []
    barrier = threading.Barrier(4)

    def build(temporary):
        calls.append(1)
        temporary.write_text("x")

    def worker():
        cache = Cache(tmp_path)  # separate instances, as separate processes would have
        barrier.wait()
        cache.get_or_build(cache.path("things", "a.txt"), build)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_cache_names_folder_and_fix(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CacheError, match=rf"{tmp_path}.*--cache-dir or \$CIFAR_BENCH_CACHE"):
            Cache(tmp_path / "cache").get_or_build(tmp_path / "cache" / "x" / "y", lambda t: None)
    finally:
        tmp_path.chmod(0o700)


def test_cache_under_a_file_names_folder_and_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match=rf"{blocker}.*--cache-dir or \$CIFAR_BENCH_CACHE"):
        Cache(blocker).get_or_build(blocker / "x" / "y", lambda t: None)
    assert blocker.read_text() == "not a folder"


def test_default_cache_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR_BENCH_CACHE", str(tmp_path / "c"))
    assert Cache().root == tmp_path / "c"
    monkeypatch.delenv("CIFAR_BENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert Cache().root == tmp_path / "xdg" / "cifar-bench"
