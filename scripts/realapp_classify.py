"""Group the real-application run's flagged statements by cause and shape, to classify them true / global / false.

Input: the harness's findings (``WORK/findings.jsonl``) or a ``--baseline`` file (one row per distinct flagged
statement). Each distinct (rule, normalized statement, code location) flagged at warning or above inside a request
with a tenant is put in one *shape*, the first of ``SHAPES`` that matches, and the shapes are printed with their
counts, the Build item of issue 14 that should make tenantwatch right about them, and an example. The shape is a
starting point, not the verdict: the true/false call is made by reading the statement and the application's code
(``--rows`` lists every row with its shape, its code location and the first test that produced it).

    python scripts/realapp_classify.py /tmp/realapp/run/findings.jsonl
    python scripts/realapp_classify.py flagged.jsonl --rows --shape by_key_read
    python scripts/realapp_classify.py findings.jsonl --json > shapes.json
    python scripts/realapp_classify.py findings.jsonl --calls calls.json

``--calls`` applies the calls made by reading the code: a JSON list of ``{"location": REGEX, "statement": REGEX,
"class": "true"|"deliberate"|"false", "reason": TEXT}`` (both regexes searched, either may be left out); a row takes
the first call that matches, else its shape's default class, and the table of classes is printed by shape.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from realapp_harness import SEVERITY_ORDER, distinct_flagged, read_findings

_ID = r"[A-Za-z_][A-Za-z0-9_]*"


def _where(statement: str) -> str:
    """The outermost WHERE clause (after the last top-level FROM ... WHERE), or ''."""
    depth = 0
    found = -1
    upper = statement.upper()
    for i, ch in enumerate(statement):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and upper.startswith(" WHERE ", i):
            found = i + 7
    if found < 0:
        return ""
    rest = statement[found:]
    end = re.search(r"\s(ORDER BY|GROUP BY|LIMIT|OFFSET|RETURNING)\s", rest)
    return rest[: end.start()] if end else rest


def _is_admin(row: dict[str, Any]) -> bool:
    test = str(row.get("test") or "")
    location = str(row.get("code_location") or "")
    return "admin_tests" in test or "/routes/admin/" in location


def _by_key(table: str, where: str) -> bool:
    """Every conjunct of the WHERE is a key predicate on ``table`` (``t.id = ?``, ``t.id IN (...)``, ``? = t.x_id``)."""
    if not where:
        return False
    conjuncts = [c.strip() for c in re.split(r"\bAND\b", where)]
    key = rf"{re.escape(table)}\.(id|{_ID}_id|token|slug)"
    return all(
        re.fullmatch(rf"(\(?{key}\)?\s*(=\s*\?|IN\s*\(.*\))|\?\s*=\s*{key})", c, flags=re.IGNORECASE) for c in conjuncts
    )


@dataclass(frozen=True)
class Shape:
    id: str
    title: str
    fix: str
    """Build item of issue 14 (or the kind of call) that should decide these statements."""
    matches: Callable[[dict[str, Any]], bool]
    default: str = "false"
    """Class of a row of this shape unless a call says otherwise: ``false`` (tenantwatch is wrong), ``deliberate``
    (global on purpose), ``not isolation`` (a rate or volume rule), ``follows`` (repeated_violations)."""


def _statement(row: dict[str, Any]) -> str:
    return str(row.get("statement") or "")


def _table(row: dict[str, Any]) -> str:
    return str(row.get("table") or "")


def _write(row: dict[str, Any]) -> bool:
    return str(row.get("operation") or "") in ("UPDATE", "DELETE")


SHAPES: tuple[Shape, ...] = (
    Shape(
        "admin_route",
        "a statement of a server-administration route (/api/admin/*): every group on purpose",
        "deliberate global: unscoped in the adopter code",
        _is_admin,
        "deliberate",
    ),
    Shape(
        "superuser_role",
        "superuser_write: a mealie admin (role admin) writing in their own group",
        "deliberate: mealie's admins are meant to write; the adopter maps them to a role that is not read-only",
        lambda r: r["rule"] == "superuser_write",
        "deliberate",
    ),
    Shape(
        "volume",
        "rate and volume rules (rapid_write, bulk_write, slow_query) on a test suite's bursts",
        "not an isolation finding: thresholds per deployment",
        lambda r: r["rule"] in ("rapid_write", "bulk_write", "slow_query", "large_result", "query_rate_spike"),
        "not isolation",
    ),
    Shape(
        "repeated",
        "repeated_violations: follows the findings it counts",
        "follows the other shapes",
        lambda r: r["rule"] == "repeated_violations",
        "follows",
    ),
    Shape(
        "anon_joinedload",
        "joinedload with LIMIT: the filtered query wrapped as anon_1, its relationships joined to it",
        "association tables / anon_1 joinedload (ormcorp)",
        lambda r: "anon_1" in _statement(r) and not _write(r),
    ),
    Shape(
        "association",
        "a many-to-many load through an association table without a tenant column (x, a_to_b WHERE ? = a_to_b.a_id)",
        "association tables / anon_1 joinedload (ormcorp)",
        lambda r: bool(re.search(rf"\b{_ID}_to_{_ID}\b", _statement(r))) and not _write(r),
    ),
    Shape(
        "exists_proxy",
        "a table without a tenant column filtered through EXISTS on its parent (EXISTS (SELECT 1 FROM p WHERE p.id = "
        "c.p_id AND p.group_id = ?)); the flagged table is that parent again, joined on the same key or in another "
        "EXISTS",
        "new: provenance through a correlated EXISTS (the key it pins protects other uses of the same key)",
        lambda r: any(parent == _table(r) for parent, _ in _exists_proxies(_statement(r), "group_id")),
    ),
    Shape(
        "exists_household",
        "filtered through EXISTS on a household-filtered parent only (EXISTS (SELECT 1 FROM users WHERE users.id = "
        "t.user_id AND users.household_id = ?))",
        "hierarchy (hsql) and new: provenance through a correlated EXISTS",
        lambda r: bool(_exists_proxies(_statement(r), "household_id")),
    ),
    Shape(
        "household_filter",
        "filtered by the household (the finer key) only",
        "hierarchy (hsql)",
        lambda r: (
            re.search(rf"{re.escape(_table(r))}\.household_id\s*(=|IN)", _where(_statement(r))) is not None
            and re.search(rf"{re.escape(_table(r))}\.group_id", _where(_statement(r))) is None
        ),
    ),
    Shape(
        "flush_by_pk",
        "ORM unit-of-work UPDATE/DELETE by primary key",
        "identity (ident)",
        lambda r: _write(r) and _by_key(_table(r), _where(_statement(r))),
    ),
    Shape(
        "by_key_read",
        "a read by key only (t.id = ?, t.id IN (...), ? = t.parent_id): refresh, lazy/selectin load, get by id",
        "identity (ident) when the ORM loads it from a loaded instance; cross_tenant_read/latent (obsread) otherwise",
        lambda r: not _write(r) and _by_key(_table(r), _where(_statement(r))),
    ),
    Shape(
        "join_by_key",
        "a join whose outer WHERE is a key predicate only (the parent row by id, its children joined)",
        "identity (ident) for the parent; inheritance carries the join",
        lambda r: not _write(r) and " JOIN " in _statement(r) and _by_key_any(_where(_statement(r))),
    ),
    Shape(
        "no_filter",
        "no tenant filter and no key predicate on the flagged table",
        "read the code: a real bug, or global on purpose",
        lambda r: True,
    ),
)


def _exists_proxies(statement: str, column: str) -> list[tuple[str, str]]:
    """(parent table, child table) of every ``EXISTS (SELECT ? FROM p WHERE p.id = c.fk AND p.<column> = ?)``."""
    pattern = rf"EXISTS \(SELECT \? FROM ({_ID}) WHERE \1\.id = ({_ID})\.{_ID} AND \1\.{column} = \?"
    return re.findall(pattern, statement)


def _by_key_any(where: str) -> bool:
    tables = set(re.findall(rf"({_ID})\.(?:id|{_ID}_id)\b", where))
    return any(_by_key(table, where) for table in tables)


def shape_of(row: dict[str, Any]) -> Shape:
    return next(shape for shape in SHAPES if shape.matches(row))


def load_calls(path: Path) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    for call in calls:
        if call.get("class") not in ("true", "deliberate", "false"):
            raise SystemExit(f"realapp_classify: {path}: a call's class must be true, deliberate or false: {call}")
    return calls


def class_of(row: dict[str, Any], calls: Iterable[dict[str, Any]]) -> tuple[str, str]:
    """(class, reason): the first call matching the row's code location and statement, else the shape's default."""
    for call in calls:
        if re.search(call.get("location", ""), str(row.get("code_location") or "")) and re.search(
            call.get("statement", ""), _statement(row)
        ):
            return call["class"], call.get("reason", "")
    shape = shape_of(row)
    return shape.default, shape.fix


def print_classes(rows: list[dict[str, Any]], calls: list[dict[str, Any]]) -> None:
    table: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        cls, _ = class_of(row, calls)
        cell = table.setdefault((shape_of(row).id, cls), [0, 0])
        cell[0] += 1
        cell[1] += int(row.get("count") or 1)
    print("\nclasses (rows / findings):")
    order = [shape.id for shape in SHAPES]
    for (shape, cls), (n, hits) in sorted(table.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        print(f"  {shape:<16} {cls:<13} {n:>4} / {hits}")
    totals = collections.Counter()
    for (_, cls), (n, _) in table.items():
        totals[cls] += n
    print("  total: " + ", ".join(f"{cls}={n}" for cls, n in totals.most_common()))


def rows_of(path: Path) -> list[dict[str, Any]]:
    """Distinct flagged rows: a findings file is reduced with the harness's own distinct_flagged(); a baseline file
    already holds one row per distinct statement."""
    records = read_findings(path)
    if records and "count" in records[0]:
        return records
    return distinct_flagged(records)


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        shape = shape_of(row)
        group = groups.setdefault(
            shape.id,
            {"shape": shape.id, "title": shape.title, "fix": shape.fix, "rows": 0, "statements": set(), "hits": 0},
        )
        group["rows"] += 1
        group["statements"].add(row.get("statement_fingerprint") or row.get("statement"))
        group["hits"] += int(row.get("count") or 1)
        group.setdefault("rules", collections.Counter())[f"{row['rule']}/{row['severity']}"] += 1
        group.setdefault("tables", collections.Counter())[_table(row) or "-"] += 1
        group.setdefault("example", row)
    order = [shape.id for shape in SHAPES]
    out = []
    for group in sorted(groups.values(), key=lambda g: order.index(g["shape"])):
        group["statements"] = len(group["statements"])
        out.append(group)
    return out


def _short(location: str) -> str:
    path, _, rest = location.partition(":")
    parts = Path(path).parts
    keep = parts[parts.index("mealie") :] if "mealie" in parts else parts[-2:]
    return "/".join(keep) + (":" + rest if rest else "")


def print_summary(groups: list[dict[str, Any]], total: int) -> None:
    print(f"{total} distinct (rule, statement, code location) at warning or above inside requests with a tenant")
    for g in groups:
        print(f"\n[{g['shape']}] {g['rows']} rows, {g['statements']} statements, {g['hits']} findings — {g['title']}")
        print(f"  fix: {g['fix']}")
        print("  rules: " + ", ".join(f"{k}={v}" for k, v in g["rules"].most_common()))
        print("  tables: " + ", ".join(f"{k}={v}" for k, v in g["tables"].most_common(8)))
        example = g["example"]
        print(f"  e.g. {_short(str(example.get('code_location') or ''))}: {_statement(example)[:300]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("findings", type=Path, help="the harness's findings.jsonl, or a --baseline file")
    parser.add_argument("--rows", action="store_true", help="list every row with its shape")
    parser.add_argument("--shape", action="append", default=[], help="only these shapes (with --rows)")
    parser.add_argument("--json", action="store_true", help="the summary as JSON")
    parser.add_argument("--calls", type=Path, help="calls made by reading the code (JSON, see above)")
    args = parser.parse_args(argv)
    rows = rows_of(args.findings)
    groups = summarize(rows)
    if args.json:
        for g in groups:
            g["rules"] = dict(g["rules"])
            g["tables"] = dict(g["tables"])
        json.dump(groups, sys.stdout, indent=2, default=str)
        print()
    else:
        print_summary(groups, len(rows))
    calls = load_calls(args.calls) if args.calls else []
    if calls and not args.json:
        print_classes(rows, calls)
    if args.rows:
        print()
        ranked = sorted(rows, key=lambda r: (shape_of(r).id, -SEVERITY_ORDER.index(r["severity"]), _statement(r)))
        for row in ranked:
            shape = shape_of(row)
            if args.shape and shape.id not in args.shape:
                continue
            print(
                f"{shape.id:<16} {class_of(row, calls)[0]:<10} {row['rule']}/{row['severity']} {_table(row)} "
                f"x{row.get('count')} "
                f"{_short(str(row.get('code_location') or ''))} [{row.get('test')}]\n    {_statement(row)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
