"""Run in a subprocess by the report test: a tenantwatch-instrumented SQLite workload of three tenants, exporting
OTLP (metrics every second) to the collector.

Over about ten seconds every tenant runs a steady trickle of scoped reads; acme also runs an unscoped read each
round (missing_tenant_filter, then repeated_violations), globex reads more rows than the large-result limit and then
bursts 200 reads in one second (a query-volume spike), initech runs one slow statement. Prints one JSON line with the
Unix times the workload started and ended and the burst's time.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import sqlalchemy as sa

import tenantwatch
from tenantwatch import tenant_context

TENANTS = ("acme", "globex", "initech")
ROUNDS = 6
BURST = 200
SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) SELECT count(*) FROM c"


def main() -> int:
    workdir = tempfile.mkdtemp()
    engine = sa.create_engine(f"sqlite:///{os.path.join(workdir, 'report.db')}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (id integer PRIMARY KEY, organization_id text NOT NULL, body text)"))
        rows = [{"t": tenant, "b": f"n{i}"} for tenant in TENANTS for i in range(120)]
        conn.execute(sa.text("INSERT INTO notes (organization_id, body) VALUES (:t, :b)"), rows)
    settings = tenantwatch.load_settings(rules={"large_result": {"threshold": 100}, "slow_query": {"threshold_ms": 25}})
    handle = tenantwatch.configure(engine=engine, settings=settings)
    scoped = sa.text("SELECT id FROM notes WHERE organization_id = :t LIMIT 5")
    started = time.time()
    burst_at = 0.0
    with engine.connect() as conn:
        for round_ in range(ROUNDS):
            for tenant in TENANTS:
                with tenant_context(tenant):
                    for _ in range(3):
                        conn.execute(scoped, {"t": tenant}).all()
                    if tenant == "acme":
                        conn.execute(sa.text("SELECT id, body FROM notes WHERE body = :b"), {"b": "n1"}).all()
                    if tenant == "globex" and round_ == 1:
                        conn.execute(sa.text("SELECT id FROM notes WHERE organization_id = :t"), {"t": tenant}).all()
                    if tenant == "initech" and round_ == 2:
                        conn.execute(sa.text(SLOW)).all()
            if round_ == 3:
                burst_at = time.time()
                with tenant_context("globex"):
                    for _ in range(BURST):
                        conn.execute(scoped, {"t": "globex"}).all()
            time.sleep(1.0)
    ended = time.time()
    ok = handle.shutdown()
    print(json.dumps({"started": started, "ended": ended, "burst_at": burst_at, "flushed": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
