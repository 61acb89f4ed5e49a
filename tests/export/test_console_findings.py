"""One readable line per finding for local runs: configure(console=True) or TENANTWATCH_CONSOLE=1."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tenantwatch._configure import configure
from tenantwatch.context import tenant_context


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TENANTWATCH_CONSOLE", "TENANTWATCH_RULES_FILE", "TENANTWATCH_MODE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE objectives (id INTEGER PRIMARY KEY, organization_id TEXT, t TEXT)"))
        connection.execute(sa.text("INSERT INTO objectives (organization_id, t) VALUES ('acme', 'a'), ('globex', 'b')"))
    yield engine
    engine.dispose()


def _sinks() -> dict[str, Any]:
    return {
        "span_exporter": InMemorySpanExporter(),
        "metric_reader": InMemoryMetricReader(),
        "log_exporter": InMemoryLogRecordExporter(),
    }


def list_everyone(engine: sa.Engine) -> None:
    with tenant_context("acme"), engine.connect() as connection:
        connection.execute(sa.text("SELECT id,\n  t FROM objectives")).fetchall()
        connection.execute(sa.text("SELECT id FROM objectives WHERE organization_id = :o"), {"o": "acme"}).fetchall()


def test_console_prints_one_line_per_finding(engine: sa.Engine) -> None:
    stream = io.StringIO()
    handle = configure(set_global=False, engine=engine, console=stream, **_sinks())
    try:
        list_everyone(engine)
    finally:
        handle.shutdown(1000)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines  # the filtered query is fine
    line = lines[0]
    assert line.startswith("tenantwatch: CRITICAL missing_tenant_filter table=objectives tenant=acme at ")
    assert "test_console_findings.py:" in line
    assert " in list_everyone: SELECT reads objectives without a tenant filter in scope main" in line  # the message
    assert line.endswith("; context tenant 'acme' | SELECT id, t FROM objectives")  # normalized onto one line


def test_inline_literals_of_a_write_are_not_shown(engine: sa.Engine) -> None:
    stream = io.StringIO()
    handle = configure(set_global=False, engine=engine, console=stream, **_sinks())
    try:
        with tenant_context("acme"), engine.begin() as connection:
            connection.execute(sa.text("UPDATE objectives SET t = 'secret-plan' WHERE id = 2"))
    finally:
        handle.shutdown(1000)
    out = stream.getvalue()
    assert "unscoped_write" in out
    assert "secret-plan" not in out
    assert "UPDATE objectives SET t = $1 WHERE id = $2" in out


def test_environment_variable_turns_it_on_for_standard_error(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TENANTWATCH_CONSOLE", "1")
    handle = configure(set_global=False, engine=engine, **_sinks())
    try:
        list_everyone(engine)
    finally:
        handle.shutdown(1000)
    captured = capsys.readouterr()
    assert "tenantwatch: CRITICAL missing_tenant_filter table=objectives" in captured.err
    assert "missing_tenant_filter" not in captured.out


def test_argument_wins_over_the_variable(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("TENANTWATCH_CONSOLE", "1")
    handle = configure(set_global=False, engine=engine, console=False, **_sinks())
    try:
        list_everyone(engine)
    finally:
        handle.shutdown(1000)
    assert "missing_tenant_filter" not in capsys.readouterr().err


def test_bad_variable_warns_and_stays_off(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    monkeypatch.setenv("TENANTWATCH_CONSOLE", "loud")
    with caplog.at_level(logging.WARNING):
        handle = configure(set_global=False, engine=engine, **_sinks())
    try:
        list_everyone(engine)
    finally:
        handle.shutdown(1000)
    assert "ignoring TENANTWATCH_CONSOLE='loud'" in caplog.text
    assert "missing_tenant_filter" not in capsys.readouterr().err


def test_a_finding_about_a_finer_key_names_the_key_and_the_context_team(engine: sa.Engine) -> None:
    """A team's cross_tenant must not read like an organization problem: the key, the context team and the
    message are on the line."""
    from tenantwatch.config import load_settings

    settings = load_settings(
        environ={},
        tenant_keys={
            "organization": {"columns": ["organization_id"], "root": "organizations"},
            "team": {"columns": ["team_id"], "parent": "organization", "root": "teams"},
        },
        tenant_tables={"projects": "team_id"},
    )
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE projects (id INTEGER PRIMARY KEY, team_id TEXT)"))
    stream = io.StringIO()
    handle = configure(set_global=False, engine=engine, console=stream, settings=settings, **_sinks())
    try:
        with tenant_context("acme", team="t-1"), engine.connect() as connection:
            connection.execute(sa.text("SELECT id FROM projects WHERE team_id = :t"), {"t": "t-2"}).fetchall()
    finally:
        handle.shutdown(1000)
    (line,) = stream.getvalue().splitlines()
    assert line.startswith("tenantwatch: CRITICAL cross_tenant key=team table=projects tenant=acme team=t-1 at ")
    assert ": SELECT on projects filters on team 't-2' but the context team is 't-1' | SELECT id FROM projects" in line


def test_repeated_violations_for_the_tenant_and_for_the_user_are_two_different_lines(engine: sa.Engine) -> None:
    stream = io.StringIO()
    handle = configure(set_global=False, engine=engine, console=stream, **_sinks())
    try:
        with tenant_context("acme", user_id="u-1"), engine.connect() as connection:
            for _ in range(5):
                connection.execute(sa.text("SELECT id FROM objectives")).fetchall()
    finally:
        handle.shutdown(1000)
    repeated = [line for line in stream.getvalue().splitlines() if " repeated_violations " in line]
    assert len(repeated) == 2, repeated
    assert "tenant 'acme' has 5 high or critical findings" in repeated[0]
    assert "user 'u-1' has 5 high or critical findings" in repeated[1]
