"""Capture the SQL that SQLAlchemy 2's ORM really emits, for the ORM corpus (tests/sql/test_orm_corpus.py).

A small declarative model (tenant column ``org_id``, tenant root ``organizations``) covers the relationship kinds
of real multi-tenant apps: one-to-many (``recipes.ingredients``), many-to-one (``recipes.label``), many-to-many
through an association table without a tenant column (``recipes_to_categories``), a joined-table polymorphic
hierarchy (``tools`` ⊃ ``knives``) and a self-reference (``users.manager``). Each *case* is one ORM operation run
in a fresh session on seeded data; every statement reaching the DB-API cursor while it runs
(``before_cursor_execute``) is recorded. ``python tests/sql/orm_capture.py [sqlite | <postgresql url>]`` prints
every case's statements with the analyzer's verdicts, for review.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ForeignKey, String, Table, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectin_polymorphic,
    selectinload,
    subqueryload,
    with_loader_criteria,
    with_polymorphic,
)

from tenantwatch.config import Settings
from tenantwatch.sql import Analyzer

ORG = 1
"""The tenant every case works for (a second one, 2, owns rows of its own)."""


class Base(DeclarativeBase):
    pass


class HasOrg:
    """Every tenant-owned class: the tenant column (``with_loader_criteria(HasOrg, ...)`` filters them all)."""

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))


recipes_to_categories = Table(
    "recipes_to_categories",
    Base.metadata,
    Column("recipe_id", ForeignKey("recipes.id"), primary_key=True),
    Column("category_id", ForeignKey("categories.id"), primary_key=True),
)
"""The many-to-many association table: no tenant column of its own."""


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    recipes: Mapped[list[Recipe]] = relationship(back_populates="organization")


class User(HasOrg, Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    manager: Mapped[User | None] = relationship(remote_side=[id])


class Label(HasOrg, Base):
    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Category(HasOrg, Base):
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Recipe(HasOrg, Base):
    __tablename__ = "recipes"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    label_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id"))
    organization: Mapped[Organization] = relationship(back_populates="recipes")
    user: Mapped[User | None] = relationship()
    label: Mapped[Label | None] = relationship()
    ingredients: Mapped[list[Ingredient]] = relationship(
        back_populates="recipe", cascade="all, delete-orphan", order_by="Ingredient.id"
    )
    categories: Mapped[list[Category]] = relationship(secondary=recipes_to_categories, order_by="Category.id")


class Ingredient(HasOrg, Base):
    __tablename__ = "ingredients"
    id: Mapped[int] = mapped_column(primary_key=True)
    recipe_id: Mapped[int] = mapped_column(ForeignKey("recipes.id"))
    note: Mapped[str] = mapped_column(String(50))
    recipe: Mapped[Recipe] = relationship(back_populates="ingredients")


class Tool(HasOrg, Base):
    __tablename__ = "tools"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(50))
    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "tool"}


class Knife(Tool):
    """Joined-table inheritance: ``knives`` holds only its own columns (the tenant column is on ``tools``)."""

    __tablename__ = "knives"
    id: Mapped[int] = mapped_column(ForeignKey("tools.id"), primary_key=True)
    blade_cm: Mapped[int]
    __mapper_args__ = {"polymorphic_identity": "knife"}


def settings() -> Settings:
    """The analyzer settings of the corpus: tenant column ``org_id``, tenant root ``organizations``."""
    return Settings(tenant_columns=("org_id",), tenant_roots={"org_id": "organizations"})


def analyzer() -> Analyzer:
    """An analyzer that knows the model (tenant tables and foreign keys from the MetaData, as discovery does)."""
    found = Analyzer(settings())
    found.tables.learn_from_metadata(Base.metadata)
    return found


def seed(engine: Engine) -> None:
    """Fresh tables with two tenants' rows."""
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for org in (1, 2):
            base = org * 100
            session.add(Organization(id=org, name=f"org {org}"))
            session.flush()
            boss = User(id=base + 1, org_id=org, name="boss")
            cook = User(id=base + 2, org_id=org, name="cook", manager=boss)
            label = Label(id=base + 1, org_id=org, name="veg")
            cats = [Category(id=base + i, org_id=org, name=f"cat {i}") for i in (1, 2)]
            for i in (1, 2, 3):
                recipe = Recipe(id=base + i, org_id=org, name=f"recipe {i}", user=cook, label=label)
                recipe.ingredients = [Ingredient(id=base * 10 + i * 10 + j, org_id=org, note="x") for j in (1, 2)]
                recipe.categories = cats[: 1 + i % 2]
                session.add(recipe)
            session.add_all([boss, cook])
            session.add(Tool(id=base + 1, org_id=org, name="spoon"))
            session.add(Knife(id=base + 2, org_id=org, name="chef", blade_cm=20))
        session.commit()


