"""Fixtures for the processor tests (helpers live in processor_support.py, fixtures in pipeline_fixtures.py)."""

from __future__ import annotations

from pipeline_fixtures import make_pipeline, pipeline, rules_file

__all__ = ["make_pipeline", "pipeline", "rules_file"]
