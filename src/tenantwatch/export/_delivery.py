"""Delivery state shared by the export pipelines of one :func:`tenantwatch.configure`.

* :class:`Drops` counts what was not delivered on ``tenantwatch.export.dropped`` (labels ``signal`` and
  ``error.type``), also before the meter provider exists;
* :class:`Outage` logs ONE warning naming the endpoint when the collector first cannot be reached (instead of the
  exporters' stream of retry messages), and an INFO line when it answers again;
* :class:`Circuit` (one per signal) stops sending while the endpoint is down: batches are dropped at once, and a
  probe is sent after a cooldown that doubles up to a minute;
* :func:`quiet_exporter_logs` keeps the OTLP exporters' own retry and failure log lines out of the application's
  logs while tenantwatch is exporting (the one warning says it instead);
* :func:`bounded_call` runs a call that may block (a provider's flush or shutdown) with a deadline.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final
from urllib.parse import urlsplit

from opentelemetry.metrics import Counter, MeterProvider

from tenantwatch import attributes as A
from tenantwatch.core.guard import guard
from tenantwatch.redaction import hide_url_secrets, safe_url
from tenantwatch.version import __version__

__all__ = ["Circuit", "Drops", "Outage", "bounded_call", "quiet_exporter_logs"]

logger = logging.getLogger(__name__)

COOLDOWN_SECONDS: Final = 5.0
"""How long a signal stops sending after a failed export before it probes the endpoint again (doubles each time)."""

MAX_COOLDOWN_SECONDS: Final = 60.0

_EXPORTER_LOGGERS: Final = (
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
    "opentelemetry.exporter.otlp.proto.grpc._log_exporter",
)
"""Loggers of the OTLP exporters whose per-attempt messages are held back while tenantwatch exports."""


class Drops:
    """Counts undelivered items per signal and reason; the counter is bound once the meter provider exists."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter: Counter | None = None
        self._pending: dict[tuple[str, str], int] = {}
        self._totals: dict[str, int] = {}

    def bind(self, meter_provider: MeterProvider) -> None:
        """Create ``tenantwatch.export.dropped`` on ``meter_provider`` and add what was counted before."""
        counter = meter_provider.get_meter(A.SCOPE_NAME, __version__).create_counter(
            A.METRIC_EXPORT_DROPPED, unit="{item}", description="Telemetry items tenantwatch could not deliver"
        )
        with self._lock:
            self._counter, pending, self._pending = counter, self._pending, {}
        for (signal, reason), count in pending.items():
            counter.add(count, {A.EXPORT_SIGNAL: signal, A.ERROR_TYPE: reason})

    def add(self, signal: str, reason: str, count: int) -> None:
        if count <= 0:
            return
        with self._lock:
            self._totals[signal] = self._totals.get(signal, 0) + count
            counter = self._counter
            if counter is None:
                self._pending[(signal, reason)] = self._pending.get((signal, reason), 0) + count
                return
        with guard(f"counting dropped {signal}", logger=logger, level=logging.DEBUG):
            counter.add(count, {A.EXPORT_SIGNAL: signal, A.ERROR_TYPE: reason})

    def totals(self) -> dict[str, int]:
        """Items dropped so far, per signal."""
        with self._lock:
            return dict(self._totals)


