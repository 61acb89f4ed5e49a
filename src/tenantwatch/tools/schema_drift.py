"""Schema drift between two PostgreSQL databases: ``tenantwatch audit --compare URL_A URL_B``.

:func:`snapshot` reads a schema from the catalog (tables, columns with their types, nullability and defaults,
indexes, constraints, row-level-security policies and flags), :func:`diff` compares two snapshots and
:meth:`Drift.render` prints the difference grouped by table, git-like: ``-`` only in A, ``+`` only in B, ``~``
differs::

    --- A postgresql+psycopg://app:***@staging/okr  sha256:5f0c...
    +++ B postgresql+psycopg://app:***@prod/okr  sha256:9a41...
    table objectives
      + index objectives_org_idx: CREATE INDEX ON objectives USING btree (organization_id)
      - policy tenant_isolation ON objectives: AS PERMISSIVE FOR ALL TO public USING (...)
      ~ column objectives.title: text → character varying(200)

What counts as drift (the canonical form each object is fingerprinted by):

* Columns, policies, tables and their RLS flags are matched by name. A column's physical position, an OID, a
  dropped column's leftover slot are not part of it; a serial column's default is ``nextval(<sequence>)`` whatever
  the sequence is called.
* Indexes and constraints are matched by their definition, not by their name: PostgreSQL generates their names
  (``objectives_pkey``, ``objectives_title_check1``, ``objectives_organization_id_fkey``) and an environment's
  history changes them (a renamed table keeps its old index names, a re-run migration adds a ``1``), so a name that
  differs while the definition is the same is not drift. A definition that differs is: an index or constraint of
  the same name with another definition is ``~``, any other unmatched one ``+`` or ``-``. Indexes that back a
  primary key, unique or exclusion constraint are compared as that constraint.
* Policy expressions, commands, permissive/restrictive and roles are compared as PostgreSQL deparses them.
* Objects of the compared schema are named without their schema (each schema is read with ``search_path`` set to
  it), so ``staging.objectives`` and ``public.objectives`` compare equal apart from the schema's name; references
  to other schemas stay qualified.

Not compared: views, functions, triggers, sequences' own settings, grants, extensions, comments, table owners.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from tenantwatch.redaction import safe_url
from tenantwatch.tools._drivers import missing_driver
from tenantwatch.tools._schema_catalog import CatalogObject, read_catalog, system_schema

__all__ = [
    "DOCUMENT_FORMAT",
    "Difference",
    "Drift",
    "SchemaObject",
    "Snapshot",
    "SnapshotError",
    "diff",
    "is_system_schema",
    "safe_url",
    "snapshot",
]

DOCUMENT_FORMAT: Final = "tenantwatch.schema_drift"
DOCUMENT_VERSION: Final = 1
CONNECT_TIMEOUT_S: Final = 10

_BY_DEFINITION: Final = frozenset({"index", "constraint"})
_KIND_ORDER: Final = {"schema": 0, "table": 1, "rls": 2, "column": 3, "constraint": 4, "index": 5, "policy": 6}
_PLAIN_LABELS: Final = frozenset({"type", "null", "definition", "kind"})
"""Attributes whose values say what they are (``text``, ``NOT NULL``): a change shows the values only."""


class SnapshotError(Exception):
    """A database could not be read: bad URL, not PostgreSQL, unreachable, refused. The message never holds a
    password (URLs are shown with ``***``)."""


@dataclass(frozen=True, slots=True)
class SchemaObject:
    """One object of one table: its column, index, constraint, policy, RLS flags or the table itself."""

    schema: str
    table: str
    kind: str
    """``table``, ``rls``, ``column``, ``constraint``, ``index`` or ``policy``."""
    name: str
    attributes: tuple[tuple[str, str], ...]
    """(label, canonical value) pairs in display order."""

    @property
    def definition(self) -> str:
        """The object as one readable line (without its name)."""
        values = dict(self.attributes)
        if self.kind == "column":
            text = values["type"] + (" NOT NULL" if values["null"] == "NOT NULL" else "")
            if values.get("default", "none") != "none":
                text += f" DEFAULT {values['default']}"
            for label in ("identity", "generated"):
                if label in values:
                    text += f" {values[label]}"
            return text
        if self.kind == "policy":
            parts = [f"AS {values['as']}", f"FOR {values['for']}", f"TO {values['to']}"]
            parts += [
                f"{label.upper()} {values[label]}" for label in ("using", "with check") if values[label] != "none"
            ]
            return " ".join(parts)
        if self.kind == "rls":
            return f"enabled {values['enabled']}, forced {values['forced']}"
        if self.kind == "table":
            persistence = values.get("persistence", "logged")
            return values["kind"] + ("" if persistence in ("logged", "") else f" ({persistence})")
        return values["definition"]

    @property
    def identity(self) -> str:
        """What :func:`diff` pairs the two sides on: the definition for indexes and constraints, else the name."""
        return self.definition if self.kind in _BY_DEFINITION else self.name

    @property
    def canonical(self) -> str:
        """The fingerprinted form: kind, table, identity and attributes (no OID, position or generated name)."""
        body = "\x1f".join(f"{label}={value}" for label, value in self.attributes)
        return f"{self.kind}\x1e{self.table}\x1e{self.identity}\x1e{body}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The compared schemas of one database, fingerprinted."""

    url: str
    """The database URL with its password hidden."""
    schemas: tuple[str, ...]
    objects: tuple[SchemaObject, ...]
    fingerprint: str = field(init=False)
    """``sha256:`` + hex of the canonical form of every object (see the module docstring)."""
    table_fingerprints: Mapping[str, str] = field(init=False)
    """``schema.table`` → the fingerprint of that table's objects."""

    def __post_init__(self) -> None:
        per_table: dict[str, list[str]] = defaultdict(list)
        for obj in self.objects:
            per_table[f"{obj.schema}.{obj.table}"].append(obj.canonical)
        tables = {name: _sha256(sorted(lines)) for name, lines in sorted(per_table.items())}
        whole = [f"schema\x1e{name}" for name in sorted(self.schemas)] + [f"{k}\x1e{v}" for k, v in tables.items()]
        object.__setattr__(self, "table_fingerprints", tables)
        object.__setattr__(self, "fingerprint", _sha256(whole))

    @property
    def table_count(self) -> int:
        return len(self.table_fingerprints)


