"""Tenant tables on a fresh database: learned from ORM mappings, re-discovered when a statement names an unseen table
or after DDL on any engine, and one WARNING when statements run and none is known (issue 14, item 7: the app's
engine connected before its migrations created the tables)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sa_support import Traced, attrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]
WARNING_TEXT = "no tenant-scoped table is known"


def _empty_database(path: Path) -> sa.engine.Engine:
    sqlite3.connect(path).close()
    return sa.create_engine(f"sqlite:///{path}")


def _create_behind_its_back(path: Path, table: str) -> None:
    """Like migrations run by another process: the instrumented engine sees no DDL. Tenant column ``org_ref``, so
    no ORM class mapped by other tests counts."""
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, org_ref integer, name text)")


def _verdict(traced: Traced, table: str) -> list[str]:
    return [attrs(span).get(A.DB_TENANT_FILTER, "") for span in traced.db_spans(f"FROM {table}")]


def test_mapped_classes_are_tenant_tables_before_the_tables_exist(
    instrument: Instrument, traced: Traced, tmp_path: Path
) -> None:
    class Base(DeclarativeBase):
        pass

    class Widget(Base):
        __tablename__ = "widgets"
        id: Mapped[int] = mapped_column(primary_key=True)
        organization_id: Mapped[int]

    sa.orm.configure_mappers()  # mapped before tenantwatch starts, as an app imports its models first
    instrument()

    class Gadget(Base):  # mapped after
        __tablename__ = "gadgets"
        id: Mapped[int] = mapped_column(primary_key=True)
        organization_id: Mapped[int]

    sa.orm.configure_mappers()
    path = tmp_path / "fresh.db"
    engine = _empty_database(path)
    with tenant_context("1"), engine.connect() as conn:
        conn.execute(sa.text("SELECT 1")).all()  # discovery ran on this connection: the catalog is empty
        Base.metadata.create_all(_migrations_engine(path))
        conn.execute(sa.select(Widget.id)).all()
        conn.execute(sa.select(Gadget.id)).all()
    engine.dispose()
    assert _verdict(traced, "widgets") == ["missing"]
    assert _verdict(traced, "gadgets") == ["missing"]


def _migrations_engine(path: Path) -> sa.engine.Engine:
    """An engine for migrations; created after instrumenting, so it is traced like the app's."""
    return sa.create_engine(f"sqlite:///{path}")


def test_an_unseen_table_is_looked_up_again(
    instrument: Instrument, traced: Traced, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    instrument(settings=Settings(tenant_columns=("org_ref",)))
    path = tmp_path / "fresh.db"
    engine = _empty_database(path)
    with caplog.at_level(logging.WARNING, logger="tenantwatch"):
        with tenant_context("1"), engine.connect() as conn:
            _create_behind_its_back(path, "orders")
            conn.execute(sa.text("SELECT name FROM orders")).all()  # the catalog was read before orders existed
            conn.execute(sa.text("SELECT name FROM orders WHERE id = 1")).all()
        with tenant_context("1"), engine.connect() as conn:
            conn.execute(sa.text("SELECT name FROM orders WHERE id = 2")).all()
    engine.dispose()
    assert _verdict(traced, "orders") == ["not_applicable", "not_applicable", "missing"]
    warnings = [r for r in caplog.records if WARNING_TEXT in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


def test_ddl_on_another_engine_makes_every_engine_look_again(
    instrument: Instrument, traced: Traced, tmp_path: Path
) -> None:
    instrument()
    path = tmp_path / "fresh.db"
    app = _empty_database(path)
    migrations = sa.create_engine(f"sqlite:///{path}")
    with app.connect() as conn:
        conn.execute(sa.text("SELECT 1")).all()
    with migrations.begin() as conn:
        conn.execute(sa.text("CREATE TABLE invoices (id integer PRIMARY KEY, organization_id integer)"))
    with tenant_context("1"), app.connect() as conn:
        conn.execute(sa.text("SELECT id FROM invoices")).all()
    app.dispose()
    migrations.dispose()
    assert _verdict(traced, "invoices") == ["missing"]


def test_no_warning_when_tenant_tables_are_known(
    instrument: Instrument, traced: Traced, sqlite_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    instrument()
    engine = sa.create_engine(f"sqlite:///{sqlite_path}")
    with caplog.at_level(logging.WARNING, logger="tenantwatch"), tenant_context("1"), engine.connect() as conn:
        conn.execute(sa.text("SELECT name FROM items WHERE organization_id = 1")).all()
    engine.dispose()
    assert not [r for r in caplog.records if WARNING_TEXT in r.getMessage()]


def test_foreign_keys_of_mapped_classes_make_joins_inherited(
    instrument: Instrument, traced: Traced, tmp_path: Path
) -> None:
    """The catalog was empty when the engine connected: the ORM mapping alone says ``labels`` is reached through a
    declared foreign key from a filtered ``foods`` row, so the join inherits the filter (issue 14, item 1)."""

    class Base(DeclarativeBase):
        pass

    class Label(Base):
        __tablename__ = "fk_labels"
        id: Mapped[int] = mapped_column(primary_key=True)
        organization_id: Mapped[int]

    class Food(Base):
        __tablename__ = "fk_foods"
        id: Mapped[int] = mapped_column(primary_key=True)
        organization_id: Mapped[int]
        label_id: Mapped[int] = mapped_column(sa.ForeignKey("fk_labels.id"))

    sa.orm.configure_mappers()
    instrument()
    path = tmp_path / "fresh.db"
    engine = _empty_database(path)
    query = (
        sa.select(Food.id)
        .join(Label, Label.id == Food.label_id, isouter=True)
        .where(Food.organization_id == 1, Food.id == 2)
    )
    with tenant_context("1"), engine.connect() as conn:
        conn.execute(sa.text("SELECT 1")).all()  # discovery ran on this connection: the catalog is empty
        Base.metadata.create_all(_migrations_engine(path))
        conn.execute(query).all()
    engine.dispose()
    (span,) = traced.db_spans("FROM fk_foods")
    assert attrs(span)[A.DB_TENANT_FILTER] == "inherited"
    assert "missing_tenant_filter" not in attrs(span).get(A.FINDINGS, ())
