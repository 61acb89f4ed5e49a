"""A pinned carrier: SQLAlchemy's ``relationship.has()`` pins a table without a tenant column to a protected parent
row through a correlated EXISTS; the tables a joinedload reaches from that table on a declared foreign key then
inherit the tenant (``fk_join`` via the pinned table). Statements captured from SQLAlchemy on SQLite, judged by the
rules as the processor would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, ForeignKey, Integer, String, create_engine, event, or_, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, foreign, joinedload, mapped_column, relationship

from tenantwatch.config import Settings, load_settings
from tenantwatch.context import TenantContext
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import facts_for_statement
from tenantwatch.sql import Analyzer


class _Base(DeclarativeBase):
    pass


class _Dish(_Base):
    __tablename__ = "dishes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer)


class _Cook(_Base):
    __tablename__ = "cooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String, default="")


class _Note(_Base):
    """No tenant column: its rows belong to the group of their dish."""

    __tablename__ = "dish_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dish_id: Mapped[int] = mapped_column(ForeignKey("dishes.id"))
    cook_id: Mapped[int] = mapped_column(ForeignKey("cooks.id"))
    reviewer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # no declared foreign key
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    dish: Mapped[_Dish] = relationship()
    cook: Mapped[_Cook] = relationship()
    reviewer: Mapped[_Cook | None] = relationship(primaryjoin=lambda: _Cook.id == foreign(_Note.reviewer_id))


@pytest.fixture
def captured() -> Iterator[tuple[Session, list[tuple[str, Any]]]]:
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    with Session(engine) as session:
        session.add_all([_Dish(id=1, group_id=1), _Cook(id=1, group_id=1, name="ann")])
        session.add(_Note(id=1, dish_id=1, cook_id=1, reviewer_id=1))
        session.commit()
        statements.clear()
        yield session, statements
    engine.dispose()


_TENANT = Settings(tenant_tables={"dishes": "group_id", "cooks": "group_id"})


def _judge(settings: Settings, session: Session, statements: list[tuple[str, Any]], query: Any) -> tuple[Any, Any]:
    session.execute(query).unique().all()
    ((statement, parameters),) = [(s, p) for s, p in statements if "dish_notes" in s]
    analyzer = Analyzer(settings)
    analyzer.tables.learn_from_metadata(_Base.metadata)
    analysis = analyzer.analyze(statement)
    facts = facts_for_statement(analysis, parameters, TenantContext(tenant_id="1"))
    return evaluate(facts, settings), analysis


def test_joinedload_from_a_table_pinned_by_has_is_inherited(captured: tuple[Session, list[Any]]) -> None:
    """mealie's timeline events / comments: ``.has(group_id == g)`` and a joinedload of the author: no finding."""
    session, statements = captured
    query = select(_Note).options(joinedload(_Note.cook)).where(_Note.dish.has(_Dish.group_id == 1), _Note.id == 1)
    found, analysis = _judge(_TENANT, session, statements, query)
    assert [(f.rule, f.table) for f in found] == []
    assert analysis.tenant_filter == "inherited"
    assert analysis.inherited_reads == ("join:cooks_1:cooks:fk_join",)


def test_strict_profile_names_the_pinned_chain(captured: tuple[Session, list[Any]], tmp_path: Path) -> None:
    session, statements = captured
    rules = tmp_path / "rules.yaml"
    rules.write_text("profile: strict\ntenant_tables: {dishes: group_id, cooks: group_id}\n")
    strict = load_settings(rules, environ={})
    query = select(_Note).options(joinedload(_Note.cook)).where(_Note.dish.has(_Dish.group_id == 1))
    found, analysis = _judge(strict, session, statements, query)
    assert [(f.rule, f.table) for f in found] == [("missing_tenant_filter", "cooks")]
    assert "(fk_join)" in found[0].message
    (cooks,) = [s for s in analysis.scopes if s.table == "cooks"]  # what tenantwatch explain shows
    assert cooks.reason == "joined on a foreign key (id = cook_id) via dish_notes, pinned to protected dishes"


def test_has_under_or_carries_nothing(captured: tuple[Session, list[Any]]) -> None:
    session, statements = captured
    query = (
        select(_Note)
        .options(joinedload(_Note.cook))
        .where(or_(_Note.dish.has(_Dish.group_id == 1), _Note.public.is_(True)))
    )
    found, _facts = _judge(_TENANT, session, statements, query)
    assert [(f.rule, f.table, f.severity) for f in found] == [("missing_tenant_filter", "cooks", "critical")]


def test_join_on_a_column_without_declared_key_stays_missing(captured: tuple[Session, list[Any]]) -> None:
    """The reviewer relationship joins on ``reviewer_id``, which MetaData declares no foreign key for."""
    session, statements = captured
    query = select(_Note).options(joinedload(_Note.reviewer)).where(_Note.dish.has(_Dish.group_id == 1))
    found, _facts = _judge(_TENANT, session, statements, query)
    assert [(f.rule, f.table, f.severity) for f in found] == [("missing_tenant_filter", "cooks", "critical")]
