"""Analyzer behaviour a caller notices: caching, normalization, value resolution, fingerprints, bounds."""

from __future__ import annotations

import threading

import pytest

from tenantwatch.config import AnalysisSettings, Settings
from tenantwatch.sql import Analyzer, TenantTables, ValueSource, resolve_values

TABLES = {"orders": "organization_id", "users": "organization_id", "documents": "tenant_id"}


def _analyzer(**analysis: int) -> Analyzer:
    settings = Settings(tenant_tables=TABLES, analysis=AnalysisSettings(**analysis))
    return Analyzer(settings)


# -- caching -----------------------------------------------------------------------------------------------------


def test_cache_hit_returns_the_same_object_without_reparsing(monkeypatch: pytest.MonkeyPatch) -> None:
    analyzer = _analyzer()
    sql = "SELECT * FROM orders WHERE organization_id = %(org)s"
    first = analyzer.analyze(sql)

    import pglast.parser

    def no_parse(_text: str) -> str:
        raise AssertionError("parsed again")

    monkeypatch.setattr(pglast.parser, "parse_sql_json", no_parse)
    assert analyzer.analyze(sql) is first
    assert analyzer.analyze(str(sql)) is first
    assert analyzer.cache_info["exact_hits"] >= 2


def test_cache_is_bounded() -> None:
    analyzer = _analyzer(cache_size=8)
    for i in range(50):
        analyzer.analyze(f"SELECT * FROM orders WHERE organization_id = $1 AND id > $2 LIMIT {i} -- {i}")
        analyzer.analyze(f"SELECT col_{i} FROM orders WHERE organization_id = $1")
    info = analyzer.cache_info
    assert info["exact_size"] <= 8
    assert info["shape_size"] <= 8


def test_cache_invalidated_when_tenant_tables_change() -> None:
    analyzer = Analyzer(Settings(tenant_tables={"orders": "organization_id"}))
    sql = "SELECT * FROM orders JOIN plans ON plans.id = orders.plan_id WHERE orders.organization_id = 1"
    before = analyzer.analyze(sql)
    assert before.tenant_tables == ("orders",)
    version = analyzer.tables.version
    analyzer.tables.add("plans", "organization_id")
    assert analyzer.tables.version == version + 1
    after = analyzer.analyze(sql)
    assert after is not before
    assert after.tenant_tables == ("orders", "plans")
    assert after.unfiltered_reads == ("join:plans:plans",)


def test_cache_not_invalidated_by_a_no_op_change() -> None:
    analyzer = Analyzer(Settings(tenant_tables={"orders": "organization_id"}))
    sql = "SELECT * FROM orders"
    first = analyzer.analyze(sql)
    version = analyzer.tables.version
    assert analyzer.tables.add("orders", "organization_id") is False
    assert analyzer.tables.version == version
    assert analyzer.analyze(sql) is first


def test_literals_share_one_cached_analysis_and_return_their_own_values(monkeypatch: pytest.MonkeyPatch) -> None:
    analyzer = _analyzer()
    seven = analyzer.analyze("SELECT * FROM orders WHERE organization_id = 7 AND status = 'open'")
    assert seven.filter_values == (ValueSource(kind="literal", value="7"),)

    import pglast.parser

    calls: list[str] = []
    real = pglast.parser.parse_sql_json

    def counting(text: str) -> str:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(pglast.parser, "parse_sql_json", counting)
    eight = analyzer.analyze("SELECT * FROM orders WHERE organization_id = 8 AND status = 'paid'")
    assert calls == []  # served from the shape cache
    assert eight.filter_values == (ValueSource(kind="literal", value="8"),)
    assert eight.scopes == seven.scopes
    assert eight.fingerprint == seven.fingerprint
    assert analyzer.cache_info["shape_size"] == 1
    assert resolve_values(eight.filter_values, None) == ("8",)


def test_string_literal_values_are_unquoted() -> None:
    analysis = _analyzer().analyze("UPDATE documents SET tenant_id = 'b''c' WHERE tenant_id = E'a\\'x'")
    assert resolve_values(analysis.written_values, None) == ("b'c",)
    assert resolve_values(analysis.filter_values, None) == ("a'x",)


def test_inline_literal_in_a_type_context_still_analyzed() -> None:
    analysis = _analyzer().analyze("SELECT * FROM orders WHERE organization_id = 3 AND created > DATE '2024-01-01'")
    assert analysis.error is None
    assert analysis.tenant_filter == "present"
    assert resolve_values(analysis.filter_values, None) == ("3",)


