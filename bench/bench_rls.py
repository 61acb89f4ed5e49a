"""What the RLS assist costs per transaction, and what reading the current setting adds, measured in one run.

    .venv/bin/python bench/bench_rls.py                   # starts a throw-away PostgreSQL (Debian binaries)
    .venv/bin/python bench/bench_rls.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/tenantwatch

Part 1, psycopg alone (round trips, no Python instrumentation), per transaction of one primary-key SELECT:

* ``plain``: the transaction alone;
* ``set``: ``SELECT set_config(s, t, true)`` first (what any SET LOCAL scheme costs);
* ``read+set``: ``SELECT current_setting(s, true), set_config(s, t, true)``: what the assist runs (one round trip);
* ``set, read``: the set and a separate read (the alternative: two round trips);
* ``read``: ``SELECT current_setting(s, true)`` alone (what the assist runs when no tenant is in context).

Part 2, SQLAlchemy + OpenTelemetry + tenantwatch (spans to an exporter that discards), per ``with
engine.connect()`` transaction of one SELECT, RLS assist off vs on.

Rounds are interleaved; each figure is the median over rounds of the fastest batch in the round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SETTING = "app.tenant_id"


def _best(run: Callable[[], None], batch: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batch):
            run()
        best = min(best, (time.perf_counter() - start) / batch)
    return best


def _psycopg_cases(dsn: str) -> dict[str, Callable[[], None]]:
    import psycopg

    conn = psycopg.connect(dsn)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_rls (id int PRIMARY KEY, organization_id text)")
    conn.execute("INSERT INTO bench_rls VALUES (1, '1') ON CONFLICT DO NOTHING")
    conn.commit()
    query = "SELECT id, organization_id FROM bench_rls WHERE id = %s"

    def plain() -> None:
        conn.execute(query, (1,)).fetchall()
        conn.commit()

    def set_only() -> None:
        conn.execute("SELECT set_config(%s, %s, true)", (SETTING, "1")).fetchone()
        plain()

    def read_and_set() -> None:
        conn.execute("SELECT current_setting(%s, true), set_config(%s, %s, true)", (SETTING, SETTING, "1")).fetchone()
        plain()

    def set_then_read() -> None:
        conn.execute("SELECT set_config(%s, %s, true)", (SETTING, "1")).fetchone()
        conn.execute("SELECT current_setting(%s, true)", (SETTING,)).fetchone()
        plain()

    def read_only() -> None:
        conn.execute("SELECT current_setting(%s, true)", (SETTING,)).fetchone()
        plain()

    return {"plain": plain, "set": set_only, "read+set": read_and_set, "set, read": set_then_read, "read": read_only}


def _sqlalchemy_case(url: str, rls: bool) -> tuple[Callable[[], None], Callable[[], None]]:
    import sqlalchemy as sa
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from tenantwatch.config import RlsSettings, Settings
    from tenantwatch.context import tenant_context
    from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

    class _Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Discard()))
    instrumentor = TenantwatchSQLAlchemyInstrumentor()
    settings = Settings(rls=RlsSettings(enabled=rls))
    instrumentor.instrument(settings=settings, tracer_provider=provider)
    engine = sa.create_engine(url, pool_size=1)
    query = sa.text("SELECT id, organization_id FROM bench_rls WHERE id = :id AND organization_id = '1'")

    def run() -> None:
        with tenant_context("1"), engine.connect() as conn:
            conn.execute(query, {"id": 1}).all()
            conn.commit()

    def close() -> None:
        engine.dispose()
        instrumentor.uninstrument()
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        if SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry:
            SQLAlchemyInstrumentor().uninstrument()

    return run, close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-url", help="SQLAlchemy URL (psycopg); default: start a throw-away server")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=300)
    args = parser.parse_args()
    server = None
    url = args.postgres_url
    if url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from postgres_server import PostgresServer

        server = PostgresServer().start()
        url = server.url
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        cases = _psycopg_cases(dsn)
        times: dict[str, list[float]] = {name: [] for name in cases}
        times.update({"tenantwatch, rls off": [], "tenantwatch, rls on": []})
        for round_ in range(args.rounds):
            names = list(cases)
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                times[name].append(_best(cases[name], args.batch))
            for rls in (round_ % 2 == 0, round_ % 2 == 1):
                run, close = _sqlalchemy_case(url, rls)
                try:
                    run()
                    times[f"tenantwatch, rls {'on' if rls else 'off'}"].append(_best(run, args.batch // 2))
                finally:
                    close()
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"{'case':<24}{'µs/transaction':>16}{'vs plain':>10}")
        for name in cases:
            print(f"{name:<24}{median[name] * 1e6:>16.1f}{median[name] / median['plain']:>10.2f}")
        off, on = median["tenantwatch, rls off"], median["tenantwatch, rls on"]
        print(f"{'tenantwatch, rls off':<24}{off * 1e6:>16.1f}")
        print(f"{'tenantwatch, rls on':<24}{on * 1e6:>16.1f}{on / off:>10.2f}  (vs rls off)")
        extra_read = median["set, read"] - median["set"]
        combined_read = median["read+set"] - median["set"]
        print(f"reading the setting: {combined_read * 1e6:.1f} µs in the same statement as the set, ")
        print(f"                     {extra_read * 1e6:.1f} µs as a statement of its own")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
