"""Request metrics of the ASGI middleware and the security observer, on bounded tenant and client labels.

The middleware creates them and hands them to the security observer, which counts auth failures and blocks on the
same instruments: the core holds them so that ``tenantwatch.security`` needs nothing of the instrumentation.
"""

from __future__ import annotations

from opentelemetry.metrics import MeterProvider, get_meter_provider

from tenantwatch import attributes as A
from tenantwatch.core.buckets import TenantBuckets
from tenantwatch.core.direct_metrics import DirectRecorder
from tenantwatch.version import __version__

__all__ = ["RequestMetrics"]


class RequestMetrics:
    """The HTTP instruments. Tenants and client addresses are labelled through :class:`TenantBuckets` (first N
    seen, then ``__other__``), so neither can grow the number of series without bound."""

    def __init__(self, meter_provider: MeterProvider | None, *, tenant_cap: int, client_cap: int) -> None:
        meter = (meter_provider or get_meter_provider()).get_meter(A.SCOPE_NAME, __version__)
        self.tenant_bucket = TenantBuckets(tenant_cap, canonical=True)
        self.client_bucket = TenantBuckets(client_cap)
        self.requests = DirectRecorder(
            meter.create_counter(
                A.METRIC_HTTP_REQUESTS,
                unit="{request}",
                description="HTTP requests by tenant bucket, route, method and status",
            )
        )
        """Counted once per request: straight into the SDK's aggregation once a label set is known."""
        self.duration = DirectRecorder(
            meter.create_histogram(
                A.METRIC_HTTP_DURATION, unit="s", description="HTTP request duration by tenant bucket and route"
            )
        )
        """Recorded once per request, like ``requests``."""
        self.auth_failures = meter.create_counter(
            A.METRIC_AUTH_FAILURES,
            unit="{response}",
            description="401/403 responses by tenant bucket, route and client",
        )
        self.rejected_tokens = meter.create_counter(
            A.METRIC_REJECTED_TOKENS, unit="{token}", description="Bearer tokens that set no tenant, by reason"
        )
        self.ignored_headers = meter.create_counter(
            A.METRIC_IGNORED_HEADERS,
            unit="{request}",
            description="Tenant headers or baggage ignored from untrusted peers",
        )
        self.blocked = meter.create_counter(
            A.METRIC_BLOCKED, unit="{request}", description="Requests refused by a response action"
        )
        self.blocks = meter.create_counter(
            A.METRIC_BLOCKS, unit="{block}", description="Blocks started by response actions"
        )
        self.resolution_failures = meter.create_counter(
            A.METRIC_RESOLUTION_FAILURES,
            unit="{request}",
            description="Requests whose tenant could not be resolved (run with no tenant), by reason and error type",
        )
