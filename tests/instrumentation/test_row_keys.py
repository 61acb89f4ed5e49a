"""Every tenant key of a row is compared with the context: organization ⊃ team, UUID ids, ORM traffic.

Returned-row inspection (``cross_tenant_read``, the latent ``missing_tenant_filter``) and ORM identity
(``cross_tenant`` on a write to / a load through an instance) compare each tenant-key column of a table — the root key
and the finer keys, and a root table's own key column (``teams.id`` for the team, ``teams.organization_id`` for the
organization) — with the context's value of the same key. A row or an instance is the context's only if every
compared key matches; the finding names the key that differed. Run on SQLite (``uuid.hex`` stored) and PostgreSQL
(native ``uuid``). The tables are named ``rk_*``: other test modules map ``projects``/``tasks`` of their own, and
tenantwatch learns every mapped class of the process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sa_support import Traced, attrs, postgres_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.context import tenant_context, unscoped
from tenantwatch.instrumentation import TenantIsolationError, TenantwatchSQLAlchemyInstrumentor

_Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]

ACME, GLOBEX = uuid.UUID("11111111-1111-4111-8111-111111111111"), uuid.UUID("22222222-2222-4222-8222-222222222222")
RED, BLUE = uuid.UUID("aaaaaaaa-0000-4000-8000-00000000000a"), uuid.UUID("bbbbbbbb-0000-4000-8000-00000000000b")
"""Two teams of ACME."""
GREEN = uuid.UUID("cccccccc-0000-4000-8000-00000000000c")
"""GLOBEX's team."""
RED_PROJECT, BLUE_PROJECT, GREEN_PROJECT = (
    uuid.UUID("0000000a-0000-4000-8000-000000000001"),
    uuid.UUID("0000000b-0000-4000-8000-000000000002"),
    uuid.UUID("0000000c-0000-4000-8000-000000000003"),
)

_RULES = """\
tenant_keys:
  organization: {columns: [organization_id], root: rk_organizations}
  team: {columns: [team_id], parent: organization, root: rk_teams}
"""


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "rk_organizations"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str]


class Team(Base):
    __tablename__ = "rk_teams"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("rk_organizations.id"))
    name: Mapped[str]


class Project(Base):
    __tablename__ = "rk_projects"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("rk_organizations.id"))
    team_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("rk_teams.id"))
    name: Mapped[str]
    tasks: Mapped[list[Task]] = relationship(back_populates="project", order_by="Task.id")


class Task(Base):
    __tablename__ = "rk_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("rk_organizations.id"))
    team_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("rk_teams.id"))
    project_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("rk_projects.id"))
    title: Mapped[str]
    project: Mapped[Project] = relationship(back_populates="tasks")


def _seed(engine: sa.engine.Engine) -> None:
    with unscoped("test seed"), Session(engine) as session:
        session.add_all([Organization(id=ACME, name="acme"), Organization(id=GLOBEX, name="globex")])
        session.flush()
        session.add_all(
            [
                Team(id=RED, organization_id=ACME, name="red"),
                Team(id=BLUE, organization_id=ACME, name="blue"),
                Team(id=GREEN, organization_id=GLOBEX, name="green"),
            ]
        )
        session.flush()
        session.add_all(
            [
                Project(id=RED_PROJECT, organization_id=ACME, team_id=RED, name="red-p"),
                Project(id=BLUE_PROJECT, organization_id=ACME, team_id=BLUE, name="blue-p"),
                Project(id=GREEN_PROJECT, organization_id=GLOBEX, team_id=GREEN, name="green-p"),
            ]
        )
        session.flush()
        tasks = [
            Task(id=10 * n + i, organization_id=org, team_id=team, project_id=project, title=f"t{n}{i}")
            for n, (org, team, project) in enumerate(
                [(ACME, RED, RED_PROJECT), (ACME, BLUE, BLUE_PROJECT), (GLOBEX, GREEN, GREEN_PROJECT)], start=1
            )
            for i in range(3)
        ]
        session.add_all(tasks)
        session.commit()


