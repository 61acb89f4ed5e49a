"""A tenant hierarchy (organization ⊃ team) on a real PostgreSQL: a filter on either key protects a table, and
``cross_tenant`` compares each key with the context value of the same key."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sa_support import Traced, attrs, postgres_engine

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

pytestmark = pytest.mark.postgres

ACME, GLOBEX = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
RED, BLUE = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"
"""Two teams of ACME."""

_SCHEMA = (
    "CREATE TABLE organizations (id uuid PRIMARY KEY, name text)",
    "CREATE TABLE teams (id uuid PRIMARY KEY, organization_id uuid REFERENCES organizations(id), name text)",
    "CREATE TABLE users (id serial PRIMARY KEY, organization_id uuid, team_id uuid REFERENCES teams(id), name text)",
    "CREATE TABLE team_preferences (team_id uuid PRIMARY KEY REFERENCES teams(id), theme text)",
    f"INSERT INTO organizations VALUES ('{ACME}', 'acme'), ('{GLOBEX}', 'globex')",
    f"INSERT INTO teams VALUES ('{RED}', '{ACME}', 'red'), ('{BLUE}', '{ACME}', 'blue')",
    f"INSERT INTO users (organization_id, team_id, name) VALUES ('{ACME}', '{RED}', 'ann'), ('{ACME}', '{BLUE}', 'bo')",
    f"INSERT INTO team_preferences VALUES ('{RED}', 'dark'), ('{BLUE}', 'light')",
)

_RULES = """\
tenant_keys:
  organization: {columns: [organization_id], root: organizations}
  team: {columns: [team_id], parent: organization, root: teams}
"""


@pytest.fixture
def hierarchy_schema(postgres_dsn: dict[str, Any]) -> Iterator[str]:
    import psycopg

    schema = f"tw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        for statement in _SCHEMA:
            conn.execute(statement)
    yield schema
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def engine(
    instrument: Callable[..., TenantwatchSQLAlchemyInstrumentor],
    traced: Traced,
    postgres_dsn: dict[str, Any],
    hierarchy_schema: str,
    tmp_path: Any,
) -> Iterator[sa.engine.Engine]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(_RULES, encoding="utf-8")
    instrument(install_processor=True, settings=load_settings(rules, environ={}))
    created = postgres_engine(postgres_dsn, "psycopg", hierarchy_schema)
    with created.connect() as conn:  # the first connect reads the catalog: tenant tables and foreign keys
        conn.execute(sa.text("SELECT 1"))
    traced.clear()
    yield created
    created.dispose()


def _findings(traced: Traced, needle: str) -> list[tuple[str, str, str]]:
    """(rule, severity, message) of every finding on the db spans whose statement mentions ``needle``."""
    found = []
    for span in traced.db_spans(needle):
        for event in span.events:
            if event.name == A.FINDING_EVENT:
                a = dict(event.attributes or {})
                found.append((str(a[A.RULE]), str(a[A.SEVERITY]), str(a[A.MESSAGE])))
    return found


def _run(engine: sa.engine.Engine, sql: str, params: dict[str, Any]) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def test_another_team_of_the_same_organization_is_cross_tenant_naming_the_team(
    engine: sa.engine.Engine, traced: Traced
) -> None:
    with tenant_context(ACME, team=RED):
        rows = _run(engine, "SELECT theme FROM team_preferences WHERE team_preferences.team_id = :t", {"t": BLUE})
    assert rows == [("light",)]
    ((rule, severity, message),) = _findings(traced, "team_preferences")
    assert (rule, severity) == ("cross_tenant", "critical")
    assert f"filters on team '{BLUE}' but the context team is '{RED}'" in message
    span = traced.only_db_span("team_preferences")
    assert attrs(span)[A.db_key_values_attribute("team")] == (BLUE,)
    assert attrs(span)[A.DB_TENANT_FILTER] == "present"


def test_the_context_team_gives_no_finding(engine: sa.engine.Engine, traced: Traced) -> None:
    with tenant_context({"organization": ACME, "team": RED}):
        _run(engine, "SELECT theme FROM team_preferences WHERE team_preferences.team_id = :t", {"t": uuid.UUID(RED)})
        _run(engine, "SELECT name FROM users WHERE users.team_id IN (:a)", {"a": RED})
    assert len(traced.db_spans("team_preferences")) == 1
    assert _findings(traced, "team_preferences") == []
    assert _findings(traced, "FROM users") == []


def test_an_organization_only_context_does_not_compare_a_team_filter(engine: sa.engine.Engine, traced: Traced) -> None:
    """The context holds no team: a team value is not compared (no cross_tenant), and it still protects."""
    with tenant_context(ACME):
        _run(engine, "SELECT theme FROM team_preferences WHERE team_preferences.team_id = :t", {"t": BLUE})
        _run(engine, "SELECT name FROM users WHERE users.team_id IN (:a, :b)", {"a": RED, "b": BLUE})
    assert _findings(traced, "team_preferences") == []
    assert _findings(traced, "FROM users") == []


def test_another_organization_is_cross_tenant_naming_the_organization(engine: sa.engine.Engine, traced: Traced) -> None:
    with tenant_context(ACME, team=RED):
        _run(
            engine,
            "SELECT name FROM users WHERE users.organization_id = :o AND users.team_id = :t",
            {"o": GLOBEX, "t": RED},
        )
    ((rule, severity, message),) = _findings(traced, "FROM users")
    assert (rule, severity) == ("cross_tenant", "critical")
    assert f"filters on organization '{GLOBEX}' but the context organization is '{ACME}'" in message
    assert "team" not in message.partition(" but ")[2]  # the right team is not reported


def test_writing_another_team_is_cross_tenant(engine: sa.engine.Engine, traced: Traced) -> None:
    with tenant_context(ACME, team=RED), engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE users SET team_id = :t WHERE users.organization_id = :o AND users.name = 'ann'"),
            {"t": BLUE, "o": ACME},
        )
    ((rule, severity, message),) = _findings(traced, "UPDATE users")
    assert (rule, severity) == ("cross_tenant", "critical")
    assert f"writes team '{BLUE}' but the context team is '{RED}'" in message


def test_a_table_without_any_key_filter_is_still_missing(engine: sa.engine.Engine, traced: Traced) -> None:
    with tenant_context(ACME, team=RED):
        _run(engine, "SELECT name FROM users WHERE users.name = :n", {"n": "ann"})
    ((rule, severity, message),) = _findings(traced, "FROM users")
    assert (rule, severity) == ("missing_tenant_filter", "critical")
    assert "users" in message
