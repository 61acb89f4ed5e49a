"""Shared by the scan tests: a real live run (SQLAlchemy on SQLite, instrumented by configure()) whose findings are
collected with a listener, and its spans written as the collector's file exporter writes them (json and proto)."""

from __future__ import annotations

import base64
import json
import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tenantwatch import configure, load_settings, tenant_context


@dataclass
class LiveRun:
    spans: list[ReadableSpan]
    findings: Counter[str]
    """Finding fingerprint -> occurrences raised live."""
    rules: dict[str, str]
    """Finding fingerprint -> rule."""


def live_run(repeats: int = 6) -> LiveRun:
    import sqlalchemy as sa

    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE notes (id INTEGER PRIMARY KEY, organization_id TEXT, body TEXT)"))
        connection.execute(sa.text("INSERT INTO notes (organization_id, body) VALUES ('acme', 'a'), ('globex', 'b')"))
    exporter = InMemorySpanExporter()
    settings = load_settings(tenant_tables={"notes": "organization_id"}, dedupe={"enabled": False})
    handle = configure(
        set_global=False,
        engine=engine,
        settings=settings,
        span_exporter=exporter,
        exporters=False,
        service_name="scan-test",
    )
    findings: Counter[str] = Counter()
    rules: dict[str, str] = {}

    def listen(finding: Any, facts: Any, span: Any) -> None:
        findings[finding.fingerprint] += 1
        rules[finding.fingerprint] = finding.rule

    handle.processor.add_finding_listener(listen)
    try:
        with tenant_context("acme"), engine.connect() as connection:
            for _ in range(repeats):
                connection.execute(sa.text("SELECT id FROM notes WHERE organization_id = :o"), {"o": "acme"}).all()
                connection.execute(sa.text("SELECT id, body FROM notes")).all()  # missing filter (and a leak)
                connection.execute(sa.text("SELECT id FROM notes WHERE organization_id = :o"), {"o": "globex"}).all()
            connection.execute(sa.text("DELETE FROM notes WHERE id = 99"))
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT id FROM notes WHERE organization_id = 'acme'")).all()  # no context
        handle.force_flush()
    finally:
        handle.shutdown()
        engine.dispose()
    return LiveRun(list(exporter.get_finished_spans()), findings, rules)


def _hex_ids(node: Any) -> Any:
    """protobuf's JSON mapping writes bytes as base64; OTLP/JSON (the collector) writes trace and span ids as hex."""
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex()
            if key in ("traceId", "spanId", "parentSpanId") and value
            else _hex_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def otlp_json_line(spans: Sequence[ReadableSpan]) -> str:
    """One line as the file exporter's ``format: json`` writes it."""
    return json.dumps(_hex_ids(MessageToDict(encode_spans(spans))))


def write_json(path: Path, spans: Sequence[ReadableSpan], batch: int = 7) -> Path:
    with path.open("w") as handle:
        for start in range(0, len(spans), batch):
            handle.write(otlp_json_line(spans[start : start + batch]) + "\n")
    return path


def proto_record(spans: Sequence[ReadableSpan]) -> bytes:
    data = encode_spans(spans).SerializeToString()
    return struct.pack(">I", len(data)) + data


def write_proto(path: Path, spans: Sequence[ReadableSpan], batch: int = 7) -> Path:
    with path.open("wb") as handle:
        for start in range(0, len(spans), batch):
            handle.write(proto_record(spans[start : start + batch]))
    return path
