"""``tenantwatch scan`` finds the same findings from Jaeger and from the collector's file exporter files (json, proto
and json with zstd) as were raised live.

The example OKR app runs in a subprocess (tests/e2e/_scan_producer.py) under its traffic generator: normal, buggy,
unauthenticated and attack requests, so db rules, request rules (injection_signal, brute_force) and the windowed
repeated_violations all fire. Its spans go over OTLP to the real collector, built by the e2e stack, with a config
written here: one pipeline, a file exporter per format and Jaeger v2. The live findings come from a finding listener;
each scan must give the same fingerprints with the same counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _stack import CONFIG, Process, free_port, http_json, wait_until

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
SERVICE = "okr-scan-e2e"
RULES = CONFIG.parent / "examples" / "rules.yaml"


@dataclass
class ScanStack:
    tmp: Path
    jaeger_url: str
    live: dict[str, Any]
    json_file: Path
    proto_file: Path


def _collector_config(tmp: Path, grpc: int, http: int, health: int, jaeger_otlp: int) -> Path:
    config = f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: 127.0.0.1:{grpc}}}
      http: {{endpoint: 127.0.0.1:{http}}}
processors:
  batch: {{timeout: 200ms}}
exporters:
  file/json:
    path: {tmp / "traces.json"}
    format: json
    flush_interval: 100ms
  file/proto:
    path: {tmp / "traces.pb"}
    format: proto
    flush_interval: 100ms
  file/zstd:
    path: {tmp / "traces.json.zst"}
    format: json
    compression: zstd
    flush_interval: 100ms
  otlp_grpc/jaeger:
    endpoint: 127.0.0.1:{jaeger_otlp}
    tls: {{insecure: true}}
extensions:
  health_check: {{endpoint: 127.0.0.1:{health}}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{level: none}}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file/json, file/proto, file/zstd, otlp_grpc/jaeger]
"""
    path = tmp / "collector.yaml"
    path.write_text(config)
    return path


def _spans_in_json(path: Path) -> int:
    if not path.exists():
        return 0
    total = 0
    for line in path.read_text().splitlines():
        if line.strip():
            doc = json.loads(line)
            total += sum(len(s.get("spans", [])) for r in doc["resourceSpans"] for s in r.get("scopeSpans", []))
    return total


