"""tenantwatch.configure(): one call sets up providers, exporters, the processor and settings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tenantwatch import attributes as A
from tenantwatch._configure import TenantwatchHandle, configure, resolve_protocol
from tenantwatch.config import ConfigError, Settings
from tenantwatch.facts import SpanFacts

UNFILTERED = SpanFacts(
    operation="SELECT",
    main_table="objectives",
    tables=("objectives",),
    tenant_tables=("objectives",),
    tenant_filter="missing",
    unfiltered=("main:objectives",),
    statement_fingerprint="0123456789abcdef",
    returned_rows=2,
    tenant_id="acme",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "TENANTWATCH_RULES_FILE",
        "TENANTWATCH_MODE",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def in_memory() -> Iterator[dict[str, Any]]:
    sinks: dict[str, Any] = {
        "span_exporter": InMemorySpanExporter(),
        "metric_reader": InMemoryMetricReader(),
        "log_exporter": InMemoryLogRecordExporter(),
    }
    yield sinks


def _configure(in_memory: dict[str, Any], **kwargs: Any) -> TenantwatchHandle:
    return configure(set_global=False, instrument_sqlalchemy=False, **in_memory, **kwargs)


def _emit_unfiltered(handle: TenantwatchHandle) -> None:
    tracer = handle.tracer_provider.get_tracer("app")
    attributes = {A.DB_SYSTEM: "postgresql", A.DB_STATEMENT: "SELECT * FROM objectives", **UNFILTERED.to_attributes()}
    with tracer.start_as_current_span("SELECT objectives", kind=SpanKind.CLIENT, attributes=attributes):
        pass


def test_configure_wires_spans_metrics_and_logs(in_memory: dict[str, Any]) -> None:
    handle = _configure(in_memory, service_name="okr-api")
    try:
        _emit_unfiltered(handle)
        assert handle.force_flush()
        (span,) = in_memory["span_exporter"].get_finished_spans()
        assert span.resource.attributes["service.name"] == "okr-api"
        assert (span.attributes or {})[A.FINDINGS] == ("missing_tenant_filter",)
        (record,) = in_memory["log_exporter"].get_finished_logs()
        assert record.log_record.attributes[A.RULE] == "missing_tenant_filter"
        assert record.log_record.trace_id == span.context.trace_id
        data = in_memory["metric_reader"].get_metrics_data()
        names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
        assert {A.METRIC_FINDINGS, A.METRIC_OPERATION_DURATION, A.METRIC_RETURNED_ROWS} <= names
        assert handle.processor.settings is handle.settings
        assert handle.analyzer.settings is handle.settings
    finally:
        handle.shutdown()
    handle.shutdown()  # idempotent


def test_bad_rules_file_fails_at_start_naming_the_field(in_memory: dict[str, Any], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  large_result: {threshold: -5}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules\.large_result\.threshold"):
        _configure(in_memory, rules_file=rules)


def test_rules_file_and_mode_argument(
    in_memory: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("mode: enforce\nrules:\n  slow_query: {threshold_ms: 5}\n", encoding="utf-8")
    monkeypatch.setenv("TENANTWATCH_RULES_FILE", str(rules))
    handle = _configure(in_memory, mode="monitor")
    try:
        assert handle.settings.mode == "monitor"
        assert handle.settings.slow_query_ms == 5
    finally:
        handle.shutdown()


def test_mode_overrides_given_settings(in_memory: dict[str, Any]) -> None:
    handle = _configure(in_memory, settings=Settings(tenant_label_cap=5), mode="off")
    try:
        assert (handle.settings.mode, handle.settings.tenant_label_cap) == ("off", 5)
        _emit_unfiltered(handle)
        handle.force_flush()
        (span,) = in_memory["span_exporter"].get_finished_spans()
        assert A.FINDINGS not in (span.attributes or {})
    finally:
        handle.shutdown()


def test_settings_and_rules_file_together_is_an_error(in_memory: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rules_file"):
        _configure(in_memory, settings=Settings(), rules_file=tmp_path / "x.yaml")


def test_bad_mode_argument_names_the_field(in_memory: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="mode"):
        _configure(in_memory, mode="loud")
    with pytest.raises(ConfigError, match="mode"):
        _configure(in_memory, settings=Settings(), mode="loud")


def test_no_exporters_still_judges_spans(in_memory: dict[str, Any]) -> None:
    handle = configure(set_global=False, instrument_sqlalchemy=False, exporters=False)
    try:
        _emit_unfiltered(handle)  # nowhere to go, but nothing breaks
        assert handle.force_flush()
    finally:
        handle.shutdown()


# --- OTLP protocol selection ------------------------------------------------------------------------------------


def test_protocol_defaults_to_http_protobuf() -> None:
    assert resolve_protocol("traces", environ={}) == "http/protobuf"


def test_protocol_from_signal_variable_then_general_variable() -> None:
    environ = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"}
    assert resolve_protocol("traces", environ=environ) == "grpc"
    assert resolve_protocol("metrics", environ=environ) == "grpc"
    assert resolve_protocol("logs", environ=environ) == "http/protobuf"


def test_explicit_protocol_wins_and_must_be_valid() -> None:
    assert resolve_protocol("traces", "GRPC", environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}) == "grpc"
    with pytest.raises(ConfigError, match="protocol"):
        resolve_protocol("traces", "http/json")


def test_bad_protocol_variable_warns_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tenantwatch._configure"):
        protocol = resolve_protocol(
            "traces",
            environ={"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "carrier-pigeon", "OTEL_EXPORTER_OTLP_PROTOCOL": ""},
        )
    assert protocol == "http/protobuf"
    assert "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" in caplog.text


def test_configure_instruments_sqlalchemy_end_to_end(in_memory: dict[str, Any]) -> None:
    import sqlalchemy as sa

    from tenantwatch.context import tenant_context

    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE objectives (id INTEGER PRIMARY KEY, organization_id TEXT)"))
        connection.execute(sa.text("INSERT INTO objectives (organization_id) VALUES ('acme'), ('globex')"))
    handle = configure(set_global=False, engine=engine, **in_memory)
    try:
        assert handle.instrumentor is not None
        with tenant_context("acme"), engine.connect() as connection:
            everyone = connection.execute(sa.text("SELECT id FROM objectives")).fetchall()
            mine = connection.execute(
                sa.text("SELECT id FROM objectives WHERE organization_id = :org"), {"org": "acme"}
            ).fetchall()
        assert (len(everyone), len(mine)) == (2, 1)
        handle.force_flush()
        selects = [
            s for s in in_memory["span_exporter"].get_finished_spans() if A.DB_TENANT_FILTER in (s.attributes or {})
        ]
        assert [(s.attributes or {}).get(A.FINDINGS) for s in selects] == [("missing_tenant_filter",), None]
        (record,) = in_memory["log_exporter"].get_finished_logs()
        assert record.log_record.attributes[A.TENANT_ID] == "acme"
    finally:
        handle.shutdown()
        engine.dispose()


def test_instrumented_says_what_configure_turned_on(in_memory: dict[str, Any]) -> None:
    import tenantwatch

    before = tenantwatch.instrumented()
    assert "sqlalchemy" not in before
    assert tenantwatch.missing_instrumentation("sqlalchemy") is None  # the dev environment has every extra
    handle = configure(set_global=False, **in_memory)
    try:
        assert "sqlalchemy" in tenantwatch.instrumented()
    finally:
        handle.shutdown()
    assert "sqlalchemy" not in tenantwatch.instrumented()
