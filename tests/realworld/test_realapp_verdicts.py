"""The real-app harness's own judgements, without the application: a planted bug is caught only by a finding at its
marked line, with its rule, inside a request; and the classifier puts each statement shape where it belongs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def scripts() -> Iterator[tuple[ModuleType, ModuleType]]:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import realapp_classify
        import realapp_plants_mealie

        yield realapp_plants_mealie, realapp_classify
    finally:
        sys.path.remove(str(SCRIPTS))


def _finding(plants: ModuleType, kind: str, rule: str, **extra: Any) -> dict[str, Any]:
    (line, *_) = plants.marked_lines()[kind]
    where = f"{Path(plants.__file__).resolve()}:{line}:planted"
    return {"rule": rule, "severity": "critical", "code_location": where, "tenant": "g-1", "unscoped": None, **extra}


def test_every_plant_has_exactly_one_marked_statement(scripts: tuple[ModuleType, ModuleType]) -> None:
    plants, _ = scripts
    lines = plants.marked_lines()
    assert sorted(lines) == sorted(plants.KINDS)
    assert all(len(numbers) == 1 for numbers in lines.values())
    source = Path(plants.__file__).read_text(encoding="utf-8").splitlines()
    assert all("self.session." in source[numbers[0] - 1] for numbers in lines.values())


def test_a_plant_is_caught_only_at_its_line_with_its_rule_inside_a_request(
    scripts: tuple[ModuleType, ModuleType],
) -> None:
    plants, _ = scripts
    (update,) = plants.select_plants(["update"])
    caught = plants.judge([_finding(plants, "update", "unscoped_write")], [update])
    assert [r.caught for r in caught] == [True]
    assert "caught  unscoped_write critical at realapp_plants_mealie.py:" in caught[0].line()
    missed = [
        _finding(plants, "update", "missing_tenant_filter"),  # another rule
        _finding(plants, "delete", "unscoped_write"),  # another plant's line
        _finding(plants, "update", "unscoped_write", tenant=None),  # outside a request
        _finding(plants, "update", "unscoped_write", unscoped="admin"),  # unscoped on purpose
        _finding(plants, "update", "unscoped_write", severity="info"),  # below warning
    ]
    (result,) = plants.judge(missed, [update])
    assert not result.caught
    assert result.line().startswith("update    MISSED")


def test_the_by_id_plant_accepts_missing_tenant_filter_until_cross_tenant_read_lands(
    scripts: tuple[ModuleType, ModuleType],
) -> None:
    plants, _ = scripts
    (by_id,) = plants.select_plants(["by_id"])
    (now,) = plants.judge([_finding(plants, "by_id", "missing_tenant_filter")], [by_id])
    assert now.caught and now.line().endswith("(not yet cross_tenant_read)")
    both = [_finding(plants, "by_id", "missing_tenant_filter"), _finding(plants, "by_id", "cross_tenant_read")]
    (later,) = plants.judge(both, [by_id])
    assert later.caught_by is not None and later.caught_by["rule"] == "cross_tenant_read"
    assert "not yet" not in later.line()


def test_an_unknown_plant_is_refused(scripts: tuple[ModuleType, ModuleType]) -> None:
    plants, _ = scripts
    with pytest.raises(ValueError, match="unknown plant typo"):
        plants.select_plants(["typo"])
    assert [p.kind for p in plants.select_plants(["all"])] == list(plants.KINDS)


@pytest.mark.parametrize(
    ("rule", "table", "statement", "shape"),
    [
        (
            "missing_tenant_filter",
            "recipes",
            "SELECT e.id FROM recipe_timeline_events LEFT OUTER JOIN recipes AS recipes_1 ON recipes_1.id = "
            "recipe_timeline_events.recipe_id WHERE (EXISTS (SELECT ? FROM recipes WHERE recipes.id = "
            "recipe_timeline_events.recipe_id AND recipes.group_id = ?)) AND recipe_timeline_events.id = ?",
            "exists_proxy",
        ),
        (
            "missing_tenant_filter",
            "tags",
            "SELECT tags.id FROM tags, recipes_to_tags WHERE ? = recipes_to_tags.recipe_id AND tags.id = "
            "recipes_to_tags.tag_id",
            "association",
        ),
        ("unscoped_write", "tags", "DELETE FROM tags WHERE tags.id = ?", "flush_by_pk"),
        ("missing_tenant_filter", "users", "SELECT users.id FROM users WHERE users.id IN (?)", "by_key_read"),
        (
            "missing_tenant_filter",
            "users",
            "SELECT users.id FROM users WHERE users.household_id IN (?)",
            "household_filter",
        ),
        ("missing_tenant_filter", "recipes", "SELECT recipes.id FROM recipes ORDER BY recipes.name", "no_filter"),
    ],
)
def test_statement_shapes(
    scripts: tuple[ModuleType, ModuleType], rule: str, table: str, statement: str, shape: str
) -> None:
    _, classify = scripts
    operation = statement.split(maxsplit=1)[0]
    row = {"rule": rule, "severity": "critical", "table": table, "statement": statement, "operation": operation}
    assert classify.shape_of({**row, "code_location": "/app/mealie/repos/x.py:1:f", "test": "t"}).id == shape


def test_a_call_made_by_reading_the_code_overrides_the_shape(scripts: tuple[ModuleType, ModuleType]) -> None:
    _, classify = scripts
    row = {
        "rule": "missing_tenant_filter",
        "severity": "critical",
        "table": "tags",
        "statement": "SELECT tags.id FROM tags WHERE tags.id = ?",
        "operation": "SELECT",
        "code_location": "/app/mealie/db/models/_model_utils/auto_init.py:87:handle_one_to_many_list",
    }
    calls = [{"location": r"auto_init\.py:\d+:handle_one_to_many_list", "class": "true", "reason": "IDOR"}]
    assert classify.class_of(row, calls) == ("true", "IDOR")
    assert classify.class_of(row, [])[0] == "false"