# -- parameter styles --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        ("SELECT * FROM orders WHERE organization_id = %(org)s AND id = %(id)s", {"org": 7, "id": 1}, ("7",)),
        ("SELECT * FROM orders WHERE id = %s AND organization_id = %s", (1, 7), ("7",)),
        ("SELECT * FROM orders WHERE id = ? AND organization_id = ?", (1, 7), ("7",)),
        ("SELECT * FROM orders WHERE id = :id AND organization_id = :org", {"org": 7, "id": 1}, ("7",)),
        ("SELECT * FROM orders WHERE id = $1 AND organization_id = $2", [1, 7], ("7",)),
        ("SELECT * FROM orders WHERE organization_id = ANY($1)", ([7, 8],), ("7", "8")),
        (
            "SELECT * FROM orders WHERE organization_id IN (%(organization_id_1_1)s, %(organization_id_1_2)s)",
            {"organization_id_1_1": 7, "organization_id_1_2": 9},
            ("7", "9"),
        ),
        ("SELECT * FROM orders WHERE organization_id IN ($1::INTEGER, $2::INTEGER)", (7, 9), ("7", "9")),
    ],
)
def test_filter_values_resolve_for_each_paramstyle(sql: str, params: object, expected: tuple[str, ...]) -> None:
    analysis = _analyzer().analyze(sql)
    assert analysis.tenant_filter == "present"
    assert resolve_values(analysis.filter_values, params) == expected


def test_written_values_resolve_for_executemany() -> None:
    analysis = _analyzer().analyze("INSERT INTO orders (id, organization_id) VALUES (?, ?)")
    assert resolve_values(analysis.written_values, [(1, 7), (2, 8)], executemany=True) == ("7", "8")


def test_same_shape_in_two_paramstyles_keeps_each_key() -> None:
    analyzer = _analyzer()
    named = analyzer.analyze("SELECT * FROM orders WHERE organization_id = :org")
    positional = analyzer.analyze("SELECT * FROM orders WHERE organization_id = ?")
    assert named.fingerprint == positional.fingerprint
    assert resolve_values(named.filter_values, {"org": 5}) == ("5",)
    assert resolve_values(positional.filter_values, (6,)) == ("6",)


# -- fingerprints ------------------------------------------------------------------------------------------------


def test_fingerprint_is_stable_short_hex_and_ignores_values() -> None:
    analyzer = _analyzer()
    base = analyzer.analyze("SELECT * FROM orders WHERE organization_id = 1 AND id IN (1, 2)").fingerprint
    assert len(base) == 16
    int(base, 16)
    same = [
        "SELECT * FROM orders WHERE organization_id = 99 AND id IN (7, 8, 9, 10)",
        "select *  from orders\n where organization_id = %(org)s and id in (%(id_1)s)",
        "SELECT * FROM orders WHERE organization_id = $1 AND id IN ($2, $3) /* traceparent='00-ab' */",
        "SELECT * FROM orders WHERE organization_id = ? AND id IN (?, ?);",
    ]
    for sql in same:
        assert analyzer.analyze(sql).fingerprint == base, sql
    other = analyzer.analyze("SELECT * FROM orders WHERE organization_id = 1 AND user_id IN (1, 2)").fingerprint
    assert other != base
    assert Analyzer(Settings()).analyze("SELECT * FROM orders WHERE organization_id = 5 AND id IN (3)").fingerprint == (
        base
    )


def test_multi_row_inserts_share_a_fingerprint() -> None:
    analyzer = _analyzer()
    one = analyzer.analyze("INSERT INTO orders (a, organization_id) VALUES (%(a_m0)s, %(o_m0)s)")
    two = analyzer.analyze("INSERT INTO orders (a, organization_id) VALUES (%(a_m0)s, %(o_m0)s), (%(a_m1)s, %(o_m1)s)")
    assert one.fingerprint == two.fingerprint


# -- bounds: hostile input never raises --------------------------------------------------------------------------


def _hostile() -> list[str]:
    return [
        "SELECT " + "(" * 5000 + "1" + ")" * 5000,
        "SELECT * FROM orders WHERE organization_id IN (" + ", ".join(str(i) for i in range(100_000)) + ")",
        "SELECT * FROM orders WHERE " + "NOT " * 3000 + "organization_id = 1",
        "SELECT " + "ARRAY[" * 500 + "1" + "]" * 500,
        "SELECT 1 FROM orders WHERE x = 1" + " AND x = 1" * 2000,
        "\x00SELECT 1",
        "SELECT * FROM orders WHERE organization_id = 1\x00 OR true",
        bytes(range(256)).decode("latin-1"),
        "'" * 10_001,
        "SELECT 'unterminated",
        'SELECT "unterminated',
        "SELECT E'\\",
        "SELECT $a$ never closed",
        "/* /* nested never closed */",
        "%(" * 1000,
        "?" * 50_000,
        "$1" * 20_000,
        "",
        ";;;",
        "SELECT (SELECT " * 300 + "1" + ")" * 300,
        "WITH " + ", ".join(f"c{i} AS (SELECT {i})" for i in range(2000)) + " SELECT 1",
        "select select select " * 2000,
    ]


@pytest.mark.parametrize("sql", _hostile(), ids=lambda s: repr(s[:30]))
def test_hostile_statements_never_raise(sql: str) -> None:
    analysis = _analyzer().analyze(sql)
    assert analysis.operation in ("UNKNOWN", "SELECT", "OTHER")
    if analysis.operation == "UNKNOWN":
        assert analysis.error
        assert analysis.tenant_filter == "unknown"


