"""Generate what the rule metadata and settings models say, so the docs cannot drift from the code.

Writes (between ``<!-- BEGIN generated ... -->`` / ``<!-- END generated -->`` markers):

* the README's rules table;
* the rules reference in docs/rules-file.md;
* the metadata and settings block of every docs/rules/<id>.md;

and the JSON Schema of the rules file, docs/rules-file.schema.json (point your editor's YAML language server at it).

    .venv/bin/python scripts/rules_docs.py           # rewrite
    .venv/bin/python scripts/rules_docs.py --check   # exit 1 and name what is out of date (tests run this)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tenantwatch.config import Settings
from tenantwatch.core.rule import Rule
from tenantwatch.rules import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RULES_FILE_DOC = ROOT / "docs" / "rules-file.md"
SCHEMA = ROOT / "docs" / "rules-file.schema.json"
RULE_DOCS = ROOT / "docs" / "rules"

_BEGIN = "<!-- BEGIN generated: {name} (scripts/rules_docs.py; do not edit by hand) -->"
_END = "<!-- END generated: {name} -->"

_STAGES = {
    "statement": "each db statement",
    "request": "each request (server span)",
    "stream": "the stream of statements (windowed)",
    "findings": "the stream of findings (windowed)",
}


def _value(value: Any) -> str:
    """A default as the rules file would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


def _default(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].get_default(call_default_factory=True)


def _options(rule: Rule) -> list[tuple[str, Any, str]]:
    """(key, default, meaning) of each option of ``rule`` besides ``enabled`` and ``severity``."""
    model = rule.meta.settings
    return [(name, _default(model, name), model.model_fields[name].description or "") for name in rule.meta.options()]


def readme_table() -> str:
    lines = ["| rule | fires when | default severity |", "|---|---|---|"]
    for rule in CATALOGUE:
        meta = rule.meta
        off = ", **off** by default" if not meta.enabled else ""
        lines.append(f"| [{meta.id}](docs/rules/{meta.id}.md) | {meta.summary} | {meta.severity}{off} |")
    return "\n".join(lines)


def rules_file_table() -> str:
    lines = ["| rule | default severity | options (default) |", "|---|---|---|"]
    for rule in CATALOGUE:
        meta = rule.meta
        severity = meta.severity if meta.enabled else f"{meta.severity}, **off**"
        options = "; ".join(f"`{key}` ({_value(default)}): {meaning}" for key, default, meaning in _options(rule))
        lines.append(f"| `{meta.id}` | {severity} | {options} |".replace(" |  |", " | |"))
    return "\n".join(lines)


def rule_page_block(rule: Rule) -> str:
    meta = rule.meta
    lines = [
        "| | |",
        "|---|---|",
        f"| fires when | {meta.summary} |",
        f"| default severity | {meta.severity} |",
        f"| on by default | {'yes' if meta.enabled else 'no: switch it on with `enabled: true`'} |",
        f"| judges | {', '.join(_STAGES[stage] for stage in meta.stages)} |",
        f"| categories | {', '.join(meta.categories)} |",
        f"| reads | {meta.verdict or 'the span facts'} |",
        f"| code | [`src/tenantwatch/rules/{meta.id}.py`](../../src/tenantwatch/rules/{meta.id}.py) |",
        "",
        f"**How to fix the code.** {meta.remediation}",
        "",
        f"Settings (`rules.{meta.id}` in the [rules file](../rules-file.md)):",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
        f"| `enabled` | `{_value(meta.enabled)}` | switch the rule on or off |",
        f"| `severity` | `{meta.severity}` | `info`, `warning`, `high` or `critical` |",
    ]
    lines += [f"| `{key}` | `{_value(default)}` | {meaning} |" for key, default, meaning in _options(rule)]
    return "\n".join(lines)


def schema() -> str:
    document = Settings.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "tenantwatch rules file"
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _replace_block(text: str, name: str, body: str, where: Path) -> str:
    begin, end = _BEGIN.format(name=name), _END.format(name=name)
    pattern = re.compile(re.escape(begin) + r"\n(?:.*?\n)?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{where}: no generated block {name!r} (add the BEGIN/END markers)")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text, count=1)


def expected() -> dict[Path, str]:
    """Every generated file, with the content it should have."""
    files: dict[Path, str] = {SCHEMA: schema()}
    files[README] = _replace_block(README.read_text(encoding="utf-8"), "rules table", readme_table(), README)
    files[RULES_FILE_DOC] = _replace_block(
        RULES_FILE_DOC.read_text(encoding="utf-8"), "rules reference", rules_file_table(), RULES_FILE_DOC
    )
    for rule in CATALOGUE:
        page = RULE_DOCS / f"{rule.id}.md"
        files[page] = _replace_block(page.read_text(encoding="utf-8"), "rule metadata", rule_page_block(rule), page)
    return files


def stale() -> list[Path]:
    """The generated files that differ from what the code says."""
    return [path for path, text in expected().items() if not path.is_file() or path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"out of date: {path.relative_to(ROOT)} (run scripts/rules_docs.py)", file=sys.stderr)
        return 1 if out_of_date else 0
    for path, text in expected().items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
