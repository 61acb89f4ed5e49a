"""Span facts: the only thing rules look at.

The instrumentation turns a statement analysis + bound parameters + tenant context into span attributes
(:func:`facts_for_statement` then :meth:`SpanFacts.to_attributes`); the processor turns a finished span's attributes
back into :class:`SpanFacts` (:meth:`SpanFacts.from_attributes`). Rules are pure functions of (facts, settings), so
they run the same on a live span, in enforce mode before the statement runs, in ``tenantwatch explain`` and offline
over stored traces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from tenantwatch import attributes as A
from tenantwatch.context import TenantContext, tenant_hierarchy
from tenantwatch.sql.model import StatementAnalysis, ValueSource, resolve_values

__all__ = ["SpanFacts", "facts_for_statement", "resolve_keyed", "with_duration"]

_AttrValue = str | bool | int | float | tuple[str, ...] | tuple[int, ...]


def _strs(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if type(value) is tuple:
        for item in value:  # a loop: cheaper than all(...) over a generator for the few items a span holds
            if type(item) is not str:
                return tuple(str(v) for v in value)
        return value  # what span attributes hold: already a tuple of strings
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return (str(value),)


def _str(value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    return str(value)


def _first(attributes: Mapping[str, Any], key: str, fallback: str) -> Any:
    """``attributes[key]``, else ``attributes[fallback]`` (tenantwatch's key, else the semconv one), else None."""
    value = attributes.get(key)
    return attributes.get(fallback) if value is None else value


def _ints(value: object) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(v for v in (_int(item) for item in value) if v is not None)


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


@dataclass(slots=True)
class SpanFacts:
    """What is known about one database statement, as recorded on its span.

    Treat it as immutable (derive changed copies with :func:`dataclasses.replace`). It is not declared frozen
    because a frozen dataclass's ``__init__`` costs ten times more, and the processor builds one per db span.
    """

    operation: str | None = None
    statement: str | None = None
    system: str | None = None
    main_table: str | None = None
    tables: tuple[str, ...] = ()
    tenant_tables: tuple[str, ...] = ()
    tenant_filter: str = "not_applicable"
    unfiltered: tuple[str, ...] = ()
    unscoped_writes: tuple[str, ...] = ()
    inherited: tuple[str, ...] = ()
    """``scope:table:reason`` of each read scope that inherits its tenant (see ``tenantwatch.db.inherited``)."""
    tenant_values: tuple[str, ...] = ()
    written_tenant_values: tuple[str, ...] = ()
    statement_fingerprint: str | None = None
    analysis_error: str | None = None
    returned_rows: int | None = None
    duration_ms: float | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    role: str | None = None
    unscoped_reason: str | None = None
    unscoped_rules: tuple[str, ...] = ()
    """The rules ``unscoped(reason, rules=[...])`` allows; empty: the rules that honour ``unscoped_reason``."""
    code_function: str | None = None
    code_filepath: str | None = None
    code_lineno: int | None = None
    route: str | None = None
    request_values_in_sql: tuple[str, ...] = ()
    test_data: tuple[str, ...] = ()
    rls_tenant: str | None = None
    tenant_keys: tuple[tuple[str, str], ...] = ()
    """The context's values of a tenant hierarchy's finer keys (``tenant.<key>.id``), sorted by key name."""
    key_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """A tenant hierarchy: per finer key, the values its columns are compared with
    (``tenantwatch.db.tenant_values.<key>``); ``tenant_values`` holds the root key's."""
    written_key_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """A tenant hierarchy: per finer key, the values written to its columns."""
    request_tenant: str | None = None
    """The tenant of the request (server span) this statement ran in, when the processor knows it. Not a span
    attribute of the db span: the processor reads it from the running server span of the same trace."""
    identity: tuple[str, ...] = ()
    """``scope:table`` of each scope ``present`` by ORM identity (see :mod:`tenantwatch.core.identity`)."""
    identity_kind: str | None = None
    """``write`` or ``load``: what the statement does with the ORM instances of ``identity_tenant_values``."""
    identity_column: str | None = None
    """``table.column`` the instances' tenant values come from."""
    identity_tenant_values: tuple[str, ...] = ()
    identity_tenant_rows: tuple[int, ...] = ()
    """Instances per value of ``identity_tenant_values`` (same order)."""
    identity_unknown_rows: int | None = None
    """Instances (or parameter sets) whose tenant the session does not know."""
    keyed: tuple[str, ...] = ()
    """``scope:table`` of the unfiltered reads a key pins to one row (``tenantwatch.db.keyed``)."""
    tenant_rows_inspected: int | None = None
    """Returned rows whose tenant values were compared with the context (``None``: no inspection)."""
    tenant_rows_own: int | None = None
    tenant_rows_other: int | None = None
    tenant_rows_uninspected: int | None = None
    tenant_rows_tables: tuple[str, ...] = ()
    """Tables whose tenant column was inspected in the result."""
    tenant_rows_other_tables: tuple[str, ...] = ()
    """Tables with an inspected row of another tenant."""
    tenant_rows_keys: tuple[str, ...] = ()
    """With a tenant hierarchy: the tenant keys compared in the inspected rows."""
    tenant_rows_other_keys: tuple[str, ...] = ()
    """With a tenant hierarchy: the tenant keys on which an inspected row was another tenant's (root key first)."""
    identity_key_columns: tuple[str, ...] = ()
    """With a tenant hierarchy: the instances' further tenant-key columns (``table.column``) besides
    ``identity_column``."""
    identity_key_values: tuple[str, ...] = ()
    """Their values, row-major per entry of ``identity_tenant_values`` (``""``: unknown)."""

    @property
    def is_write(self) -> bool:
        return self.operation in ("INSERT", "UPDATE", "DELETE")

    @property
    def touches_tenant_data(self) -> bool:
        return bool(self.tenant_tables)

    @property
    def code_location(self) -> str:
        if self.code_filepath is None:
            return ""
        return f"{self.code_filepath}:{self.code_lineno or 0}:{self.code_function or ''}"

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, Any] | None, *, duration_ms: float | None = None) -> SpanFacts:
        """Read facts back from a span's attributes (missing attributes become defaults).

        One pass over the keys the span has (:data:`_READERS`), instead of a lookup per field: a span carries a
        third of them. Where tenantwatch's key and a semantic-convention key name one fact, the first one wins."""
        kwargs: dict[str, Any] = {"duration_ms": duration_ms}
        if not attrs:
            return cls(**kwargs)
        fallbacks: list[tuple[str, Callable[[Any], Any], Any]] | None = None
        readers = _READERS
        for key, value in attrs.items():
            reader = readers.get(key)
            if reader is None or value is None:
                continue
            name, convert, fallback = reader
            if fallback:
                if fallbacks is None:
                    fallbacks = []
                fallbacks.append((name, convert, value))
            elif convert is _str and type(value) is str:
                kwargs[name] = value  # the common case, without the call
            else:
                kwargs[name] = convert(value)
        if fallbacks is not None:
            for name, convert, value in fallbacks:
                if name not in kwargs:
                    kwargs[name] = convert(value)
        _root, finer = tenant_hierarchy()
        if finer:
            kwargs["tenant_keys"] = _tenant_keys(attrs)
            kwargs["key_values"] = _key_values(attrs, A.db_key_values_attribute)
            kwargs["written_key_values"] = _key_values(attrs, A.db_written_key_values_attribute)
        return cls(**kwargs)

    def tenant_value(self, key: str) -> str | None:
        """The context's value of tenant key ``key`` (the root key's is ``tenant_id``), as
        :meth:`TenantContext.value_of`."""
        return self.context().value_of(key)

    def context(self) -> TenantContext:
        """The tenant context these facts were recorded in."""
        return TenantContext(
            tenant_id=self.tenant_id,
            user_id=self.user_id,
            role=self.role,
            unscoped_reason=self.unscoped_reason,
            unscoped_rules=self.unscoped_rules,
            keys=self.tenant_keys,
        )

    def to_attributes(self) -> dict[str, _AttrValue]:
        """The span attributes that carry these facts (``None`` and empty values are left out)."""
        pairs: tuple[tuple[str, object], ...] = (
            (A.DB_OPERATION, self.operation),
            (A.DB_COLLECTION_NAME, self.main_table),
            (A.DB_TABLES, self.tables),
            (A.DB_TENANT_TABLES, self.tenant_tables),
            (A.DB_TENANT_FILTER, self.tenant_filter),
            (A.DB_UNFILTERED, self.unfiltered),
            (A.DB_UNSCOPED_WRITES, self.unscoped_writes),
            (A.DB_INHERITED, self.inherited),
            (A.DB_TENANT_VALUES, self.tenant_values),
            (A.DB_WRITTEN_TENANT_VALUES, self.written_tenant_values),
            (A.DB_FINGERPRINT, self.statement_fingerprint),
            (A.DB_ANALYSIS_ERROR, self.analysis_error),
            (A.DB_RETURNED_ROWS, self.returned_rows),
            (A.TENANT_ID, self.tenant_id),
            (A.ENDUSER_ID, self.user_id),
            (A.ENDUSER_ROLE, self.role),
            (A.UNSCOPED_REASON, self.unscoped_reason),
            (A.UNSCOPED_RULES, self.unscoped_rules),
            (A.CODE_FUNCTION, self.code_function),
            (A.CODE_FILEPATH, self.code_filepath),
            (A.CODE_LINENO, self.code_lineno),
            (A.DB_REQUEST_VALUES_IN_SQL, self.request_values_in_sql),
            (A.DB_TEST_DATA, self.test_data),
            (A.DB_RLS_TENANT, self.rls_tenant),
            (A.DB_IDENTITY, self.identity),
            (A.DB_IDENTITY_KIND, self.identity_kind),
            (A.DB_IDENTITY_COLUMN, self.identity_column),
            (A.DB_IDENTITY_TENANT_VALUES, self.identity_tenant_values),
            (A.DB_IDENTITY_TENANT_ROWS, self.identity_tenant_rows),
            (A.DB_IDENTITY_UNKNOWN_ROWS, self.identity_unknown_rows or None),
            (A.DB_KEYED, self.keyed),
            (A.DB_TENANT_ROWS_INSPECTED, self.tenant_rows_inspected),
            (A.DB_TENANT_ROWS_OWN, self.tenant_rows_own),
            (A.DB_TENANT_ROWS_OTHER, self.tenant_rows_other),
            (A.DB_TENANT_ROWS_UNINSPECTED, self.tenant_rows_uninspected),
            (A.DB_TENANT_ROWS_TABLES, self.tenant_rows_tables),
            (A.DB_TENANT_ROWS_OTHER_TABLES, self.tenant_rows_other_tables),
            (A.DB_TENANT_ROWS_KEYS, self.tenant_rows_keys),
            (A.DB_TENANT_ROWS_OTHER_KEYS, self.tenant_rows_other_keys),
            (A.DB_IDENTITY_KEY_COLUMNS, self.identity_key_columns),
            (A.DB_IDENTITY_KEY_VALUES, self.identity_key_values),
        )
        out: dict[str, _AttrValue] = {}
        for key, value in pairs:
            if value is None or value == ():
                continue
            out[key] = value  # type: ignore[assignment]
        for name, value in self.tenant_keys:
            out[A.tenant_key_attribute(name)] = value
        for name, values in self.key_values:
            if values:
                out[A.db_key_values_attribute(name)] = values
        for name, values in self.written_key_values:
            if values:
                out[A.db_written_key_values_attribute(name)] = values
        return out


