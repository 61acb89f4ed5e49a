"""db.response.returned_rows equals the rows the application received, whatever way it reads them.

Each case runs on psycopg (3) and psycopg2 against PostgreSQL, and on sqlite3; the async cases on asyncpg and
aiosqlite. Streamed results use server-side cursors on the PostgreSQL drivers.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sa_support import ROWS_PER_TENANT, Item, Traced, attrs, returned_rows
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from tenantwatch import attributes as A

ITEMS = Item.__table__
TENANT_ROWS = sa.select(ITEMS).where(ITEMS.c.organization_id == 1).order_by(ITEMS.c.id)


def test_all_counts_every_row(engine: Any, tw: Traced) -> None:
    with engine.connect() as conn:
        rows = conn.execute(TENANT_ROWS).all()
    assert len(rows) == ROWS_PER_TENANT
    assert returned_rows(tw.only_db_span()) == ROWS_PER_TENANT


def test_iteration_counts_every_row(engine: Any, tw: Traced) -> None:
    with engine.connect() as conn:
        received = sum(1 for _row in conn.execute(TENANT_ROWS))
    assert received == ROWS_PER_TENANT
    assert returned_rows(tw.only_db_span()) == ROWS_PER_TENANT


def test_scalars_and_fetchmany(engine: Any, tw: Traced) -> None:
    with engine.connect() as conn:
        ids = conn.execute(sa.select(ITEMS.c.id).where(ITEMS.c.organization_id == 2)).scalars().all()
        result = conn.execute(sa.text("SELECT id FROM items WHERE organization_id = :org"), {"org": 1})
        batches = []
        while batch := result.fetchmany(30):
            batches.append(len(batch))
    assert len(ids) == ROWS_PER_TENANT
    assert batches == [30, 30, 30, 10]
    assert sorted(returned_rows(s) for s in tw.db_spans()) == [ROWS_PER_TENANT, ROWS_PER_TENANT]


def test_orm_query_counts_the_rows_it_loads(engine: Any, tw: Traced) -> None:
    """Without yield_per the ORM loads every row of the result into the session at the first fetch, even for
    first(): the count says how many rows reached the application's process."""
    with Session(engine) as session:
        items = session.scalars(sa.select(Item).where(Item.organization_id == 1)).all()
        first = session.scalars(sa.select(Item).where(Item.organization_id == 2).order_by(Item.id)).first()
    assert len(items) == ROWS_PER_TENANT
    assert first is not None
    assert [returned_rows(s) for s in tw.db_spans()] == [ROWS_PER_TENANT, ROWS_PER_TENANT]


@pytest.mark.parametrize(
    "options",
    [{"stream_results": True, "max_row_buffer": 16}, {"yield_per": 10}],
    ids=["stream_results", "yield_per"],
)
def test_streamed_results_count_every_row(engine: Any, tw: Traced, options: dict[str, Any]) -> None:
    with engine.connect() as conn:
        result = conn.execution_options(**options).execute(TENANT_ROWS)
        received = sum(len(partition) for partition in result.partitions(10))
    assert received == ROWS_PER_TENANT
    assert returned_rows(tw.only_db_span()) == ROWS_PER_TENANT


def test_orm_yield_per_counts_every_row(engine: Any, tw: Traced) -> None:
    with Session(engine) as session:
        received = sum(1 for _item in session.scalars(sa.select(Item).execution_options(yield_per=7)))
    assert received == 2 * ROWS_PER_TENANT
    assert returned_rows(tw.only_db_span()) == 2 * ROWS_PER_TENANT


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "server_side"])
def test_partially_read_then_closed(engine: Any, tw: Traced, stream: bool) -> None:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=stream).execute(TENANT_ROWS)
        assert len(result.fetchmany(7)) == 7
        result.close()
        assert returned_rows(tw.only_db_span()) == 7  # exported as soon as the result closed


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "server_side"])
def test_partially_read_when_the_connection_closes(engine: Any, tw: Traced, stream: bool) -> None:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=stream).execute(TENANT_ROWS)
        assert len(result.fetchmany(7)) == 7
        assert tw.db_spans() == []  # the result is still open
    assert returned_rows(tw.only_db_span()) == 7
    del result


def test_abandoned_result_is_reported_after_garbage_collection(engine: Any, tw: Traced) -> None:
    with engine.connect() as conn:
        result = conn.execute(TENANT_ROWS)
        result.fetchmany(3)
        del result
        gc.collect()
        conn.execute(sa.text("SELECT 1")).all()  # tenantwatch ends the abandoned span on the next statement
        spans = tw.db_spans()
        assert [returned_rows(s) for s in spans] == [3]


