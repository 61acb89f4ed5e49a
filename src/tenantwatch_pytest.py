"""The ``pytest11`` entry point of tenantwatch's CI gate: only the command-line and ini options.

Kept outside the ``tenantwatch`` package on purpose: importing a submodule of ``tenantwatch`` imports the package
(the OpenTelemetry SDK, pydantic, ...), and a plugin that is installed but not asked for must cost nothing. Only with
``--tenantwatch`` (or ``tenantwatch = true`` in the ini file) is :mod:`tenantwatch.tools.gate.pytest_plugin`
imported and the gate registered.
"""

from __future__ import annotations

from typing import Final

import pytest

__all__ = ["pytest_addoption", "pytest_configure"]

DEFAULT_BASELINE: Final = "tenantwatch-baseline.yaml"
_NO_VALUE: Final = "\x00default"
"""``--tenantwatch`` given without ``=BASELINE``."""
SEVERITY_CHOICES: Final = ("info", "warning", "high", "critical")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tenantwatch", "tenantwatch: fail the run on new tenant-isolation findings")
    group.addoption(
        "--tenantwatch",
        nargs="?",
        const=_NO_VALUE,
        default=None,
        metavar="BASELINE",
        help="run the tests with tenantwatch on and fail the session on findings not in BASELINE (write it as "
        f"--tenantwatch=FILE; default: the tenantwatch_baseline ini option, else {DEFAULT_BASELINE} if it exists)",
    )
    group.addoption(
        "--tenantwatch-raise",
        action="store_true",
        default=None,
        help="also fail each test that ran a statement with a finding not in the baseline (at that test)",
    )
    group.addoption("--tenantwatch-sarif", metavar="FILE", help="write the findings as SARIF 2.1.0 (baselineState)")
    group.addoption(
        "--tenantwatch-findings",
        metavar="FILE",
        help="write the grouped findings as JSON (the input of `tenantwatch baseline`)",
    )
    group.addoption(
        "--tenantwatch-config", metavar="RULES", help="rules file, when the application does not configure tenantwatch"
    )
    group.addoption(
        "--tenantwatch-fail-on",
        choices=SEVERITY_CHOICES,
        default=None,
        help="lowest severity of a new finding that fails the run (default: warning)",
    )
    group.addoption(
        "--tenantwatch-require-reasons",
        action="store_true",
        default=None,
        help="fail the session while a baseline entry has an empty reason (by default the summary only names them)",
    )
    group.addoption(
        "--tenantwatch-allow-empty",
        action="store_true",
        default=None,
        help="pass even when no database statement was judged (by default the gate fails: no db instrumentation?)",
    )
    parser.addini("tenantwatch", "run the tenantwatch gate without --tenantwatch", type="bool", default=False)
    parser.addini("tenantwatch_baseline", "baseline file of the tenantwatch gate (relative to the ini file)")
    parser.addini("tenantwatch_raise", "fail each test that ran a new finding", type="bool", default=False)
    parser.addini("tenantwatch_sarif", "write the gate's findings as SARIF to this file")
    parser.addini("tenantwatch_findings", "write the gate's grouped findings as JSON to this file")
    parser.addini("tenantwatch_config", "rules file of the tenantwatch gate")
    parser.addini(
        "tenantwatch_require_reasons", "fail while a baseline entry has an empty reason", type="bool", default=False
    )
    parser.addini(
        "tenantwatch_allow_empty", "pass even when no database statement was judged", type="bool", default=False
    )
    parser.addini("tenantwatch_fail_on", "lowest severity of a new finding that fails the run (default: warning)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("tenantwatch") is None and not config.getini("tenantwatch"):
        return  # not asked for: nothing imported, nothing registered
    from tenantwatch.tools.gate.pytest_plugin import register

    register(config)
