"""ORM identity for the loader shapes a real application emits (mealie, issue 14): selectin/subquery/immediate loads
of loaded parents' relationships, lazy loads through association tables, the refresh after an INSERT, and by-key
reads from a second session opened on the flush's connection inside ORM event listeners."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan
from sa_support import Traced, attrs, postgres_engine
from sqlalchemy import event
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    immediateload,
    mapped_column,
    relationship,
    selectinload,
)

from tenantwatch import attributes as A
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]
ISOLATION = ("missing_tenant_filter", "unscoped_write", "cross_tenant")


class Base(DeclarativeBase):
    pass


recipes_to_tags = sa.Table(
    "recipes_to_tags",
    Base.metadata,
    sa.Column("recipe_id", sa.ForeignKey("recipes.id"), primary_key=True),
    sa.Column("tag_id", sa.ForeignKey("tags.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    name: Mapped[str]


class Unit(Base):
    __tablename__ = "ingredient_units"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    name: Mapped[str]


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    name: Mapped[str]


class Recipe(Base):
    __tablename__ = "recipes"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    name: Mapped[str]
    rating: Mapped[float | None]
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    author: Mapped[User] = relationship()
    ingredients: Mapped[list[Ingredient]] = relationship(order_by="Ingredient.id")
    tags: Mapped[list[Tag]] = relationship(secondary=recipes_to_tags, order_by="Tag.id")
    meal_plans: Mapped[list[MealPlan]] = relationship(order_by="MealPlan.id")
    comments: Mapped[list[Comment]] = relationship(order_by="Comment.id")


class Ingredient(Base):
    """No tenant column: reached only through its recipe (``recipes_ingredients``)."""

    __tablename__ = "recipes_ingredients"
    id: Mapped[int] = mapped_column(primary_key=True)
    recipe_id: Mapped[int] = mapped_column(sa.ForeignKey("recipes.id"))
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("ingredient_units.id"))
    note: Mapped[str]
    unit: Mapped[Unit] = relationship()


class MealPlan(Base):
    __tablename__ = "group_meal_plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    recipe_id: Mapped[int] = mapped_column(sa.ForeignKey("recipes.id"))


class Comment(Base):
    """No tenant column; many-to-one to its user."""

    __tablename__ = "recipe_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    recipe_id: Mapped[int] = mapped_column(sa.ForeignKey("recipes.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    user: Mapped[User] = relationship()


class Rating(Base):
    """No tenant column (mealie's ``users_to_recipes``): its listener updates the recipe from a second session."""

    __tablename__ = "users_to_recipes"
    id: Mapped[int] = mapped_column(primary_key=True)
    recipe_id: Mapped[int] = mapped_column(sa.ForeignKey("recipes.id"))
    value: Mapped[float]


INGREDIENTS = 3


def _seed(engine: sa.engine.Engine) -> None:
    """Untraced (no tenant context): two tenants with a recipe each, its ingredients, tags, plans, comments."""
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for org in (1, 2):
            user = User(id=org, organization_id=org, name=f"user {org}")
            unit = Unit(id=org, organization_id=org, name=f"unit {org}")
            tags = [Tag(id=org * 10 + i, organization_id=org, name=f"tag {org}.{i}") for i in range(2)]
            recipe = Recipe(id=org, organization_id=org, name=f"recipe {org}", tags=tags, author=user)
            session.add_all([user, unit, recipe])
            session.flush()
            session.add_all(
                Ingredient(id=org * 100 + i, recipe_id=org, unit_id=org, note=f"note {i}") for i in range(INGREDIENTS)
            )
            session.add(MealPlan(id=org, organization_id=org, recipe_id=org))
            session.add(Comment(id=org, recipe_id=org, user_id=org))
        session.commit()


@pytest.fixture(params=[pytest.param("psycopg", marks=pytest.mark.postgres), "sqlite"])
def make_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], sa.engine.Engine]]:
    """Builds the seeded engine, after the test instrumented (PostgreSQL with psycopg, and SQLite)."""
    made: list[sa.engine.Engine] = []

    def make() -> sa.engine.Engine:
        if request.param == "sqlite":
            engine = sa.create_engine(f"sqlite:///{tmp_path / 'loaders.db'}")
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
    return {
        str((event.attributes or {}).get(A.RULE)): dict(event.attributes or {})
        for event in span.events
        if event.name == A.FINDING_EVENT
    }


def _recipe(session: Session, org: int, *options: Any) -> Recipe:
    return session.execute(sa.select(Recipe).where(Recipe.organization_id == org).options(*options)).scalar_one()


