"""Pytest fixtures over processor_support's real SDK pipeline, shared by the processor and the per-rule tests
(each conftest imports them, which registers them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from processor_support import Pipeline, build_pipeline

from tenantwatch.config import Settings

__all__ = ["make_pipeline", "pipeline", "rules_file"]


@pytest.fixture
def make_pipeline() -> Iterator[Callable[..., Pipeline]]:
    """Build pipelines (see :func:`processor_support.build_pipeline`); shut down after the test."""
    built: list[Pipeline] = []

    def make(settings: Settings | None = None, **overrides: Any) -> Pipeline:
        pipeline = build_pipeline(settings, **overrides)  # clock= passes through to the processor
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
