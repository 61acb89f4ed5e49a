"""A db span waiting for its result to close always ends: at uninstrument(), and at exit before the tracer provider
shuts down, whenever the provider was created (docs/row-counts.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sa_support import Traced, returned_rows

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]


def test_a_result_open_across_uninstrument_ends_its_span(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    tenantwatch = instrument(settings=Settings())
    engine = sa.create_engine(f"sqlite:///{sqlite_path}")
    with engine.connect() as conn:
        result = conn.execute(sa.text("SELECT id FROM items"))
        result.fetchmany(3)
        assert traced.db_spans("SELECT id FROM items") == []  # still open
        tenantwatch.uninstrument()
        (span,) = traced.db_spans("SELECT id FROM items")
        assert returned_rows(span) == 3
        result.fetchall()
    assert len(traced.db_spans("SELECT id FROM items")) == 1  # ended once
    engine.dispose()


_APP = """
import gc

import tenantwatch.instrumentation                    # imported first, as an application does
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
import sqlalchemy as sa
from tenantwatch.config import Settings


class Printing(SpanExporter):
    def __init__(self):
        self.down = False

    def export(self, spans):
        if self.down:
            print("LOST", *[s.name for s in spans], flush=True)
            return SpanExportResult.FAILURE
        for span in spans:
            print("EXPORTED", span.attributes.get("db.statement"), span.attributes.get("{rows}"), flush=True)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.down = True


provider = TracerProvider()                           # created after tenantwatch: its exit hook runs first
provider.add_span_processor(SimpleSpanProcessor(Printing()))
tenantwatch.instrumentation.TenantwatchSQLAlchemyInstrumentor().instrument(
    tracer_provider=provider, install_processor=False, settings=Settings(discover=False)
)
engine = sa.create_engine("sqlite:///{db}")
kept = engine.connect()
open_result = kept.execute(sa.text("SELECT id FROM items /* kept open */"))
open_result.fetchmany(2)
second = engine.connect()                            # stays checked out: nothing ends the abandoned span early
abandoned = second.execute(sa.text("SELECT id FROM items /* abandoned */"))
abandoned.fetchone()
del abandoned
gc.collect()
print("EXITING", flush=True)
"""


def test_spans_left_open_at_exit_are_exported_before_the_provider_shuts_down(tmp_path: Path) -> None:
    from sa_support import create_sqlite_database

    db = tmp_path / "app.db"
    create_sqlite_database(db)
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(_APP.format(db=db, rows=A.DB_RETURNED_ROWS)))
    done = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    after_exit = done.stdout.split("EXITING", 1)[1].splitlines()
    exported = sorted(line for line in after_exit if line.startswith("EXPORTED"))
    assert exported == [
        "EXPORTED SELECT id FROM items /* abandoned */ 1",
        "EXPORTED SELECT id FROM items /* kept open */ 2",
    ], done.stdout
    assert "LOST" not in done.stdout
    assert "Calling end() on an ended span" not in done.stderr