def _load_under(engine: sa.engine.Engine, owner: int, reader: int, options: Any) -> Recipe:
    """Loads the recipe of ``owner`` with its tenant filter, the eager ``options`` running under ``reader``'s context
    (a selectin load runs with its parent's statement: the parent is loaded under ``reader`` too, filtered on
    ``owner``)."""
    with tenant_context(str(reader)), Session(engine) as session:
        return _recipe(session, owner, options)


# --- 1. selectin and immediate loads of loaded parents -------------------------------------------------------


def test_selectinload_of_a_non_tenant_child_joined_to_a_tenant_table_is_present_by_identity(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """``FROM recipes_ingredients LEFT OUTER JOIN ingredient_units ... WHERE recipes_ingredients.recipe_id IN (?)``:
    the bound keys are recipes this session loaded for the context tenant."""
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    recipe = _load_under(engine, 1, 1, selectinload(Recipe.ingredients).joinedload(Ingredient.unit))
    assert [i.unit.name for i in recipe.ingredients] == ["unit 1"] * INGREDIENTS
    span = _span(traced, "FROM recipes_ingredients")
    facts = attrs(span)
    assert facts[A.DB_TENANT_FILTER] == "present"
    assert facts[A.DB_IDENTITY_KIND] == "load"
    assert facts[A.DB_IDENTITY_COLUMN] == "recipes.organization_id"
    assert facts[A.DB_IDENTITY_TENANT_VALUES] == ("1",)
    assert any(entry.endswith(":ingredient_units") for entry in facts[A.DB_IDENTITY])
    assert _findings(span) == {}


def test_selectinload_through_another_tenants_parent_is_cross_tenant(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """Tenant 1's context loads tenant 2's recipe (its filter names tenant 2: that statement is cross_tenant
    already) and the selectin load of its ingredients goes through that row: cross_tenant, not a missing filter."""
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    _load_under(engine, 2, 1, selectinload(Recipe.ingredients).joinedload(Ingredient.unit))
    found = _findings(_span(traced, "FROM recipes_ingredients"))
    assert set(found) == {"cross_tenant"}
    assert found["cross_tenant"][A.SEVERITY] == "critical"
    assert "loads through 1 row of tenant '2'" in found["cross_tenant"][A.MESSAGE]


def test_selectinload_of_many_parents_counts_each_tenant(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """Both tenants' recipes in one selectin statement: the fact counts one parent per tenant; the context's own
    parent does not hide the other tenant's."""
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        recipes = (
            session.execute(
                sa.select(Recipe).where(Recipe.organization_id.in_([1, 2])).options(selectinload(Recipe.tags))
            )
            .scalars()
            .all()
        )
        assert len(recipes) == 2
    span = _span(traced, "JOIN tags")
    facts = attrs(span)
    assert sorted(zip(facts[A.DB_IDENTITY_TENANT_VALUES], facts[A.DB_IDENTITY_TENANT_ROWS], strict=True)) == [
        ("1", 1),
        ("2", 1),
    ]
    assert "loads through 1 row of tenant '2'" in _findings(span)["cross_tenant"][A.MESSAGE]


def test_selectinload_many_to_one_by_the_childs_key_is_present_by_identity(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """``SELECT users.* FROM users WHERE users.id IN (?)``: the keys are the foreign keys of the loaded recipes; both
    ways."""
    instrument(install_processor=True)
    engine = make_engine()
    for owner, expected in ((1, set()), (2, {"cross_tenant"})):
        traced.clear()
        recipe = _load_under(engine, owner, 1, selectinload(Recipe.author))
        assert recipe.author.name == f"user {owner}"
        users = _span(traced, "FROM users")
        assert attrs(users)[A.DB_IDENTITY_TENANT_VALUES] == (str(owner),)
        assert set(_findings(users)) == set(expected), owner
        if not expected:
            assert attrs(users)[A.DB_TENANT_FILTER] == "present"


def test_immediateload_of_a_loaded_parents_collection(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    instrument(install_processor=True)
    engine = make_engine()
    for owner, expected in ((1, set()), (2, {"cross_tenant"})):
        traced.clear()
        recipe = _load_under(engine, owner, 1, immediateload(Recipe.tags))
        assert len(recipe.tags) == 2
        span = _span(traced, "recipes_to_tags")
        assert set(_findings(span)) == expected, (owner, attrs(span))
        assert attrs(span)[A.DB_IDENTITY_TENANT_VALUES] == (str(owner),)


# --- 2. lazy loads through association tables, lazy one-to-many, refresh after INSERT -------------------------------


@pytest.mark.parametrize("owner", [1, 2])
def test_lazy_load_through_an_association_table(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine], owner: int
) -> None:
    """``FROM tags, recipes_to_tags WHERE ? = recipes_to_tags.recipe_id AND tags.id = recipes_to_tags.tag_id``."""
    instrument(install_processor=True)
    engine = make_engine()
    with Session(engine) as session:
        with tenant_context(str(owner)):
            recipe = _recipe(session, owner)
        traced.clear()
        with tenant_context("1"):
            assert len(recipe.tags) == 2
    span = _span(traced, "recipes_to_tags")
    assert attrs(span)[A.DB_IDENTITY_TENANT_VALUES] == (str(owner),)
    if owner == 1:
        assert attrs(span)[A.DB_TENANT_FILTER] == "present"
        assert _findings(span) == {}
    else:
        assert set(_findings(span)) == {"cross_tenant"}


@pytest.mark.parametrize("owner", [1, 2])
def test_lazy_one_to_many_by_the_parents_key(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine], owner: int
) -> None:
    """``SELECT ... FROM group_meal_plans WHERE ? = group_meal_plans.recipe_id``."""
    instrument(install_processor=True)
    engine = make_engine()
    with Session(engine) as session:
        with tenant_context(str(owner)):
            recipe = _recipe(session, owner)
        traced.clear()
        with tenant_context("1"):
            assert len(recipe.meal_plans) == 1
    span = _span(traced, "FROM group_meal_plans")
    assert set(_findings(span)) == (set() if owner == 1 else {"cross_tenant"})


@pytest.mark.parametrize("owner", [1, 2])
def test_refresh_after_insert_in_the_same_commit(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine], owner: int
) -> None:
    """mealie's ``create``: add, commit, refresh. The refresh reads the row this session inserted; its tenant is the
    one the INSERT wrote (another tenant's: the INSERT is cross_tenant, and so is the refresh through it)."""
    instrument(install_processor=True)
    engine = make_engine()
    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        tag = Tag(id=99, organization_id=owner, name="new")
        session.add(tag)
        session.commit()
        session.refresh(tag)
    refresh = _span(traced, "FROM tags")
    assert attrs(refresh)[A.DB_IDENTITY_TENANT_VALUES] == (str(owner),)
    assert set(_findings(refresh)) == (set() if owner == 1 else {"cross_tenant"})


# --- 3. a second session on the flush's connection (event listeners) --------------------------------------------------


def _rating_listener(mapper: Any, connection: sa.Connection, target: Rating) -> None:
    """mealie's ``update_recipe_rating_on_insert_or_delete``: a Session on the flush's connection reads the recipe
    by the id the new row holds and updates it."""
    session = Session(bind=connection)
    recipe = session.query(Recipe).filter(Recipe.id == target.recipe_id).first()
    if recipe is not None:
        recipe.rating = target.value
    session.commit()


@pytest.fixture
def rating_listener() -> Iterator[None]:
    event.listen(Rating, "after_insert", _rating_listener)
    yield
    event.remove(Rating, "after_insert", _rating_listener)


@pytest.mark.usefixtures("rating_listener")
@pytest.mark.parametrize("owner", [1, 2])
def test_by_key_read_and_update_from_a_listener_session_on_the_same_connection(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine], owner: int
) -> None:
    """The recipe was loaded in this transaction by the request's session (filtered on ``owner``): the listener
    session's by-key read and its flush UPDATE are that row's, judged by its tenant."""
    instrument(install_processor=True)
    engine = make_engine()
    with tenant_context("1"), Session(engine) as session:
        recipe = _recipe(session, owner)
        traced.clear()
        session.add(Rating(id=1, recipe_id=recipe.id, value=4.5))
        session.commit()
    read = _span(traced, "FROM recipes")
    update = _span(traced, "UPDATE recipes")
    assert attrs(read)[A.DB_IDENTITY_TENANT_VALUES] == (str(owner),)
    if owner == 1:
        assert attrs(read)[A.DB_TENANT_FILTER] == "present"
        assert attrs(read)[A.DB_IDENTITY] == ("main:recipes",)
        assert _findings(read) == {}
        assert _findings(update) == {}
    else:
        assert set(_findings(read)) == {"cross_tenant"}
        assert set(_findings(update)) == {"cross_tenant"}
    with Session(engine) as check:
        assert check.get(Recipe, owner).rating == 4.5  # type: ignore[union-attr]


def test_by_key_read_of_a_row_inserted_in_this_transaction(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """A recipe inserted by this transaction (and dropped by the application, so no session holds it) is read back
    by key from a listener session: the tenant the INSERT wrote."""
    instrument(install_processor=True)
    engine = make_engine()
    event.listen(Rating, "after_insert", _rating_listener)
    try:
        with tenant_context("1"), Session(engine) as session:
            session.add(Recipe(id=7, organization_id=1, name="new", author_id=1))
            session.flush()
            gc.collect()
            assert not session.identity_map  # the application holds no reference: only the INSERT knows it
            traced.clear()
            session.add(Rating(id=1, recipe_id=7, value=3.0))
            session.commit()
    finally:
        event.remove(Rating, "after_insert", _rating_listener)
    read = _span(traced, "FROM recipes")
    assert attrs(read)[A.DB_IDENTITY] == ("main:recipes",)
    assert _findings(read) == {}


def test_by_key_read_of_a_row_nobody_loaded_stays_missing(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """The listener reads a recipe by an id from the new row that this transaction never loaded: no identity."""
    instrument(install_processor=True)
    engine = make_engine()
    event.listen(Rating, "after_insert", _rating_listener)
    try:
        with tenant_context("1"), Session(engine) as session:
            traced.clear()
            session.add(Rating(id=1, recipe_id=2, value=1.0))
            session.commit()
    finally:
        event.remove(Rating, "after_insert", _rating_listener)
    read = _span(traced, "FROM recipes")
    assert A.DB_IDENTITY_KIND not in attrs(read)
    assert "missing_tenant_filter" in _findings(read)


def test_transaction_identity_does_not_outlive_the_transaction(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """Loaded in one transaction on a connection, read by key in the next transaction of that connection (and on
    another connection): nothing carries over."""
    instrument(install_processor=True)
    engine = make_engine()
    with tenant_context("1"), engine.connect() as connection:
        first = Session(bind=connection)
        recipe = _recipe(first, 1)
        first.commit()
        connection.commit()
        first.expunge(recipe)  # a session that no longer holds it
        traced.clear()
        later = Session(bind=connection)
        assert later.query(Recipe).filter(Recipe.id == 1).first() is not None
        later.commit()
        with engine.connect() as other:
            other_session = Session(bind=other)
            assert other_session.query(Recipe).filter(Recipe.id == 1).first() is not None
            other_session.commit()
    reads = traced.db_spans("FROM recipes")
    assert len(reads) == 2
    assert all(A.DB_IDENTITY_KIND not in attrs(s) for s in reads)
    assert all("missing_tenant_filter" in _findings(s) for s in reads)


def test_by_key_read_with_a_subquery_or_join_is_not_identity(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine]
) -> None:
    """Only a plain read by the whole primary key: a subquery or an explicit join reads rows the key does not pin."""
    instrument(install_processor=True)
    engine = make_engine()
    with tenant_context("1"), Session(engine) as session:
        _recipe(session, 1)
        traced.clear()
        session.execute(sa.select(Recipe).where(Recipe.id == 1, sa.exists(sa.select(Tag.id)))).all()
        session.execute(sa.select(Recipe).join(Tag, sa.true()).where(Recipe.id == 1)).all()
        session.execute(sa.select(Recipe).where(sa.or_(Recipe.id == 1, Recipe.id == 2))).all()
    spans = traced.db_spans("FROM recipes")
    assert len(spans) == 3
    for span in spans:
        assert A.DB_IDENTITY not in attrs(span), attrs(span)
        assert "missing_tenant_filter" in _findings(span)


def test_written_rows_are_capped_per_transaction(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond the cap, rows written are not noted: a by-key read of one of them (no session holds it) is judged by the
    analyzer alone, and the read of a noted row still by identity."""
    from tenantwatch.instrumentation import _identity

    monkeypatch.setattr(_identity, "MAX_NOTED", 3)
    instrument(install_processor=True)
    engine = make_engine()
    with tenant_context("1"), Session(engine) as session:
        session.add_all(Recipe(id=10 + i, organization_id=1, name=f"r{i}", author_id=1) for i in range(6))
        session.flush()
        gc.collect()
        traced.clear()
        reader = Session(bind=session.connection())
        reader.query(Recipe).filter(Recipe.id == 10).first()
        reader.query(Recipe).filter(Recipe.id == 15).first()
        reader.close()
    first, last = traced.db_spans("FROM recipes")
    assert attrs(first)[A.DB_IDENTITY] == ("main:recipes",)
    assert A.DB_IDENTITY_KIND not in attrs(last)
