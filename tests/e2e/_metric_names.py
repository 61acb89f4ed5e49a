"""Every metric name the alert rules and the Grafana dashboards use, for the end-to-end check that each exists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

CONFIG = Path(__file__).resolve().parents[2] / "collector-config"

_FUNCTIONS = {
    "sum",
    "rate",
    "increase",
    "histogram_quantile",
    "topk",
    "clamp_min",
    "by",
    "without",
    "or",
    "and",
    "unless",
    "offset",
    "le",
    "label_values",
    "count",
    "avg",
    "max",
    "min",
    "bool",
    "on",
    "ignoring",
    "group_left",
}
_NAME = re.compile(
    r"(?<![\w:\"$.{=~])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[(]|\s*$|\s*[-+*/><=!)]|\s+(?:or|unless|and|offset)\b)"
)
_NAME_REGEX = re.compile(r'\{__name__=~"([^"]+)"\}')
_LABELS = re.compile(r"\{[^}]*\}")


def _exprs_in_rules() -> list[str]:
    exprs: list[str] = []
    for file in sorted((CONFIG / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(file.read_text())["groups"]:
            exprs.extend(str(rule["expr"]) for rule in group["rules"])
    return exprs


def _exprs_in_dashboards() -> list[str]:
    exprs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            definition = node.get("definition")
            if isinstance(definition, str) and definition.startswith("label_values("):
                exprs.append(definition[len("label_values(") : definition.index(",")])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for file in sorted((CONFIG / "grafana" / "dashboards").glob("*.json")):
        walk(json.loads(file.read_text()))
    return exprs


def names_in_expr(expr: str) -> set[str]:
    """Metric names (or, for ``{__name__=~"..."}`` selectors, ``re:<regex>``) an expression selects."""
    found = {f"re:{pattern}" for pattern in _NAME_REGEX.findall(expr)}
    stripped = _LABELS.sub("{}", _NAME_REGEX.sub("", expr))
    stripped = re.sub(r"\[[^\]]*\]", "[]", stripped)
    stripped = re.sub(r"\bby \([^)]*\)", "", stripped)
    for name in _NAME.findall(stripped):
        if name not in _FUNCTIONS and not name.startswith("$") and not re.fullmatch(r"\d.*", name):
            found.add(name)
    return found


def metric_names_in_configs() -> set[str]:
    names: set[str] = set()
    for expr in _exprs_in_rules() + _exprs_in_dashboards():
        names |= names_in_expr(expr)
    return names
