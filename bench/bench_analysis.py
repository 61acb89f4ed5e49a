"""Statement analysis cost: cache hit, cold analysis (p50/p95), against sqlglot's parse of the same statements.

Run: ``python bench/bench_analysis.py`` (optionally ``--rounds N``). Statements are what SQLAlchemy 2.0's ORM emits
for PostgreSQL (psycopg, ``%(name)s`` placeholders): plain selects, joinedload / selectinload forms, a correlated
subquery, a CTE, insert / insertmanyvalues, update, delete. The peers are measured in the same run:

* sqlglot ``parse_one(..., read="postgres")`` — parse only, no analysis (the fallback parser, and the usual
  pure-Python choice);
* pglast ``parse_sql`` — libpg_query into Python AST objects (parse only).

Targets: cache hit <= 5 us; cold analysis p50 <= 150 us. Times are the CPU time of the measuring thread
(``time.thread_time_ns``), so other processes on a shared machine do not inflate them; ratios compare peers measured
in the same run the same way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import pglast
import sqlglot
from sqlalchemy import ForeignKey, String, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship

from tenantwatch.config import Settings
from tenantwatch.sql import Analyzer
from tenantwatch.sql import analyzer as _analyzer_module
from tenantwatch.sql._normalize import normalize


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    email: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(100))
    orders: Mapped[list[Order]] = relationship(back_populates="user")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20))
    total: Mapped[int]
    user: Mapped[User] = relationship(back_populates="orders")


def _sql(statement: object) -> str:
    dialect = postgresql.psycopg.dialect()  # type: ignore[attr-defined]
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})  # type: ignore[attr-defined]
    return str(compiled)


def statements() -> dict[str, str]:
    org = 7
    recent = (
        select(Order.user_id, func.count(Order.id).label("n"))
        .where(Order.organization_id == org, Order.status == "open")
        .group_by(Order.user_id)
        .cte("recent")
    )
    correlated = (
        select(func.count(Order.id))
        .where(Order.user_id == User.id, Order.organization_id == org)
        .correlate(User)
        .scalar_subquery()
    )
    return {
        "select by id": _sql(select(User).where(User.organization_id == org, User.id == 5)),
        "joinedload": _sql(
            select(User).options(joinedload(User.orders)).where(User.organization_id == org).order_by(User.id).limit(20)
        ),
        "selectinload": _sql(
            select(Order).where(Order.organization_id == org, Order.user_id.in_([1, 2, 3, 4, 5, 6, 7, 8]))
        ),
        "join + filter": _sql(
            select(Order, User)
            .join(User, Order.user_id == User.id)
            .where(Order.organization_id == org, User.organization_id == org, Order.status.in_(["open", "paid"]))
            .order_by(Order.id.desc())
            .limit(50)
            .offset(100)
        ),
        "correlated": _sql(select(User.id, User.name, correlated.label("orders")).where(User.organization_id == org)),
        "cte": _sql(
            select(User.email, recent.c.n).join(recent, recent.c.user_id == User.id).where(User.organization_id == org)
        ),
        "insert": _sql(insert(Order).values(organization_id=org, user_id=1, status="open", total=10)),
        "insertmanyvalues": _sql(
            insert(Order).values(
                [{"organization_id": org, "user_id": i, "status": "open", "total": i} for i in range(5)]
            )
        ),
        "update": _sql(
            update(Order)
            .where(Order.organization_id == org, Order.id == 9)
            .values(status="paid", total=Order.total + 1)
        ),
    }


_clock = time.thread_time_ns
"""CPU time of this thread: the cost of the work itself, not of other processes sharing the machine."""


def _timed(fn: Callable[[], object], rounds: int, batch: int = 1) -> list[float]:
    """Per-call cost in microseconds, ``rounds`` samples, each the mean of ``batch`` calls."""
    out: list[float] = []
    clock = _clock
    for _ in range(rounds):
        start = clock()
        for _ in range(batch):
            fn()
        out.append((clock() - start) / 1000.0 / batch)
    return out


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(label: str, samples: list[float], note: str) -> None:
    p50, p95 = statistics.median(samples), _pct(samples, 0.95)
    print(f"{label:<18} p50 {p50:8.2f} us  p95 {p95:8.2f} us   ({note})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400, help="timed calls per statement and method")
    parser.add_argument(
        "--learn-metadata",
        action="store_true",
        help="learn the ORM's MetaData first (its foreign keys: the provenance work runs on every missing verdict)",
    )
    args = parser.parse_args()
    rounds: int = args.rounds

    analyzer = Analyzer(Settings(tenant_tables={"users": "organization_id", "orders": "organization_id"}))
    if args.learn_metadata:
        analyzer.tables.learn_from_metadata(Base.metadata)
    stmts = statements()

    for _ in range(max(20, rounds // 4)):  # warm-up: code paths, allocator, CPU caches
        for sql in stmts.values():
            analyzer.clear_cache()
            analyzer.analyze(sql)

    cold: list[float] = []
    glot: list[float] = []
    ast: list[float] = []
    hits: list[float] = []
    print(f"{'statement':<18} {'chars':>6} {'cold p50':>9} {'sqlglot p50':>12} {'ratio':>6}  verdict")
    for name, sql in stmts.items():
        analysis = analyzer.analyze(sql)
        assert analysis.error is None, (name, analysis.error)
        pg_text = normalize(sql).text  # sqlglot's postgres dialect reads $n, not %(name)s

        def cold_once(sql: str = sql) -> None:
            analyzer.clear_cache()
            analyzer.analyze(sql)

        # Interleaved, so that a noisy neighbour slows every method alike.
        cold_samples: list[float] = []
        glot_samples: list[float] = []
        ast_samples: list[float] = []
        for round_number in range(rounds):
            cold_samples += _timed(cold_once, 1)
            if round_number % 4 == 0:
                ast_samples += _timed(lambda t=pg_text: pglast.parse_sql(t), 1)
            if round_number % 10 == 0:
                glot_samples += _timed(lambda t=pg_text: sqlglot.parse_one(t, read="postgres"), 1)
        analyzer.analyze(sql)
        hit_samples = _timed(lambda s=sql: analyzer.analyze(s), rounds, batch=100)
        cold += cold_samples
        glot += glot_samples
        ast += ast_samples
        hits += hit_samples
        c50, g50 = statistics.median(cold_samples), statistics.median(glot_samples)
        print(f"{name:<18} {len(sql):>6} {c50:>8.1f}u {g50:>11.1f}u {g50 / c50:>5.1f}x  {analysis.tenant_filter}")

    print()
    _summary("cache hit", hits, "target p50 <= 5 us")
    _summary("cold analysis", cold, "target p50 <= 150 us")
    _summary("sqlglot parse", glot, "peer")
    _summary("pglast AST parse", ast, "peer")
    print()
    print(f"sqlglot parse / tenantwatch cold analysis (p50): {statistics.median(glot) / statistics.median(cold):.1f}x")
    print(
        f"pglast AST parse / tenantwatch cold analysis (p50): {statistics.median(ast) / statistics.median(cold):.1f}x"
    )
    print(f"tenantwatch cold / cache hit (p50): {statistics.median(cold) / statistics.median(hits):.0f}x")
    loader = "orjson" if _analyzer_module._loads is not json.loads else "json (standard library)"
    print(f"parse-tree loader: {loader}")


if __name__ == "__main__":
    main()
