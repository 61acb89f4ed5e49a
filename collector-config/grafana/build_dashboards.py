#!/usr/bin/env python3
"""Write the two tenantwatch Grafana dashboards (dashboards/*.json) from one readable description.

    python3 collector-config/grafana/build_dashboards.py      # rewrites dashboards/*.json

The JSON files are committed; edit this script, run it, and commit both. Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROM = {"type": "prometheus", "uid": "prometheus"}
JAEGER = {"type": "jaeger", "uid": "jaeger"}
TENANT = 'tenant_bucket=~"$tenant"'
TABLE = 'db_collection_name=~"$table"'
JAEGER_LINK = {
    "title": "Traces in Jaeger",
    "url": "${jaeger_url}/search?service=${__field.labels.job}&tags=%7B%22tenant.id%22%3A%22${__field.labels.tenant_bucket}%22%7D",
    "targetBlank": True,
}


def _panel(kind: str, title: str, exprs: list[tuple[str, str]], x: int, y: int, w: int = 12, h: int = 8,
           unit: str = "short", links: bool = False) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "datasource": PROM,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit, "links": [JAEGER_LINK] if links else []}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right"}} if kind == "timeseries" else {},
        "targets": [
            {"refId": chr(65 + i), "datasource": PROM, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def _variables(table: bool) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {
            "name": "tenant",
            "label": "Tenant (bucket)",
            "type": "query",
            "datasource": PROM,
            "query": {"query": "label_values(tenantwatch_findings_total, tenant_bucket)", "refId": "tenant"},
            "definition": "label_values(tenantwatch_findings_total, tenant_bucket)",
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"text": "All", "value": "$__all"},
            "refresh": 2,
        },
        {
            "name": "jaeger_url",
            "label": "Jaeger UI",
            "type": "constant",
            "query": "http://localhost:16686",
            "hide": 2,
        },
    ]
    if table:
        items.insert(1, {
            "name": "table",
            "label": "Table",
            "type": "query",
            "datasource": PROM,
            "query": {"query": "label_values(db_client_operation_duration_seconds_count, db_collection_name)",
                      "refId": "table"},
            "definition": "label_values(db_client_operation_duration_seconds_count, db_collection_name)",
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"text": "All", "value": "$__all"},
            "refresh": 2,
        })
    return {"list": items}


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]], table: bool) -> dict[str, Any]:
    for index, panel in enumerate(panels, start=1):
        panel["id"] = index
    return {
        "uid": uid,
        "title": title,
        "tags": ["tenantwatch"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": _variables(table),
        "links": [{"title": "Jaeger", "type": "link", "url": "${jaeger_url}", "targetBlank": True},
                  {"title": "tenantwatch dashboards", "type": "dashboards", "tags": ["tenantwatch"]}],
        "panels": panels,
    }


def _rls_coverage_panel() -> dict[str, Any]:
    """Share of tenant tables with RLS enabled and forced, per database: red below the alert's 95 %."""
    panel = _panel("stat", "RLS coverage by database (tenantwatch audit --export, first connect)",
                   [("min by (db_namespace) (tenantwatch_rls_coverage_ratio)", "{{db_namespace}}")], 0, 32,
                   unit="percentunit")
    panel["fieldConfig"]["defaults"].update({
        "min": 0,
        "max": 1,
        "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                     {"color": "green", "value": 0.95}]},
    })
    panel["options"] = {"colorMode": "background", "graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}}
    return panel


def security_overview() -> dict[str, Any]:
    f = f"tenantwatch_findings_total{{{TENANT}}}"
    panels = [
        _panel("timeseries", "Findings by rule", [(f"sum by (tenantwatch_rule) (increase({f}[$__rate_interval]))",
                                                    "{{tenantwatch_rule}}")], 0, 0, links=True),
        _panel("bargauge", "Findings by severity (range)",
               [(f"sum by (tenantwatch_severity) (increase({f}[$__range]))", "{{tenantwatch_severity}}")], 12, 0),
        _panel("bargauge", "Findings by tenant (top 10, range)",
               [(f"topk(10, sum by (tenant_bucket) (increase({f}[$__range])))", "{{tenant_bucket}}")], 0, 8,
               links=True),
        _panel("table", "Cross-tenant attempts by tenant and table (range)",
               [(f'sum by (job, tenant_bucket, db_collection_name) (increase(tenantwatch_findings_total{{tenantwatch_rule="cross_tenant",{TENANT}}}[$__range])) > 0',
                 "")], 12, 8, links=True),
        _panel("timeseries", "Auth failures (401/403) by tenant and route",
               [(f"sum by (tenant_bucket, http_route) (rate(tenantwatch_http_auth_failures_total{{{TENANT}}}[$__rate_interval]))",
                 "{{tenant_bucket}} {{http_route}}")], 0, 16, unit="reqps"),
        _panel("timeseries", "Rejected bearer tokens by reason; blocked requests",
               [("sum by (reason) (rate(tenantwatch_auth_rejected_tokens_total[$__rate_interval]))", "token {{reason}}"),
                ("sum by (reason) (rate(tenantwatch_http_blocked_total[$__rate_interval]))", "blocked by {{reason}}")],
               12, 16, unit="reqps"),
        _panel("table", "Spans with findings by service, span and severity (top 10, range; from span metrics)",
               [('topk(10, sum by (service_name, span_name, tenantwatch_severity) (increase(traces_span_metrics_calls_total{tenantwatch_severity!=""}[$__range])))',
                 "")], 0, 24),
        {
            "type": "table",
            "title": "Top finding traces (Jaeger: statement fingerprints are span attributes, not metric labels)",
            "datasource": JAEGER,
            "gridPos": {"x": 12, "y": 24, "w": 12, "h": 8},
            "targets": [{"refId": "A", "datasource": JAEGER, "queryType": "search", "service": "$service",
                         "tags": "tenantwatch.severity=critical", "limit": 20}],
            "fieldConfig": {"defaults": {}, "overrides": []},
            "options": {},
        },
        _rls_coverage_panel(),
        _panel("bargauge", "Tenant tables by RLS state (forced | enabled, not forced | disabled)",
               [("sum by (db_namespace, tenantwatch_rls_state) (tenantwatch_rls_tables)",
                 "{{db_namespace}} {{tenantwatch_rls_state}}")], 12, 32),
    ]
    dashboard = _dashboard("tenantwatch-security", "tenantwatch — Security overview", panels, table=False)
    dashboard["templating"]["list"].append({
        "name": "service", "label": "Service", "type": "query", "datasource": PROM,
        "query": {"query": "label_values(tenantwatch_findings_total, job)", "refId": "service"},
        "definition": "label_values(tenantwatch_findings_total, job)", "refresh": 2,
    })
    return dashboard


def tenant_query_performance() -> dict[str, Any]:
    sel = f"{TENANT},{TABLE}"
    buckets = f"db_client_operation_duration_seconds_bucket{{{sel}}}"

    def quantile(q: str) -> tuple[str, str]:
        return (f"histogram_quantile({q}, sum by (le, tenant_bucket, db_collection_name) (rate({buckets}[$__rate_interval])))",
                f"p{q[2:] or '100'} {{{{tenant_bucket}}}} {{{{db_collection_name}}}}")

    panels = [
        _panel("timeseries", "Query rate by tenant and table",
               [(f"sum by (tenant_bucket, db_collection_name) (rate(db_client_operation_duration_seconds_count{{{sel}}}[$__rate_interval]))",
                 "{{tenant_bucket}} {{db_collection_name}}")], 0, 0, unit="ops"),
        _panel("timeseries", "Query duration p50 / p95 / p99", [quantile("0.5"), quantile("0.95"), quantile("0.99")],
               12, 0, unit="s"),
        _panel("timeseries", "Returned rows p95 by table",
               [(f"histogram_quantile(0.95, sum by (le, db_collection_name) (rate(tenantwatch_db_returned_rows_bucket{{{sel}}}[$__rate_interval])))",
                 "{{db_collection_name}}")], 0, 8),
        _panel("timeseries", "Rows returned per second by tenant",
               [(f"sum by (tenant_bucket) (rate(tenantwatch_db_returned_rows_sum{{{sel}}}[$__rate_interval]))",
                 "{{tenant_bucket}}")], 12, 8, unit="rowsps"),
        _panel("table", "Slow queries per tenant and table (range)",
               [(f'sum by (tenant_bucket, db_collection_name) (increase(tenantwatch_findings_total{{tenantwatch_rule="slow_query",{sel}}}[$__range])) > 0',
                 "")], 0, 16, links=True),
        _panel("timeseries", "Requests per second by tenant (ASGI middleware)",
               [(f"sum by (tenant_bucket) (rate(tenantwatch_http_requests_total{{{TENANT}}}[$__rate_interval]))",
                 "{{tenant_bucket}}")], 12, 16, unit="reqps"),
        _panel("timeseries", "Span latency p95 by service and route (span metrics)",
               [('histogram_quantile(0.95, sum by (le, service_name, http_route) (rate(traces_span_metrics_duration_milliseconds_bucket[$__rate_interval])))',
                 "{{service_name}} {{http_route}}")], 0, 24, w=24, unit="ms"),
    ]
    return _dashboard("tenantwatch-query-performance", "tenantwatch — Tenant query performance", panels, table=True)


def main() -> None:
    out = Path(__file__).resolve().parent / "dashboards"
    out.mkdir(exist_ok=True)
    for name, dashboard in (("security-overview.json", security_overview()),
                            ("tenant-query-performance.json", tenant_query_performance())):
        (out / name).write_text(json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
