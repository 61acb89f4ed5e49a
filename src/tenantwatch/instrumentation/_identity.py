"""ORM identity facts: the tenant of the ORM instances a statement acts on, as SQLAlchemy's session knows it.

The statements the ORM emits on instances carry no tenant predicate, but act on rows whose tenant the session has
loaded. This module records, for such a statement, the tenant values of those instances
(``tenantwatch.db.identity.*``, see :mod:`tenantwatch.attributes`); :mod:`tenantwatch.core.identity` judges them.

* **Flush UPDATE/DELETE by primary key.** The mapper events ``before_update`` / ``before_delete`` give each target
  instance and the connection the flush runs its statements on. Each target is noted on that connection under
  (table, primary key), with the tenant value of the row as loaded — the committed value, never a pending change
  (an ``UPDATE ... SET org_id = <another tenant>`` is the written value ``cross_tenant`` already checks). A statement
  on that connection that updates or deletes the table matches its parameter sets (each executemany row) to the
  notes by primary key; ``after_update`` / ``after_delete`` (which SQLAlchemy calls for every target, also those
  with no net change), a rollback and a failed statement drop the notes, so none outlives its flush and a later
  statement that merely has the same shape (a Core ``UPDATE`` of the same row) matches nothing.
* **Refresh, re-read of expired attributes, lazy loads.** The session event ``do_orm_execute`` says whose load a
  ``SELECT`` is: ``load_options._refresh_state`` (refresh, expired attributes) is the instance itself,
  ``lazy_loaded_from`` the parent of a lazy load. Their tenant value travels with that one execution as an
  execution option, so it can only reach the statement it belongs to.
* **selectin loads** (``selectinload``, ``lazy="selectin"``): one statement for many parents, their keys bound as
  ``primary_keys``. A one-to-many or many-to-many load binds the parents' primary keys: each is looked up in the
  session's identity map. A many-to-one load binds the related rows' keys, which are the parents' foreign keys: the
  parents are the session's instances of the parent mapper holding one of them (at most :data:`MAX_SCANNED`
  instances looked at). A key no loaded parent explains counts as unknown. ``immediateload`` is a lazy load per
  parent; ``subqueryload`` repeats the parents' own query inside its statement (the analyzer judges that).
* **By-key reads of rows this transaction knows.** An ORM ``SELECT`` of one mapped class whose top-level ``WHERE``
  binds its whole primary key by equality (no join, no subquery) reads that one row. If a session that runs on the
  same connection holds the instance (loaded, or inserted and flushed), or a flush on that connection inserted or
  updated the row in this transaction, the row's tenant is known. That covers a second ``Session(bind=connection)``
  opened inside ORM event listeners (``after_insert``, ``after_flush``) to read rows by ids taken from the flushed
  instances. The sessions are registered on the connection by ``after_begin`` (at most :data:`MAX_SESSIONS`, weakly
  held) and the written rows noted by ``after_insert``/``after_update`` (at most :data:`MAX_NOTED`); both are
  dropped when the connection commits or rolls back (the written rows also at a savepoint rollback). A row nobody
  in this transaction loaded or wrote gets no fact (``session.get()`` of such a row: nothing was loaded scoped).

The tenant value of an instance is the loaded value of the attribute mapped to its table's tenant column; with a
tenant hierarchy (``tenant_keys``) also of every further tenant-key column of that table (``projects.team_id``;
``teams.id`` for the team key's root table), recorded as ``tenantwatch.db.identity.key_columns`` / ``key_values`` and
each compared with the context's value of its own key (:mod:`tenantwatch.core.identity`). Expiry (a
commit, ``session.refresh()``, ``session.expire()``) drops loaded values, so every instance in the session when it
commits (``after_commit`` runs before the commit expires them) or flushed (``after_insert``, ``before_update``)
asks SQLAlchemy to keep the last known value of those attributes through expiry
(``InstanceState._track_last_known_value``, what the ORM itself uses for foreign keys of expired instances); what
is neither loaded nor kept (an explicit ``session.refresh()``/``expire()`` of an instance loaded since the last
commit and never flushed) is unknown, and the statement is judged as before.

Bounded: at most :data:`MAX_INSPECTED` parameter sets or bound keys per statement and :data:`MAX_NOTED` notes per
connection (the rest count as unknown), at most :data:`MAX_VALUES` distinct values. Every listener runs in a guard
(those that run for every session or statement in a ``try``/``except`` that logs like one: a guard object would cost
more than their body); nothing raises into the application. Without the ORM nothing runs but two dict look-ups and
one integer test per statement.
"""

