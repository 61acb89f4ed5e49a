"""SARIF 2.1.0 from grouped findings, for code scanning (``scan --sarif``, the pytest gate's ``--tenantwatch-sarif``).

One result per finding group, at the statement's code location when known (``code.filepath`` made relative to
``root`` when it lies under it, so a code-scanning upload can place it), with the finding fingerprint as the
result's ``partialFingerprints["tenantwatch/v1"]`` (a stable identity across runs) and the count, first/last seen and
example trace ids as properties. ``tool.driver.rules`` describes every rule that appears, from its metadata (title,
summary, remediation, default severity). Severity maps to SARIF levels: critical and high → ``error``, warning →
``warning``, info → ``note``. With a baseline, ``baseline_state`` gives each result's ``baselineState`` (``new``,
``unchanged``; stale baseline entries are the caller's to list).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from tenantwatch.tools.groups import FindingGroup
from tenantwatch.version import __version__

__all__ = ["SARIF_SCHEMA", "sarif_document", "sarif_level"]

SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS: Final = {"critical": "error", "high": "error", "warning": "warning", "info": "note"}


def sarif_level(severity: str) -> str:
    return _LEVELS.get(severity, "warning")


def _rule_descriptor(rule_id: str) -> dict[str, Any]:
    import tenantwatch.rules  # noqa: F401  (registers the catalogue)
    from tenantwatch.core.rule import rule_by_id

    try:
        rule = rule_by_id(rule_id)
    except KeyError:  # a rule of another tenantwatch version, read from a stored document
        return {"id": rule_id, "name": rule_id}
    meta = rule.meta
    return {
        "id": rule_id,
        "name": meta.title,
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": meta.summary},
        "help": {"text": meta.remediation},
        "defaultConfiguration": {"level": sarif_level(meta.severity)},
        "properties": {
            "tags": list(meta.categories),
            "tenantwatch.severity": meta.severity,
            "documentation": f"docs/rules/{rule_id}.md",
        },
    }


def _uri(path: str, root: Path | None) -> str:
    if root is not None:
        try:
            relative = os.path.relpath(path, root)
        except ValueError:  # another drive (Windows)
            relative = path
        if not relative.startswith(".."):
            return Path(relative).as_posix()
    if Path(path).is_absolute():  # outside the root: an absolute file URI, as SARIF wants for absolute locations
        return Path(path).as_uri()
    return Path(path).as_posix()


def _result(group: FindingGroup, rule_index: int, root: Path | None, state: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": group.rule,
        "ruleIndex": rule_index,
        "level": sarif_level(group.severity),
        "message": {"text": group.message},
        "partialFingerprints": {"tenantwatch/v1": group.fingerprint},
        "properties": {
            "tenantwatch.severity": group.severity,
            "count": group.count,
            "table": group.table,
            "statement": group.statement,
            "firstSeenNs": group.first_seen_ns,
            "lastSeenNs": group.last_seen_ns,
            "traceIds": list(group.trace_ids),
        },
    }
    if group.code_filepath:
        location: dict[str, Any] = {
            "physicalLocation": {
                "artifactLocation": {"uri": _uri(group.code_filepath, root)},
                "region": {"startLine": max(group.code_lineno or 1, 1)},
            }
        }
        if group.code_function:
            location["logicalLocations"] = [{"name": group.code_function, "kind": "function"}]
        result["locations"] = [location]
    if state is not None:
        result["baselineState"] = state
    return result


def sarif_document(
    groups: Iterable[FindingGroup],
    *,
    root: str | Path | None = None,
    baseline_state: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run of tenantwatch; ``baseline_state`` maps a fingerprint to its baselineState."""
    base = Path(root).resolve() if root is not None else None
    rule_ids: list[str] = []
    results: list[dict[str, Any]] = []
    for group in groups:
        if group.rule not in rule_ids:
            rule_ids.append(group.rule)
        state = baseline_state.get(group.fingerprint) if baseline_state is not None else None
        results.append(_result(group, rule_ids.index(group.rule), base, state))
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tenantwatch",
                        "version": __version__,
                        "rules": [_rule_descriptor(rule_id) for rule_id in rule_ids],
                    }
                },
                "results": results,
            }
        ],
    }
