"""The live view's output guard (:mod:`hipback.ingest.terminal`): a closed pipe closes it once, quietly."""

from __future__ import annotations

import io
import os

from hipback.ingest.terminal import GuardedOutput


def test_a_closed_pipe_closes_the_output_once_and_later_writes_are_dropped() -> None:
    read, write = os.pipe()
    stream = os.fdopen(write, "w", buffering=1)
    calls: list[OSError] = []
    out = GuardedOutput(stream, on_closed=calls.append)
    out.write("first line\n")
    assert os.read(read, 100) == b"first line\n" and not out.is_closed
    os.close(read)
    out.write("second line\n")  # the reader is gone: BrokenPipeError inside, nothing raised here
    out.write("third line\n")
    out.flush()
    assert out.is_closed and len(calls) == 1 and isinstance(calls[0], BrokenPipeError)
    assert out.write("more\n") == 5 and not out.isatty()
    # the descriptor now writes to the null device: what the stream still buffered cannot fail again
    os.write(stream.fileno(), b"dropped")
    stream.write("buffered\n")
    stream.flush()
    stream.close()


def test_an_open_stream_passes_everything_through() -> None:
    buf = io.StringIO()
    out = GuardedOutput(buf, on_closed=lambda exc: (_ for _ in ()).throw(AssertionError(exc)))
    out.write("a")
    out.write("b\n")
    out.flush()
    assert buf.getvalue() == "ab\n" and not out.is_closed and out.encoding == "utf-8"
