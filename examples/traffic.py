"""Traffic for the example OKR service: a configurable mix of normal and bad requests, bounded by count and time.

    python examples/traffic.py --base-url http://127.0.0.1:8000 --requests 500 --duration 60

Kinds of request (``--mix kind=weight,...``):

* ``normal``: the correct endpoints, with valid tokens of every seeded tenant (members of its growth team);
* ``buggy``: the deliberately buggy endpoints (missing filter, cross-tenant lookup, unscoped update, superuser write,
  large export, slow report, string-built search, another team's key results, check-ins without a team filter);
* ``auth``: missing, forged, expired and unsigned tokens (401s, rejected tokens, brute force);
* ``attack``: SQL injection, XSS, path traversal and command injection patterns in query strings.

Loopback only unless ``--allow-remote``. A progress bar while it runs, a summary table at the end. Importable:
:func:`run` drives any httpx transport (``httpx.ASGITransport`` for an in-process app).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ipaddress
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

if __package__:  # examples.traffic in a checkout, tenantwatch_examples.traffic when installed
    from .okr_app import auth
    from .okr_app.seed import DEFAULT_TENANTS, TEAMS, Tenant, objective_ids, user_id
else:  # python examples/traffic.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from examples.okr_app import auth
    from examples.okr_app.seed import DEFAULT_TENANTS, TEAMS, Tenant, objective_ids, user_id

DEFAULT_MIX = {"normal": 70, "buggy": 12, "auth": 10, "attack": 8}

ATTACKS = (
    "/search?q=%27%20OR%20%271%27%3D%271",
    "/search?q=1%20UNION%20SELECT%20email%20FROM%20users",
    "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "/search?q=..%2F..%2Fetc%2Fpasswd",
    "/search?q=x%3Bcat%20%2Fetc%2Fpasswd",
)


@dataclass
class TrafficSummary:
    """What was sent: counts by kind and by (kind, status)."""

    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def _parse_mix(text: str) -> dict[str, int]:
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in DEFAULT_MIX:
            raise argparse.ArgumentTypeError(f"unknown kind {name!r}; known: {', '.join(DEFAULT_MIX)}")
        try:
            mix[name] = int(weight)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{name}: weight must be an integer") from exc
    if not any(mix.values()):
        raise argparse.ArgumentTypeError("at least one kind needs a weight above 0")
    return mix


def _token(tenant: Tenant, role: str = "member", *, ttl: int = 3600, key: str | None = None) -> str:
    return auth.make_token(tenant.id, user_id(tenant, role), role, team=tenant.team(TEAMS[0]), ttl=ttl, key=key)


def _unsigned_token(tenant: Tenant) -> str:
    """A token with ``alg: none`` and no signature (must never be accepted)."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"tenant_id": str(tenant.id), "sub": "1", "role": "superuser", "exp": int(time.time()) + 3600}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _objective(tenant: Tenant, rng: random.Random) -> int:
    """An id of one of ``tenant``'s seeded objectives (among its first 200, where traffic concentrates)."""
    ids = objective_ids(tenant)
    return rng.choice(ids[:200])


def _request(kind: str, rng: random.Random) -> tuple[str, str, dict[str, str]]:
    """(method, path, headers) of one request of ``kind``."""
    tenant = rng.choice(DEFAULT_TENANTS)
    bearer = {"authorization": f"Bearer {_token(tenant)}"}
    own = _objective(tenant, rng)
    if kind == "normal":
        path = rng.choice(
            (
                "/objectives?limit=20",
                f"/objectives/{own}",
                "/stats",
                "/search?q=objective",
                f"/objectives/{own}/key-results",
                "/team/key-results",
                "/team/check-ins",
            )
        )
        return "GET", path, bearer
    if kind == "buggy":
        other = rng.choice([t for t in DEFAULT_TENANTS if t.id != tenant.id])
        choice = rng.choice(
            ("list", "lookup", "archive", "superuser", "export", "report", "search", "team", "check-ins")
        )
        if choice == "superuser":
            return (
                "POST",
                f"/admin/objectives/{own}/title?title=Renamed",
                {"authorization": f"Bearer {_token(tenant, 'superuser')}"},
            )
        return {
            "list": ("GET", "/buggy/objectives", bearer),
            "lookup": ("GET", f"/buggy/objectives/{_objective(other, rng)}?org_id={other.id}", bearer),
            "archive": ("POST", "/buggy/objectives/archive-all", bearer),
            "export": ("GET", "/buggy/export", bearer),
            "report": ("GET", "/buggy/report", bearer),
            "search": ("GET", f"/buggy/search?q=objective%20{rng.randint(1, 99)}", bearer),
            "team": ("GET", f"/buggy/team/key-results?team_id={tenant.team(TEAMS[1])}", bearer),
            "check-ins": ("GET", "/buggy/check-ins", bearer),
        }[choice]
    if kind == "auth":
        variant = rng.choice(("none", "forged", "expired", "unsigned"))
        headers = {
            "none": {},
            "forged": {"authorization": f"Bearer {_token(tenant, key='forged-forged-forged-forged-forged')}"},
            "expired": {"authorization": f"Bearer {_token(tenant, ttl=-60)}"},
            "unsigned": {"authorization": f"Bearer {_unsigned_token(tenant)}"},
        }[variant]
        return "GET", "/objectives", headers
    return "GET", rng.choice(ATTACKS), bearer


