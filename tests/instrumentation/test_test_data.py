"""test_data: written values matching test-data patterns become a critical finding with a cleanup suggestion; the
raw value never leaves the process. Everything the in-memory exporters received (spans with their events, log
records) is serialized and searched for the raw values."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.trace import StatusCode
from sa_support import Traced, attrs, postgres_url

from tenantwatch import attributes as A
from tenantwatch.config import EnforceSettings, RulesSettings, Settings
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantIsolationError, TenantwatchSQLAlchemyInstrumentor
from tenantwatch.processors import install
from tenantwatch.rules.test_data import TestDataSettings

Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]

USERS_SQL = (
    "CREATE TABLE users (id integer PRIMARY KEY, organization_id integer NOT NULL, email text UNIQUE, name text)"
)

DEFAULT_PATTERN_CASES = [
    pytest.param("ops@acme.test", "***.test", id="dot-test"),
    pytest.param("Bob.Builder@Example.com", "***@example.***", id="at-example"),
    pytest.param("tenant-a", "tenant-a", id="tenant-a"),
    pytest.param("550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-***", id="rfc4122-uuid"),
]
"""One written value per default pattern, and the mask it must be recorded as."""


@dataclass
class Exported:
    """Everything tenantwatch exported: spans (via the processor) and log records."""

    traced: Traced
    logs: InMemoryLogRecordExporter

    def text(self) -> str:
        """Every exported span (attributes, events, status) and log record, serialized."""
        parts = [span.to_json() for span in self.traced.spans()]
        parts += [record.to_json() for record in self.logs.get_finished_logs()]
        return "\n".join(parts)

    def writes(self) -> list[Any]:
        return [s for s in self.traced.spans() if attrs(s).get(A.DB_OPERATION) in ("INSERT", "UPDATE")]

    def findings(self, rule: str = "test_data") -> list[dict[str, Any]]:
        return [
            dict(event.attributes or {})
            for span in self.traced.spans()
            for event in span.events
            if event.name == A.FINDING_EVENT and (event.attributes or {}).get(A.RULE) == rule
        ]

    def log_records(self, rule: str = "test_data") -> list[dict[str, Any]]:
        records = [r.log_record for r in self.logs.get_finished_logs()]
        return [
            {"body": r.body, **dict(r.attributes or {})} for r in records if (r.attributes or {}).get(A.RULE) == rule
        ]


@pytest.fixture
def exported(instrument: Instrument, traced: Traced) -> Callable[..., Exported]:
    """Instrument with a processor whose log records land in memory; returns what was exported."""

    def start(settings: Settings | None = None, **kwargs: Any) -> Exported:
        settings = settings or Settings()
        logs = InMemoryLogRecordExporter()
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        install(traced.provider, settings=settings, logger_provider=logger_provider)
        instrument(settings=settings, **kwargs)
        return Exported(traced, logs)

    return start


@pytest.fixture
def sqlite_users(tmp_path: Path) -> Iterator[Callable[[], sa.engine.Engine]]:
    engines: list[sa.engine.Engine] = []

    def make() -> sa.engine.Engine:
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'users.db'}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS " + USERS_SQL.removeprefix("CREATE TABLE "))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def pg_users(postgres_dsn: dict[str, Any]) -> Iterator[Callable[[str], sa.engine.Engine]]:
    import psycopg

    schema = f"td_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        conn.execute(USERS_SQL)
    engines: list[sa.engine.Engine] = []

    def make(driver: str) -> sa.engine.Engine:
        engines.append(
            sa.create_engine(postgres_url(postgres_dsn, driver), connect_args={"options": f"-csearch_path={schema}"})
        )
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


USERS = sa.table("users", sa.column("id"), sa.column("organization_id"), sa.column("email"), sa.column("name"))


def _count(engine: sa.engine.Engine, where: str = "") -> int:
    """Rows in ``users``, asked on the raw DB-API connection (no SQLAlchemy events: not traced, not enforced)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"SELECT count(*) FROM users {where}")
        return int(cursor.fetchone()[0])
    finally:
        raw.close()


# --- positives ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "mask"), DEFAULT_PATTERN_CASES)
def test_every_default_pattern_is_found_in_parameters_and_masked(
    value: str, mask: str, exported: Callable[..., Exported], sqlite_users: Callable[[], sa.engine.Engine]
) -> None:
    out = exported()
    engine = sqlite_users()
    with tenant_context("1"), engine.begin() as conn:
        conn.execute(sa.insert(USERS).values(id=1, organization_id=1, email=value, name="n"))
    (write,) = out.writes()
    assert attrs(write)[A.DB_TEST_DATA] == (f"users.email={mask}",)
    (finding,) = out.findings()
    assert finding[A.SEVERITY] == "critical"
    assert f"users.email={mask}" in finding[A.MESSAGE]
    assert "DELETE FROM users WHERE organization_id = :tenant AND email ~ '" in finding[A.FINDING_SUGGESTION]
    assert "review before running; tenantwatch never executes it" in finding[A.FINDING_SUGGESTION]
    (record,) = out.log_records()
    assert record[A.FINDING_SUGGESTION] == finding[A.FINDING_SUGGESTION]
    assert record[A.SEVERITY] == "critical"
    if value != mask:
        assert value not in out.text()
        assert value.lower() not in out.text().lower()
    assert _count(engine) == 1  # the suggestion was never executed: the row is still there


