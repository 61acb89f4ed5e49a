"""The example OKR service on real PostgreSQL and on SQLite, with UUID tenant ids: every endpoint produces exactly its
expected findings, whatever form (UUID, dashed text, hex) the app hands the tenant to the context in."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tenantwatch import attributes as A
from tenantwatch.core.tenant_values import canonical
from tenantwatch.processors.detectors import DETECTOR_IDS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.okr_app import auth
from examples.okr_app.main import TENANT_KEYS, ContextForm, create_app, okr_settings
from examples.okr_app.seed import DEFAULT_TENANTS, objective_ids, user_id

ACME, GLOBEX = DEFAULT_TENANTS[0], DEFAULT_TENANTS[1]
GLOBEX_OBJECTIVE = objective_ids(GLOBEX)[0]
SQLI = "%27%20OR%20%271%27%3D%271"  # ' OR '1'='1
ACME_GROWTH, ACME_PLATFORM = ACME.team("growth"), ACME.team("platform")
"""The callers of these tests are in acme's growth team (``team_id`` claim)."""
GROWTH_KEY_RESULT = 2
"""Key results alternate teams (seed.py): number 2 is acme growth's, number 1 acme platform's."""

NONE: dict[str, set[str]] = {"server": set(), "db": set(), "tables": set()}


def db(*rules: str, table: str = "objectives") -> dict[str, set[str]]:
    """Findings of ``rules`` on the db span, each naming ``table``."""
    return {"server": set(), "db": set(rules), "tables": {table}}


CASES: list[tuple[str, str, str, str, dict[str, set[str]]]] = [
    # (name, method, path, role, expected rules on the server span and on the db spans); order matters: one module
    # database, so the correct bulk archive runs before the buggy one has archived every tenant's done objectives
    ("health", "GET", "/healthz", "member", NONE),
    ("list", "GET", "/objectives?limit=20", "member", NONE),
    ("get by id", "GET", "/objectives/1", "member", NONE),
    ("key results", "GET", "/objectives/1/key-results", "member", NONE),
    ("search", "GET", "/search?q=objective%2012", "member", NONE),
    ("mark done", "POST", "/objectives/2/done", "member", NONE),
    ("archive done (scoped bulk update)", "POST", "/objectives/archive", "member", NONE),
    ("stats", "GET", "/stats", "member", NONE),
    ("missing tenant filter", "GET", "/buggy/objectives", "member", db("missing_tenant_filter")),
    ("cross-tenant lookup by id", "GET", f"/buggy/objectives/{GLOBEX_OBJECTIVE}?org_id={GLOBEX.id}", "member",
     db("cross_tenant")),
    ("same-tenant lookup", "GET", f"/buggy/objectives/3?org_id={ACME.id}", "member", NONE),
    ("same-tenant lookup, id as hex", "GET", f"/buggy/objectives/3?org_id={ACME.id.hex}", "member", NONE),
    ("unscoped bulk update", "POST", "/buggy/objectives/archive-all", "member", db("unscoped_write")),
    ("superuser write", "POST", "/admin/objectives/4/title?title=Renamed", "superuser", db("superuser_write")),
    ("admin write", "POST", "/admin/objectives/5/title?title=Renamed", "admin", db("superuser_write")),
    ("member write on the admin route", "POST", "/admin/objectives/6/title?title=Renamed", "member", NONE),
    ("large export", "GET", "/buggy/export", "member", db("large_result")),
    ("slow report", "GET", "/buggy/report", "member", db("slow_query")),
    ("string-built WHERE", "GET", "/buggy/search?q=objective%2042", "member", db("injection_signal")),
    ("SQLi payload on the bound search", "GET", f"/search?q={SQLI}", "member",
     {"server": {"injection_signal"}, "db": set(), "tables": set()}),
    # organization ⊃ team: the finer key alone scopes a table, and is checked against the caller's team
    ("team key results (team filter only)", "GET", "/team/key-results", "member", NONE),
    ("team check-ins (team-only table)", "GET", "/team/check-ins", "member", NONE),
    ("check-in on the team's key result", "POST", f"/team/key-results/{GROWTH_KEY_RESULT}/check-ins?progress=40",
     "member", NONE),
    ("own team by a trusted team id", "GET", f"/buggy/team/key-results?team_id={ACME_GROWTH}", "member", NONE),
    ("another team of the same organization", "GET", f"/buggy/team/key-results?team_id={ACME_PLATFORM}", "member",
     db("cross_tenant", table="key_results")),
    ("a team of another organization", "GET", f"/buggy/team/key-results?team_id={GLOBEX.team()}", "member",
     db("cross_tenant", table="key_results")),
    ("team-only table without filter", "GET", "/buggy/check-ins", "member",
     db("missing_tenant_filter", table="check_ins")),
    ("check-in stamped with another team", "POST",
     f"/buggy/team/key-results/{GROWTH_KEY_RESULT - 1}/check-ins?team_id={ACME_PLATFORM}&progress=10", "member",
     db("cross_tenant", table="check_ins")),
    ("check-in stamped with the caller's team", "POST",
     f"/buggy/team/key-results/{GROWTH_KEY_RESULT}/check-ins?team_id={ACME_GROWTH}&progress=10", "member", NONE),
]  # fmt: skip


