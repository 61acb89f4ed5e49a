"""Fixtures for the per-rule tests: the processor tests' real SDK pipeline (tests/processors/processor_support.py)
and a rules-file writer."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent / "processors")]  # rule_support and processor_support

from processor_support import Pipeline, build_pipeline  # noqa: E402 (needs the path above)

from tenantwatch.config import Settings  # noqa: E402


@pytest.fixture
def make_pipeline() -> Iterator[Callable[..., Pipeline]]:
    """Build pipelines (see :func:`processor_support.build_pipeline`); shut down after the test."""
    built: list[Pipeline] = []

    def make(settings: Settings | None = None, **overrides: Any) -> Pipeline:
        pipeline = build_pipeline(settings, **overrides)
        built.append(pipeline)
        return pipeline

    yield make
    for pipeline in built:
        pipeline.provider.shutdown()


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline()


@pytest.fixture
def rules_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write a rules file with the given YAML text and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "tenantwatch.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
