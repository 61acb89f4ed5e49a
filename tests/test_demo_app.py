"""``tenantwatch demo --app`` and the traffic generator: the example service in-process, findings live."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tenantwatch.cli import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples import traffic  # noqa: E402


def test_demo_app_json_reports_findings_of_the_buggy_and_bad_traffic(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--app", "--json", "--requests", "120"]) == 0
    result = json.loads(capsys.readouterr().out)
    findings = result["findings"]
    assert findings.get("injection_signal", 0) > 0  # attack patterns and the string-built search
    assert result["traffic"]["statuses"]["auth:401"] >= 10
    assert findings["brute_force"] >= 1  # ten 401s from one client within a minute
    sent = result["traffic"]["sent"]
    assert sum(sent.values()) == 120
    assert set(sent) == {"normal", "buggy", "auth", "attack"}
    assert result["traffic"]["errors"] == 0
    assert result["traffic"]["statuses"]["auth:401"] == sent["auth"]  # every bad token is refused
    assert result["traffic"]["statuses"]["normal:200"] == sent["normal"]  # normal traffic reads the caller's own rows


def test_demo_app_live_output(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("tenantwatch")), "demo", "--app", "--requests", "60"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "findings by rule" in done.stdout
    assert "sent 60 requests" in done.stdout


def test_traffic_refuses_non_loopback_targets() -> None:
    with pytest.raises(SystemExit) as exc:
        traffic.main(["--base-url", "http://198.51.100.1:8000", "--requests", "1"])
    assert exc.value.code == 2


def test_traffic_mix_is_validated() -> None:
    assert traffic._parse_mix("normal=1,attack=3") == {"normal": 1, "attack": 3}
    with pytest.raises(Exception, match="unknown kind"):
        traffic._parse_mix("ddos=5")


async def test_traffic_is_bounded_by_count_and_reports_what_it_sent() -> None:
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(401 if "authorization" not in request.headers else 200)

    summary = await traffic.run(
        "http://stub",
        requests=40,
        duration=30,
        transport=httpx.MockTransport(handler),
        progress=False,
        mix={"normal": 1, "auth": 1},
    )
    assert summary.total == 40 == len(seen)
    assert set(summary.sent) == {"normal", "auth"}
    assert sum(summary.statuses.values()) == 40
