"""Canonical tenant values on a real SQLAlchemy engine: one tenant, whatever form the application binds it in."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sa_support import Traced, attrs

from tenantwatch import attributes as A
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

ACME = uuid.UUID("2f1c6a8e-5b7d-4c1e-9a3f-0d2b4c6e8a10")
GLOBEX = uuid.UUID("9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")


def _uuid_database(path: Path) -> sa.engine.Engine:
    """SQLite with a tenant table keyed by UUIDs stored as ``uuid.hex``, as the app binds them on SQLite."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (id integer PRIMARY KEY, organization_id text, body text)"))
    engine.dispose()
    return sa.create_engine(f"sqlite:///{path}")


def _findings(traced: Traced) -> list[str]:
    found: list[str] = []
    for span in traced.db_spans("notes"):
        found += list(attrs(span).get(A.FINDINGS, ()))
    return found


def test_hex_bound_uuid_is_the_dashed_context_tenant(
    instrument: Callable[..., TenantwatchSQLAlchemyInstrumentor], traced: Traced, tmp_path: Path
) -> None:
    """The app binds ``uuid.hex`` on SQLite while the context holds the dashed form: no cross_tenant."""
    instrument(install_processor=True)
    engine = _uuid_database(tmp_path / "uuid.db")
    traced.clear()
    with tenant_context(str(ACME)), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO notes (organization_id, body) VALUES (:org, 'x')"), {"org": ACME.hex})
        conn.execute(sa.text("SELECT body FROM notes WHERE organization_id = :org"), {"org": ACME.hex}).all()
        conn.execute(sa.text("SELECT body FROM notes WHERE organization_id = :org"), {"org": ACME.bytes}).all()
        conn.execute(sa.text("SELECT body FROM notes WHERE organization_id = :org"), {"org": ACME.urn}).all()
    engine.dispose()
    assert len(traced.db_spans("notes")) == 4
    assert "cross_tenant" not in _findings(traced)


def test_another_uuid_in_any_form_is_cross_tenant(
    instrument: Callable[..., TenantwatchSQLAlchemyInstrumentor], traced: Traced, tmp_path: Path
) -> None:
    instrument(install_processor=True)
    engine = _uuid_database(tmp_path / "uuid.db")
    traced.clear()
    with tenant_context(str(ACME)), engine.begin() as conn:
        conn.execute(sa.text("SELECT body FROM notes WHERE organization_id = :org"), {"org": GLOBEX.hex}).all()
        conn.execute(sa.text("INSERT INTO notes (organization_id, body) VALUES (:org, 'x')"), {"org": GLOBEX.bytes})
    engine.dispose()
    spans = traced.db_spans("notes")
    assert [list(attrs(s).get(A.FINDINGS, ())) for s in spans] == [["cross_tenant"], ["cross_tenant"]]
    # 16 bytes are shown as the UUID they are, never as b'...'
    assert attrs(spans[1])[A.DB_WRITTEN_TENANT_VALUES] == (str(GLOBEX),)