Action = Callable[[Session], object]


def _select_filtered(s: Session) -> object:
    return s.scalars(select(Recipe).where(Recipe.org_id == ORG)).all()


def _joinedload_many_to_one(s: Session) -> object:
    return s.scalars(select(Recipe).options(joinedload(Recipe.label)).where(Recipe.org_id == ORG)).all()


def _joinedload_one_to_many(s: Session) -> object:
    stmt = select(Recipe).options(joinedload(Recipe.ingredients)).where(Recipe.org_id == ORG)
    return s.scalars(stmt).unique().all()


def _joinedload_limit(s: Session) -> object:
    stmt = (
        select(Recipe)
        .options(joinedload(Recipe.ingredients), joinedload(Recipe.label))
        .where(Recipe.org_id == ORG)
        .order_by(Recipe.id)
        .limit(2)
    )
    return s.scalars(stmt).unique().all()


def _joinedload_many_to_many(s: Session) -> object:
    stmt = select(Recipe).options(joinedload(Recipe.categories)).where(Recipe.org_id == ORG)
    return s.scalars(stmt).unique().all()


def _joinedload_many_to_many_limit(s: Session) -> object:
    stmt = select(Recipe).options(joinedload(Recipe.categories)).where(Recipe.org_id == ORG).limit(2)
    return s.scalars(stmt).unique().all()


def _joinedload_chain(s: Session) -> object:
    stmt = select(Recipe).options(joinedload(Recipe.user).joinedload(User.manager)).where(Recipe.org_id == ORG)
    return s.scalars(stmt).all()


def _joinedload_self_reference(s: Session) -> object:
    return s.scalars(select(User).options(joinedload(User.manager)).where(User.org_id == ORG)).all()


def _selectinload_one_to_many(s: Session) -> object:
    return s.scalars(select(Recipe).options(selectinload(Recipe.ingredients)).where(Recipe.org_id == ORG)).all()


def _selectinload_many_to_one(s: Session) -> object:
    return s.scalars(select(Recipe).options(selectinload(Recipe.label)).where(Recipe.org_id == ORG)).all()


def _selectinload_many_to_many(s: Session) -> object:
    return s.scalars(select(Recipe).options(selectinload(Recipe.categories)).where(Recipe.org_id == ORG)).all()


def _subqueryload_one_to_many(s: Session) -> object:
    return s.scalars(select(Recipe).options(subqueryload(Recipe.ingredients)).where(Recipe.org_id == ORG)).all()


def _subqueryload_many_to_many(s: Session) -> object:
    return s.scalars(select(Recipe).options(subqueryload(Recipe.categories)).where(Recipe.org_id == ORG)).all()


def _subqueryload_limit(s: Session) -> object:
    stmt = select(Recipe).options(subqueryload(Recipe.ingredients)).where(Recipe.org_id == ORG).order_by(Recipe.id)
    return s.scalars(stmt.limit(2)).all()


def _lazy_one_to_many(s: Session) -> object:
    recipe = s.scalars(select(Recipe).where(Recipe.org_id == ORG, Recipe.id == 101)).one()
    return recipe.ingredients


def _lazy_many_to_one(s: Session) -> object:
    recipe = s.scalars(select(Recipe).where(Recipe.org_id == ORG, Recipe.id == 101)).one()
    return recipe.label


def _lazy_many_to_many(s: Session) -> object:
    recipe = s.scalars(select(Recipe).where(Recipe.org_id == ORG, Recipe.id == 101)).one()
    return recipe.categories