class Outage:
    """What the pipelines of one ``configure()`` know about their endpoints: one warning for the whole outage, and
    which hosts are down (so that a flush or the exit does not wait for a host another signal found down)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warned = False
        self._down: dict[str, set[str]] = {}
        self._hurry = 0

    @property
    def hurrying(self) -> bool:
        """Inside :meth:`hurry` (a flush or the shutdown): nothing is sent to a host known to be down."""
        return self._hurry > 0

    @contextmanager
    def hurry(self) -> Iterator[None]:
        with self._lock:
            self._hurry += 1
        try:
            yield
        finally:
            with self._lock:
                self._hurry -= 1

    def failed(self, signal: str, endpoint: str, reason: str) -> None:
        with self._lock:
            first = not self._warned
            self._warned = True
            self._down.setdefault(_host(endpoint), set()).add(signal)
        shown, reason = safe_url(endpoint), hide_url_secrets(reason)
        answered = _HTTP_ANSWER.fullmatch(reason)
        if first and answered:
            status = int(answered.group(1))
            logger.warning(
                "tenantwatch: %s answered %s to the %s export%s; dropping %s while it answers so (counted on %s).",
                shown,
                reason,
                signal,
                f" (no {signal} pipeline on that path?)" if status == _NOT_FOUND else "",
                signal,
                A.METRIC_EXPORT_DROPPED,
            )
        elif first:
            logger.warning(
                "tenantwatch: cannot deliver telemetry to %s (%s export: %s); dropping it while the collector is "
                "unreachable (counted on %s). No collector? Set each of OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER "
                "and OTEL_LOGS_EXPORTER to console or none (TENANTWATCH_CONSOLE=1 prints findings on stderr but "
                "does not stop the OTLP export).",
                shown,
                signal,
                reason,
                A.METRIC_EXPORT_DROPPED,
            )
        else:
            logger.debug("tenantwatch: %s export to %s failed (%s)", signal, shown, reason)

    def recovered(self, signal: str, endpoint: str) -> None:
        with self._lock:
            signals = self._down.get(_host(endpoint), set())
            was_down = signal in signals
            signals.discard(signal)
            if not signals:
                self._down.pop(_host(endpoint), None)
        if was_down:
            logger.info("tenantwatch: %s are delivered to %s again", signal, safe_url(endpoint))

    def is_down(self, endpoint: str) -> bool:
        with self._lock:
            return bool(self._down.get(_host(endpoint)))


def _host(endpoint: str) -> str:
    parts = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    return parts.netloc or endpoint


class Circuit:
    """Whether a signal sends to its endpoint now: closed (send), open (drop) until a probe is due."""

    def __init__(
        self,
        signal: str,
        endpoint: str,
        outage: Outage,
        *,
        cooldown: float = COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.signal = signal
        self.endpoint = endpoint
        self._outage = outage
        self._base_cooldown = cooldown
        self._cooldown = cooldown
        self._clock = clock
        self._retry_at: float | None = None

    @property
    def open(self) -> bool:
        return self._retry_at is not None

    def allow(self, *, probe: bool = True) -> bool:
        """True to send. Open: only for a due probe. In a hurry (``probe`` False, or a flush or shutdown under way):
        only if closed and no other signal found the same host down, so that a flush never waits for a dead host."""
        if not probe or self._outage.hurrying:
            return self._retry_at is None and not self._outage.is_down(self.endpoint)
        return self._retry_at is None or self._clock() >= self._retry_at

    def success(self) -> None:
        if self._retry_at is not None:
            self._retry_at = None
            self._cooldown = self._base_cooldown
        self._outage.recovered(self.signal, self.endpoint)

    def failure(self, reason: str) -> None:
        if self._retry_at is not None:
            self._cooldown = min(self._cooldown * 2, MAX_COOLDOWN_SECONDS)
        self._retry_at = self._clock() + self._cooldown
        self._outage.failed(self.signal, self.endpoint, reason)


class _Quiet(logging.Filter):
    """Holds back exporter log records emitted on a thread that is inside :func:`quiet_exporter_logs`."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(self.local, "depth", 0) <= 0:
            return True
        if getattr(self.local, "reason", None) is None and record.levelno >= logging.WARNING:
            self.local.reason = _short_reason(record.getMessage())
        return False


_QUIET = _Quiet()
_installed = False
_install_lock = threading.Lock()


def _install_quiet() -> None:
    global _installed  # noqa: PLW0603 - one filter per process, installed on first use
    with _install_lock:
        if _installed:
            return
        for name in _EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(_QUIET)
        _installed = True


@contextmanager
def quiet_exporter_logs() -> Iterator[Callable[[], str | None]]:
    """Inside: the OTLP exporters' log records on this thread are held back. Yields a function returning a short
    reason taken from the first held-back warning or error (``connection refused``, ``timed out``, ...)."""
    _install_quiet()
    local = _QUIET.local
    local.depth = getattr(local, "depth", 0) + 1
    if local.depth == 1:
        local.reason = None
    try:
        yield lambda: getattr(local, "reason", None)
    finally:
        local.depth -= 1


_HTTP_ANSWER: Final = re.compile(r"HTTP (\d{3})")
"""A reason that is the collector's answer (it was reached and refused the export), not an unreachable one."""
_NOT_FOUND: Final = 404

_REASONS: Final = (
    (re.compile(r"connection refused", re.IGNORECASE), "connection refused"),
    (re.compile(r"timed? ?out|deadline exceeded", re.IGNORECASE), "timed out"),
    (re.compile(r"name or service not known|nodename nor servname|getaddrinfo", re.IGNORECASE), "unknown host"),
    (re.compile(r"unavailable", re.IGNORECASE), "unavailable"),
    (re.compile(r"code: (\d{3})"), "HTTP {0}"),
)


def _short_reason(message: str) -> str:
    for pattern, label in _REASONS:
        match = pattern.search(message)
        if match:
            return label.format(*match.groups())
    return message[:120]


def bounded_call(function: Callable[[], object], timeout_seconds: float, *, name: str) -> tuple[bool, object]:
    """Run ``function`` on a daemon thread and wait at most ``timeout_seconds``: (finished in time, its result).

    A call that does not finish keeps running in the background (daemon threads do not hold up the exit); one that
    raises counts as finished with result ``None`` (logged).
    """
    result: list[object] = []

    def run() -> None:
        try:
            result.append(function())
        except Exception as exc:  # an SDK provider raises when its own deadline passed: expected under a budget
            logger.debug("tenantwatch: %s failed: %s", name, exc, exc_info=True)
            result.append(None)

    thread = threading.Thread(target=run, name=f"tenantwatch-{name}", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no new threads this late in interpreter shutdown: run it here, unbounded
        run()
        return True, result[0] if result else None
    thread.join(max(timeout_seconds, 0.0))
    if thread.is_alive():
        logger.debug("tenantwatch: %s did not finish within %.2fs", name, timeout_seconds)
        return False, None
    return True, result[0] if result else None
