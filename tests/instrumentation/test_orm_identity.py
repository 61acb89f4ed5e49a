"""ORM identity on real databases: statements the ORM emits on instances (flush UPDATE/DELETE by primary key, lazy
loads, refresh) are judged by the tenant of those instances as the session loaded them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan
from sa_support import Traced, attrs, postgres_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from tenantwatch import attributes as A
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantIsolationError, TenantwatchSQLAlchemyInstrumentor

Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    name: Mapped[str]
    tasks: Mapped[list[Task]] = relationship(back_populates="project", order_by="Task.id")


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"))
    title: Mapped[str]
    project: Mapped[Project] = relationship(back_populates="tasks")


TASKS_PER_PROJECT = 30
ISOLATION = ("missing_tenant_filter", "unscoped_write", "cross_tenant")


def _seed(engine: sa.engine.Engine) -> None:
    """Untraced (no tenant context): two tenants, one project each with its tasks."""
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for org in (1, 2):
            project = Project(id=org, organization_id=org, name=f"project {org}")
            session.add(project)
            session.add_all(
                Task(id=org * 100 + i, organization_id=org, project_id=org, title=f"task {i}")
                for i in range(TASKS_PER_PROJECT)
            )
        session.commit()


@pytest.fixture(params=[pytest.param("psycopg", marks=pytest.mark.postgres), "sqlite"])
def make_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], sa.engine.Engine]]:
    """Builds the seeded engine, after the test instrumented (PostgreSQL with psycopg, and SQLite once)."""
    made: list[sa.engine.Engine] = []

    def make() -> sa.engine.Engine:
        if request.param == "sqlite":
            engine = sa.create_engine(f"sqlite:///{tmp_path / 'identity.db'}")
        else:
            engine = postgres_engine(
                request.getfixturevalue("postgres_dsn"), request.param, request.getfixturevalue("pg_schema")
            )
        _seed(engine)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


def _span(traced: Traced, needle: str) -> ReadableSpan:
    spans = traced.db_spans(needle)
    assert len(spans) == 1, [s.attributes for s in traced.spans()]
    return spans[0]


def _findings(span: ReadableSpan) -> dict[str, dict[str, Any]]:
    """rule -> the finding event's attributes."""
    return {
        str((event.attributes or {}).get(A.RULE)): dict(event.attributes or {})
        for event in span.events
        if event.name == A.FINDING_EVENT
    }


def _scoped_project(session: Session, org: int) -> Project:
    return session.execute(sa.select(Project).where(Project.organization_id == org)).scalar_one()