def _lazy_self_reference(s: Session) -> object:
    user = s.scalars(select(User).where(User.org_id == ORG, User.id == 102)).one()
    return user.manager


def _flush_insert(s: Session) -> object:
    recipe = Recipe(org_id=ORG, name="new", label_id=101)
    recipe.ingredients = [Ingredient(org_id=ORG, note="a"), Ingredient(org_id=ORG, note="b")]
    s.add(recipe)
    s.flush()
    return recipe.id


def _flush_insert_association(s: Session) -> object:
    recipe = s.scalars(select(Recipe).where(Recipe.org_id == ORG, Recipe.id == 102)).one()  # only in category 101
    category = s.scalars(select(Category).where(Category.org_id == ORG, Category.id == 102)).one()
    recipe.categories.append(category)
    s.flush()
    return recipe


def _flush_update(s: Session) -> object:
    recipe = s.scalars(select(Recipe).where(Recipe.org_id == ORG, Recipe.id == 101)).one()
    recipe.name = "renamed"
    s.flush()
    return recipe


def _flush_delete(s: Session) -> object:
    ingredient = s.scalars(select(Ingredient).where(Ingredient.org_id == ORG, Ingredient.id == 1011)).one()
    s.delete(ingredient)
    s.flush()
    return ingredient


def _flush_delete_association(s: Session) -> object:
    stmt = select(Recipe).options(selectinload(Recipe.categories)).where(Recipe.org_id == ORG, Recipe.id == 101)
    recipe = s.scalars(stmt).one()
    recipe.categories.clear()
    s.flush()
    return recipe


def _session_get(s: Session) -> object:
    return s.get(Recipe, 101)


def _session_get_one(s: Session) -> object:
    return s.get_one(Label, 101)


def _refresh(s: Session) -> object:
    recipe = s.scalars(select(Recipe).where(Recipe.org_id == ORG, Recipe.id == 101)).one()
    s.refresh(recipe)
    return recipe


def _expired_reread(s: Session) -> object:
    recipe = s.scalars(select(Recipe).where(Recipe.org_id == ORG, Recipe.id == 101)).one()
    s.expire(recipe, ["name"])
    return recipe.name


def _polymorphic_base(s: Session) -> object:
    return s.scalars(select(Tool).where(Tool.org_id == ORG).order_by(Tool.id)).all()


def _polymorphic_subclass(s: Session) -> object:
    return s.scalars(select(Knife).where(Knife.org_id == ORG)).all()


def _polymorphic_with_polymorphic(s: Session) -> object:
    tools = with_polymorphic(Tool, "*")
    return s.scalars(select(tools).where(tools.org_id == ORG)).all()


def _polymorphic_selectin(s: Session) -> object:
    stmt = select(Tool).options(selectin_polymorphic(Tool, [Knife])).where(Tool.org_id == ORG)
    return s.scalars(stmt).all()


def _polymorphic_get(s: Session) -> object:
    return s.get(Knife, 102)


def _loader_criteria_selectinload(s: Session) -> object:
    stmt = (
        select(Recipe)
        .options(
            selectinload(Recipe.ingredients),
            with_loader_criteria(Ingredient, Ingredient.org_id == ORG),
        )
        .where(Recipe.org_id == ORG)
    )
    return s.scalars(stmt).all()


def _loader_criteria_lazy(s: Session) -> object:
    stmt = (
        select(Recipe)
        .options(with_loader_criteria(Ingredient, Ingredient.org_id == ORG))
        .where(Recipe.org_id == ORG, Recipe.id == 101)
    )
    return s.scalars(stmt).one().ingredients


def _loader_criteria_tenant_mixin(s: Session) -> object:
    """The documented multi-tenant recipe: one criteria for every class with ``org_id``, on the main query too."""
    stmt = select(Recipe).options(
        joinedload(Recipe.label),
        selectinload(Recipe.categories),
        with_loader_criteria(HasOrg, lambda cls: cls.org_id == ORG, include_aliases=True),
    )
    return s.scalars(stmt).all()


def _root_joinedload(s: Session) -> object:
    stmt = select(Organization).options(joinedload(Organization.recipes)).where(Organization.id == ORG)
    return s.scalars(stmt).unique().all()