BACKENDS: list[tuple[str, ContextForm, str]] = [
    # (database, form of the tenant in the context, where the tenant hierarchy is declared): PostgreSQL binds
    # uuid.UUID, SQLite binds uuid.hex; "app" is okr_settings(), "rules.yaml" the shipped examples/rules.yaml
    ("postgresql", "uuid", "app"),
    ("postgresql", "hex", "app"),
    ("sqlite", "uuid", "app"),
    ("sqlite", "text", "app"),
    ("sqlite", "uuid", "rules.yaml"),
]
RULES_FILE = Path(__file__).resolve().parents[2] / "examples" / "rules.yaml"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(b, id="-".join(b), marks=[pytest.mark.postgres] if b[0] == "postgresql" else []) for b in BACKENDS
    ],
)
def okr(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, InMemorySpanExporter]]:
    database, form, declared = request.param
    admin = None
    if database == "postgresql":
        postgres_dsn: dict[str, Any] = request.getfixturevalue("postgres_dsn")
        admin = psycopg.connect(
            host=postgres_dsn["host"],
            port=postgres_dsn["port"],
            user=postgres_dsn["user"],
            dbname=postgres_dsn["dbname"],
            autocommit=True,
        )
        admin.execute("DROP DATABASE IF EXISTS okr_example")
        admin.execute("CREATE DATABASE okr_example")
        url = f"postgresql+psycopg://{postgres_dsn['user']}@{postgres_dsn['host']}:{postgres_dsn['port']}/okr_example"
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('okr')}/okr.db"
    exporter = InMemorySpanExporter()
    settings = okr_settings(
        RULES_FILE if declared == "rules.yaml" else None,
        tenant_keys=None if declared == "rules.yaml" else TENANT_KEYS,
        environ={},
        # the windowed detectors judge streams, not single requests; tests/processors/test_windows.py covers them
        rules={rule: {"enabled": False} for rule in DETECTOR_IDS},
    )
    app, handle, engine = create_app(
        url,
        settings=settings,
        context_form=form,
        exporters=False,
        span_exporter=SimpleSpanProcessor(exporter),
        set_global=False,
    )
    try:
        yield app, exporter
    finally:
        handle.shutdown()
        engine.dispose()
        if admin is not None:
            admin.execute("DROP DATABASE IF EXISTS okr_example WITH (FORCE)")
            admin.close()


def findings_by_kind(spans: list[ReadableSpan]) -> dict[str, set[str]]:
    """Rule ids on the server span and on the db spans, and the tables the db spans' finding events name."""
    found: dict[str, set[str]] = {"server": set(), "db": set(), "tables": set()}
    for span in spans:
        rules = set((span.attributes or {}).get(A.FINDINGS, ()))
        if not rules:
            continue
        kind = "server" if span.kind is SpanKind.SERVER else "db"
        if kind == "db":
            assert span.kind is SpanKind.CLIENT and A.DB_TENANT_FILTER in (span.attributes or {}), span.name
            events = [e.attributes or {} for e in span.events if e.name == A.FINDING_EVENT]
            assert {str(e[A.RULE]) for e in events} == rules
            found["tables"] |= {str(e.get(A.FINDING_TABLE)) for e in events}
        found[kind] |= rules
    return found


