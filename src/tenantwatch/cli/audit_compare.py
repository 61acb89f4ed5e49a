"""``tenantwatch audit --compare URL_A URL_B``: schema drift between two environments (see docs/cli.md).

:func:`run_compare` is the whole command; the ``audit`` subcommand's parser calls it with its ``--compare``,
``--schema`` and ``--json`` options. The work is :mod:`tenantwatch.tools.schema_drift`; this module only checks the
arguments, prints and picks the exit code.
"""

from __future__ import annotations

import json
from typing import IO, Final

from tenantwatch.cli._common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, printable

__all__ = ["COMPARE_EXAMPLES", "COMPARE_HELP", "run_compare"]

_COMMAND = "tenantwatch audit --compare"

COMPARE_HELP: Final = (
    "compare the schemas of two PostgreSQL databases (tables, columns, indexes, constraints, policies, RLS flags) "
    "and print the drift; exit 1 on drift"
)
"""``help=`` of the ``audit`` parser's ``--compare URL_A URL_B`` option."""
COMPARE_EXAMPLES: Final = """\
schema drift:
  tenantwatch audit --compare postgresql+psycopg://app@staging/okr postgresql+psycopg://app@prod/okr
  tenantwatch audit --compare "$STAGING_URL" "$PROD_URL" --schema public --json
"""
"""Lines for the ``audit`` parser's epilog (use ``RawDescriptionHelpFormatter`` to keep them)."""


def run_compare(
    url_a: str,
    url_b: str,
    *,
    as_json: bool,
    schemas: list[str] | None,
    out: IO[str],
    err: IO[str],
) -> int:
    """Compare the schemas of the databases at ``url_a`` and ``url_b``; print the diff (or with ``as_json`` the
    JSON document) on ``out``. Returns 0 no drift, 1 drift, 2 a usage or connection error (a message on ``err``,
    and with ``as_json`` a JSON error document on ``out``; never a traceback, never a password)."""
    from tenantwatch.tools import schema_drift

    def fail(*messages: str) -> int:
        for message in messages:
            err.write(printable(f"{_COMMAND}: {message}\n"))
        if as_json:
            out.write(json.dumps({"error": "; ".join(messages), "exit_code": EXIT_USAGE}) + "\n")
        return EXIT_USAGE

    wanted = list(dict.fromkeys(schemas)) if schemas else None
    if wanted is not None:
        bad = [name for name in wanted if not name or schema_drift.is_system_schema(name)]
        if bad:
            return fail(f"--schema {bad[0]!r}: a system schema (or empty name), not compared")
    if url_a.strip() == url_b.strip():
        return fail(f"A and B are the same database URL ({schema_drift.safe_url(url_a)}): nothing to compare")
    snapshots: list[schema_drift.Snapshot] = []
    errors: list[str] = []
    for label, url in (("A", url_a), ("B", url_b)):
        try:
            snapshots.append(schema_drift.snapshot(url, schemas=wanted))
        except schema_drift.SnapshotError as exc:
            errors.append(f"{label}: {exc}")
        except Exception as exc:  # a driver failing in a way SnapshotError does not cover: still no traceback
            errors.append(f"{label}: {schema_drift.safe_url(url)}: unexpected {type(exc).__name__}")
    if errors:
        return fail(*errors)
    a, b = snapshots
    if wanted is not None:
        missing = [name for name in wanted if name not in a.schemas and name not in b.schemas]
        if missing:
            return fail(f"schema {missing[0]!r} exists in neither database")
    if a.table_count == 0 and b.table_count == 0:
        schemas_shown = ", ".join(wanted or sorted(set(a.schemas) | set(b.schemas))) or "-"
        return fail(f"nothing to compare: neither database has a table in schemas {schemas_shown}")
    drift = schema_drift.diff(a, b)
    if as_json:
        out.write(json.dumps(drift.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(printable(drift.render()))
    return EXIT_FINDINGS if drift.has_drift else EXIT_OK
