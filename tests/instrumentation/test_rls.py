"""RLS assist on real PostgreSQL with row level security ENABLED and FORCED, connected as a non-superuser role that
owns nothing (superusers and table owners bypass RLS): the policy reads ``current_setting('app.tenant_id', true)``,
which the assist sets per transaction from the tenant context. What a user notices is checked: the rows the
database returns, ``tenantwatch.db.rls_tenant`` on the db spans, and the findings on the exported spans."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.ext.asyncio
from sa_support import Traced, attrs, postgres_url

from tenantwatch import attributes as A
from tenantwatch.config import RlsSettings, Settings
from tenantwatch.context import tenant_context, unscoped
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

pytestmark = pytest.mark.postgres

Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]
ROWS = {"1": 3, "2": 5}
"""Rows each tenant owns in ``items``."""
RLS = Settings(rls=RlsSettings(enabled=True))


@pytest.fixture
def rls_db(postgres_dsn: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A schema with an RLS-protected ``items`` table (policy enabled and forced) and a login role that owns nothing
    and may only read and write ``items``; yields the role's connection parameters."""
    import psycopg

    suffix = uuid.uuid4().hex[:10]
    schema, role = f"rls_{suffix}", f"tw_app_{suffix}"
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        conn.execute("CREATE TABLE items (id integer PRIMARY KEY, organization_id text NOT NULL, name text NOT NULL)")
        conn.execute("ALTER TABLE items ENABLE ROW LEVEL SECURITY")
        conn.execute("ALTER TABLE items FORCE ROW LEVEL SECURITY")
        conn.execute(
            "CREATE POLICY tenant_isolation ON items USING (organization_id = current_setting('app.tenant_id', true))"
        )
        row = 0
        for tenant, count in ROWS.items():
            for _ in range(count):
                row += 1
                conn.execute("INSERT INTO items VALUES (%s, %s, %s)", (row, tenant, f"item {row}"))
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON items TO {role}")
        superuser = conn.execute(f"SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = '{role}'").fetchone()
        assert superuser == (False, False)
    yield {**postgres_dsn, "user": role, "schema": schema}
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
            (role,),
        )
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def _engine(db: dict[str, Any], driver: str = "psycopg") -> sa.engine.Engine:
    """One pooled connection, so every checkout reuses it (as a busy pool does sooner or later)."""
    return sa.create_engine(
        postgres_url(db, driver),
        connect_args={"options": f"-csearch_path={db['schema']}"},
        pool_size=1,
        max_overflow=0,
    )


def _tenants(conn: sa.engine.Connection) -> list[str]:
    return [row[0] for row in conn.execute(sa.text("SELECT organization_id FROM items ORDER BY id"))]


def _rules(span: Any) -> set[str]:
    return set(attrs(span).get(A.FINDINGS, ()))


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_the_right_setting_returns_exactly_the_tenants_rows(
    driver: str, instrument: Instrument, traced: Traced, rls_db: dict[str, Any]
) -> None:
    instrument(settings=RLS, install_processor=True)
    engine = _engine(rls_db, driver)
    try:
        for tenant, count in ROWS.items():
            with tenant_context(tenant), engine.connect() as conn:
                assert _tenants(conn) == [tenant] * count
        with unscoped("check the setting is gone"), engine.connect() as conn:
            left = conn.execute(sa.text("SELECT current_setting('app.tenant_id', true)")).scalar()
    finally:
        engine.dispose()
    assert left in ("", None)  # SET LOCAL: it did not outlive the transaction on the pooled connection
    spans = traced.db_spans("FROM items")
    assert [attrs(s)[A.DB_RLS_TENANT] for s in spans] == ["1", "2"]
    assert [attrs(s)[A.TENANT_ID] for s in spans] == ["1", "2"]
    assert not any("stale_tenant_context" in _rules(s) for s in traced.spans())


async def test_asyncpg_gets_the_setting_too(instrument: Instrument, traced: Traced, rls_db: dict[str, Any]) -> None:
    instrument(settings=RLS)
    engine = sqlalchemy.ext.asyncio.create_async_engine(
        postgres_url(rls_db, "asyncpg"), connect_args={"server_settings": {"search_path": rls_db["schema"]}}
    )
    try:
        with tenant_context("2"):
            async with engine.connect() as conn:
                result = await conn.execute(sa.text("SELECT organization_id FROM items"))
                tenants = [row[0] for row in result]
    finally:
        await engine.dispose()
    assert tenants == ["2"] * ROWS["2"]
    assert attrs(traced.only_db_span("FROM items"))[A.DB_RLS_TENANT] == "2"


