"""Judging stored spans as live: a request's server span, exported after its db spans, still gives them the request's
tenant (stale_tenant_context), and windowed rules count over the spans' own times, not the scan's clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tenantwatch import load_settings
from tenantwatch.tools.scan import FileSource, ReadStats, scan_sources

T0 = 1_764_000_000_000_000_000  # ns
MS = 1_000_000


def _attrs(**values: Any) -> list[dict[str, Any]]:
    return [
        {"key": k.replace("_", "."), "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
        for k, v in values.items()
    ]


def _span(trace: int, span: int, kind: int, start: int, end: int, attributes: list[dict[str, Any]], parent: int = 0):
    return {
        "traceId": f"{trace:032x}",
        "spanId": f"{span:016x}",
        "parentSpanId": f"{parent:016x}" if parent else "",
        "name": "s",
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": attributes,
    }


def _write(path: Path, *spans: dict[str, Any]) -> Path:
    lines = [json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) for span in spans]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rules(path: Path) -> dict[str, int]:
    stats = ReadStats()
    settings = load_settings(tenant_tables={"notes": "organization_id"}, environ={})
    groups = scan_sources([FileSource(str(path))], settings, stats=stats)
    assert stats.problem_count == 0, stats.problems
    found: dict[str, int] = {}
    for group in groups:
        found[group.rule] = found.get(group.rule, 0) + group.count
    return found


def _db(trace: int, span: int, start: int, tenant: str, statement: str, parent: int = 0) -> dict[str, Any]:
    attributes = [
        *_attrs(db_system="postgresql", tenant_id=tenant),
        {"key": "db.statement", "value": {"stringValue": statement}},
    ]
    return _span(trace, span, 3, start, start + 5 * MS, attributes, parent)


def test_db_span_exported_before_its_server_span_sees_the_request_tenant(tmp_path: Path) -> None:
    db = _db(1, 2, T0 + 10 * MS, "globex", "SELECT id FROM notes WHERE organization_id = 'globex'", parent=1)
    server = _span(1, 1, 2, T0, T0 + 100 * MS, [*_attrs(tenant_id="acme"), *_attrs(http_route="/notes")])
    found = _rules(_write(tmp_path / "t.json", db, server))  # the order an exporter writes them: children end first
    assert found.get("stale_tenant_context") == 1
    alone = _rules(_write(tmp_path / "alone.json", db))  # no request around it: nothing stale
    assert "stale_tenant_context" not in alone


def test_windowed_rules_count_over_the_spans_times(tmp_path: Path) -> None:
    unfiltered = "SELECT id FROM notes"
    minute = 60_000 * MS
    close = [_db(10 + i, 10 + i, T0 + i * MS, "acme", unfiltered) for i in range(5)]
    spread = [_db(20 + i, 20 + i, T0 + i * 20 * minute, "acme", unfiltered) for i in range(5)]  # 80 minutes
    assert _rules(_write(tmp_path / "close.json", *close)) == {"missing_tenant_filter": 5, "repeated_violations": 1}
    assert _rules(_write(tmp_path / "spread.json", *spread)) == {"missing_tenant_filter": 5}
