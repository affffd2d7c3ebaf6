"""Reading a delimited text file into numeric columns, with file and line numbers for every error.

Used by all three dialects. Policy for damaged files (see docs/recording-format.md):

- binary content (a NUL byte), an empty file, a row with the wrong number of fields, a value that is not a
  number or is infinite raise :class:`~hipback.ingest.errors.RecordingFileError` naming the file and the
  1-based line;
- a **truncated final line** (the file does not end with a newline and its last line is incomplete or not
  numeric, the mark of a recording cut off mid-write) is ignored and reported (``Table.truncated``);
  everything before it is kept. With ``strict_last_line`` (the hipback format, whose writer always ends lines
  with a newline) an unterminated last line is always treated as truncated.
- blank lines are skipped.
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np
from numpy.typing import NDArray

from hipback.ingest.errors import RecordingFileError

FloatArray = NDArray[np.float64]


class Lines(Sequence[str]):
    """The lines of a text (line ``i`` is line ``i + 1`` of the file), kept as the text and the lines' start
    and end offsets rather than as one string object per line: a string object costs about 50 bytes beyond
    its characters, and a day's recording has millions of lines. A line's string is made when it is read;
    :meth:`block` makes a run of them at once."""

    def __init__(self, text: str, starts: NDArray[np.int64], ends: NDArray[np.int64]) -> None:
        self._text = text
        self._starts = starts
        self._ends = ends

    @classmethod
    def of(cls, text: str, ends_with_newline: bool, nl: NDArray[np.int64] | None = None) -> Lines:
        """The lines of ``text`` as ``text.split("\\n")`` gives them, without the empty one after a final
        newline. ``nl``: the offsets of its newlines when already known (:func:`_newlines`)."""
        if nl is None:
            found, pos = [], text.find("\n")
            while pos >= 0:
                found.append(pos)
                pos = text.find("\n", pos + 1)
            nl = np.array(found, dtype=np.int64)
        starts = np.concatenate([np.zeros(1, dtype=np.int64), nl + 1])
        ends = np.concatenate([nl, np.array([len(text)], dtype=np.int64)])
        if ends_with_newline:
            starts, ends = starts[:-1], ends[:-1]
        return cls(text, starts, ends)

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            a, b, step = i.indices(len(self))
            return self.block(a, b) if step == 1 else [self[j] for j in range(a, b, step)]
        n = len(self)
        if not -n <= i < n:
            raise IndexError("line index out of range")
        i %= n
        return self._text[int(self._starts[i]) : int(self._ends[i])]

    def block(self, a: int, b: int) -> list[str]:
        """Lines ``a..b-1`` (0-based, clipped to the text) as strings."""
        a, b = max(a, 0), min(b, len(self))
        if a >= b:
            return []
        return self._text[int(self._starts[a]) : int(self._ends[b - 1])].split("\n")

    def __iter__(self) -> Iterator[str]:
        for a in range(0, len(self), CHUNK_ROWS):
            yield from self.block(a, a + CHUNK_ROWS)


@dataclass
class TextFile:
    """A text file split into lines (line ``i`` of ``lines`` is line ``i + 1`` of the file)."""

    path: Path
    lines: Sequence[str]
    ends_with_newline: bool


@dataclass
class Table:
    """Numeric columns of a file's data rows (NaN where a cell was empty)."""

    columns: dict[str, FloatArray]
    line_no: NDArray[np.int64]  # 1-based file line of each row
    rows_read: int  # data rows seen, including a truncated last line
    truncated: bool  # the last line was cut off and ignored


#: lines (rows) parsed at a time: bounds the parser's temporary strings, and a chunk's cells stay in the
#: processor's cache while they are converted (8192 rows: twice as fast as 65,536 or the whole file at once)
CHUNK_ROWS = 8192

#: largest recording file read (bytes): a day at 120 Hz with every column is well below it; a device such as
#: /dev/zero given as a file would otherwise be read until memory runs out
MAX_FILE_BYTES = 4 * 2**30


def _read_bounded(path: Path) -> bytes:
    """The file's bytes (a pipe is read to its end), refusing devices and anything above MAX_FILE_BYTES."""
    import stat

    too_big = f"the file is larger than {MAX_FILE_BYTES // 2**30} GiB; split it."
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            raise RecordingFileError(path, "this is a device, not a recording file.")
        if stat.S_ISREG(st.st_mode):
            if st.st_size > MAX_FILE_BYTES:
                raise RecordingFileError(path, too_big)
            return fh.read()
        # a pipe: read in pieces (read(n) would reserve n bytes at once), waiting in short selects: a Ctrl-C
        # may be delivered to another thread of the process (numpy's), which does not interrupt a blocking
        # read here; between selects the interpreter runs the pending signal handler
        chunks, total = [], 0
        fd = fh.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 24)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_FILE_BYTES:
                raise RecordingFileError(path, too_big)
            chunks.append(chunk)
    return b"".join(chunks)


