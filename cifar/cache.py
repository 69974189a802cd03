"""A content-keyed cache of trained weights and exported files, safe for concurrent processes.

Every write goes to a temporary file in the destination folder and is renamed into place, so a
reader never sees half a file. Building an entry happens under a per-entry file lock, so two
processes that miss on the same key build it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock

from cifar.errors import CacheError, first_line

log = logging.getLogger(__name__)

ENV_CACHE = "CIFAR_BENCH_CACHE"


def default_cache_dir() -> Path:
    """Return ``$CIFAR_BENCH_CACHE``, else ``$XDG_CACHE_HOME/cifar-bench``, else ``~/.cache/cifar-bench``."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cifar-bench"


def content_key(*parts: object) -> str:
    """Hash JSON-serializable ``parts`` into a short hex key (order and values both count)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise CacheError(
            f"cannot write to {path.parent}: {error.strerror}. Choose a writable folder with "
            f"--cache-dir or ${ENV_CACHE}."
        ) from error
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class Cache:
    """Files under one root folder, each built once per key and reused after."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_cache_dir()

    def path(self, kind: str, name: str) -> Path:
        return self.root / kind / name

    def lock(self, path: Path) -> FileLock:
        lock_dir = self.root / "locks"
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CacheError(
                f"cannot create the cache folder {lock_dir}: {error.strerror}. Choose a writable "
                f"folder with --cache-dir or ${ENV_CACHE}."
            ) from error
        relative = path.relative_to(self.root).as_posix().replace("/", "--")
        return FileLock(lock_dir / f"{relative}.lock")

    def get_or_build(
        self,
        path: Path,
        build: Callable[[Path], None],
        check: Callable[[Path], None] | None = None,
    ) -> tuple[Path, bool]:
        """Return ``path`` and whether it was built now.

        ``build(temporary)`` writes the entry to a temporary file that is renamed onto ``path``.
        ``check(path)`` raises on a corrupt entry; such an entry is reported in one warning and
        rebuilt.
        """
        with self.lock(path):
            if path.is_file():
                try:
                    if check is not None:
                        check(path)
                    return path, False
                except Exception as error:  # any failure to load means the entry is unusable
                    log.warning("cache entry %s is corrupt (%s); rebuilding it", path, first_line(error))
            with atomic_path(path) as temporary:
                build(temporary)
            return path, True
