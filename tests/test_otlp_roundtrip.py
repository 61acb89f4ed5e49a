"""OTLP round trip: configure() exports traces, metrics and logs to a receiver started here, decoded with
opentelemetry-proto, and the finding is in all three (OTLP/HTTP and OTLP/gRPC)."""

from __future__ import annotations

import gzip
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from opentelemetry.trace import SpanKind

from tenantwatch import attributes as A
from tenantwatch._configure import configure
from tenantwatch.core.findings import finding_fingerprint
from tenantwatch.facts import SpanFacts

FACTS = SpanFacts(
    operation="SELECT",
    main_table="objectives",
    tables=("objectives", "key_results"),
    tenant_tables=("objectives", "key_results"),
    tenant_filter="partial",
    unfiltered=("join:key_results:key_results",),
    tenant_values=("acme",),
    statement_fingerprint="5eed5eed5eed5eed",
    returned_rows=4,
    tenant_id="acme",
    user_id="u-9",
    role="member",
    code_function="dashboard",
    code_filepath="/srv/app/views.py",
    code_lineno=12,
)
STATEMENT = "SELECT o.id FROM objectives o JOIN key_results k ON k.objective_id = o.id WHERE o.organization_id = %s"


class Received:
    """Decoded export requests, by signal."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, list[Message]] = defaultdict(list)

    def add(self, signal: str, request: Message) -> None:
        with self.lock:
            self.requests[signal].append(request)


_REQUESTS: dict[str, tuple[type[Message], type[Message]]] = {
    "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "/v1/metrics": (metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse),
    "/v1/logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}


class _Handler(BaseHTTPRequestHandler):
    server: _HttpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        kinds = _REQUESTS.get(self.path)
        if kinds is None:
            self.send_error(404)
            return
        request_type, response_type = kinds
        self.server.received.add(self.path.rsplit("/", 1)[1], request_type.FromString(body))
        response = response_type().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(response)))
        self.end_headers()
        self.wfile.write(response)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HttpReceiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received = Received()


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, Received]]:
    server = _HttpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.received
    finally:
        server.shutdown()
        server.server_close()


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Message, context: Any) -> Message:
        self.received.add("traces", request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Message, context: Any) -> Message:
        self.received.add("metrics", request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Message, context: Any) -> Message:
        self.received.add("logs", request)
        return logs_service_pb2.ExportLogsServiceResponse()


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    received = Received()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(received), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(received), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(received), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)


@pytest.fixture(autouse=True)
def _no_stray_otlp_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_CERTIFICATE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("TENANTWATCH_RULES_FILE", raising=False)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def _round_trip(endpoint: str, protocol: str, received: Received) -> None:
    handle = configure(
        service_name="okr-api",
        endpoint=endpoint,
        protocol=protocol,
        instrument_sqlalchemy=False,
        set_global=False,
    )
    tracer = handle.tracer_provider.get_tracer("app")
    attributes = {A.DB_SYSTEM: "postgresql", A.DB_STATEMENT: STATEMENT, **FACTS.to_attributes()}
    with tracer.start_as_current_span("SELECT objectives", kind=SpanKind.CLIENT, attributes=attributes) as span:
        trace_id = span.get_span_context().trace_id.to_bytes(16, "big")
        span_id = span.get_span_context().span_id.to_bytes(8, "big")
    handle.shutdown()
    fingerprint = finding_fingerprint("missing_tenant_filter", FACTS)

    # traces: the enriched db span, with the finding event and attributes
    spans = [
        (resource_spans, s)
        for request in received.requests["traces"]
        for resource_spans in request.resource_spans  # type: ignore[attr-defined]
        for scope_spans in resource_spans.scope_spans
        for s in scope_spans.spans
    ]
    ((resource_spans, exported),) = spans
    assert _attributes(resource_spans.resource.attributes)["service.name"] == "okr-api"
    assert (exported.trace_id, exported.span_id) == (trace_id, span_id)
    span_attributes = _attributes(exported.attributes)
    assert span_attributes[A.FINDINGS] == ("missing_tenant_filter",)
    assert span_attributes[A.SEVERITY] == "critical"
    assert span_attributes[A.TENANT_ID] == "acme"
    (event,) = [e for e in exported.events if e.name == A.FINDING_EVENT]
    event_attributes = _attributes(event.attributes)
    assert event_attributes[A.RULE] == "missing_tenant_filter"
    assert event_attributes[A.FINGERPRINT] == fingerprint
    assert event_attributes[A.FINDING_TABLE] == "key_results"
    assert "key_results" in event_attributes[A.MESSAGE]

    # metrics: the findings counter with its labels, and the per-statement histograms
    metrics = {
        m.name: m
        for request in received.requests["metrics"]
        for resource_metrics in request.resource_metrics  # type: ignore[attr-defined]
        for scope_metrics in resource_metrics.scope_metrics
        for m in scope_metrics.metrics
    }
    (point,) = metrics[A.METRIC_FINDINGS].sum.data_points
    assert point.as_int == 1
    assert _attributes(point.attributes) == {
        A.RULE: "missing_tenant_filter",
        A.SEVERITY: "critical",
        A.DB_COLLECTION_NAME: "key_results",
        A.TENANT_BUCKET: "acme",
    }
    (duration,) = metrics[A.METRIC_OPERATION_DURATION].histogram.data_points
    assert duration.count == 1
    assert _attributes(duration.attributes)[A.DB_COLLECTION_NAME] == "objectives"
    assert metrics[A.METRIC_OPERATION_DURATION].unit == "s"
    (rows,) = metrics[A.METRIC_RETURNED_ROWS].histogram.data_points
    assert rows.sum == 4

    # logs: one error record for the finding, correlated with the db span
    records = [
        r
        for request in received.requests["logs"]
        for resource_logs in request.resource_logs  # type: ignore[attr-defined]
        for scope_logs in resource_logs.scope_logs
        for r in scope_logs.log_records
    ]
    (record,) = records
    assert record.severity_number == SeverityNumber.SEVERITY_NUMBER_ERROR
    assert record.body.string_value == event_attributes[A.MESSAGE]
    assert (record.trace_id, record.span_id) == (trace_id, span_id)
    log_attributes = _attributes(record.attributes)
    assert log_attributes[A.FINGERPRINT] == fingerprint
    assert log_attributes[A.DB_QUERY_TEXT] == STATEMENT
    assert log_attributes[A.CODE_FUNCTION] == "dashboard"


def test_otlp_http_round_trip(http_receiver: tuple[str, Received]) -> None:
    endpoint, received = http_receiver
    _round_trip(endpoint, "http/protobuf", received)


def test_otlp_grpc_round_trip(grpc_receiver: tuple[str, Received]) -> None:
    endpoint, received = grpc_receiver
    _round_trip(endpoint, "grpc", received)