def test_flush_update_of_a_scoped_instance_is_present_by_identity(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        project = _scoped_project(session, 1)
        project.name = "renamed"
        session.flush()
        session.commit()
    span = _span(traced, "UPDATE projects")
    facts = attrs(span)
    assert facts[A.DB_TENANT_FILTER] == "present"
    assert facts[A.DB_IDENTITY] == ("main:projects",)
    assert facts[A.DB_IDENTITY_KIND] == "write"
    assert facts[A.DB_IDENTITY_TENANT_VALUES] == ("1",)
    assert A.DB_UNSCOPED_WRITES not in facts
    assert _findings(span) == {}
    assert facts[A.CODE_FILEPATH].endswith("test_orm_identity.py")


def test_flush_delete_of_a_scoped_instance_is_present_by_identity(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        task = session.execute(sa.select(Task).where(Task.organization_id == 1, Task.id == 100)).scalar_one()
        session.delete(task)
        session.commit()
    span = _span(traced, "DELETE FROM tasks")
    assert attrs(span)[A.DB_IDENTITY] == ("main:tasks",)
    assert _findings(span) == {}


def test_instance_of_another_tenant_flushed_under_this_context_is_cross_tenant(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """Loaded under tenant 2, changed under tenant 1: a write to another tenant's row, and only that finding."""
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    with Session(engine) as session:
        with tenant_context("2"):
            project = _scoped_project(session, 2)
        with tenant_context("1"):
            project.name = "taken over"
            session.commit()
    span = _span(traced, "UPDATE projects")
    found = _findings(span)
    assert set(found) == {"cross_tenant"}
    assert found["cross_tenant"][A.SEVERITY] == "critical"
    message = found["cross_tenant"][A.MESSAGE]
    assert "projects" in message
    assert "writes 1 row of tenant '2'" in message
    assert attrs(span)[A.CODE_FILEPATH].endswith("test_orm_identity.py")


def test_flush_setting_another_tenants_id_is_one_cross_tenant_finding(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """The row is the context tenant's (identity holds); the SET stamps another tenant's id: cross_tenant once."""
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        project = _scoped_project(session, 1)
        project.organization_id = 2
        session.commit()
    span = _span(traced, "UPDATE projects")
    assert attrs(span)[A.DB_IDENTITY_TENANT_VALUES] == ("1",)  # the value in the database, not the pending one
    found = _findings(span)
    assert set(found) == {"cross_tenant"}
    assert "writes tenant '2'" in found["cross_tenant"][A.MESSAGE]
    assert "row" not in found["cross_tenant"][A.MESSAGE]


def test_lazy_load_from_a_scoped_parent_is_present_by_identity(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        project = _scoped_project(session, 1)
        assert len(project.tasks) == TASKS_PER_PROJECT
        task = project.tasks[0]
        session.expunge(project)  # the many-to-one below has to load its parent again
        assert task.project.name == "project 1"
    lazy = _span(traced, "FROM tasks")
    assert attrs(lazy)[A.DB_TENANT_FILTER] == "present"
    assert attrs(lazy)[A.DB_IDENTITY] == ("main:tasks",)
    assert attrs(lazy)[A.DB_IDENTITY_KIND] == "load"
    assert _findings(lazy) == {}
    parent = [s for s in traced.db_spans("FROM projects") if A.DB_IDENTITY in attrs(s)]
    assert len(parent) == 1
    assert attrs(parent[0])[A.DB_IDENTITY_COLUMN] == "tasks.organization_id"
    assert _findings(parent[0]) == {}


def test_lazy_load_through_another_tenants_parent_is_cross_tenant(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    with Session(engine) as session:
        with tenant_context("2"):
            project = _scoped_project(session, 2)
        with tenant_context("1"):
            assert len(project.tasks) == TASKS_PER_PROJECT
    found = _findings(_span(traced, "FROM tasks"))
    assert set(found) == {"cross_tenant"}
    assert "loads through 1 row of tenant '2'" in found["cross_tenant"][A.MESSAGE]


def test_refresh_of_a_scoped_instance_is_present_by_identity(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """session.refresh() expires the instance before it reads it again: the value kept since the commit says whose."""
    instrument(install_processor=True)
    engine = make_engine()
    with tenant_context("1"), Session(engine) as session:
        project = _scoped_project(session, 1)
        session.commit()
        session.refresh(project)
        traced.clear()
        session.refresh(project)
    refresh = _span(traced, "FROM projects")
    assert attrs(refresh)[A.DB_IDENTITY] == ("main:projects",)
    assert _findings(refresh) == {}


def test_refresh_of_an_instance_whose_tenant_was_never_kept_is_unchanged(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """Loaded, never committed nor flushed, refreshed: the tenant is unknown, the analyzer's verdict stands."""
    instrument(install_processor=True)
    engine = make_engine()
    with tenant_context("1"), Session(engine) as session:
        project = _scoped_project(session, 1)
        traced.clear()
        session.refresh(project)
    refresh = attrs(_span(traced, "FROM projects"))
    assert refresh[A.DB_IDENTITY_UNKNOWN_ROWS] == 1
    assert A.DB_IDENTITY not in refresh
    assert refresh[A.DB_TENANT_FILTER] == "missing"


def test_re_read_of_an_instance_expired_by_commit_is_present_by_identity(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """The commit expires every attribute, the tenant's too: the value kept through expiry still says whose row."""
    instrument(install_processor=True)
    engine = make_engine()
    with tenant_context("1"), Session(engine) as session:
        project = _scoped_project(session, 1)
        session.commit()
        traced.clear()
        assert project.name == "project 1"
    reread = _span(traced, "FROM projects")
    assert attrs(reread)[A.DB_IDENTITY] == ("main:projects",)
    assert _findings(reread) == {}


def test_get_of_a_row_not_in_the_identity_map_stays_missing(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """Nothing was loaded scoped: a by-key read is no identity."""
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        assert session.get(Project, 2) is not None
    span = _span(traced, "FROM projects")
    assert A.DB_IDENTITY_KIND not in attrs(span)
    assert "missing_tenant_filter" in _findings(span)


def test_executemany_flush_of_many_instances(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """Every task of the project in one flush: one identity verdict counting every row; one of another tenant is
    named with its count."""
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        tasks = session.execute(sa.select(Task).where(Task.organization_id == 1)).scalars().all()
        for task in tasks:
            session.delete(task)
        session.commit()
    deletes = traced.db_spans("DELETE FROM tasks")
    assert deletes
    assert sum(sum(attrs(s)[A.DB_IDENTITY_TENANT_ROWS]) for s in deletes) == TASKS_PER_PROJECT
    assert all(attrs(s)[A.DB_IDENTITY] == ("main:tasks",) for s in deletes)
    assert not [rule for s in deletes for rule in _findings(s) if rule in ISOLATION]  # rapid_write may say 30 rows

    traced.clear()
    with Session(engine) as session:
        with tenant_context("2"):
            theirs = session.execute(sa.select(Task).where(Task.organization_id == 2)).scalars().all()
        with tenant_context("1"):
            for task in theirs:
                session.delete(task)
            session.commit()
    messages = [_findings(s)["cross_tenant"][A.MESSAGE] for s in traced.db_spans("DELETE FROM tasks")]
    assert messages
    assert sum(int(m.split("writes ")[1].split(" ")[0]) for m in messages) == TASKS_PER_PROJECT


def test_no_leak_to_a_later_core_statement_on_the_same_connection(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    projects = Project.__table__
    with tenant_context("1"), Session(engine) as session:
        project = _scoped_project(session, 1)
        project.name = "renamed"
        session.flush()
        connection = session.connection()
        connection.execute(sa.update(projects).where(projects.c.id == 1).values(name="by hand"))
        session.commit()
    by_hand = [s for s in traced.db_spans("UPDATE projects") if A.DB_IDENTITY_KIND not in attrs(s)]
    assert len(by_hand) == 1
    assert set(_findings(by_hand[0])) == {"unscoped_write"}

    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        project = _scoped_project(session, 1)
        project.name = project.name  # dirty with no net change: before_update runs, no UPDATE is emitted
        session.flush()
        session.connection().execute(sa.update(projects).where(projects.c.id == 1).values(name="again"))
        session.commit()
    assert set(_findings(_span(traced, "UPDATE projects"))) == {"unscoped_write"}


def test_enforce_mode_lets_the_scoped_update_run_and_blocks_the_other_tenants(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    instrument(mode="enforce", install_processor=True)
    engine = make_engine()
    with tenant_context("1"), Session(engine) as session:
        project = _scoped_project(session, 1)
        project.name = "allowed"
        session.commit()
    with Session(engine) as session:
        with tenant_context("2"):
            theirs = _scoped_project(session, 2)
        with tenant_context("1"):
            theirs.name = "blocked"
            with pytest.raises(TenantIsolationError) as raised:
                session.commit()
    assert [f.rule for f in raised.value.findings] == ["cross_tenant"]
    with tenant_context("2"), Session(engine) as session:
        names = dict(session.execute(sa.select(Project.id, Project.name).where(Project.organization_id == 2)).all())
    assert names == {2: "project 2"}
    with tenant_context("1"), Session(engine) as session:
        assert _scoped_project(session, 1).name == "allowed"
