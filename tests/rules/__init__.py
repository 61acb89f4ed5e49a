"""Per-rule tests: tests/rules/test_<id>.py for every rule id (a package, so the module names cannot clash with
tests elsewhere, e.g. tests/instrumentation/test_test_data.py)."""