async def call(
    app: Any, method: str, path: str, role: str, *, token: str | None = None, client: str = "127.0.0.1"
) -> httpx.Response:
    bearer = token if token is not None else auth.make_token(ACME.id, user_id(ACME, role), role, team=ACME_GROWTH)
    transport = httpx.ASGITransport(app=app, client=(client, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://okr") as http:
        return await http.request(method, path, headers={"authorization": f"Bearer {bearer}"})


def test_seed_has_three_tenants_and_one_above_5000_objectives() -> None:
    assert len(DEFAULT_TENANTS) >= 3
    assert max(t.objectives for t in DEFAULT_TENANTS) > 5000


@pytest.mark.parametrize(("method", "path", "role", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_endpoint_produces_exactly_its_findings_on_the_right_span(
    okr: tuple[Any, InMemorySpanExporter], method: str, path: str, role: str, expected: dict[str, set[str]]
) -> None:
    app, exporter = okr
    exporter.clear()
    response = await call(app, method, path, role)
    assert response.status_code == 200, response.text
    spans = list(exporter.get_finished_spans())
    assert findings_by_kind(spans) == expected
    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert (server.attributes or {})[A.TENANT_ID] == str(ACME.id)
    statements = [s for s in spans if A.DB_TENANT_FILTER in (s.attributes or {})]
    assert statements or path == "/healthz"  # the request ran its statements, every one in the caller's tenant
    assert {canonical((s.attributes or {}).get(A.TENANT_ID)) for s in statements} <= {str(ACME.id)}
    if path != "/healthz":  # the endpoints behind the app's auth dependency act for the caller's team too
        team = A.tenant_key_attribute("team")
        assert {canonical((s.attributes or {}).get(team)) for s in statements} == {str(ACME_GROWTH)}


async def test_sqli_through_the_string_built_where_breaks_the_tenant_scope(
    okr: tuple[Any, InMemorySpanExporter],
) -> None:
    """The payload turns ``org = :org AND title LIKE '%...%'`` into ``... OR '1'='1``: other tenants' rows leak, the
    db span says the filter is gone and the server span carries the attack pattern."""
    app, exporter = okr
    exporter.clear()
    response = await call(app, "GET", f"/buggy/search?q={SQLI}", "member")
    assert response.status_code == 200, response.text
    found = findings_by_kind(list(exporter.get_finished_spans()))
    assert found["server"] == {"injection_signal"}
    # the value breaks out of the literal, so only the scope verdict (not the value match) sees it on the db span
    assert found["db"] - {"injection_signal"} == {"missing_tenant_filter"}


@pytest.mark.parametrize(
    ("method", "path", "verb"),
    [
        ("GET", f"/buggy/team/key-results?team_id={ACME_PLATFORM}", "filters on"),
        ("POST", f"/buggy/team/key-results/1/check-ins?team_id={ACME_PLATFORM}&progress=5", "writes"),
    ],
    ids=["read", "write"],
)
async def test_cross_team_finding_names_the_team_key_and_both_teams(
    okr: tuple[Any, InMemorySpanExporter], method: str, path: str, verb: str
) -> None:
    """Another team of the caller's own organization: the organization matches, the team does not, and the finding
    says so in the team key's terms (whatever form the database bound the id in)."""
    app, exporter = okr
    exporter.clear()
    response = await call(app, method, path, "member")
    assert response.status_code == 200, response.text
    events = [e.attributes or {} for s in exporter.get_finished_spans() for e in s.events if e.name == A.FINDING_EVENT]
    assert [e[A.RULE] for e in events] == ["cross_tenant"]
    message = str(events[0][A.MESSAGE])
    assert f"{verb} team " in message and "but the context team is" in message, message
    assert str(ACME_PLATFORM) in message or ACME_PLATFORM.hex in message, message
    assert str(ACME_GROWTH) in message or ACME_GROWTH.hex in message, message
    assert "organization" not in message and "tenant" not in message, message
    assert events[0][A.SEVERITY] == "critical"


async def test_export_returns_more_than_1000_rows_and_the_span_says_so(okr: tuple[Any, InMemorySpanExporter]) -> None:
    app, exporter = okr
    exporter.clear()
    response = await call(app, "GET", "/buggy/export", "member")
    assert response.json()["exported"] == len(objective_ids(ACME)) > 1000
    db_spans = [s for s in exporter.get_finished_spans() if A.DB_RETURNED_ROWS in (s.attributes or {})]
    assert max(int((s.attributes or {})[A.DB_RETURNED_ROWS]) for s in db_spans) == response.json()["exported"]


async def test_requests_without_a_valid_token_are_refused(okr: tuple[Any, InMemorySpanExporter]) -> None:
    app, exporter = okr
    exporter.clear()
    forged = auth.make_token(ACME.id, 1, "member", key="not-the-secret-not-the-secret-not-the")
    expired = auth.make_token(ACME.id, 1, "member", ttl=-60)
    for token in (forged, expired):
        response = await call(app, "GET", "/objectives", "member", token=token, client="127.0.0.7")
        assert response.status_code == 401
    servers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [(s.attributes or {}).get(A.TENANT_ID) for s in servers] == [None, None]
    assert all(A.TOKEN_REJECTED in (s.attributes or {}) for s in servers)
    assert not [s for s in exporter.get_finished_spans() if A.DB_TENANT_FILTER in (s.attributes or {})]


async def test_repeated_bad_tokens_from_one_client_become_brute_force(okr: tuple[Any, InMemorySpanExporter]) -> None:
    app, exporter = okr
    threshold = 10  # brute_force default: 10 auth failures per client within 60 s
    flagged = []
    for _ in range(threshold + 1):
        exporter.clear()
        expired = auth.make_token(ACME.id, user_id(ACME, "member"), "member", ttl=-60)
        assert (await call(app, "GET", "/objectives", "member", token=expired, client="127.0.0.9")).status_code == 401
        found = findings_by_kind(list(exporter.get_finished_spans()))
        assert found["db"] == set()
        flagged.append(found["server"] == {"brute_force"})
    assert flagged == [False] * (threshold - 1) + [True, True]
    exporter.clear()
    assert (await call(app, "GET", "/objectives", "member", client="127.0.0.10")).status_code == 200
    assert findings_by_kind(list(exporter.get_finished_spans())) == NONE  # another client is not affected