def read_text(path: Path) -> TextFile:
    """Read ``path`` as text (UTF-8, undecodable bytes replaced), refusing binary and empty files."""
    try:
        data = _read_bounded(Path(path))
    except FileNotFoundError:
        raise RecordingFileError(path, "the file does not exist.") from None
    except IsADirectoryError:
        raise RecordingFileError(path, "this is a folder, not a recording file.") from None
    except OSError as exc:
        raise RecordingFileError(path, f"the file cannot be read ({exc.strerror}).") from None
    if not data.strip():
        raise RecordingFileError(path, "the file is empty.")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise RecordingFileError(
            path, "the file contains binary data (a NUL byte), not text.", data.count(b"\n", 0, nul) + 1
        )
    if data.isascii():  # (every export hipback reads: the newlines found in the bytes, block by block)
        if b"\r\n" in data:
            data = data.replace(b"\r\n", b"\n")
        nl = _newlines(data)
        text = data.decode("ascii")
        del data
        ends = text.endswith("\n")
        return TextFile(Path(path), Lines.of(text, ends, nl), ends)
    text = data.decode("utf-8", errors="replace")
    del data
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n")
    ends = text.endswith("\n")
    return TextFile(Path(path), Lines.of(text, ends), ends)


def _newlines(data: bytes, block: int = 1 << 22) -> NDArray[np.int64]:
    """Offsets of the newline bytes of ``data``, found 4 MiB at a time (a comparison over the whole file
    would hold a byte per byte of it)."""
    view = memoryview(data)
    parts = [np.flatnonzero(np.frombuffer(view[a : a + block], dtype=np.uint8) == 10) + a
             for a in range(0, len(data), block)]
    return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, dtype=np.int64)


def detect_separator(header: str) -> str:
    """The most frequent of ``,`` ``;`` and tab in a header row."""
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    return max(counts, key=lambda s: counts[s])


def split_header(header: str, sep: str) -> list[str]:
    return [name.strip().strip('"') for name in header.split(sep)]


