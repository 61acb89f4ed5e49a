"""Stored trace files: the collector file exporter's output, one record at a time.

``json`` files are read line by line (:func:`._files.lines`), ``proto`` files and every zstd-compressed file record
by record (:func:`._files.frames`); a record is OTLP/JSON when it starts with ``{``, protobuf otherwise, and its own
zstd frame when it starts with zstd's magic bytes. A record that cannot be read is reported with its line or
record number and skipped; the rest of the file is still read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from opentelemetry.sdk.trace import ReadableSpan

from tenantwatch.tools.scan import otlp_json, otlp_proto
from tenantwatch.tools.scan._files import ZstdUnavailableError, decompress_zstd, frames, lines, open_input
from tenantwatch.tools.scan._records import BadRecordError, ReadStats

__all__ = ["FileSource", "InputError"]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class InputError(Exception):
    """An input that cannot be read at all (missing file, zstd without the extra): a usage error, exit code 2."""


@dataclass(frozen=True, slots=True)
class FileSource:
    """A file written by the collector's file exporter, or ``-`` for stdin."""

    path: str
    stdin: IO[bytes] | None = field(default=None, compare=False)
    """What ``-`` reads (default: the process's standard input)."""

    @property
    def name(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    def spans(self, stats: ReadStats) -> Iterator[ReadableSpan]:
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
