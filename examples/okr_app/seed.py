"""Schema creation and seed data: three tenants with realistic volumes (acme has more than 5,000 objectives).

Organization and team ids are UUIDs derived from the slugs (:func:`organization_id`, :func:`team_id`), so they are
the same in every database and every run; every organization has the teams :data:`TEAMS`. User, objective, key result
and check-in ids are deterministic integers (:func:`user_id`, :func:`objective_ids`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from .models import Base, CheckIn, KeyResult, Objective, Organization, Team, User

ROLES = ("member", "admin", "superuser")

TEAMS = ("growth", "platform")
"""The teams of every seeded organization; key results (and their check-ins) alternate between them."""

_NAMESPACE = uuid.UUID("7d0f3c8e-2b5a-4e61-9f47-c3a18b6e0d25")
"""Namespace of the seeded ids (``uuid5``): fixed, so tokens minted in one process work against a database seeded
in another."""


def organization_id(slug: str) -> uuid.UUID:
    """The UUID :func:`seed` gives the organization ``slug``."""
    return uuid.uuid5(_NAMESPACE, f"organization/{slug}")


def team_id(organization: str, team: str) -> uuid.UUID:
    """The UUID :func:`seed` gives team ``team`` of organization ``organization`` (slugs)."""
    return uuid.uuid5(_NAMESPACE, f"organization/{organization}/team/{team}")


@dataclass(frozen=True)
class Tenant:
    number: int
    """1, 2, 3, ...: the seeded users of this tenant are numbered from ``number * 100 + 1``."""
    slug: str
    objectives: int

    @property
    def id(self) -> uuid.UUID:
        """The organization id: what the tokens carry (``tenant_id`` claim) and every tenant column holds."""
        return organization_id(self.slug)

    def team(self, slug: str = TEAMS[0]) -> uuid.UUID:
        """The id of this organization's team ``slug`` (the ``team_id`` claim of its members' tokens)."""
        if slug not in TEAMS:
            raise KeyError(slug)
        return team_id(self.slug, slug)


DEFAULT_TENANTS = (Tenant(1, "acme", 5200), Tenant(2, "globex", 400), Tenant(3, "initech", 150))

USERS_PER_TENANT = 6


def tenant(name: str, tenants: tuple[Tenant, ...] = DEFAULT_TENANTS) -> Tenant:
    """The seeded tenant named by its slug, its number or its organization id (any UUID form)."""
    for t in tenants:
        if name in (t.slug, str(t.number)):
            return t
    try:
        wanted = uuid.UUID(name)
    except ValueError:
        wanted = None
    for t in tenants:
        if t.id == wanted:
            return t
    raise KeyError(name)


def user_id(tenant: Tenant, role: str) -> int:
    """The seeded user of ``tenant`` with ``role`` (ids are deterministic, for tokens and tests)."""
    return tenant.number * 100 + ROLES.index(role) + 1


def objective_ids(tenant: Tenant, tenants: tuple[Tenant, ...] = DEFAULT_TENANTS) -> range:
    """The ids :func:`seed` gives ``tenant``'s objectives (consecutive, tenants in order), for traffic and tests."""
    start = 1
    for t in tenants:
        if t.id == tenant.id:
            return range(start, start + t.objectives)
        start += t.objectives
    raise KeyError(tenant.slug)


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)


def seed(engine: Engine, tenants: tuple[Tenant, ...] = DEFAULT_TENANTS) -> bool:
    """Create the schema and, when empty, the seed rows (bulk inserts). Returns True when it seeded."""
    create_schema(engine)
    with engine.begin() as conn:
        if conn.execute(select(Organization.id).limit(1)).first() is not None:
            return False
        conn.execute(insert(Organization), [{"id": t.id, "slug": t.slug, "name": t.slug.title()} for t in tenants])
        conn.execute(
            insert(Team),
            [
                {"id": t.team(team), "organization_id": t.id, "slug": team, "name": f"{t.slug.title()} {team}"}
                for t in tenants
                for team in TEAMS
            ],
        )
        users = []
        for t in tenants:
            for n in range(USERS_PER_TENANT):
                role = ROLES[n] if n < len(ROLES) else "member"
                uid = user_id(t, role) if n < len(ROLES) else t.number * 100 + n + 1
                users.append({"id": uid, "organization_id": t.id, "email": f"user{n + 1}@{t.slug}.io", "role": role})
        conn.execute(insert(User), users)
        objectives, key_results, check_ins = [], [], []
        next_id = 1
        for t in tenants:
            for n in range(t.objectives):
                status = "done" if n % 10 == 0 else "active"
                objectives.append(
                    {
                        "id": next_id,
                        "organization_id": t.id,
                        "owner_id": user_id(t, "member"),
                        "title": f"Q{n % 4 + 1} objective {n + 1} of {t.slug}",
                        "status": status,
                    }
                )
                if n % 5 == 0:
                    number = len(key_results) + 1
                    team = t.team(TEAMS[number % len(TEAMS)])
                    key_results.append(
                        {
                            "id": number,
                            "organization_id": t.id,
                            "team_id": team,
                            "objective_id": next_id,
                            "title": f"key result of objective {n + 1}",
                            "progress": n % 100,
                        }
                    )
                    if number % 4 < 2:  # half of the key results have a check-in, of both teams
                        check_ins.append(
                            {"team_id": team, "key_result_id": number, "progress": n % 100, "note": "on track"}
                        )
                next_id += 1
        conn.execute(insert(Objective), objectives)
        conn.execute(insert(KeyResult), key_results)
        conn.execute(insert(CheckIn), check_ins)
    return True
