"""The pytest plugin on a tiny SQLite app, each run in a pytester subprocess: off unless asked (nothing imported),
on with tenantwatch configured by the gate or by the app (whose exporters keep working), ini options,
--tenantwatch-fail-on, and loud usage errors."""

from __future__ import annotations

import json

import pytest

from tenantwatch.tools.gate import Baseline, BaselineEntry
from tenantwatch.tools.groups import FindingGroups

pytest_plugins = ["pytester"]

# slow_query is off: the timing of a statement on a loaded CI machine is not what these tests are about.
RULES = "tenant_tables:\n  notes: organization_id\nrules:\n  slow_query:\n    enabled: false\n"

APP = """import sqlalchemy as sa

metadata = sa.MetaData()
notes = sa.Table("notes", metadata, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("organization_id", sa.String), sa.Column("body", sa.String))


def make_engine():
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    return engine


def every_note(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(notes.c.body)).all()


def own_notes(engine, org):
    with engine.connect() as conn:
        return conn.execute(sa.select(notes.c.body).where(notes.c.organization_id == org)).all()
"""

UNSCOPED_LINE = APP.splitlines().index("        return conn.execute(sa.select(notes.c.body)).all()") + 1
SCOPED_LINE = UNSCOPED_LINE + 5

TESTS = """
import tenantwatch
import app


def test_scoped():
    engine = app.make_engine()
    with tenantwatch.tenant_context("acme"):
        app.own_notes(engine, "acme")


def test_unscoped():
    engine = app.make_engine()
    with tenantwatch.tenant_context("acme"):
        app.every_note(engine)


def test_no_tenant():
    app.own_notes(app.make_engine(), "acme")
"""


def _project(pytester: pytest.Pytester, ini: str = "") -> None:
    pytester.makefile(".yaml", rules=RULES)
    pytester.makepyfile(app=APP, test_notes=TESTS)
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini}")


def _run(pytester: pytest.Pytester, *options: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *options)