def _unfiltered_list(s: Session) -> object:
    return s.scalars(select(Recipe).options(joinedload(Recipe.label))).all()


def _unfiltered_many_to_many(s: Session) -> object:
    return s.scalars(select(Recipe).options(joinedload(Recipe.categories))).unique().all()


def _unfiltered_joinedload_limit(s: Session) -> object:
    stmt = select(Recipe).options(joinedload(Recipe.ingredients), joinedload(Recipe.label)).limit(2)
    return s.scalars(stmt).unique().all()


CASES: dict[str, Action] = {
    "select with filter": _select_filtered,
    "joinedload many-to-one": _joinedload_many_to_one,
    "joinedload one-to-many": _joinedload_one_to_many,
    "joinedload with limit": _joinedload_limit,
    "joinedload many-to-many": _joinedload_many_to_many,
    "joinedload many-to-many with limit": _joinedload_many_to_many_limit,
    "joinedload chain": _joinedload_chain,
    "joinedload self-reference": _joinedload_self_reference,
    "selectinload one-to-many": _selectinload_one_to_many,
    "selectinload many-to-one": _selectinload_many_to_one,
    "selectinload many-to-many": _selectinload_many_to_many,
    "subqueryload one-to-many": _subqueryload_one_to_many,
    "subqueryload many-to-many": _subqueryload_many_to_many,
    "subqueryload with limit": _subqueryload_limit,
    "lazy load one-to-many": _lazy_one_to_many,
    "lazy load many-to-one": _lazy_many_to_one,
    "lazy load many-to-many": _lazy_many_to_many,
    "lazy load self-reference": _lazy_self_reference,
    "flush insert": _flush_insert,
    "flush insert association": _flush_insert_association,
    "flush update": _flush_update,
    "flush delete": _flush_delete,
    "flush delete association": _flush_delete_association,
    "session.get": _session_get,
    "session.get_one": _session_get_one,
    "refresh": _refresh,
    "expired attribute re-read": _expired_reread,
    "polymorphic base": _polymorphic_base,
    "polymorphic subclass": _polymorphic_subclass,
    "polymorphic with_polymorphic": _polymorphic_with_polymorphic,
    "polymorphic selectin": _polymorphic_selectin,
    "polymorphic session.get": _polymorphic_get,
    "with_loader_criteria selectinload": _loader_criteria_selectinload,
    "with_loader_criteria lazy load": _loader_criteria_lazy,
    "with_loader_criteria every tenant class": _loader_criteria_tenant_mixin,
    "tenant root joinedload": _root_joinedload,
    "unfiltered list": _unfiltered_list,
    "unfiltered many-to-many": _unfiltered_many_to_many,
    "unfiltered joinedload with limit": _unfiltered_joinedload_limit,
}


@dataclass(frozen=True, slots=True)
class Captured:
    sql: str
    parameters: Any


@contextmanager
def capturing(engine: Engine) -> Iterator[list[Captured]]:
    """Record every statement the engine sends to a DB-API cursor while the block runs."""
    out: list[Captured] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        out.append(Captured(statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield out
    finally:
        event.remove(engine, "before_cursor_execute", before)


def capture(engine: Engine, action: Action) -> list[Captured]:
    """The statements one case emits, in a fresh session (rolled back: the seeded data stays as it is)."""
    with Session(engine) as session, session.begin():
        session.connection()  # BEGIN / connection set-up before the capture starts
        with capturing(engine) as out:
            action(session)
        session.rollback()
    return out


def _main(argv: list[str]) -> int:
    url = argv[0] if argv and argv[0] != "sqlite" else "sqlite://"
    engine = create_engine(url)
    seed(engine)
    judge = analyzer()
    for label, action in CASES.items():
        print(f"== {label}")
        for item in capture(engine, action):
            analysis = judge.analyze(item.sql)
            print("   " + " ".join(item.sql.split()))
            for s in analysis.scopes:
                by = f" {s.inherited_by}" if s.inherited_by else ""
                print(f"      {s.scope} {s.table} [{s.role}] {s.verdict}{by}: {s.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
