"""The windowed detectors: what one statement cannot show, the stream of statements can.

:class:`Detectors` holds bounded per-key state (tenant, tenant + table, user; ``Settings.state``: at most
``max_keys`` keys per detector, forgotten after ``ttl_seconds`` idle) and an injectable clock. The span processor
calls :meth:`Detectors.observe` for every judged db span (rate, writes, off hours) and :meth:`Detectors.after` with
the findings it kept (repeated violations). Both return new findings; suppressions apply to them like to any other.
Thread-safe: one lock, held for a few dictionary operations per span.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding, severity_rank
from tenantwatch.processors.windows.off_hours import OffHours
from tenantwatch.processors.windows.rate_spike import RateBaseline
from tenantwatch.processors.windows.sliding import SlidingSum
from tenantwatch.processors.windows.state import KeyedState

__all__ = ["DETECTOR_IDS", "Detectors"]

DETECTOR_IDS: tuple[str, ...] = (
    "bulk_write",
    "rapid_write",
    "off_hours_write",
    "query_rate_spike",
    "repeated_violations",
)

_HIGH = severity_rank("high")


def _fingerprint(rule: str, *parts: str | None) -> str:
    basis = "\x1f".join((rule, *(part or "" for part in parts)))
    return hashlib.sha1(basis.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


class Detectors:
    """Windowed detectors over the stream of db spans (see the module docstring)."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        state = settings.state

        def keyed(factory: Callable[[], object]) -> KeyedState:  # type: ignore[type-arg]
            return KeyedState(factory, max_keys=state.max_keys, ttl=state.ttl_seconds)

        self._rates: KeyedState[str, RateBaseline] = keyed(RateBaseline)
        self._bulk: KeyedState[tuple[str, str], SlidingSum] = keyed(SlidingSum)
        self._rapid: KeyedState[tuple[str, str], SlidingSum] = keyed(SlidingSum)
        self._violations: KeyedState[tuple[str, str], SlidingSum] = keyed(SlidingSum)
        self._on = {rule: settings.enabled(rule) for rule in DETECTOR_IDS}
        self.active = any(self._on[rule] for rule in DETECTOR_IDS if rule != "repeated_violations")
        """False when no per-statement detector is on: the processor then skips :meth:`observe` entirely."""
        self.watches_findings = self._on["repeated_violations"]
        spike = settings.rule("query_rate_spike")
        self._spike = (
            spike.window_seconds or 10.0,
            spike.warmup if spike.warmup is not None else 6,
            spike.threshold or 50,
            spike.deviations or 4.0,
        )
        bulk, rapid = settings.rule("bulk_write"), settings.rule("rapid_write")
        self._bulk_limits = (bulk.window_seconds or 60.0, bulk.threshold or 50)
        self._rapid_limits = (rapid.window_seconds or 1.0, rapid.threshold or 10)
        self._writes = (("bulk_write", self._bulk, self._bulk_limits), ("rapid_write", self._rapid, self._rapid_limits))
        repeated = settings.rule("repeated_violations")
        self._repeated_limits = (repeated.window_seconds or 3600.0, repeated.threshold or 5)
        hours = settings.rule("off_hours_write")
        self._off_hours = OffHours(hours.start or "22:00", hours.end or "06:00", hours.timezone or "UTC")

    def state_size(self) -> int:
        """Keys held across every detector (bounded by ``4 * state.max_keys``)."""
        return len(self._rates) + len(self._bulk) + len(self._rapid) + len(self._violations)

    def _finding(self, rule: str, message: str, fingerprint: str, table: str | None = None) -> Finding:
        return Finding(
            rule=rule, severity=self._settings.severity(rule), message=message, fingerprint=fingerprint, table=table
        )

    def observe(self, facts: SpanFacts) -> list[Finding]:
        """Per-statement detectors: query rate, bulk and rapid writes, off-hours writes."""
        if not self.active or facts.unscoped_reason is not None:
            return []
        tenant = facts.tenant_id
        if tenant is None:
            return []
        now = self._clock()
        found: list[Finding] = []
        on = self._on
        with self._lock:
            if on["query_rate_spike"]:
                window, warmup, threshold, deviations = self._spike
                count = self._rates.get(tenant, now).observe(
                    now, window=window, warmup=warmup, threshold=threshold, deviations=deviations
                )
                if count is not None:
                    baseline = self._rates.get(tenant, now).mean
                    found.append(
                        self._finding(
                            "query_rate_spike",
                            f"tenant {tenant!r} ran {count} queries in {window:g} s, against a baseline of "
                            f"{baseline:.1f} per window",
                            _fingerprint("query_rate_spike", tenant),
                        )
                    )
            rows = facts.returned_rows or 0
            if facts.is_write and rows > 0:
                table = facts.main_table or ""
                key = (tenant, table)
                for rule, sums, (window, threshold) in self._writes:
                    if not on[rule]:
                        continue
                    total = sums.get(key, now).add(now, rows, window=window, threshold=threshold)
                    if total is not None:
                        found.append(
                            self._finding(
                                rule,
                                f"tenant {tenant!r} wrote {total} rows to {table} within {window:g} s "
                                f"(threshold {threshold})",
                                _fingerprint(rule, tenant, table),
                                table or None,
                            )
                        )
        if on["off_hours_write"] and facts.is_write and self._off_hours.contains(now):
            local = self._off_hours.local_time(now).strftime("%H:%M")
            found.append(
                self._finding(
                    "off_hours_write",
                    f"{facts.operation} on {facts.main_table} by tenant {tenant!r} at {local}, outside business hours",
                    _fingerprint("off_hours_write", tenant, facts.main_table, facts.statement_fingerprint),
                    facts.main_table,
                )
            )
        return found

    def after(self, kept: Sequence[Finding], facts: SpanFacts) -> list[Finding]:
        """``repeated_violations``: count the kept high/critical findings per tenant and per user."""
        if not self.watches_findings:
            return []
        serious = sum(1 for f in kept if f.rule != "repeated_violations" and severity_rank(f.severity) >= _HIGH)
        if not serious:
            return []
        now = self._clock()
        window, threshold = self._repeated_limits
        found: list[Finding] = []
        with self._lock:
            for kind, who in (("tenant", facts.tenant_id), ("user", facts.user_id)):
                if who is None:
                    continue
                total = self._violations.get((kind, who), now).add(
                    now, serious, window=window, threshold=threshold, inclusive=True
                )
                if total is not None:
                    found.append(
                        self._finding(
                            "repeated_violations",
                            f"{kind} {who!r} has {total} high or critical findings within {window:g} s "
                            f"(threshold {threshold})",
                            _fingerprint("repeated_violations", kind, who),
                        )
                    )
        return found
