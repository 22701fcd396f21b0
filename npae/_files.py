"""The one way npae writes a file: atomically, so nothing the user saved is ever half-written.

The content goes to a temporary file beside the destination (``.NAME.tmp-PID``), is flushed
to disk, and is renamed over the destination (``os.replace``, atomic on one filesystem). A
process killed mid-write leaves the previous file intact; the temporary files such a
process leaves behind are removed by the next write to the same path.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import BinaryIO


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists, or we cannot tell: leave its file alone
    return True


def remove_stale_temporaries(path: pathlib.Path) -> None:
    """Delete ``.NAME.tmp-PID`` files of ``path`` whose process no longer runs."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a temporary file (its return value is ignored), then rename it to ``path``.

    Raises ``FileNotFoundError`` / ``NotADirectoryError`` / ``PermissionError`` naming ``path``
    (not the temporary file) when its folder cannot take the file.
    """
    path = pathlib.Path(path)
    folder = path.parent
    if not folder.is_dir():
        kind = NotADirectoryError if folder.exists() else FileNotFoundError
        raise kind(f"{path}: the folder {folder} does not exist" if kind is FileNotFoundError
                   else f"{path}: {folder} is not a folder")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a file")
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        try:
            f = open(tmp, "wb")
        except PermissionError:
            raise PermissionError(f"{path}: cannot write into {folder} (permission denied)") from None
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """:func:`atomic_write` of a byte string."""
    atomic_write(path, lambda f: f.write(data))