@dataclass(frozen=True, slots=True)
class Difference:
    """One drift: an object only in A (``removed``), only in B (``added``) or in both but different (``changed``)."""

    change: Literal["added", "removed", "changed"]
    kind: str
    schema: str
    table: str | None
    """``None`` for a schema present on one side only."""
    name: str
    a: str | None
    """The object's definition in A (``None`` when only in B)."""
    b: str | None
    attributes: tuple[tuple[str, str, str], ...] = ()
    """For ``changed``: (label, value in A, value in B) of each attribute that differs."""

    @property
    def sign(self) -> str:
        return {"added": "+", "removed": "-", "changed": "~"}[self.change]

    def line(self, *, qualify: bool = True) -> str:
        """``+ index objectives_org_idx: CREATE INDEX ...``; tables named ``schema.table`` when ``qualify``."""
        table = f"{self.schema}.{self.table}" if qualify else (self.table or "")
        if self.kind == "schema":
            subject = f"schema {self.name}"
        elif self.kind == "table":
            subject = f"table {table}"
        elif self.kind == "column":
            subject = f"column {table}.{self.name}"
        elif self.kind == "rls":
            subject = f"row level security ON {table}"
        elif self.kind == "index":
            subject = f"index {self.name}"
        else:
            subject = f"{self.kind} {self.name} ON {table}"
        if self.change == "changed":
            detail = "; ".join(
                f"{a} → {b}" if label in _PLAIN_LABELS else f"{label} {a} → {b}" for label, a, b in self.attributes
            )
        else:
            detail = (self.b if self.change == "added" else self.a) or ""
        return f"{self.sign} {subject}: {detail}"

    def to_json(self, *, qualify: bool = True) -> dict[str, Any]:
        return {
            "change": self.change,
            "kind": self.kind,
            "schema": self.schema,
            "table": self.table,
            "name": self.name,
            "a": self.a,
            "b": self.b,
            "attributes": [{"attribute": label, "a": a, "b": b} for label, a, b in self.attributes],
            "line": self.line(qualify=qualify),
        }


