"""Stored trace files: the collector file exporter's output, one record at a time.

``json`` files are read line by line (:func:`._files.lines`), ``proto`` files and every zstd-compressed file record
by record (:func:`._files.frames`); a record is OTLP/JSON when it starts with ``{``, protobuf otherwise, and its own
zstd frame when it starts with zstd's magic bytes. A record that cannot be read is reported with its line or
record number and skipped; the rest of the file is still read.

A ``json`` file whose first line starts with ``{`` but is not a whole JSON document is pretty-printed JSON: one
OTLP/JSON document over many lines (``jq .`` output, a Jaeger answer saved as it came) or the SDK console exporter's
span objects (:mod:`.console_json`). It is read whole, one document after the other, up to
:data:`MAX_DOCUMENT_BYTES` (a larger file is one clear problem: convert it to one document per line with ``jq -c``).

``since``/``until`` (Unix seconds) keep the spans whose end time lies within them; the others are counted in
:attr:`~._records.ReadStats.outside_window`, as ``--since``/``--until`` do for files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final

import orjson
from opentelemetry.sdk.trace import ReadableSpan

from tenantwatch.tools.scan import console_json, otlp_json, otlp_proto
from tenantwatch.tools.scan._files import (
    MAX_RECORD_BYTES,
    Record,
    ZstdUnavailableError,
    decompress_zstd,
    frames,
    lines,
    open_input,
)
from tenantwatch.tools.scan._records import BadRecordError, ReadStats

__all__ = ["MAX_DOCUMENT_BYTES", "FileSource", "InputError"]

MAX_DOCUMENT_BYTES: Final = MAX_RECORD_BYTES
"""A pretty-printed JSON file (read whole) larger than this is reported instead of being held in memory."""

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class InputError(Exception):
    """An input that cannot be read at all (missing file, zstd without the extra): a usage error, exit code 2."""


@dataclass(frozen=True, slots=True)
class FileSource:
    """A file written by the collector's file exporter, or ``-`` for stdin."""

    path: str
    stdin: IO[bytes] | None = field(default=None, compare=False)
    """What ``-`` reads (default: the process's standard input)."""
    since: float | None = None
    """Keep only spans that end at or after this (Unix seconds)."""
    until: float | None = None
    """Keep only spans that end at or before this (Unix seconds)."""

    @property
    def name(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    def spans(self, stats: ReadStats) -> Iterator[ReadableSpan]:
        low = None if self.since is None else int(self.since * 1e9)
        high = None if self.until is None else int(self.until * 1e9)
        for span in self._read(stats):
            end = span.end_time or 0
            if (low is not None and end < low) or (high is not None and end > high):
                stats.outside_window += 1
                continue
            yield span

    def _read(self, stats: ReadStats) -> Iterator[ReadableSpan]:
        base = stats.bytes_read
        where = "start"
        try:
            with open_input(self.path, self.stdin) as opened:
                if opened.size is None:
                    stats.bytes_total = None
                elif stats.bytes_total is not None:
                    stats.bytes_total += opened.size
                kind = "line" if opened.framing == "lines" else "record"
                records = lines(opened.stream) if opened.framing == "lines" else frames(opened.stream)
                where = f"{kind} 1"
                for record in records if opened.framing != "empty" else ():
                    if record.number == 1 and opened.framing == "lines" and _pretty(record):
                        yield from self._pretty(record, opened.stream, stats)
                        stats.bytes_read = base + opened.position
                        break
                    stats.records += 1
                    where = f"{kind} {record.number}"

                    def report(message: str, where: str = where) -> None:
                        stats.problem(self.name, where, message)

                    if record.data is None:
                        report(record.error or "unreadable")
                    else:
                        try:
                            yield from self._decode(record.data, stats, report)
                        except BadRecordError as exc:
                            report(str(exc))
                    stats.bytes_read = base + opened.position
        except ZstdUnavailableError as exc:
            raise InputError(str(exc)) from None
        except OSError as exc:
            if where == "start":  # could not even be opened
                raise InputError(f"cannot read {self.name}: {exc.strerror or exc}") from None
            stats.problem(self.name, f"after {where}", f"reading stopped: {exc} (the rest of this input is skipped)")
        except EOFError as exc:  # a truncated .gz or .zst: what was read before still counts
            stats.problem(self.name, f"after {where}", f"compressed stream ends early ({exc})")
        except Exception as exc:  # a corrupt compressed stream (zstandard's ZstdError, zlib.error)
            stats.problem(
                self.name, f"after {where}", f"reading stopped: {type(exc).__name__}: {exc} (the rest is skipped)"
            )

    def _pretty(self, first: Record, stream: Any, stats: ReadStats) -> Iterator[ReadableSpan]:
        """The whole input as pretty-printed JSON documents, one after the other (``first`` is its first line)."""
        assert first.data is not None
        data = first.data + stream.read(MAX_DOCUMENT_BYTES + 1 - len(first.data))
        if len(data) > MAX_DOCUMENT_BYTES:
            stats.problem(
                self.name,
                "line 1",
                f"pretty-printed JSON (one document over many lines) larger than {MAX_DOCUMENT_BYTES} bytes: not read; "
                "convert it to one document per line (jq -c . FILE) or use the collector's file exporter output",
            )
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            stats.problem(self.name, "line 1", f"pretty-printed JSON that is not UTF-8 ({exc}): not read")
            return
        decoder = json.JSONDecoder()
        position, number = 0, 0
        while True:
            while position < len(text) and text[position] in " \t\r\n":
                position += 1
            if position >= len(text):
                return
            line = text.count("\n", 0, position) + 1
            try:
                document, position = decoder.raw_decode(text, position)
            except ValueError as exc:
                stats.problem(
                    self.name,
                    f"line {line}",
                    f"pretty-printed JSON stops being JSON here ({exc.args[0] if exc.args else exc}); "
                    "the rest of this input is skipped (scan reads the collector file exporter's output, OTLP/JSON "
                    "pretty or one document per line, and the console exporter's span objects)",
                )
                return
            number += 1
            stats.records += 1
            where = f"document {number} (line {line})"

            def report(message: str, where: str = where) -> None:
                stats.problem(self.name, where, message)

            try:
                if not isinstance(document, dict):
                    raise BadRecordError(f"a trace document must be a JSON object, not {type(document).__name__}")
                if console_json.is_console_span(document):
                    yield console_json.span_from_console(document, stats)
                else:
                    yield from otlp_json.spans_from_document(document, stats, report)
            except BadRecordError as exc:
                report(str(exc))

    def _decode(self, data: bytes, stats: ReadStats, report: otlp_json.Report) -> Iterator[ReadableSpan]:
        if data.startswith(_ZSTD_MAGIC):
            try:
                data = decompress_zstd(data, self.name)
            except ZstdUnavailableError:
                raise
            except Exception as exc:  # zstandard raises its own ZstdError
                raise BadRecordError(f"zstd record does not decompress ({exc})") from None
        if data.lstrip()[:1] == b"{":
            yield from otlp_json.spans_from_document(otlp_json.parse_document(data), stats, report)
        else:
            yield from otlp_proto.spans_from_record(otlp_proto.parse_record(data), stats, report)


def _pretty(record: Record) -> bool:
    """A first line that opens a JSON object and breaks the line where a pretty printer does (after ``{``, ``[`` or
    ``,``) without being a whole document: pretty-printed JSON. A JSON line cut short elsewhere stays a bad line."""
    if record.data is None:
        return False
    stripped = record.data.strip()
    if stripped[:1] != b"{" or not stripped.endswith((b"{", b"[", b",")):
        return False
    try:
        orjson.loads(record.data)
    except orjson.JSONDecodeError:
        return True
    return False
