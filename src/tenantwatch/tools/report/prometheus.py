"""Read a period from Prometheus: a small client for ``/api/v1/query_range`` and the report's expressions.

Metric names and labels are the ones the collector's Prometheus exporter writes (see
collector-config/prometheus/rules/tenantwatch.yml): ``tenantwatch_findings_total`` (``tenantwatch_rule``,
``tenantwatch_severity``, ``tenant_bucket``, ``db_collection_name``), ``db_client_operation_duration_seconds_*`` and
``tenantwatch_db_returned_rows_*`` (``tenant_bucket``, ``db_collection_name``), ``tenantwatch_blocks_total`` and
``tenantwatch_http_blocked_total`` (``reason``), ``traces_span_metrics_calls_total`` (``http_route``,
``tenantwatch_severity``). Tenants are the bounded ``tenant_bucket`` values (top-N + ``__other__``): the report never
sees a raw tenant id beyond what the metrics already carry.

Counters are read as "new in each step" the way the shipped recording rules count them:
``counter - (counter offset STEP or counter * 0)``, so a series born inside the period counts with its first value
(``increase()`` would miss a finding that fired once).
"""

from __future__ import annotations

import base64
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenantwatch.tools.report.model import Period

__all__ = ["PrometheusClient", "PrometheusError", "RangeResult", "new_per_step"]


class PrometheusError(Exception):
    """Prometheus could not be reached, is not Prometheus, or rejected a query."""


@dataclass(frozen=True, slots=True)
class RangeResult:
    """One series of a range query: its labels and ``(unix seconds, value)`` points (NaN and Inf dropped)."""

    labels: Mapping[str, str]
    points: list[tuple[float, float]]


def new_per_step(selector: str, by: str, step_seconds: int) -> str:
    """Sum by ``by`` of what the counter ``selector`` added in each step (series born in a step count whole)."""
    offset = f"{selector} offset {step_seconds}s"
    return f"sum by ({by}) (clamp_min({selector} - ({offset} or {selector} * 0), 0))"


class PrometheusClient:
    """``GET`` requests to one Prometheus server's HTTP API, each bounded by ``timeout`` seconds."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise PrometheusError(f"not an http(s) URL: {url!r} (e.g. http://127.0.0.1:9090)")
        self._headers: dict[str, str] = {}
        if parsed.username is not None:
            user = urllib.parse.unquote(parsed.username)
            password = urllib.parse.unquote(parsed.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        netloc = parsed.hostname if parsed.port is None else f"{parsed.hostname}:{parsed.port}"
        if ":" in parsed.hostname:
            netloc = f"[{parsed.hostname}]" + ("" if parsed.port is None else f":{parsed.port}")
        self.url = urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path.rstrip("/"), "", ""))
        """The server's URL without credentials: the only form the report shows."""
        self._timeout = timeout

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        query = urllib.parse.urlencode(params)
        address = f"{self.url}{path}?{query}" if query else f"{self.url}{path}"
        try:
            request = urllib.request.Request(address, headers=self._headers)
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            detail = _error_text(error.read())
            raise PrometheusError(f"Prometheus at {self.url} answered {error.code} for {path}{detail}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {reason}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise PrometheusError(f"{self.url}{path} did not answer JSON: is this a Prometheus server?") from None
        if not isinstance(document, dict) or document.get("status") != "success":
            message = document.get("error") if isinstance(document, dict) else None
            raise PrometheusError(f"Prometheus at {self.url} rejected {path}: {message or 'unexpected answer'}")
        return document.get("data")

    def check(self) -> str:
        """The server's version; raises :class:`PrometheusError` when it is down or not Prometheus."""
        data = self._get("/api/v1/status/buildinfo", {})
        if not isinstance(data, dict) or "version" not in data:
            raise PrometheusError(f"{self.url} does not look like Prometheus (no build info)")
        return str(data["version"])

    def query_range(self, expr: str, period: Period) -> list[RangeResult]:
        data = self._get(
            "/api/v1/query_range",
            {
                "query": expr,
                "start": f"{period.start.timestamp():.3f}",
                "end": f"{period.end.timestamp():.3f}",
                "step": f"{period.step_seconds}s",
            },
        )
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise PrometheusError(f"Prometheus answered no matrix for {expr}")
        results: list[RangeResult] = []
        for entry in data.get("result") or []:
            points: list[tuple[float, float]] = []
            for stamp, text in entry.get("values") or []:
                value = float(text)
                if math.isfinite(value):
                    points.append((float(stamp), value))
            labels = {str(k): str(v) for k, v in (entry.get("metric") or {}).items()}
            results.append(RangeResult(labels, points))
        return results


def _error_text(body: bytes) -> str:
    try:
        message = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    return f": {message}" if message else ""
