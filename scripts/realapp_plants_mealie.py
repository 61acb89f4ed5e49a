"""Planted isolation bugs for mealie: six kinds of tenant leak, written by us, swapped into mealie's repositories.

Each plant is one buggy repository method of our own (never a copy of mealie's code). :func:`install` puts it on
one repository of mealie's ``AllRepositories`` (by giving that repository a subclass whose only change is the
planted method), so the bug is reached through mealie's own routes, as a bug in mealie would be, and only by the
repository it names. The harness plugin installs the plants named in ``TENANTWATCH_REALAPP_PLANTS``
(``scripts/realapp_harness.py --plant KIND`` or ``--plant all``) and runs the mealie tests listed with each plant.

The statement of each plant is on a line marked ``# plant: <kind>``: the harness reports a plant *caught* when a
finding inside a request with a tenant points at one of those lines with one of the plant's rules, and *missed*
otherwise. Nothing here imports mealie until :func:`install` runs, so the harness's driver (outside mealie's venv)
reads the plants' tests and rules from this module.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLANTS_ENV = "TENANTWATCH_REALAPP_PLANTS"
"""Comma-separated plant kinds (or ``all``) the harness plugin installs."""

_MARK = re.compile(r"#\s*plant:\s*([a-z_]+)\s*$")


# --------------------------------------------------------------------------------------------------------------
# The buggy methods (``self`` is one of mealie's repository objects).
# --------------------------------------------------------------------------------------------------------------


def _list_units(self: Any, pagination: Any, override: Any = None, search: str | None = None) -> Any:
    """Bug: the units list of the group is read with no group filter (every group's units come back)."""
    from mealie.schema.response.pagination import PaginationBase

    schema = override or self.schema
    every_unit = self._query(override_schema=schema).order_by(self.model.name)
    rows = self.session.execute(every_unit).unique().scalars().all()  # plant: list
    return PaginationBase(
        page=1,
        per_page=max(len(rows), 1),
        total=len(rows),
        total_pages=1,
        items=[schema.model_validate(r) for r in rows],
    )


def _recipe_action_by_id(
    self: Any, value: Any, key: str | None = None, any_case: bool = False, override_schema: Any = None
) -> Any:
    """Bug: a recipe action is read by its id alone (``session.get``): any group's action, given its id (IDOR)."""
    if key not in (None, self.primary_key) or any_case:
        return type(self).__bases__[0].get_one(self, value, key, any_case, override_schema)
    action = self.session.get(self.model, value)  # plant: by_id
    return None if action is None else (override_schema or self.schema).model_validate(action)


def _foods_page_with_raw_total(self: Any, pagination: Any, override: Any = None, search: str | None = None) -> Any:
    """Bug: the foods page counts its total with hand-written SQL that forgets the group (leaks other groups' sizes)."""
    from sqlalchemy import text

    page = type(self).__bases__[0].page_all(self, pagination, override=override, search=search)
    page.total = self.session.execute(text("SELECT count(*) FROM ingredient_foods")).scalar_one()  # plant: raw_text
    return page


def _update_tool_by_id(self: Any, match_value: Any, new_data: Any) -> Any:
    """Bug: a tool is updated by its id alone, with a bulk UPDATE instead of through the group-filtered row."""
    from sqlalchemy import update

    fields = new_data if isinstance(new_data, dict) else new_data.model_dump()
    columns = {
        name: v for name, v in fields.items() if name in self.model.__table__.c and name not in ("id", "group_id")
    }
    self.session.execute(update(self.model).where(self.model.id == match_value).values(**columns))  # plant: update
    self.session.commit()
    return self.get_one(match_value)


def _create_category_in_default_group(self: Any, data: Any) -> Any:
    """Bug: a new category is stamped with the default group's id (``DEFAULT_GROUP``) instead of the caller's."""
    from mealie.core.config import get_app_settings
    from mealie.db.models.group.group import Group
    from sqlalchemy import select

    fields = dict(data if isinstance(data, dict) else data.model_dump())
    default = select(Group.id).where(Group.name == get_app_settings().DEFAULT_GROUP)
    fields["group_id"] = self.session.execute(default).scalar_one()
    category = self.model(session=self.session, **fields)
    self.session.add(category)
    self.session.flush()  # plant: stamp
    self.session.commit()
    return self.schema.model_validate(category)


def _delete_tag_by_id(self: Any, value: Any, match_key: str | None = None) -> Any:
    """Bug: the tag is checked with the group-filtered read, then deleted by its id alone in a bulk DELETE."""
    from sqlalchemy import delete

    tag = self.get_one(value, match_key)
    if tag is None:
        raise LookupError(value)
    self.session.execute(delete(self.model).where(self.model.id == tag.id))  # plant: delete
    self.session.commit()
    return tag


# --------------------------------------------------------------------------------------------------------------
# The catalogue: which repository gets which method, what should catch it, which mealie tests reach it.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plant:
    kind: str
    what: str
    repository: str
    """Attribute of mealie's ``AllRepositories`` whose repository gets the bug."""
    method: str
    bug: Callable[..., Any]
    rules: tuple[str, ...]
    """Rules that catch it, the expected one first; any of them at warning or above at a marked line is a catch."""
    tests: tuple[str, ...]
    """mealie tests (node ids, relative to its checkout) whose requests reach the planted method."""


_ORGANIZERS = "tests/integration_tests/category_tag_tool_tests/test_organizers_common.py"
_MULTITENANT = "tests/multitenant_tests/test_multitenant_cases.py"

PLANTS: tuple[Plant, ...] = (
    Plant(
        "list",
        "a list query without its tenant filter (units of every group)",
        "ingredient_units",
        "page_all",
        _list_units,
        ("missing_tenant_filter",),
        (f"{_MULTITENANT}::test_multitenant_cases_get_all[UnitsTestCase]",),
    ),
    Plant(
        "by_id",
        "a by-id read of another tenant's row (session.get on a recipe action)",
        "group_recipe_actions",
        "get_one",
        _recipe_action_by_id,
        # cross_tenant_read once observed reads land; until then the unfiltered by-key read is missing_tenant_filter
        ("cross_tenant_read", "missing_tenant_filter"),
        (
            "tests/integration_tests/user_household_tests/test_group_recipe_actions.py"
            "::test_group_recipe_actions_get_one[False]",
        ),
    ),
    Plant(
        "raw_text",
        "a raw text() read without filter (the foods page total)",
        "ingredient_foods",
        "page_all",
        _foods_page_with_raw_total,
        ("missing_tenant_filter",),
        (f"{_MULTITENANT}::test_multitenant_cases_get_all[FoodsTestCase]",),
    ),
    Plant(
        "update",
        "an UPDATE without tenant filter (a tool updated by id alone)",
        "tools",
        "update",
        _update_tool_by_id,
        ("unscoped_write",),
        (f"{_ORGANIZERS}::test_organizer_update[tools]",),
    ),
    Plant(
        "stamp",
        "a write stamping another tenant's id (a category created in the default group)",
        "categories",
        "create",
        _create_category_in_default_group,
        ("cross_tenant",),
        (f"{_ORGANIZERS}::test_organizers_create_read[category]",),
    ),
    Plant(
        "delete",
        "a DELETE without tenant filter (a tag deleted by id alone)",
        "tags",
        "delete",
        _delete_tag_by_id,
        ("unscoped_write",),
        (f"{_ORGANIZERS}::test_organizer_delete[tags]",),
    ),
)

KINDS = tuple(plant.kind for plant in PLANTS)
_BY_KIND = {plant.kind: plant for plant in PLANTS}


def select_plants(names: Iterable[str]) -> tuple[Plant, ...]:
    """The plants named (``all`` for every one), in catalogue order; an unknown name raises ``ValueError``."""
    wanted = {name.strip() for name in names if name.strip()}
    if "all" in wanted:
        return PLANTS
    unknown = sorted(wanted - set(_BY_KIND))
    if unknown:
        raise ValueError(f"unknown plant {', '.join(unknown)} (known: {', '.join(KINDS)}, all)")
    return tuple(plant for plant in PLANTS if plant.kind in wanted)


def marked_lines(path: Path | None = None) -> dict[str, tuple[int, ...]]:
    """``kind -> line numbers`` of the statements marked ``# plant: <kind>`` in this file."""
    lines: dict[str, list[int]] = {}
    source = (path or Path(__file__)).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(source, start=1):
        match = _MARK.search(line)
        if match and match.group(1) in _BY_KIND:
            lines.setdefault(match.group(1), []).append(number)
    return {kind: tuple(numbers) for kind, numbers in lines.items()}


# --------------------------------------------------------------------------------------------------------------
# Installation (inside mealie's test process).
# --------------------------------------------------------------------------------------------------------------


def _plant_on(repository: str, method: str, bug: Callable[..., Any]) -> None:
    from mealie.repos.repository_factory import AllRepositories

    prop = AllRepositories.__dict__[repository]
    build = prop.func if isinstance(prop, functools.cached_property) else prop
    planted_types: dict[type, type] = {}

    def planted(self: Any) -> Any:
        repo = build(self)
        cls = type(repo)
        if cls not in planted_types:
            planted_types[cls] = type(f"Planted{cls.__name__}", (cls,), {method: bug})
        repo.__class__ = planted_types[cls]
        return repo

    replacement = functools.cached_property(planted)
    replacement.__set_name__(AllRepositories, repository)
    setattr(AllRepositories, repository, replacement)


def install(names: Iterable[str] | None = None) -> tuple[Plant, ...]:
    """Install the plants named (default: from ``TENANTWATCH_REALAPP_PLANTS``); returns what was installed."""
    if names is None:
        names = os.environ.get(PLANTS_ENV, "").split(",")
    plants = select_plants(names)
    for plant in plants:
        _plant_on(plant.repository, plant.method, plant.bug)
    return plants


# --------------------------------------------------------------------------------------------------------------
# Verdict per plant (the harness's driver, over the findings the plugin recorded).
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantResult:
    plant: Plant
    caught_by: dict[str, Any] | None
    """The first matching finding (rule, severity, code_location, ...), or None when missed."""
    at_lines: tuple[dict[str, Any], ...]
    """Every in-request finding at the plant's marked lines, whatever its rule (to see what else fired)."""

    @property
    def caught(self) -> bool:
        return self.caught_by is not None

    def line(self) -> str:
        if self.caught_by is not None:
            f = self.caught_by
            location = str(f.get("code_location") or "")
            where = Path(location.split(":", 1)[0]).name + ":" + location.split(":", 1)[1] if ":" in location else "?"
            expected = "" if f["rule"] == self.plant.rules[0] else f" (not yet {self.plant.rules[0]})"
            return f"{self.plant.kind:<9} caught  {f['rule']} {f['severity']} at {where}{expected}"
        seen = sorted({f"{f['rule']}/{f['severity']}" for f in self.at_lines})
        return f"{self.plant.kind:<9} MISSED  (at its line: {', '.join(seen) or 'nothing'})"


_SEVERITIES = ("info", "warning", "high", "critical")


def judge(findings: Iterable[dict[str, Any]], plants: Iterable[Plant], *, floor: str = "warning") -> list[PlantResult]:
    """Caught or missed, per plant: a finding inside a request with a tenant, at a line marked for that plant,
    with one of its rules, at ``floor`` or above."""
    here = Path(__file__).resolve()
    lines = marked_lines(here)
    at_plant: dict[str, list[dict[str, Any]]] = {}
    for finding in findings:
        location = str(finding.get("code_location") or "")
        path, _, rest = location.partition(":")
        if not path or Path(path).resolve() != here or not finding.get("tenant") or finding.get("unscoped"):
            continue
        number = int(rest.split(":", 1)[0] or 0)
        for kind, numbers in lines.items():
            if number in numbers:
                at_plant.setdefault(kind, []).append(finding)
    results = []
    for plant in plants:
        seen = at_plant.get(plant.kind, [])
        matching = [
            f
            for f in seen
            if f["rule"] in plant.rules and _SEVERITIES.index(f.get("severity", "info")) >= _SEVERITIES.index(floor)
        ]
        matching.sort(key=lambda f: (plant.rules.index(f["rule"]), -_SEVERITIES.index(f["severity"])))
        results.append(PlantResult(plant, matching[0] if matching else None, tuple(seen)))
    return results
