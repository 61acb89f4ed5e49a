"""The CI gate: a reviewed baseline of accepted findings (:mod:`.baseline`), the comparison of grouped findings with
it (:mod:`.compare`: new / known / moved / stale) and the pytest plugin that runs an application's own tests with
tenantwatch on and fails the session on new findings (:mod:`.pytest_plugin`, entry point ``pytest11``).

``tenantwatch scan --baseline FILE`` gives the same gate on stored traces::

    result = compare(groups, Baseline.load(path), root=".", fail_on="warning")
    print(render(result)); exit(1 if result.failed else 0)
"""

from __future__ import annotations

from tenantwatch.tools.gate.baseline import Baseline, BaselineEntry, BaselineError
from tenantwatch.tools.gate.compare import DEFAULT_FAIL_ON, GateResult, compare, refreshed, render

__all__ = [
    "DEFAULT_FAIL_ON",
    "Baseline",
    "BaselineEntry",
    "BaselineError",
    "GateResult",
    "compare",
    "refreshed",
    "render",
]
