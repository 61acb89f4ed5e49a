"""Enforce mode a real app can run: only the rules listed in ``enforce.rules`` block; ``test_data`` and other
rules report; ``unscoped(reason, rules=[...])`` allows exactly the rules it names. On SQLite, checked in the database
itself through a separate sqlite3 connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sa_support import Item, Traced, attrs, sqlite_engine

from tenantwatch import attributes as A
from tenantwatch.config import Settings, load_settings
from tenantwatch.context import tenant_context, unscoped
from tenantwatch.instrumentation import TenantIsolationError, TenantwatchSQLAlchemyInstrumentor

ITEMS = Item.__table__
Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]
SEED = "INSERT INTO items (id, organization_id, name) VALUES (9001, 1, 'admin@example.com')"


@pytest.fixture
def engine(sqlite_path: Path) -> Iterator[sa.engine.Engine]:
    created = sqlite_engine(sqlite_path)
    yield created
    created.dispose()


def _count(path: Path, where: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM items WHERE {where}").fetchone()[0])


def _findings(traced: Traced, needle: str) -> list[str]:
    return [rule for span in traced.db_spans(needle) for rule in attrs(span).get(A.FINDINGS, ())]


def test_seed_data_is_reported_not_blocked_by_default(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    instrument(mode="enforce", install_processor=True)
    engine = sqlite_engine(sqlite_path)
    with tenant_context("1"), engine.begin() as conn:
        conn.execute(sa.text(SEED))
    engine.dispose()
    assert _count(sqlite_path, "name = 'admin@example.com'") == 1
    assert _findings(traced, "INSERT INTO items") == ["test_data"]


def test_test_data_blocks_when_listed(instrument: Instrument, traced: Traced, sqlite_path: Path) -> None:
    settings = load_settings(environ={}, enforce={"rules": ["test_data", "unscoped_write"]})
    instrument(mode="enforce", install_processor=True, settings=settings)
    engine = sqlite_engine(sqlite_path)
    with tenant_context("1"), engine.connect() as conn, pytest.raises(TenantIsolationError) as blocked:
        conn.execute(sa.text(SEED))
    engine.dispose()
    assert [f.rule for f in blocked.value.findings] == ["test_data"]
    assert _count(sqlite_path, "name = 'admin@example.com'") == 0


def test_a_critical_finding_of_an_unlisted_rule_only_reports(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    settings = load_settings(environ={}, rules={"superuser_write": {"severity": "critical"}})
    instrument(mode="enforce", install_processor=True, settings=settings)
    engine = sqlite_engine(sqlite_path)
    with tenant_context("1", role="admin"), engine.begin() as conn:
        conn.execute(sa.update(ITEMS).where(ITEMS.c.organization_id == 1).values(name="renamed"))
    engine.dispose()
    assert _count(sqlite_path, "name = 'renamed'") == 100
    assert "superuser_write" in _findings(traced, "UPDATE items")


def test_isolation_rules_still_block(instrument: Instrument, traced: Traced, sqlite_path: Path) -> None:
    instrument(mode="enforce", install_processor=True, settings=Settings())
    engine = sqlite_engine(sqlite_path)
    with tenant_context("1"), engine.connect() as conn:
        with pytest.raises(TenantIsolationError) as blocked:
            conn.execute(sa.delete(ITEMS))
        with pytest.raises(TenantIsolationError):
            conn.execute(sa.update(ITEMS).where(ITEMS.c.organization_id == 2).values(name="pwned"))
    engine.dispose()
    assert "unscoped_write" in {f.rule for f in blocked.value.findings}
    assert _count(sqlite_path, "1 = 1") == 200
    assert _count(sqlite_path, "name = 'pwned'") == 0


def test_unscoped_with_rules_allows_only_those(instrument: Instrument, traced: Traced, sqlite_path: Path) -> None:
    settings = load_settings(environ={}, enforce={"rules": ["test_data", "unscoped_write"]})
    instrument(mode="enforce", install_processor=True, settings=settings)
    engine = sqlite_engine(sqlite_path)
    with tenant_context("1"), unscoped("seed the default admin", rules=["test_data"]), engine.connect() as conn:
        conn.execute(sa.text(SEED))
        conn.commit()
        with pytest.raises(TenantIsolationError) as blocked:  # unscoped_write is not among the rules allowed
            conn.execute(sa.delete(ITEMS))
    engine.dispose()
    assert [f.rule for f in blocked.value.findings] == ["unscoped_write"]
    assert _count(sqlite_path, "name = 'admin@example.com'") == 1
    assert _findings(traced, "INSERT INTO items") == []
    (seed,) = traced.db_spans("INSERT INTO items")
    assert attrs(seed)[A.UNSCOPED_RULES] == ("test_data",)


def test_unscoped_without_rules_allows_the_isolation_rules_as_before(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    instrument(mode="enforce", install_processor=True, settings=Settings())
    engine = sqlite_engine(sqlite_path)
    with tenant_context("1"), unscoped("nightly clean-up"), engine.begin() as conn:
        conn.execute(sa.delete(ITEMS).where(ITEMS.c.id > 1049))  # both tenants' rows: 50 + 100
    engine.dispose()
    assert _count(sqlite_path, "1 = 1") == 50


def test_unscoped_names_only_known_rules() -> None:
    with pytest.raises(ValueError, match="no_such_rule"):
        unscoped("typo", rules=["no_such_rule"])


def test_enforce_rules_from_the_environment_and_checked() -> None:
    from tenantwatch.config import ConfigError

    settings = load_settings(environ={"TENANTWATCH_ENFORCE_RULES": "cross_tenant, test_data"})
    assert settings.enforce.rules == ("cross_tenant", "test_data")
    with pytest.raises(ConfigError, match=r"enforce\.rules"):
        load_settings(environ={}, enforce={"rules": ["cross_tenants"]})


def test_the_strict_profile_reports_an_inherited_table_and_never_blocks_it(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    """``profile: strict`` makes a table that only inherits its tenant a finding; enforce mode still runs the
    statement: its scope through the foreign key is not a certain leak."""
    engine = sqlite_engine(sqlite_path)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE labels (id INTEGER PRIMARY KEY, organization_id INTEGER NOT NULL, name TEXT, "
                "item_id INTEGER REFERENCES items (id))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO labels (id, organization_id, name, item_id) "
                "SELECT 1, 1, 'red', min(id) FROM items WHERE organization_id = 1"
            )
        )
    engine.dispose()
    settings = load_settings(environ={}, profile="strict")
    instrument(mode="enforce", install_processor=True, settings=settings)
    engine = sqlite_engine(sqlite_path)
    query = sa.text(
        "SELECT labels.name FROM items JOIN labels ON labels.item_id = items.id WHERE items.organization_id = 1"
    )
    with tenant_context("1"), engine.connect() as conn:
        assert conn.execute(query).scalars().all() == ["red"]
        unfiltered = sa.text("SELECT labels.name FROM labels")
        with pytest.raises(TenantIsolationError):
            conn.execute(unfiltered)
    engine.dispose()
    (span,) = traced.db_spans("JOIN labels")
    assert attrs(span).get(A.DB_INHERITED)
    assert "missing_tenant_filter" in _findings(traced, "JOIN labels")


def test_the_blocked_error_names_the_operation_with_its_article(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    """The message a developer reads in a traceback: "blocked an UPDATE", "blocked an INSERT", "blocked a DELETE"."""
    settings = load_settings(environ={}, enforce={"rules": ["test_data", "unscoped_write"]})
    instrument(mode="enforce", install_processor=True, settings=settings)
    engine = sqlite_engine(sqlite_path)
    messages = []
    with tenant_context("1"), engine.connect() as conn:
        for statement in (sa.update(ITEMS).values(name="x"), sa.text(SEED), sa.delete(ITEMS)):
            with pytest.raises(TenantIsolationError) as blocked:
                conn.execute(statement)
            messages.append(str(blocked.value))
    engine.dispose()
    assert [m.split(":")[0].split(" at ")[0] for m in messages] == [
        "tenantwatch blocked an UPDATE",
        "tenantwatch blocked an INSERT",
        "tenantwatch blocked a DELETE",
    ]