from __future__ import annotations

import functools
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tenantwatch import attributes as A
from tenantwatch.core.guard import DeliberateError, guard, log_internal_error
from tenantwatch.core.tenant_values import canonical

if TYPE_CHECKING:
    from tenantwatch.sql.tables import TenantTables

__all__ = ["MAX_INSPECTED", "MAX_NOTED", "MAX_SCANNED", "MAX_SESSIONS", "MAX_VALUES", "IdentityFact", "OrmIdentity"]

MAX_INSPECTED = 1000
"""Parameter sets of one executemany statement matched against the notes; the rest count as unknown."""

MAX_NOTED = 10_000
"""Flush targets noted per connection at a time; beyond, targets are not noted (their statements: unknown)."""

MAX_VALUES = 16
"""Distinct tenant values recorded per statement; instances of further values count as unknown."""

MAX_SCANNED = 10_000
"""Instances of a session looked at to find the parents of a many-to-one selectin load; beyond, its keys are
unknown."""

MAX_SESSIONS = 16
"""Sessions registered per connection and transaction; further ones are not consulted for by-key reads."""

OPTION = "_tenantwatch_identity"
"""Execution option carrying the :class:`IdentityFact` of one ORM load to its statement."""

_SESSIONS = "_tenantwatch_identity_sessions"
"""Key in a ``Connection``'s ``__dict__``: weak references to the sessions in a transaction on it."""

_WRITTEN = "_tenantwatch_identity_written"
"""Key in a ``Connection``'s ``__dict__``: ``{(table, primary key): (table.column, tenant value)}`` of the rows the
ORM inserted or updated on it in this transaction, with the tenant value the statement wrote."""

_NOTES = "_tenantwatch_identity_notes"
"""Key in a ``Connection``'s ``__dict__``: ``{(table, primary key): (table.column..., tenant value or None...)}``."""

_Tenant = tuple[tuple[str, str], ...]
"""``((table.column, attribute key), ...)``: where a mapper keeps the tenant of its instances, the tenant column
first, then (with a tenant hierarchy) the further tenant-key columns of the same table."""

_Values = tuple[str | None, ...]
"""An instance's canonical values of the columns of its :data:`_Tenant` (same order; ``None``: unknown)."""

_Found = tuple[tuple[str, ...], _Values]
"""``(table.column..., values)`` of one instance."""


@dataclass(frozen=True, slots=True)
class IdentityFact:
    """The tenant values of the ORM instances one statement acts on."""

    kind: str
    """``write`` (flush) or ``load`` (refresh, lazy load)."""
    column: str
    """``table.column`` the values come from."""
    values: tuple[str, ...]
    rows: tuple[int, ...]
    unknown: int = 0
    key_columns: tuple[str, ...] = ()
    """With a tenant hierarchy: the further tenant-key columns (``table.column``)."""
    key_values: tuple[str, ...] = ()
    """Their values, row-major per entry of ``values`` (``""``: unknown)."""

    def attributes(self) -> dict[str, Any]:
        found: dict[str, Any] = {A.DB_IDENTITY_KIND: self.kind, A.DB_IDENTITY_COLUMN: self.column}
        if self.values:
            found[A.DB_IDENTITY_TENANT_VALUES] = self.values
            found[A.DB_IDENTITY_TENANT_ROWS] = self.rows
            if self.key_columns:
                found[A.DB_IDENTITY_KEY_COLUMNS] = self.key_columns
                found[A.DB_IDENTITY_KEY_VALUES] = self.key_values
        if self.unknown:
            found[A.DB_IDENTITY_UNKNOWN_ROWS] = self.unknown
        return found


def _fact(kind: str, columns: tuple[str, ...], found: dict[_Values | None, int]) -> IdentityFact:
    """The fact for instances counted by their values (``None`` or an unknown tenant value: unknown)."""
    values: list[str] = []
    rows: list[int] = []
    key_values: list[str] = []
    unknown = found.pop(None, 0)
    for combination, count in found.items():
        if combination is None or combination[0] is None:
            unknown += count
            continue
        if len(values) < MAX_VALUES:
            values.append(combination[0])
            rows.append(count)
            key_values.extend(value or "" for value in combination[1:])
        else:
            unknown += count
    return IdentityFact(
        kind, columns[0], tuple(values), tuple(rows), unknown, columns[1:], tuple(key_values) if columns[1:] else ()
    )