@dataclass(frozen=True, slots=True)
class Drift:
    """The differences between two snapshots, sorted by schema, table, kind and name."""

    a: Snapshot
    b: Snapshot
    differences: tuple[Difference, ...]

    @property
    def has_drift(self) -> bool:
        return bool(self.differences)

    @property
    def qualify(self) -> bool:
        """Tables are named with their schema unless exactly one schema is compared."""
        return len(set(self.a.schemas) | set(self.b.schemas)) != 1

    def render(self) -> str:
        """The readable diff (text ending in a newline)."""
        lines = [
            f"--- A {self.a.url}  {self.a.fingerprint}",
            f"+++ B {self.b.url}  {self.b.fingerprint}",
        ]
        schemas = ", ".join(sorted(set(self.a.schemas) | set(self.b.schemas))) or "-"
        if not self.has_drift:
            lines.append(
                f"no drift: schemas {schemas} are identical in A and B "
                f"({self.a.table_count} tables, fingerprint {self.a.fingerprint})"
            )
            return "\n".join(lines) + "\n"
        group: str | None = None
        for difference in self.differences:
            heading = (
                f"schema {difference.schema}"
                if difference.table is None
                else f"table {difference.schema + '.' if self.qualify else ''}{difference.table}"
            )
            if heading != group:
                lines.append(heading)
                group = heading
            lines.append(f"  {difference.line(qualify=self.qualify)}")
        counts = Counter(difference.change for difference in self.differences)
        tables = len({(d.schema, d.table) for d in self.differences if d.table is not None})
        schemas_only = sum(1 for d in self.differences if d.table is None)
        where = [_plural(tables, "table")] if tables else []
        where += [_plural(schemas_only, "schema")] if schemas_only else []
        lines.append(
            f"drift: {_plural(len(self.differences), 'difference')} in {' and '.join(where)} "
            f"({counts['removed']} only in A, {counts['added']} only in B, {counts['changed']} differ)"
        )
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """The same as data: ``{"format": "tenantwatch.schema_drift", "drift": bool, "a": {...}, "b": {...},
        "differences": [...], "summary": {...}}``."""
        counts = Counter(difference.change for difference in self.differences)
        return {
            "format": DOCUMENT_FORMAT,
            "version": DOCUMENT_VERSION,
            "drift": self.has_drift,
            "a": _side_json(self.a),
            "b": _side_json(self.b),
            "differences": [difference.to_json(qualify=self.qualify) for difference in self.differences],
            "summary": {
                "differences": len(self.differences),
                "added": counts["added"],
                "removed": counts["removed"],
                "changed": counts["changed"],
            },
        }


def snapshot(url: str, *, schemas: Sequence[str] | None = None) -> Snapshot:
    """Read the schemas named (default: every non-system schema) of the PostgreSQL database at ``url`` (a
    SQLAlchemy URL; async drivers are read through a sync one). Raises :class:`SnapshotError`."""
    try:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.pool import NullPool
    except ImportError as exc:  # pragma: no cover - the sqlalchemy extra is not installed
        raise SnapshotError("reading a schema needs SQLAlchemy: pip install 'tenantwatch[sqlalchemy,psycopg]'") from exc
    try:
        parsed = make_url(url)
    except Exception:
        # SQLAlchemy's message repeats the URL, password included: never show it.
        raise SnapshotError("not a database URL (expected postgresql+psycopg://user@host:port/dbname)") from None
    shown = safe_url(url)
    secrets = [s for s in (parsed.password, parsed.query.get("password")) if isinstance(s, str) and s]
    if parsed.get_backend_name() != "postgresql":
        raise SnapshotError(f"{shown}: schema drift reads PostgreSQL catalogs, not {parsed.get_backend_name()}")
    parsed = _sync_driver(parsed)
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if parsed.get_driver_name() in ("psycopg", "psycopg2") else {}
    try:
        engine = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    except Exception as exc:
        hint = missing_driver(exc, make_url(url).drivername)
        raise SnapshotError(f"{shown}: {hint}" if hint else _scrub(f"{shown}: {exc}", secrets)) from None
    try:
        try:
            connection = engine.connect()
        except Exception as exc:
            raise SnapshotError(_scrub(f"cannot connect to {shown}: {_reason(exc)}", secrets)) from None
        try:
            present, objects = read_catalog(connection, schemas)
        except Exception as exc:
            raise SnapshotError(_scrub(f"cannot read the catalog of {shown}: {_reason(exc)}", secrets)) from None
        finally:
            connection.close()  # rolls the read-only transaction back
    finally:
        engine.dispose()
    return Snapshot(shown, tuple(present), tuple(_schema_object(obj) for obj in objects))


def diff(a: Snapshot, b: Snapshot) -> Drift:
    """What differs between ``a`` and ``b`` (see the module docstring for what counts)."""
    differences: list[Difference] = []
    schemas_a, schemas_b = set(a.schemas), set(b.schemas)
    tables_a, tables_b = _by_table(a.objects), _by_table(b.objects)
    for schema in sorted(schemas_a ^ schemas_b):
        side = tables_a if schema in schemas_a else tables_b
        count = sum(1 for s, _ in side if s == schema)
        summary = f"{count} table{'s' if count != 1 else ''}"
        if schema in schemas_a:
            differences.append(Difference("removed", "schema", schema, None, schema, summary, None))
        else:
            differences.append(Difference("added", "schema", schema, None, schema, None, summary))
    common = schemas_a & schemas_b
    for key in sorted(set(tables_a) | set(tables_b)):
        schema, table = key
        if schema not in common:
            continue
        in_a, in_b = tables_a.get(key), tables_b.get(key)
        if in_a is None or in_b is None:
            objects = in_a if in_b is None else in_b
            assert objects is not None
            summary = _table_summary(objects)
            if in_b is None:
                differences.append(Difference("removed", "table", schema, table, table, summary, None))
            else:
                differences.append(Difference("added", "table", schema, table, table, None, summary))
            continue
        differences.extend(_diff_table(schema, table, in_a, in_b))
    differences.sort(
        key=lambda d: (d.schema, d.table or "", _KIND_ORDER.get(d.kind, 99), d.name, d.change, d.a or "", d.b or "")
    )
    return Drift(a, b, tuple(differences))


