"""Fixtures of the end-to-end tests: the collector and Jaeger, built from Go modules into a cache once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _stack import CONFIG


def _build(script: str) -> Path:
    """Run a collector-config/build-*.sh script (cached builds return at once) and return the binary it prints."""
    done = subprocess.run(["bash", str(CONFIG / script)], capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        pytest.fail(f"{script} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    binary = Path(done.stdout.strip().splitlines()[-1])
    assert binary.is_file(), f"{script} printed {binary}, which is not a file"
    return binary


@pytest.fixture(scope="session")
def otelcol_binary() -> Path:
    """The tenantwatch-otelcol distribution built by the OpenTelemetry Collector Builder."""
    return _build("build-collector.sh")


@pytest.fixture(scope="session")
def jaeger_binary() -> Path:
    """Jaeger v2, built from its Go module."""
    return _build("build-jaeger.sh")
