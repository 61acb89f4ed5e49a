"""``tenantwatch baseline``: write, update and check the reviewed baseline of accepted findings (the CI gate's).

Reads findings documents (``tenantwatch scan --json`` output, or the pytest gate's ``--tenantwatch-findings FILE``)
and writes the baseline file: a new finding becomes an entry with an empty reason, a known one keeps its reason, a
moved one (same rule, statement, file and function on another line) gets its new line and keeps its reason, and an
entry nothing matched (stale) stays unless ``--prune``. ``--check`` validates the file instead (exit 1 while a reason
is empty) and, given findings documents, gates them against it (exit 1 on a new finding at or above ``--fail-on``).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import IO, Any

from tenantwatch.attributes import SEVERITIES
from tenantwatch.cli._common import EXIT_FINDINGS, EXIT_OK, UsageError
from tenantwatch.tools.gate import DEFAULT_FAIL_ON, Baseline, BaselineError, compare, refreshed, render
from tenantwatch.tools.gate.baseline import BASELINE_FORMAT
from tenantwatch.tools.groups import FindingGroups

__all__ = ["add_parser", "run"]

DEFAULT_BASELINE = "tenantwatch-baseline.yaml"
_EPILOG = """\
examples:
  pytest --tenantwatch --tenantwatch-findings findings.json     # first run: every finding is new
  tenantwatch baseline findings.json                            # writes tenantwatch-baseline.yaml, reasons empty
  $EDITOR tenantwatch-baseline.yaml                             # give every accepted finding a reason
  tenantwatch baseline --check                                  # exit 1 while a reason is empty
  pytest --tenantwatch=tenantwatch-baseline.yaml                # the gate: fails on findings not in the baseline
  tenantwatch scan traces.jsonl --json > f.json && tenantwatch baseline f.json --prune   # refresh, drop stale

exit codes: 0 written / valid, 1 --check failed (an empty reason, or a new finding), 2 usage or input error.
"""


def add_parser(sub: Any) -> None:
    """Register ``baseline`` on the subcommand parsers."""
    parser = sub.add_parser(
        "baseline",
        help="write, update or check the CI gate's baseline of accepted findings",
        description="Write or update the reviewed baseline file from findings documents (tenantwatch scan --json, "
        "pytest --tenantwatch-findings), keeping the reasons already written; --check validates it.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("findings", nargs="*", help="findings documents (JSON; '-' reads standard input)")
    parser.add_argument(
        "--baseline", "-b", metavar="FILE", default=DEFAULT_BASELINE, help=f"baseline file (default {DEFAULT_BASELINE})"
    )
    parser.add_argument(
        "--root", metavar="DIR", default=".", help="project root the code locations are relative to (default: .)"
    )
    parser.add_argument("--prune", action="store_true", help="drop entries no finding matched (stale)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the baseline instead of writing it: exit 1 while a reason is empty, or on a new finding of "
        "the findings documents given",
    )
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default=DEFAULT_FAIL_ON,
        help=f"with --check and findings: lowest severity of a new finding that fails (default {DEFAULT_FAIL_ON})",
    )


def _groups(paths: list[str], stdin: IO[str]) -> FindingGroups:
    groups = FindingGroups()
    for path in paths:
        try:
            text = stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{path}: cannot read findings document: {exc.strerror or exc}") from exc
        try:
            groups.merge(FindingGroups.from_json(json.loads(text)))
        except json.JSONDecodeError as exc:
            if _is_a_baseline(text):
                raise UsageError(
                    f"{path} is a baseline file, not a findings document: give the JSON from `tenantwatch scan "
                    f"--json` or `pytest --tenantwatch-findings FILE` (the baseline itself goes to --baseline)"
                ) from exc
            raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
        except ValueError as exc:
            raise UsageError(f"{path}: {exc}") from exc
    return groups


def _is_a_baseline(text: str) -> bool:
    """The text reads as a baseline file (its ``format:`` line), not as the findings document expected."""
    return re.search(rf"^format:\s*['\"]?{re.escape(BASELINE_FORMAT)}['\"]?\s*$", text, re.MULTILINE) is not None


def _load(path: Path, *, missing_ok: bool) -> Baseline | None:
    if missing_ok and not path.exists():
        return None
    try:
        return Baseline.load(path)
    except BaselineError as exc:
        issues = [issue.to_json() for issue in exc.issues]
        raise UsageError(str(exc), details={"file": str(path), "issues": issues}) from exc


def run(args: argparse.Namespace, stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    """Write/update or check the baseline; returns the exit code (bad input raises :class:`UsageError`)."""
    path = Path(args.baseline)
    root = Path(args.root).resolve()
    if args.check:
        return _check(args, path, root, stdin, stdout)
    if not args.findings:
        raise UsageError("give the findings documents to write the baseline from (or --check to validate it)")
    groups = _groups(args.findings, stdin)
    current = _load(path, missing_ok=True)
    result = compare(groups, current, root=root)
    updated, counts = refreshed(result, current, prune=args.prune)
    updated.write(path)
    stale = f"{counts['stale']} stale pruned" if args.prune else f"{counts['stale']} stale kept (--prune drops them)"
    stdout.write(
        f"{path}: {len(updated)} entries: {counts['added']} added, {counts['moved']} moved, {counts['kept']} kept, "
        f"{stale}\n"
    )
    unreviewed = updated.unreviewed()
    if unreviewed:
        stdout.write(f"{len(unreviewed)} entries have no reason yet: review them and write why each is acceptable\n")
    if groups.findings == 0 and not len(groups):
        stderr.write("tenantwatch baseline: the findings documents hold no finding\n")
    return EXIT_OK


def _check(args: argparse.Namespace, path: Path, root: Path, stdin: IO[str], stdout: IO[str]) -> int:
    baseline = _load(path, missing_ok=False)
    assert baseline is not None
    code = EXIT_OK
    unreviewed = baseline.unreviewed()
    if unreviewed:
        stdout.write(f"{path}: {len(unreviewed)} of {len(baseline)} entries have an empty reason:\n")
        for entry in unreviewed:
            line = f"line {entry.source_line}: " if entry.source_line else ""
            stdout.write(f"  {line}{entry.rule} at {entry.location} (fingerprint {entry.fingerprint})\n")
        code = EXIT_FINDINGS
    else:
        stdout.write(f"{path}: OK, {len(baseline)} entries, every one with a reason\n")
    if args.findings:
        result = compare(_groups(args.findings, stdin), baseline, root=root, fail_on=args.fail_on)
        stdout.write(render(result))
        if result.failed:
            code = EXIT_FINDINGS
    return code
