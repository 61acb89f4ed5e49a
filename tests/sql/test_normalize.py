"""Placeholder and literal rewriting: what each ``$n`` stood for, and the fast path agreeing with the full scan."""

from __future__ import annotations

import pytest

from tenantwatch.sql._normalize import NormalizeError, _normalize_plain, _normalize_scan, normalize
from tenantwatch.sql.model import ValueSource


def _p(key: str | int) -> ValueSource:
    return ValueSource(kind="param", key=key)


def _l(value: str) -> ValueSource:
    return ValueSource(kind="literal", value=value)


@pytest.mark.parametrize(
    ("sql", "text", "sources"),
    [
        ("SELECT a FROM t WHERE x = %(org)s::INTEGER", "SELECT a FROM t WHERE x = $1", (_p("org"),)),
        (
            "SELECT a FROM t WHERE x = $1::VARCHAR(20) AND y = 5",
            "SELECT a FROM t WHERE x = $1 AND y = $2",
            (_p(0), _l("5")),
        ),
        ("SELECT a FROM t WHERE x = $1::double precision", "SELECT a FROM t WHERE x = $1::double precision", (_p(0),)),
        ("SELECT a FROM t WHERE x = %s AND y = %s", "SELECT a FROM t WHERE x = $1 AND y = $2", (_p(0), _p(1))),
        ("SELECT a FROM t WHERE x = ? AND y = ?", "SELECT a FROM t WHERE x = $1 AND y = $2", (_p(0), _p(1))),
        ("SELECT a FROM t WHERE x = ?2 AND y = ?1", "SELECT a FROM t WHERE x = $1 AND y = $2", (_p(1), _p(0))),
        ("SELECT a FROM t WHERE x = :org", "SELECT a FROM t WHERE x = $1", (_p("org"),)),
        ("SELECT a FROM t WHERE x = $2 AND y = $1", "SELECT a FROM t WHERE x = $1 AND y = $2", (_p(1), _p(0))),
        ("SELECT a %% b FROM t WHERE x = %(p)s", "SELECT a % b FROM t WHERE x = $1", (_p("p"),)),
        ("SELECT a FROM t WHERE j ? %(k)s", "SELECT a FROM t WHERE j ? $1", (_p("k"),)),
        ("SELECT a::text FROM t WHERE x = :x", "SELECT a::text FROM t WHERE x = $1", (_p("x"),)),
        (
            "SELECT a FROM t WHERE x = 'it''s' AND y = 7",
            "SELECT a FROM t WHERE x = $1 AND y = $2",
            (_l("it's"), _l("7")),
        ),
        ("SELECT a FROM t WHERE x = 1.5e3", "SELECT a FROM t WHERE x = $1", (_l("1.5e3"),)),
        ("SELECT a FROM t1 WHERE c2 = 3", "SELECT a FROM t1 WHERE c2 = $1", (_l("3"),)),
        ("SELECT a FROM t WHERE x = interval '1 day'", "SELECT a FROM t WHERE x = interval '1 day'", ()),
        ("SELECT CAST(a AS varchar(20)) FROM t", "SELECT CAST(a AS varchar(20)) FROM t", ()),
        ("SELECT a FROM t -- ? :x\nWHERE x = ?", "SELECT a FROM t  \nWHERE x = $1", (_p(0),)),
        ("SELECT a FROM t /* %(x)s /* :y */ */ WHERE x = %(z)s", "SELECT a FROM t   WHERE x = $1", (_p("z"),)),
        ("SELECT 'a?b:c' FROM t WHERE x = ?", "SELECT $1 FROM t WHERE x = $2", (_l("a?b:c"), _p(0))),
        ("SET search_path = 'app'", "SET search_path = 'app'", ()),
        ("SELECT a$1 FROM t WHERE x = $1", "SELECT a$1 FROM t WHERE x = $1", (_p(0),)),
    ],
)
def test_normalize(sql: str, text: str, sources: tuple[ValueSource, ...]) -> None:
    normalized = normalize(sql)
    assert normalized.text == text
    assert normalized.sources == sources


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT users.id FROM users WHERE users.organization_id = %(organization_id_1)s::INTEGER LIMIT %(p)s",
        "SELECT a FROM t WHERE x IN (%(x_1)s, %(x_2)s) AND y %% z = %(w)s",
        "SELECT a FROM t WHERE x = ? AND y IN (?, ?)",
        "SELECT a FROM t WHERE x = $1::INTEGER AND y = $2",
        "SELECT a FROM t WHERE x = %s AND d ? %s",
        "SELECT a FROM t WHERE a % b = c",
        "SELECT a FROM t",
        "SELECT a FROM t1 WHERE c2 = 7 AND y IN (1, 2.5, 3e2) LIMIT 10",
        "SELECT CAST(a AS varchar(20)), CAST(b AS numeric(10, 2)) FROM t WHERE x = 5 AND y = %(y)s::INTEGER",
        "INSERT INTO t (a, b) SELECT p0::INTEGER, p1 FROM (VALUES (%(a0)s, %(b0)s, 0), (%(a1)s, %(b1)s, 1)) s(p0, p1)",
        "SELECT a FROM t WHERE x = ?12 AND y = 3",
    ],
)
def test_fast_path_agrees_with_the_full_scan(sql: str) -> None:
    fast = _normalize_plain(sql, True)
    assert fast is not None
    assert fast == _normalize_scan(sql, True)


@pytest.mark.parametrize("sql", ["SELECT 'abc", 'SELECT "abc', "SELECT /* abc", "SELECT $x$ abc", "SELECT E'abc\\'"])
def test_unterminated_input_is_refused(sql: str) -> None:
    with pytest.raises(NormalizeError, match="unterminated"):
        normalize(sql)
