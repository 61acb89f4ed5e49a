"""configure() honours OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER (otlp, console, none, comma
lists) and sets the OTLP exporters' timeout deliberately (OTEL_EXPORTER_OTLP_TIMEOUT wins when set)."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from collections.abc import Iterator

import pytest

from tenantwatch import attributes as A
from tenantwatch._configure import configure
from tenantwatch.export import exporter_names
from tenantwatch.export._exporters import otlp_span_exporter

_VARS = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "TENANTWATCH_CONSOLE",
    "TENANTWATCH_RULES_FILE",
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ("otlp",)),
        ("", ("otlp",)),
        ("console", ("console",)),
        ("otlp, Console", ("otlp", "console")),
        ("none", ()),
        ("otlp_proto_grpc", ("otlp_proto_grpc",)),
        ("console,console", ("console",)),
    ],
)
def test_exporter_names(raw: str | None, expected: tuple[str, ...]) -> None:
    environ = {} if raw is None else {"OTEL_TRACES_EXPORTER": raw}
    assert exporter_names("traces", environ) == expected


def test_bad_exporter_names_warn_and_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert exporter_names("logs", {"OTEL_LOGS_EXPORTER": "zipkin"}) == ("otlp",)
        assert exporter_names("metrics", {"OTEL_METRICS_EXPORTER": "none,console"}) == ("console",)
    assert "'zipkin' in OTEL_LOGS_EXPORTER" in caplog.text
    assert "ignoring 'none' in OTEL_METRICS_EXPORTER" in caplog.text


def test_console_exporter_prints_the_enriched_span(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    handle = configure(set_global=False, instrument_sqlalchemy=False)
    assert handle.pipelines is not None
    (console,) = handle.pipelines.span_processors
    # The SDK's console exporter writes to the sys.stdout of import time; point it at a buffer to read it back.
    console.exporter.out = printed = io.StringIO()  # type: ignore[attr-defined]
    try:
        attributes = {
            A.DB_SYSTEM: "postgresql",
            A.DB_STATEMENT: "SELECT * FROM objectives",
            A.DB_TENANT_FILTER: "missing",
            A.DB_TABLES: ("objectives",),
            A.DB_TENANT_TABLES: ("objectives",),
            A.DB_UNFILTERED: ("main:objectives",),
            A.TENANT_ID: "acme",
        }
        from opentelemetry.trace import SpanKind

        with handle.tracer_provider.get_tracer("app").start_as_current_span(
            "SELECT objectives", kind=SpanKind.CLIENT, attributes=attributes
        ):
            pass
        assert handle.force_flush(2000) is True
    finally:
        handle.shutdown(1000)
    out = printed.getvalue()
    span = json.loads(out[out.index("{") :])
    assert "missing_tenant_filter" in span["attributes"][A.FINDINGS]
    assert not handle.pipelines.metric_exporters  # metrics: none
    assert not handle.pipelines.log_processors  # logs: none


def test_none_everywhere_builds_no_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
        monkeypatch.setenv(var, "none")
    handle = configure(set_global=False, instrument_sqlalchemy=False)
    try:
        assert handle.pipelines is not None
        assert not handle.pipelines.span_processors
        assert not handle.pipelines.log_processors
        assert not handle.pipelines.metric_exporters
    finally:
        handle.shutdown(1000)


def test_comma_list_fans_out_to_each_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,console")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "console")
    handle = configure(set_global=False, instrument_sqlalchemy=False, endpoint="http://127.0.0.1:9")
    try:
        assert handle.pipelines is not None
        kinds = [type(p.exporter).__name__ for p in handle.pipelines.span_processors]
        assert kinds == ["OTLPSpanExporter", "ConsoleSpanExporter"]
        assert [type(p.exporter).__name__ for p in handle.pipelines.log_processors] == ["ConsoleLogRecordExporter"]
    finally:
        handle.shutdown(500)


@pytest.fixture
def black_hole() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def _export_seconds(port: int) -> float:
    from opentelemetry.sdk.trace import TracerProvider

    exporter = otlp_span_exporter("http/protobuf", f"http://127.0.0.1:{port}/v1/traces", _timeout_from_configure())
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("s") as span:
        pass
    started = time.monotonic()
    exporter.export([span])  # type: ignore[list-item]
    seconds = time.monotonic() - started
    exporter.shutdown()
    return seconds


def _timeout_from_configure() -> float | None:
    from tenantwatch.export import export_timeout

    return export_timeout("traces")


def test_an_export_to_a_black_hole_gives_up_after_two_seconds(black_hole: int) -> None:
    """The OTLP exporters' own default is 10 s (retries included); configure() passes 2 s."""
    assert 1.5 < _export_seconds(black_hole) < 3.0


def test_otlp_timeout_variable_is_honoured(black_hole: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.5")
    assert _export_seconds(black_hole) < 1.2


def test_an_unknown_exporter_name_says_what_is_used_instead(caplog: pytest.LogCaptureFixture) -> None:
    assert exporter_names("traces", {"OTEL_TRACES_EXPORTER": "consol"}) == ("otlp",)
    assert "'consol'" in caplog.text
    assert "exporting traces with: otlp" in caplog.text
    assert exporter_names("traces", {"OTEL_TRACES_EXPORTER": "none,consol"}) == ()
