"""The code location of a statement is the application's frame, not a third-party library's: the finding (and its
fingerprint) points at the line to fix."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from sa_support import Traced, attrs, sqlite_engine

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor
from tenantwatch.instrumentation._code_location import set_skip_prefixes

Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]
LIBRARY = '''
def load_all(conn, sql):
    """Like a validation library whose attribute access fires a lazy load."""
    return conn.execute(__import__("sqlalchemy").text(sql)).all()
'''


def _package(root: Path, name: str) -> ModuleType:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(textwrap.dedent(LIBRARY))
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(root))


@pytest.fixture
def third_party(tmp_path: Path) -> Iterator[ModuleType]:
    """A package installed in a site-packages directory on sys.path (not the interpreter's own)."""
    module = _package(tmp_path / "env" / "lib" / "site-packages", "fakevalidator")
    yield module
    sys.modules.pop("fakevalidator", None)


@pytest.fixture
def vendored(tmp_path: Path) -> Iterator[ModuleType]:
    module = _package(tmp_path / "vendor", "vendoredlib")
    yield module
    sys.modules.pop("vendoredlib", None)
    set_skip_prefixes(())


def _first_call_site(conn: sa.Connection, library: ModuleType) -> int:
    library.load_all(conn, "SELECT name FROM items")
    return sys._getframe().f_lineno - 1


def _second_call_site(conn: sa.Connection, library: ModuleType) -> int:
    library.load_all(conn, "SELECT name FROM items")
    return sys._getframe().f_lineno - 1


def test_a_frame_in_site_packages_is_skipped(
    instrument: Instrument, traced: Traced, sqlite_path: Path, third_party: ModuleType
) -> None:
    instrument(install_processor=True)
    engine = sqlite_engine(sqlite_path)
    with tenant_context("1"), engine.connect() as conn:
        first = _first_call_site(conn, third_party)
        second = _second_call_site(conn, third_party)
    engine.dispose()
    spans = traced.db_spans("SELECT name FROM items")
    assert [(attrs(s)[A.CODE_FILEPATH], attrs(s)[A.CODE_LINENO]) for s in spans] == [
        (__file__, first),
        (__file__, second),
    ]
    assert [attrs(s)[A.CODE_FUNCTION] for s in spans] == ["_first_call_site", "_second_call_site"]
    # two bugs in the application, two fingerprints, although both statements ran inside the same library line
    fingerprints = {event.attributes[A.FINGERPRINT] for s in spans for event in s.events if event.attributes}
    assert len(fingerprints) == 2


def test_configured_prefixes_are_skipped(
    instrument: Instrument, traced: Traced, sqlite_path: Path, vendored: ModuleType, tmp_path: Path
) -> None:
    settings = load_settings(environ={"TENANTWATCH_CODE_LOCATION_SKIP": str(tmp_path / "vendor")})
    assert settings.code_location.skip_prefixes == (str(tmp_path / "vendor"),)
    instrument(settings=settings)
    engine = sqlite_engine(sqlite_path)
    with tenant_context("1"), engine.connect() as conn:
        line = _first_call_site(conn, vendored)
    engine.dispose()
    (span,) = traced.db_spans("SELECT name FROM items")
    assert (attrs(span)[A.CODE_FILEPATH], attrs(span)[A.CODE_LINENO]) == (__file__, line)
