"""Fixtures of the end-to-end tests: the collector and Jaeger, built from Go modules into a cache once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _builds import run_build, terminal_line_writer
from _stack import CONFIG


def _build(script: str, config: pytest.Config) -> Path:
    """Run a collector-config/build-*.sh script (cached builds return at once), its progress shown on the terminal."""
    return run_build(CONFIG / script, terminal_line_writer(config))


@pytest.fixture(scope="session")
def otelcol_binary(pytestconfig: pytest.Config) -> Path:
    """The tenantwatch-otelcol distribution built by the OpenTelemetry Collector Builder."""
    return _build("build-collector.sh", pytestconfig)


@pytest.fixture(scope="session")
def jaeger_binary(pytestconfig: pytest.Config) -> Path:
    """Jaeger v2, built from its Go module."""
    return _build("build-jaeger.sh", pytestconfig)
