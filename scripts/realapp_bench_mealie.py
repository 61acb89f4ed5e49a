"""mealie's part of bench/bench_realapp.py: how its engine and sessions are made, what one loop of its own repository
calls is, and the tenant context it runs in.

Runs inside a bench worker (mealie's venv, the application's checkout on ``sys.path``), imported only after the
worker has set up its instrumentation: mealie creates its engine when ``mealie.db.db_setup`` is imported, with
``sqlalchemy.create_engine``, which OTel's SQLAlchemy instrumentation patches.

The loop is one "request" of a member of one group: a session from mealie's own ``session_context()``, the
repositories from ``get_repositories(session, group_id=..., household_id=...)`` (as mealie's controllers build them),
and on each of four group-scoped models (units, foods, tools, labels) a create, a get by id, an update, a list with
pagination and a delete; on recipes (household-scoped, the app's heaviest model) a get by slug, a page of the list and
a create, update and delete. The tenant context is what scripts/realapp_adopter_mealie.py enters for a signed-in user
(the group as the tenant, dashed ``str(uuid)``, no household). Set-up (schema, the group with its household and
preferences, a user, seed rows to paginate) runs ``unscoped``, as the harness runs mealie's fixtures.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tenantwatch

PACKAGE = "mealie"
"""Top-level package of the application: how the bench recognises a checkout."""

SEED_ROWS = 20
"""Rows per model seeded before the loop, so the paginated lists return a page of real rows."""

PAGE = 10


def environment(data_dir: Path) -> dict[str, str]:
    """What mealie's settings read when imported: a production configuration on SQLite in ``data_dir`` (never the
    checkout's tests/.temp, which the harness's suite runs use)."""
    return {"PRODUCTION": "True", "TESTING": "False", "DATA_DIR": str(data_dir), "DB_ENGINE": "sqlite"}


def rules_environment(work: Path) -> dict[str, str]:
    """The adopter's rules file (the group ⊃ household hierarchy, tables learned from the ORM), as the harness
    writes it."""
    import realapp_harness

    rules = work / "rules.yaml"
    realapp_harness.write_rules_file(rules, realapp_harness.MEALIE, {})
    return {"TENANTWATCH_RULES_FILE": str(rules)}


@dataclass
class App:
    engine: Any
    group_id: uuid.UUID
    household_id: uuid.UUID
    user_id: uuid.UUID
    recipe_slugs: list[str]

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """The tenant context of the signed-in member (scripts/realapp_adopter_mealie.py's ``user_scope``)."""
        return tenantwatch.tenant_context(str(self.group_id), user_id=str(self.user_id), role="user")

    def loop(self, i: int) -> None:
        """One request's worth of the app's own repository calls (reads and writes), in one session."""
        from mealie.db.db_setup import session_context
        from mealie.repos.all_repositories import get_repositories
        from mealie.schema.labels.multi_purpose_label import MultiPurposeLabelSave
        from mealie.schema.recipe.recipe import Recipe
        from mealie.schema.recipe.recipe_ingredient import SaveIngredientFood, SaveIngredientUnit
        from mealie.schema.recipe.recipe_tool import RecipeToolSave
        from mealie.schema.response.pagination import PaginationQuery

        page = PaginationQuery(page=1 + i % 2, per_page=PAGE)
        with session_context() as session:
            repos = get_repositories(session, group_id=self.group_id, household_id=self.household_id)
            crud: list[tuple[Any, Any]] = [
                (repos.ingredient_units, SaveIngredientUnit(name=f"loop unit {i}", group_id=self.group_id)),
                (repos.ingredient_foods, SaveIngredientFood(name=f"loop food {i}", group_id=self.group_id)),
                (repos.tools, RecipeToolSave(name=f"loop tool {i}", group_id=self.group_id)),
                (
                    repos.group_multi_purpose_labels,
                    MultiPurposeLabelSave(name=f"loop label {i}", group_id=self.group_id),
                ),
            ]
            for repo, new in crud:
                created = repo.create(new)
                _expect(repo.get_one(created.id), f"{repo.model.__name__} by id")
                repo.update(created.id, new.model_copy(update={"name": f"{new.name} (renamed)"}))
                _expect(repo.page_all(page).items, f"a page of {repo.model.__name__}")
                repo.delete(created.id)

            recipes = repos.recipes
            _expect(recipes.get_one(self.recipe_slugs[i % len(self.recipe_slugs)], "slug"), "recipe by slug")
            _expect(recipes.page_all(page).items, "a page of recipes")
            recipe = recipes.create(
                Recipe(
                    name=f"loop recipe {i}",
                    user_id=self.user_id,
                    group_id=self.group_id,
                    household_id=self.household_id,
                )
            )
            assert recipe.slug is not None
            recipes.update(recipe.slug, recipe.model_copy(update={"description": "updated by the loop"}))
            recipes.delete(recipe.slug, "slug")


def _expect(found: Any, what: str) -> None:
    if not found:
        raise RuntimeError(f"realapp_bench_mealie: {what} came back empty: the loop is not doing what it says")


def setup() -> App:
    """Create mealie's schema on its own engine (a fresh SQLite file) and seed one group to loop over."""
    from mealie.db import db_setup
    from mealie.db.models import _all_models  # noqa: F401 - maps every model
    from mealie.db.models._model_base import SqlAlchemyBase
    from mealie.repos.all_repositories import get_repositories
    from mealie.schema.labels.multi_purpose_label import MultiPurposeLabelSave
    from mealie.schema.recipe.recipe import Recipe
    from mealie.schema.recipe.recipe_ingredient import SaveIngredientFood, SaveIngredientUnit
    from mealie.schema.recipe.recipe_tool import RecipeToolSave
    from mealie.schema.user.user import GroupBase
    from mealie.services.group_services.group_service import GroupService

    if not str(db_setup.engine.url).startswith("sqlite:///" + os.environ["DATA_DIR"]):
        raise RuntimeError(f"realapp_bench_mealie: mealie's engine is {db_setup.engine.url}, not in DATA_DIR")
    SqlAlchemyBase.metadata.create_all(db_setup.engine)
    with tenantwatch.unscoped("bench set-up: the group, its user and seed rows"), db_setup.session_context() as session:
        repos = get_repositories(session, group_id=None, household_id=None)
        group = GroupService.create_group(repos, GroupBase(name="bench group"))
        household_id = group.households[0].id
        user = repos.users.create(
            {
                "username": "bench",
                "password": "bench-password-not-used",
                "full_name": "Bench User",
                "email": "bench@bench.invalid",
                "admin": False,
                "group": group.name,  # mealie's User() resolves its group and household by name
                "household": group.households[0].name,
            }
        )
        scoped = get_repositories(session, group_id=group.id, household_id=household_id)
        for n in range(SEED_ROWS):
            scoped.ingredient_units.create(SaveIngredientUnit(name=f"unit {n}", group_id=group.id))
            scoped.ingredient_foods.create(SaveIngredientFood(name=f"food {n}", group_id=group.id))
            scoped.tools.create(RecipeToolSave(name=f"tool {n}", group_id=group.id))
            scoped.group_multi_purpose_labels.create(MultiPurposeLabelSave(name=f"label {n}", group_id=group.id))
        slugs = [
            str(
                scoped.recipes.create(
                    Recipe(name=f"recipe {n}", user_id=user.id, group_id=group.id, household_id=household_id)
                ).slug
            )
            for n in range(SEED_ROWS)
        ]
    return App(db_setup.engine, group.id, household_id, user.id, slugs)
