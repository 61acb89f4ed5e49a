"""End to end: `tenantwatch report` over a workload sent through the real collector into the real Prometheus,
rendered in headless Chromium.

One stack for the module (native binaries on free loopback ports): the collector built by the Collector Builder
(collector-config/otelcol.yaml) and Debian's Prometheus scraping it every second. The telemetry comes from
`_report_producer.py` (three tenants: missing filters and repeated violations for acme, a large result and a burst of
queries for globex, a slow statement for initech) and `_asgi_producer.py` (auth failures and a response-action
block). The report reads that window from Prometheus plus a findings document written here; Chromium (Debian's
`chromium`) then runs the page's JavaScript: every chart must have drawn its traces with data points, and the
screenshot must show the traces' colours.
"""

from __future__ import annotations

import calendar
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from _stack import CONFIG, Process, free_port, http_json, wait_until

from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts
from tenantwatch.tools.groups import FindingGroups
from tenantwatch.tools.report import PALETTE

pytestmark = pytest.mark.e2e

SERVICE = "tenantwatch-report-e2e"
ASGI_SERVICE = "tenantwatch-report-e2e-asgi"
HERE = Path(__file__).parent
STEP = 2


@dataclass
class Run:
    prometheus: str
    workload: dict[str, float]
    html: Path
    dom: str
    screenshot: Path
    report: dict[str, Any]
    markdown: str
    stderr: str
    tmp: Path


def _prometheus_config(tmp: Path, collector_prom: int) -> Path:
    config = yaml.safe_load((CONFIG / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config.pop("alerting", None)
    config.pop("rule_files", None)
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] == "tenantwatch"]
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{collector_prom}"]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _instant(base: str, query: str) -> list[dict[str, Any]]:
    data = http_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    return list(data["data"]["result"])


def _findings_document(path: Path, workload: dict[str, float]) -> None:
    """What `tenantwatch scan --json` would write for the window (the scan command is built elsewhere)."""
    groups = FindingGroups()
    at = int(workload["started"] * 1e9)
    for rule, severity, fingerprint, tenant, repeats in (
        ("missing_tenant_filter", "critical", "a1b2c3d4e5f60718", "acme", 6),
        ("large_result", "warning", "b2c3d4e5f6071829", "globex", 1),
        ("slow_query", "warning", "c3d4e5f60718293a", "initech", 1),
        ("repeated_violations", "high", "d4e5f60718293a4b", "acme", 1),
    ):
        for i in range(repeats):
            finding = Finding(rule=rule, severity=severity, message=f"{rule} m", fingerprint=fingerprint, table="notes")  # type: ignore[arg-type]
            facts = SpanFacts(
                statement="SELECT id FROM notes WHERE body = ?",
                code_filepath="tests/e2e/_report_producer.py",
                code_lineno=48,
                code_function="main",
                tenant_id=tenant,
                route="/notes",
            )
            groups.add(finding, facts, time_ns=at + i * 1_000_000_000, trace_id=f"{i + 1:032x}")
    groups.spans = 40
    path.write_text(json.dumps(groups.to_json()))


