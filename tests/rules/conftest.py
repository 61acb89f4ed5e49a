"""Fixtures for the per-rule tests: the processor tests' real SDK pipeline (tests/processors/pipeline_fixtures.py)
and a rules-file writer."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent / "processors")]  # rule_support, processor_support, pipeline_fixtures

from pipeline_fixtures import make_pipeline, pipeline, rules_file  # noqa: E402 (needs the path above)

__all__ = ["make_pipeline", "pipeline", "rules_file"]
