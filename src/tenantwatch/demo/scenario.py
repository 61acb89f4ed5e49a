"""The scripted scenario: what the demo application does, step by step.

Each :class:`Step` is one thing a user (or a job) does, run inside its tenant context. Most steps are correct
multi-tenant code and must raise no finding at all; exactly six carry a classic tenant-isolation bug, each named by
the rule that catches it (:attr:`Step.expected_rule`). The steps use SQLAlchemy Core and ``text()`` on purpose: both
are instrumented the same way as the ORM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, bindparam, func, insert, select, text, update
from sqlalchemy.sql import Executable

from tenantwatch.demo.schema import (
    ACME,
    ACME_OPEN_OBJECTIVES,
    GLOBEX,
    SLEEP_FUNCTION,
    invoices,
    objectives,
    plans,
    projects,
    users,
)

__all__ = ["BUGGY_RULES", "STEPS", "Step"]

StepAction = Callable[[Connection], int]
"""Runs the step's statements on a connection (inside a transaction) and returns the rows it received or changed."""


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted action of the demo application."""

    name: str
    """Short identifier, used in the JSON output and as the step span name."""
    title: str
    """What the application is doing, in plain words."""
    action: StepAction
    tenant: str | None = None
    user: str | None = None
    role: str | None = None
    unscoped_reason: str | None = None
    """Set for deliberate cross-tenant work, run inside ``tenantwatch.unscoped(reason)``."""
    expected_rule: str | None = None
    """The rule this step's bug triggers; ``None`` for correct code, which must raise no finding."""
    bug: str = ""
    """What is wrong with the code, for buggy steps."""

    @property
    def buggy(self) -> bool:
        return self.expected_rule is not None


def _rows(conn: Connection, statement: Executable, params: dict[str, object] | None = None) -> int:
    """Execute, fetch every row (as an application would), return how many."""
    result = conn.execute(statement, params or {})
    return len(result.all())


# --- correct code --------------------------------------------------------------------------------------------


def _list_projects(conn: Connection) -> int:
    stmt = select(projects.c.id, projects.c.name).where(projects.c.organization_id == ACME).order_by(projects.c.name)
    return _rows(conn, stmt)


def _dashboard(conn: Connection) -> int:
    stmt = text(
        "SELECT p.name, count(o.id) AS objectives, avg(o.progress) AS progress "
        "FROM projects p JOIN objectives o ON o.project_id = p.id "
        "WHERE p.organization_id = :org AND o.organization_id = :org AND o.status = 'open' "
        "GROUP BY p.name ORDER BY p.name"
    )
    return _rows(conn, stmt, {"org": ACME})


def _open_invoices(conn: Connection) -> int:
    stmt = (
        select(invoices.c.number, invoices.c.amount_cents)
        .where(invoices.c.organization_id == ACME, invoices.c.status == "open")
        .order_by(invoices.c.issued_on.desc())
        .limit(25)
    )
    return _rows(conn, stmt)


def _create_objective(conn: Connection) -> int:
    stmt = insert(objectives).values(
        organization_id=ACME, project_id=1, owner_id=1, title="Cut p95 latency by 30%", status="draft", progress=0
    )
    return conn.execute(stmt).rowcount


def _record_progress(conn: Connection) -> int:
    stmt = (
        update(objectives)
        .where(objectives.c.id == 42, objectives.c.organization_id == ACME)
        .values(progress=objectives.c.progress + 10)
    )
    return conn.execute(stmt).rowcount


def _globex_members(conn: Connection) -> int:
    stmt = select(users.c.email, users.c.role).where(users.c.organization_id == GLOBEX).order_by(users.c.email)
    return _rows(conn, stmt)


def _globex_recent_invoices(conn: Connection) -> int:
    stmt = text(
        "WITH recent AS ("
        " SELECT id, amount_cents FROM invoices WHERE organization_id = :org ORDER BY issued_on DESC LIMIT 20"
        ") SELECT count(*) AS invoices, sum(amount_cents) AS total FROM recent"
    )
    return _rows(conn, stmt, {"org": GLOBEX})


def _pricing_page(conn: Connection) -> int:
    return _rows(conn, select(plans.c.name, plans.c.monthly_price_cents).order_by(plans.c.monthly_price_cents))


def _billing_rollup(conn: Connection) -> int:
    stmt = (
        select(invoices.c.organization_id, func.count(), func.sum(invoices.c.amount_cents))
        .where(invoices.c.status == "paid")
        .group_by(invoices.c.organization_id)
    )
    return _rows(conn, stmt)


# --- bugs ----------------------------------------------------------------------------------------------------


def _search_without_tenant(conn: Connection) -> int:
    stmt = text("SELECT id, title, status FROM objectives WHERE title LIKE :pattern ORDER BY id LIMIT 50")
    return _rows(conn, stmt, {"pattern": "%churn%"})