def _chromium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "headless Chromium is needed (Debian package chromium; scripts/test.sh installs it)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=15000"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def run(otelcol_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("report")
    ports = {n: free_port() for n in ("otlp_grpc", "otlp_http", "health", "prom_exporter", "telemetry", "prometheus")}
    processes: list[Process] = []
    try:
        collector = Process(
            "collector",
            [str(otelcol_binary), f"--config={CONFIG / 'otelcol.yaml'}"],
            tmp / "collector.log",
            env={
                "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['otlp_grpc']}",
                "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['otlp_http']}",
                "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
                "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['prom_exporter']}",
                "OTELCOL_TELEMETRY_PORT": str(ports["telemetry"]),
                "OTELCOL_BATCH_TIMEOUT": "200ms",
                "OTELCOL_SPANMETRICS_FLUSH": "1s",
                "OTELCOL_DECISION_WAIT": "1s",
                # no Jaeger or Sentry in this module: traces are not what the report reads
                "JAEGER_OTLP_ENDPOINT": f"127.0.0.1:{free_port()}",
                "SENTRY_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}/api/1/integration/otlp",
            },
        ).start()
        processes.append(collector)
        prometheus = Process(
            "prometheus",
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={_prometheus_config(tmp, ports['prom_exporter'])}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            ],
            tmp / "prometheus.log",
        ).start()
        processes.append(prometheus)
        collector.wait_http(f"http://127.0.0.1:{ports['health']}/")
        base = f"http://127.0.0.1:{ports['prometheus']}"
        prometheus.wait_http(f"{base}/-/ready")

        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp),
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{ports['otlp_http']}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        }
        asgi = subprocess.Popen(
            [sys.executable, str(HERE / "_asgi_producer.py")],
            env={**env, "OTEL_SERVICE_NAME": ASGI_SERVICE},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        produced = subprocess.run(
            [sys.executable, str(HERE / "_report_producer.py")],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "OTEL_SERVICE_NAME": SERVICE},
            check=False,
        )
        assert produced.returncode == 0, produced.stderr[-3000:]
        asgi_out, asgi_err = asgi.communicate(timeout=120)
        assert asgi.returncode == 0, (asgi_out, asgi_err[-3000:])
        workload = json.loads(produced.stdout.strip().splitlines()[-1])

        def landed() -> bool:
            findings = _instant(base, f'sum(tenantwatch_findings_total{{job="{SERVICE}"}})')
            blocks = _instant(base, "sum(tenantwatch_blocks_total)")
            return bool(findings and float(findings[0]["value"][1]) >= 9 and blocks)

        wait_until("the workload's findings and blocks in Prometheus", landed, timeout=30, log=tmp / "collector.log")
        time.sleep(3)  # the last counter values scraped a few times
        findings_doc = tmp / "scan.json"
        _findings_document(findings_doc, workload)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(workload["started"] - 6))
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
        html, md, js = tmp / "report.html", tmp / "report.md", tmp / "report.json"
        tenantwatch = Path(sys.executable).with_name("tenantwatch")
        done = subprocess.run(
            [
                str(tenantwatch),
                "report",
                "--prometheus",
                base,
                "--findings",
                str(findings_doc),
                "--since",
                since,
                "--until",
                until,
                "--step",
                str(STEP),
                "--output",
                str(html),
                "--markdown",
                str(md),
                "--json",
                str(js),
                "--title",
                "okr-api report (e2e)",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(js.read_text())
        dom = _chromium("--dump-dom", html.as_uri())
        assert dom.returncode == 0, dom.stderr[-2000:]
        charts = sum(len(section["charts"]) for section in report["sections"])
        shot = tmp / "report.png"
        taken = _chromium(f"--screenshot={shot}", f"--window-size=1280,{700 + 560 * charts}", html.as_uri())
        assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
        yield Run(base, workload, html, dom.stdout, shot, report, md.read_text(), done.stderr, tmp)
    finally:
        for process in reversed(processes):
            process.stop()


def _section(run: Run, section_id: str) -> dict[str, Any]:
    return next(s for s in run.report["sections"] if s["id"] == section_id)


def _chart(run: Run, chart_id: str) -> dict[str, Any]:
    return next(c for s in run.report["sections"] for c in s["charts"] if c["id"] == chart_id)


def test_findings_per_rule_and_tenant_over_time_match_the_counters_in_prometheus(run: Run) -> None:
    by_rule = {s["name"]: s["total"] for s in _chart(run, "findings-by-rule-over-time")["series"]}
    counters = {
        r["metric"]["tenantwatch_rule"]: float(r["value"][1])
        for r in _instant(run.prometheus, "sum by (tenantwatch_rule) (tenantwatch_findings_total)")
    }
    assert by_rule == counters  # every finding of the window, counted once (first occurrences included)
    assert by_rule["missing_tenant_filter"] >= 6
    assert {"large_result", "slow_query", "repeated_violations"} <= set(by_rule)
    tenants = {s["name"] for s in _chart(run, "findings-by-tenant-over-time")["series"]}
    assert {"acme", "globex", "initech"} <= tenants
    severities = {s["name"] for s in _chart(run, "findings-by-severity-over-time")["series"]}
    assert {"critical", "high", "warning"} <= severities
    rule_section = _section(run, "findings_by_rule")
    assert any(
        source.startswith(f"Prometheus {run.prometheus}: sum by (tenantwatch_rule)")
        for source in rule_section["sources"]
    )
    assert any("scan.json" in source for source in rule_section["sources"])


def test_the_globex_burst_is_reported_as_a_query_volume_spike(run: Run) -> None:
    volume = _section(run, "query_volume")
    series = {s["name"]: s for s in volume["charts"][0]["series"]}
    assert {"acme", "globex", "initech"} <= set(series)
    spikes = volume["tables"][0]["rows"]
    globex = [row for row in spikes if row[1] == "globex"]
    assert globex, spikes
    spike_time = calendar.timegm(time.strptime(globex[0][0], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(spike_time - run.workload["burst_at"]) <= 3 * STEP
    assert globex[0][2] >= 150  # the 200 statements of the burst, in one or two steps


def test_large_results_slow_queries_and_incidents_carry_the_workloads_events(run: Run) -> None:
    large = _section(run, "large_results")
    assert [s["name"] for s in _chart(run, "large_result-by-table")["series"]] == ["notes"]
    assert large["tables"][0]["rows"][0][:3] == ["b2c3d4e5f6071829", "notes", 1]  # from the findings document
    # the recursive CTE reads no table (a loaded machine may make a read of notes slow too)
    assert "(no table)" in [s["name"] for s in _chart(run, "slow_query-by-table")["series"]]
    assert _chart(run, "slow_query-p95")["series"]
    kinds = {(row[1], row[2]) for row in _section(run, "incidents")["tables"][0]["rows"]}
    assert ("repeated_violations", "acme") in kinds
    assert any(kind == "block started" for kind, _ in kinds)
    top = _section(run, "top_fingerprints")["tables"][0]["rows"]
    assert top[0][:5] == ["a1b2c3d4e5f60718", "missing_tenant_filter", "critical", "notes", 6]


def test_the_markdown_has_the_same_data_and_the_html_is_self_contained(run: Run) -> None:
    assert "## Query volume per tenant" in run.markdown
    assert "| missing_tenant_filter |" in run.markdown
    page = run.html.read_text()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)  # plotly.js inlined: nothing to fetch
    assert "wrote" in run.stderr


def test_every_chart_rendered_its_traces_with_data_points_in_chromium(run: Run) -> None:
    charts = [c for s in run.report["sections"] for c in s["charts"]]
    assert len(charts) >= 10
    positions = sorted(
        (run.dom.index(f'id="chart-{c["id"]}"'), c) for c in charts if f'id="chart-{c["id"]}"' in run.dom
    )
    assert len(positions) == len(charts), "a chart div is missing from the rendered page"
    for index, (start, chart) in enumerate(positions):
        end = positions[index + 1][0] if index + 1 < len(positions) else len(run.dom)
        part = run.dom[start:end]
        traces = len(re.findall(r'class="trace (?:scatter|bars)', part))
        points = len(re.findall(r'class="point"', part))
        assert traces == len(chart["series"]), (chart["id"], traces)
        wanted = sum(1 for s in chart["series"] for y in s["y"] if y != 0)
        assert points >= wanted > 0, (chart["id"], points, wanted)


def test_the_screenshot_shows_the_traces_colours(run: Run) -> None:
    from PIL import Image

    image = Image.open(run.screenshot).convert("RGB")
    colours = {tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)): c for c in PALETTE[:3]}
    counts = dict.fromkeys(colours.values(), 0)
    for count, pixel in image.getcolors(maxcolors=1 << 24) or []:
        if pixel in colours:
            counts[colours[pixel]] += count
    assert all(count >= 200 for count in counts.values()), counts


def test_counts_are_stacked_bars_from_zero_and_each_chart_has_its_totals_table(run: Run) -> None:
    charts = [c for s in run.report["sections"] for c in s["charts"]]
    counts = [c for c in charts if c["kind"] == "time" and all(s["total"] is not None for s in c["series"])]
    assert len(counts) >= 6
    for chart in counts:
        start = run.dom.index(f'id="chart-{chart["id"]}"')
        part = run.dom[start : run.dom.index('class="chart-totals"', start)]  # the chart, up to its totals
        assert len(re.findall(r'class="trace bars"', part)) == len(chart["series"]), chart["id"]
        assert not re.search(r'class="trace scatter"', part), chart["id"]
        ticks = re.findall(r'class="ytick"><text[^>]*data-unformatted="([^"]*)"', part)
        assert ticks and ticks[0] == "0", (chart["id"], ticks)  # the y-axis starts at zero
    totals = run.html.read_text().count('<table class="chart-totals">')
    assert totals == sum(1 for c in charts if c["kind"] != "timeline")