async def run(
    base_url: str,
    *,
    requests: int = 200,
    duration: float = 60.0,
    mix: dict[str, int] | None = None,
    concurrency: int = 8,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: bool = True,
    seed: int = 7,
    on_response: Callable[[str, int], None] | None = None,
) -> TrafficSummary:
    """Send at most ``requests`` requests within ``duration`` seconds; return what was sent."""
    weights = mix or DEFAULT_MIX
    kinds = [k for k, w in weights.items() if w > 0]
    rng = random.Random(seed)
    plan = rng.choices(kinds, weights=[weights[k] for k in kinds], k=requests)
    summary = TrafficSummary()
    deadline = time.monotonic() + duration
    started = time.monotonic()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for kind in plan:
        queue.put_nowait(kind)
    bar = _progress(requests) if progress else None

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            try:
                kind = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            method, path, headers = _request(kind, rng)
            summary.sent[kind] += 1
            try:
                response = await client.request(method, path, headers=headers)
                summary.statuses[(kind, response.status_code)] += 1
                if on_response is not None:
                    on_response(kind, response.status_code)
            except httpx.HTTPError:
                summary.errors += 1
            if bar is not None:
                bar[0].update(bar[1], advance=1)

    timeout = httpx.Timeout(min(30.0, duration))  # an in-flight request cannot outlive the run by more than this
    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout) as client:
        if bar is not None:
            bar[0].start()
        try:
            await asyncio.gather(*(worker(client) for _ in range(max(1, concurrency))))
        finally:
            if bar is not None:
                bar[0].stop()
    summary.seconds = time.monotonic() - started
    return summary


def _progress(total: int) -> tuple[Progress, TaskID]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )
    return progress, progress.add_task("traffic", total=total)


def print_summary(summary: TrafficSummary, console: Any = None) -> None:
    """The traffic table, on ``console`` (a rich Console; default: a new one on stdout)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sent {summary.total} requests in {summary.seconds:.1f} s ({summary.errors} errors)")
    table.add_column("kind")
    table.add_column("sent", justify="right")
    table.add_column("responses by status")
    for kind in DEFAULT_MIX:
        if summary.sent[kind]:
            statuses = ", ".join(f"{status}: {n}" for (k, status), n in sorted(summary.statuses.items()) if k == kind)
            table.add_row(kind, str(summary.sent[kind]), statuses)
    (console or Console()).print(table)


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=200, help="at most this many requests (default 200)")
    parser.add_argument("--duration", type=float, default=60.0, help="at most this many seconds (default 60)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--mix", type=_parse_mix, default=DEFAULT_MIX, help="e.g. normal=70,buggy=12,auth=10,attack=8")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback base URL")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.requests <= 0 or args.duration <= 0:
        parser.error("--requests and --duration must be positive")
    if not args.allow_remote and not _loopback(args.base_url):
        parser.error(f"{args.base_url} is not a loopback address; pass --allow-remote to send traffic there")
    summary = asyncio.run(
        run(
            args.base_url,
            requests=args.requests,
            duration=args.duration,
            mix=args.mix,
            concurrency=args.concurrency,
            progress=not args.no_progress,
        )
    )
    print_summary(summary)
    return 0 if summary.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
