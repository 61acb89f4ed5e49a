"""The CI gate on the example OKR app (SQLite), through pytest itself: a small test suite of the app, run by pytester
in a subprocess with ``--tenantwatch``, with a planted unscoped query in a module of its own.

The app calls ``tenantwatch.configure()`` itself (``create_app``), so the gate hears the app's own processor. One
story, in order: the planted query fails the gate (exit code, location, test, an explain line that reproduces it);
``tenantwatch baseline`` accepts it; a moved line is "moved"; the fixed query leaves a stale entry. And
``--tenantwatch-raise`` fails exactly the test that ran the statement.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tenantwatch.cli import main
from tenantwatch.tools.groups import FindingGroups

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "examples" / "rules.yaml"
TENANTWATCH = [sys.executable, "-m", "tenantwatch.cli"]

CONFTEST = f"""
import sys
sys.path.insert(0, {str(REPO)!r})

import pytest
import tenantwatch
from examples.okr_app.main import create_app, okr_settings
from examples.okr_app.seed import Tenant

TENANTS = (Tenant(1, "acme", 30), Tenant(2, "globex", 20))

@pytest.fixture(scope="session")
def okr(tmp_path_factory):
    settings = okr_settings({str(RULES)!r}, tenant_keys=None, environ={{}})
    with tenantwatch.unscoped("seeding the test database"):  # the gate watches the fixtures too
        app, handle, engine = create_app(
            f"sqlite:///{{tmp_path_factory.mktemp('okr')}}/okr.db",
            tenants=TENANTS, settings=settings, exporters=False, set_global=False,
        )
    yield app, engine
    handle.shutdown()
    engine.dispose()
"""

PLANTED = """from sqlalchemy import select

from examples.okr_app.models import Objective


def titles(engine, organization_id):
    with engine.connect() as conn:
        return conn.execute(select(Objective.title)).all()
"""
FIXED = PLANTED.replace(
    "select(Objective.title)", "select(Objective.title).where(Objective.organization_id == organization_id)"
)
MOVED = PLANTED.replace(
    "    with engine.connect()", "    # every objective of the organization\n    with engine.connect()"
)
PLANTED_LINE = PLANTED.splitlines().index("        return conn.execute(select(Objective.title)).all()") + 1

TESTS = """
import httpx
import tenantwatch

import planted
from examples.okr_app import auth
from examples.okr_app.seed import user_id
from conftest import TENANTS

ACME = TENANTS[0]


