"""Run in a subprocess by the scan end-to-end test: the example OKR app in-process, driven by the traffic generator
(normal, buggy, unauthenticated and attack requests), exporting its spans over OTLP/HTTP to the collector given as
argv[1], judged live with examples/rules.yaml. Writes what was raised live, collected with a finding listener on the
processor, to argv[2]: {"findings": {fingerprint: count}, "rules": {fingerprint: rule}, "spans": exported spans}."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from examples.okr_app import main as okr  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SynchronousMultiSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from examples import traffic  # noqa: E402


class _Count(SpanExporter):
    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def main(endpoint: str, out: str) -> int:
    count = _Count()
    fan_out = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
    fan_out.add_span_processor(SimpleSpanProcessor(count))
    fan_out.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    settings = okr.okr_settings(REPO / "examples" / "rules.yaml")
    workdir = tempfile.mkdtemp(prefix="tenantwatch-scan-e2e-")
    app, handle, engine = okr.create_app(
        f"sqlite:///{workdir}/okr.db",
        settings=settings,
        span_exporter=fan_out,
        exporters=False,
        set_global=False,
        service_name="okr-scan-e2e",
    )
    findings: Counter[str] = Counter()
    rules: dict[str, str] = {}

    def listen(finding: Any, facts: Any, span: Any) -> None:
        findings[finding.fingerprint] += 1
        rules[finding.fingerprint] = finding.rule

    handle.processor.add_finding_listener(listen)
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        asyncio.run(
            traffic.run(
                "http://okr.local", requests=150, duration=60, concurrency=4, transport=transport, progress=False
            )
        )
    finally:
        handle.shutdown()
        engine.dispose()
    Path(out).write_text(json.dumps({"findings": findings, "rules": rules, "spans": count.spans}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
