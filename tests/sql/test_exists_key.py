"""``exists_key``: SQLAlchemy's ``relationship.has()`` filters a table without a tenant column through a correlated
EXISTS on its parent; a joinedload of that parent by the same key then inherits the tenant (statements captured
from SQLAlchemy on SQLite, judged by the rules as the processor would)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, ForeignKey, Integer, String, create_engine, event, func, or_, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, joinedload, mapped_column, relationship

from tenantwatch import attributes as A
from tenantwatch.config import Settings, load_settings
from tenantwatch.context import TenantContext
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import facts_for_statement
from tenantwatch.sql import Analyzer


class _Base(DeclarativeBase):
    pass


class _Recipe(_Base):
    __tablename__ = "recipes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String, default="")


class _Event(_Base):
    __tablename__ = "recipe_timeline_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipe_id: Mapped[int] = mapped_column(ForeignKey("recipes.id"))
    origin_id: Mapped[int | None] = mapped_column(ForeignKey("recipes.id"), nullable=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    recipe: Mapped[_Recipe] = relationship(foreign_keys=[recipe_id])
    origin: Mapped[_Recipe | None] = relationship(foreign_keys=[origin_id])


@pytest.fixture
def captured() -> Iterator[tuple[Session, list[tuple[str, Any]]]]:
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    with Session(engine) as session:
        session.add(_Recipe(id=1, group_id=1, name="soup"))
        session.add(_Event(id=1, recipe_id=1))
        session.commit()
        statements.clear()
        yield session, statements
    engine.dispose()


def _findings(settings: Settings, statement: str, parameters: Any) -> tuple[list[tuple[str, str | None]], Any]:
    analyzer = Analyzer(settings)
    analyzer.tables.learn_from_metadata(_Base.metadata)
    facts = facts_for_statement(analyzer.analyze(statement), parameters, TenantContext(tenant_id="1"))
    return [(f.rule, f.table) for f in evaluate(facts, settings)], facts


def _run(session: Session, statements: list[tuple[str, Any]], query: Any) -> tuple[str, Any]:
    session.execute(query).unique().all()
    (found,) = [(s, p) for s, p in statements if "recipe_timeline_events" in s]
    return found


_TENANT = Settings(tenant_tables={"recipes": "group_id"})


def test_joinedload_of_the_parent_pinned_by_has_is_inherited(captured: tuple[Session, list[Any]]) -> None:
    """mealie's ``get_one``: ``.has(group_id == g)`` and a joinedload of the same recipe: no finding by default."""
    session, statements = captured
    query = (
        select(_Event)
        .options(joinedload(_Event.recipe))
        .where(_Event.recipe.has(_Recipe.group_id == 1), _Event.id == 1)
    )
    statement, parameters = _run(session, statements, query)
    assert "EXISTS" in statement and "LEFT OUTER JOIN recipes AS recipes_1" in statement
    found, facts = _findings(_TENANT, statement, parameters)
    assert found == []
    attributes = facts.to_attributes()
    assert attributes[A.DB_TENANT_FILTER] == "inherited"
    assert list(attributes[A.DB_INHERITED]) == ["join:recipes_1:recipes:exists_key"]


def test_pagination_count_around_the_pinned_query_has_no_finding(captured: tuple[Session, list[Any]]) -> None:
    session, statements = captured
    inner = (
        select(_Event.id, _Recipe.name)
        .outerjoin(_Recipe, _Recipe.id == _Event.recipe_id)
        .where(_Event.recipe.has(_Recipe.group_id == 1))
        .subquery()
    )
    statement, parameters = _run(session, statements, select(func.count()).select_from(inner))
    assert statement.startswith("SELECT count(*)")
    found, facts = _findings(_TENANT, statement, parameters)
    assert found == []
    assert facts.to_attributes()[A.DB_TENANT_FILTER] == "inherited"


def test_strict_profile_reports_the_pinned_join(captured: tuple[Session, list[Any]], tmp_path: Path) -> None:
    session, statements = captured
    query = select(_Event).options(joinedload(_Event.recipe)).where(_Event.recipe.has(_Recipe.group_id == 1))
    statement, parameters = _run(session, statements, query)
    rules = tmp_path / "rules.yaml"
    rules.write_text("profile: strict\ntenant_tables: {recipes: group_id}\n")
    strict = load_settings(rules, environ={})
    analyzer = Analyzer(strict)
    analyzer.tables.learn_from_metadata(_Base.metadata)
    facts = facts_for_statement(analyzer.analyze(statement), parameters, TenantContext(tenant_id="1"))
    found = evaluate(facts, strict)
    assert [(f.rule, f.table) for f in found] == [("missing_tenant_filter", "recipes")]
    assert "(exists_key)" in found[0].message


def test_has_under_or_leaves_the_join_missing(captured: tuple[Session, list[Any]]) -> None:
    session, statements = captured
    query = (
        select(_Event)
        .options(joinedload(_Event.recipe))
        .where(or_(_Event.recipe.has(_Recipe.group_id == 1), _Event.public.is_(True)))
    )
    statement, parameters = _run(session, statements, query)
    found, _facts = _findings(_TENANT, statement, parameters)
    assert found == [("missing_tenant_filter", "recipes")]


def test_join_on_another_key_than_the_pinned_one_is_no_exists_key(captured: tuple[Session, list[Any]]) -> None:
    """``has()`` pins ``recipe_id``; the joinedload of ``origin`` goes through ``origin_id``: not the pinned recipe
    (no ``exists_key``), but a declared foreign key of the pinned event row, so ``fk_join`` through the pinned carrier
    (tests/sql/test_pinned_carrier.py), a finding only in the strict profile."""
    session, statements = captured
    query = select(_Event).options(joinedload(_Event.origin)).where(_Event.recipe.has(_Recipe.group_id == 1))
    statement, parameters = _run(session, statements, query)
    found, facts = _findings(_TENANT, statement, parameters)
    assert found == []
    assert list(facts.to_attributes()[A.DB_INHERITED]) == ["join:recipes_1:recipes:fk_join"]


def test_has_on_a_non_tenant_column_pins_nothing(captured: tuple[Session, list[Any]]) -> None:
    session, statements = captured
    query = select(_Event).options(joinedload(_Event.recipe)).where(_Event.recipe.has(_Recipe.name == "soup"))
    statement, parameters = _run(session, statements, query)
    found, _facts = _findings(_TENANT, statement, parameters)
    assert ("missing_tenant_filter", "recipes") in found
