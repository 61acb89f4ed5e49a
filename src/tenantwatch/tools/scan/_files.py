"""Opening stored trace files: paths or ``-`` (stdin), gzip and zstd, and the collector file exporter's framings.

The collector's ``file`` exporter writes ``format: json`` as one OTLP/JSON document per line, and ``format: proto``
(or anything compressed with ``compression: zstd``) as records each preceded by its length (4 bytes, unsigned, big
endian); with ``compression: zstd`` each record is its own zstd frame, or, with the exporter's native compression,
the whole file is one zstd stream. :func:`open_input` undoes the outer layer (``.gz`` by its magic bytes, a zstd
stream) and says which framing follows; :func:`lines` and :func:`frames` read it one record at a time, so memory is
bounded by the largest record, never by the file.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Final, Literal

__all__ = [
    "MAX_RECORD_BYTES",
    "Input",
    "Record",
    "ZstdUnavailableError",
    "decompress_zstd",
    "frames",
    "lines",
    "open_input",
]

MAX_RECORD_BYTES: Final = 256 * 1024 * 1024
"""A longer line or length prefix is reported (and a line skipped) instead of being held in memory."""

_GZIP: Final = b"\x1f\x8b"
_ZSTD: Final = b"\x28\xb5\x2f\xfd"

Framing = Literal["lines", "frames", "empty"]


class ZstdUnavailableError(RuntimeError):
    """A zstd-compressed input without the zstd extra installed."""

    def __init__(self, source: str) -> None:
        super().__init__(
            f"{source} is zstd-compressed: pip install 'tenantwatch[zstd]' (the zstandard package) to read it "
            "(the collector's file exporter writes one zstd frame per record inside its own framing, which the zstd "
            "command cannot unpack)"
        )


def _zstandard(source: str) -> Any:
    try:
        import zstandard
    except ImportError:
        raise ZstdUnavailableError(source) from None
    return zstandard


def decompress_zstd(data: bytes, source: str) -> bytes:
    """One zstd frame (a record of the legacy ``compression: zstd``), bounded by :data:`MAX_RECORD_BYTES`."""
    zstandard = _zstandard(source)
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
    out = reader.read(MAX_RECORD_BYTES + 1)
    if len(out) > MAX_RECORD_BYTES:
        raise ValueError(f"a zstd record decompresses to more than {MAX_RECORD_BYTES} bytes")
    return bytes(out)


class _Counting(io.RawIOBase):
    """Counts the bytes read from the underlying (possibly compressed) file, for the progress line."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


class _Read1(io.RawIOBase):
    """A decompressing reader read with ``read1``: each read returns what one step decoded, so a stream cut short
    raises only once everything before the cut has been handed on (a plain buffered read would lose it)."""

    def __init__(self, decoder: Any) -> None:
        self._decoder = decoder

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._decoder.read1(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


@dataclass
class Input:
    """An opened input: the decoded byte stream, its framing, and how far into the file reading has got."""

    name: str
    stream: io.BufferedReader[Any]
    framing: Framing
    size: int | None
    counter: _Counting

    @property
    def position(self) -> int:
        return self.counter.count


@contextmanager
def open_input(path: str, stdin: IO[bytes] | None = None) -> Iterator[Input]:
    """Open ``path`` (``-``: ``stdin``, default the process's), undo gzip/zstd stream compression, sniff the framing."""
    if path == "-":
        raw: IO[bytes] = stdin if stdin is not None else sys.stdin.buffer
        size = None
        close = False
    else:
        raw = open(path, "rb")  # noqa: SIM115  (closed in the finally below)
        close = True
        try:
            size = os.fstat(raw.fileno()).st_size
        except OSError:
            size = None
    try:
        counter = _Counting(raw)
        stream: io.BufferedReader[Any] = io.BufferedReader(counter, buffer_size=1 << 16)
        head = stream.peek(4)[:4]
        if head.startswith(_GZIP):
            stream = io.BufferedReader(_Read1(gzip.GzipFile(fileobj=stream, mode="rb")), buffer_size=1 << 16)
        elif head.startswith(_ZSTD):
            zstandard = _zstandard("-" if path == "-" else path)
            decoder = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
            stream = io.BufferedReader(_Read1(decoder), buffer_size=1 << 16)
        yield Input(path if path != "-" else "<stdin>", stream, _framing(stream), size, counter)
    finally:
        if close:
            raw.close()


def _framing(stream: io.BufferedReader[Any]) -> Framing:
    """JSON lines start (after blank space) with ``{``; anything else is length-prefixed records."""
    while True:
        head = stream.peek(1)
        if not head:
            return "empty"
        stripped = head.lstrip(b" \t\r\n")
        if stripped:
            return "lines" if stripped[:1] == b"{" else "frames"
        stream.read(len(head))


@dataclass(frozen=True, slots=True)
class Record:
    """One line or length-prefixed record: its number (1-based), offset and bytes (``data`` is ``None`` when it was
    too long to hold; ``error`` then says so)."""

    number: int
    offset: int
    data: bytes | None
    error: str | None = None


def lines(stream: io.BufferedReader[Any]) -> Iterator[Record]:
    """Non-blank lines, one at a time; an overlong line is skipped to its end and reported."""
    number, offset = 0, 0
    while True:
        line = stream.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        number += 1
        start = offset
        offset += len(line)
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the line without holding it
                rest = stream.readline(1 << 20)
                offset += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            yield Record(number, start, None, f"longer than {MAX_RECORD_BYTES} bytes (skipped)")
            continue
        if line.strip():
            yield Record(number, start, line)


def frames(stream: io.BufferedReader[Any]) -> Iterator[Record]:
    """Length-prefixed records. A length beyond :data:`MAX_RECORD_BYTES` or a short read means the framing is lost:
    that is reported and the rest of the input is skipped (there is no way to find the next record)."""
    number, offset = 0, 0
    while True:
        prefix = stream.read(4)
        if not prefix:
            return
        number += 1
        if len(prefix) < 4:
            yield Record(number, offset, None, f"truncated length prefix ({len(prefix)} of 4 bytes) at the end")
            return
        length = int.from_bytes(prefix, "big")
        if length > MAX_RECORD_BYTES:
            yield Record(
                number,
                offset,
                None,
                f"length prefix {length} exceeds {MAX_RECORD_BYTES} bytes: not a file exporter record "
                "(binary garbage or a wrong format); the rest of this input is skipped",
            )
            return
        data = stream.read(length)
        if len(data) < length:
            yield Record(number, offset, None, f"truncated record ({len(data)} of {length} bytes) at the end")
            return
        yield Record(number, offset, data)
        offset += 4 + length
