"""Requests per second on the example app's correct endpoint: OTel ASGI alone vs OTel ASGI + tenantwatch, one run.

    .venv/bin/python bench/bench_asgi.py                 # SQLite, 3 interleaved rounds of 200-request batches
    .venv/bin/python bench/bench_asgi.py --rounds 5 --requests 300 --pairs full

Configurations, each in its own subprocess (so no instrumentation leaks from one to the next), serving
``GET /objectives?limit=20`` of the example OKR service (examples/okr_app, SQLite, seeded) in-process through
``httpx.ASGITransport``, with an SDK tracer provider (``BatchSpanProcessor`` to an exporter that discards) and an SDK
meter provider. Two pairs:

``full`` (the headline figure):

* ``otel``: opentelemetry-instrumentation-asgi's middleware and opentelemetry-instrumentation-sqlalchemy; the app
  verifies the bearer token itself (a small middleware decoding the HS256 JWT and setting the tenant context), as an
  app without tenantwatch would have to;
* ``tenantwatch``: tenantwatch's ASGI middleware (OTel's middleware inside; JWT resolver, request metrics, security
  observer) and SQLAlchemy instrumentation, with its span processor in front of the batch processor.

``asgi`` (the ASGI layer alone, no SQL instrumentation on either side):

* ``otel-asgi``: OTel's ASGI middleware and the app's own JWT middleware;
* ``tenantwatch-asgi``: tenantwatch's ASGI middleware with its span processor judging the server spans.

Rounds are interleaved (the order alternates); each subprocess reports its fastest batch after a warm-up, the figure
is the median over rounds. Target: tenantwatch / otel time per request <= 1.10.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = {"full": ("otel", "tenantwatch"), "asgi": ("otel-asgi", "tenantwatch-asgi")}
CONFIGS = tuple(c for pair in PAIRS.values() for c in pair)


def _serve(config: str, requests: int, database: str) -> float:
    """Seconds per request (fastest of 5 batches after a warm-up) for ``config``; runs in a subprocess."""
    import asyncio

    import httpx
    import jwt
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from sqlalchemy import create_engine

    sys.path.insert(0, str(ROOT))
    from examples.okr_app import auth
    from examples.okr_app.main import build_api
    from examples.okr_app.seed import DEFAULT_TENANTS, user_id

    from tenantwatch import attributes as A

    class Discard(SpanExporter):
        """Drops spans, counting those tenantwatch judged (so a run that instruments nothing is noticed)."""

        def __init__(self) -> None:
            self.tagged = 0

        def export(self, spans):  # type: ignore[no-untyped-def]
            self.tagged += sum(1 for span in spans if A.DB_TENANT_FILTER in (span.attributes or {}))
            return SpanExportResult.SUCCESS

    discard = Discard()
    engine = create_engine(f"sqlite:///{database}")
    tracer_provider = TracerProvider()
    meter_provider = MeterProvider()
    api = build_api(engine)
    if config.startswith("otel"):
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        from tenantwatch.context import tenant_context

        tracer_provider.add_span_processor(BatchSpanProcessor(discard))
        if config == "otel":
            SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=tracer_provider)
        key = auth.secret()

        async def authenticate(scope, receive, send):  # type: ignore[no-untyped-def]
            headers = dict(scope.get("headers") or ())
            bearer = headers.get(b"authorization", b"").decode()[7:]
            claims = jwt.decode(bearer, key, algorithms=["HS256"])
            with tenant_context(claims["tenant_id"], user_id=claims["sub"], role=claims["role"]):
                await api(scope, receive, send)

        app = OpenTelemetryMiddleware(authenticate, tracer_provider=tracer_provider, meter_provider=meter_provider)
    else:
        from tenantwatch.config import load_settings
        from tenantwatch.instrumentation.asgi import instrument_app
        from tenantwatch.instrumentation.sqlalchemy import TenantwatchSQLAlchemyInstrumentor
        from tenantwatch.processors import TenantwatchSpanProcessor

        settings = load_settings(environ={}, http={"jwt_key_file": auth.secret_file(), "resolvers": ["jwt"]})
        processor = TenantwatchSpanProcessor(
            BatchSpanProcessor(discard), settings=settings, meter_provider=meter_provider
        )
        tracer_provider.add_span_processor(processor)
        if config == "tenantwatch":
            TenantwatchSQLAlchemyInstrumentor().instrument(
                settings=settings, tracer_provider=tracer_provider, engine=engine, install_processor=False
            )
        app = instrument_app(
            api, settings=settings, tracer_provider=tracer_provider, meter_provider=meter_provider, processor=processor
        )

    acme = DEFAULT_TENANTS[0]
    token = auth.make_token(acme.id, user_id(acme, "member"), "member")
    headers = {"authorization": f"Bearer {token}"}

    async def batch(client: httpx.AsyncClient, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            response = await client.get("/objectives?limit=20", headers=headers)
            assert response.status_code == 200, response.text
        return (time.perf_counter() - start) / n

    async def main() -> float:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://okr") as client:
            await batch(client, max(50, requests // 4))  # warm-up: caches, first-connection work
            return min([await batch(client, requests) for _ in range(5)])

    seconds = asyncio.run(main())
    tracer_provider.force_flush()
    if (discard.tagged > 0) != (config == "tenantwatch"):
        raise SystemExit(
            f"{config}: {discard.tagged} db spans carry tenantwatch facts; the setup is not what it claims"
        )
    return seconds


def _seed(path: str) -> None:
    sys.path.insert(0, str(ROOT))
    from examples.okr_app.seed import seed
    from sqlalchemy import create_engine

    seed(create_engine(f"sqlite:///{path}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200, help="requests per timed batch")
    parser.add_argument("--pairs", default="full,asgi", help="comma-separated: full, asgi (default both)")
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps({"seconds": _serve(args.worker, args.requests, args.database)}))
        return 0
    pairs = [name.strip() for name in args.pairs.split(",") if name.strip()]
    unknown = set(pairs) - set(PAIRS)
    if unknown:
        parser.error(f"unknown pair(s) {', '.join(sorted(unknown))}; known: {', '.join(PAIRS)}")
    database = str(Path(tempfile.mkdtemp(prefix="tw-bench-asgi-")) / "okr.db")
    _seed(database)
    configs = [config for name in pairs for config in PAIRS[name]]
    results: dict[str, list[float]] = {config: [] for config in configs}
    for round_index in range(args.rounds):
        order = configs if round_index % 2 == 0 else list(reversed(configs))
        for config in order:
            command = [sys.executable, __file__, "--worker", config, "--requests", str(args.requests)]
            done = subprocess.run([*command, "--database", database], capture_output=True, text=True, check=True)
            results[config].append(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
    print(f"GET /objectives?limit=20 on the example app (SQLite), {args.rounds} rounds x {args.requests} requests")
    labels = {
        "otel": "OTel ASGI + OTel SQLAlchemy",
        "tenantwatch": "+ tenantwatch (ASGI, SQL, processor)",
        "otel-asgi": "OTel ASGI only",
        "tenantwatch-asgi": "+ tenantwatch ASGI middleware, processor",
    }
    for name in pairs:
        base, watched = (statistics.median(results[config]) for config in PAIRS[name])
        print(f"[{name}]")
        for config, seconds in zip(PAIRS[name], (base, watched), strict=True):
            spread = ", ".join(f"{value * 1e6:.0f}" for value in results[config])
            print(
                f"  {labels[config]:<42} {seconds * 1e6:7.0f} us/request {1 / seconds:7.0f} req/s  (rounds: {spread})"
            )
        ratio = watched / base
        verdict = "met" if ratio <= 1.10 else "MISSED"
        print(f"  ratio (OTel + tenantwatch) / (OTel alone) = {ratio:.3f}   target <= 1.10: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
