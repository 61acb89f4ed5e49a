"""Memory over a long run: RSS stays flat after 1M statements over 100k tenants (issue 13).

    .venv/bin/python bench/bench_memory.py                      # 1M statements, 100k tenants (a few minutes)
    .venv/bin/python bench/bench_memory.py --statements 200000  # shorter

One process, the ``tenantwatch`` configuration of bench/bench_queries.py (OTel's SQLAlchemy instrumentation, the SDK
tracer provider with a batch processor to an exporter that discards, the SDK meter provider, tenantwatch's
instrumentation and its span processor) on in-memory SQLite. Each statement runs in the tenant context of the next
of ``--tenants`` tenants in turn: a ``SELECT`` by key and tenant filter, and every ``--write-every``-th statement an
``UPDATE`` of one row of that tenant (so the per-tenant windows of the write rules fill too). Nothing is inserted:
the database itself does not grow.

Everything tenantwatch keeps per tenant, statement or result is bounded (analysis caches, rule windows, the tenant
buckets of metric labels, open results), so once those bounds are reached the resident set size must not grow.
The figure: RSS at 20 % of the run (every cache and window warm by then) against RSS at the end; target: within
+-5 %. RSS is read from /proc/self/status (Linux).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

TOLERANCE = 0.05
"""RSS at the end of the run within this fraction of RSS at 20 % of it."""


def rss_bytes() -> int:
    """The resident set size of this process (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS in /proc/self/status: this bench needs Linux")


def run(statements: int, tenants: int, write_every: int, checkpoints: int) -> int:
    from bench_queries import _instrument

    _instrument("tenantwatch")  # before create_engine: OTel patches it

    import sqlalchemy as sa

    from tenantwatch.context import tenant_context

    metadata = sa.MetaData()
    items = sa.Table(
        "bench_items",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organization_id", sa.Integer, nullable=False),
        sa.Column("price", sa.Integer, nullable=False),
    )
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    rows = 1000
    with engine.begin() as conn:
        conn.execute(sa.insert(items), [{"id": i, "organization_id": i % tenants, "price": i} for i in range(rows)])
    select = sa.select(items).where(items.c.organization_id == sa.bindparam("t"), items.c.id == sa.bindparam("pk"))
    update = (
        sa.update(items)
        .where(items.c.organization_id == sa.bindparam("t"), items.c.id == sa.bindparam("pk"))
        .values(price=sa.bindparam("p"))
    )

    every = max(1, statements // checkpoints)
    marks: list[tuple[int, int]] = []
    started = time.perf_counter()
    print(f"{statements:,} statements over {tenants:,} tenants, an UPDATE every {write_every}; RSS every {every:,}")
    with engine.connect() as conn:
        for n in range(1, statements + 1):
            tenant = n % tenants
            params: dict[str, Any] = {"t": tenant, "pk": n % rows}
            with tenant_context(str(tenant), user_id=f"u-{tenant}", role="member"):
                if n % write_every == 0:
                    params["p"] = n
                    conn.execute(update, params)
                    conn.commit()
                else:
                    conn.execute(select, params).all()
            if n % every == 0:
                gc.collect()
                marks.append((n, rss_bytes()))
                elapsed = time.perf_counter() - started
                print(f"  {n:>10,} statements  RSS {marks[-1][1] / 2**20:8.1f} MiB  ({elapsed:6.1f} s)", flush=True)
    if len(marks) < 2:
        raise SystemExit("too few statements for two RSS readings: raise --statements")
    warm = next(mark for mark in marks if mark[0] >= statements // 5)
    end = marks[-1]
    change = (end[1] - warm[1]) / warm[1]
    met = abs(change) <= TOLERANCE
    print(
        f"RSS after {warm[0]:,} statements {warm[1] / 2**20:.1f} MiB, after {end[0]:,} {end[1] / 2**20:.1f} MiB:"
        f" {change:+.1%}, target within +-{TOLERANCE:.0%}: {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--write-every", type=int, default=10, help="one UPDATE every this many statements")
    parser.add_argument("--checkpoints", type=int, default=10, help="RSS readings over the run")
    args = parser.parse_args(argv)
    if args.statements < 10 or args.tenants < 1 or args.write_every < 1 or args.checkpoints < 2:
        parser.error("need --statements >= 10, --tenants >= 1, --write-every >= 1, --checkpoints >= 2")
    return run(args.statements, args.tenants, args.write_every, args.checkpoints)


if __name__ == "__main__":
    sys.exit(main())