@pytest.mark.parametrize(("value", "mask"), DEFAULT_PATTERN_CASES)
def test_every_default_pattern_is_found_in_literals_and_masked_in_the_statement(
    value: str, mask: str, exported: Callable[..., Exported], sqlite_users: Callable[[], sa.engine.Engine]
) -> None:
    out = exported()
    engine = sqlite_users()
    with tenant_context("1"), engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO users (id, organization_id, email, name) VALUES (1, 1, 'x', '{value}')"))
        conn.execute(sa.text(f"UPDATE users SET email = '{value}' WHERE id = 1 AND organization_id = 1"))
    insert, update = out.writes()
    assert attrs(insert)[A.DB_TEST_DATA] == (f"users.name={mask}",)
    assert attrs(update)[A.DB_TEST_DATA] == (f"users.email={mask}",)
    # every literal leaves the process as ?, test data or not
    assert attrs(insert)[A.DB_STATEMENT] == "INSERT INTO users (id, organization_id, email, name) VALUES (?, ?, ?, ?)"
    assert attrs(update)[A.DB_STATEMENT] == "UPDATE users SET email = ? WHERE id = ? AND organization_id = ?"
    assert len(out.findings()) == 2
    assert len(out.log_records()) == 2
    assert [r[A.DB_QUERY_TEXT] for r in out.log_records()] == [
        attrs(insert)[A.DB_STATEMENT],
        attrs(update)[A.DB_STATEMENT],
    ]
    if value != mask:
        assert value.lower() not in out.text().lower()
    assert _count(engine, f"WHERE email = '{value}' AND name = '{value}'") == 1  # what the application wrote stays


def test_updates_and_executemany_are_scanned(
    exported: Callable[..., Exported], sqlite_users: Callable[[], sa.engine.Engine]
) -> None:
    out = exported()
    engine = sqlite_users()
    rows = [
        {"id": 1, "organization_id": 1, "email": "real.person@corp.io", "name": "Real"},
        {"id": 2, "organization_id": 1, "email": "qa-bot@staging.test", "name": "QA"},
        {"id": 3, "organization_id": 1, "email": "carol@example.net", "name": "tenant-a"},
    ]
    with tenant_context("1"), engine.begin() as conn:
        conn.execute(sa.insert(USERS), rows)  # executemany
        conn.execute(
            sa.update(USERS).where(USERS.c.id == sa.bindparam("uid"), USERS.c.organization_id == 1),
            [{"uid": 1, "name": "Dev.Tester@example.org"}],
        )
    insert, update = out.writes()
    assert set(attrs(insert)[A.DB_TEST_DATA]) == {
        "users.email=***.test",
        "users.email=***@example.***",
        "users.name=tenant-a",
    }
    assert attrs(update)[A.DB_TEST_DATA] == ("users.name=***@example.***",)
    suggestions = [f[A.FINDING_SUGGESTION] for f in out.findings()]
    assert "DELETE FROM users WHERE organization_id = :tenant AND (" in suggestions[0]
    assert "SELECT * FROM users WHERE organization_id = :tenant AND name ~ '(?i)@example\\.';" in suggestions[1]
    text = out.text()
    for raw in ("qa-bot@staging.test", "carol@example.net", "Dev.Tester@example.org"):
        assert raw not in text
    assert _count(engine) == 3


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_postgres_batched_inserts_are_scanned(
    driver: str, exported: Callable[..., Exported], pg_users: Callable[[str], sa.engine.Engine]
) -> None:
    out = exported()
    engine = pg_users(driver)
    rows = [{"id": i, "organization_id": 7, "email": f"user{i}@example.com", "name": f"n{i}"} for i in range(1, 4)]
    rows.append({"id": 4, "organization_id": 7, "email": "real@corp.io", "name": "n4"})
    rows.append({"id": 5, "organization_id": 7, "email": "bot@CI.Test", "name": "n5"})
    with tenant_context("7"), engine.begin() as conn:
        conn.execute(sa.insert(USERS), rows)  # insertmanyvalues: one INSERT with a VALUES row per parameter set
    entries = {entry for span in out.writes() for entry in attrs(span)[A.DB_TEST_DATA]}
    assert entries == {"users.email=***@example.***", "users.email=***.test"}
    assert "@example.com" not in out.text()
    assert "bot@CI.Test".lower() not in out.text().lower()
    assert _count(engine, "WHERE organization_id = 7") == 5  # nothing was cleaned up by tenantwatch

    # The suggestion is valid PostgreSQL and, once reviewed and run by a person, removes exactly the test rows.
    (suggestion,) = {finding[A.FINDING_SUGGESTION] for finding in out.findings()}
    (delete,) = [line for line in suggestion.splitlines() if line.startswith("DELETE")]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(delete.rstrip(";").replace(":tenant", "%(tenant)s"), {"tenant": 7})
        raw.commit()
    finally:
        raw.close()
    assert _count(engine) == 1
    assert _count(engine, "WHERE email = 'real@corp.io'") == 1


