"""File helpers shared by every command: hashing, safe reads, atomic no-clobber writes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, BinaryIO

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
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a device, FIFO or socket"
        raise error(f"{path}: not a regular file ({kind}), expected a {what}")
    with os.fdopen(fd, "rb") as handle:
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


# atomic_write's temporary file is ".NAME.XXXXXXXX.tmp" beside the target: 14 bytes longer
TEMP_NAME_EXTRA = 14


def _limit(path: Path, name: str, default: int) -> int:
    try:
        return int(os.pathconf(path, name))
    except (OSError, ValueError, AttributeError):
        return default


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a component too long, a loop: not a usable directory
        return False


def check_name_length(p: Path, *, extra: int = TEMP_NAME_EXTRA) -> None:
    """Refuse a file name the filesystem cannot hold (its NAME_MAX, counting the ``extra``
    bytes of the temporary file written first) or a path beyond its PATH_MAX: before any work,
    not after it."""
    full = len(os.fsencode(os.path.abspath(p))) + extra
    if full >= _limit(Path("/"), "PC_PATH_MAX", 4096):
        raise OutputError(f"{str(p)[:200]}: path too long ({full - extra} bytes)")
    probe = Path(os.path.abspath(p)).parent
    while not _is_dir(probe) and probe != probe.parent:
        probe = probe.parent
    name_max = _limit(probe, "PC_NAME_MAX", 255)
    path_max = _limit(probe, "PC_PATH_MAX", 4096)
    name = len(os.fsencode(p.name)) + extra
    if name > name_max:
        raise OutputError(
            f"{str(p)[:200]}: file name too long ({name - extra} bytes; this filesystem holds "
            f"{name_max - extra} at most, counting the temporary file's)"
        )
    if full >= path_max:
        raise OutputError(f"{str(p)[:200]}: path too long ({full - extra} bytes)")


def check_output_path(path: str | os.PathLike[str], *, force: bool, what: str = "output") -> Path:
    """Fail early (before any work) if an output cannot be written."""
    p = Path(path)
    check_name_length(p)
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


# The files atomic_write has made while a journal is open (record_writes): the command line
# removes them all when a run ends in an error or an interrupt after writing began.
_JOURNAL: ContextVar[list[Path] | None] = ContextVar("codeaudit_written", default=None)


@contextlib.contextmanager
def record_writes() -> Iterator[list[Path]]:
    """Collect the path of every file :func:`atomic_write` puts in place inside the block."""
    written: list[Path] = []
    token = _JOURNAL.set(written)
    try:
        yield written
    finally:
        _JOURNAL.reset(token)


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
        journal = _JOURNAL.get()
        if journal is not None:
            journal.append(target)
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


# -- one run's files: no output may be an input or another output --------------------------------

# Files of this run that the runner does not know from the check (the report files the command
# line writes, and the files Markdown reports write beside them: a pattern such as
# "DIR/report.*.png"), as (kind, what, path) with kind "input", "output" or "pattern".
_ALSO: ContextVar[tuple[tuple[str, str, str], ...]] = ContextVar("codeaudit_run_files", default=())


@contextlib.contextmanager
def also_in_this_run(files: Sequence[tuple[str, str, str]]) -> Iterator[None]:
    """Add (kind, what, path) entries to the files :func:`refuse_same_files` compares."""
    token = _ALSO.set(_ALSO.get() + tuple(files))
    try:
        yield
    finally:
        _ALSO.reset(token)


def _identity(path: str) -> tuple[str, tuple[int, int] | None]:
    """Where a path leads (symlinks and ``..`` resolved) and, for an existing file, its
    (st_dev, st_ino): two hard links to one file are the same file."""
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError:
        return real, None
    return real, (info.st_dev, info.st_ino)


def refuse_same_files(
    inputs: Sequence[tuple[str, str]], outputs: Sequence[tuple[str, str]]
) -> None:
    """Before any work: refuse an output (``(what, path)``) that is one of the inputs or
    another output of the same run, whichever way it names it (a symlink, ``..``, a hard link),
    or that matches the figure files a Markdown report writes beside itself. The entries of
    :func:`also_in_this_run` take part."""
    import fnmatch

    extra = _ALSO.get()
    ins = list(inputs) + [(w, p) for kind, w, p in extra if kind == "input"]
    outs = list(outputs) + [(w, p) for kind, w, p in extra if kind == "output"]
    patterns = [(w, p) for kind, w, p in extra if kind == "pattern"]
    seen: dict[Any, tuple[str, str, str]] = {}  # identity -> (kind, what, path)

    def remember(kind: str, what: str, path: str, keys: tuple[Any, ...]) -> None:
        for key in keys:
            if key is not None:
                seen.setdefault(key, (kind, what, path))

    for what, path in ins:
        if path:
            remember("input", what, path, _identity(path))
    for what, path in outs:
        if not path:
            continue
        keys = _identity(path)
        clash = next((seen[k] for k in keys if k is not None and k in seen), None)
        if clash is not None and clash != ("output", what, path):
            kind, other, other_path = clash
            if kind == "input":
                raise OutputError(
                    f"{path}: {what} would overwrite the input {other} {other_path} "
                    "(refused before any work, even with --force)"
                )
            raise OutputError(f"{path}: {what} is the same file as the {other} {other_path}")
        for pattern_what, pattern in patterns:
            if fnmatch.fnmatchcase(keys[0], pattern):
                raise OutputError(f"{path}: {what} would clash with the {pattern_what} {pattern}")
        remember("output", what, path, keys)
