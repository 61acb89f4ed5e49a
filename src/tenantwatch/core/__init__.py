"""What instrumentation and processors both stand on, and nothing else.

``tenantwatch.core`` sits below both layers: the finding and severity types, the rule protocol and ``evaluate()``,
suppressions, pattern sets, bounded window state, tenant buckets and label caps, the request being served, the
hand-over of finding listeners, and the one never-raise guard. It imports neither ``tenantwatch.instrumentation`` nor
``tenantwatch.processors`` (nor ``security``, ``cli`` or ``demo``); ``tests/test_layering.py`` holds that. Import its
modules by their full path (``from tenantwatch.core.guard import guard``): this package re-exports nothing.
"""