@pytest.mark.postgres
def test_a_failed_write_does_not_leak_the_value_through_the_error_message(
    exported: Callable[..., Exported], pg_users: Callable[[str], sa.engine.Engine]
) -> None:
    out = exported()
    engine = pg_users("psycopg")
    statement = "INSERT INTO users (id, organization_id, email, name) VALUES (:id, 1, 'dup@example.com', 'x')"
    with tenant_context("1"), engine.connect() as conn:
        conn.execute(sa.text(statement), {"id": 1})
        with pytest.raises(sa.exc.IntegrityError) as raised:
            conn.execute(sa.text(statement), {"id": 2})  # unique violation: PostgreSQL's DETAIL quotes the value
    assert "dup@example.com" in str(raised.value)  # the application still gets the whole error
    failed = [s for s in out.writes() if s.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1
    # the server's primary message stays; its DETAIL, which quotes the value, does not leave the process
    assert failed[0].status.description == 'duplicate key value violates unique constraint "users_email_key"'
    assert attrs(failed[0])[A.DB_TEST_DATA] == ("users.email=***@example.***",)
    assert "dup@example.com" not in out.text()


def test_enforce_mode_blocks_test_data_without_leaking_it(
    exported: Callable[..., Exported], sqlite_users: Callable[[], sa.engine.Engine]
) -> None:
    """When test_data is listed in enforce.rules (by default it only reports, see test_enforce_rules.py)."""
    out = exported(Settings(enforce=EnforceSettings(rules=("test_data",))), mode="enforce")
    engine = sqlite_users()
    with tenant_context("1"), engine.connect() as conn, pytest.raises(TenantIsolationError) as blocked:
        conn.execute(sa.text("INSERT INTO users (id, organization_id, email) VALUES (1, 1, 'eve@example.com')"))
    assert [f.rule for f in blocked.value.findings] == ["test_data"]
    assert "eve@example.com" not in str(blocked.value)
    assert "eve@example.com" not in out.text()
    assert "***@example.***" in out.text()
    assert _count(engine) == 0


# --- negatives ---------------------------------------------------------------------------------------------------


def test_reads_and_ordinary_writes_are_not_flagged(
    exported: Callable[..., Exported], sqlite_users: Callable[[], sa.engine.Engine]
) -> None:
    out = exported()
    engine = sqlite_users()
    with tenant_context("1"), engine.begin() as conn:
        conn.execute(sa.insert(USERS).values(id=1, organization_id=1, email="ana@corp.io", name="Contest winner"))
        conn.execute(
            sa.text("INSERT INTO users (id, organization_id, email, name) VALUES (2, 1, 'li@latest.io', 'tenant-ab')")
        )
        # Test data only in what is read or matched, not written:
        conn.execute(sa.select(USERS).where(USERS.c.email == "bob@example.com", USERS.c.organization_id == 1)).all()
        conn.execute(sa.text("SELECT * FROM users WHERE organization_id = 1 AND name = 'tenant-a'")).all()
        conn.execute(
            sa.update(USERS)
            .where(USERS.c.email == "bob@example.com", USERS.c.organization_id == 1)
            .values(name="Renamed")
        )
    assert all(A.DB_TEST_DATA not in attrs(span) for span in out.traced.spans())
    assert out.findings() == []
    assert out.log_records() == []


def test_nothing_is_scanned_when_the_rule_is_off(
    exported: Callable[..., Exported], sqlite_users: Callable[[], sa.engine.Engine]
) -> None:
    settings = Settings(rules=RulesSettings(test_data=TestDataSettings(enabled=False)))
    out = exported(settings)
    engine = sqlite_users()
    with tenant_context("1"), engine.begin() as conn:
        conn.execute(sa.insert(USERS).values(id=1, organization_id=1, email="bob@example.com"))
    (write,) = out.writes()
    assert A.DB_TEST_DATA not in attrs(write)
    assert out.findings() == []


def test_custom_patterns_replace_the_defaults(
    exported: Callable[..., Exported], sqlite_users: Callable[[], sa.engine.Engine]
) -> None:
    settings = Settings(rules=RulesSettings(test_data=TestDataSettings(patterns=(r"(?i)^dummy-\d+$",))))
    out = exported(settings)
    engine = sqlite_users()
    with tenant_context("1"), engine.begin() as conn:
        conn.execute(sa.insert(USERS).values(id=1, organization_id=1, email="bob@example.com", name="Dummy-42"))
    (write,) = out.writes()
    assert attrs(write)[A.DB_TEST_DATA] == ("users.name=dummy-***",)
    (finding,) = out.findings()
    assert "name ~ '(?i)^dummy-\\d+$'" in finding[A.FINDING_SUGGESTION]
    assert "Dummy-42" not in out.text()
