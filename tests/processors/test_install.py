"""install(): zero-code mode wraps the processors already registered on an SDK tracer provider."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider
from processor_support import UNFILTERED, rules_of

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.processors import TenantwatchSpanProcessor, install


def _emit(provider: TracerProvider) -> None:
    with provider.get_tracer("t").start_as_current_span("SELECT", attributes=UNFILTERED.to_attributes()):
        pass


def test_install_wraps_registered_processors_in_place() -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(first))
    provider.add_span_processor(SimpleSpanProcessor(second))
    reader = InMemoryMetricReader()
    processor = install(provider, settings=Settings(), meter_provider=MeterProvider(metric_readers=[reader]))
    assert isinstance(processor, TenantwatchSpanProcessor)
    _emit(provider)
    for exporter in (first, second):
        (span,) = exporter.get_finished_spans()
        assert rules_of(span) == ["missing_tenant_filter"]
    assert reader.get_metrics_data() is not None
    names = [m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert A.METRIC_FINDINGS in names
    provider.shutdown()


def test_install_is_idempotent_and_adopts_processors_added_since() -> None:
    first, later = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(first))
    processor = install(provider, settings=Settings())
    provider.add_span_processor(SimpleSpanProcessor(later))
    assert install(provider, settings=Settings()) is processor
    assert provider._active_span_processor._span_processors == (processor,)
    _emit(provider)
    assert rules_of(first.get_finished_spans()[0]) == ["missing_tenant_filter"]
    assert rules_of(later.get_finished_spans()[0]) == ["missing_tenant_filter"]
    provider.shutdown()


def test_install_keeps_a_processor_configured_by_hand() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    mine = TenantwatchSpanProcessor(SimpleSpanProcessor(exporter), settings=Settings())
    provider.add_span_processor(mine)
    assert install(provider, settings=Settings()) is mine
    _emit(provider)
    assert rules_of(exporter.get_finished_spans()[0]) == ["missing_tenant_filter"]
    provider.shutdown()


def test_install_returns_none_for_non_sdk_providers() -> None:
    assert install(NoOpTracerProvider()) is None
    assert install(ProxyTracerProvider()) is None
