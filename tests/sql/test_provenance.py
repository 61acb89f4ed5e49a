"""Verdicts with provenance: foreign keys learned from MetaData and from real catalogs make a joined table
``inherited``; the rules and the span facts say so (finding only in the strict profile)."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, ForeignKeyConstraint, Integer, MetaData, String, Table

from cli_support import run_cli
from tenantwatch import attributes as A
from tenantwatch.config import Settings, load_settings
from tenantwatch.context import TenantContext
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts, facts_for_statement
from tenantwatch.sql import Analyzer

_JOIN = (
    "SELECT foods.id, l.name FROM foods LEFT OUTER JOIN labels AS l ON l.id = foods.label_id "
    "WHERE foods.organization_id = %(org)s AND foods.id = %(id)s"
)
_SETTINGS = Settings(tenant_tables={"foods": "organization_id", "labels": "organization_id"})


def _verdicts(analyzer: Analyzer, sql: str) -> dict[str, tuple[str, str | None]]:
    return {f"{s.scope} {s.table}": (s.verdict, s.inherited_by) for s in analyzer.analyze(sql).scopes}


def _metadata() -> MetaData:
    metadata = MetaData()
    Table("labels", metadata, Column("id", Integer, primary_key=True), Column("organization_id", Integer))
    Table(
        "recipes",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("organization_id", Integer, primary_key=True),
    )
    Table(
        "foods",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("organization_id", Integer),
        Column("label_id", Integer, ForeignKey("labels.id")),
        Column("recipe_id", Integer),
        Column("name", String),
        ForeignKeyConstraint(["organization_id", "recipe_id"], ["recipes.organization_id", "recipes.id"]),
    )
    return metadata


def test_fk_join_without_declared_key_is_missing_and_with_metadata_inherited() -> None:
    analyzer = Analyzer(Settings())
    analyzer.tables.learn_from_metadata(MetaData())  # nothing known yet
    assert analyzer.analyze(_JOIN).unfiltered_reads == ()  # no tenant table known: not applicable
    analyzer.tables.learn(
        [(None, "foods", ["id", "organization_id", "label_id"]), (None, "labels", ["id", "organization_id"])]
    )
    assert _verdicts(analyzer, _JOIN)["join:l labels"] == ("missing", None)
    version = analyzer.tables.version
    analyzer.tables.learn_from_metadata(_metadata())
    assert analyzer.tables.version > version  # the cached analysis is stale: foreign keys changed
    assert _verdicts(analyzer, _JOIN) == {"main foods": ("present", None), "join:l labels": ("inherited", "fk_join")}
    assert analyzer.analyze(_JOIN).tenant_filter == "inherited"


def test_composite_fk_from_metadata_is_learned_in_order() -> None:
    analyzer = Analyzer(Settings())
    analyzer.tables.learn_from_metadata(_metadata())
    fks = {(fk.table, fk.columns, fk.referred, fk.referred_columns) for fk in analyzer.tables.foreign_keys("foods")}
    assert ("foods", ("organization_id", "recipe_id"), "recipes", ("organization_id", "id")) in fks
    assert ("foods", ("label_id",), "labels", ("id",)) in fks
    sql = "SELECT * FROM foods f JOIN recipes r ON r.id = f.recipe_id WHERE f.organization_id = ?"
    assert _verdicts(analyzer, sql)["join:r recipes"] == ("missing", None)  # half a composite key joins nothing


def test_fks_from_sqlite_pragma() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        """
        CREATE TABLE labels (id INTEGER PRIMARY KEY, organization_id INTEGER);
        CREATE TABLE foods (id INTEGER PRIMARY KEY, organization_id INTEGER,
                            label_id INTEGER REFERENCES labels(id));
        """
    )
    analyzer = Analyzer(Settings())
    assert analyzer.tables.learn_from_connection(conn, "sqlite") == 2
    assert _verdicts(analyzer, _JOIN)["join:l labels"] == ("inherited", "fk_join")
    conn.close()


@pytest.mark.postgres
def test_fks_from_the_postgresql_catalog(postgres_dsn: dict[str, object]) -> None:
    import psycopg

    schema = f"tw_{uuid.uuid4().hex[:8]}"
    conninfo = " ".join(f"{key}={value}" for key, value in postgres_dsn.items())
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"CREATE TABLE {schema}.labels (id int PRIMARY KEY, organization_id int)")
        admin.execute(f"CREATE TABLE {schema}.recipes (organization_id int, id int, PRIMARY KEY (organization_id, id))")
        admin.execute(
            f"CREATE TABLE {schema}.foods (id int, organization_id int, label_id int REFERENCES {schema}.labels(id), "
            f"recipe_id int, FOREIGN KEY (organization_id, recipe_id) REFERENCES {schema}.recipes)"
        )
    try:
        with psycopg.connect(conninfo) as conn:
            analyzer = Analyzer(Settings())
            assert analyzer.tables.learn_from_connection(conn, "postgresql") >= 3
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        fks = {(fk.table, fk.columns, fk.referred, fk.referred_columns) for fk in analyzer.tables.foreign_keys("foods")}
        assert ("foods", ("label_id",), "labels", ("id",)) in fks
        assert ("foods", ("organization_id", "recipe_id"), "recipes", ("organization_id", "id")) in fks
        sql = _JOIN.replace("foods", f"{schema}.foods", 1).replace("JOIN labels", f"JOIN {schema}.labels")
        assert _verdicts(analyzer, sql)["join:l labels"] == ("inherited", "fk_join")
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def _facts(settings: Settings, sql: str) -> SpanFacts:
    analyzer = Analyzer(settings)
    analyzer.tables.learn_from_metadata(_metadata())
    return facts_for_statement(analyzer.analyze(sql), {"org": 1, "id": 2}, TenantContext(tenant_id="1"))


def test_inherited_is_a_span_fact_and_no_finding_by_default() -> None:
    facts = _facts(_SETTINGS, _JOIN)
    attributes = facts.to_attributes()
    assert attributes[A.DB_TENANT_FILTER] == "inherited"
    assert list(attributes[A.DB_INHERITED]) == ["join:l:labels:fk_join"]
    assert A.DB_UNFILTERED not in attributes
    assert [f.rule for f in evaluate(facts, _SETTINGS)] == []


def test_strict_profile_makes_inherited_a_finding(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("profile: strict\ntenant_tables: {foods: organization_id, labels: organization_id}\n")
    strict = load_settings(rules, environ={})
    assert strict.profile == "strict"
    facts = _facts(strict, _JOIN)
    found = evaluate(facts, strict)
    assert [(f.rule, f.table) for f in found] == [("missing_tenant_filter", "labels")]
    assert "only inherits the tenant" in found[0].message
    assert "join:l (fk_join)" in found[0].message
    assert load_settings(rules, environ={"TENANTWATCH_PROFILE": "default"}).profile == "default"


def test_missing_still_fires_in_the_default_profile() -> None:
    sql = "SELECT * FROM foods f JOIN labels l ON l.id = f.recipe_id WHERE f.organization_id = %(org)s"
    found = evaluate(_facts(_SETTINGS, sql), _SETTINGS)
    assert [(f.rule, f.table) for f in found] == [("missing_tenant_filter", "labels")]


def test_truncate_of_a_tenant_table_is_an_unscoped_write() -> None:
    found = evaluate(_facts(_SETTINGS, "TRUNCATE foods"), _SETTINGS)
    assert [(f.rule, f.table) for f in found] == [("unscoped_write", "foods")]
    assert found[0].message == "TRUNCATE of foods removes the rows of every tenant"


def test_explain_profile_strict_turns_a_narrowing_subquery_into_a_finding(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``explain`` prints the inherited verdict with its reason; exit code 0, and 1 with ``--profile strict``."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("tenant_tables: {meal_plans: org_id, users: org_id}\n")
    sql = (
        "SELECT * FROM meal_plans WHERE meal_plans.org_id = 1 AND EXISTS "
        "(SELECT 1 FROM users WHERE users.id = meal_plans.user_id AND users.team_id = 3)"
    )
    code, out, _ = run_cli(capsys, monkeypatch, "explain", sql, "--rules", str(rules), "--tenant", "1")
    assert code == 0
    assert "tenant filter   inherited" in out
    scope_lines = [line.split() for line in out.splitlines() if line.startswith("    subquery:1")]
    assert scope_lines[0][:5] == ["subquery:1", "users", "read", "inherited", "(narrowing_scope)"]
    code, out, _ = run_cli(
        capsys, monkeypatch, "explain", sql, "--rules", str(rules), "--tenant", "1", "--profile", "strict"
    )
    assert code == 1
    assert "missing_tenant_filter [users]" in out
