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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hipback.ingest.errors import RecordingFileError

FloatArray = NDArray[np.float64]


@dataclass
class TextFile:
    """A text file split into lines (line ``i`` of the list is line ``i + 1`` of the file)."""

    path: Path
    lines: list[str]
    ends_with_newline: bool


@dataclass
class Table:
    """Numeric columns of a file's data rows (NaN where a cell was empty)."""

    columns: dict[str, FloatArray]
    line_no: NDArray[np.int64]  # 1-based file line of each row
    rows_read: int  # data rows seen, including a truncated last line
    truncated: bool  # the last line was cut off and ignored


#: rows converted to numbers at a time (bounds the parser's temporary strings to a few tens of MB)
CHUNK_ROWS = 65_536

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
    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n")
    ends = text.endswith("\n")
    lines = text.split("\n")
    if ends:
        lines.pop()
    return TextFile(Path(path), lines, ends)


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
    """
    path = tf.path
    rows: list[str] = []
    numbers: list[int] = []
    for i in range(start, len(tf.lines)):
        line = tf.lines[i]
        if line.strip():
            rows.append(line)
            numbers.append(i + 1)
    rows_read = len(rows)
    truncated = False
    unterminated = bool(rows) and not tf.ends_with_newline and numbers[-1] == len(tf.lines)
    if unterminated and strict_last_line:
        rows.pop()
        numbers.pop()
        truncated = True
        unterminated = False

    expected = n_fields - 1
    if trailing_sep_optional and rows and rows[0].rstrip(" ").endswith(sep):
        # the file ends every row with a separator: remove it (a row without one then has a field too few)
        cut = len(sep)
        rows = [r[:-cut] if r.endswith(sep) else r for r in (r.rstrip(" ") for r in rows)]
    counts = np.fromiter((r.count(sep) for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(counts != expected)
    if bad.size:
        k = int(bad[0])
        if unterminated and k == len(rows) - 1:
            rows.pop()
            numbers.pop()
            truncated = True
            unterminated = False
        else:
            raise RecordingFileError(
                path,
                f"this row has {counts[k] + 1} fields but the header has {n_fields} columns.",
                numbers[k],
            )
    if not rows:
        raise RecordingFileError(path, "the file has a header but no data rows.")

    n = len(rows)
    parts: dict[str, list[FloatArray]] = {name: [] for name in wanted}
    drop_last = False
    # converted CHUNK_ROWS rows at a time: splitting a whole file into one string per field at once held
    # about 1 KB per row (a two-hour file of 720,000 rows peaked at 840 MB), a day's recording far more
    for c0 in range(0, n, CHUNK_ROWS):
        chunk = rows[c0 : c0 + CHUNK_ROWS]
        joined = sep.join(chunk)
        if decimal_comma:
            joined = joined.replace(",", ".")
        tokens = joined.split(sep)
        del joined
        m = len(chunk)
        for name, j in wanted.items():
            cells = tokens[j::n_fields]
            try:
                col = np.fromiter(map(float, cells), dtype=np.float64, count=m)
            except ValueError:
                col, bad = _convert_slow(cells)
                if bad is not None:
                    bad_row = c0 + bad
                    if unterminated and bad_row == n - 1:
                        drop_last = True
                    else:
                        value = cells[bad].strip()
                        shown = value if len(value) <= 20 else value[:20] + "..."
                        raise RecordingFileError(
                            path, f"the value '{shown}' in column {name} is not a number.", numbers[bad_row]
                        ) from None
            parts[name].append(col)
        del tokens
    columns: dict[str, FloatArray] = {
        name: cols[0] if len(cols) == 1 else np.concatenate(cols) for name, cols in parts.items()
    }
    if drop_last:
        truncated = True
        n -= 1
        numbers.pop()
        columns = {name: col[:n] for name, col in columns.items()}
        if n == 0:
            raise RecordingFileError(path, "the file has a header but no complete data rows.")
    for name, col in columns.items():
        inf = np.flatnonzero(np.isinf(col))
        if inf.size:
            raise RecordingFileError(path, f"the value in column {name} is infinite.", numbers[int(inf[0])])
    return Table(columns, np.asarray(numbers, dtype=np.int64), rows_read, truncated)


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
