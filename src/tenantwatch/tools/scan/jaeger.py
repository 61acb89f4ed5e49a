"""Traces from Jaeger's query API (``/api/v3/traces``), one page at a time.

Jaeger's v3 search takes a service, a start-time range (RFC 3339) and span attributes, and answers at most
``query.num_traces`` whole traces as one OTLP/JSON document (``{"result": {"resourceSpans": [...]}}``); it has no
offset paging. So the range is walked in windows of ``window`` seconds, oldest first, one request each; a window that
comes back full (``page_size`` traces: maybe more were left out) is halved and asked again, down to a millisecond. A
trace found in several windows (a window matches a trace by any of its spans, so a long trace can come back in
windows that are not neighbours once full windows are halved) is judged once: the ids of the traces read are kept
until the walk has passed the end of their last span, so memory holds one page and the traces that reach past it.

A window still full at a millisecond is reported as a problem (traces may be missing; raise ``--page-size``), and an
unreachable Jaeger or an answer that is not a trace document is an :class:`~.files.InputError`.

Before the first page, ``GET /api/v3/services`` proves the URL is a Jaeger query API (Prometheus, the collector or a
wrong path answer 404 or no ``services`` list: an :class:`~.files.InputError`, never an empty search) and that it
knows ``service`` (else the error lists the services it knows). After that, a 404 on ``/api/v3/traces`` is what
Jaeger answers for an empty search.

Attribute filters are applied here as well as sent: Jaeger's HTTP ``/api/v3/traces`` ignores
``query.attributes`` (jaegertracing/jaeger#7594), so every trace of each page is checked with Jaeger's own semantics
(a trace matches when one span of ``service`` carries every attribute, in its own attributes or its resource, with
the value compared as text) whether or not the server filtered.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan

from tenantwatch.redaction import safe_url
from tenantwatch.tools.scan import otlp_json
from tenantwatch.tools.scan._records import BadRecordError, ReadStats
from tenantwatch.tools.scan.files import InputError

__all__ = ["DEFAULT_PAGE_SIZE", "DEFAULT_WINDOW_SECONDS", "JaegerSource", "rfc3339"]

DEFAULT_PAGE_SIZE: Final = 200
DEFAULT_WINDOW_SECONDS: Final = 900.0
_MIN_WINDOW: Final = 0.001
"""Windows are halved down to a millisecond (RFC 3339 times carry microseconds)."""
_MAX_PAGE_BYTES: Final = 512 * 1024 * 1024
_SERVICES_SHOWN: Final = 20
"""Services listed in the error for an unknown ``--service``."""


def rfc3339(seconds: float) -> str:
    """Unix seconds as RFC 3339 UTC with microseconds (what Jaeger's v3 API parses)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class JaegerSource:
    """Every trace of ``service`` that starts within [``start``, ``end``] (Unix seconds) and has ``attributes``."""

    url: str
    service: str
    start: float
    end: float
    attributes: Mapping[str, str] = field(default_factory=dict)
    page_size: int = DEFAULT_PAGE_SIZE
    window: float = DEFAULT_WINDOW_SECONDS
    timeout: float = 30.0

    @property
    def name(self) -> str:
        return f"jaeger {safe_url(self.url.rstrip('/'))} service {self.service}"  # shown in outputs: no password

    def _query(self, start: float, end: float) -> str:
        query = {
            "query.service_name": self.service,
            "query.start_time_min": rfc3339(start),
            "query.start_time_max": rfc3339(end),
            "query.num_traces": str(self.page_size),
        }
        if self.attributes:
            query["query.attributes"] = json.dumps(dict(self.attributes), separators=(",", ":"))
        return f"{self.url.rstrip('/')}/api/v3/traces?{urllib.parse.urlencode(query)}"

    def _services(self) -> list[str]:
        """The services Jaeger knows; :class:`InputError` when ``url`` is not a Jaeger query API."""
        base = self.url.rstrip("/")
        url = f"{base}/api/v3/services"
        not_jaeger = f"{base}: not a Jaeger query API (GET /api/v3/services answered"
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read(_MAX_PAGE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise InputError(f"{not_jaeger} {exc.code})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InputError(f"cannot reach Jaeger at {self.url}: {reason}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise InputError(f"{not_jaeger} something that is not JSON: {body[:80]!r})") from None
        services = document.get("services") if isinstance(document, dict) else None
        if not isinstance(services, list):
            raise InputError(f"{not_jaeger} JSON without a services list: {body[:80]!r})")
        return [str(service) for service in services]

    def _check_service(self) -> None:
        known = self._services()
        if self.service in known:
            return
        shown = ", ".join(sorted(known)[:_SERVICES_SHOWN]) or "none"
        more = f" and {len(known) - _SERVICES_SHOWN} more" if len(known) > _SERVICES_SHOWN else ""
        raise InputError(
            f"--service {self.service!r}: Jaeger at {self.url.rstrip('/')} knows no such service "
            f"(it knows {len(known)}: {shown}{more})"
        )

    def _matches(self, spans: list[ReadableSpan]) -> set[int]:
        """The trace ids of ``spans`` where one span of ``service`` carries every attribute (Jaeger's semantics)."""
        wanted = dict(self.attributes)
        return {
            span.context.trace_id
            for span in spans
            if span.context is not None
            and span.resource.attributes.get("service.name", self.service) == self.service
            and all(_text(_attribute(span, key)) == value for key, value in wanted.items())
        }

    def _page(self, start: float, end: float) -> Mapping[str, Any] | None:
        """One answer; ``None`` when Jaeger found nothing (it answers 404 for an empty search)."""
        url = self._query(start, end)
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read(_MAX_PAGE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            if exc.code == 404:
                return None
            raise InputError(f"Jaeger answered {exc.code} for {url}: {detail.strip()[:300]}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InputError(f"cannot reach Jaeger at {self.url}: {reason}") from None
        if len(body) > _MAX_PAGE_BYTES:
            raise InputError(f"a Jaeger page is larger than {_MAX_PAGE_BYTES} bytes: lower --page-size")
        try:
            document = otlp_json.parse_document(body)
        except BadRecordError as exc:
            raise InputError(f"Jaeger's answer for {url} is not a trace document: {exc}") from None
        if "error" in document and "result" not in document:
            raise InputError(f"Jaeger answered an error for {url}: {json.dumps(document['error'])[:300]}")
        return document

    def spans(self, stats: ReadStats) -> Iterator[ReadableSpan]:
        stats.bytes_total = None
        self._check_service()
        seen: dict[int, float] = {}
        """Trace id -> the end (Unix seconds) of its last span, for every trace read that a later window may return."""
        page = 0
        windows = [(self.start, min(self.end, self.start + self.window))]
        cursor = windows[0][1]
        while windows:
            start, end = windows.pop()
            document = self._page(start, end)
            page += 1
            stats.records += 1
            spans: list[ReadableSpan] = []
            if document is not None:

                def report(message: str, page: int = page) -> None:
                    stats.problem(self.name, f"page {page}", message)

                try:
                    spans = list(otlp_json.spans_from_document(document, stats, report))
                except BadRecordError as exc:
                    report(str(exc))
            traces = {span.context.trace_id for span in spans if span.context is not None}
            if len(traces) >= self.page_size and end - start > _MIN_WINDOW:
                middle = (start + end) / 2  # the page may be cut: ask for each half instead (older half first)
                windows.extend([(middle, end), (start, middle)])
                continue
            if len(traces) >= self.page_size:
                stats.problem(
                    self.name,
                    f"page {page}",
                    f"{len(traces)} traces started within one millisecond at {rfc3339(start)}: some may be missing "
                    "(raise --page-size)",
                )
            kept = self._matches(spans) if self.attributes else traces
            for trace_id in [trace_id for trace_id, last in seen.items() if last < start]:
                del seen[trace_id]  # the walk is past its last span: no later window can return it
            fresh = traces - seen.keys()
            for span in spans:
                if span.context is not None and span.context.trace_id in fresh:
                    if span.context.trace_id in kept:
                        yield span
                    else:
                        stats.filtered_spans += 1
            for span in spans:
                if span.context is not None:
                    last = (span.end_time or span.start_time or 0) / 1e9
                    trace_id = span.context.trace_id
                    if last > seen.get(trace_id, float("-inf")):
                        seen[trace_id] = last
            if not windows and cursor < self.end:
                windows.append((cursor, min(self.end, cursor + self.window)))
                cursor = windows[-1][1]


def _attribute(span: ReadableSpan, key: str) -> Any:
    """``key`` on the span, else on its resource (Jaeger's search looks at both)."""
    attributes = span.attributes or {}
    if key in attributes:
        return attributes[key]
    return span.resource.attributes.get(key)


def _text(value: Any) -> str | None:
    """An attribute value as Jaeger compares it with a query value: as text (booleans lower case)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
