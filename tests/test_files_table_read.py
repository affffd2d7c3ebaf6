"""``read_text`` on what a user may name as a recording: a folder, a device, a pipe (``<(...)``), a file too
large, binary content, a text of several 4 MiB blocks; the sentence of every refusal is checked after the
file name (the file name itself may contain any word)."""

from __future__ import annotations

import array
import fcntl
import os
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files import read_sensor_file, table
from tests.data_gen import write_movella_dot


def _refusal(path: Path) -> tuple[int | None, str]:
    with pytest.raises(RecordingFileError) as info:
        table.read_text(path)
    err = info.value
    where = f"{path}, line {err.line}: " if err.line is not None else f"{path}: "
    assert str(err).startswith(where), str(err)
    return err.line, str(err)[len(where) :]


def test_a_folder_a_device_and_an_unreadable_path_are_refused(tmp_path: Path) -> None:
    assert _refusal(tmp_path) == (None, "this is a folder, not a recording file.")
    assert _refusal(Path("/dev/null")) == (None, "this is a device, not a recording file.")
    (tmp_path / "f.csv").write_text("a\n")
    assert _refusal(tmp_path / "f.csv" / "g.csv") == (None, "the file cannot be read (Not a directory).")


def test_empty_and_binary_files_are_refused_at_the_first_nul_byte(tmp_path: Path) -> None:
    f = tmp_path / "f.csv"
    f.write_bytes(b" \n\n")
    assert _refusal(f) == (None, "the file is empty.")
    binary = "the file contains binary data (a NUL byte), not text."
    f.write_bytes(b"\x00\x01a,b\n1,2\n")
    assert _refusal(f) == (1, binary)
    f.write_bytes(b"\na,b\n1,\x002\n3,4\n5,\x00\n")  # a first blank line, NUL bytes on lines 3 and 5
    assert _refusal(f) == (3, binary)


def test_a_text_of_several_blocks_keeps_every_line(tmp_path: Path) -> None:
    """Newlines are found in the bytes 4 MiB at a time: a 9 MiB text has the lines of its split text."""
    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 120, size=160_000)
    text = "\n".join("x" * int(k) + str(i) for i, k in enumerate(lengths)) + "\n"
    assert len(text) > 2 * (1 << 22)
    f = tmp_path / "big.csv"
    f.write_text(text, encoding="ascii")
    lines = table.read_text(f).lines
    expected = text.split("\n")[:-1]
    assert len(lines) == len(expected)
    assert list(lines) == expected


def test_a_file_above_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    f = tmp_path / "huge.csv"
    with open(f, "wb") as fh:  # sparse: no disk used
        fh.truncate(table.MAX_FILE_BYTES + 1)
    assert _refusal(f) == (None, "the file is larger than 4 GiB; split it.")


def test_the_limit_is_inclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "f.csv"
    f.write_bytes(b"a,b\n1,2\n")
    monkeypatch.setattr(table, "MAX_FILE_BYTES", 8)
    assert list(table.read_text(f).lines) == ["a,b", "1,2"]
    monkeypatch.setattr(table, "MAX_FILE_BYTES", 7)
    line, sentence = _refusal(f)
    assert line is None and sentence.startswith("the file is larger than ")


def _pending(fd: int) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


def _writer(fifo: Path, pieces: list[bytes], pause: float = 0.0) -> threading.Thread:
    """Write ``pieces`` into ``fifo``, each once the reader has taken the one before (so that each is a read
    of its own), after ``pause`` seconds of silence."""

    def run() -> None:
        with open(fifo, "wb", buffering=0) as fh:
            time.sleep(pause)
            for piece in pieces:
                fh.write(piece)
                while _pending(fh.fileno()):
                    time.sleep(0.001)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _pieces(data: bytes, n: int) -> list[bytes]:
    cuts = np.linspace(0, len(data), n + 1).astype(int)
    return [data[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def test_a_pipe_is_read_to_its_end_in_pieces(tmp_path: Path) -> None:
    f = tmp_path / "dot.csv"
    write_movella_dot(f, 200)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    writer = _writer(fifo, _pieces(f.read_bytes(), 5), pause=0.3)  # a writer slow to start, then in 5 pieces
    piped = read_sensor_file(fifo, "pelvis", dialect="movella_dot")
    writer.join(5)
    whole = read_sensor_file(f, "pelvis")
    assert len(piped) == len(whole) == 199
    for name in ("t", "quat", "acc", "gyr", "mag"):
        np.testing.assert_array_equal(getattr(piped, name), getattr(whole, name))


def test_a_pipe_above_the_limit_is_refused_even_in_small_pieces(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(100))
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    monkeypatch.setattr(table, "MAX_FILE_BYTES", len(data))  # exactly the limit: read
    writer = _writer(fifo, _pieces(data, 4))
    assert "\n".join(table.read_text(fifo).lines) + "\n" == data.decode()
    writer.join(5)
    monkeypatch.setattr(table, "MAX_FILE_BYTES", len(data) - 1)  # a byte more: refused, no piece above it
    writer = _writer(fifo, _pieces(data, 4))
    line, sentence = _refusal(fifo)
    writer.join(5)
    assert line is None and sentence.startswith("the file is larger than ")