@pytest.fixture(params=["sqlite", pytest.param("psycopg", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, instrument: _Instrument, tmp_path: Path) -> Iterator[sa.engine.Engine]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(_RULES, encoding="utf-8")
    instrument(install_processor=True, settings=load_settings(rules, environ={}))
    if request.param == "sqlite":
        created = sa.create_engine(f"sqlite:///{tmp_path / 'okr.db'}")
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        created = postgres_engine(dsn, "psycopg", request.getfixturevalue("pg_schema"))
    Base.metadata.create_all(created)
    _seed(created)
    yield created
    created.dispose()


@pytest.fixture
def enforced(instrument: _Instrument, tmp_path: Path) -> Iterator[sa.engine.Engine]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(_RULES + "mode: enforce\n", encoding="utf-8")
    instrument(install_processor=True, settings=load_settings(rules, environ={}))
    created = sa.create_engine(f"sqlite:///{tmp_path / 'okr.db'}")
    Base.metadata.create_all(created)
    _seed(created)
    yield created
    created.dispose()


def _findings(span: Any) -> dict[str, tuple[str, str, str | None]]:
    """rule -> (severity, message, tenant key) of the findings the processor put on a span."""
    found = {}
    for event in span.events:
        if event.name == A.FINDING_EVENT:
            a = dict(event.attributes or {})
            key = a.get(A.FINDING_TENANT_KEY)
            found[str(a[A.RULE])] = (str(a[A.SEVERITY]), str(a[A.MESSAGE]), None if key is None else str(key))
    return found


def _span(traced: Traced, needle: str, operation: str = "SELECT") -> Any:
    spans = [s for s in traced.db_spans(needle) if str(attrs(s).get(A.DB_OPERATION)) == operation]
    assert len(spans) == 1, [attrs(s).get(A.DB_STATEMENT) for s in spans]
    return spans[0]


# --- 1: a lookup by key of another team's row -------------------------------------------------------------------


def test_session_get_of_another_teams_project_is_a_cross_tenant_read_naming_the_team(
    engine: sa.engine.Engine, traced: Traced
) -> None:
    traced.clear()
    with tenant_context(str(ACME), team=str(RED)), Session(engine) as session:
        project = session.get(Project, BLUE_PROJECT)
    assert project is not None and project.team_id == BLUE  # the application got its row, unchanged
    span = _span(traced, "FROM rk_projects")
    found = _findings(span)
    severity, message, key = found["cross_tenant_read"]
    assert (severity, key) == ("critical", "team")
    assert "1 row(s) of another team from rk_projects (a lookup by key without a tenant filter)" in message
    assert str(BLUE) not in message and BLUE.hex not in message  # counts, never values
    assert found["missing_tenant_filter"][0] == "critical"  # not latent: the row is another team's
    assert "latent" not in found["missing_tenant_filter"][1]
    assert attrs(span)[A.DB_TENANT_ROWS_OTHER_KEYS] == ("team",)


def test_session_get_of_the_context_teams_project_is_latent_for_both_keys(
    engine: sa.engine.Engine, traced: Traced
) -> None:
    traced.clear()
    with tenant_context(str(ACME), team=str(RED)), Session(engine) as session:
        session.get(Project, RED_PROJECT)
    found = _findings(_span(traced, "FROM rk_projects"))
    assert set(found) == {"missing_tenant_filter"}
    severity, message, _ = found["missing_tenant_filter"]
    assert severity == "warning"
    assert "latent, a lookup by key: the 1 row(s) it returned were all the context's (organization, team)" in message


def test_an_organization_only_context_compares_the_organization_only(engine: sa.engine.Engine, traced: Traced) -> None:
    """The context holds no team: the team column is not compared, a row of the context organization is its own."""
    traced.clear()
    with tenant_context(str(ACME)), Session(engine) as session:
        session.get(Project, BLUE_PROJECT)
    found = _findings(_span(traced, "FROM rk_projects"))
    assert set(found) == {"missing_tenant_filter"}
    assert "were all the context's (organization)" in found["missing_tenant_filter"][1]


# --- 2: a list query by a foreign key without a tenant filter ---------------------------------------------------


def test_tasks_of_another_teams_project_are_a_cross_tenant_read(engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    with tenant_context(str(ACME), team=str(RED)), Session(engine) as session:
        tasks = session.scalars(sa.select(Task).where(Task.project_id == BLUE_PROJECT)).all()
    assert len(tasks) == 3
    span = _span(traced, "FROM rk_tasks")
    found = _findings(span)
    severity, message, key = found["cross_tenant_read"]
    assert (severity, key) == ("critical", "team")
    assert "returned 3 row(s) of another team from rk_tasks (no tenant filter)" in message
    assert found["missing_tenant_filter"][0] == "critical"
    assert "latent" not in found["missing_tenant_filter"][1]
    a = attrs(span)
    assert (a[A.DB_TENANT_ROWS_INSPECTED], a[A.DB_TENANT_ROWS_OWN], a[A.DB_TENANT_ROWS_OTHER]) == (3, 0, 3)


def test_tasks_of_the_context_teams_project_are_latent(engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    with tenant_context(str(ACME), team=str(RED)), Session(engine) as session:
        session.scalars(sa.select(Task).where(Task.project_id == RED_PROJECT)).all()
    found = _findings(_span(traced, "FROM rk_tasks"))
    assert set(found) == {"missing_tenant_filter"}
    severity, message, _ = found["missing_tenant_filter"]
    assert severity == "critical"  # a read without a key predicate stays critical
    assert "latent, a read: the 3 row(s) it returned were all the context's (organization, team)" in message


def test_tasks_of_another_organization_name_the_organization(engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    with tenant_context(str(ACME), team=str(RED)), Session(engine) as session:
        session.scalars(sa.select(Task).where(Task.project_id == GREEN_PROJECT)).all()
    span = _span(traced, "FROM rk_tasks")
    _, message, key = _findings(span)["cross_tenant_read"]
    assert key == "organization"
    assert "3 row(s) of another organization from rk_tasks" in message
    assert attrs(span)[A.DB_TENANT_ROWS_OTHER_KEYS] == ("organization", "team")


# --- 3: ORM identity: a flush and a lazy load on another team's instance ----------------------------------------


def test_flush_of_another_teams_instance_is_cross_tenant_naming_the_team(
    engine: sa.engine.Engine, traced: Traced
) -> None:
    """Loaded by an organization filter (which protects it), then written: the instance is another team's."""
    with tenant_context(str(ACME), team=str(RED)), Session(engine) as session:
        project = session.scalars(
            sa.select(Project).where(Project.organization_id == ACME, Project.id == BLUE_PROJECT)
        ).one()
        traced.clear()
        project.name = "renamed"
        session.commit()
    span = _span(traced, "UPDATE rk_projects", "UPDATE")
    found = _findings(span)
    severity, message, key = found["cross_tenant"]
    assert (severity, key) == ("critical", "team")
    assert f"writes 1 row of team '{BLUE}' (ORM instances of rk_projects.team_id) but the context team is '{RED}'" in (
        message
    )
    assert "organization" not in message  # the organization is the context's
    a = attrs(span)
    assert a[A.DB_IDENTITY_COLUMN] == "rk_projects.organization_id"
    assert a[A.DB_IDENTITY_KEY_COLUMNS] == ("rk_projects.team_id",)


def test_lazy_load_through_another_teams_instance_is_cross_tenant(engine: sa.engine.Engine, traced: Traced) -> None:
    with tenant_context(str(ACME), team=str(RED)), Session(engine) as session:
        project = session.scalars(
            sa.select(Project).where(Project.organization_id == ACME, Project.id == BLUE_PROJECT)
        ).one()
        traced.clear()
        assert len(project.tasks) == 3  # the lazy load: tasks WHERE ? = tasks.project_id
    span = _span(traced, "FROM rk_tasks")
    severity, message, key = _findings(span)["cross_tenant"]
    assert (severity, key) == ("critical", "team")
    assert f"loads through 1 row of team '{BLUE}'" in message


def test_flush_and_lazy_load_of_the_context_teams_instance_give_no_finding(
    engine: sa.engine.Engine, traced: Traced
) -> None:
    with tenant_context(str(ACME), team=str(RED)), Session(engine) as session:
        project = session.scalars(sa.select(Project).where(Project.team_id == RED, Project.id == RED_PROJECT)).one()
        traced.clear()
        assert len(project.tasks) == 3
        project.name = "renamed"
        session.commit()
    for span in traced.db_spans("rk_projects") + traced.db_spans("FROM rk_tasks"):
        assert _findings(span) == {}, attrs(span).get(A.DB_STATEMENT)
    assert attrs(_span(traced, "UPDATE rk_projects", "UPDATE"))[A.DB_IDENTITY] == ("main:rk_projects",)


def test_enforce_blocks_the_flush_of_another_teams_instance(enforced: sa.engine.Engine, traced: Traced) -> None:
    with tenant_context(str(ACME), team=str(RED)), Session(enforced) as session:
        project = session.scalars(
            sa.select(Project).where(Project.organization_id == ACME, Project.id == BLUE_PROJECT)
        ).one()
        project.name = "renamed"
        with pytest.raises(TenantIsolationError, match="cross_tenant"):
            session.commit()
    with unscoped("check"), enforced.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM rk_projects WHERE name = 'renamed'")).all() == []


# --- 13: a team of another organization, read by its id ---------------------------------------------------------


def test_session_get_of_another_organizations_team_names_the_organization(
    engine: sa.engine.Engine, traced: Traced
) -> None:
    traced.clear()
    with tenant_context(str(ACME), team=str(RED)), Session(engine) as session:
        team = session.get(Team, GREEN)
    assert team is not None and team.organization_id == GLOBEX
    found = _findings(_span(traced, "FROM rk_teams"))
    assert found["cross_tenant"][2] == "team"  # the filter on teams.id names another team
    severity, message, key = found["cross_tenant_read"]
    assert (severity, key) == ("critical", "organization")
    assert "1 row(s) of another organization from rk_teams" in message


def test_session_get_of_another_organizations_team_with_an_organization_only_context(
    engine: sa.engine.Engine, traced: Traced
) -> None:
    """No team in context: the team filter is not compared, but the row it returned is another organization's."""
    traced.clear()
    with tenant_context(str(ACME)), Session(engine) as session:
        session.get(Team, GREEN)
    found = _findings(_span(traced, "FROM rk_teams"))
    assert "cross_tenant" not in found
    assert found["cross_tenant_read"][2] == "organization"


def test_session_get_of_a_team_of_the_context_organization_gives_no_read_finding(
    engine: sa.engine.Engine, traced: Traced
) -> None:
    traced.clear()
    with tenant_context(str(ACME), team=str(RED)), Session(engine) as session:
        session.get(Team, RED)
        session.get(Team, BLUE)  # another team of the context organization: cross_tenant on the filter only
    spans = [s for s in traced.db_spans("FROM rk_teams") if str(attrs(s).get(A.DB_OPERATION)) == "SELECT"]
    assert len(spans) == 2
    assert _findings(spans[0]) == {}
    assert set(_findings(spans[1])) == {"cross_tenant"}
