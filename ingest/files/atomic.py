"""Crash-safe file writes: a temporary file in the same folder, flushed to disk, then renamed over the target.

A reader therefore sees either the old file or the complete new one, never a half-written file; a failed write
removes its temporary file. New files are created with mode 0600 and new folders 0700 whatever the umask
(recordings and everything derived from them are health data). :func:`atomic_write_many` replaces a set of
files together: all are written and flushed first, then renamed in one step that Ctrl-C cannot split.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_file(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, mode 0600) to ``path`` and flush it to disk, without rename.

    Used inside a private temporary folder that is renamed as a whole.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _stage(path: Path, text: str) -> str:
    """``text`` in a new 0600 temporary file next to ``path``, flushed to disk; returns its name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` atomically (temp file + fsync + rename); the file is 0600."""
    atomic_write_many({Path(path): text})


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM (Ctrl-C, kill) while the block runs; one that arrived meanwhile takes
    effect right after it. For steps that must not be cut in two (renaming a set of result files)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def atomic_write_many(contents: dict[Path, str]) -> list[Path]:
    """Replace several files together: each is written to a temporary file and flushed first, then all are
    renamed into place with Ctrl-C held back, so a reader (or an interrupted run) finds either all the old
    files or all the new ones. Returns the paths in order."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, text in contents.items():
            staged.append((_stage(Path(path), text), Path(path)))
        with interrupts_deferred():
            for tmp, path in staged:
                os.replace(tmp, path)
            staged = []
            for folder in {path.parent for path in contents}:
                fsync_dir(Path(folder))
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return [Path(p) for p in contents]


def private_mkdir(folder: Path | str) -> Path:
    """Create ``folder`` (and missing parents) with mode 0700 whatever the umask; an existing folder is left
    as it is (the user chose its mode)."""
    folder = Path(folder)
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=0o700)
            os.chmod(d, 0o700)  # the umask may have taken bits; never more than 0700
    return folder


def check_output_folder(out: Path | str) -> Path:
    """Refuse, before any work, an output folder that is a file or lies under a file (one sentence)."""
    from hipback.ingest.errors import ConfigError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder; give --out a folder path.")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"cannot create the output folder {out}: {parent} is a file, not a folder.")
            break
    return out


def ensure_output_folder(out: Path | str) -> Path:
    """Create the output folder ``out`` if needed; a plain error if it is a file or cannot be made."""
    from hipback.ingest.errors import ConfigError

    out = check_output_folder(out)
    try:
        private_mkdir(out)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ConfigError(f"cannot create the output folder {out}: {reason}.") from None
    return out
