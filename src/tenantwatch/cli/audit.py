"""``tenantwatch audit DATABASE_URL``: tenant isolation lints of a PostgreSQL schema, and its RLS coverage.

Thin: arguments in, :func:`tenantwatch.tools.audit.run_audit` and :func:`~tenantwatch.tools.audit.export.
export_coverage` do the work. Exit codes: 0 no lint at or above ``--fail-on``, 1 some lint is, 2 usage, connection
or export error (a clear message, the password of the URL never shown).
"""

from __future__ import annotations

import argparse
import json
from typing import IO, Any, Final, cast

from tenantwatch.cli._common import EXIT_FINDINGS, EXIT_OK, UsageError
from tenantwatch.cli._database import connect_engine, hide_password, safe_url
from tenantwatch.config import ConfigError, Settings, load_settings

__all__ = ["FAIL_ON_CHOICES", "add_parser", "run"]

FAIL_ON_CHOICES: Final = ("info", "warn", "error", "never")

_EXAMPLES = """\
examples:
  tenantwatch audit postgresql+psycopg://admin@db/app --role app
  tenantwatch audit "$DATABASE_URL" --config rules.yaml --json > audit.json
  tenantwatch audit "$DATABASE_URL" --fail-on error          # CI: fail only on ERROR lints
  OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 tenantwatch audit "$DATABASE_URL" --export

lints (id, name, level):
{lints}

exit codes: 0 no lint at or above --fail-on, 1 lints found, 2 usage, connection or export error
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``audit`` on the subcommand parsers (every option of the command is declared here)."""
    from tenantwatch.cli.audit_compare import COMPARE_EXAMPLES, COMPARE_HELP
    from tenantwatch.tools.audit.lints import LINTS

    audit: argparse.ArgumentParser = sub.add_parser(
        "audit",
        help="lint a PostgreSQL schema for tenant isolation (RLS, policies, tenant columns, roles)",
        description=(
            "Read the catalog of a PostgreSQL database and report tenant isolation problems: tenant tables without "
            "row level security, RLS not forced, policies that are always true or ignore the tenant, nullable or "
            "unindexed tenant columns, foreign keys without the tenant column, an application role that bypasses "
            "RLS. Each lint has an id, a level and the SQL to fix it. Prints the RLS coverage (share of tenant "
            "tables with RLS enabled and forced) and, with --export, sends it over OTLP."
        ),
        epilog=_EXAMPLES.format(
            lints="\n".join(f"  {kind.id} {kind.name:<28} {kind.level}" for kind in LINTS),
        )
        + "\n"
        + COMPARE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument(
        "database_url",
        nargs="?",
        metavar="DATABASE_URL",
        help="SQLAlchemy URL of the PostgreSQL database, e.g. postgresql+psycopg://admin@db/app",
    )
    audit.add_argument(
        "--config",
        metavar="RULES_FILE",
        help="rules file: tenant_tables, tenant_columns, tenant_keys, rls.setting (default: $TENANTWATCH_RULES_FILE)",
    )
    audit.add_argument(
        "--tenant-column",
        action="append",
        default=[],
        metavar="COLUMN",
        help="a column that makes a table tenant-scoped (repeatable; default: the rules file's tenant_columns)",
    )
    audit.add_argument(
        "--role",
        metavar="ROLE",
        help="the role the application connects as (default: the role of DATABASE_URL)",
    )
    audit.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    audit.add_argument(
        "--fail-on",
        type=str.lower,
        choices=FAIL_ON_CHOICES,
        default=None,  # "warn"; None tells an explicit --fail-on from the default (refused with --compare)
        help="lowest lint level that makes the exit code 1 (default: warn; 'never': always 0)",
    )
    audit.add_argument(
        "--export",
        action="store_true",
        help="send the RLS coverage gauges over OTLP (standard OTEL_EXPORTER_OTLP_* variables)",
    )
    audit.add_argument("--compare", nargs=2, metavar=("URL_A", "URL_B"), help=COMPARE_HELP)
    audit.add_argument(
        "--schema",
        action="append",
        metavar="NAME",
        help="with --compare: compare only this schema (repeatable; default: every non-system schema)",
    )
    return audit


def _settings(args: argparse.Namespace) -> Settings:
    columns = [c.strip().lower() for c in args.tenant_column if c.strip()]
    try:
        return load_settings(args.config, tenant_columns=columns or None)
    except ConfigError as exc:
        raise UsageError(f"{args.config or 'configuration'}: {exc}") from exc


def run(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """Audit the database; returns the exit code."""
    from tenantwatch.tools.audit import RoleNotFoundError, run_audit
    from tenantwatch.tools.audit.export import ExportFailedError, export_coverage

    if args.compare:
        if args.database_url:
            raise UsageError("give either DATABASE_URL (lints) or --compare URL_A URL_B (drift), not both")
        lint_only = [
            option
            for option, given in (
                ("--config", args.config is not None),
                ("--tenant-column", bool(args.tenant_column)),
                ("--role", args.role is not None),
                ("--fail-on", args.fail_on is not None),
                ("--export", args.export),
            )
            if given
        ]
        if lint_only:
            raise UsageError(
                f"{', '.join(lint_only)} {'goes' if len(lint_only) == 1 else 'go'} with the lints (DATABASE_URL), "
                "not with --compare: drift compares the two schemas as they are (exit 1 on any drift)"
            )
        from tenantwatch.cli.audit_compare import run_compare

        url_a, url_b = args.compare
        return run_compare(url_a, url_b, as_json=args.json, schemas=args.schema, out=stdout, err=stderr)
    if args.schema:
        raise UsageError("--schema goes with --compare")
    url: str | None = args.database_url
    if not url:
        raise UsageError("DATABASE_URL is required, e.g. tenantwatch audit postgresql+psycopg://admin@db/app")
    settings = _settings(args)
    source = safe_url(url)
    engine = connect_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            raise UsageError(f"audit reads PostgreSQL catalogs; {source} is {engine.dialect.name}")
        try:
            with engine.connect() as connection:
                result = run_audit(
                    connection, settings, source=source, role=args.role, fail_on=_level(args.fail_on or "warn")
                )
        except RoleNotFoundError as exc:
            raise UsageError(f"--role: no role {exc} in {source}") from exc
        except UsageError:
            raise
        except Exception as exc:
            message = hide_password(str(exc).split("\n(Background on this error")[0].strip(), url)
            raise UsageError(f"cannot read the catalog of {source}: {message}") from exc
    finally:
        engine.dispose()
    snapshot = result.snapshot
    hidden = (
        f"role {snapshot.connected_as} cannot see the columns of {snapshot.hidden_tables} "
        f"table{'s' if snapshot.hidden_tables != 1 else ''}: grant SELECT or connect as the owner"
        if snapshot.hidden_tables
        else ""
    )
    if not snapshot.tenant_tables:
        cause = (
            hidden
            if hidden
            else f"no table has a tenant column ({', '.join(settings.tenant_columns)}) and tenant_tables names "
            "none; pass --config or --tenant-column"
        )
        raise UsageError(
            f"no tenant table in {source}: {cause}",
            details={"database": snapshot.coverage.database, "url": source, "hidden_tables": snapshot.hidden_tables},
        )
    if hidden:
        stderr.write(f"tenantwatch audit: warning: {hidden} (those tables are not audited)\n")
    code = EXIT_FINDINGS if result.failing else EXIT_OK
    if args.export:
        try:
            target = export_coverage(result.snapshot.coverage)
        except ExportFailedError as exc:
            raise UsageError(f"--export: {exc}") from exc
        stderr.write(f"exported tenantwatch.rls.coverage = {result.snapshot.coverage.ratio:.3f} to {target}\n")
    if args.json:
        stdout.write(json.dumps(result.to_json(code), indent=2) + "\n")
    else:
        stdout.write(result.to_text(code))
    return code


def _level(fail_on: str) -> Any:
    """``--fail-on`` as the result's level: ``INFO``, ``WARN``, ``ERROR`` or ``NEVER``."""
    return cast(Any, fail_on.upper())