def _duration_copier() -> Callable[[SpanFacts, float | None], SpanFacts]:
    """A function that copies facts with another ``duration_ms``, field by field in straight-line code (generated
    from the dataclass's fields, the way :mod:`dataclasses` writes ``__init__``): ``dataclasses.replace`` costs ten
    times more, and the span processor copies facts it remembers once per statement."""
    names = [field.name for field in fields(SpanFacts) if field.name != "duration_ms"]
    body = "".join(f"    copy.{name} = facts.{name}\n" for name in names)
    source = (
        "def with_duration(facts, duration_ms):\n"
        f"    copy = new(cls)\n{body}    copy.duration_ms = duration_ms\n    return copy\n"
    )
    namespace: dict[str, Any] = {"new": object.__new__, "cls": SpanFacts}
    exec(source, namespace)  # generated from the dataclass's own field names, no outside input
    copier: Callable[[SpanFacts, float | None], SpanFacts] = namespace["with_duration"]
    return copier


with_duration = _duration_copier()
"""``with_duration(facts, duration_ms)``: ``dataclasses.replace(facts, duration_ms=duration_ms)``, faster."""


def facts_for_statement(
    analysis: StatementAnalysis,
    params: object,
    context: TenantContext,
    *,
    executemany: bool = False,
    statement: str | None = None,
    system: str | None = None,
    returned_rows: int | None = None,
    duration_ms: float | None = None,
    code_function: str | None = None,
    code_filepath: str | None = None,
    code_lineno: int | None = None,
    route: str | None = None,
) -> SpanFacts:
    """Combine a statement's analysis, its bound parameters and the tenant context into span facts."""
    return SpanFacts(
        operation=analysis.operation,
        statement=statement,
        system=system,
        main_table=analysis.main_table,
        tables=analysis.tables,
        tenant_tables=analysis.tenant_tables,
        tenant_filter=analysis.tenant_filter,
        unfiltered=analysis.unfiltered_reads,
        unscoped_writes=analysis.unscoped_writes,
        inherited=analysis.inherited_reads,
        keyed=analysis.keyed,
        tenant_values=resolve_values(analysis.filter_values, params, executemany=executemany),
        written_tenant_values=resolve_values(analysis.written_values, params, executemany=executemany),
        statement_fingerprint=analysis.fingerprint or None,
        analysis_error=analysis.error,
        returned_rows=returned_rows,
        duration_ms=duration_ms,
        tenant_id=context.tenant_id,
        user_id=context.user_id,
        role=context.role,
        unscoped_reason=context.unscoped_reason,
        unscoped_rules=context.unscoped_rules,
        tenant_keys=context.keys,
        key_values=resolve_keyed(analysis.key_filter_values, params, executemany=executemany),
        written_key_values=resolve_keyed(analysis.key_written_values, params, executemany=executemany),
        code_function=code_function,
        code_filepath=code_filepath,
        code_lineno=code_lineno,
        route=route,
    )


