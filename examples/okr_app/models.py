"""The schema: organizations (the tenants) and their teams, users, objectives, key results and check-ins.

Two nested tenant keys, organization ⊃ team: organization tables carry ``organization_id``; a key result belongs to a
team as well (``organization_id`` and ``team_id``), and a check-in only to a team (``team_id``, no
``organization_id``). ``organizations`` and ``teams`` are the root tables of the two keys.

Tenant ids are UUIDs, as in most real applications: SQLAlchemy's ``Uuid`` type is a native ``uuid`` on PostgreSQL
and ``CHAR(32)`` holding ``uuid.hex`` on SQLite, so one tenant is bound in two textual forms depending on the
database (tenantwatch compares tenant values canonically). Other ids stay integers.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    email: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # member | admin | superuser


class Objective(Base):
    __tablename__ = "objectives"
    __table_args__ = (Index("ix_objectives_org_status", "organization_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | done | archived
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())


class KeyResult(Base):
    __tablename__ = "key_results"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id"), index=True)
    objective_id: Mapped[int] = mapped_column(ForeignKey("objectives.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    progress: Mapped[int] = mapped_column(default=0)


class CheckIn(Base):
    """A team's weekly update on one of its key results: the table that only has the finer key."""

    __tablename__ = "check_ins"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id"), index=True)
    key_result_id: Mapped[int] = mapped_column(ForeignKey("key_results.id"), index=True)
    progress: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(String(500))
