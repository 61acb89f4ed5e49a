"""Observed enforcement of lookups by key in enforce mode, on SQLite and PostgreSQL: a lookup by key without a tenant
filter runs when its rows can be compared, and a row of another tenant is stopped at the fetch; what cannot be
compared, and list reads, are still blocked before they run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sa_support import Traced, attrs, postgres_engine, sqlite_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from tenantwatch import attributes as A
from tenantwatch.context import tenant_context, unscoped
from tenantwatch.instrumentation import TenantIsolationError, TenantwatchSQLAlchemyInstrumentor

_Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]


class Base(DeclarativeBase):
    pass


class Recipe(Base):
    __tablename__ = "recipes"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    title: Mapped[str]


class Step(Base):
    """A child row without a tenant column of its own."""

    __tablename__ = "steps"
    id: Mapped[int] = mapped_column(primary_key=True)
    recipe_id: Mapped[int] = mapped_column(sa.ForeignKey("recipes.id"))
    text: Mapped[str]
    recipe: Mapped[Recipe] = relationship()


RECIPES = Recipe.__table__
OWN, OTHER, OWN_STEP = 11, 21, 1


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, instrument: _Instrument) -> Iterator[sa.engine.Engine]:
    instrument(mode="enforce", install_processor=True)
    if request.param == "sqlite":
        created = sqlite_engine(request.getfixturevalue("tmp_path") / "observed.db")
    else:
        request.applymarker(pytest.mark.postgres)
        dsn = request.getfixturevalue("postgres_dsn")
        created = postgres_engine(dsn, "psycopg", request.getfixturevalue("pg_schema"))
    Base.metadata.create_all(created)
    with unscoped("test seed"), Session(created) as session:
        session.add_all(
            [Recipe(id=OWN, organization_id=1, title="own"), Recipe(id=OTHER, organization_id=2, title="x")]
        )
        session.flush()
        session.add(Step(id=OWN_STEP, recipe_id=OWN, text="stir"))
        session.commit()
    yield created
    created.dispose()


def _findings(span: Any) -> dict[str, str]:
    """rule -> severity of the findings the processor put on a span."""
    return {
        str(event.attributes[A.RULE]): str(event.attributes[A.SEVERITY])
        for event in span.events
        if event.name == A.FINDING_EVENT and event.attributes is not None
    }


def _recipe_spans(traced: Traced) -> list[Any]:
    return [s for s in traced.db_spans("FROM recipes") if str(attrs(s).get(A.DB_OPERATION)) == "SELECT"]


def test_session_get_of_an_own_row_runs_with_a_latent_warning(engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        recipe = session.get(Recipe, OWN)
    assert recipe is not None and recipe.title == "own"
    (span,) = _recipe_spans(traced)
    assert _findings(span) == {"missing_tenant_filter": "warning"}
    assert A.DB_ENFORCED not in attrs(span)


def test_session_get_of_another_tenants_row_is_stopped_at_the_fetch(engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    got: list[Any] = []
    with tenant_context("1"), Session(engine) as session, pytest.raises(TenantIsolationError) as stopped:
        got.append(session.get(Recipe, OTHER))
    assert got == []  # the application received nothing
    assert [f.rule for f in stopped.value.findings] == ["cross_tenant_read"]
    assert stopped.value.facts.tenant_rows_other == 1
    (span,) = _recipe_spans(traced)  # the statement ran once; its span says it was stopped
    assert attrs(span)[A.DB_ENFORCED] is True
    assert span.status.description == "blocked by tenantwatch: cross_tenant_read"
    assert _findings(span)["cross_tenant_read"] == "critical"
    assert _findings(span)["missing_tenant_filter"] == "critical"


def test_core_lookup_of_another_tenants_row_raises_at_the_fetch_not_the_execute(
    engine: sa.engine.Engine, traced: Traced
) -> None:
    with tenant_context("1"), engine.connect() as conn:
        result = conn.execute(sa.select(RECIPES).where(RECIPES.c.id == OTHER))  # runs
        with pytest.raises(TenantIsolationError):
            result.all()
        try:  # no later fetch hands the row out either
            again = result.fetchall()
        except sa.exc.SQLAlchemyError:  # the cursor was closed
            again = []
        assert again == []


def test_lazy_many_to_one_from_a_child_without_tenant_column_runs(engine: sa.engine.Engine, traced: Traced) -> None:
    with tenant_context("1"), Session(engine) as session:
        step = session.get(Step, OWN_STEP)
        assert step is not None
        traced.clear()
        assert step.recipe.title == "own"  # the lazy load: SELECT ... FROM recipes WHERE recipes.id = ?
    (span,) = _recipe_spans(traced)
    assert _findings(span) == {"missing_tenant_filter": "warning"}


def test_lookup_by_key_without_the_tenant_column_is_blocked_before_execution(
    engine: sa.engine.Engine, traced: Traced
) -> None:
    ran: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: ran.append(args[2]))
    with tenant_context("1"), engine.connect() as conn, pytest.raises(TenantIsolationError) as blocked:
        conn.execute(sa.select(RECIPES.c.title).where(RECIPES.c.id == OWN))
    assert [f.rule for f in blocked.value.findings] == ["missing_tenant_filter"]
    assert not [s for s in ran if "FROM recipes" in s]
    (span,) = _recipe_spans(traced)
    assert attrs(span)[A.DB_ENFORCED] is True


def test_list_read_is_blocked_before_execution(engine: sa.engine.Engine, traced: Traced) -> None:
    ran: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: ran.append(args[2]))
    with tenant_context("1"), Session(engine) as session, pytest.raises(TenantIsolationError) as blocked:
        session.scalars(sa.select(Recipe).where(Recipe.title == "own")).all()
    assert [f.rule for f in blocked.value.findings] == ["missing_tenant_filter"]
    assert not [s for s in ran if "FROM recipes" in s]


def test_rows_are_compared_when_the_db_span_is_sampled_out(instrument: _Instrument, tmp_path: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    instrument(mode="enforce", tracer_provider=TracerProvider(sampler=ALWAYS_OFF))
    engine = sqlite_engine(tmp_path / "sampled.db")
    Base.metadata.create_all(engine)
    with unscoped("test seed"), Session(engine) as session:
        session.add_all(
            [Recipe(id=OWN, organization_id=1, title="own"), Recipe(id=OTHER, organization_id=2, title="x")]
        )
        session.commit()
    with tenant_context("1"), Session(engine) as session:
        own = session.get(Recipe, OWN)
        assert own is not None and own.title == "own"
        with pytest.raises(TenantIsolationError) as stopped:
            session.get(Recipe, OTHER)
    engine.dispose()
    assert [f.rule for f in stopped.value.findings] == ["cross_tenant_read"]
