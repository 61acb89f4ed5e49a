"""Which tables are tenant-scoped, and by which column.

Precedence, highest first:

1. ``settings.exclude_tables``: never tenant-scoped (wins over everything, including explicit entries);
2. ``settings.tenant_tables`` and :meth:`TenantTables.add`: explicit ``table -> tenant column``;
3. discovery: a table having one of ``settings.tenant_columns`` (first match in that order), learned from SQLAlchemy
   :class:`~sqlalchemy.MetaData` (:meth:`TenantTables.learn_from_metadata`) or from the database catalog
   (:meth:`TenantTables.learn_from_connection`). When ``settings.include_tables`` is not empty, only the discovered
   tables it names count.

4. ``settings.tenant_roots``: the root table of a tenant key (``organizations`` for ``organization_id``) is judged by
   its key column (``id`` unless ``table.column`` is given), unless an entry above names it.

Foreign keys are learned in the same discovery path (:meth:`TenantTables.learn_from_metadata`,
:meth:`TenantTables.learn_from_connection`, :meth:`TenantTables.learn_foreign_keys`): the walk uses them to tell an
``inherited`` table (see ``docs/analysis.md``) from a ``missing`` one. Primary keys and unique keys are learned
there too (:meth:`TenantTables.keys_for`): they tell a lookup by key from a list query (``missing_tenant_filter``'s
latent severity, :mod:`tenantwatch.sql.keyed`).

Names are case-insensitive; a table may be named bare (``orders``) or with its schema (``billing.orders``). A
table discovered in a schema answers to both names. :attr:`TenantTables.version` goes up whenever the answer of
:meth:`TenantTables.column_for` may have changed, so cached statement analyses can tell they are stale.

Thread-safe: writers take a lock and publish a new immutable mapping; readers never lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tenantwatch.config import Settings

__all__ = ["ForeignKey", "TenantTables"]

logger = logging.getLogger(__name__)

_PG_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
_DEFAULT_SCHEMAS = frozenset({"public", "main", "dbo"})
"""Schemas whose tables are recorded under their bare name only."""


def _norm(name: str) -> str:
    return name.strip().strip('"').lower()


def _split(table: str) -> tuple[str | None, str]:
    """``'Billing.Orders'`` -> ``('billing', 'orders')``; ``'orders'`` -> ``(None, 'orders')``."""
    name = table.strip().lower()
    if "." in name:
        schema, _, bare = name.rpartition(".")
        return _norm(schema.rpartition(".")[2]) or None, _norm(bare)
    return None, _norm(name)


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote_ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """A declared foreign key: ``table(columns)`` references ``referred(referred_columns)``. Names are bare (no
    schema) and lower case; ``columns`` and ``referred_columns`` pair up by position."""

    table: str
    columns: tuple[str, ...]
    referred: str
    referred_columns: tuple[str, ...]


_NO_FKS: tuple[ForeignKey, ...] = ()

KeyPairs = tuple[tuple[frozenset[tuple[str, str]], bool], ...]
"""The declared keys between a table and one other table, as the walk asks for them: per key, its column pairs
``(column of the table, column of the other)`` and whether the table holds the key (refers to the other)."""
_NO_LINKS: Mapping[str, KeyPairs] = {}


class TenantTables:
    """The set of tenant-scoped tables and their tenant column (see the module docstring for precedence)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings if settings is not None else Settings()
        self._tenant_columns: tuple[str, ...] = tuple(c.lower() for c in self._settings.tenant_columns)
        self._include = frozenset(_norm(t) for t in self._settings.include_tables)
        self._exclude = frozenset(_norm(t) for t in self._settings.exclude_tables)
        self._explicit: dict[str, str] = {}
        self._discovered: dict[str, str] = {}
        self._lock = threading.Lock()
        self._version = 0
        self._view: Mapping[str, str] = {}
        self._fk_set: dict[ForeignKey, None] = {}
        self._fks: Mapping[str, tuple[ForeignKey, ...]] = {}
        self._fk_links: Mapping[str, Mapping[str, KeyPairs]] = {}
        self._fk_refers: Mapping[str, Mapping[str, KeyPairs]] = {}
        self._roots: dict[str, str] = {}
        self._hierarchical = bool(self._settings.finer_keys)
        self._root_key = self._settings.root_key
        self._column_keys: dict[str, str] = {}
        """Tenant column -> its finer key (a hierarchy's ``team_id`` -> ``team``); root-key columns are absent."""
        self._root_keys: dict[str, str] = {}
        """Root table of a finer key -> that key (``teams`` -> ``team``)."""
        self._others: dict[str, tuple[str, ...]] = {}
        self._others_view: Mapping[str, tuple[str, ...]] = {}
        if self._hierarchical:
            for column in self._tenant_columns:
                key = self._settings.key_of_column(column)
                if key != self._root_key:
                    self._column_keys[column] = key
        self._keys: Mapping[str, tuple[tuple[str, ...], ...]] = {}
        """Bare table -> its primary key and unique keys (each a tuple of columns)."""
        with self._lock:
            for column, root in self._settings.tenant_roots.items():
                table, _, key = root.partition(".") if root.count(".") == 1 else (root, "", "")
                self._roots[_norm(table)] = _norm(key or "id")
                owner = self._column_keys.get(_norm(column))
                if owner is not None:
                    self._root_keys[_norm(table)] = owner
            for table, column in self._settings.tenant_tables.items():
                self._put(self._explicit, table, column)
            self._publish()

    # -- reading -------------------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Goes up by one each time the set of tenant-scoped tables (or a tenant column) changes."""
        return self._version

    @property
    def tenant_columns(self) -> tuple[str, ...]:
        """The column names that make a discovered table tenant-scoped, lower case."""
        return self._tenant_columns

    def column_for(self, table: str) -> str | None:
        """The tenant column of ``table`` (``name`` or ``schema.name``, any case), or ``None`` if not tenant-scoped."""
        view = self._view
        if not view:
            return None
        key = table.lower()
        found = view.get(key)
        if found is not None or "." not in key:
            return found or None
        schema, bare = _split(key)
        qualified = f"{schema}.{bare}" if schema else bare
        found = view.get(qualified)
        if found is None:
            found = view.get(bare)
        return found or None

    def is_root(self, table: str) -> bool:
        """Whether ``table`` (bare or qualified) is the root table of a tenant key (``settings.tenant_roots``)."""
        return bool(self._roots) and _split(table)[1] in self._roots

    @property
    def hierarchical(self) -> bool:
        """Whether the settings declare a tenant hierarchy (``tenant_keys`` with a key below the root)."""
        return self._hierarchical

    @property
    def root_key(self) -> str:
        """The root tenant key's name (``tenant`` without ``tenant_keys``)."""
        return self._root_key

    def other_columns(self, table: str) -> tuple[str, ...]:
        """With a tenant hierarchy: the key columns of ``table`` besides :meth:`column_for` (``team_id`` of a table
        that has ``organization_id`` too; ``id`` of the root table of a finer key that is a tenant table itself):
        a filter on any of them protects the table. Empty without a hierarchy."""
        view = self._others_view
        if not view:
            return ()
        found = view.get(table.lower())
        if found is None:
            found = view.get(_split(table)[1], ())
        return found

    def key_of(self, table: str | None, column: str) -> str | None:
        """The finer tenant key ``column`` of ``table`` holds (``team`` for ``team_id``, or for ``teams.id`` when
        ``teams`` is the team key's root); ``None`` for the root key, and always without a hierarchy. ``table`` is
        ``None`` for a column known by name only (a derived table's output, an outer reference)."""
        if not self._hierarchical:
            return None
        column = _norm(column)
        if table is not None:
            bare = _split(table)[1]
            key = self._root_keys.get(bare)
            if key is not None and self._roots.get(bare) == column:
                return key
            if bare in self._roots and self._roots[bare] == column:
                return None
        return self._column_keys.get(column)

    def foreign_keys(self, table: str) -> tuple[ForeignKey, ...]:
        """The declared foreign keys from or to ``table`` (bare or qualified, any case)."""
        fks = self._fks
        if not fks:
            return _NO_FKS
        return fks.get(_split(table)[1], _NO_FKS)

    def fk_links(self, table: str, refers: bool = False) -> Mapping[str, KeyPairs]:
        """The declared keys from or to ``table`` (bare, lower case: as the walk names tables), by the other table;
        with ``refers``, only the keys ``table`` holds. Precomputed when keys are learned, so the provenance walk
        does one lookup per table."""
        links = self._fk_refers if refers else self._fk_links
        return links.get(table, _NO_LINKS) if links else _NO_LINKS

    def keys_for(self, table: str) -> tuple[tuple[str, ...], ...]:
        """The primary key and unique keys of ``table`` (bare or qualified, any case) learned from MetaData or the
        catalog, each as a tuple of columns; ``()`` when none is known."""
        keys = self._keys
        if not keys:
            return ()
        return keys.get(_split(table)[1], ())

    def snapshot(self) -> dict[str, str]:
        """A copy of every known ``table -> tenant column`` (bare and schema-qualified keys)."""
        return {k: v for k, v in self._view.items() if v}

    def __contains__(self, table: object) -> bool:
        return isinstance(table, str) and self.column_for(table) is not None

    def __len__(self) -> int:
        return sum(1 for key, column in self._view.items() if column and "." not in key)

    def __repr__(self) -> str:
        return f"TenantTables(version={self._version}, tables={sorted(k for k in self.snapshot() if '.' not in k)})"

    # -- writing -------------------------------------------------------------------------------------------------

    def add(self, table: str, column: str) -> bool:
        """Declare ``table`` tenant-scoped by ``column`` (like ``settings.tenant_tables``). Returns whether it changed.

        ``exclude_tables`` still wins: an excluded table is recorded but never reported as tenant-scoped.
        """
        with self._lock:
            changed = self._put(self._explicit, table, column)
            if changed:
                self._publish()
            return changed

    def learn(self, columns_by_table: Iterable[tuple[str | None, str, Iterable[str]]]) -> int:
        """Discover tenant tables from ``(schema, table, column names)`` triples; returns how many are tenant-scoped.

        The first of ``settings.tenant_columns`` that a table has becomes its tenant column. Tables that have none
        of them, excluded tables and (when ``include_tables`` is set) tables it does not name are not counted.
        """
        return self._learn(columns_by_table, ())

    def _learn(
        self,
        columns_by_table: Iterable[tuple[str | None, str, Iterable[str]]],
        foreign_keys: Iterable[ForeignKey],
        keys: Iterable[tuple[str, Iterable[str]]] = (),
    ) -> int:
        """Tenant tables, foreign keys and primary/unique keys, published together (one version step)."""
        fks = self._normalized_fks(foreign_keys)
        found: list[tuple[str, str]] = []
        others: dict[str, tuple[str, ...]] = {}
        for schema, table, columns in columns_by_table:
            names = {_norm(c) for c in columns}
            column = next((c for c in self._tenant_columns if c in names), None)
            if column is None:
                continue
            qualified = f"{_norm(schema)}.{_norm(table)}" if schema else _norm(table)
            if not self._counts(qualified):
                continue
            found.append((qualified, column))
            if self._hierarchical:
                others[qualified] = tuple(c for c in self._tenant_columns if c in names and c != column)
        with self._lock:
            changed = False
            for qualified, column in found:
                changed = self._put(self._discovered, qualified, column) or changed
            for qualified, extra in others.items():
                if self._others.get(qualified, ()) != extra:
                    self._others[qualified] = extra
                    changed = True
            new_fks = [fk for fk in fks if fk not in self._fk_set]
            for fk in new_fks:
                self._fk_set[fk] = None
            new_keys = self._merge_keys(keys)
            before = self._version
            if new_fks:
                self._publish_fks(bump=not changed)
            if changed:
                self._publish()
            if new_keys and self._version == before:
                self._version += 1
        return len(found)

    def learn_foreign_keys(self, foreign_keys: Iterable[ForeignKey]) -> int:
        """Record declared foreign keys (names normalized here); returns how many were new."""
        found = self._normalized_fks(foreign_keys)
        with self._lock:
            new = [fk for fk in found if fk not in self._fk_set]
            if new:
                for fk in new:
                    self._fk_set[fk] = None
                self._publish_fks()
        return len(new)

    def learn_keys(self, keys: Iterable[tuple[str, Iterable[str]]]) -> int:
        """Record primary or unique keys as ``(table, columns)`` pairs (names normalized here); returns how many were
        new. A new key bumps :attr:`version` (cached analyses tell lookups by key from other reads)."""
        with self._lock:
            new = self._merge_keys(keys)
            if new:
                self._version += 1
        return new

    def _merge_keys(self, keys: Iterable[tuple[str, Iterable[str]]]) -> int:
        """Publish new keys (caller holds the lock; the version is the caller's to bump); returns how many."""
        merged = {table: list(known) for table, known in self._keys.items()}
        new = 0
        for table, columns in keys:
            key = tuple(_norm(c) for c in columns)
            if not key:
                continue
            known = merged.setdefault(_split(table)[1], [])
            if key not in known:
                known.append(key)
                new += 1
        if new:
            self._keys = {table: tuple(known) for table, known in merged.items()}
        return new

    @staticmethod
    def _normalized_fks(foreign_keys: Iterable[ForeignKey]) -> list[ForeignKey]:
        return [
            ForeignKey(
                _split(fk.table)[1],
                tuple(_norm(c) for c in fk.columns),
                _split(fk.referred)[1],
                tuple(_norm(c) for c in fk.referred_columns),
            )
            for fk in foreign_keys
            if fk.columns and len(fk.columns) == len(fk.referred_columns)
        ]

    def learn_from_metadata(self, metadata: Any) -> int:
        """Discover tenant tables and foreign keys from a SQLAlchemy ``MetaData`` (or anything with ``.tables``);
        returns the count of tenant tables."""
        triples: list[tuple[str | None, str, list[str]]] = []
        fks: list[ForeignKey] = []
        keys: list[tuple[str, list[str]]] = []
        for table in getattr(metadata, "tables", {}).values():
            triples.append((table.schema, table.name, [column.name for column in table.columns]))
            keys.extend((table.name, columns) for columns in _metadata_keys(table))
            for constraint in getattr(table, "foreign_key_constraints", ()):
                elements = list(getattr(constraint, "elements", ()))
                try:
                    referred = elements[0].column.table.name
                    pairs = [(e.parent.name, e.column.name) for e in elements]
                except Exception:  # an unresolved reference (the referred table is not in this MetaData)
                    continue
                fks.append(ForeignKey(table.name, tuple(a for a, _ in pairs), referred, tuple(b for _, b in pairs)))
        return self._learn(triples, fks, keys)

    def learn_from_connection(self, dbapi_connection: Any, dialect_name: str) -> int:
        """Discover tenant tables from the database catalog; returns the count. Never raises (logs a warning).

        ``dialect_name`` is SQLAlchemy's: ``postgresql`` reads ``information_schema.columns`` of every non-system
        schema (tables and views the connection may see); ``sqlite`` reads ``sqlite_master`` and
        ``pragma table_info`` of every attached database. Other dialects are tried with ``information_schema``.
        A transaction this call opens on an idle connection is rolled back.
        """
        dialect = dialect_name.lower().partition("+")[0]
        idle = _transaction_idle(dbapi_connection)
        fks: list[ForeignKey] = []
        keys: list[tuple[str, list[str]]] = []
        try:
            if dialect == "sqlite":
                triples, fks = self._sqlite_catalog(dbapi_connection)
                keys = _sqlite_keys(dbapi_connection, [table for schema, table, _ in triples if schema is None])
            else:
                triples = self._information_schema(dbapi_connection, postgres=dialect == "postgresql")
                if dialect == "postgresql":
                    fks = self._pg_foreign_keys(dbapi_connection)
                    keys = _pg_keys(dbapi_connection)
        except Exception as exc:
            logger.warning("tenantwatch: cannot read the %s catalog to find tenant tables: %s", dialect_name, exc)
            triples = []
        finally:
            if idle:
                _rollback_quietly(dbapi_connection)
        return self._learn(triples, fks, keys)

    # -- internals -----------------------------------------------------------------------------------------------

    def _counts(self, qualified: str) -> bool:
        _schema, bare = _split(qualified)
        if bare in self._exclude or qualified in self._exclude:
            return False
        return not self._include or bare in self._include or qualified in self._include

    @staticmethod
    def _put(target: dict[str, str], table: str, column: str) -> bool:
        schema, bare = _split(table)
        key = f"{schema}.{bare}" if schema else bare
        column = _norm(column)
        if target.get(key) == column:
            return False
        target[key] = column
        return True

    def _publish(self) -> None:
        """Rebuild the read view (caller holds the lock) and bump the version if it changed."""
        view: dict[str, str] = {}
        for key, column in self._discovered.items():
            view[key] = column
        for key, column in self._discovered.items():
            if "." in key:
                view.setdefault(_split(key)[1], column)
        for qualified_first in (True, False):  # explicit entries win; an explicit bare name wins over a qualified one
            for key, column in self._explicit.items():
                if ("." in key) == qualified_first:
                    view[key] = column
                    view[_split(key)[1]] = column
        for table, key_column in self._roots.items():
            view.setdefault(table, key_column)
        for key in list(view):
            bare = _split(key)[1]
            if bare in self._exclude or key in self._exclude:
                view[key] = ""  # present but excluded: "" reads as not tenant-scoped
        others_changed = False
        if self._hierarchical:
            others = self._other_view(view)
            others_changed = others != self._others_view
            self._others_view = others
        if view != self._view or others_changed:
            self._view = view
            self._version += 1

    def _other_view(self, view: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
        """Per table (bare and qualified, as ``view``): its key columns besides its tenant column (caller holds the
        lock). Every key column discovery saw on it (also for a table whose tenant column an explicit entry names:
        ``key_results: organization_id`` keeps ``team_id``), and the key column of a root table of a finer key that
        is a tenant table by another column."""
        out: dict[str, tuple[str, ...]] = {}
        for key, column in view.items():
            if not column:
                continue
            extra = self._others.get(key, ())
            if not extra and "." not in key:
                extra = next((v for k, v in self._others.items() if _split(k)[1] == key), ())
            discovered = self._discovered.get(key)
            if discovered is None and "." not in key:
                discovered = next((v for k, v in self._discovered.items() if _split(k)[1] == key), None)
            if discovered is not None and discovered != column and discovered not in extra:
                extra = (discovered, *extra)  # an explicit entry named another key column than discovery chose
            root_column = self._roots.get(_split(key)[1])
            if root_column is not None and root_column != column and root_column not in extra:
                extra = (*extra, root_column)
            extra = tuple(c for c in extra if c != column)
            if extra:
                out[key] = extra
        return out

    def _publish_fks(self, *, bump: bool = True) -> None:
        """Rebuild the foreign-key view (caller holds the lock): each key under both of its tables."""
        by_table: dict[str, list[ForeignKey]] = {}
        for fk in self._fk_set:
            by_table.setdefault(fk.table, []).append(fk)
            if fk.referred != fk.table:
                by_table.setdefault(fk.referred, []).append(fk)
        self._fks = {table: tuple(found) for table, found in by_table.items()}
        links: dict[str, dict[str, list[tuple[frozenset[tuple[str, str]], bool]]]] = {}
        for fk in self._fk_set:
            pairs = list(zip(fk.columns, fk.referred_columns, strict=False))
            own = links.setdefault(fk.table, {}).setdefault(fk.referred, [])
            own.append((frozenset(pairs), True))
            other = links.setdefault(fk.referred, {}).setdefault(fk.table, [])
            other.append((frozenset((b, a) for a, b in pairs), False))
        self._fk_links = {t: {o: tuple(keys) for o, keys in by.items()} for t, by in links.items()}
        refers = {t: {o: tuple(k for k in keys if k[1]) for o, keys in by.items()} for t, by in links.items()}
        self._fk_refers = {t: {o: keys for o, keys in by.items() if keys} for t, by in refers.items()}
        if bump:
            self._version += 1

    @staticmethod
    def _sqlite_catalog(conn: Any) -> tuple[list[tuple[str | None, str, list[str]]], list[ForeignKey]]:
        triples: list[tuple[str | None, str, list[str]]] = []
        fks: list[ForeignKey] = []
        cursor = conn.cursor()
        try:
            cursor.execute("PRAGMA database_list")
            schemas = [str(row[1]) for row in cursor.fetchall()]
            for schema in schemas:
                cursor.execute(
                    f"SELECT name FROM {_quote_ident(schema)}.sqlite_master "
                    "WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                )
                names = [str(row[0]) for row in cursor.fetchall()]
                for name in names:
                    cursor.execute(f"PRAGMA {_quote_ident(schema)}.table_info({_quote_ident(name)})")
                    columns = [str(row[1]) for row in cursor.fetchall()]
                    triples.append((None if schema in ("main", "temp") else schema, name, columns))
                    cursor.execute(f"PRAGMA {_quote_ident(schema)}.foreign_key_list({_quote_ident(name)})")
                    # (id, seq, table, from, to, on_update, on_delete, match); "to" is NULL for the primary key
                    by_id: dict[int, list[tuple[Any, ...]]] = {}
                    for row in cursor.fetchall():
                        by_id.setdefault(int(row[0]), []).append(tuple(row))
                    for rows in by_id.values():
                        rows.sort(key=lambda r: int(r[1]))
                        if any(r[4] is None for r in rows):
                            continue  # references the primary key implicitly: not resolved here
                        fks.append(
                            ForeignKey(
                                name,
                                tuple(str(r[3]) for r in rows),
                                str(rows[0][2]),
                                tuple(str(r[4]) for r in rows),
                            )
                        )
        finally:
            cursor.close()
        return triples, fks

    @staticmethod
    def _pg_foreign_keys(conn: Any) -> list[ForeignKey]:
        """Every foreign key of the non-system schemas, from ``pg_constraint`` (columns paired by position)."""
        sql = (
            "SELECT c.oid, src.relname, dst.relname, a.attname, b.attname, k.ord "
            "FROM pg_catalog.pg_constraint c "
            "JOIN pg_catalog.pg_class src ON src.oid = c.conrelid "
            "JOIN pg_catalog.pg_class dst ON dst.oid = c.confrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = src.relnamespace "
            "CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(src_col, dst_col, ord) "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.src_col "
            "JOIN pg_catalog.pg_attribute b ON b.attrelid = c.confrelid AND b.attnum = k.dst_col "
            "WHERE c.contype = 'f' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_%' ESCAPE '\\' "
            "ORDER BY c.oid, k.ord"
        )
        rows = _fetch_all(conn, sql)
        grouped: dict[Any, list[tuple[Any, ...]]] = {}
        for row in rows:
            grouped.setdefault(row[0], []).append(tuple(row))
        return [
            ForeignKey(
                str(found[0][1]),
                tuple(str(r[3]) for r in found),
                str(found[0][2]),
                tuple(str(r[4]) for r in found),
            )
            for found in grouped.values()
        ]

    def _information_schema(self, conn: Any, *, postgres: bool) -> list[tuple[str | None, str, list[str]]]:
        if not self._tenant_columns:
            return []
        wanted = ", ".join(_sql_literal(c) for c in self._tenant_columns)
        system = ", ".join(_sql_literal(s) for s in _PG_SYSTEM_SCHEMAS)
        sql = (
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            f"WHERE lower(column_name) IN ({wanted}) AND table_schema NOT IN ({system})"
        )
        if postgres:
            sql += " AND table_schema NOT LIKE 'pg\\_%' ESCAPE '\\'"
        rows = _fetch_all(conn, sql)
        by_table: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in rows:
            by_table.setdefault((str(schema), str(table)), []).append(str(column))
        return [
            (None if schema.lower() in _DEFAULT_SCHEMAS else schema, table, columns)
            for (schema, table), columns in by_table.items()
        ]


def _metadata_keys(table: Any) -> list[list[str]]:
    """The primary key, unique constraints (``unique=True`` columns included) and unique indexes of a SQLAlchemy
    ``Table``, as column-name lists (expression indexes left out)."""
    found: list[list[str]] = []
    primary = getattr(table, "primary_key", None)
    if primary is not None and len(primary.columns):
        found.append([column.name for column in primary.columns])
    for constraint in getattr(table, "constraints", ()):
        if type(constraint).__name__ == "UniqueConstraint" and len(constraint.columns):
            found.append([column.name for column in constraint.columns])
    for index in getattr(table, "indexes", ()):
        if getattr(index, "unique", False) and len(index.columns) and len(index.expressions) == len(index.columns):
            found.append([column.name for column in index.columns])
    return found


def _pg_keys(conn: Any) -> list[tuple[str, list[str]]]:
    """Every primary key and unique index (not partial, no expression) of the non-system schemas, from
    ``pg_index`` (primary keys and unique constraints are backed by one)."""
    sql = (
        "SELECT i.indexrelid, src.relname, a.attname, k.ord "
        "FROM pg_catalog.pg_index i "
        "JOIN pg_catalog.pg_class src ON src.oid = i.indrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = src.relnamespace "
        "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(col, ord) "
        "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.col "
        "WHERE i.indisunique AND i.indpred IS NULL AND NOT (0 = ANY(i.indkey::int2[])) "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ESCAPE '\\' "
        "ORDER BY i.indexrelid, k.ord"
    )
    rows = _fetch_all(conn, sql)
    grouped: dict[Any, tuple[str, list[str]]] = {}
    for index, table, column, _ord in rows:
        grouped.setdefault(index, (str(table), []))[1].append(str(column))
    return list(grouped.values())


def _sqlite_keys(conn: Any, tables: list[str]) -> list[tuple[str, list[str]]]:
    """Primary keys (``pragma table_info``) and unique indexes (``pragma index_list``/``index_info``) of the tables
    of the main database."""
    found: list[tuple[str, list[str]]] = []
    cursor = conn.cursor()
    try:
        for table in tables:
            cursor.execute(f"PRAGMA table_info({_quote_ident(table)})")
            primary = sorted((int(row[5]), str(row[1])) for row in cursor.fetchall() if int(row[5] or 0) > 0)
            if primary:
                found.append((table, [name for _, name in primary]))
            cursor.execute(f"PRAGMA index_list({_quote_ident(table)})")
            unique = [str(row[1]) for row in cursor.fetchall() if int(row[2] or 0) and not int(row[4] or 0)]
            for index in unique:
                cursor.execute(f"PRAGMA index_info({_quote_ident(index)})")
                columns = [row[2] for row in sorted(cursor.fetchall(), key=lambda r: int(r[0]))]
                if columns and all(c is not None for c in columns):
                    found.append((table, [str(c) for c in columns]))
    finally:
        cursor.close()
    return found


def _transaction_idle(conn: Any) -> bool:
    """Whether ``conn`` has no open transaction (so one this module opens may be rolled back)."""
    try:
        if getattr(conn, "autocommit", False) is True:
            return False
        info = getattr(conn, "info", None)
        status = getattr(info, "transaction_status", None)
        if status is not None:  # psycopg 3: TransactionStatus.IDLE == 0
            return int(status) == 0
        get_status = getattr(conn, "get_transaction_status", None)
        if callable(get_status):  # psycopg2: TRANSACTION_STATUS_IDLE == 0
            return int(get_status()) == 0
        in_transaction = getattr(conn, "in_transaction", None)
        if isinstance(in_transaction, bool):  # sqlite3
            return not in_transaction
        started = getattr(conn, "_started", None)
        if isinstance(started, bool):  # SQLAlchemy's asyncpg adapter: a transaction starts with the first query
            return not started and getattr(conn, "isolation_level", None) != "autocommit"
        inner = getattr(conn, "_connection", None)
        inner_state = getattr(inner, "in_transaction", None)
        if isinstance(inner_state, bool):  # SQLAlchemy's aiosqlite adapter around a sqlite3-like connection
            return not inner_state
    except Exception:  # a driver we do not know: leave its transaction alone
        logger.debug("tenantwatch: cannot tell the transaction status of %r", conn, exc_info=True)
    return False


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:
        logger.debug("tenantwatch: rollback after reading the catalog failed", exc_info=True)


def _fetch_all(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    """Every row of a catalog query on a DB-API connection; the cursor is closed whatever happens."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()