def parse_rows(
    tf: TextFile,
    start: int,
    sep: str,
    n_fields: int,
    wanted: dict[str, int],
    *,
    strict_last_line: bool = False,
    decimal_comma: bool = False,
    trailing_sep_optional: bool = False,
) -> Table:
    """Parse lines ``start..`` (0-based index into ``tf.lines``) as rows of ``n_fields`` fields.

    ``wanted`` maps a column name to its field index; only those are converted to float64.
    ``trailing_sep_optional`` (Movella DOT, which ends rows with ``", "``): when the first row ends with a
    separator, every row's final separator is removed (``n_fields`` must not count the header's trailing
    empty name).

    The rows are read :data:`CHUNK_ROWS` lines at a time, twice: first every row's number of fields is
    checked (so a row with a field too many or too few is reported before any value of another row), then
    the wanted values are converted. Only a chunk's strings exist at a time, whatever the file's length.
    """
    path = tf.path
    lines = tf.lines
    n_lines = len(lines)
    block = lines.block if isinstance(lines, Lines) else lambda a, b: list(lines[a:b])
    # the last line is a row that the file does not end after: cut off mid-write, or a last row without
    # its newline
    unterminated = n_lines > start and not tf.ends_with_newline and bool(lines[n_lines - 1].strip())
    truncated = False
    end = n_lines  # lines [start, end) hold the rows
    rows_read = 0
    if unterminated and strict_last_line:
        rows_read, end = 1, n_lines - 1
        truncated, unterminated = True, False
    expected = n_fields - 1
    cut = 0  # characters of a final separator removed from every row (trailing_sep_optional)
    numbers_parts: list[NDArray[np.int64]] = []
    first_row = True
    for c0 in range(start, end, CHUNK_ROWS):
        chunk = block(c0, min(c0 + CHUNK_ROWS, end))
        keep = [k for k, line in enumerate(chunk) if line.strip()]
        if not keep:
            continue
        rows = [chunk[k] for k in keep]
        if first_row:
            first_row = False
            if trailing_sep_optional and rows[0].rstrip(" ").endswith(sep):
                cut = len(sep)
        if cut:
            rows = _cut_trailing(rows, sep)
        rows_read += len(rows)
        numbers = np.asarray(keep, dtype=np.int64) + (c0 + 1)
        counts = np.fromiter((r.count(sep) for r in rows), dtype=np.int64, count=len(rows))
        bad = np.flatnonzero(counts != expected)
        if bad.size:
            k = int(bad[0])
            if unterminated and int(numbers[k]) == n_lines:
                numbers = numbers[:k]
                truncated, unterminated = True, False
                end = n_lines - 1
            else:
                raise RecordingFileError(
                    path,
                    f"this row has {counts[k] + 1} fields but the header has {n_fields} columns.",
                    int(numbers[k]),
                )
        numbers_parts.append(numbers)
    line_no = np.concatenate(numbers_parts) if numbers_parts else np.zeros(0, dtype=np.int64)
    n = len(line_no)
    if n == 0:
        raise RecordingFileError(path, "the file has a header but no data rows.")

    parts: dict[str, list[FloatArray]] = {name: [] for name in wanted}
    columns_in_order = sorted(wanted.items(), key=lambda item: item[1])  # file order (errors: the leftmost)
    drop_last = False
    # converted CHUNK_ROWS rows at a time: splitting a whole file into one string per field at once held
    # about 1 KB per row (a two-hour file of 720,000 rows peaked at 840 MB), a day's recording far more
    for r0 in range(0, n, CHUNK_ROWS):
        nums = line_no[r0 : r0 + CHUNK_ROWS]
        first, last = int(nums[0]), int(nums[-1])
        chunk = block(first - 1, last)
        rows = chunk if last - first + 1 == len(nums) else [chunk[k] for k in (nums - first).tolist()]
        if cut:
            rows = _cut_trailing(rows, sep)
        joined = sep.join(rows)
        del chunk, rows
        if decimal_comma:
            joined = joined.replace(",", ".")
        tokens = joined.split(sep)
        del joined
        m = len(nums)
        first_bad: tuple[int, int, str, str] | None = None  # (row in the chunk, field, column, cell)
        for name, j in columns_in_order:
            cells = tokens[j::n_fields]
            try:
                col = np.fromiter(map(float, cells), dtype=np.float64, count=m)
            except ValueError:
                col, bad_k = _convert_slow(cells)
                if bad_k is not None and (first_bad is None or (bad_k, j) < first_bad[:2]):
                    first_bad = (bad_k, j, name, cells[bad_k])
            parts[name].append(col)
        del tokens
        if first_bad is not None:  # the first row with a value that is not a number, its leftmost such value
            bad_k, _, name, cell = first_bad
            bad_row = r0 + bad_k
            if unterminated and bad_row == n - 1:
                drop_last = True
            else:
                value = cell.strip()
                shown = value if len(value) <= 20 else value[:20] + "..."
                raise RecordingFileError(
                    path, f"the value '{shown}' in column {name} is not a number.", int(line_no[bad_row])
                )
    columns: dict[str, FloatArray] = {
        name: cols[0] if len(cols) == 1 else np.concatenate(cols) for name, cols in parts.items()
    }
    if drop_last:
        truncated = True
        n -= 1
        line_no = line_no[:n]
        columns = {name: col[:n] for name, col in columns.items()}
        if n == 0:
            raise RecordingFileError(path, "the file has a header but no complete data rows.")
    infinite = [(int(np.flatnonzero(np.isinf(columns[name]))[0]), j, name)
                for name, j in columns_in_order if np.isinf(columns[name]).any()]
    if infinite:  # the first row with an infinite value, its leftmost one
        k, _, name = min(infinite)
        raise RecordingFileError(path, f"the value in column {name} is infinite.", int(line_no[k]))
    return Table(columns, line_no, rows_read, truncated)


def _cut_trailing(rows: list[str], sep: str) -> list[str]:
    """Every row without its final separator (trailing spaces first), as a Movella DOT export ends its rows;
    a row without one keeps its fields (and then has one too few)."""
    cut = len(sep)
    return [r[:-cut] if r.endswith(sep) else r for r in (r.rstrip(" ") for r in rows)]


def _convert_slow(cells: list[str]) -> tuple[FloatArray, int | None]:
    """Cell by cell: empty cells become NaN; returns the first row that is not a number (or None)."""
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        s = cell.strip()
        if not s:
            out[i] = np.nan
            continue
        try:
            out[i] = float(s)
        except ValueError:
            return out, i
    return out, None
