"""The facts of a db span handed from the SQLAlchemy instrumentation to the processor (core/facts_handover.py):
used on tenantwatch's own spans, never when the span changed after tenantwatch wrote it, bounded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import tenant_context
from tenantwatch.core import facts_handover
from tenantwatch.facts import SpanFacts
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor
from tenantwatch.instrumentation._attributes import AttributeBuilder, set_span_attributes
from tenantwatch.processors import TenantwatchSpanProcessor
from tenantwatch.sql.analyzer import Analyzer

_SETTINGS = Settings(tenant_columns=("organization_id",))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the processor's reads of a span's attributes (``SpanFacts.from_attributes``); verification off."""
    calls: list[int] = []
    original = SpanFacts.from_attributes.__func__  # type: ignore[attr-defined]

    def counting(cls: type[SpanFacts], attrs: Any, *, duration_ms: float | None = None) -> SpanFacts:
        calls.append(1)
        return original(cls, attrs, duration_ms=duration_ms)  # type: ignore[no-any-return]

    monkeypatch.setattr(SpanFacts, "from_attributes", classmethod(counting))
    facts_handover.verify[0] = False  # (tests/conftest.py turns it on again for the next test)
    return calls


@pytest.fixture
def sqlite() -> Iterator[tuple[sa.Engine, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = TenantwatchSQLAlchemyInstrumentor()
    instrumentor.instrument(
        tracer_provider=provider,
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        settings=_SETTINGS,
        install_processor=True,
    )
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id integer PRIMARY KEY, organization_id integer, name text)")
        conn.exec_driver_sql("INSERT INTO items VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 1, 'c')")
    try:
        yield engine, exporter
    finally:
        engine.dispose()
        instrumentor.uninstrument()
        provider.shutdown()


def _db_spans(exporter: InMemorySpanExporter, operation: str) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if (s.attributes or {}).get(A.DB_OPERATION) == operation]


def test_the_processor_judges_tenantwatchs_spans_without_reading_their_attributes_back(
    sqlite: tuple[sa.Engine, InMemorySpanExporter], reads: list[int]
) -> None:
    engine, exporter = sqlite
    exporter.clear()
    reads.clear()
    with tenant_context("1"), engine.connect() as conn:
        conn.execute(
            sa.text("SELECT id, name FROM items WHERE organization_id = :org AND id = :id"), {"org": 1, "id": 1}
        )
        conn.execute(sa.text("SELECT id, organization_id FROM items")).all()  # no tenant filter: a finding

    assert reads == []  # both facts handed over
    clean, leaky = _db_spans(exporter, "SELECT")
    assert "tenantwatch.findings" not in (clean.attributes or {})
    findings = (leaky.attributes or {})[A.FINDINGS]
    assert "missing_tenant_filter" in findings and "cross_tenant_read" in findings  # row 2 is another tenant's
    assert any(e.name == A.FINDING_EVENT for e in leaky.events)
    assert str((leaky.attributes or {})[A.CODE_FILEPATH]).endswith("test_facts_handover.py")
    assert facts_handover.pending() == 0


def _span_with_handover(provider: TracerProvider, statement: str, analyzer: Analyzer) -> Any:
    """An SDK db span whose attributes tenantwatch wrote last, with its facts handed over (what ``_rows._end``
    does)."""
    span = provider.get_tracer("test").start_span("SELECT", attributes={A.DB_STATEMENT: statement, A.DB_SYSTEM: "x"})
    with tenant_context("1"):
        attributes, recipe = AttributeBuilder().build_with_recipe(analyzer.analyze(statement), None, False)
    set_span_attributes(span, attributes, recipe)
    return span


def test_an_attribute_changed_after_tenantwatchs_write_is_what_the_processor_judges(reads: list[int]) -> None:
    heard: list[SpanFacts] = []
    exporter = InMemorySpanExporter()
    processor = TenantwatchSpanProcessor(SimpleSpanProcessor(exporter), settings=_SETTINGS)
    processor.add_finding_listener(lambda finding, facts, span: heard.append(facts))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    analyzer = Analyzer(_SETTINGS)
    analyzer.tables.learn_from_metadata(_metadata())

    span = _span_with_handover(provider, "SELECT id FROM items WHERE organization_id = 1", analyzer)
    span.set_attribute(A.TENANT_ID, "2")  # after tenantwatch: the statement now reads another tenant's rows
    span.end()

    assert [f.tenant_id for f in heard] == ["2"]
    assert reads == [1]  # read from the span: the hand-over no longer matched
    assert "cross_tenant" in (exporter.get_finished_spans()[0].attributes or {})[A.FINDINGS]

    heard.clear()
    span = _span_with_handover(provider, "SELECT id FROM items WHERE organization_id = 1", analyzer)
    span.end()  # unchanged: handed over, no finding
    assert heard == []
    assert reads == [1]


def _metadata() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table("items", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("organization_id", sa.Integer))
    return metadata


def test_a_hand_over_is_only_for_the_attribute_store_it_was_made_from() -> None:
    store: dict[str, Any] = {A.DB_TENANT_FILTER: "present", A.TENANT_ID: "1"}
    handover = facts_handover.Handover(store, dict(store), (), 0, 0, tuple(store.values()))
    facts_handover.hand_over(12345, handover)

    replayed = dict(store)  # same span id, same values, another span (tenantwatch scan's replay, another process)
    assert facts_handover.take(12345, replayed, None) is None
    assert facts_handover.take(12345, store, None) is None  # taken once: gone

    facts_handover.hand_over(12345, handover)
    facts = facts_handover.take(12345, store, 2.0)
    assert facts is not None and facts.tenant_id == "1" and facts.duration_ms == 2.0


def test_hand_overs_of_spans_no_processor_takes_stay_bounded() -> None:
    store: dict[str, Any] = {A.DB_TENANT_FILTER: "present"}
    for span_id in range(facts_handover.MAX_HANDOVERS * 3):
        facts_handover.hand_over(span_id + 1, facts_handover.Handover(store, store, (), 0, 0, (0,)))
    assert facts_handover.pending() <= facts_handover.MAX_HANDOVERS
    for span_id in range(facts_handover.MAX_HANDOVERS * 3):
        facts_handover.take(span_id + 1, store, None)
    assert facts_handover.pending() == 0