class OrmIdentity:
    """The ORM listeners of one ``instrument()``: :meth:`register` / :meth:`remove`, and :meth:`fact_for` per
    statement."""

    def __init__(self, tables: TenantTables) -> None:
        self.tables = tables
        self._registered: list[tuple[Any, str, Any]] = []
        self._noting = 0
        """Connections with notes right now (a hint: 0 means no statement needs to look)."""
        self._lock = threading.Lock()
        self._attributes: dict[Any, tuple[int, _Tenant | None]] = {}
        """mapper -> (``tables.version``, its tenant attribute)."""

    # --- registration ---------------------------------------------------------------------------------------

    def register(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.orm import Mapper, Session

        wanted: list[tuple[Any, str, Any]] = [
            (Mapper, "before_update", self.before_update),
            (Mapper, "before_delete", self.before_delete),
            (Mapper, "after_update", self.after_update),
            (Mapper, "after_delete", self.after_delete),
            (Mapper, "after_insert", self.after_insert),
            (Session, "after_commit", self.after_commit),
            (Session, "do_orm_execute", self.do_orm_execute),
            (Session, "after_begin", self.after_begin),
            (Engine, "rollback", self.rollback),
            (Engine, "commit", self.end_transaction),
            (Engine, "rollback_savepoint", self.rollback_savepoint),
        ]
        for target, name, fn in wanted:
            event.listen(target, name, fn)
            self._registered.append((target, name, fn))

    def remove(self) -> None:
        from sqlalchemy import event

        while self._registered:
            target, name, fn = self._registered.pop()
            if event.contains(target, name, fn):
                event.remove(target, name, fn)

    # --- the tenant of an instance --------------------------------------------------------------------------

    def _tenant_attribute(self, mapper: Any) -> _Tenant | None:
        """Where ``mapper``'s instances keep their tenant: its first tenant table's column and the attribute mapped
        to it, then (with a tenant hierarchy) its further tenant-key columns that are mapped (cached per mapper
        until the tenant tables change)."""
        version = self.tables.version
        cached = self._attributes.get(mapper)
        if cached is not None and cached[0] == version:
            return cached[1]
        found: _Tenant | None = None
        for table in mapper.tables:
            column_name = self.tables.column_for(table.name)
            if column_name is None:
                continue
            pairs: list[tuple[str, str]] = []
            for name in (column_name, *self.tables.other_columns(table.name)):
                column = _column(table, name)
                prop = mapper._columntoproperty.get(column) if column is not None else None
                if prop is not None:
                    pairs.append((f"{table.name.lower()}.{name}", prop.key))
                elif name == column_name:
                    break  # the tenant column itself is not mapped: the tenant is unknown
            else:
                found = tuple(pairs)
            break
        if len(self._attributes) >= MAX_NOTED:
            self._attributes.clear()
        self._attributes[mapper] = (version, found)
        return found

    def _tenant_of(self, mapper: Any, state: Any) -> _Found | None:
        """``((table.column, ...), (canonical value or None, ...))`` of an instance; ``None``: no tenant attribute
        is mapped."""
        tenant = self._tenant_attribute(mapper)
        if tenant is None:
            return None
        labels = tuple(label for label, _ in tenant)
        values = tuple(_canonical_or_none(_raw_value(state, key)) for _, key in tenant)
        return (labels, values)

    def _keep(self, mapper: Any, state: Any) -> None:
        """Have SQLAlchemy keep the instance's tenant values through expiry."""
        tenant = self._tenant_attribute(mapper)
        if tenant is not None:
            kept = state._last_known_values
            for _, key in tenant:
                if not kept or key not in kept:
                    state._track_last_known_value(key)

    def after_commit(self, session: Any) -> None:
        """Runs before the commit expires the session's instances: keep their tenant values through it.

        Once per commit, over the identity map (a ``load`` listener would cost every loaded row, read-only requests
        included: about 2 us per row measured)."""
        with guard("ORM identity (after_commit)"):
            if not session.expire_on_commit:
                return
            for state in session.identity_map.all_states():
                if state._last_known_values is None:
                    self._keep(state.mapper, state)

    # --- flush ----------------------------------------------------------------------------------------------

    def before_update(self, mapper: Any, connection: Any, target: Any) -> None:
        with guard("ORM identity (before_update)"):
            self._note(mapper, connection, target)
            self._keep(mapper, _state(target))

    def before_delete(self, mapper: Any, connection: Any, target: Any) -> None:
        with guard("ORM identity (before_delete)"):
            self._note(mapper, connection, target)

    def after_update(self, mapper: Any, connection: Any, target: Any) -> None:
        with guard("ORM identity (after_update)"):
            state = _state(target)
            self._forget(mapper, connection, state)
            self._written(mapper, connection, state)

    def after_delete(self, mapper: Any, connection: Any, target: Any) -> None:
        with guard("ORM identity (after_delete)"):
            state = _state(target)
            self._forget(mapper, connection, state)
            written = connection.__dict__.get(_WRITTEN)
            if written:
                for key in self._keys(mapper, state):
                    written.pop(key, None)

    def after_insert(self, mapper: Any, connection: Any, target: Any) -> None:
        with guard("ORM identity (after_insert)"):
            state = _state(target)
            self._keep(mapper, state)
            self._written(mapper, connection, state)

    def _written(self, mapper: Any, connection: Any, state: Any) -> None:
        """Note the row a flush statement just inserted or updated, with the tenant value that statement wrote (the
        instance's current value: after the statement it is the database's)."""
        tenant = self._tenant_attribute(mapper)
        if tenant is None:
            return
        value = state.dict.get(tenant[0][1])
        if value is None:
            return
        written = connection.__dict__.get(_WRITTEN)
        if written is None:
            written = connection.__dict__[_WRITTEN] = {}
        if len(written) >= MAX_NOTED:
            return
        entry: _Found = (
            tuple(label for label, _ in tenant),
            (canonical(value), *(_canonical_or_none(state.dict.get(key)) for _, key in tenant[1:])),
        )
        for table in mapper.tables:
            if self.tables.column_for(table.name) is None:
                continue
            pks = mapper._pks_by_table.get(table)
            if pks:
                key = tuple(canonical(mapper._get_state_attr_by_column(state, state.dict, c)) for c in pks)
                written[(table.name.lower(), key)] = entry

    # --- the sessions and rows of a transaction -------------------------------------------------------------

    def after_begin(self, session: Any, transaction: Any, connection: Any) -> None:
        """A session's transaction uses ``connection``: by-key reads on it may find their row in that session."""
        try:
            sessions = connection.__dict__.get(_SESSIONS)
            if sessions is None:
                sessions = connection.__dict__[_SESSIONS] = []
            if len(sessions) < MAX_SESSIONS and not any(ref() is session for ref in sessions):
                sessions.append(weakref.ref(session))
        except DeliberateError:
            raise
        except Exception:
            log_internal_error("ORM identity (after_begin)")

    def end_transaction(self, connection: Any) -> None:
        """The connection's transaction is over: what it loaded or wrote is no longer this transaction's."""
        try:
            connection.__dict__.pop(_SESSIONS, None)
            connection.__dict__.pop(_WRITTEN, None)
        except DeliberateError:
            raise
        except Exception:
            log_internal_error("ORM identity (end of transaction)")

    def rollback_savepoint(self, connection: Any, name: Any, context: Any) -> None:
        """Rows written since the savepoint are undone: forget every written row (the sessions expire theirs)."""
        with guard("ORM identity (savepoint rollback)"):
            connection.__dict__.pop(_WRITTEN, None)

    def _keys(self, mapper: Any, state: Any) -> list[tuple[str, tuple[str, ...]]]:
        """``(table, primary key)`` of the instance in each tenant table of its mapper, as the flush binds them."""
        keys = []
        for table in mapper.tables:
            if self.tables.column_for(table.name) is None:
                continue
            pks = mapper._pks_by_table.get(table)
            if not pks:
                continue
            values = tuple(
                canonical(mapper._get_committed_state_attr_by_column(state, state.dict, column)) for column in pks
            )
            keys.append((table.name.lower(), values))
        return keys

    def _note(self, mapper: Any, connection: Any, target: Any) -> None:
        state = _state(target)
        tenant = self._tenant_of(mapper, state)
        if tenant is None:
            return
        notes = connection.__dict__.get(_NOTES)
        if notes is None:
            notes = connection.__dict__[_NOTES] = {}
            with self._lock:
                self._noting += 1
        if len(notes) >= MAX_NOTED:
            return
        for key in self._keys(mapper, state):
            notes[key] = tenant

    def _forget(self, mapper: Any, connection: Any, state: Any) -> None:
        notes = connection.__dict__.get(_NOTES)
        if not notes:
            return
        for key in self._keys(mapper, state):
            notes.pop(key, None)
        if not notes:
            self._drop(connection)

    def _drop(self, connection: Any) -> None:
        if connection.__dict__.pop(_NOTES, None) is not None:
            with self._lock:
                self._noting = max(0, self._noting - 1)

    def rollback(self, connection: Any) -> None:
        """A rolled-back flush (an error between ``before_update`` and ``after_update``) leaves no note behind, and
        the transaction's sessions and written rows are forgotten."""
        self.end_transaction(connection)
        if self._noting:
            with guard("ORM identity (rollback)"):
                self._drop(connection)

    def failed(self, connection: Any) -> None:
        """A statement failed on ``connection``: its flush is over."""
        if self._noting and connection is not None:
            with guard("ORM identity (failed statement)"):
                self._drop(connection)

    # --- loads ----------------------------------------------------------------------------------------------

    def do_orm_execute(self, orm_execute_state: Any) -> None:
        try:
            if not orm_execute_state.is_select:
                return
            options = orm_execute_state.load_options
            state = getattr(options, "_refresh_state", None)
            if state is None:
                state = options._lazy_loaded_from
            if state is not None:
                tenant = self._tenant_of(state.mapper, state)
                if tenant is None:
                    return
                columns, values = tenant
                orm_execute_state.update_execution_options(**{OPTION: _fact("load", columns, {values: 1})})
                return
            parameters = orm_execute_state.parameters
            if parameters and "primary_keys" in parameters and orm_execute_state.is_relationship_load:
                fact = self._selectin_fact(orm_execute_state, parameters["primary_keys"])
                if fact is not None:
                    orm_execute_state.update_execution_options(**{OPTION: fact})
                return
        except DeliberateError:
            raise
        except Exception:
            log_internal_error("ORM identity (do_orm_execute)")

    def _selectin_fact(self, orm_execute_state: Any, keys: Any) -> IdentityFact | None:
        """The parents of a selectin load, from the keys it binds (see the module docstring)."""
        from sqlalchemy.orm import RelationshipDirection
        from sqlalchemy.orm.base import NO_VALUE, instance_state

        path = orm_execute_state.loader_strategy_path
        prop = getattr(path, "prop", None)
        parent = getattr(getattr(path, "parent", None), "mapper", None)
        if prop is None or parent is None or not hasattr(prop, "direction") or not isinstance(keys, (list, tuple)):
            return None
        tenant = self._tenant_attribute(parent)
        if tenant is None:
            return None
        session = orm_execute_state.session
        attributes = tuple(key for _, key in tenant)
        counts: dict[_Values | None, int] = {}
        canonical_of: dict[Any, str | None] = {}

        def one(state: Any, attribute: str) -> str | None:
            committed = state.committed_state
            raw = committed[attribute] if attribute in committed else state.dict.get(attribute)
            if raw is None or raw is NO_VALUE:
                raw = _raw_value(state, attribute)
            try:
                return canonical_of[raw]
            except KeyError:
                value = canonical_of[raw] = None if raw is None else canonical(raw)
                return value
            except TypeError:  # an unhashable value
                return None if raw is None else canonical(raw)

        def count(state: Any) -> None:
            values = tuple(one(state, attribute) for attribute in attributes)
            counts[values] = counts.get(values, 0) + 1

        joined = bool(getattr(orm_execute_state.statement, "_setup_joins", ()))
        if prop.direction is RelationshipDirection.MANYTOONE and not joined:
            # the keys are the related rows' primary keys: the parents hold them as foreign keys
            wanted = {_key_tuple(key) for key in keys[:MAX_INSPECTED]}
            columns = _foreign_columns(prop)
            states = session.identity_map.all_states()
            if columns is None or len(states) > MAX_SCANNED:
                return None
            explained: set[tuple[Any, ...]] = set()
            for state in states:
                mapper = state.mapper
                if mapper is not parent and not mapper.isa(parent):
                    continue
                values = state.dict
                fk = tuple(values.get(column) for column in columns)
                if fk in wanted:
                    explained.add(fk)
                    count(state)
            counts[None] = counts.get(None, 0) + len(keys) - len(explained)
        else:
            # the keys are the parents' primary keys (the identity map holds states under (class, key, token))
            by_identity = getattr(session.identity_map, "_dict", None)
            identity_class = getattr(parent, "_identity_class", None)
            for key in keys[:MAX_INSPECTED]:
                if by_identity is not None and identity_class is not None:
                    state = by_identity.get((identity_class, _key_tuple(key), None))
                else:
                    instance = session.identity_map.get(parent.identity_key_from_primary_key(list(_key_tuple(key))))
                    state = None if instance is None else instance_state(instance)
                if state is None:
                    counts[None] = counts.get(None, 0) + 1
                else:
                    count(state)
            counts[None] = counts.get(None, 0) + max(0, len(keys) - MAX_INSPECTED)
        if not counts.get(None):
            counts.pop(None, None)
        return _fact("load", tuple(label for label, _ in tenant), counts)

    # --- per statement --------------------------------------------------------------------------------------

    def fact_for(self, conn: Any, context: Any) -> IdentityFact | None:
        """The identity fact of the statement ``context`` runs on ``conn``, or ``None``."""
        options = context.execution_options
        found = options.get(OPTION)
        if found is not None:
            return found  # type: ignore[no-any-return]
        invoked = getattr(context, "invoked_statement", None)
        if invoked is not None and getattr(invoked, "is_select", False):
            # A by-key ORM read of a row this transaction knows (see _known_row). Only asked for statements the
            # fact can decide (the caller checks for an unfiltered read), so filtered ORM reads pay nothing here.
            by_key = _by_key(invoked)
            return self._known_row(conn, *by_key) if by_key is not None else None
        if not self._noting:
            return None
        notes = conn.__dict__.get(_NOTES)
        if not notes:
            return None
        compiled = context.compiled
        statement = getattr(compiled, "statement", None)
        if statement is None or not getattr(statement, "is_dml", False):
            return None
        update = bool(getattr(statement, "is_update", False))
        if not update and not getattr(statement, "is_delete", False):
            return None
        table = getattr(statement, "table", None)
        primary_key = getattr(table, "primary_key", None)
        if primary_key is None or not len(primary_key):
            return None
        name = table.name.lower()  # type: ignore[union-attr]
        bind_names = [column._label if update else column.key for column in primary_key.columns]
        counts: dict[_Values | None, int] = {}
        columns: tuple[str, ...] = ("",)
        matched = 0
        parameter_sets = context.compiled_parameters or ()
        for parameters in parameter_sets[:MAX_INSPECTED]:
            key = (name, tuple(canonical(parameters.get(bind)) for bind in bind_names))
            note = notes.get(key)
            if note is None:
                counts[None] = counts.get(None, 0) + 1
                continue
            matched += 1
            columns, values = note
            counts[values] = counts.get(values, 0) + 1
        if not matched:
            return None  # not a statement of this flush: a Core statement that merely looks like one
        beyond = len(parameter_sets) - MAX_INSPECTED
        if beyond > 0:
            counts[None] = counts.get(None, 0) + beyond
        return _fact("write", columns, counts)

    def _known_row(self, conn: Any, mapper: Any, key: tuple[Any, ...]) -> IdentityFact | None:
        """The tenant of the row ``mapper`` has under primary key ``key``, as this transaction on ``conn`` knows it:
        written by a flush on it, or held by a session in it; ``None`` when nobody knows the row."""
        from sqlalchemy.orm.base import instance_state

        tenant = self._tenant_attribute(mapper)
        if tenant is None:
            return None
        written = conn.__dict__.get(_WRITTEN)
        if written:
            table = tenant[0][0].rsplit(".", 1)[0]
            entry = written.get((table, tuple(canonical(value) for value in key)))
            if entry is not None:
                return _fact("load", entry[0], {entry[1]: 1})
        sessions = conn.__dict__.get(_SESSIONS)
        if not sessions:
            return None
        identity = mapper.identity_key_from_primary_key(list(key))
        for ref in sessions:
            session = ref()
            if session is None:
                continue
            instance = session.identity_map.get(identity)
            if instance is None:
                continue
            state = instance_state(instance)
            if state.deleted or state.was_deleted:
                continue
            found = self._tenant_of(state.mapper, state)
            if found is not None and found[1][0] is not None:
                return _fact("load", found[0], {found[1]: 1})
        return None


def _raw_value(state: Any, key: str) -> Any:
    """The loaded value of attribute ``key`` (the committed one when a change is pending; the value kept through
    expiry), ``None`` when unknown (what :meth:`OrmIdentity._tenant_of` reads, without the canonical form)."""
    from sqlalchemy.orm.base import NO_VALUE

    committed = state.committed_state
    value = committed[key] if key in committed else state.dict.get(key, NO_VALUE)
    if value is NO_VALUE or value is None:
        kept = state._last_known_values
        value = kept.get(key, NO_VALUE) if kept else NO_VALUE
    return None if value is NO_VALUE else value


def _canonical_or_none(value: Any) -> str | None:
    return None if value is None else canonical(value)


def _key_tuple(key: Any) -> tuple[Any, ...]:
    return key if isinstance(key, tuple) else (key,)


def _foreign_columns(prop: Any) -> tuple[str, ...] | None:
    """The attribute keys of a many-to-one relationship's foreign key columns on the parent, in the order of the
    related mapper's primary key (the order a selectin load binds the keys in)."""
    local = {remote: local for local, remote in prop.local_remote_pairs}
    found: list[str] = []
    for column in prop.mapper.primary_key:
        parent_column = local.get(column)
        if parent_column is None:
            return None
        found.append(prop.parent.get_property_by_column(parent_column).key)
    return tuple(found)


_SUBQUERY_NAMES = frozenset({"select", "scalar_subquery", "exists", "subquery", "lateral", "cte", "textclause"})


@functools.cache
def _sql() -> tuple[Any, ...]:
    """What :func:`_by_key` uses of SQLAlchemy, imported once (an import statement per ORM statement costs)."""
    from sqlalchemy.sql import operators
    from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList
    from sqlalchemy.sql.visitors import iterate

    return operators, BinaryExpression, BindParameter, BooleanClauseList, iterate


def _by_key(statement: Any) -> tuple[Any, tuple[Any, ...]] | None:
    """``(mapper, primary key)`` when ``statement`` is an ORM ``SELECT`` of one mapped class, from its table alone
    (no join, no explicit FROM), whose top-level ``WHERE`` binds every primary key column by equality and holds no
    subquery: it reads that one row."""
    criteria = getattr(statement, "_where_criteria", None)
    if not criteria or getattr(statement, "_setup_joins", None) or getattr(statement, "_from_obj", None):
        return None
    operators, BinaryExpression, BindParameter, BooleanClauseList, iterate = _sql()  # noqa: N806
    bound: dict[Any, Any] = {}
    bound_columns: list[Any] = []
    pending = list(criteria)
    while pending:
        clause = pending.pop()
        if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
            pending.extend(clause.clauses)
            continue
        if isinstance(clause, BinaryExpression) and clause.operator is operators.eq:
            left, right = clause.left, clause.right
            if isinstance(left, BindParameter):
                left, right = right, left
            if isinstance(right, BindParameter) and not right.expanding and getattr(left, "table", None) is not None:
                bound.setdefault((left.table, left.name), right)
                bound_columns.append(left)
                continue
        if any(element.__visit_name__ in _SUBQUERY_NAMES for element in iterate(clause)):
            return None
    if not any(getattr(bind_column, "primary_key", False) for bind_column in bound_columns):
        return None  # most ORM statements: no primary key column bound, nothing more to look at
    mapper = None
    for raw in getattr(statement, "_raw_columns", ()):
        entity = getattr(raw, "_annotations", {}).get("parententity")
        if entity is None or getattr(entity, "is_aliased_class", True) or (mapper is not None and entity is not mapper):
            return None  # a column of no mapped class, an aliased class, or a second class
        mapper = entity
    if mapper is None:
        return None
    key = []
    for column in mapper.primary_key:
        bind = bound.get((column.table, column.name))
        if bind is None:
            return None
        value = bind.effective_value
        if value is None:
            return None
        key.append(value)
    return (mapper, tuple(key))


def _state(target: Any) -> Any:
    from sqlalchemy.orm.base import instance_state

    return instance_state(target)  # not per loaded row: load() reads the state itself


def _column(table: Any, name: str) -> Any:
    """The column ``name`` of ``table``, matched case-insensitively (tenant columns are recorded lower case)."""
    column = table.c.get(name)
    if column is not None:
        return column
    for candidate in table.c:
        if candidate.name.lower() == name:
            return candidate
    return None
