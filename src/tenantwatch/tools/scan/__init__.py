"""``tenantwatch scan``: judge stored traces with the same rules, and the same code, as the live processor.

Sources are the collector file exporter's files (:class:`~.files.FileSource`: OTLP/JSON lines or length-prefixed
protobuf records, gzip or zstd, ``-`` for stdin; pretty-printed OTLP/JSON and the SDK console exporter's output too)
and Jaeger's query API (:class:`~.jaeger.JaegerSource`). Each rebuilds the stored spans one record or page at a time;
:class:`~.judge.Judge` replays them through the processor in time order and groups the findings by fingerprint.
:func:`scan_sources` is the whole pipeline (the CI gate runs it on stored traces too); the command line only parses
arguments and prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final, Protocol

from opentelemetry.sdk.trace import ReadableSpan

from tenantwatch.config import Settings, load_settings
from tenantwatch.tools.groups import FindingGroups
from tenantwatch.tools.scan._records import Problem, ReadStats
from tenantwatch.tools.scan.files import FileSource, InputError
from tenantwatch.tools.scan.jaeger import JaegerSource
from tenantwatch.tools.scan.judge import DEFAULT_REORDER, Judge

__all__ = [
    "FileSource",
    "InputError",
    "JaegerSource",
    "Problem",
    "ReadStats",
    "Source",
    "scan_sources",
]

PROGRESS_EVERY: Final = 1000
"""Spans between two calls of the progress callback."""


class Source(Protocol):
    """Somewhere stored spans come from."""

    @property
    def name(self) -> str: ...

    def spans(self, stats: ReadStats) -> Iterator[ReadableSpan]:
        """The readable spans, one record or page at a time; unreadable records go to ``stats.problem``."""
        ...


def scan_sources(
    sources: Iterable[Source],
    settings: Settings | None = None,
    *,
    stats: ReadStats | None = None,
    reorder: int = DEFAULT_REORDER,
    progress: Callable[[ReadStats, FindingGroups], None] | None = None,
) -> FindingGroups:
    """Judge every span of ``sources`` (in order) with ``settings`` (default: :func:`load_settings`, i.e. the
    environment and ``$TENANTWATCH_RULES_FILE``) and return the findings grouped by fingerprint.

    ``stats`` (give one to read them afterwards) counts spans, records, bytes, the live run's stored findings and the
    records that could not be read, and lists the sources that yielded no span. Raises :class:`InputError` for a
    source that cannot be read at all (missing file, unreachable Jaeger, zstd without the extra).
    """
    settings = settings if settings is not None else load_settings()
    if settings.mode == "off":  # an offline judgement: enforce and monitor judge alike, off would judge nothing
        settings = settings.model_copy(update={"mode": "monitor"})
    stats = stats if stats is not None else ReadStats()
    judge = Judge(settings, reorder=reorder)
    for source in sources:
        before = stats.spans
        for span in source.spans(stats):
            stats.spans += 1
            judge.feed(span)
            if progress is not None and stats.spans % PROGRESS_EVERY == 0:
                progress(stats, judge.groups)
        if stats.spans == before:
            stats.empty_sources.append(source.name)
    groups = judge.finish()
    stats.failed = judge.failed
    if progress is not None:
        progress(stats, groups)
    return groups
