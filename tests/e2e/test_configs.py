"""The shipped pipeline configuration is valid for the real tools: otelcol validate, promtool, amtool, Grafana JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _metric_names import metric_names_in_configs, names_in_expr
from _stack import CONFIG, REPO

from tenantwatch.config import RULE_IDS

pytestmark = pytest.mark.e2e

COLLECTOR_CONFIGS = ["otelcol.yaml", "agent.yaml", "sampler.yaml"]


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_shipped_collector_configs_validate(otelcol_binary: Path, name: str) -> None:
    done = _run([str(otelcol_binary), "validate", f"--config={CONFIG / name}"])
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda c: c["exporters"].update({"no_such_exporter": {}}), "no_such_exporter"),
        (lambda c: c["service"]["pipelines"]["traces/jaeger"]["processors"].append("not_declared"), "not_declared"),
        (
            lambda c: c["processors"]["tail_sampling"]["policies"][3]["probabilistic"].update({"bogus_field": 1}),
            "bogus_field",
        ),
    ],
    ids=["unknown-component", "undeclared-processor-in-pipeline", "unknown-field"],
)
def test_a_config_with_an_error_fails_validation(otelcol_binary: Path, tmp_path: Path, mutation, message: str) -> None:
    config = yaml.safe_load((CONFIG / "otelcol.yaml").read_text())
    mutation(config)
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config))
    done = _run([str(otelcol_binary), "validate", f"--config={broken}"])
    assert done.returncode != 0
    assert message in done.stderr + done.stdout


def test_invalid_yaml_fails_validation(otelcol_binary: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("receivers: [otlp\n")
    done = _run([str(otelcol_binary), "validate", f"--config={broken}"])
    assert done.returncode != 0
    assert "yaml" in (done.stderr + done.stdout).lower()


def test_builder_manifest_has_exactly_the_components_the_configs_use(otelcol_binary: Path) -> None:
    listed = yaml.safe_load(_run([str(otelcol_binary), "components"]).stdout)
    available = {
        kind: {c["name"] for c in listed.get(kind) or []}
        for kind in ("receivers", "processors", "exporters", "connectors", "extensions")
    }
    used: dict[str, set[str]] = {kind: set() for kind in available}
    for name in COLLECTOR_CONFIGS:
        config = yaml.safe_load((CONFIG / name).read_text())
        for kind in used:
            used[kind] |= {component.split("/")[0] for component in config.get(kind) or {}}
    used["exporters"].add("file")  # the trace store of the end-to-end test when no Jaeger builds
    used["exporters"].add("sentry")  # shipped for Sentry's project routing (README), configured by users
    assert used == available


def test_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    done = _run(["promtool", "check", "config", str(CONFIG / "prometheus" / "prometheus.yml")])
    assert done.returncode == 0, done.stdout + done.stderr
    done = _run(["promtool", "check", "rules", *map(str, (CONFIG / "prometheus" / "rules").glob("*.yml"))])
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_passing_promtool_unit_tests() -> None:
    tests = sorted((CONFIG / "prometheus" / "tests").glob("*.yml"))
    done = _run(["promtool", "test", "rules", *map(str, tests)])
    assert done.returncode == 0, done.stdout + done.stderr
    alerts = {
        rule["alert"]
        for file in (CONFIG / "prometheus" / "rules").glob("*.yml")
        for group in yaml.safe_load(file.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested: dict[str, set[str]] = {}
    for file in tests:
        for case in yaml.safe_load(file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                tested.setdefault(check["alertname"], set()).add("fires" if check["exp_alerts"] else "silent")
    assert set(tested) == alerts
    assert {name for name, kinds in tested.items() if "fires" not in kinds} == set()
    # "not firing" is shown either by an empty expectation or by a second series in the same test that must not
    # appear among the expected alerts (every test feeds a look-alike series that must stay silent)
    assert len([name for name, kinds in tested.items() if "silent" in kinds]) >= len(alerts) - 4


def test_every_catalogue_rule_has_an_alert() -> None:
    rules = [
        rule
        for file in (CONFIG / "prometheus" / "rules").glob("*.yml")
        for group in yaml.safe_load(file.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert {rule["labels"]["rule"] for rule in rules} >= set(RULE_IDS)
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "high", "warning"}
        assert {"tenant", "rule", "severity"} <= set(rule["labels"])


def test_alertmanager_template_renders_and_passes_amtool(tmp_path: Path) -> None:
    rendered = tmp_path / "alertmanager.yml"
    done = _run(
        [sys.executable, str(CONFIG / "alertmanager" / "render.py"), str(CONFIG / "alertmanager" / "alertmanager.yml")],
        SLACK_WEBHOOK_URL="https://hooks.slack.invalid/T000/B000/XXX",
        PAGERDUTY_ROUTING_KEY="k" * 32,
    )
    assert done.returncode == 0, done.stderr
    rendered.write_text(done.stdout)
    assert "hooks.slack.invalid" in done.stdout
    checked = _run(["amtool", "check-config", str(rendered)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(done.stdout)
    assert config["route"]["group_by"] == ["alertname", "tenant", "rule"]
    assert config["inhibit_rules"][0]["equal"] == ["tenant", "rule"]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert {"pagerduty_configs", "webhook_configs"} <= set(receivers["pager"])
    assert {"slack_configs", "email_configs"} <= set(receivers["chat"])


def test_alertmanager_routing_sends_critical_to_the_pager_and_warnings_to_chat(tmp_path: Path) -> None:
    done = _run(
        [sys.executable, str(CONFIG / "alertmanager" / "render.py"), str(CONFIG / "alertmanager" / "alertmanager.yml")]
    )
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(done.stdout)
    for labels, receiver in (
        ("severity=critical rule=cross_tenant tenant=acme", "pager"),
        ("severity=warning rule=large_result tenant=acme", "chat"),
        ("severity=high rule=superuser_write tenant=acme", "chat"),
    ):
        routed = _run(["amtool", "config", "routes", "test", f"--config.file={rendered}", *labels.split()])
        assert routed.stdout.strip() == receiver, routed.stdout + routed.stderr


def test_alertmanager_render_names_missing_required_variables(tmp_path: Path) -> None:
    template = tmp_path / "t.yml"
    template.write_text("# ${COMMENTS_ARE_KEPT}\nurl: ${REQUIRED_ONE}\nother: ${OPTIONAL:-x}\n")
    done = _run([sys.executable, str(CONFIG / "alertmanager" / "render.py"), str(template)])
    assert done.returncode == 2
    assert "REQUIRED_ONE" in done.stderr and "OPTIONAL" not in done.stderr


def test_grafana_dashboards_are_valid_and_their_queries_parse(tmp_path: Path) -> None:
    datasources = yaml.safe_load((CONFIG / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text())
    uids = {source["uid"] for source in datasources["datasources"]}
    titles = set()
    exprs: list[str] = []
    for file in sorted((CONFIG / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(file.read_text())
        titles.add(dashboard["title"])
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] in uids
                if "expr" in target:
                    exprs.append(target["expr"])
    assert titles == {"tenantwatch — Security overview", "tenantwatch — Tenant query performance"}
    # every PromQL query parses: promtool checks them as recording rules (Grafana variables replaced)
    rules = [
        {
            "record": f"dashboard:expr:{i}",
            "expr": e.replace("$__rate_interval", "5m")
            .replace("$__range", "1h")
            .replace("$tenant", ".*")
            .replace("$table", ".*"),
        }
        for i, e in enumerate(exprs)
    ]
    file = tmp_path / "dashboard_exprs.yml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = _run(["promtool", "check", "rules", str(file)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboards_are_generated_from_build_script(tmp_path: Path) -> None:
    before = {f.name: f.read_text() for f in (CONFIG / "grafana" / "dashboards").glob("*.json")}
    done = _run([sys.executable, str(CONFIG / "grafana" / "build_dashboards.py")])
    assert done.returncode == 0, done.stderr
    after = {f.name: f.read_text() for f in (CONFIG / "grafana" / "dashboards").glob("*.json")}
    assert after == before, "dashboards/*.json are out of date: run collector-config/grafana/build_dashboards.py"


def test_metric_name_extraction_sees_selectors_and_skips_functions() -> None:
    assert names_in_expr('sum by (job) (increase(tenantwatch_findings_total{a="b"}[5m])) > 0') == {
        "tenantwatch_findings_total"
    }
    assert names_in_expr('up{job="otelcol"} == 0') == {"up"}
    assert "re:otelcol_x_(a|b)" in names_in_expr('rate({__name__=~"otelcol_x_(a|b)"}[5m])')
    assert "tenantwatch_findings_total" in metric_names_in_configs()


def test_docker_compose_is_well_formed() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"collector", "jaeger", "prometheus", "alertmanager", "grafana", "postgres", "app", "traffic"} <= set(
        services
    )
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