def _filter(value: object) -> str:
    return _str(value) or "not_applicable"


_READERS: dict[str, tuple[str, Callable[[Any], Any], bool]] = {
    A.DB_QUERY_TEXT: ("statement", _str, False),
    A.DB_STATEMENT: ("statement", _str, True),
    A.DB_SYSTEM_NAME: ("system", _str, False),
    A.DB_SYSTEM: ("system", _str, True),
    A.DB_OPERATION: ("operation", _str, False),
    A.DB_OPERATION_NAME: ("operation", _str, True),
    A.DB_COLLECTION_NAME: ("main_table", _str, False),
    A.DB_SQL_TABLE: ("main_table", _str, True),
    A.DB_RETURNED_ROWS: ("returned_rows", _int, False),
    A.DB_RESPONSE_RETURNED_ROWS: ("returned_rows", _int, True),
    A.DB_TABLES: ("tables", _strs, False),
    A.DB_TENANT_TABLES: ("tenant_tables", _strs, False),
    A.DB_TENANT_FILTER: ("tenant_filter", _filter, False),
    A.DB_UNFILTERED: ("unfiltered", _strs, False),
    A.DB_UNSCOPED_WRITES: ("unscoped_writes", _strs, False),
    A.DB_INHERITED: ("inherited", _strs, False),
    A.DB_TENANT_VALUES: ("tenant_values", _strs, False),
    A.DB_WRITTEN_TENANT_VALUES: ("written_tenant_values", _strs, False),
    A.DB_FINGERPRINT: ("statement_fingerprint", _str, False),
    A.DB_ANALYSIS_ERROR: ("analysis_error", _str, False),
    A.TENANT_ID: ("tenant_id", _str, False),
    A.ENDUSER_ID: ("user_id", _str, False),
    A.ENDUSER_ROLE: ("role", _str, False),
    A.UNSCOPED_REASON: ("unscoped_reason", _str, False),
    A.UNSCOPED_RULES: ("unscoped_rules", _strs, False),
    A.CODE_FUNCTION: ("code_function", _str, False),
    A.CODE_FILEPATH: ("code_filepath", _str, False),
    A.CODE_LINENO: ("code_lineno", _int, False),
    A.HTTP_ROUTE: ("route", _str, False),
    A.DB_REQUEST_VALUES_IN_SQL: ("request_values_in_sql", _strs, False),
    A.DB_TEST_DATA: ("test_data", _strs, False),
    A.DB_RLS_TENANT: ("rls_tenant", _str, False),
    A.DB_KEYED: ("keyed", _strs, False),
    A.DB_TENANT_ROWS_INSPECTED: ("tenant_rows_inspected", _int, False),
    A.DB_TENANT_ROWS_OWN: ("tenant_rows_own", _int, False),
    A.DB_TENANT_ROWS_OTHER: ("tenant_rows_other", _int, False),
    A.DB_TENANT_ROWS_UNINSPECTED: ("tenant_rows_uninspected", _int, False),
    A.DB_TENANT_ROWS_TABLES: ("tenant_rows_tables", _strs, False),
    A.DB_TENANT_ROWS_OTHER_TABLES: ("tenant_rows_other_tables", _strs, False),
    A.DB_TENANT_ROWS_KEYS: ("tenant_rows_keys", _strs, False),
    A.DB_TENANT_ROWS_OTHER_KEYS: ("tenant_rows_other_keys", _strs, False),
    A.DB_IDENTITY_KEY_COLUMNS: ("identity_key_columns", _strs, False),
    A.DB_IDENTITY_KEY_VALUES: ("identity_key_values", _strs, False),
    A.DB_IDENTITY: ("identity", _strs, False),
    A.DB_IDENTITY_KIND: ("identity_kind", _str, False),
    A.DB_IDENTITY_COLUMN: ("identity_column", _str, False),
    A.DB_IDENTITY_TENANT_VALUES: ("identity_tenant_values", _strs, False),
    A.DB_IDENTITY_TENANT_ROWS: ("identity_tenant_rows", _ints, False),
    A.DB_IDENTITY_UNKNOWN_ROWS: ("identity_unknown_rows", _int, False),
}
"""Span attribute -> (SpanFacts field, converter, whether it only stands in for another key of the same field):
what :meth:`SpanFacts.from_attributes` reads. ``tests/test_facts_readers.py`` holds it complete."""


def _tenant_keys(attrs: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The declared finer tenant keys a span carries (``tenant.<key>.id``), see ``set_tenant_hierarchy``."""
    _root, finer = tenant_hierarchy()
    if not finer:
        return ()
    pairs = []
    for name in finer:
        value = attrs.get(A.tenant_key_attribute(name))
        if isinstance(value, str) and value:
            pairs.append((name, value))
    return tuple(sorted(pairs))


def resolve_keyed(
    keyed: tuple[tuple[str, tuple[ValueSource, ...]], ...], params: object, *, executemany: bool = False
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """:func:`~tenantwatch.sql.model.resolve_values` per finer tenant key; keys that resolve to nothing are left
    out."""
    if not keyed:
        return ()
    out = []
    for key, sources in keyed:
        values = resolve_values(sources, params, executemany=executemany)
        if values:
            out.append((key, values))
    return tuple(out)


def _key_values(attrs: Mapping[str, Any], name: Callable[[str], str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The per-key value arrays a span carries for the declared finer tenant keys."""
    _root, finer = tenant_hierarchy()
    if not finer:
        return ()
    pairs = []
    for key in finer:
        values = _strs(attrs.get(name(key)))
        if values:
            pairs.append((key, values))
    return tuple(pairs)
