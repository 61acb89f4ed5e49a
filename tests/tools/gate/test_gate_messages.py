"""What a user of the pytest gate reads, from a newcomer's trial: a ``reproduce:`` line that, run, gives the gate's
rule and finding fingerprint (or says why explain cannot reproduce the finding), the db spans the gate judged in
the findings document, a loud failure when no database statement was judged at all, and baseline entries without a
reason named in the summary (``--tenantwatch-require-reasons`` fails on them)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from cli_support import run_cli
from tenantwatch.core.findings import Finding, finding_fingerprint
from tenantwatch.facts import SpanFacts
from tenantwatch.tools.gate import Baseline, BaselineEntry
from tenantwatch.tools.gate.pytest_plugin import explain_command
from tenantwatch.tools.groups import FindingGroups

pytest_plugins = ["pytester"]

# slow_query is off: the timing of a statement on a loaded CI machine is not what these tests are about.
RULES = "tenant_tables:\n  notes: organization_id\nrules:\n  slow_query:\n    enabled: false\n"

APP = """import sqlalchemy as sa
import tenantwatch

metadata = sa.MetaData()
notes = sa.Table("notes", metadata, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("organization_id", sa.String), sa.Column("body", sa.String))
STATEMENTS = []


def make_engine():
    engine = sa.create_engine("sqlite://")
    sa.event.listen(engine, "after_cursor_execute", lambda *args: STATEMENTS.append(args[2]))
    metadata.create_all(engine)
    with tenantwatch.unscoped("seeding the test database"), engine.begin() as conn:
        conn.execute(notes.insert(), [{"organization_id": "acme", "body": "a"},
                                      {"organization_id": "globex", "body": "g"}])
    return engine


def every_note(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(notes)).all()
"""

TESTS = """
import tenantwatch
import app


def test_every_note():
    engine = app.make_engine()
    with tenantwatch.tenant_context("acme"):
        assert len(app.every_note(engine)) == 2
"""

CONFTEST = """
import app


def pytest_sessionfinish(session):  # runs before the gate's (trylast): the statements SQLAlchemy executed
    with open("statements.txt", "w") as out:
        out.write(str(len(app.STATEMENTS)))
