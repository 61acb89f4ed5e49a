"""Helpers for the leak tests: the PII corpus, an in-memory tenantwatch pipeline, and everything it exported as text."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenantwatch.config import Settings
from tenantwatch.context import current_context, tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor
from tenantwatch.processors import TenantwatchSpanProcessor

CORPUS_PATH = Path(__file__).with_name("pii_corpus.yaml")


@dataclass(frozen=True)
class Statement:
    name: str
    sql: str
    params: dict[str, Any]
    fails: bool
    backends: tuple[str, ...]


@dataclass(frozen=True)
class Corpus:
    secrets: dict[str, str]
    schema: str
    statements: tuple[Statement, ...]
    requests: tuple[tuple[str, bool], ...]

    def fill(self, text: str) -> str:
        for name, secret in self.secrets.items():
            text = text.replace("{" + name + "}", secret)
        return text

    def leaked(self, text: str) -> list[str]:
        """The secrets (by name) that appear in ``text``."""
        return [name for name, secret in self.secrets.items() if secret in text]


def load_corpus() -> Corpus:
    data = yaml.safe_load(CORPUS_PATH.read_text(encoding="utf-8"))
    secrets = {str(k): str(v) for k, v in data["secrets"].items()}
    corpus = Corpus(secrets, data["schema"], (), ())
    statements = tuple(
        Statement(
            name=item["name"],
            sql=corpus.fill(item["sql"]),
            params={k: corpus.fill(v) if isinstance(v, str) else v for k, v in (item.get("params") or {}).items()},
            fails=bool(item.get("fails", False)),
            backends=tuple(item.get("backends", ("sqlite", "postgresql"))),
        )
        for item in data["statements"]
    )
    requests = tuple((corpus.fill(item["path"]), bool(item.get("fails", False))) for item in data["requests"])
    return Corpus(secrets, data["schema"], statements, requests)


def run_statements(engine: sa.engine.Engine, corpus: Corpus, backend: str) -> list[str]:
    """Run every statement of the corpus for ``backend`` (as tenant ``1``); the names whose outcome (failed or
    not) differs from what the corpus says."""
    wrong: list[str] = []
    with tenant_context("1", user_id="u-1", role="member"):
        for statement in corpus.statements:
            if backend not in statement.backends:
                continue
            failed = False
            try:
                with engine.begin() as conn:
                    result = conn.execute(sa.text(statement.sql), statement.params)
                    if result.returns_rows:
                        result.all()
            except sa.exc.DBAPIError:
                failed = True
            if failed != statement.fails:
                wrong.append(statement.name)
    return wrong


def make_app(engine: sa.engine.Engine, corpus: Corpus) -> Starlette:
    """``/accounts`` reads (query-string secrets in the URL); ``/signup`` lets a unique violation escape."""

    def accounts(request: Request) -> JSONResponse:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id FROM accounts WHERE organization_id = :org"), {"org": current_context().tenant_id}
            ).all()
        return JSONResponse({"count": len(rows)})

    def signup(request: Request) -> JSONResponse:
        with engine.begin() as conn:  # the email exists: IntegrityError escapes the handler
            conn.execute(
                sa.text("INSERT INTO accounts (id, organization_id, email, api_key) VALUES (:id, :org, :email, :key)"),
                {"id": 99, "org": "1", "email": corpus.secrets["email"], "key": corpus.secrets["api_key"]},
            )
        return JSONResponse({})

    return Starlette(routes=[Route("/accounts", accounts), Route("/signup", signup, methods=["GET"])])


@dataclass
class Pipeline:
    """TracerProvider -> TenantwatchSpanProcessor -> in-memory spans, plus in-memory metrics and log records."""

    settings: Settings
    provider: TracerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    logs: InMemoryLogRecordExporter
    instrumentor: TenantwatchSQLAlchemyInstrumentor = field(default_factory=TenantwatchSQLAlchemyInstrumentor)

    def exported_text(self, records: list[logging.LogRecord]) -> str:
        """Every exported span, log record and metric data point serialized, plus the Python log records."""
        parts = [span.to_json() for span in self.spans.get_finished_spans()]
        parts += [record.to_json() for record in self.logs.get_finished_logs()]
        data = self.metrics.get_metrics_data()
        if data is not None:
            parts.append(data.to_json())
        for record in records:
            parts.append(record.getMessage())
            if record.exc_info:
                parts.append("".join(traceback.format_exception(*record.exc_info)))
        return "\n".join(parts)


def build_pipeline(settings: Settings) -> Pipeline:
    spans, metrics, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
    meter_provider = MeterProvider(metric_readers=[metrics])
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    processor = TenantwatchSpanProcessor(
        SimpleSpanProcessor(spans), settings=settings, meter_provider=meter_provider, logger_provider=logger_provider
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    pipeline = Pipeline(settings, provider, meter_provider, spans, metrics, logs)
    pipeline.instrumentor.instrument(
        tracer_provider=provider, meter_provider=meter_provider, settings=settings, install_processor=False
    )
    return pipeline


def teardown(pipeline: Pipeline) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    if pipeline.instrumentor.is_instrumented_by_opentelemetry:
        pipeline.instrumentor.uninstrument()
    otel = SQLAlchemyInstrumentor()
    if otel.is_instrumented_by_opentelemetry:
        otel.uninstrument()
    pipeline.provider.shutdown()
