"""What the per-statement shortcuts of issue 13 must not change: the code location on the span (it is part of the
finding fingerprint) and the analysis cache's least-recently-used order."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sa_support import Traced, attrs, sqlite_engine

from tenantwatch import attributes as A
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor
from tenantwatch.instrumentation._code_location import find_caller
from tenantwatch.sql._cache import LRUCache

Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]


def _locations(traced: Traced, needle: str) -> list[tuple[str, str, int]]:
    return [
        (attrs(s)[A.CODE_FUNCTION], attrs(s)[A.CODE_FILEPATH], attrs(s)[A.CODE_LINENO]) for s in traced.db_spans(needle)
    ]


def test_code_location_of_core_and_executemany_statements_is_the_calling_line(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    instrument()
    engine = sqlite_engine(sqlite_path)
    with tenant_context("1"), engine.connect() as conn:
        conn.execute(sa.text("SELECT name FROM items WHERE organization_id = 1")).all()
        select_line = sys._getframe().f_lineno - 1
        conn.execute(
            sa.text("INSERT INTO items (id, organization_id, name) VALUES (:id, 1, :name)"),
            [{"id": 900 + i, "name": f"n{i}"} for i in range(3)],
        )
        insert_line = sys._getframe().f_lineno - 4
        conn.rollback()
    engine.dispose()
    here = "test_code_location_of_core_and_executemany_statements_is_the_calling_line"
    assert _locations(traced, "SELECT name FROM items") == [(here, __file__, select_line)]
    assert _locations(traced, "INSERT INTO items") == [(here, __file__, insert_line)]


def test_code_location_is_the_application_listener_that_runs_a_statement_inside_sqlalchemy(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    """A statement the application runs from inside SQLAlchemy (its own event listener): the frames the code
    location search skips are only those SQLAlchemy runs for the statement itself, so the listener is found."""
    instrument()
    engine = sqlite_engine(sqlite_path)
    lines: list[int] = []

    def on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("SELECT count(*) FROM items WHERE organization_id = 1").all()
        lines.append(sys._getframe().f_lineno - 1)

    sa.event.listen(engine, "begin", on_begin)
    with tenant_context("1"), engine.connect() as conn:
        conn.execute(sa.text("SELECT name FROM items WHERE organization_id = 1")).all()
    engine.dispose()
    assert _locations(traced, "SELECT count(*) FROM items") == [("on_begin", __file__, lines[0])]


def _look(beyond: Any) -> Any:
    return find_caller(1, beyond=beyond)


def test_find_caller_hint_that_does_not_match_walks_every_frame() -> None:
    """``beyond`` names frames that are not there (or not that deep): the result is that of the full walk."""
    here = sys._getframe().f_lineno
    other, deep, plain = _look((1, frozenset({id(_look.__code__) + 1}))), _look((10_000, frozenset())), _look(None)
    assert plain == ("test_find_caller_hint_that_does_not_match_walks_every_frame", __file__, here + 1)
    assert other == deep == plain


def test_lru_cache_repeated_hits_keep_the_least_recently_used_order() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    assert cache.get("a") == 1  # the same key again: already the most recently used
    cache.put("c", 3)  # evicts the least recently used: b
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)
    assert (cache.hits, cache.misses) == (4, 1)


def test_lru_cache_the_last_key_evicted_is_a_miss() -> None:
    cache: LRUCache[str, int] = LRUCache(1)
    cache.put("a", 1)
    assert cache.get("a") == 1
    cache.put("b", 2)
    assert cache.get("a") is None
    cache.clear()
    assert cache.get("b") is None
    assert cache.misses == 2
