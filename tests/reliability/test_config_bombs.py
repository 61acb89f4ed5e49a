"""Hostile configuration: every bad rules file, environment value or explain input is one clear error, refused fast
and in bounded memory, never a traceback (and, for explain, never the end of the remaining input)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

import tenantwatch
from cli_support import json_lines, run_cli
from tenantwatch.cli import EXIT_FINDINGS, EXIT_USAGE
from tenantwatch.config import MAX_RULES_FILE_BYTES, ConfigError, load_settings

Capsys = pytest.CaptureFixture[str]

_TIME_BOUND_S = 2.0
"""Refusals take milliseconds; the bound leaves room for a loaded machine (the old code took 26 s and 60 s)."""
_MEMORY_BOUND = 32 * 1024 * 1024
"""Peak Python allocation while refusing a bomb (the old code reached 2.5 GB)."""


def _bounded(action: Callable[[], object]) -> tuple[BaseException | None, float, int]:
    """Run ``action`` twice: timed, then with allocations traced (tracing slows Python several times over);
    returns (what it raised, seconds, peak bytes allocated)."""
    started = time.perf_counter()
    raised: BaseException | None = None
    try:
        action()
    except BaseException as exc:
        raised = exc
    seconds = time.perf_counter() - started
    tracemalloc.start()
    with contextlib.suppress(BaseException):
        action()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return raised, seconds, peak


def _alias_bomb() -> bytes:
    """The 'billion laughs' in YAML: nine levels of nine aliases, about 300 bytes, 9**9 strings once expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
        previous = name
    return ("\n".join(lines) + "\n").encode()


HOSTILE_FILES: dict[str, tuple[bytes, str]] = {
    "non_utf8": (b"mode: monitor\nrules:\n  slow_query: {threshold_ms: 5\xff0}\n", ":3:31: not UTF-8 text"),
    "utf16": ("mode: monitor\n".encode("utf-16"), "the file is UTF-16"),
    "deep_flow": (b"rules: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested deeper than 32 levels"),
    "deep_block": (b"rules: \n  " + b"- " * 5000 + b"x\n", "nested deeper than 32 levels"),
    "alias_bomb": (_alias_bomb(), "once aliases are expanded"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_rules_file_is_one_clear_error_fast(tmp_path: Path, name: str) -> None:
    content, expected = HOSTILE_FILES[name]
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(content)
    raised, seconds, peak = _bounded(lambda: load_settings(path, environ={}))
    assert isinstance(raised, ConfigError), repr(raised)
    assert str(raised).startswith(str(path))
    assert expected in str(raised)
    assert seconds < _TIME_BOUND_S
    assert peak < _MEMORY_BOUND


def test_50_mb_rules_file_is_refused_before_parsing(tmp_path: Path) -> None:
    """Valid YAML (comments), so only a size cap read before parsing refuses it quickly."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        chunk = b"# a comment line of a rules file that goes on and on\n" * 20_000
        while handle.tell() < 50 * 1024 * 1024:
            handle.write(chunk)
    raised, seconds, peak = _bounded(lambda: load_settings(path, environ={}))
    assert isinstance(raised, ConfigError)
    assert f"larger than {MAX_RULES_FILE_BYTES} bytes" in str(raised)
    assert seconds < _TIME_BOUND_S
    assert peak < 4 * MAX_RULES_FILE_BYTES  # read the cap, not the file


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "x-strict: &strict {severity: critical}\nrules:\n  cross_tenant: *strict\n  unscoped_write: *strict\n"
        "suppressions:\n  - &plans {table: plans, reason: global}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="x-strict"):  # an unknown top-level key is still an error...
        load_settings(path, environ={})
    path.write_text(
        "rules:\n  cross_tenant: &strict {severity: high}\n  unscoped_write: *strict\n", encoding="utf-8"
    )  # ...but aliases themselves are allowed
    assert load_settings(path, environ={}).severity("unscoped_write") == "high"


@pytest.mark.parametrize("name", ["non_utf8", "deep_flow", "alias_bomb"])
def test_check_config_and_explain_report_hostile_files_with_exit_2(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    content, expected = HOSTILE_FILES[name]
    path = tmp_path / "rules.yaml"
    path.write_bytes(content)
    for argv in (("check-config", str(path)), ("explain", "SELECT 1", "--rules", str(path))):
        code, out, err = run_cli(capsys, monkeypatch, *argv)
        assert code == EXIT_USAGE
        assert out == ""
        assert expected in err and "Traceback" not in err
    code, out, _ = run_cli(capsys, monkeypatch, "check-config", str(path), "--json")
    assert code == EXIT_USAGE
    assert expected in json.loads(out)["error"]


def test_configure_raises_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(HOSTILE_FILES["non_utf8"][0])
    with pytest.raises(ConfigError, match=r"rules\.yaml:3:31: not UTF-8 text"):
        tenantwatch.configure(service_name="t", rules_file=path, exporters=False, set_global=False)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"TENANTWATCH_TENANT_COLUMNS": ",,,"}, "monitoring off"),
        ({"TENANTWATCH_TRUSTED_PROXIES": "0.0.0.0/0"}, "trusts every peer"),
        ({"TENANTWATCH_TRUSTED_PROXIES": "::/0"}, "trusts every peer"),
        ({"TENANTWATCH_MODE": "\udcff"}, "TENANTWATCH_MODE"),
        ({"TENANTWATCH_LARGE_RESULT_ROWS": "9" * 5000}, "TENANTWATCH_LARGE_RESULT_ROWS"),
    ],
)
def test_bad_env_values_warn_and_fall_back(caplog: pytest.LogCaptureFixture, env: dict[str, str], says: str) -> None:
    with caplog.at_level(logging.WARNING, logger="tenantwatch.config"):
        settings = load_settings(environ=env)
    assert settings.tenant_columns == ("organization_id", "tenant_id")
    assert settings.http.trusted_proxies == ()
    assert settings.mode == "monitor"
    assert says in caplog.text


def test_explain_survives_hostile_json_lines(capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each hostile line gets its own error; every other line is still explained (text and JSON output)."""
    good = json.dumps({"sql": "SELECT * FROM objectives", "tenant": "acme"})
    lines = [
        '{"sql": "SELECT 1 \\ud800", "tenant": "acme"}',  # lone surrogate: crashed text mode
        '{"sql": "SELECT 1", "params": ' + "[" * 5000 + "]" * 5000 + "}",  # RecursionError ended the run
        '{"sql": "SELECT 1", "tenant": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}",  # deep, below the recursion limit
        '{"sql": "' + "x" * 1_100_000 + '"}',  # longer than a line may be
        good,
    ]
    stdin = "\n".join(lines) + "\n"
    for mode in ((), ("--json",)):
        code, out, err = run_cli(capsys, monkeypatch, "explain", "--tenant-table", "objectives", *mode, stdin=stdin)
        assert code == EXIT_USAGE
        assert "Traceback" not in err
        for number, problem in (
            (1, "lone surrogate"),
            (2, "nested deeper"),
            (3, "nested deeper"),
            (4, "line longer than"),
        ):
            assert f"line {number}: " in err and problem in err.split(f"line {number}: ", 1)[1].splitlines()[0]
        if mode:
            docs = json_lines(out)
            assert [d.get("input") for d in docs] == [1, 2, 3, 4, 5]
            assert [f["rule"] for f in docs[-1]["findings"]] == ["missing_tenant_filter"]
        else:
            assert "missing_tenant_filter [objectives]" in out
    code, _, _ = run_cli(capsys, monkeypatch, "explain", "--tenant-table", "objectives", stdin=good)
    assert code == EXIT_FINDINGS