def test_a_pooled_connection_with_another_tenants_session_setting_is_caught(
    instrument: Instrument, traced: Traced, rls_db: dict[str, Any]
) -> None:
    instrument(settings=RLS, install_processor=True)
    engine = _engine(rls_db)
    try:
        with tenant_context("2"), engine.connect() as conn:
            # The anti-pattern: a session-level SET (no LOCAL) outlives the request on the pooled connection.
            conn.execute(sa.text("SET app.tenant_id = '2'"))
            conn.commit()
        with tenant_context("1"), engine.connect() as conn:
            mine = _tenants(conn)
        with engine.connect() as conn:  # a job with no tenant context, on the same pooled connection
            leaked = _tenants(conn)
    finally:
        engine.dispose()

    assert mine == ["1"] * ROWS["1"]  # the assist's SET LOCAL wins inside the transaction
    assert leaked == ["2"] * ROWS["2"]  # without it, the leftover setting shows tenant 2's rows

    # Caught: the assist's own statement ran while the connection still carried tenant 2's setting.
    caught = [s for s in traced.spans() if "set_config" in str(attrs(s).get(A.DB_STATEMENT, ""))]
    assert len(caught) == 1
    assert attrs(caught[0])[A.DB_RLS_TENANT] == "2"
    assert attrs(caught[0])[A.TENANT_ID] == "1"
    tenant_1_read, job_read = traced.db_spans("FROM items")
    assert attrs(tenant_1_read)[A.DB_RLS_TENANT] == "1"
    assert attrs(job_read)[A.DB_RLS_TENANT] == "2"
    assert A.TENANT_ID not in attrs(job_read)
    assert "no_tenant_context" in _rules(job_read)
    assert "stale_tenant_context" in _rules(caught[0])
    assert "stale_tenant_context" not in _rules(tenant_1_read)


def test_a_transaction_without_the_setting_returns_no_rows_and_is_flagged(
    instrument: Instrument, traced: Traced, rls_db: dict[str, Any]
) -> None:
    instrument(settings=RLS, install_processor=True)
    engine = _engine(rls_db)
    try:
        with engine.connect() as conn:  # no tenant in context: nothing to set
            no_context = _tenants(conn)
        with engine.connect() as conn:
            conn.begin()  # the transaction starts before the tenant is known...
            with tenant_context("1"):
                late_context = _tenants(conn)  # ...so the statement runs without the setting
            conn.rollback()
    finally:
        engine.dispose()
    assert no_context == []
    assert late_context == []
    without, late = traced.db_spans("FROM items")
    assert attrs(without)[A.DB_RLS_TENANT] == ""
    assert "no_tenant_context" in _rules(without)
    assert attrs(late)[A.DB_RLS_TENANT] == ""
    assert attrs(late)[A.TENANT_ID] == "1"
    assert "stale_tenant_context" in _rules(late)


def test_a_context_switch_inside_a_transaction_is_flagged(
    instrument: Instrument, traced: Traced, rls_db: dict[str, Any]
) -> None:
    instrument(settings=RLS, install_processor=True)
    engine = _engine(rls_db)
    try:
        with tenant_context("1"), engine.connect() as conn:
            _tenants(conn)
            with tenant_context("2"):  # e.g. a task that took the connection of another tenant's request
                rows = _tenants(conn)
    finally:
        engine.dispose()
    assert rows == ["1"] * ROWS["1"]  # the database still answers for tenant 1
    first, switched = traced.db_spans("FROM items")
    assert (attrs(first)[A.DB_RLS_TENANT], attrs(first)[A.TENANT_ID]) == ("1", "1")
    assert (attrs(switched)[A.DB_RLS_TENANT], attrs(switched)[A.TENANT_ID]) == ("1", "2")
    assert "stale_tenant_context" in _rules(switched)
    assert "stale_tenant_context" not in _rules(first)


def test_the_applications_own_set_local_is_tracked(
    instrument: Instrument, traced: Traced, rls_db: dict[str, Any]
) -> None:
    instrument(settings=RLS)
    engine = _engine(rls_db)
    try:
        with unscoped("maintenance"), engine.connect() as conn:
            conn.execute(sa.text("SELECT set_config('app.tenant_id', '2', true)"))
            rows = _tenants(conn)
    finally:
        engine.dispose()
    assert rows == ["2"] * ROWS["2"]
    assert attrs(traced.only_db_span("FROM items"))[A.DB_RLS_TENANT] == "2"


def test_autocommit_connections_are_only_read_and_flagged(
    instrument: Instrument, traced: Traced, rls_db: dict[str, Any]
) -> None:
    instrument(settings=RLS, install_processor=True)
    engine = _engine(rls_db).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with tenant_context("1"), engine.connect() as conn:
            rows = _tenants(conn)  # no transaction for SET LOCAL to last in
    finally:
        engine.dispose()
    assert rows == []
    span = traced.only_db_span("FROM items")
    assert (attrs(span)[A.DB_RLS_TENANT], attrs(span)[A.TENANT_ID]) == ("", "1")
    assert "stale_tenant_context" in _rules(span)


def test_off_by_default(instrument: Instrument, traced: Traced, rls_db: dict[str, Any]) -> None:
    instrument(settings=Settings())
    engine = _engine(rls_db)
    try:
        with tenant_context("1"), engine.connect() as conn:
            rows = _tenants(conn)
    finally:
        engine.dispose()
    assert rows == []  # nobody set the setting: the policy shows nothing
    assert A.DB_RLS_TENANT not in attrs(traced.only_db_span("FROM items"))


def test_skipped_on_other_databases(instrument: Instrument, traced: Traced, tmp_path: Any) -> None:
    instrument(settings=RLS)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'rls.db'}")
    try:
        with tenant_context("1"), engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE items (id integer PRIMARY KEY, organization_id text)"))
            conn.execute(sa.text("INSERT INTO items VALUES (1, '1')"))
            assert conn.execute(sa.text("SELECT count(*) FROM items")).scalar() == 1
    finally:
        engine.dispose()
    assert all(A.DB_RLS_TENANT not in attrs(s) for s in traced.spans())
    assert not [s for s in traced.spans() if "set_config" in str(attrs(s).get(A.DB_STATEMENT, ""))]
