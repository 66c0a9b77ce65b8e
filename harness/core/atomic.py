"""Files written whole or not at all: a temporary file beside the target, then a rename.

A reader (or the next run) never sees a half-written file, and a write that
fails part-way (a full disk, a killed process) leaves the previous file as it
was. The temporary file lives in the target's own folder, so the rename stays
on one file system and is atomic.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


class AtomicWriteError(OSError):
    """A file could not be written; the previous one (if any) is untouched. ``str()`` is one line."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any failure it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix,
                               dir=path.parent)  # the suffix names the format (matplotlib reads it)
    os.close(fd)
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes, encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path`` atomically; raise :class:`AtomicWriteError` (one line) when it cannot."""
    raw = data.encode(encoding) if isinstance(data, str) else data
    try:
        with replacing(path) as tmp:
            tmp.write_bytes(raw)
    except OSError as exc:
        raise failed(path, exc) from None


def failed(path: str | os.PathLike, exc: OSError) -> AtomicWriteError:
    """The one-line error of a failed atomic write of ``path``."""
    why = exc.strerror or str(exc)
    kept = "the previous file is kept" if os.path.exists(path) else "nothing was written"
    return AtomicWriteError(exc.errno, f"{path}: cannot write it ({why}); {kept}")
