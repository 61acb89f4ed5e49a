"""``tenantwatch init``: write a commented starter rules file from a database's catalog.

The tenant tables are found the way the instrumentation finds them on first connect
(:meth:`tenantwatch.sql.tables.TenantTables.learn_from_connection`: every table with one of the tenant columns) and
written as ``tenant_tables``; every other key is shown with its default, commented out, next to where suppressions
go. The file is checked with the validation the library runs at start-up before it is written, and an existing file
is never overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tenantwatch.cli._common import EXIT_OK, UsageError
from tenantwatch.cli._database import learn_tenant_tables, safe_url
from tenantwatch.config import ConfigError, Settings, load_settings
from tenantwatch.version import __version__

__all__ = ["add_parser", "render", "run"]

_DEFAULT_COLUMNS = Settings.model_fields["tenant_columns"].default


def add_parser(sub: Any) -> None:
    """Register ``init`` on the subcommand parsers."""
    init = sub.add_parser(
        "init",
        help="write a commented starter rules file with the tenant tables of a database",
        description=(
            "Read the catalog of a database, find its tenant tables (tables with a tenant column) and write a "
            "commented starter rules file: the tables found, every setting with its default, where suppressions go. "
            "An existing file is kept unless --force is given."
        ),
    )
    init.add_argument(
        "--database-url",
        metavar="URL",
        required=True,
        help="SQLAlchemy URL of the database, e.g. postgresql+psycopg://app@db/app or sqlite:///app.db",
    )
    init.add_argument(
        "-o", "--output", metavar="FILE", default="rules.yaml", help="file to write (default rules.yaml; '-': stdout)"
    )
    init.add_argument(
        "--tenant-column",
        action="append",
        default=[],
        metavar="COLUMN",
        help=f"a column that makes a table tenant-scoped (repeatable; default: {', '.join(_DEFAULT_COLUMNS)})",
    )
    init.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def _tables(found: Mapping[str, str]) -> list[tuple[str, str]]:
    """``table -> column`` to write: schema-qualified where discovery saw a schema, each table once."""
    qualified = {key: column for key, column in found.items() if "." in key}
    covered = {key.rpartition(".")[2] for key in qualified}
    bare = {key: column for key, column in found.items() if "." not in key and key not in covered}
    return sorted({**bare, **qualified}.items())


def _yaml_text(value: str) -> str:
    """A YAML scalar for a table or column name: plain when safe, double-quoted otherwise."""
    plain = value.replace("_", "").replace(".", "").isalnum() and not value[0].isdigit()
    if plain and value.lower() not in ("true", "false", "yes", "no", "on", "off", "null", "y", "n"):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(tables: Sequence[tuple[str, str]], columns: Sequence[str], *, source: str) -> str:
    """The starter rules file for ``tables`` (``table, tenant column``) found with ``columns`` in ``source``."""
    now = datetime.now(UTC).strftime("%Y-%m-%d")
    out = [
        f"# tenantwatch rules file, written by `tenantwatch init` {__version__} on {now}",
        f"# from the catalog of {source}.",
        "# Every key is documented in docs/rules-file.md; check this file with `tenantwatch check-config FILE`.",
        "# Precedence: explicit argument > TENANTWATCH_* environment variable > this file > default.",
        "",
        "mode: monitor                  # monitor | enforce (block critical statements) | off",
        "",
        "# A table with one of these columns is tenant-scoped (discovered from the catalog at run time too).",
        f"tenant_columns: [{', '.join(_yaml_text(c) for c in columns)}]",
        "",
    ]
    if tables:
        out.append(f"# The {len(tables)} tenant table(s) found in the catalog, with their tenant column.")
        out.append("tenant_tables:")
        out.extend(f"  {_yaml_text(table)}: {_yaml_text(column)}" for table, column in tables)
    else:
        out.append(f"# No table with a tenant column ({', '.join(columns)}) was found: name them here,")
        out.append("# or run init again with --tenant-column.")
        out.append("tenant_tables:                 # e.g. legacy_orders: org")
    out += [
        "",
        "# exclude_tables: [countries]   # never tenant-scoped, even with a tenant column",
        "# include_tables: []            # when set, only these discovered tables count",
        "# discover: true                # learn tenant tables from the catalog on first connect",
        "# superuser_roles: [superuser, admin]   # roles that must not write",
        "# tenant_label_cap: 100         # tenants with their own metric label; the rest share __other__",
        "",
        "# Per rule: enabled, severity (info | warning | high | critical) and the rule's own options.",
        "# Shown with their defaults; uncomment to change one.",
        "rules:",
        "  # missing_tenant_filter: {enabled: true, severity: critical, latent_key_severity: warning}",
        "  # cross_tenant: {severity: critical}",
        "  # cross_tenant_read: {max_rows: 1000, severity: critical}  # rows of another tenant actually returned",
        "  # unscoped_write: {severity: critical}",
        "  # no_tenant_context: {severity: high}",
        "  # superuser_write: {severity: high}",
        "  # large_result: {threshold: 1000, severity: warning}     # per_table: {audit_log: 50000}",
        "  # slow_query: {threshold_ms: 500, severity: warning}",
        "  # injection_signal: {min_length: 4, severity: high}",
        "  # test_data: {severity: critical}                        # patterns: ['(?i)@example\\.']",
        "  # stale_tenant_context: {severity: critical}",
        "  # brute_force: {threshold: 10, window_seconds: 60, severity: high}",
        "  # bulk_write: {threshold: 50, window_seconds: 60, severity: high}",
        "  # rapid_write: {threshold: 10, window_seconds: 1, severity: high}",
        "  # off_hours_write: {enabled: false, start: '22:00', end: '06:00', timezone: UTC, severity: warning}",
        "  # query_rate_spike: {threshold: 50, window_seconds: 10, deviations: 4, warmup: 6, severity: warning}",
        "  # repeated_violations: {threshold: 5, window_seconds: 3600, severity: high}",
        "",
        "# Suppressions silence findings that match every field given (at least one of rule, fingerprint, table,",
        "# route). Take the fingerprint from `tenantwatch explain` or the finding's tenantwatch.fingerprint.",
        "suppressions:",
        '  # - {rule: missing_tenant_filter, table: plans, reason: "plans are global"}',
        '  # - {fingerprint: 3f2a9c0d1e2b4a5c, reason: "known, ticket SEC-12"}',
        '  # - {route: "/admin/*", reason: "the admin console is cross-tenant by design"}',
        "",
    ]
    return "\n".join(out)


def _write(path: Path, text: str, *, force: bool) -> None:
    """Write ``text`` to ``path`` in one step (a temporary file renamed over it); never replaces an existing file
    unless ``force``."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists: pass --force to overwrite it")
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        if force:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails if the file appeared meanwhile: still never overwritten
            finally:
                os.unlink(temporary)
    except FileExistsError as exc:
        raise UsageError(f"{path} exists: pass --force to overwrite it") from exc
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def run(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """Write the starter file; returns the exit code."""
    from tenantwatch.sql.tables import TenantTables

    output = None if args.output == "-" else Path(args.output)
    if output is not None and output.exists() and not args.force:
        raise UsageError(f"{output} exists: pass --force to overwrite it")
    columns = [c.strip().lower() for c in args.tenant_column if c.strip()] or list(_DEFAULT_COLUMNS)
    try:
        settings = load_settings(environ={}, tenant_columns=columns)
    except ConfigError as exc:
        raise UsageError(f"--tenant-column: {exc}") from exc
    tables = TenantTables(settings)
    dialect, found = learn_tenant_tables(tables, args.database_url)
    text = render(
        _tables(tables.snapshot()), settings.tenant_columns, source=f"{dialect} {safe_url(args.database_url)}"
    )
    _check(text)
    if output is None:
        stdout.write(text)
    else:
        _write(output, text, force=args.force)
        stderr.write(f"wrote {output}: {found} tenant table(s) from the {dialect} catalog\n")
    if not found:
        stderr.write(
            f"note: no table has a tenant column ({', '.join(settings.tenant_columns)}); "
            "name your tables under tenant_tables, or pass --tenant-column\n"
        )
    return EXIT_OK


def _check(text: str) -> None:
    """The generated file must load: a table name that YAML or the settings cannot take is an error here, not later."""
    with tempfile.TemporaryDirectory(prefix="tenantwatch-init-") as directory:
        path = Path(directory) / "rules.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_settings(path, environ={})
        except ConfigError as exc:  # names are quoted, so this should not happen: never write a file that fails
            raise UsageError(f"the generated rules file does not load: {exc}") from exc
