"""Settings precedence (argument > env > rules file > default) and rules-file validation."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tenantwatch.config import ConfigError, Settings, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.mode == "monitor"
    assert settings.tenant_columns == ("organization_id", "tenant_id")
    assert settings.large_result_threshold == 1000
    assert settings.slow_query_ms == 500
    assert settings.severity("missing_tenant_filter") == "critical"
    assert settings.severity("large_result") == "warning"


def test_file_then_env_then_argument(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
mode: enforce
tenant_columns: [org_id]
rules:
  large_result: {threshold: 200, per_table: {Audit_Log: 5000}}
  slow_query: {threshold_ms: 250, severity: high}
""",
    )
    from_file = load_settings(path, environ={})
    assert from_file.mode == "enforce"
    assert from_file.tenant_columns == ("org_id",)
    assert from_file.large_result_threshold_for("audit_log") == 5000
    assert from_file.large_result_threshold_for("other") == 200
    assert from_file.severity("slow_query") == "high"

    env = {"TENANTWATCH_RULES_FILE": str(path), "TENANTWATCH_MODE": "off", "TENANTWATCH_SLOW_QUERY_MS": "900"}
    from_env = load_settings(environ=env)
    assert from_env.mode == "off"
    assert from_env.slow_query_ms == 900
    assert from_env.severity("slow_query") == "high"  # file value not overridden by env survives the merge

    explicit = load_settings(environ=env, mode="monitor", tenant_columns=["tenant_id"])
    assert explicit.mode == "monitor"
    assert explicit.tenant_columns == ("tenant_id",)


def test_bad_env_value_warns_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tenantwatch.config"):
        settings = load_settings(environ={"TENANTWATCH_MODE": "loud", "TENANTWATCH_LARGE_RESULT_ROWS": "-3"})
    assert settings.mode == "monitor"
    assert settings.large_result_threshold == 1000
    assert "TENANTWATCH_MODE" in caplog.text
    assert "TENANTWATCH_LARGE_RESULT_ROWS" in caplog.text


def test_bad_rules_file_names_every_field_path(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
mode: sometimes
rules:
  large_result: {threshold: 0}
  made_up_rule: {enabled: true}
suppressions:
  - {reason: "no matcher"}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert str(path) in message
    assert "mode:" in message
    assert "rules" in message and "made_up_rule" in message
    assert "suppressions.0" in message


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", environ={})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(_write(tmp_path, "rules: [unclosed"), environ={})
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(_write(tmp_path, "- just\n- a list\n"), environ={})


def test_bad_explicit_argument_raises_with_field_name() -> None:
    with pytest.raises(ConfigError, match="tenant_label_cap"):
        load_settings(environ={}, tenant_label_cap=-1)
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(environ={}, no_such_field=1)


def test_suppression_matching() -> None:
    settings = Settings.model_validate(
        {
            "suppressions": [
                {"rule": "missing_tenant_filter", "table": "Plans"},
                {"route": "/admin/*"},
                {"fingerprint": "abc123"},
            ]
        }
    )
    by_table, by_route, by_fp = settings.suppressions
    assert by_table.matches(rule="missing_tenant_filter", fingerprint="x", table="plans", route=None)
    assert not by_table.matches(rule="cross_tenant", fingerprint="x", table="plans", route=None)
    assert by_route.matches(rule="cross_tenant", fingerprint="x", table=None, route="/admin/users")
    assert not by_route.matches(rule="cross_tenant", fingerprint="x", table=None, route="/api/admin")
    assert by_fp.matches(rule="slow_query", fingerprint="abc123", table=None, route=None)
