"""What a report holds, whatever it is rendered to: a period and sections of charts and tables, each with its sources.

A :class:`Section` says where its data came from (``sources``: the Prometheus expression or the findings document)
and, for every source that had nothing, why (``notes``: "no data from Prometheus for ... in this period"), so an empty
chart is never mistaken for a quiet week. The renderers (:mod:`.html`, :mod:`.markdown`, :mod:`.json_form`) only lay
this model out; they compute nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

__all__ = [
    "REPORT_FORMAT",
    "Chart",
    "Period",
    "Report",
    "Section",
    "Series",
    "Table",
    "iso",
]

REPORT_FORMAT: Final = "tenantwatch.report"
REPORT_VERSION: Final = 1

_PERIODS: Final = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
_POINTS: Final = 60
"""Points per time chart the default step aims at."""
_MIN_STEP: Final = 5


def iso(moment: datetime | float) -> str:
    """``2026-12-01T10:00:00Z`` for a datetime or Unix seconds (UTC, whole seconds)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Period:
    """The reported time range ``[start, end]`` (UTC) and the step of its time charts."""

    start: datetime
    end: datetime
    step_seconds: int
    name: str = "custom"
    """``daily``, ``weekly`` or ``custom`` (``--since``/``--until``)."""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a report period needs timezone-aware times")
        if self.end <= self.start:
            raise ValueError(f"the period ends ({iso(self.end)}) before it starts ({iso(self.start)})")
        if self.step_seconds < 1:
            raise ValueError("the step must be at least 1 second")

    @classmethod
    def named(cls, name: str, *, end: datetime, step_seconds: int | None = None) -> Period:
        """The day or week up to ``end``."""
        if name not in _PERIODS:
            raise ValueError(f"unknown period {name!r} (daily or weekly)")
        return cls.between(end - _PERIODS[name], end, step_seconds=step_seconds, name=name)

    @classmethod
    def between(
        cls, start: datetime, end: datetime, *, step_seconds: int | None = None, name: str = "custom"
    ) -> Period:
        """``[start, end]`` with ``step_seconds`` or a step giving about 60 points (at least 5 s)."""
        if step_seconds is None:
            step_seconds = max(_MIN_STEP, math.ceil((end - start).total_seconds() / _POINTS))
        return cls(start.astimezone(UTC), end.astimezone(UTC), step_seconds, name)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def contains_ns(self, time_ns: int | None) -> bool:
        """Whether a Unix time in nanoseconds falls in the period (``None``: unknown, counted in)."""
        if time_ns is None:
            return True
        return self.start.timestamp() <= time_ns / 1e9 <= self.end.timestamp()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "start": iso(self.start), "end": iso(self.end), "step_seconds": self.step_seconds}


@dataclass(slots=True)
class Series:
    """One line, bar set or marker row of a chart: ``x`` are Unix seconds (time charts) or category names (bars)."""

    name: str
    x: list[float] | list[str]
    y: list[float]
    text: list[str] | None = None
    """Hover text per point (incident descriptions on the timeline)."""

    @property
    def total(self) -> float:
        return sum(self.y)

    @property
    def has_data(self) -> bool:
        return any(value != 0 for value in self.y)


ChartKind = Literal["time", "bar", "timeline"]


@dataclass(slots=True)
class Chart:
    """A chart: ``time`` (lines over the period), ``bar`` (totals per category) or ``timeline`` (events as markers)."""

    id: str
    title: str
    kind: ChartKind
    y_title: str
    series: list[Series] = field(default_factory=list)
    summable: bool = True
    """Whether a series' values add up to a meaningful total (counts per step do; a p95 per step does not)."""

    @property
    def has_data(self) -> bool:
        return any(series.has_data for series in self.series)

    def summary(self) -> tuple[list[str], list[list[str | int | float | None]]]:
        """The chart as a table (columns, rows): per category for bars; per series its total (its last value when
        not summable), peak and peak time otherwise. The Markdown shows it instead of the chart, the HTML under it."""
        rows: list[list[str | int | float | None]] = []
        if self.kind == "bar":
            for series in self.series:
                categories: list[str | float] = list(series.x)
                rows.extend([x, y] for x, y in zip(categories, series.y, strict=True))
            return ["", self.y_title], rows
        for series in self.series:
            if not series.y:
                continue
            peak = max(range(len(series.y)), key=lambda i: series.y[i])
            first = series.total if self.summable else series.y[-1]
            rows.append([series.name, first, series.y[peak], iso(float(series.x[peak]))])
        return ["series", "total" if self.summable else "last", "peak", "peak at"], rows


@dataclass(slots=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[str | int | float | None]] = field(default_factory=list)


@dataclass(slots=True)
class Section:
    """One part of the report; each source that contributed (or had nothing) says so."""

    id: str
    title: str
    sources: list[str] = field(default_factory=list)
    """Where the data came from: ``Prometheus: <expression>`` or ``findings document <path>``."""
    notes: list[str] = field(default_factory=list)
    """What had no data, said explicitly, and other caveats a reader must see."""
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return any(chart.has_data for chart in self.charts) or any(table.rows for table in self.tables)

    def add_chart(self, chart: Chart, *, source: str, empty: str) -> None:
        """Add ``chart`` from ``source`` when it has data; otherwise note ``empty`` (the explicit no-data line)."""
        self.sources.append(source)
        if chart.has_data:
            self.charts.append(chart)
        else:
            self.notes.append(empty)

    def add_table(self, table: Table, *, source: str, empty: str) -> None:
        if source not in self.sources:
            self.sources.append(source)
        if table.rows:
            self.tables.append(table)
        else:
            self.notes.append(empty)


@dataclass(slots=True)
class Report:
    title: str
    period: Period
    generated_at: datetime
    sources: list[str] = field(default_factory=list)
    """Every source read, one line each (the Prometheus URL, each findings document with its counts)."""
    sections: list[Section] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return any(section.has_data for section in self.sections)

    def section(self, section_id: str) -> Section:
        for section in self.sections:
            if section.id == section_id:
                return section
        raise KeyError(section_id)