async def test_list_objectives_through_the_app(okr):
    app, _ = okr
    token = auth.make_token(ACME.id, user_id(ACME, "member"), "member", team=ACME.team("growth"))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://okr") as http:
        response = await http.get("/objectives?limit=5", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_report_titles(okr):
    _, engine = okr
    with tenantwatch.tenant_context(ACME.id.hex, team=ACME.team("growth").hex):
        assert planted.titles(engine, ACME.id)
"""


def _suite(pytester: pytest.Pytester, planted: str = PLANTED) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(planted=planted, test_app=TESTS)
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")


@pytest.fixture(autouse=True)
def _no_slow_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's 500 ms slow_query threshold is timing, not isolation: a loaded CI machine must not add a finding
    (the environment outranks the rules file, and the pytester subprocesses inherit it)."""
    monkeypatch.setenv("TENANTWATCH_SLOW_QUERY_MS", "600000")


def _gate(pytester: pytest.Pytester, *options: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--tenantwatch-config={RULES}", *options)


def _tenantwatch(*words: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TENANTWATCH, *words], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _baseline_cli(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str]:
    code = main(["baseline", *words])
    return code, capsys.readouterr().out


def _summary(result: pytest.RunResult) -> str:
    text = result.stdout.str()
    assert "= tenantwatch =" in text, text
    return text[text.index("= tenantwatch =") :]


def test_the_gate_fails_on_the_planted_query_then_the_baseline_accepts_moves_and_goes_stale(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    _suite(pytester)
    findings, sarif = pytester.path / "findings.json", pytester.path / "gate.sarif"

    first = _gate(pytester, "--tenantwatch", f"--tenantwatch-findings={findings}", f"--tenantwatch-sarif={sarif}")
    summary = _summary(first)
    assert first.ret == 1, summary
    first.assert_outcomes(passed=2)  # the tests pass; the gate fails the session
    assert "tenantwatch gate FAILED: 1 new (1 at warning or above)" in summary
    assert f"CRITICAL missing_tenant_filter table=objectives at planted.py:{PLANTED_LINE} in titles" in summary
    assert "test: test_app.py::test_report_titles" in summary
    assert "test_list_objectives_through_the_app" not in summary  # the app's own scoped query is clean

    # the explain line reproduces the finding
    command = re.search(r"reproduce: (tenantwatch explain .*)", summary)
    assert command is not None, summary
    words = shlex.split(command.group(1))
    assert words[-2:] == ["--rules", str(RULES)]
    explained = _tenantwatch(*words[1:], "--json", cwd=pytester.path)
    assert explained.returncode == 1, explained.stdout + explained.stderr
    (planted,) = FindingGroups.from_json(json.loads(findings.read_text()))
    found = {
        (f["rule"], f["fingerprint"]) for line in explained.stdout.splitlines() for f in json.loads(line)["findings"]
    }
    assert ("missing_tenant_filter", planted.fingerprint) in found  # the gate's rule and finding fingerprint

    # SARIF: one new result at the planted line
    document = json.loads(sarif.read_text())
    assert document["version"] == "2.1.0" and document["$schema"].endswith("sarif-2.1.0.json")
    (run,) = document["runs"]
    assert run["tool"]["driver"]["name"] == "tenantwatch"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["missing_tenant_filter"]
    (result,) = run["results"]
    assert result["ruleId"] == "missing_tenant_filter" and result["level"] == "error"
    assert result["baselineState"] == "new"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "planted.py"
    assert location["region"]["startLine"] == PLANTED_LINE

    # tenantwatch baseline writes the entry with an empty reason; --check fails until it has one
    baseline = pytester.path / "tenantwatch-baseline.yaml"
    code, out = _baseline_cli(capsys, str(findings), "--baseline", str(baseline), "--root", str(pytester.path))
    assert code == 0 and "1 added" in out
    text = baseline.read_text()
    assert "path: planted.py" in text and f"line: {PLANTED_LINE}" in text and "reason: ''" in text
    code, out = _baseline_cli(capsys, "--check", "--baseline", str(baseline))
    assert code == 1 and "1 of 1 entries have an empty reason" in out
    baseline.write_text(text.replace("reason: ''", "reason: 'report over every tenant, reviewed in TICKET-7'"))
    assert _baseline_cli(capsys, "--check", "--baseline", str(baseline))[0] == 0

    # green with the baseline (the default file name at the root is picked up)
    green = _gate(pytester, "--tenantwatch")
    assert green.ret == 0, _summary(green)
    assert "tenantwatch gate passed: 0 new (0 at warning or above), 1 known, 0 moved, 0 stale" in _summary(green)

    # the same finding one line lower: moved, still accepted
    pytester.makepyfile(planted=MOVED)
    moved = _gate(pytester, f"--tenantwatch={baseline.name}")
    summary = _summary(moved)
    assert moved.ret == 0, summary
    assert "0 new (0 at warning or above), 0 known, 1 moved, 0 stale" in summary
    assert f"missing_tenant_filter planted.py:{PLANTED_LINE} in titles -> line {PLANTED_LINE + 1}" in summary

    # fixed: the entry is stale
    pytester.makepyfile(planted=FIXED)
    fixed = _gate(pytester, f"--tenantwatch={baseline.name}")
    summary = _summary(fixed)
    assert fixed.ret == 0, summary
    assert "0 new (0 at warning or above), 0 known, 0 moved, 1 stale" in summary
    assert f"missing_tenant_filter at planted.py:{PLANTED_LINE} in titles" in summary.split("stale baseline")[1]


def test_raise_fails_exactly_the_test_that_ran_the_statement(pytester: pytest.Pytester) -> None:
    _suite(pytester)
    result = _gate(pytester, "--tenantwatch", "--tenantwatch-raise", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "PASSED test_app.py::test_list_objectives_through_the_app",
            "FAILED test_app.py::test_report_titles*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*tenantwatch: 1 finding(s) not in the baseline in the call of test_app.py::test_report_titles:*",
            f"*CRITICAL missing_tenant_filter at planted.py:{PLANTED_LINE} in titles*",
        ]
    )
