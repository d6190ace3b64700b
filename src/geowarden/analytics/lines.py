"""Lines of a (possibly gzipped) text file as Arrow tables ``(line, text)``, fast.

The file is read in blocks of ``BLOCK`` bytes; each block is cut after its last line break,
split with numpy and handed to Arrow without copying (the offsets point into the block). Line
breaks are ``\\n``, ``\\r\\n`` and a lone ``\\r``, as in Python's text mode (the reference
reader ``geowarden.events``) and Hadoop's line reader (Spark), so line numbers agree with both.
A UTF-8 byte-order mark at the start of the file is dropped (as the reference reader does). A
block that is not valid UTF-8 is decoded with replacement characters (as the reference reader
does) instead of failing the file. The text of each line keeps its line break; JSON parsers
treat it as whitespace.
"""

from __future__ import annotations

import gzip as gz
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

BLOCK = 64 * 1024 * 1024
BATCH_ROWS = 32_768  # rows per Arrow record batch (the unit DuckDB scans in parallel)
_LF, _CR = 10, 13
_BOM = b"\xef\xbb\xbf"


def read_lines(path: Path, *, gzip: bool = False, block: int = BLOCK) -> Iterator[Any]:
    """Yield ``pyarrow.Table``\\ s of ``line`` (int64, 1-based) and ``text`` (string)."""
    first = 1
    carry = b""
    with _open(path, gzip) as fh:
        while True:
            data = fh.read(block)
            if first == 1 and not carry and data.startswith(_BOM):
                data = data[len(_BOM) :]  # a byte-order mark is not part of the first line
            eof = not data
            buf = carry + data if carry else data
            if not buf:
                return
            cut = len(buf) if eof else _last_break(buf)
            if cut == 0:  # no complete line yet (a very long line): read on
                carry = buf
                continue
            piece, carry = buf[:cut], buf[cut:]
            table = _table(piece, first)
            first += table.num_rows
            yield table
            if eof:
                return


def _open(path: Path, gzip: bool) -> IO[bytes]:
    if gzip:
        return cast("IO[bytes]", gz.open(path, "rb"))
    return path.open("rb")


def _last_break(buf: bytes) -> int:
    """The end (exclusive) of the last complete line in ``buf``, or 0. A ``\\r`` in the last byte
    may be half of a ``\\r\\n``, so the last byte is never taken as a break on its own."""
    n = len(buf)
    cut = max(buf.rfind(b"\n", 0, n - 1), buf.rfind(b"\r", 0, n - 1)) + 1
    if cut and buf[cut - 1] == _CR and cut < n and buf[cut] == _LF:
        cut += 1
    return cut


def _table(piece: bytes, first: int) -> Any:
    import pyarrow as pa  # noqa: PLC0415

    try:
        piece.decode("utf-8")
    except UnicodeDecodeError:
        piece = piece.decode("utf-8", "replace").encode("utf-8")
    arr = np.frombuffer(piece, dtype=np.uint8)
    lf = arr == _LF
    cr = arr == _CR
    crlf = np.zeros(len(arr), dtype=bool)
    crlf[:-1] = cr[:-1] & lf[1:]
    ends = np.flatnonzero(lf | (cr & ~crlf)) + 1
    if not len(ends) or ends[-1] != len(arr):
        ends = np.append(ends, len(arr))
    offsets = np.empty(len(ends) + 1, dtype=np.int32 if len(arr) < 2**31 else np.int64)
    offsets[0] = 0
    offsets[1:] = ends
    n = len(ends)
    kind = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    text = pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(piece)])
    line = pa.array(np.arange(first, first + n, dtype=np.int64))
    table = pa.table({"line": line, "text": text})
    return pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS))