"""


def _project(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", rules=RULES)
    pytester.makepyfile(app=APP, test_notes=TESTS)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def _run(pytester: pytest.Pytester, *options: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tenantwatch-config=rules.yaml", *options)


def _summary(result: pytest.RunResult) -> str:
    text = result.stdout.str()
    assert "= tenantwatch =" in text, text
    return text[text.index("= tenantwatch =") :]


def _block(summary: str, rule: str) -> str:
    """The lines of the summary under the new finding of ``rule``."""
    start = summary.index(f" {rule} table=")
    following = re.search(r"\n  [A-Z]+ \w+ table=", summary[start + 1 :])
    return summary[start : start + 1 + following.start()] if following else summary[start:]


def test_reproduce_lines_give_the_gates_rule_and_fingerprint_or_say_why_they_cannot(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester)
    findings = pytester.path / "findings.json"
    result = _run(pytester, "--tenantwatch", f"--tenantwatch-findings={findings}")
    summary = _summary(result)
    assert result.ret == 1, summary
    document = json.loads(findings.read_text())
    groups = {g.rule: g for g in FindingGroups.from_json(document)}
    assert {"missing_tenant_filter", "cross_tenant_read"} <= set(groups), summary

    # the document counts the db spans the gate judged: one per statement SQLAlchemy executed, not 0
    executed = int((pytester.path / "statements.txt").read_text())
    assert executed > 0 and document["spans"] == executed

    # cross_tenant_read judged the rows read: no explain command (it would give another finding), but rerun + ids
    block = _block(summary, "cross_tenant_read")
    crossed = groups["cross_tenant_read"]
    assert "reproduce: rerun the test: tenantwatch explain cannot reproduce cross_tenant_read from the statement " in (
        " ".join(block.split())
    )
    assert f"finding fingerprint {crossed.fingerprint}" in block
    assert "tenantwatch explain 'SELECT" not in block

    # missing_tenant_filter: the printed command, run, gives the same rule and the same finding fingerprint
    block = _block(summary, "missing_tenant_filter")
    command = re.search(r"reproduce: (tenantwatch explain .*)", block)
    assert command is not None, block
    words = shlex.split(command.group(1))
    monkeypatch.chdir(pytester.path)
    capsys.readouterr()  # pytester's own output
    code, out, err = run_cli(capsys, monkeypatch, *words[1:], "--json")
    assert code == 1, out + err
    explained = [finding for line in out.splitlines() for finding in json.loads(line)["findings"]]
    missing = groups["missing_tenant_filter"]
    assert (missing.rule, missing.fingerprint) in {(f["rule"], f["fingerprint"]) for f in explained}


def test_no_database_statement_judged_fails_loudly_unless_allowed(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", rules=RULES)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(  # stdlib sqlite3: no instrumentation tenantwatch knows traces it
        test_raw="""
        import sqlite3

        def test_raw_sqlite():
            conn = sqlite3.connect(":memory:")
            conn.execute("CREATE TABLE notes (id INTEGER, organization_id TEXT)")
            assert conn.execute("SELECT * FROM notes").fetchall() == []
        """
    )
    findings = pytester.path / "findings.json"
    result = _run(pytester, "--tenantwatch", f"--tenantwatch-findings={findings}")
    result.assert_outcomes(passed=1)
    summary = _summary(result)
    assert result.ret == 1, summary
    assert "tenantwatch gate FAILED: 0 new" in summary
    assert "tenantwatch gate FAILED: no database statements were judged" in summary
    assert "pip install 'tenantwatch[sqlalchemy]'" in " ".join(summary.split())
    assert json.loads(findings.read_text())["spans"] == 0

    allowed = _run(pytester, "--tenantwatch", "--tenantwatch-allow-empty")
    summary = _summary(allowed)
    assert allowed.ret == 0, summary
    assert "tenantwatch gate passed: 0 new" in summary
    assert "warning: no database statements were judged" in summary


def test_baseline_entries_without_a_reason_are_named_and_fail_only_when_required(pytester: pytest.Pytester) -> None:
    _project(pytester)
    findings = pytester.path / "findings.json"
    assert _run(pytester, "--tenantwatch", f"--tenantwatch-findings={findings}").ret == 1
    groups = FindingGroups.from_json(json.loads(findings.read_text()))
    entries = tuple(BaselineEntry.from_group(g, root=pytester.path, reason="") for g in groups)
    assert len(entries) >= 2
    Baseline(entries).write(pytester.path / "b.yaml")

    passed = _run(pytester, "--tenantwatch=b.yaml")
    summary = _summary(passed)
    assert passed.ret == 0, summary
    assert f"tenantwatch gate passed: 0 new (0 at warning or above), {len(entries)} known" in summary
    assert (
        f"{len(entries)} baseline entries have no reason: review them; `tenantwatch baseline --check` fails on them"
    ) in summary
    assert "--tenantwatch-require-reasons (ini tenantwatch_require_reasons) fails the gate" in summary

    required = _run(pytester, "--tenantwatch=b.yaml", "--tenantwatch-require-reasons")
    summary = _summary(required)
    assert required.ret == 1, summary
    assert f"tenantwatch gate FAILED: --tenantwatch-require-reasons: {len(entries)} baseline entries have no" in (
        summary
    )


def test_explain_rejects_a_malformed_code_location(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(capsys, monkeypatch, "explain", "SELECT 1", "--code-location", "app.py:twelve")
    assert code == 2
    assert "--code-location 'app.py:twelve': expected PATH:LINE:FUNCTION" in err


def test_a_cross_tenant_reproduce_line_asks_for_the_bound_values_and_then_gives_the_gates_fingerprint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement's bound values are not recorded: without them explain cannot see the other tenant's value."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    statement = "SELECT notes.body FROM notes WHERE notes.organization_id = ?"
    code, out, _ = run_cli(capsys, monkeypatch, "explain", statement, "--json", "--rules", str(rules))
    fingerprint = json.loads(out)["fingerprint"]
    facts = SpanFacts(
        statement=statement,
        statement_fingerprint=fingerprint,
        tenant_id="acme",
        tenant_values=("globex",),
        code_filepath=str(tmp_path / "app.py"),
        code_lineno=7,
        code_function="notes_of",
    )
    finding = Finding("cross_tenant", "critical", "another tenant", finding_fingerprint("cross_tenant", facts))
    command = explain_command(finding, facts, str(rules))
    assert command is not None
    assert command.endswith("  # add the bound values as --param (its tenant values were globex)")
    words = shlex.split(command, comments=True)
    code, out, err = run_cli(capsys, monkeypatch, *words[1:], "--param", "globex", "--json")
    assert code == 1, out + err
    assert ("cross_tenant", finding.fingerprint) in {(f["rule"], f["fingerprint"]) for f in json.loads(out)["findings"]}
