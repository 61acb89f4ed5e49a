"""The ORM-emitted SQL corpus: the statements SQLAlchemy 2 really emits for each ORM operation of
tests/sql/orm_capture.py, captured live on SQLite and PostgreSQL, judged against tests/sql/orm_corpus.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from orm_capture import CASES, Captured, analyzer, capture, seed, settings
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from tenantwatch.config import Settings
from tenantwatch.context import TenantContext
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import facts_for_statement
from tenantwatch.sql import Analyzer, StatementAnalysis

_EXPECTED: dict[str, Any] = yaml.safe_load(Path(__file__).with_name("orm_corpus.yaml").read_text("utf-8"))["cases"]
_DB = "tenantwatch_orm_corpus"


@pytest.fixture(scope="module")
def sqlite_engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    seed(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def postgres_engine(postgres_dsn: dict[str, Any]) -> Iterator[Engine]:
    admin = psycopg.connect(
        host=postgres_dsn["host"],
        port=postgres_dsn["port"],
        user=postgres_dsn["user"],
        dbname=postgres_dsn["dbname"],
        autocommit=True,
    )
    admin.execute(f"DROP DATABASE IF EXISTS {_DB}")
    admin.execute(f"CREATE DATABASE {_DB}")
    engine = create_engine(
        f"postgresql+psycopg://{postgres_dsn['user']}@{postgres_dsn['host']}:{postgres_dsn['port']}/{_DB}"
    )
    try:
        seed(engine)
        yield engine
    finally:
        engine.dispose()
        admin.execute(f"DROP DATABASE IF EXISTS {_DB} WITH (FORCE)")
        admin.close()


@pytest.fixture(scope="module")
def judge() -> Analyzer:
    return analyzer()


def _verdicts(analysis: StatementAnalysis) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in analysis.scopes:
        verdict = f"inherited {s.inherited_by}" if s.verdict == "inherited" else s.verdict
        out[f"{s.scope} {s.table}"] = f"write {verdict}" if s.role == "write" else verdict
    return out


def _expected(label: str, backend: str) -> list[dict[str, Any]]:
    entry = _EXPECTED[label]
    return entry[backend] if isinstance(entry, dict) else entry  # type: ignore[no-any-return]


def _report(captured: list[Captured], analyses: list[StatementAnalysis]) -> str:
    lines: list[str] = []
    for item, analysis in zip(captured, analyses, strict=True):
        lines.append("  " + " ".join(item.sql.split()))
        lines.extend(f"    {s.scope} {s.table} [{s.role}] {s.verdict}: {s.reason}" for s in analysis.scopes)
    return "\n".join(lines)


def _check(label: str, backend: str, engine: Engine, judge: Analyzer) -> None:
    captured = capture(engine, CASES[label])
    analyses = [judge.analyze(item.sql) for item in captured]
    expected = _expected(label, backend)
    actual = [
        {"stmt": f"{a.operation} {a.main_table}", "scopes": _verdicts(a)} for a in analyses
    ]  # what the corpus states, in its notation
    wanted = [{"stmt": e["stmt"], "scopes": dict(e["scopes"] or {})} for e in expected]
    assert actual == wanted, f"{label} on {backend}:\n{_report(captured, analyses)}"
    for item, analysis, entry in zip(captured, analyses, expected, strict=True):
        reasons = {f"{s.scope} {s.table}": s.reason for s in analysis.scopes}
        for key, text in (entry.get("reasons") or {}).items():
            assert text in reasons[key], f"{label} on {backend}: {key}: {reasons[key]!r}\n  {item.sql}"


def test_every_case_has_its_expectation() -> None:
    assert sorted(_EXPECTED) == sorted(CASES)
    assert len(CASES) >= 35


@pytest.mark.parametrize("label", list(CASES))
def test_orm_corpus_sqlite(label: str, sqlite_engine: Engine, judge: Analyzer) -> None:
    _check(label, "sqlite", sqlite_engine, judge)


@pytest.mark.postgres
@pytest.mark.parametrize("label", list(CASES))
def test_orm_corpus_postgresql(label: str, postgres_engine: Engine, judge: Analyzer) -> None:
    _check(label, "postgresql", postgres_engine, judge)


def test_capture_records_what_reaches_the_cursor(sqlite_engine: Engine) -> None:
    """The capture sees the ORM's own statements (not only the ones a test writes): a lazy load shows up."""
    captured = capture(sqlite_engine, CASES["lazy load many-to-many"])
    assert len(captured) == 2
    assert "recipes_to_categories.recipe_id" in captured[1].sql
    assert captured[1].parameters == (101,)


def test_many_to_many_joinedload_gives_no_finding_and_the_unfiltered_one_does(sqlite_engine: Engine) -> None:
    """What a user sees: the filtered many-to-many joinedload is no ``missing_tenant_filter`` (only in the strict
    profile, naming the association chain); the same load without the filter is one, on both tables."""
    default = settings()
    strict = default.model_copy(update={"profile": "strict"})
    judge = analyzer()

    def findings(label: str, config: Settings) -> list[tuple[str, str | None, str]]:
        (item,) = capture(sqlite_engine, CASES[label])
        facts = facts_for_statement(judge.analyze(item.sql), item.parameters, TenantContext(tenant_id="1"))
        return [(f.rule, f.table, f.message) for f in evaluate(facts, config)]

    assert findings("joinedload many-to-many", default) == []
    ((rule, table, message),) = findings("joinedload many-to-many", strict)
    assert (rule, table) == ("missing_tenant_filter", "categories")
    assert "join:categories_1 (fk_join)" in message
    assert {(r, t) for r, t, _ in findings("unfiltered many-to-many", default)} == {
        ("missing_tenant_filter", "recipes"),
        ("missing_tenant_filter", "categories"),
    }
