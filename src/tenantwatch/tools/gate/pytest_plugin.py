"""The pytest gate: run an application's own tests with tenantwatch on and fail the session on new findings.

``pytest --tenantwatch[=BASELINE]`` (the options are declared by the ``pytest11`` entry point module
:mod:`tenantwatch_pytest`, which imports this module only when the gate is asked for):

* every finding of every tenantwatch span processor of the process is heard, whoever created it: the processors
  announce themselves (:func:`tenantwatch.core.handover.watch`), so an application that calls
  :func:`tenantwatch.configure` itself (in a conftest, a fixture or at import) is covered, with its own settings and
  exporters left alone. Until one exists the gate configures tenantwatch itself at session start, with no exporter
  (``configure(exporters=False, set_global=False)``: nothing is sent anywhere) and ``--tenantwatch-config`` as the
  rules file; when the application then configures its own, the gate's SQLAlchemy instrumentation steps aside so
  the application's takes over;
* findings are grouped by finding fingerprint (:class:`tenantwatch.tools.groups.FindingGroups`), with the tests that
  produced each one and a ``tenantwatch explain`` line that reproduces it;
* at the end they are compared with the baseline (:func:`tenantwatch.tools.gate.compare.compare`): a new finding at
  or above ``--tenantwatch-fail-on`` (default ``warning``) makes the session fail (exit code 1) and the
  ``tenantwatch`` summary section lists it; known findings are counted, moved and stale entries listed, baseline
  entries without a reason named (``--tenantwatch-require-reasons`` fails on them);
* a run in which the gate's own configuration judged no database statement at all fails too (no db
  instrumentation, e.g. the ``sqlalchemy`` extra missing), unless ``--tenantwatch-allow-empty``; the findings
  document counts the db statement spans judged (``"spans"``), or says why it cannot (``"spans_note"``);
* a ``reproduce:`` line per new finding: the ``tenantwatch explain`` command giving the same rule and finding
  fingerprint (``--code-location``), or, for rules explain cannot judge from one statement, why, and the
  fingerprints to match the finding by.

``--tenantwatch-raise`` also fails, at once, each test whose setup, call or teardown ran a new finding. It fails the
test from the finding listener's record rather than switching tenantwatch to enforce mode, because enforce mode (a)
blocks by its own rule list and knows nothing of the baseline, so accepted findings would break tests, (b) cannot
block the rules judged on rows already read (``cross_tenant_read``, ``large_result``) and (c) raises inside the
application, where its own error handling (an HTTP 500, a retry) can swallow or change the failure. The listener
runs as the statement's span ends, so the failing test is exactly the one that ran the statement, and the failure
names the statement's code location.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from opentelemetry.sdk.trace import SpanProcessor

from tenantwatch.attributes import DB_QUERY_TEXT, DB_STATEMENT, SEVERITIES
from tenantwatch.core.findings import Finding, severity_rank
from tenantwatch.core.handover import FindingSource, watch
from tenantwatch.environment_variables import TENANTWATCH_RULES_FILE
from tenantwatch.facts import SpanFacts
from tenantwatch.tools.gate.baseline import Baseline, BaselineError, relative_path
from tenantwatch.tools.gate.compare import DEFAULT_FAIL_ON, GateResult, compare, render
from tenantwatch.tools.groups import FindingGroup, FindingGroups

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from tenantwatch._configure import TenantwatchHandle

__all__ = ["Gate", "explain_command", "register"]

PLUGIN_NAME: Final = "tenantwatch-gate"
MAX_TESTS: Final = 5
"""Tests named per finding group (the first ones that produced it)."""
OUTSIDE_TESTS: Final = "(outside any test: collection or session start)"
NOTHING_JUDGED: Final = (
    "no database statements were judged: tenantwatch traced no db span during the tests. Is a database "
    "instrumentation active? (SQLAlchemy needs `pip install 'tenantwatch[sqlalchemy]'`; other drivers need their "
    "OpenTelemetry instrumentation on tenantwatch's tracer provider.) --tenantwatch-allow-empty passes anyway"
)
SPANS_NOT_COUNTED: Final = (
    "spans not counted: the application configured tenantwatch itself, and the gate hears its processors' findings, "
    "not their spans"
)


class _DbSpanCounter(SpanProcessor):
    """Counts the db statement spans (those with statement text: not the instrumentation's ``connect`` spans) that end
    on the gate's own tracer provider: two attribute lookups per ended span, a lock per db span."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        if DB_QUERY_TEXT in attributes or DB_STATEMENT in attributes:
            with self._lock:  # spans end on the application's threads too
                self.count += 1


def register(config: pytest.Config) -> None:
    """Build the gate from the options and register it (called by :mod:`tenantwatch_pytest`)."""
    if config.pluginmanager.has_plugin(PLUGIN_NAME):
        return
    gate = Gate(config)
    config.pluginmanager.register(gate, PLUGIN_NAME)
    config.add_cleanup(gate.close)


NOT_FROM_THE_STATEMENT: Final[dict[str, str]] = {
    "cross_tenant_read": "it judged the rows the statement returned (their tenant values)",
    "stale_tenant_context": "it compared the statement's tenant with its request's tenant or the connection's RLS "
    "setting",
    "injection_signal": "it compared the statement with the values of its HTTP request",
    "test_data": "it judged the values bound to the statement",
}
"""Statement rules ``tenantwatch explain`` cannot judge from the statement and its context alone: what they need."""


def explain_command(finding: Finding, facts: SpanFacts, rules_file: str | None) -> str | None:
    """The ``tenantwatch explain`` command line that judges the finding's statement again, in the same context and at
    the same code location (so explain prints the same rule and finding fingerprint); None when explain cannot
    reproduce the finding from one statement (:func:`not_reproducible`)."""
    if not facts.statement or not_reproducible(finding.rule) is not None:
        return None
    words = ["tenantwatch", "explain", _one_line(facts.statement)]
    if facts.tenant_id:
        words += ["--tenant", facts.tenant_id]
    for key, value in facts.tenant_keys:
        words += ["--key", f"{key}={value}"]
    if facts.role:
        words += ["--role", facts.role]
    if facts.user_id:
        words += ["--user", facts.user_id]
    if facts.unscoped_reason:
        words += ["--unscoped", facts.unscoped_reason]
    if facts.route:
        words += ["--route", facts.route]
    if finding.rule == "large_result" and facts.returned_rows is not None:
        words += ["--returned-rows", str(facts.returned_rows)]
    if finding.rule == "slow_query" and facts.duration_ms is not None:
        words += ["--duration-ms", f"{facts.duration_ms:.1f}"]
    if facts.code_location:
        words += ["--code-location", facts.code_location]
    if rules_file:
        words += ["--rules", rules_file]
    command = shlex.join(words)
    if finding.rule == "cross_tenant" and _PLACEHOLDER.search(facts.statement) and facts.tenant_values:
        values = ", ".join(facts.tenant_values)  # bound values are not recorded; the tenant values judged are
        command += f"  # add the bound values as --param (its tenant values were {values})"
    return command


_PLACEHOLDER: Final = re.compile(r"\?|%s|%\(\w+\)s|(?<![:\w]):[A-Za-z_]\w*|\$\d+")
"""A bound-parameter placeholder of any paramstyle (``?``, ``%s``, ``%(name)s``, ``:name``, ``$1``)."""


def not_reproducible(rule: str) -> str | None:
    """Why ``tenantwatch explain`` cannot reproduce a finding of ``rule`` from its statement, or None if it can."""
    if rule in NOT_FROM_THE_STATEMENT:
        return NOT_FROM_THE_STATEMENT[rule]
    from tenantwatch.rules import CATALOGUE

    known = next((candidate for candidate in CATALOGUE if candidate.id == rule), None)
    if known is not None and "statement" not in known.meta.stages:
        return f"it judged {' and '.join(_STAGE_WORDS.get(s, s) for s in known.meta.stages)}, not one statement"
    return None


_STAGE_WORDS: Final = {
    "request": "a whole request",
    "stream": "a window of statements over time",
    "findings": "a window of other findings",
}


def _one_line(statement: str) -> str:
    """The statement on one line (SQLAlchemy breaks lines before FROM, WHERE, ...), so the command is one line."""
    return re.sub(r"[ \t]*(?:\r?\n)+[ \t]*", " ", statement).strip()


def _looks_like_a_test_path(value: str) -> bool:
    return "::" in value or value.endswith(".py") or Path(value).is_dir()


class Gate:
    """The registered plugin object: hears every finding, fails what the baseline does not accept."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.root = Path(config.rootpath).resolve()
        self._invocation = Path(config.invocation_params.dir)
        self._ini_dir = Path(config.inipath).parent if config.inipath is not None else self.root
        self.raise_at_test = bool(config.getoption("tenantwatch_raise") or config.getini("tenantwatch_raise"))
        self.require_reasons = bool(
            config.getoption("tenantwatch_require_reasons") or config.getini("tenantwatch_require_reasons")
        )
        self.allow_empty = bool(config.getoption("tenantwatch_allow_empty") or config.getini("tenantwatch_allow_empty"))
        self.fail_on = self._fail_on()
        self.sarif_path = self._path("tenantwatch_sarif", "tenantwatch_sarif")
        self.findings_path = self._path("tenantwatch_findings", "tenantwatch_findings")
        rules = self._path("tenantwatch_config", "tenantwatch_config")
        self.rules_file = str(rules) if rules is not None else os.environ.get(TENANTWATCH_RULES_FILE) or None
        self.baseline = self._baseline()
        self.groups = FindingGroups()
        self.tests: dict[str, list[str]] = {}
        self.explain: dict[str, str | None] = {}
        self.result: GateResult | None = None
        self._lock = threading.Lock()
        self._current: str | None = None
        self._phase: list[str] = []
        self._sources: list[FindingSource] = []
        self._own: TenantwatchHandle | None = None
        self._counter: _DbSpanCounter | None = None
        """Counts the db spans of the gate's own configuration (None: the application configured tenantwatch)."""
        self._foreign = False
        """A processor the gate did not create exists: its spans are not counted."""
        self.empty = False
        """No database statement was judged (the gate failed for it unless ``--tenantwatch-allow-empty``)."""
        self.notes: list[str] = []
        """Said in the terminal summary: what the gate could not do as asked."""
        self._unwatch = watch(self._on_source)

    # --- options --------------------------------------------------------------------------------------------

    def _fail_on(self) -> str:
        value = self.config.getoption("tenantwatch_fail_on") or self.config.getini("tenantwatch_fail_on")
        value = str(value or DEFAULT_FAIL_ON).strip().lower()
        if value not in SEVERITIES:
            raise pytest.UsageError(f"tenantwatch_fail_on: expected one of {', '.join(SEVERITIES)}, got {value!r}")
        return value

    def _path(self, option: str, ini: str) -> Path | None:
        given = self.config.getoption(option)
        if given:
            return (self._invocation / str(given)).resolve()
        configured = self.config.getini(ini)
        return (self._ini_dir / str(configured)).resolve() if configured else None

    def _baseline(self) -> Baseline | None:
        from tenantwatch_pytest import _NO_VALUE, DEFAULT_BASELINE

        given = self.config.getoption("tenantwatch")
        if given is not None and given != _NO_VALUE:
            path = (self._invocation / str(given)).resolve()
            if path.is_dir():
                raise pytest.UsageError(
                    f"--tenantwatch {given}: {path} is a directory, not a baseline file; if it is a test path, put "
                    "--tenantwatch after the test paths or write --tenantwatch=BASELINE"
                )
            if _looks_like_a_test_path(str(given)):
                raise pytest.UsageError(
                    f"--tenantwatch {given}: that looks like a test path, not a baseline file; write "
                    "--tenantwatch=BASELINE, or put --tenantwatch after the test paths"
                )
        elif self.config.getini("tenantwatch_baseline"):
            path = (self._ini_dir / str(self.config.getini("tenantwatch_baseline"))).resolve()
        else:
            default = self.root / DEFAULT_BASELINE
            if not default.is_file():
                return None
            path = default
        if path.exists() and not path.is_file():
            raise pytest.UsageError(
                f"tenantwatch baseline {path} is not a regular file (a device or a pipe): give the baseline YAML file "
                f"(written by `tenantwatch baseline`), or --tenantwatch alone to gate without a baseline"
            )
        if not path.is_file():
            raise pytest.UsageError(
                f"tenantwatch baseline {path} does not exist: run once with --tenantwatch-findings FILE and write it "
                "with `tenantwatch baseline FILE --baseline BASELINE`, or run --tenantwatch without a baseline"
            )
        try:
            return Baseline.load(path)
        except BaselineError as error:
            raise pytest.UsageError(f"tenantwatch baseline: {error}") from None

    # --- hearing findings -----------------------------------------------------------------------------------

    def _on_source(self, source: FindingSource) -> None:
        """A tenantwatch span processor exists (now or from before): listen to it; the application's own takes over
        from the gate's."""
        source.add_finding_listener(self._on_finding)
        with self._lock:
            self._sources.append(source)
        own = self._own
        if own is None or source is not own.processor:
            self._foreign = True
        if own is not None and source is not own.processor and own.instrumentor is not None:
            instrumentor, own.instrumentor = own.instrumentor, None
            instrumentor.uninstrument()  # the application's configure() instruments SQLAlchemy next

    def _on_finding(self, finding: Finding, facts: SpanFacts, span: ReadableSpan) -> None:
        context = span.context
        trace_id = f"{context.trace_id:032x}" if context is not None else None
        service = span.resource.attributes.get("service.name") if span.resource is not None else None
        with self._lock:
            self.groups.add(
                finding,
                facts,
                time_ns=span.end_time,
                trace_id=trace_id,
                service=str(service) if service is not None else None,
            )
            test = self._current or OUTSIDE_TESTS
            tests = self.tests.setdefault(finding.fingerprint, [])
            if test not in tests and len(tests) < MAX_TESTS:
                tests.append(test)
            if finding.fingerprint not in self.explain:
                self.explain[finding.fingerprint] = explain_command(finding, facts, self.rules_file)
            if self._current is not None:
                self._phase.append(finding.fingerprint)

    # --- pytest hooks ---------------------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        import tenantwatch
        from tenantwatch.config import ConfigError, load_settings

        if self.rules_file is not None:  # a bad rules file stops the run whoever configures tenantwatch
            try:
                load_settings(self.rules_file)
            except ConfigError as error:
                raise pytest.UsageError(f"tenantwatch: {error}") from None
        with self._lock:
            configured = bool(self._sources)
        if configured:
            if self.rules_file is not None:
                self.notes.append(
                    f"the application configured tenantwatch itself: its processors judge with their own settings, "
                    f"not with {self.rules_file}"
                )
            return
        try:
            self._own = tenantwatch.configure(exporters=False, set_global=False, rules_file=self.rules_file)
        except ConfigError as error:
            raise pytest.UsageError(f"tenantwatch: {error}") from None
        if "sqlalchemy" not in tenantwatch.instrumented():
            why = tenantwatch.missing_instrumentation("sqlalchemy")
            if why is not None:  # configure() warned once, but pytest captures warnings: say it in the summary
                self.notes.append(f"no database instrumentation is active: {why}")
        self._foreign = False  # the sources heard so far are the gate's own
        self._counter = _DbSpanCounter()
        self._own.tracer_provider.add_span_processor(self._counter)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        self._current = item.nodeid
        try:
            return (yield)
        finally:
            self._current = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._phase_gate(item, "setup"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._phase_gate(item, "call"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._phase_gate(item, "teardown"))

    def _phase_gate(self, item: pytest.Item, phase: str) -> Generator[None, None, None]:
        with self._lock:
            self._phase = []
        yield  # a test that fails by itself fails as it is
        if not self.raise_at_test:
            return
        with self._lock:
            fingerprints, self._phase = list(dict.fromkeys(self._phase)), []
            groups = [g for g in (self.groups.get(fp) for fp in fingerprints) if g is not None]
        new = compare(groups, self.baseline, root=self.root, fail_on=self.fail_on).failing
        if new:
            lines = [f"tenantwatch: {len(new)} finding(s) not in the baseline in the {phase} of {item.nodeid}:"]
            for group in new:
                lines.extend(self._describe(group))
            pytest.fail("\n".join(lines), pytrace=False)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        with self._lock:
            result = compare(self.groups, self.baseline, root=self.root, fail_on=self.fail_on)
        self.result = result
        spans = self.spans_judged()
        tests_ran = session.testscollected > 0 and not session.config.option.collectonly
        self.empty = spans == 0 and tests_ran
        if self.findings_path is not None:
            import json

            document = self.groups.to_json()
            if spans is None:
                del document["spans"]
                document["spans_note"] = SPANS_NOT_COUNTED
            else:
                document["spans"] = spans
            self.findings_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        if self.sarif_path is not None:
            self._write_sarif(result, self.sarif_path)
        if (result.failed or self.other_failures()) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def other_failures(self) -> list[str]:
        """Why the gate fails besides new findings: nothing judged, or entries without a reason (when required)."""
        failures = []
        if self.empty and not self.allow_empty:
            failures.append(NOTHING_JUDGED)
        result = self.result
        if self.require_reasons and result is not None and result.unreviewed:
            failures.append(
                f"--tenantwatch-require-reasons: {len(result.unreviewed)} baseline entries have no reason "
                "(write why each is acceptable)"
            )
        return failures

    def spans_judged(self) -> int | None:
        """Db spans the gate's own configuration judged; None when the application configured tenantwatch itself
        (the gate hears that processor's findings, not its spans)."""
        counter = self._counter
        if counter is None or self._foreign:
            return None
        return counter.count

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        result = self.result
        if result is None:
            return
        failures = self.other_failures()
        markup = {"red": True, "bold": True} if result.failed or failures else {"green": True}
        terminalreporter.section("tenantwatch", sep="=", **markup)
        for note in self.notes:
            terminalreporter.line(f"tenantwatch: note: {note}", yellow=True)
        for line in render(result, details=self._details, also_failed=failures).splitlines():
            terminalreporter.line(line)
        if self.empty and self.allow_empty:
            terminalreporter.line(f"tenantwatch: warning: {NOTHING_JUDGED} (passed: --tenantwatch-allow-empty)")
        if result.unreviewed and not self.require_reasons:
            terminalreporter.line(
                "tenantwatch: note: --tenantwatch-require-reasons (ini tenantwatch_require_reasons) fails the gate on "
                "baseline entries without a reason",
                yellow=True,
            )
        for label, path in (("findings", self.findings_path), ("SARIF", self.sarif_path)):
            if path is not None:
                terminalreporter.line(f"tenantwatch {label} written to {path}")

    # --- output ---------------------------------------------------------------------------------------------

    def _details(self, group: FindingGroup) -> list[str]:
        tests = self.tests.get(group.fingerprint, [])
        lines = [f"test: {test}" for test in tests]
        if group.count and len(tests) == MAX_TESTS:
            lines.append("test: ... (first tests only)")
        lines.append(f"reproduce: {self._reproduce(group)}")
        return lines

    def _reproduce(self, group: FindingGroup) -> str:
        command = self.explain.get(group.fingerprint)
        if command:
            return command
        why = not_reproducible(group.rule)
        if why is None:
            return "(no statement recorded: rerun the test)"
        return (
            f"rerun the test: tenantwatch explain cannot reproduce {group.rule} from the statement alone ({why}); "
            f"match it by rule {group.rule}, finding fingerprint {group.fingerprint}"
            + (f", statement fingerprint {group.statement_fingerprint}" if group.statement_fingerprint else "")
        )

    def _describe(self, group: FindingGroup) -> list[str]:
        place = relative_path(group.code_filepath, self.root) or "(no code location)"
        where = f"{place}:{group.code_lineno or 0}" + (f" in {group.code_function}" if group.code_function else "")
        lines = [f"  {group.severity.upper()} {group.rule} at {where}: {group.message}"]
        lines.append(f"    reproduce: {self._reproduce(group)}")
        return lines

    def _write_sarif(self, result: GateResult, path: Path) -> None:
        import json

        from tenantwatch.tools.sarif import sarif_document

        states = result.baseline_state()
        absent: list[FindingGroup] = []
        for entry in result.stale:  # SARIF's "absent": in the baseline, not seen in this run
            absent.append(
                FindingGroup(
                    fingerprint=entry.fingerprint,
                    rule=entry.rule,
                    severity=entry.severity or "warning",
                    message=f"baseline entry not seen in this run (fixed? remove it): {entry.reason or 'no reason'}",
                    table=entry.table,
                    statement=entry.statement,
                    statement_fingerprint=entry.statement_fingerprint,
                    code_filepath=str(self.root / entry.path) if entry.path else None,
                    code_lineno=entry.line,
                    code_function=entry.function,
                )
            )
            states[entry.fingerprint] = "absent"
        groups = sorted([*self.groups, *absent], key=lambda g: (-severity_rank(g.severity), g.rule, g.fingerprint))
        document = sarif_document(groups, root=self.root, baseline_state=states)
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    def close(self) -> None:
        self._unwatch()
        own, self._own = self._own, None
        if own is not None:
            own.shutdown(2_000)
