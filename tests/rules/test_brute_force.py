"""brute_force: auth failures of one client (counted by the ASGI middleware) against the threshold, judged on the
server span; end to end through the middleware in tests/instrumentation/asgi/test_middleware.py."""

from __future__ import annotations

from typing import Any

import pytest
from rule_support import DEFAULTS

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.core.findings import key_fingerprint
from tenantwatch.processors.requests import judge_request, request_facts


def judged(attributes: dict[str, Any], **settings: Any) -> list[tuple[str, str]]:
    chosen = load_settings(environ={}, **settings) if settings else DEFAULTS
    return [(f.rule, f.message) for f in judge_request(attributes, request_facts(attributes), chosen)]


@pytest.mark.parametrize(("failures", "fires"), [(9, False), (10, True), (25, True)])
def test_fires_at_the_default_threshold_of_ten(failures: int, fires: bool) -> None:
    found = judged({A.HTTP_AUTH_FAILURES: failures, A.CLIENT_ADDRESS: "10.0.0.7"})
    assert [rule for rule, _ in found] == (["brute_force"] if fires else [])


def test_message_names_client_count_window_and_threshold() -> None:
    ((_, message),) = judged({A.HTTP_AUTH_FAILURES: 12, A.CLIENT_ADDRESS: "10.0.0.7"})
    assert message == "client 10.0.0.7 had 12 auth failures within 60 s (threshold 10)"


def test_threshold_window_severity_and_switch_come_from_the_rules_section() -> None:
    attributes = {A.HTTP_AUTH_FAILURES: 3, A.CLIENT_ADDRESS: "10.0.0.7"}
    rules = {"brute_force": {"threshold": 3, "window_seconds": 30, "severity": "critical"}}
    settings = load_settings(environ={}, rules=rules)
    (finding,) = judge_request(attributes, request_facts(attributes), settings)
    assert (finding.severity, finding.fingerprint) == ("critical", key_fingerprint("brute_force", "10.0.0.7"))
    assert "within 30 s (threshold 3)" in finding.message
    assert judged(attributes, rules={"brute_force": {"threshold": 3, "enabled": False}}) == []


@pytest.mark.parametrize("odd", [True, "12", 12.0, None])
def test_odd_attribute_types_are_no_count(odd: object) -> None:
    assert judged({A.HTTP_AUTH_FAILURES: odd}) == []
