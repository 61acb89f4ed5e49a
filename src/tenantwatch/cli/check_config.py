"""``tenantwatch check-config``: validate a rules file before deploying it.

Loads the file alone (``TENANTWATCH_*`` variables are ignored, so the file itself is what is checked) with the same
validation the library runs at start-up. Exit 0 and a summary of the effective settings when valid; exit 2 and one
line per bad field, named by its path and position (``rules.large_result.threshold: Input should be greater than 0
(line 4, column 5)``), when not. With ``--json`` both answers are JSON on stdout: ``{"file", "valid": true,
"settings"}`` or ``{"error", "file", "valid": false, "issues": [{"path", "message", "line", "column"}], "exit_code"}``.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import IO, Any

from tenantwatch import environment_variables as env
from tenantwatch.cli._common import EXIT_OK, UsageError, or_dash
from tenantwatch.config import RULE_IDS, ConfigError, Settings, load_settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register ``check-config`` on the subcommand parsers."""
    check = sub.add_parser(
        "check-config",
        help="validate a rules file (exit 2 naming every bad field)",
        description="Validate a rules file: exit 0 when valid, 2 with the path of every bad field otherwise.",
    )
    check.add_argument("file", nargs="?", help=f"rules file (default: ${env.TENANTWATCH_RULES_FILE})")
    check.add_argument("--json", action="store_true", help="print the effective settings as JSON")


def _tenant_tables(settings: Settings) -> str:
    """The declared tenant tables, and where the others come from: discovery at run time, or nowhere."""
    declared = ", ".join(f"{table} ({column})" for table, column in settings.tenant_tables.items())
    if settings.discover:
        found = "every table with a tenant column, learned at run time from ORM mappings and the catalog"
        if settings.include_tables:
            found += f" (of include_tables: {', '.join(settings.include_tables)})"
        return f"{declared}; plus {found}" if declared else found
    return declared or "none (discover is off: no table is tenant-scoped besides the root tables)"


def _hierarchy(settings: Settings) -> list[str]:
    """The tenant keys root first (``organization > team``), each with its columns, root table and parent; without
    ``tenant_keys``, the root tables of ``tenant_roots`` if any."""
    if not settings.tenant_keys:
        roots = [f"{table} (holds {column})" for column, table in settings.tenant_roots.items()]
        return [f"  root tables        {', '.join(roots)}"] if roots else []
    order = (settings.root_key, *settings.finer_keys)
    lines = [f"  tenant keys        {' > '.join(order)}"]
    for name in order:
        key = settings.tenant_keys[name]
        parts = [f"columns {', '.join(key.columns)}", f"root table {key.root or '-'}"]
        if key.parent is not None:
            parts.append(f"parent {key.parent}")
        label = f"key {name}"
        lines.append(f"  {label:<{max(19, len(label) + 2)}}{'; '.join(parts)}")
    return lines


def run(args: argparse.Namespace, stdout: IO[str]) -> int:
    """Validate the file; returns the exit code (a bad file raises :class:`UsageError`)."""
    path = args.file or os.environ.get(env.TENANTWATCH_RULES_FILE)
    if not path:
        raise UsageError(f"give a rules file (or set {env.TENANTWATCH_RULES_FILE})")
    try:
        settings = load_settings(path, environ={})
    except ConfigError as exc:
        issues = [issue.to_json() for issue in exc.issues]
        raise UsageError(str(exc), details={"file": str(path), "valid": False, "issues": issues}) from exc
    if args.json:
        doc = {"file": str(path), "valid": True, "settings": settings.model_dump(mode="json")}
        stdout.write(json.dumps(doc) + "\n")
        return EXIT_OK
    disabled = [rule for rule in RULE_IDS if not settings.enabled(rule)]
    lines = [
        f"{path}: OK",
        f"  mode               {settings.mode}",
        f"  tenant columns     {or_dash(list(settings.tenant_columns))}",
        f"  tenant tables      {_tenant_tables(settings)}",
        *_hierarchy(settings),
        f"  excluded tables    {or_dash(list(settings.exclude_tables))}",
        f"  superuser roles    {or_dash(list(settings.superuser_roles))}",
        f"  disabled rules     {or_dash(disabled)}",
        f"  large_result       > {settings.large_result_threshold} rows",
        f"  slow_query         > {settings.slow_query_ms:g} ms",
        f"  suppressions       {len(settings.suppressions)}",
    ]
    overriding = sorted(
        name for name in os.environ if name.startswith("TENANTWATCH_") and name != env.TENANTWATCH_RULES_FILE
    )
    if overriding:
        lines.append(f"  note: not applied here, but override this file at run time: {', '.join(overriding)}")
    stdout.write("\n".join(lines) + "\n")
    return EXIT_OK
