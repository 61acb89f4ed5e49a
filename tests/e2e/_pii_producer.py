"""Run in a subprocess by the PII pipeline test: the PII corpus (tests/reliability/pii_corpus.yaml) through a
tenantwatch-configured service exporting OTLP to the collector, on SQLite and (when TW_PII_POSTGRES_URL is set)
PostgreSQL, plus the corpus's requests through the ASGI middleware. Prints the statements whose outcome differed
from the corpus (none expected)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import httpx
import sqlalchemy as sa

import tenantwatch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

from _leaks_support import load_corpus, make_app, run_statements


def main() -> int:
    corpus = load_corpus()
    settings = tenantwatch.load_settings(http={"trust_headers": True})
    handle = tenantwatch.configure(settings=settings)
    engines: dict[str, sa.engine.Engine] = {}
    sqlite = sa.create_engine(f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'pii.db')}")
    with sqlite.begin() as conn:
        conn.exec_driver_sql(corpus.schema)
    engines["sqlite"] = sqlite
    postgres_url = os.environ.get("TW_PII_POSTGRES_URL")
    if postgres_url:
        schema = os.environ["TW_PII_POSTGRES_SCHEMA"]
        engines["postgresql"] = sa.create_engine(postgres_url, connect_args={"options": f"-csearch_path={schema}"})
    wrong: list[str] = []
    statuses: list[int] = []
    for backend, engine in engines.items():
        wrong += [f"{backend}: {name}" for name in run_statements(engine, corpus, backend)]
        app = handle.instrument_app(make_app(engine, corpus))

        async def drive(app: object = app) -> None:
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000), raise_app_exceptions=False)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://api.example.com") as client:
                for path, _fails in corpus.requests:
                    statuses.append((await client.get(path, headers={"x-tenant-id": "1"})).status_code)

        asyncio.run(drive())
    handle.shutdown()
    for engine in engines.values():
        engine.dispose()
    print("wrong:", "; ".join(wrong))
    print("statuses:", " ".join(map(str, statuses)))
    return 0 if not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
