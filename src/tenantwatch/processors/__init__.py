"""Where findings come from and where they go: the span processor, the rules, suppressions and metrics.

Usage::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from tenantwatch.processors import TenantwatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(TenantwatchSpanProcessor(BatchSpanProcessor(exporter)))

or, for a provider someone else configured (zero-code mode)::

    from tenantwatch.processors import install

    install(trace.get_tracer_provider())   # wraps the processors already registered, idempotent

See docs/processor.md for the rules, the finding format, metrics and suppressions.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from opentelemetry._logs import LoggerProvider
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ConcurrentMultiSpanProcessor, SpanProcessor, SynchronousMultiSpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
from opentelemetry.trace import TracerProvider

from tenantwatch.config import Settings
from tenantwatch.core.findings import Finding
from tenantwatch.processors.processor import TenantwatchSpanProcessor

if TYPE_CHECKING:
    from tenantwatch.sql.analyzer import Analyzer

__all__ = ["Finding", "TenantwatchSpanProcessor", "install"]

logger = logging.getLogger(__name__)


def install(
    tracer_provider: TracerProvider,
    *,
    settings: Settings | None = None,
    analyzer: Analyzer | None = None,
    meter_provider: MeterProvider | None = None,
    logger_provider: LoggerProvider | None = None,
) -> TenantwatchSpanProcessor | None:
    """Put a :class:`TenantwatchSpanProcessor` in front of the span processors already registered on an SDK
    ``tracer_provider``, in place, so the exporters they feed receive the enriched spans.

    Idempotent: if the provider already has one, that one is returned (and any processor registered since is moved
    behind it when it was created by ``install``). Returns ``None`` for a provider that is not the SDK's (the no-op
    or proxy provider): there is nothing to wrap. Processors registered after this call receive original spans.
    """
    if not isinstance(tracer_provider, SDKTracerProvider):
        return None
    active = getattr(tracer_provider, "_active_span_processor", None)
    if not isinstance(active, SynchronousMultiSpanProcessor | ConcurrentMultiSpanProcessor):
        logger.warning("tenantwatch: unexpected span processor setup %r; not installed", type(active).__name__)
        return None
    with active._lock:
        registered: tuple[SpanProcessor, ...] = active._span_processors
        ours = [sp for sp in registered if isinstance(sp, TenantwatchSpanProcessor)]
        others = tuple(sp for sp in registered if not isinstance(sp, TenantwatchSpanProcessor))
        if ours:
            processor = ours[0]
            inner = processor.delegate
            if others and isinstance(inner, SynchronousMultiSpanProcessor) and processor._installed:
                for sp in others:
                    inner.add_span_processor(sp)
                active._span_processors = (processor,)
            return processor
        inner = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
        for sp in others:
            inner.add_span_processor(sp)
        processor = TenantwatchSpanProcessor(
            inner,
            settings=settings,
            analyzer=analyzer,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
        )
        processor._installed = True
        active._span_processors = (processor,)
    return processor