@pytest.fixture(scope="module")
def stack(otelcol_binary: Path, jaeger_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScanStack]:
    tmp = tmp_path_factory.mktemp("scan")
    ports = {n: free_port() for n in ("jaeger_otlp", "jaeger_query", "jaeger_grpc", "grpc", "http", "health")}
    processes: list[Process] = []
    try:
        jaeger = Process(
            "jaeger",
            [str(jaeger_binary), "--config", str(CONFIG / "jaeger" / "jaeger.yaml")],
            tmp / "jaeger.log",
            env={
                "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['jaeger_otlp']}",
                "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{ports['jaeger_query']}",
                "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{ports['jaeger_grpc']}",
            },
        ).start()
        processes.append(jaeger)
        config = _collector_config(tmp, ports["grpc"], ports["http"], ports["health"], ports["jaeger_otlp"])
        collector = Process("collector", [str(otelcol_binary), f"--config={config}"], tmp / "collector.log").start()
        processes.append(collector)
        jaeger_url = f"http://127.0.0.1:{ports['jaeger_query']}"
        jaeger.wait_http(f"{jaeger_url}/api/services")
        collector.wait_http(f"http://127.0.0.1:{ports['health']}/")

        live_file = tmp / "live.json"
        done = subprocess.run(
            [sys.executable, str(HERE / "_scan_producer.py"), f"http://127.0.0.1:{ports['http']}", str(live_file)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        live = json.loads(live_file.read_text())
        wait_until(
            "every span in the json file",
            lambda: _spans_in_json(tmp / "traces.json") >= live["spans"],
            timeout=30,
            log=tmp / "collector.log",
        )

        def in_jaeger() -> bool:
            services = http_json(f"{jaeger_url}/api/v3/services").get("services", [])
            return SERVICE in services

        wait_until("the service in Jaeger", in_jaeger, timeout=30, log=tmp / "jaeger.log")
        yield ScanStack(tmp, jaeger_url, live, tmp / "traces.json", tmp / "traces.pb")
    finally:
        for process in reversed(processes):
            if process.name == "jaeger" and process.popen is not None:
                # in-memory storage has nothing to save, and a graceful stop waits ~10 s exporting Jaeger's own
                # traces to a collector that is not there
                process.popen.kill()
                process.popen.wait(timeout=10)
            process.stop()


def _scan(*argv: str) -> tuple[Counter[str], dict[str, Any]]:
    tenantwatch = Path(sys.executable).with_name("tenantwatch")
    done = subprocess.run(
        [str(tenantwatch), "scan", *argv, "--config", str(RULES), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)
    return Counter({g["fingerprint"]: g["count"] for g in document["groups"]}), document


def _scan_all(stack: ScanStack, *argv: str) -> tuple[Counter[str], dict[str, Any]]:
    """Scan until the source has every exported span (the collector and Jaeger write in batches), then once more."""
    wait_until(
        f"every span in {' '.join(argv)}",
        lambda: _scan(*argv)[1]["spans"] >= stack.live["spans"],
        timeout=30,
        interval=1.0,
        log=stack.tmp / "collector.log",
    )
    return _scan(*argv)


def _live(stack: ScanStack) -> Counter[str]:
    return Counter(stack.live["findings"])


def test_live_run_raised_db_request_and_windowed_findings(stack: ScanStack) -> None:
    rules = set(stack.live["rules"].values())
    assert {"missing_tenant_filter", "cross_tenant", "injection_signal", "brute_force", "repeated_violations"} <= rules


def test_scan_of_the_json_file_finds_what_was_raised_live(stack: ScanStack) -> None:
    found, document = _scan_all(stack, str(stack.json_file))
    assert found == _live(stack)
    assert document["spans"] == stack.live["spans"]
    assert document["scan"]["stored_findings"] == sum(_live(stack).values())


def test_scan_of_the_proto_file_finds_what_was_raised_live(stack: ScanStack) -> None:
    found, document = _scan_all(stack, str(stack.proto_file))
    assert found == _live(stack)
    assert document["spans"] == stack.live["spans"]


def test_scan_of_a_zstd_compressed_file_finds_what_was_raised_live(stack: ScanStack) -> None:
    found, document = _scan_all(stack, str(stack.tmp / "traces.json.zst"))
    assert found == _live(stack)
    assert document["spans"] == stack.live["spans"]


def test_scan_of_jaeger_finds_what_was_raised_live(stack: ScanStack) -> None:
    found, document = _scan_all(
        stack, "--jaeger", stack.jaeger_url, "--service", SERVICE, "--since", "30m", "--page-size", "50"
    )
    assert found == _live(stack)
    assert document["spans"] == stack.live["spans"]
    assert all(len(g["trace_ids"]) >= 1 for g in document["groups"])


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    tenantwatch = Path(sys.executable).with_name("tenantwatch")
    return subprocess.run(
        [str(tenantwatch), "scan", *argv, "--config", str(RULES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )


def _spans_per_tenant_trace(path: Path) -> tuple[str, int]:
    """A tenant of the stored traces and how many spans the traces carrying it have (from the json file)."""
    spans: Counter[str] = Counter()
    tenants: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        for resource in json.loads(line).get("resourceSpans", []):
            for scope in resource.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    spans[span["traceId"]] += 1
                    for item in span.get("attributes", []):
                        if item["key"] == "tenant.id":
                            tenants.setdefault(str(next(iter(item["value"].values()))), set()).add(span["traceId"])
    tenant, traces = max(tenants.items(), key=lambda item: (len(item[1]), item[0]))
    return tenant, sum(spans[trace] for trace in traces)


def test_jaeger_attribute_filter_keeps_only_matching_traces(stack: ScanStack) -> None:
    _scan_all(stack, str(stack.json_file))  # every span stored
    tenant, expected = _spans_per_tenant_trace(stack.json_file)
    jaeger = ("--jaeger", stack.jaeger_url, "--service", SERVICE, "--since", "30m", "--page-size", "50")
    _, everything = _scan_all(stack, *jaeger)
    _, document = _scan(*jaeger, "--attribute", f"tenant.id={tenant}")
    assert 0 < document["spans"] == expected < everything["spans"]
    assert document["scan"]["filtered_spans"] == everything["spans"] - expected
    nothing = _run(*jaeger, "--attribute", "tenant.id=nomatch")
    assert nothing.returncode == 2 and "no spans" in nothing.stderr, nothing.stderr


def test_jaeger_empty_search_unknown_service_and_not_jaeger(stack: ScanStack) -> None:
    empty = _run(
        "--jaeger",
        stack.jaeger_url,
        "--service",
        SERVICE,
        "--since",
        "2020-01-01T00:00:00Z",
        "--until",
        "2020-01-02T00:00:00Z",
    )
    assert empty.returncode == 2 and f"service {SERVICE}: no spans (use --allow-empty)" in empty.stderr, empty.stderr
    unknown = _run("--jaeger", stack.jaeger_url, "--service", "no-such-service")
    assert unknown.returncode == 2 and "knows no such service" in unknown.stderr and SERVICE in unknown.stderr
    wrong = _run("--jaeger", f"{stack.jaeger_url}/nothing-here", "--service", SERVICE)
    assert wrong.returncode == 2 and "not a Jaeger query API (GET /api/v3/services answered" in wrong.stderr
