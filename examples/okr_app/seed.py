"""Schema creation and seed data: three tenants with realistic volumes (acme has more than 5,000 objectives)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from .models import Base, KeyResult, Objective, Organization, User

ROLES = ("member", "admin", "superuser")


@dataclass(frozen=True)
class Tenant:
    id: int
    slug: str
    objectives: int


DEFAULT_TENANTS = (Tenant(1, "acme", 5200), Tenant(2, "globex", 400), Tenant(3, "initech", 150))
"""Tenant ids are what the tokens carry (``tenant_id`` claim)."""

USERS_PER_TENANT = 6


def user_id(tenant: int, role: str) -> int:
    """The seeded user of ``tenant`` with ``role`` (ids are deterministic, for tokens and tests)."""
    return tenant * 100 + ROLES.index(role) + 1


def objective_ids(tenant: int, tenants: tuple[Tenant, ...] = DEFAULT_TENANTS) -> range:
    """The ids :func:`seed` gives ``tenant``'s objectives (consecutive, tenants in order), for traffic and tests."""
    start = 1
    for t in tenants:
        if t.id == tenant:
            return range(start, start + t.objectives)
        start += t.objectives
    raise KeyError(tenant)


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)


def seed(engine: Engine, tenants: tuple[Tenant, ...] = DEFAULT_TENANTS) -> bool:
    """Create the schema and, when empty, the seed rows (bulk inserts). Returns True when it seeded."""
    create_schema(engine)
    with engine.begin() as conn:
        if conn.execute(select(Organization.id).limit(1)).first() is not None:
            return False
        conn.execute(insert(Organization), [{"id": t.id, "slug": t.slug, "name": t.slug.title()} for t in tenants])
        users = []
        for t in tenants:
            for n in range(USERS_PER_TENANT):
                role = ROLES[n] if n < len(ROLES) else "member"
                uid = user_id(t.id, role) if n < len(ROLES) else t.id * 100 + n + 1
                users.append({"id": uid, "organization_id": t.id, "email": f"user{n + 1}@{t.slug}.io", "role": role})
        conn.execute(insert(User), users)
        objectives, key_results = [], []
        next_id = 1
        for t in tenants:
            for n in range(t.objectives):
                status = "done" if n % 10 == 0 else "active"
                objectives.append(
                    {
                        "id": next_id,
                        "organization_id": t.id,
                        "owner_id": user_id(t.id, "member"),
                        "title": f"Q{n % 4 + 1} objective {n + 1} of {t.slug}",
                        "status": status,
                    }
                )
                if n % 5 == 0:
                    key_results.append(
                        {
                            "organization_id": t.id,
                            "objective_id": next_id,
                            "title": f"key result of objective {n + 1}",
                            "progress": n % 100,
                        }
                    )
                next_id += 1
        conn.execute(insert(Objective), objectives)
        conn.execute(insert(KeyResult), key_results)
    return True
