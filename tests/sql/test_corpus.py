"""The labeled analysis corpus (tests/sql/corpus.yaml): operation, every scope verdict, tenant values."""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantwatch.config import Settings
from tenantwatch.sql import Analyzer, ScopeVerdict, StatementAnalysis, ValueSource
from tenantwatch.sql.tables import ForeignKey

_CORPUS = Path(__file__).with_name("corpus.yaml")
_DATA: dict[str, Any] = yaml.safe_load(_CORPUS.read_text(encoding="utf-8"))
_CASES: list[dict[str, Any]] = _DATA["cases"]


@cache
def _analyzer(config_key: str) -> Analyzer:
    config = yaml.safe_load(config_key) or {}
    optional = {key: config[key] for key in ("tenant_roots", "tenant_keys") if key in config}
    settings = Settings(
        tenant_tables=config.get("tenant_tables", _DATA["defaults"]["tenant_tables"]),
        exclude_tables=config.get("exclude_tables", ()),
        include_tables=config.get("include_tables", ()),
        **optional,
    )
    analyzer = Analyzer(settings)
    analyzer.tables.learn_foreign_keys(_foreign_key(text) for text in config.get("foreign_keys", ()))
    analyzer.tables.learn((None, table, columns) for table, columns in (config.get("columns") or {}).items())
    return analyzer


def _foreign_key(text: str) -> ForeignKey:
    """``a.x -> b.y`` or ``a(x, z) -> b(y, w)``."""
    source, _, target = text.partition("->")

    def side(part: str) -> tuple[str, tuple[str, ...]]:
        part = part.strip()
        if "(" in part:
            table, _, columns = part.partition("(")
            return table.strip(), tuple(c.strip() for c in columns.rstrip(")").split(","))
        table, _, column = part.rpartition(".")
        return table, (column,)

    (table, columns), (referred, referred_columns) = side(source), side(target)
    return ForeignKey(table, columns, referred, referred_columns)


def _verdict(scope: ScopeVerdict) -> str:
    """``present``, ``missing``, ``inherited <reason>``; ``write ...`` for a write target."""
    verdict = f"inherited {scope.inherited_by}" if scope.verdict == "inherited" else scope.verdict
    return f"write {verdict}" if scope.role == "write" else verdict


def _value(source: ValueSource) -> str:
    return f"{source.kind}:{source.key if source.kind == 'param' else source.value}"


def _actual(case: dict[str, Any], analysis: StatementAnalysis) -> dict[str, Any]:
    """The analysis in the corpus's own notation, restricted to the keys the case states."""
    scopes = {f"{s.scope} {s.table}": _verdict(s) for s in analysis.scopes}
    out: dict[str, Any] = {"op": analysis.operation, "scopes": scopes}
    if len(scopes) != len(analysis.scopes):
        out["duplicate scopes"] = [f"{s.scope} {s.table}" for s in analysis.scopes]
    optional = {
        "filter_values": [_value(v) for v in analysis.filter_values],
        "written_values": [_value(v) for v in analysis.written_values],
        "tables": list(analysis.tables),
        "main_table": analysis.main_table,
        "tenant_filter": analysis.tenant_filter,
        "keys": {f"{s.scope} {s.table}": s.key for s in analysis.scopes if s.key is not None},
        "key_filter_values": {key: [_value(v) for v in values] for key, values in analysis.key_filter_values},
        "key_written_values": {key: [_value(v) for v in values] for key, values in analysis.key_written_values},
    }
    for key, value in optional.items():
        if key in case:
            out[key] = value
    if "error" in case:
        out["error"] = case["error"] if analysis.error and case["error"] in analysis.error else analysis.error
    return out


def _expected(case: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"op": case["op"], "scopes": dict(case.get("scopes") or {})}
    for key in (
        "filter_values",
        "written_values",
        "tables",
        "main_table",
        "tenant_filter",
        "error",
        "keys",
        "key_filter_values",
        "key_written_values",
    ):
        if key in case:
            out[key] = case[key]
    return out


def _reasons(analysis: StatementAnalysis) -> str:
    lines = [f"  {s.scope} {s.table} [{s.role}] {s.verdict}: {s.reason}" for s in analysis.scopes]
    return "\n".join(lines) or "  (no scopes)"


def test_corpus_is_large_and_names_are_unique() -> None:
    names = [case["name"] for case in _CASES]
    assert len(names) >= 150
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", _CASES, ids=[c["name"] for c in _CASES])
def test_corpus_case(case: dict[str, Any]) -> None:
    analyzer = _analyzer(yaml.safe_dump(case.get("config") or {}, sort_keys=True))
    analysis = analyzer.analyze(case["sql"])
    expected, actual = _expected(case), _actual(case, analysis)
    if expected != actual:
        diff = "\n".join(
            difflib.unified_diff(
                yaml.safe_dump(expected, sort_keys=True).splitlines(),
                yaml.safe_dump(actual, sort_keys=True).splitlines(),
                "expected",
                "actual",
                lineterm="",
            )
        )
        pytest.fail(
            f"{case['name']}\nSQL: {case['sql']}\n{diff}\nreasons:\n{_reasons(analysis)}\nerror: {analysis.error}",
            pytrace=False,
        )
