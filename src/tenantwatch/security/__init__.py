"""Security signals on requests: attack patterns, request values in SQL, auth failures, response actions."""

from __future__ import annotations

from tenantwatch.security.blocking import Blocker
from tenantwatch.security.observer import SecurityObserver
from tenantwatch.security.patterns import scan
from tenantwatch.security.values import RequestValues

__all__ = ["Blocker", "RequestValues", "SecurityObserver", "scan"]
