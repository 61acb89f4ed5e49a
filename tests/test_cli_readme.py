"""The documented commands run verbatim: the README's (and docs/cli.md's) explain example against the shipped
examples/rules.yaml, and docs/rules-file.md documents every key the rules file takes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from pydantic import BaseModel

from cli_support import run_cli
from tenantwatch.cli import EXIT_FINDINGS, EXIT_OK
from tenantwatch.config import RULE_IDS, RULE_OPTIONS, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
Capsys = pytest.CaptureFixture[str]


def _explain_line(doc: Path) -> list[str]:
    lines = [line for line in doc.read_text(encoding="utf-8").splitlines() if line.startswith('tenantwatch explain "')]
    assert lines, f"no 'tenantwatch explain' example in {doc}"
    return shlex.split(lines[0])


@pytest.mark.parametrize("doc", ["README.md", "docs/cli.md"])
def test_documented_explain_example_runs_verbatim(doc: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = _explain_line(ROOT / doc)
    assert argv[:2] == ["tenantwatch", "explain"]
    assert "examples/rules.yaml" in argv
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli(capsys, monkeypatch, *argv[1:])
    assert code == EXIT_FINDINGS, err
    assert "tenant tables   objectives (organization_id)" in out
    assert "CRITICAL missing_tenant_filter [objectives]" in out
    assert "no tenant-scoped tables are known" not in err


def test_shipped_example_rules_file_is_valid(capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ROOT / "examples" / "rules.yaml"
    settings = load_settings(path, environ={})
    assert {"objectives", "users", "check_ins"} <= set(settings.tenant_tables)
    assert (settings.root_key, settings.finer_keys) == ("organization", ("team",))  # organization ⊃ team
    assert run_cli(capsys, monkeypatch, "check-config", str(path))[0] == EXIT_OK


def test_readme_points_at_the_rules_file_doc_not_the_source() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/rules-file.md" in readme
    assert "src/tenantwatch/config.py" not in readme


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    found: list[str] = []
    for name, field in model.model_fields.items():
        nested = field.annotation
        found.append(prefix + name)
        if isinstance(nested, type) and issubclass(nested, BaseModel) and name != "rules":
            found += _keys(nested, f"{prefix}{name}.")
    return found


def test_rules_file_doc_documents_every_key_and_rule() -> None:
    doc = (ROOT / "docs" / "rules-file.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([\w.]+)`", doc, flags=re.MULTILINE))
    missing = [
        key
        for key in _keys(Settings)
        if key not in documented and key.rpartition(".")[2] not in documented and key not in ("rules", "suppressions")
    ]
    assert missing == []
    for rule in RULE_IDS:
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{rule}` |")), None)
        assert row is not None, rule
        for option in RULE_OPTIONS[rule]:
            assert f"`{option}`" in row, (rule, option)
    for key in ("rule", "fingerprint", "table", "route", "reason"):
        assert f"| `{key}` |" in doc