def _invoices_for_cached_orgs(conn: Connection) -> int:
    stmt = (
        select(invoices.c.number, invoices.c.status)
        .where(invoices.c.organization_id.in_(bindparam("orgs", expanding=True)), invoices.c.status == "open")
        .order_by(invoices.c.number)
    )
    return _rows(conn, stmt, {"orgs": [ACME, GLOBEX]})


def _void_drafts(conn: Connection) -> int:
    return conn.execute(text("UPDATE invoices SET status = 'void' WHERE status = 'draft'")).rowcount


def _export_open_objectives(conn: Connection) -> int:
    stmt = (
        select(objectives.c.id, objectives.c.title, objectives.c.status, objectives.c.progress)
        .where(objectives.c.organization_id == ACME, objectives.c.status == "open")
        .order_by(objectives.c.id)
    )
    return _rows(conn, stmt)


def _support_renames_project(conn: Connection) -> int:
    stmt = (
        update(projects)
        .where(projects.c.id == 3, projects.c.organization_id == ACME)
        .values(name="acme latency (renamed by support)")
    )
    return conn.execute(stmt).rowcount


def _slow_revenue_report(conn: Connection) -> int:
    stmt = text(
        "SELECT status, count(*) AS invoices, sum(amount_cents) AS total FROM invoices "
        f"WHERE organization_id = :org AND (SELECT {SLEEP_FUNCTION}(:pause_ms)) >= 0 "
        "GROUP BY status ORDER BY status"
    )
    return _rows(conn, stmt, {"org": ACME, "pause_ms": 650})


STEPS: Final[tuple[Step, ...]] = (
    Step("list_projects", "acme member lists their projects", _list_projects, tenant=ACME, user="ada", role="member"),
    Step(
        "search_objectives",
        "acme member searches objectives for 'churn'",
        _search_without_tenant,
        tenant=ACME,
        user="ada",
        role="member",
        expected_rule="missing_tenant_filter",
        bug="the search query forgot the organization_id filter: it reads every tenant's objectives",
    ),
    Step("dashboard", "acme member opens the OKR dashboard (join)", _dashboard, tenant=ACME, user="ada", role="member"),
    Step("open_invoices", "acme member reads open invoices", _open_invoices, tenant=ACME, user="bob", role="member"),
    Step(
        "invoices_for_orgs",
        "acme member lists invoices for org ids taken from a stale cache",
        _invoices_for_cached_orgs,
        tenant=ACME,
        user="bob",
        role="member",
        expected_rule="cross_tenant",
        bug="the IN list carries globex's id while the request acts for acme",
    ),
    Step(
        "create_objective",
        "acme member creates an objective",
        _create_objective,
        tenant=ACME,
        user="ada",
        role="member",
    ),
    Step(
        "void_drafts",
        "acme billing clean-up voids draft invoices",
        _void_drafts,
        tenant=ACME,
        user="bob",
        role="member",
        expected_rule="unscoped_write",
        bug="the UPDATE has no organization_id filter: it voids every tenant's drafts",
    ),
    Step("record_progress", "acme member records progress", _record_progress, tenant=ACME, user="ada", role="member"),
    Step(
        "export_objectives",
        "acme dashboard loads every open objective at once",
        _export_open_objectives,
        tenant=ACME,
        user="ada",
        role="member",
        expected_rule="large_result",
        bug=f"no pagination: {ACME_OPEN_OBJECTIVES} rows come back in one result",
    ),
    Step("globex_members", "globex admin lists members", _globex_members, tenant=GLOBEX, user="gus", role="admin"),
    Step(
        "rename_project",
        "support engineer renames an acme project while impersonating as superuser",
        _support_renames_project,
        tenant=ACME,
        user="support-7",
        role="superuser",
        expected_rule="superuser_write",
        bug="superuser sessions are read-only by policy, but this one writes",
    ),
    Step(
        "globex_recent_invoices",
        "globex member totals recent invoices (CTE)",
        _globex_recent_invoices,
        tenant=GLOBEX,
        user="gia",
        role="member",
    ),
    Step(
        "revenue_report",
        "acme finance runs the revenue report",
        _slow_revenue_report,
        tenant=ACME,
        user="fay",
        role="member",
        expected_rule="slow_query",
        bug=f"the report takes over 500 ms (SQLite has no pg_sleep: the demo's {SLEEP_FUNCTION}() stands in for a "
        "full scan on a big table)",
    ),
    Step("pricing_page", "anonymous visitor opens the pricing page (global table)", _pricing_page),
    Step(
        "billing_rollup",
        "nightly billing roll-up across tenants, inside unscoped()",
        _billing_rollup,
        unscoped_reason="nightly billing roll-up",
    ),
)
"""Every step, in the order the demo runs them."""

BUGGY_RULES: Final[tuple[str, ...]] = tuple(step.expected_rule for step in STEPS if step.expected_rule is not None)
"""The rule each buggy step triggers, in order."""