def test_first_and_one_count_what_they_return(engine: Any, tw: Traced) -> None:
    with engine.connect() as conn:
        assert conn.execute(TENANT_ROWS).first() is not None
        assert conn.execute(TENANT_ROWS.where(ITEMS.c.id == 1001)).one().id == 1001
        assert conn.execute(sa.select(sa.func.count()).select_from(ITEMS)).scalar() == 2 * ROWS_PER_TENANT
    assert [returned_rows(s) for s in tw.db_spans()] == [1, 1, 1]


def test_dml_reports_rows_affected(engine: Any, tw: Traced) -> None:
    with engine.begin() as conn:
        result = conn.execute(sa.update(ITEMS).where(ITEMS.c.organization_id == 2).values(name="renamed"))
        assert result.rowcount == ROWS_PER_TENANT
        conn.execute(sa.delete(ITEMS).where(ITEMS.c.id.in_([1001, 1002, 1003])))
    update, delete = tw.db_spans()
    assert returned_rows(update) == ROWS_PER_TENANT
    assert returned_rows(delete) == 3


def test_span_duration_is_execution_time_not_fetch_time(engine: Any, tw: Traced) -> None:
    with engine.connect() as conn:
        result = conn.execute(TENANT_ROWS)
        executed = time.time_ns()
        result.fetchmany(5)
        time.sleep(0.25)
        result.fetchall()
        result.close()
    span = tw.only_db_span()
    assert span.end_time is not None
    assert span.end_time <= executed  # ended at the end of execution, not when the result closed
    assert attrs(span)[A.DB_FETCH_DURATION] >= 250
    assert returned_rows(span) == ROWS_PER_TENANT


# --- async engines ---------------------------------------------------------------------------------------------------


async def test_async_buffered_and_streamed_results(async_engine: Any, tw: Traced) -> None:
    async with async_engine.connect() as conn:
        rows = (await conn.execute(TENANT_ROWS)).all()
        streamed = await conn.stream(TENANT_ROWS)
        received = 0
        async for _row in streamed:
            received += 1
    assert len(rows) == received == ROWS_PER_TENANT
    assert [returned_rows(s) for s in tw.db_spans()] == [ROWS_PER_TENANT, ROWS_PER_TENANT]


async def test_async_partial_results(async_engine: Any, tw: Traced) -> None:
    async with async_engine.connect() as conn:
        streamed = await conn.stream(TENANT_ROWS)
        assert len(await streamed.fetchmany(7)) == 7
        await streamed.close()
        left_open = await conn.stream(TENANT_ROWS)
        assert len(await left_open.fetchmany(4)) == 4
    assert [returned_rows(s) for s in tw.db_spans()] == [7, 4]


async def test_async_orm_and_dml(async_engine: Any, tw: Traced) -> None:
    async with AsyncSession(async_engine) as session:
        items = (await session.scalars(sa.select(Item).where(Item.organization_id == 1))).all()
        streamed = await session.stream_scalars(
            sa.select(Item).where(Item.organization_id == 2).execution_options(yield_per=5)
        )
        first_ten = await streamed.fetchmany(10)
        await streamed.close()
        result = await session.execute(sa.update(Item).where(Item.organization_id == 2).values(name="x"))
        await session.commit()
    assert len(items) == ROWS_PER_TENANT
    assert len(first_ten) == 10
    assert result.rowcount == ROWS_PER_TENANT  # type: ignore[attr-defined]
    assert [returned_rows(s) for s in tw.db_spans()] == [ROWS_PER_TENANT, 10, ROWS_PER_TENANT]


@pytest.mark.postgres
def test_sequence_values_read_by_sqlalchemy_claim_no_count(
    tw: Traced, postgres_dsn: dict[str, Any], pg_schema: str
) -> None:
    from sa_support import postgres_engine

    engine = postgres_engine(postgres_dsn, "psycopg", pg_schema)
    with engine.begin() as conn:
        conn.execute(sa.schema.CreateSequence(sa.Sequence("item_ids")))
        assert conn.scalar(sa.Sequence("item_ids")) == 1  # a context of its own, no result object
        assert conn.execute(sa.select(sa.Sequence("item_ids").next_value())).scalar() == 2
    engine.dispose()
    standalone, selected = tw.db_spans("nextval")  # the statements are masked: nextval(?)
    assert A.DB_RETURNED_ROWS not in attrs(standalone)  # SQLAlchemy read the value, not the application
    assert returned_rows(selected) == 1
