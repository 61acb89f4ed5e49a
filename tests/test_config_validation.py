"""Rules-file validation that a user notices: per-rule keys, unknown ids with a suggestion, where in the file a problem
is, and environment values that would switch monitoring off or trust every peer."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tenantwatch.config import RULE_IDS, RULE_OPTIONS, ConfigError, RulesSettings, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    return info.value


def test_every_rule_has_an_options_entry_naming_real_fields() -> None:
    assert set(RULE_OPTIONS) == set(RULE_IDS)
    for rule, options in RULE_OPTIONS.items():
        model = RulesSettings.model_fields[rule].annotation
        assert model is not None and set(options) <= set(model.model_fields)


def test_a_key_of_another_rule_is_an_error_naming_rule_and_key(tmp_path: Path) -> None:
    """``slow_query: {threshold: 5}`` used to read as OK with the threshold unchanged."""
    error = _error(_write(tmp_path, "rules:\n  slow_query: {threshold: 5}\n"))
    message = str(error)
    assert "rules.slow_query.threshold" in message
    assert "'threshold' is not a slow_query setting" in message
    assert "threshold_ms" in message  # what slow_query does take
    (issue,) = error.issues
    assert (issue.path, issue.line, issue.column) == ("rules.slow_query.threshold", 2, 16)


@pytest.mark.parametrize(
    ("rule", "options"),
    [
        ("large_result", {"threshold": 10, "per_table": {"audit": 5}}),
        ("slow_query", {"threshold_ms": 100}),
        ("query_rate_spike", {"threshold": 5, "window_seconds": 5, "deviations": 2, "warmup": 1}),
        ("off_hours_write", {"start": "20:00", "end": "07:00", "timezone": "Europe/Berlin", "enabled": True}),
        ("missing_tenant_filter", {"severity": "high", "enabled": False}),
    ],
)
def test_the_keys_a_rule_uses_are_accepted(tmp_path: Path, rule: str, options: dict[str, object]) -> None:
    import yaml

    settings = load_settings(_write(tmp_path, yaml.safe_dump({"rules": {rule: options}})), environ={})
    assert settings.rule(rule).model_dump(exclude_unset=True) == {
        k: tuple(v) if isinstance(v, list) else v for k, v in options.items()
    }


def test_explicit_argument_with_a_foreign_key_raises_with_the_field_name() -> None:
    with pytest.raises(ConfigError, match=r"rules\.superuser_write\.threshold_ms"):
        load_settings(environ={}, rules={"superuser_write": {"threshold_ms": 3}})


def test_unknown_rule_id_lists_the_valid_ones_and_the_closest(tmp_path: Path) -> None:
    message = str(_error(_write(tmp_path, "rules:\n  slow_qeury: {threshold_ms: 5}\n")))
    assert "rules.slow_qeury: unknown rule 'slow_qeury' (did you mean 'slow_query'?)" in message
    assert all(rule in message for rule in RULE_IDS)
    assert "Extra inputs are not permitted" not in message


def test_unknown_keys_get_the_closest_valid_key(tmp_path: Path) -> None:
    error = _error(
        _write(
            tmp_path,
            "tenant_colums: [org]\nhttp:\n  trusted_proxy: [10.0.0.0/8]\nrules:\n  large_result: {thresold: 1}\n",
        )
    )
    by_path = {issue.path: issue for issue in error.issues}
    assert "did you mean 'tenant_columns'?" in by_path["tenant_colums"].message
    assert "did you mean 'trusted_proxies'?" in by_path["http.trusted_proxy"].message
    assert "did you mean 'threshold'?" in by_path["rules.large_result.thresold"].message
    assert by_path["http.trusted_proxy"].line == 3


def test_unknown_rule_in_a_suppression_suggests_the_closest(tmp_path: Path) -> None:
    message = str(_error(_write(tmp_path, "suppressions:\n  - {rule: cross_tenent, table: plans}\n")))
    assert "did you mean 'cross_tenant'?" in message


def test_yaml_errors_name_the_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "mode: monitor\nrules:\n  slow_query: {threshold_ms: 5\n")
    error = _error(path)
    assert str(error).startswith(f"{path}:4:1: not valid YAML")
    assert "<unicode string>" not in str(error)
    (issue,) = error.issues
    assert (issue.line, issue.column) == (4, 1)


def test_validation_errors_say_where_the_value_is(tmp_path: Path) -> None:
    path = _write(tmp_path, "mode: monitor\nrules:\n  large_result:\n    threshold: -1\n")
    assert "rules.large_result.threshold: Input should be greater than 0 (line 4, column 5)" in str(_error(path))


def test_a_file_with_no_tenant_column_and_no_tenant_table_is_refused(tmp_path: Path) -> None:
    message = str(_error(_write(tmp_path, "tenant_columns: []\n")))
    assert "tenant_columns: names no tenant column" in message
    # explicit tables alone, or switching off on purpose, are fine
    assert load_settings(_write(tmp_path, "tenant_columns: []\ntenant_tables: {a: org}\n"), environ={}).tenant_tables
    assert load_settings(_write(tmp_path, "mode: off\ntenant_columns: []\n"), environ={}).mode == "off"


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "10.1.2.3/0"])
def test_a_trusted_proxy_range_of_everyone_is_refused_in_the_file(tmp_path: Path, cidr: str) -> None:
    message = str(_error(_write(tmp_path, f"http:\n  trusted_proxies: ['10.0.0.0/8', '{cidr}']\n")))
    assert f"'{cidr}' trusts every peer" in message
    assert "trust_headers" in message


@pytest.mark.parametrize(
    ("var", "value", "field", "says"),
    [
        ("TENANTWATCH_TENANT_COLUMNS", ",,,", "tenant_columns", "monitoring off"),
        ("TENANTWATCH_SUPERUSER_ROLES", " , ", "superuser_roles", "every role write"),
        ("TENANTWATCH_TRUSTED_PROXIES", "0.0.0.0/0", "http.trusted_proxies", "trusts every peer"),
        ("TENANTWATCH_TRUSTED_PROXIES", "10.0.0.0/8, ::/0", "http.trusted_proxies", "trusts every peer"),
    ],
)
def test_env_values_that_switch_monitoring_off_or_trust_everyone_warn_and_fall_back(
    caplog: pytest.LogCaptureFixture, var: str, value: str, field: str, says: str
) -> None:
    defaults = load_settings(environ={})
    with caplog.at_level(logging.WARNING, logger="tenantwatch.config"):
        settings = load_settings(environ={var: value})
    assert settings == defaults
    (record,) = [r for r in caplog.records if var in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert says in record.getMessage()


def test_explicit_trust_everyone_argument_raises_with_the_field_name() -> None:
    with pytest.raises(ConfigError, match=r"http\.trusted_proxies: '0\.0\.0\.0/0' trusts every peer"):
        load_settings(environ={}, http={"trusted_proxies": ["0.0.0.0/0"]})
    with pytest.raises(ConfigError, match=r"tenant_columns: names no tenant column"):
        load_settings(environ={}, tenant_columns=[])


def test_unknown_explicit_setting_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'tenant_columns'\?"):
        load_settings(environ={}, tenant_column=["org"])


def test_bare_yaml_off_means_mode_off(tmp_path: Path) -> None:
    """YAML 1.1 reads ``mode: off`` as false; the documented spelling must work unquoted."""
    assert load_settings(_write(tmp_path, "mode: off\n"), environ={}).mode == "off"


def test_settings_round_trip_through_model_dump() -> None:
    """configure(settings=..., mode=...) re-validates a dump, which writes every field (as None) for every rule."""
    from tenantwatch.config import Settings

    settings = load_settings(environ={}, rules={"slow_query": {"threshold_ms": 250}})
    again = Settings.model_validate({**settings.model_dump(), "mode": "off"})
    assert again.slow_query_ms == 250 and again.mode == "off"
