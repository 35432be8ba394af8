"""Atomic file output: a file appears complete or not at all.

Every rawlab writer goes through :func:`atomic_write`.  The data are written to
a temporary file in the target's own folder (so the final rename stays on one
file system) and moved over the target with :func:`os.replace` only when the
writer finished without an error.  On any failure the temporary file is
removed, so no partial output is ever left behind, and an existing file at the
target path is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from rawlab.errors import RawlabError


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, durable: bool = False) -> Iterator[BinaryIO]:
    """Open a temporary file that replaces ``path`` once the block succeeds.

    Parameters
    ----------
    path
        The final file.  Its folder must exist and be writable.
    durable
        Also ``fsync`` the data before the rename (slower; protects against a
        power cut, not needed for atomicity between processes).

    Yields
    ------
    BinaryIO
        A file opened for reading and writing (``"w+b"``) and positioned at 0;
        writers that seek back to patch offsets (TIFF) can use it directly.

    Raises
    ------
    RawlabError
        The folder is missing or not writable, or the disk filled up; the
        message names ``path``.  Any other exception raised inside the block
        propagates unchanged after the temporary file is removed.

    Examples
    --------
    >>> with atomic_write("out.bin") as fh:  # doctest: +SKIP
    ...     fh.write(b"data")
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise RawlabError(f"cannot write: folder {str(folder)!r} does not exist", path=str(target))
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise RawlabError(f"cannot write: {exc.strerror or exc}", path=str(target)) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
        with open(tmp_name, "w+b") as handle:  # by name: some writers want ``handle.name``
            yield handle  # type: ignore[misc]
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except OSError as exc:
        _remove(tmp_name)
        raise RawlabError(f"cannot write: {exc.strerror or exc}", path=str(target)) from None
    except BaseException:
        _remove(tmp_name)
        raise


def _remove(name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)
