"""File helpers shared by every command: hashing, safe reads, atomic no-clobber writes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from codeaudit.errors import CodeAuditError, OutputError


def sha256_file(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, or of a directory's files (sorted by relative path) for HF dirs."""
    p = Path(path)
    digest = hashlib.sha256()
    if p.is_dir():
        for item in sorted(q for q in p.rglob("*") if q.is_file()):
            digest.update(str(item.relative_to(p)).encode() + b"\0")
            digest.update(bytes.fromhex(sha256_file(item)))
        return digest.hexdigest()
    with open(p, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_input_file(
    path: str | os.PathLike[str],
    what: str = "file",
    *,
    error: type[CodeAuditError] = CodeAuditError,
    allow_dir: bool = False,
) -> Path:
    """The path, if it names something readable; otherwise a one-line error of class ``error``."""
    p = Path(path)
    if not p.exists():
        raise error(f"{p}: {what} not found")
    if p.is_dir() and not allow_dir:
        raise error(f"{p}: is a directory, expected a {what}")
    if not p.is_dir() and not p.is_file():
        # A FIFO would block forever and /dev/zero never ends: only regular files are read.
        raise error(f"{p}: not a regular file (a device, FIFO or socket), expected a {what}")
    if not os.access(p, os.R_OK):
        raise error(f"{p}: permission denied")
    return p


def read_small_file(
    path: str | os.PathLike[str],
    limit: int,
    what: str = "file",
    *,
    error: type[CodeAuditError] = CodeAuditError,
) -> bytes:
    """The bytes of a small regular file, read without ever blocking or reading without end:
    opened non-blocking (a FIFO does not wait for a writer), refused unless it is a regular
    file once open (a symlink to /dev/zero, a device, a FIFO, a socket, a directory), and
    refused when larger than ``limit`` bytes (checked on the size and on what is read)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a device, FIFO or socket"
            raise error(f"{path}: not a regular file ({kind}), expected a {what}")
        if info.st_size > limit:
            raise error(f"{path}: {what} of {info.st_size} bytes is larger than {limit} bytes")
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"{path}: {what} is larger than {limit} bytes")
    return data


def check_output_dir(path: str | os.PathLike[str], what: str = "directory") -> Path:
    """Fail early (before any work) if a directory codeaudit will write into cannot be used:
    it must be a writable directory, or not exist yet under a writable parent."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise OutputError(f"{p}: {what} exists and is not a directory")
        if not os.access(p, os.W_OK | os.X_OK):
            raise OutputError(f"{p}: {what} is not writable")
        return p
    parent = p.parent if str(p.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{p}: cannot create {what} (directory {parent} is not writable)")
    return p


def check_output_path(path: str | os.PathLike[str], *, force: bool, what: str = "output") -> Path:
    """Fail early (before any work) if an output cannot be written."""
    p = Path(path)
    if p.exists() and p.is_dir():
        raise OutputError(f"{p}: {what} path is a directory")
    if p.exists() and not force:
        raise OutputError(f"{p}: {what} file exists (pass --force to overwrite)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{p}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{p}: directory {parent} is not writable")
    return p


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], None],
    *,
    force: bool = False,
) -> Path:
    """Write a file through a temporary file in the same directory, then move it into place.

    A reader never sees a half-written file, an interrupted write leaves nothing behind, and an
    existing file is only replaced when ``force`` is set (without it, the final step refuses to
    clobber even a file created while we were writing).
    """
    target = check_output_path(path, force=force)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file private (0600); give it the mode any new file gets (umask).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if target appeared meanwhile
            except FileExistsError:
                raise OutputError(
                    f"{target}: output file exists (pass --force to overwrite)"
                ) from None
            except OSError:
                # Filesystems without hard links: fall back to a checked rename.
                if target.exists():
                    raise OutputError(
                        f"{target}: output file exists (pass --force to overwrite)"
                    ) from None
                os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str, *, force: bool = False) -> Path:
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data), force=force)