def test_statement_over_the_size_cap_is_unknown() -> None:
    analysis = _analyzer(max_statement_bytes=1000).analyze("SELECT * FROM orders WHERE x IN (" + "1," * 600 + "1)")
    assert analysis.operation == "UNKNOWN"
    assert analysis.error is not None and "too large" in analysis.error


def test_size_cap_counts_bytes_not_characters() -> None:
    sql = "SELECT * FROM orders WHERE note = '" + "é" * 400 + "'"
    assert len(sql) < 500
    analysis = _analyzer(max_statement_bytes=500).analyze(sql)
    assert analysis.error is not None and "too large" in analysis.error


def test_deep_nesting_is_unknown_with_a_reason() -> None:
    parens = _analyzer().analyze("SELECT * FROM orders WHERE organization_id = " + "(" * 5000 + "1" + ")" * 5000)
    assert parens.operation == "UNKNOWN"
    assert parens.error is not None and "nested deeper" in parens.error
    nots = _analyzer(max_depth=50).analyze("SELECT * FROM orders WHERE " + "NOT " * 200 + "organization_id = 1")
    assert nots.operation == "UNKNOWN"
    assert nots.error is not None and "nested deeper" in nots.error


def test_reasonable_nesting_is_analyzed() -> None:
    sql = "SELECT * FROM orders WHERE organization_id = 1 AND id IN "
    sql += "(SELECT id FROM orders WHERE organization_id = 1 AND id IN " * 10 + "(1)" + ")" * 10
    analysis = _analyzer().analyze(sql)
    assert analysis.error is None
    assert analysis.tenant_filter == "present"
    assert len(analysis.scopes) == 11


def test_unknown_for_garbage_carries_the_parser_error() -> None:
    analysis = _analyzer().analyze("SELEC * FORM orders")
    assert analysis.operation == "UNKNOWN"
    assert analysis.error is not None and "syntax error" in analysis.error


def test_non_string_input_never_raises() -> None:
    analyzer = _analyzer()
    assert analyzer.analyze(b"SELECT * FROM orders WHERE organization_id = 1").tenant_filter == "present"  # type: ignore[arg-type]
    assert analyzer.analyze(["not", "sql"]).operation == "UNKNOWN"  # type: ignore[arg-type]


def test_internal_error_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    analyzer = _analyzer()

    def broken(_table: str) -> str | None:
        raise RuntimeError("catalog exploded")

    monkeypatch.setattr(analyzer.tables, "column_for", broken)
    analysis = analyzer.analyze("SELECT * FROM orders")
    assert analysis.operation == "UNKNOWN"
    assert analysis.error is not None and "catalog exploded" in analysis.error


# -- concurrency -------------------------------------------------------------------------------------------------


def test_concurrent_analysis_and_learning_is_consistent() -> None:
    settings = Settings(tenant_tables={"orders": "organization_id"})
    tables = TenantTables(settings)
    analyzer = Analyzer(settings, tables)
    assert analyzer.tables is tables
    errors: list[BaseException] = []
    sql = "SELECT * FROM orders o JOIN t{i} x ON x.id = o.id WHERE o.organization_id = $1"

    def reader() -> None:
        try:
            for i in range(300):
                analysis = analyzer.analyze(sql.format(i=i % 40))
                assert analysis.error is None
                assert analysis.scopes[0].verdict == "present"
        except BaseException as exc:
            errors.append(exc)

    def writer() -> None:
        for i in range(40):
            tables.add(f"t{i}", "organization_id")

    threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = analyzer.analyze(sql.format(i=3))
    assert final.tenant_tables == ("orders", "t3")


def test_literal_where_postgresql_wants_a_constant_falls_back_to_inline_literals() -> None:
    analyzer = _analyzer()
    sql = "SELECT * FROM orders WHERE organization_id = {org} AND kind = myenum 'a' AND x = {x}"
    first = analyzer.analyze(sql.format(org=1, x=5))
    assert first.error is None
    assert first.tenant_filter == "present"
    assert resolve_values(first.filter_values, None) == ("1",)
    second = analyzer.analyze(sql.format(org=2, x=6))
    assert second.fingerprint == first.fingerprint
    assert resolve_values(second.filter_values, None) == ("2",)


def test_plain_select_lists_and_parameter_casts_do_not_change_the_verdict() -> None:
    analyzer = _analyzer()
    columns = ", ".join(f"orders.col_{i} AS col_{i}" for i in range(40))
    slim = analyzer.analyze(f"SELECT {columns} FROM orders WHERE orders.organization_id = %(org)s::INTEGER")
    full = analyzer.analyze(
        f"SELECT {columns}, (SELECT count(*) FROM users) AS n FROM orders WHERE orders.organization_id = %(org)s"
    )
    assert slim.scopes[0].verdict == "present"
    assert full.scopes[0].verdict == "present"
    assert full.unfiltered_reads == ("subquery:1:users",)
    assert resolve_values(slim.filter_values, {"org": 3}) == ("3",)