def test_without_the_option_the_plugin_does_nothing_and_imports_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_quiet="""
        import sys

        def test_nothing_of_tenantwatch_is_loaded(request):
            assert "tenantwatch" not in sys.modules
            assert not request.config.pluginmanager.has_plugin("tenantwatch-gate")
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    assert "= tenantwatch =" not in result.stdout.str()
    assert "--tenantwatch-raise" in pytester.runpytest_inprocess("--help").stdout.str()  # declared all the same


def test_the_gate_configures_tenantwatch_itself_and_fails_on_new_findings(pytester: pytest.Pytester) -> None:
    _project(pytester)
    findings = pytester.path / "findings.json"
    result = _run(pytester, "--tenantwatch", "--tenantwatch-config=rules.yaml", f"--tenantwatch-findings={findings}")
    result.assert_outcomes(passed=3)
    assert result.ret == 1
    text = result.stdout.str()
    assert "tenantwatch gate FAILED: 2 new (2 at warning or above), 0 known" in text
    result.stdout.fnmatch_lines(
        [
            f"*CRITICAL missing_tenant_filter table=notes at app.py:{UNSCOPED_LINE} in every_note (1x*",
            "*test: test_notes.py::test_unscoped",
            "*reproduce: tenantwatch explain 'SELECT notes.body FROM notes' --tenant acme "
            f"--code-location *app.py:{UNSCOPED_LINE}:every_note --rules *rules.yaml",
        ]
    )
    result.stdout.fnmatch_lines([f"*HIGH no_tenant_context table=notes at app.py:{SCOPED_LINE} in own_notes*"])
    assert "test_scoped" not in text
    document = FindingGroups.from_json(json.loads(findings.read_text()))
    assert sorted(g.rule for g in document) == ["missing_tenant_filter", "no_tenant_context"]

    # accept the critical one (ini options this time); the high one stays new, below --tenantwatch-fail-on critical
    critical = next(g for g in document if g.rule == "missing_tenant_filter")
    Baseline((BaselineEntry.from_group(critical, root=pytester.path, reason="ok"),)).write(pytester.path / "b.yaml")
    _project(pytester, ini="tenantwatch = true\ntenantwatch_baseline = b.yaml\ntenantwatch_config = rules.yaml\n")
    result = _run(pytester, "--tenantwatch-fail-on=critical")
    assert result.ret == 0, result.stdout.str()
    assert "tenantwatch gate passed: 1 new (0 at critical or above), 1 known, 0 moved, 0 stale" in result.stdout.str()
    assert _run(pytester).ret == 1  # the ini's fail-on is the default, warning: the high one fails


def test_an_app_that_configures_tenantwatch_itself_keeps_its_exporter_and_the_gate_hears_it(
    pytester: pytest.Pytester,
) -> None:
    _project(pytester)
    pytester.makeconftest(
        """
        import tenantwatch
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        EXPORTED = InMemorySpanExporter()
        HANDLE = tenantwatch.configure(
            rules_file="rules.yaml", exporters=False, span_exporter=SimpleSpanProcessor(EXPORTED), set_global=False
        )
        """
    )
    pytester.makepyfile(
        test_exported="""
        from conftest import EXPORTED

        def test_the_apps_exporter_got_the_finding():
            spans = [s for s in EXPORTED.get_finished_spans() if "tenantwatch.findings" in (s.attributes or {})]
            assert {r for s in spans for r in s.attributes["tenantwatch.findings"]} >= {"missing_tenant_filter"}
        """
    )
    findings = pytester.path / "findings.json"
    result = _run(pytester, "test_notes.py", "test_exported.py", "--tenantwatch", f"--tenantwatch-findings={findings}")
    result.assert_outcomes(passed=4)
    assert result.ret == 1
    assert "tenantwatch gate FAILED: 2 new" in result.stdout.str()
    assert "note:" not in result.stdout.str()
    # the gate hears the app's findings, not its spans: no "spans": 0 next to the findings, but why
    document = json.loads(findings.read_text())
    assert "spans" not in document and document["findings"] == 2
    assert document["spans_note"].startswith("spans not counted: the application configured tenantwatch itself")
    assert len(FindingGroups.from_json(document)) == 2  # still a findings document `tenantwatch baseline` reads
    # A rules file given to the gate cannot change the app's own processors: the summary says so.
    result = _run(pytester, "test_notes.py", "test_exported.py", "--tenantwatch", "--tenantwatch-config=rules.yaml")
    assert result.ret == 1
    assert "the application configured tenantwatch itself: its processors judge with their own settings" in (
        result.stdout.str()
    )


@pytest.mark.parametrize(
    ("options", "baseline", "message"),
    [
        (["--tenantwatch=missing.yaml"], None, "missing.yaml does not exist: run once with --tenantwatch-findings"),
        (["--tenantwatch", "sub"], None, "sub is a directory, not a baseline file; if it is a test path, put"),
        (["--tenantwatch=sub"], None, "sub is a directory, not a baseline file"),
        (
            ["--tenantwatch", "test_one.py"],
            None,
            "--tenantwatch test_one.py: that looks like a test path, not a baseline",
        ),
        (["--tenantwatch=/dev/null"], None, "baseline /dev/null is not a regular file (a device or a pipe)"),
        (["--tenantwatch=b.yaml"], "findings:\n- rule: x\n", "b.yaml:2:3: findings.0: fingerprint is required"),
        (["--tenantwatch", "--tenantwatch-config=nope.yaml"], None, "nope.yaml: cannot read rules file"),
    ],
)
def test_usage_errors_stop_the_run_loudly(
    pytester: pytest.Pytester, options: list[str], baseline: str | None, message: str
) -> None:
    pytester.mkdir("sub")
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    if baseline is not None:
        (pytester.path / "b.yaml").write_text(baseline)
    result = pytester.runpytest_inprocess(*options)  # stops before tenantwatch is configured: safe in process
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