def _diff_table(schema: str, table: str, a: list[SchemaObject], b: list[SchemaObject]) -> list[Difference]:
    out: list[Difference] = []
    for kind in _KIND_ORDER:
        side_a = [obj for obj in a if obj.kind == kind]
        side_b = [obj for obj in b if obj.kind == kind]
        if not side_a and not side_b:
            continue
        # Pair equal objects first (by identity), then same-named leftovers as changes.
        left: list[SchemaObject] = []
        pool: dict[str, list[SchemaObject]] = defaultdict(list)
        for obj in side_b:
            pool[obj.identity].append(obj)
        for obj in side_a:
            matches = pool.get(obj.identity)
            if matches:
                other = matches.pop(0)
                if other.attributes != obj.attributes:
                    out.append(_changed(obj, other))
            else:
                left.append(obj)
        right = [obj for objs in pool.values() for obj in objs]
        by_name = {obj.name: obj for obj in right}
        for obj in left:
            renamed = by_name.pop(obj.name, None) if kind in _BY_DEFINITION else None
            if renamed is not None:
                right.remove(renamed)
                out.append(_changed(obj, renamed))
            else:
                out.append(Difference("removed", kind, schema, table, obj.name, obj.definition, None))
        out.extend(Difference("added", kind, schema, table, obj.name, None, obj.definition) for obj in right)
    return out


def _changed(a: SchemaObject, b: SchemaObject) -> Difference:
    values_a, values_b = dict(a.attributes), dict(b.attributes)
    labels = list(dict.fromkeys([label for label, _ in a.attributes] + [label for label, _ in b.attributes]))
    changed = tuple(
        (label, values_a.get(label, "none"), values_b.get(label, "none"))
        for label in labels
        if values_a.get(label) != values_b.get(label)
    )
    return Difference("changed", a.kind, a.schema, a.table, a.name, a.definition, b.definition, changed)


def _by_table(objects: Iterable[SchemaObject]) -> dict[tuple[str, str], list[SchemaObject]]:
    tables: dict[tuple[str, str], list[SchemaObject]] = defaultdict(list)
    for obj in objects:
        tables[(obj.schema, obj.table)].append(obj)
    return dict(tables)


def _table_summary(objects: list[SchemaObject]) -> str:
    counts = Counter(obj.kind for obj in objects)
    rls = next((obj for obj in objects if obj.kind == "rls"), None)
    parts = [_plural(counts[kind], kind) for kind in ("column", "constraint", "index", "policy") if counts[kind]]
    if rls is not None:
        parts.append(f"row level security {rls.definition}")
    return ", ".join(parts) or "no columns"


def _schema_object(obj: CatalogObject) -> SchemaObject:
    schema, _, table = obj.table.partition(".")
    return SchemaObject(schema, table, obj.kind, obj.name, obj.attributes)


def _side_json(side: Snapshot) -> dict[str, Any]:
    return {
        "url": side.url,
        "fingerprint": side.fingerprint,
        "schemas": list(side.schemas),
        "tables": dict(side.table_fingerprints),
    }


_PLURALS: Final = {"index": "indexes", "policy": "policies"}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else _PLURALS.get(noun, noun + 's')}"


def _sha256(lines: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8", "backslashreplace"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def _sync_driver(url: Any) -> Any:
    """The catalog is read synchronously: ``postgresql+asyncpg`` is read through psycopg 3 (or psycopg2); a bare
    ``postgresql://`` (SQLAlchemy's default driver is psycopg2) through psycopg 3 when only that is installed."""
    if url.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is None:
        return url.set(drivername="postgresql+psycopg")
    try:
        is_async = bool(getattr(url.get_dialect(), "is_async", False))
    except Exception:  # unknown driver: create_engine reports it
        return url
    if not is_async:
        return url
    driver = "postgresql+psycopg" if importlib.util.find_spec("psycopg") is not None else "postgresql"
    return url.set(drivername=driver)


def _reason(exc: BaseException) -> str:
    """The driver's own message (first lines, without SQLAlchemy's boilerplate and background link)."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("(Background")]
    sentences = [line if line.endswith((".", "?", "!", ":")) else line + "." for line in lines[:3]]
    return " ".join(sentences).rstrip(".") or type(exc).__name__


def _scrub(message: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "***")
    return message


def is_system_schema(name: str) -> bool:
    """A schema PostgreSQL owns (``pg_catalog``, ``information_schema``, ``pg_toast``...)."""
    return system_schema(name)
