"""The README's rules table, the rules reference of docs/rules-file.md, every docs/rules/<id>.md metadata block and
docs/rules-file.schema.json are what the rule metadata and settings models say (scripts/rules_docs.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from tenantwatch.rules import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rules_docs", ROOT / "scripts" / "rules_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_and_schema_are_current() -> None:
    """Run ``.venv/bin/python scripts/rules_docs.py`` when this fails."""
    assert [str(path.relative_to(ROOT)) for path in _generator().stale()] == []


def test_check_mode_exits_1_on_a_stale_file(tmp_path: Path) -> None:
    generator = _generator()
    stale_readme = tmp_path / "README.md"
    stale_readme.write_text(
        (ROOT / "README.md").read_text(encoding="utf-8").replace("| critical |", "| high |", 1), encoding="utf-8"
    )
    generator.README = stale_readme
    generator.ROOT = tmp_path.parent  # relative_to() in the message
    assert generator.main(["--check"]) == 1


def test_readme_table_has_every_rule_linking_its_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for rule in CATALOGUE:
        assert f"| [{rule.id}](docs/rules/{rule.id}.md) | {rule.meta.summary} | {rule.meta.severity}" in readme


def test_schema_forbids_keys_of_another_rule_and_unknown_rule_ids() -> None:
    schema = json.loads((ROOT / "docs" / "rules-file.schema.json").read_text(encoding="utf-8"))
    definitions = schema["$defs"]
    rules = definitions["RulesSettings"]
    assert rules["additionalProperties"] is False
    assert set(rules["properties"]) == {rule.id for rule in CATALOGUE}
    slow = definitions["SlowQuerySettings"]
    assert slow["additionalProperties"] is False
    assert set(slow["properties"]) == {"enabled", "severity", "threshold_ms"}
    assert slow["properties"]["threshold_ms"]["default"] == 500.0
