"""Windowed state in the span processor: detectors over the stream of statements, and the log-record cooldown."""

from __future__ import annotations

from tenantwatch.processors.windows.cooldown import Cooldown
from tenantwatch.processors.windows.detectors import DETECTOR_IDS, Detectors
from tenantwatch.processors.windows.state import KeyedState

__all__ = ["DETECTOR_IDS", "Cooldown", "Detectors", "KeyedState"]
