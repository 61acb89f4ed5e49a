"""The security observer: attack patterns, request values, auth failures and response actions for each request.

It only records facts on the server span (``tenantwatch.http.attack_patterns``, ``tenantwatch.http.auth_failures``)
and counts; the span processor judges them (``injection_signal``, ``brute_force``). Blocking is fed back the
processor's critical findings through :meth:`SecurityObserver.on_finding` (registered with
``TenantwatchSpanProcessor.add_finding_listener``): the processor publishes, the observer subscribes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.core.request import RequestInfo, current_request
from tenantwatch.core.request_metrics import RequestMetrics
from tenantwatch.security.auth_failures import AuthFailures
from tenantwatch.security.blocking import Blocker
from tenantwatch.security.patterns import scan
from tenantwatch.security.values import RequestValues

__all__ = ["SecurityObserver"]

logger = logging.getLogger(__name__)


class SecurityObserver:
    """A :class:`~tenantwatch.core.request.RequestObserver` for the security signals of issue 3."""

    def __init__(self, settings: Settings, metrics: RequestMetrics, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._metrics = metrics
        http = settings.http
        self._max_bytes, self._max_values = http.max_value_bytes, http.max_request_values
        self._min_length = settings.rules.injection_signal.min_length
        self._collect_values = settings.enabled("injection_signal")
        self._failures = AuthFailures(settings.rules.brute_force.window_seconds, max_keys=settings.state.max_keys)
        self._clock = clock
        self.blocker = Blocker(settings.blocking, clock=clock, on_block=self._block_started)

    def _block_started(self, kind: str, value: str) -> None:
        self._metrics.blocks.add(1, {"reason": kind})

    def before(self, request: RequestInfo) -> tuple[int, str] | None:
        span = request.span
        patterns = scan(
            request.path, request.query_string, request.headers, max_bytes=self._max_bytes, max_values=self._max_values
        )
        if patterns and span is not None:
            span.set_attribute(A.HTTP_ATTACK_PATTERNS, patterns)
        if self._collect_values:
            request.values = RequestValues.from_request(
                request.query_string,
                request.path_params,
                min_length=self._min_length,
                max_values=self._max_values,
                max_bytes=self._max_bytes,
            )
        if self.blocker.enabled:
            reason = self.blocker.blocked(request.client_address, request.tenant_id)
            if reason is not None:
                status = self._settings.blocking.status
                self._metrics.blocked.add(1, {"reason": reason, A.HTTP_RESPONSE_STATUS_CODE: status})
                if span is not None:
                    span.set_attribute(A.HTTP_BLOCKED, reason)
                return status, f"blocked ({reason})"
        return None

    def after(self, request: RequestInfo, status_code: int) -> None:
        if status_code not in (401, 403):
            return
        client = request.client_address or "unknown"
        metrics = self._metrics
        metrics.auth_failures.add(
            1,
            {
                A.TENANT_BUCKET: metrics.tenant_bucket(request.tenant_id),
                A.HTTP_ROUTE: request.route or "",
                A.CLIENT_BUCKET: metrics.client_bucket(client),
            },
        )
        failures = self._failures.record(client, self._clock())
        if request.span is not None:
            request.span.set_attribute(A.HTTP_AUTH_FAILURES, failures)

    def on_finding(self, finding: Any, facts: Any, span: Any) -> None:
        """Finding listener: count critical findings toward a block of the request's client and tenant."""
        if finding.severity != "critical" or not self.blocker.enabled:
            return
        request = current_request()
        tenant = getattr(facts, "tenant_id", None) or (request.tenant_id if request is not None else None)
        self.blocker.critical_finding(request.client_address if request is not None else None, tenant)
