"""The per-key settings of a tenant hierarchy: ``http.key_headers``, ``http.key_claims``, ``rls.key_settings``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantwatch.config import ConfigError, load_settings


def test_key_mappings_from_the_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "http:\n  key_headers: {team: X-Team-Id}\n  key_claims: {team: team_id}\n"
        "rls:\n  enabled: true\n  key_settings: {team: app.team_id}\n"
    )
    settings = load_settings(rules, environ={})
    assert settings.http.key_headers == {"team": "x-team-id"}  # header names are case-insensitive
    assert settings.http.key_claims == {"team": "team_id"}
    assert settings.rls.key_settings == {"team": "app.team_id"}
    assert load_settings(environ={}).rls.key_settings == {}  # one tenant key: nothing to map


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ("http", {"key_headers": {"my team": "x-team-id"}}, r"http\.key_headers: .*'my team' is not a tenant key name"),
        ("http", {"key_claims": {"team": " "}}, r"http\.key_claims: .*team: empty name"),
        ("rls", {"key_settings": {"team": "team_id"}}, r"rls\.key_settings: .*'team_id' is not a setting name"),
        ("rls", {"key_settings": {"team": "app.team; DROP"}}, r"rls\.key_settings: .*is not a setting name"),
    ],
)
def test_bad_key_mappings_name_the_field(section: str, value: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={}, **{section: value})
