"""opentelemetry-instrumentation-sqlalchemy's own test suite passes with tenantwatch in the picture.

The suite of the pinned release (from its sdist, cached) runs in a subprocess (scripts/upstream_sqlalchemy_suite.py):
once with tenantwatch's instrumentor in place of OTel's, once with both; its async tests, skipped upstream outside
SQLAlchemy 1.4, run too. Every test must pass, none be skipped.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "upstream_sqlalchemy_suite.py"


@functools.cache
def _suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("upstream_sqlalchemy_suite", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mode", ["replace", "both"])
def test_upstream_suite_passes(mode: str) -> None:
    """Every upstream test passes: tenantwatch replaces nothing OTel sets, forwards its options, follows
    OTEL_SEMCONV_STABILITY_OPT_IN and uninstruments exactly what it instrumented."""
    counts = _suite().run(mode, timeout=50)  # about 8 s each here; the sdist is downloaded once, then cached
    print(counts)
    assert counts.total >= 67  # 0.66b1 ships 67 tests
    assert counts.unskipped == 7  # the upstream async tests ran
    assert (counts.failed, counts.skipped) == (0, 0), str(counts)
    assert counts.passed == counts.total
