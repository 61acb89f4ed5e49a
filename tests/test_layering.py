"""The one-way flow, held in the imports: instrumentation and processors stand on the core and never import each
other; the core imports neither; only configure() wires them together; nobody walks the SDK's private span
processor list to find tenantwatch's processor.

Every import counts: module level, inside functions (lazy) and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "tenantwatch"

TEMPORARY_ALLOWLIST: frozenset[tuple[str, str]] = frozenset()
# Emptied when rules11's move of findings, evaluate(), suppressions and windows into tenantwatch.core merged; it
# stays empty: a layering exception is fixed, not listed.
"""(importer, imported) pairs that break a rule below on this branch only."""

WIRING = frozenset({"tenantwatch._configure", "tenantwatch"})
"""configure() wires instrumentation and processors; the package itself only re-exports their public names."""

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "instrumentation": ("processors", "tools", "cli"),
    "processors": ("instrumentation", "tools", "cli"),
    "core": ("instrumentation", "processors", "security", "cli", "demo", "export", "_configure", "tools"),
    "security": ("instrumentation", "processors", "tools", "cli"),
    "sql": ("instrumentation", "processors", "tools", "cli"),
    "rules": ("instrumentation", "processors", "tools", "cli"),
    "export": ("tools", "cli"),
    "tools": ("cli",),
}
"""Subpackage -> the subpackages (or modules) of ``tenantwatch`` it must not import. The operations tools
(``tools/``) stand on everything but the command line; nothing below them imports them."""

PRIVATE_SDK = frozenset({"_active_span_processor", "_span_processors"})
PRIVATE_SDK_ALLOWED = frozenset({"tenantwatch.processors"})
"""install() wraps, in place, the processors someone else registered (zero-code mode): there is no public way."""


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every ``tenantwatch`` module ``name`` imports (``from a import b`` names ``a.b`` when that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        else:
            continue
        yield from (t for t in targets if t == PACKAGE or t.startswith(PACKAGE + "."))


EDGES = sorted({(name, target) for name, path in MODULES.items() for target in _imports(name, path)})


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _broken(edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    broken = []
    for importer, imported in edges:
        forbidden = FORBIDDEN.get(_layer(importer) or "", ())
        if _layer(imported) in forbidden:
            broken.append((importer, imported))
    return broken


def test_the_import_graph_is_read() -> None:
    """The check below sees the imports it is about (an empty graph would pass anything)."""
    assert ("tenantwatch.processors.processor", "tenantwatch.core.guard") in EDGES
    assert ("tenantwatch.instrumentation.asgi", "tenantwatch.security.observer") in EDGES  # a lazy import
    assert ("tenantwatch._configure", "tenantwatch.processors") in EDGES
    assert ("tenantwatch.tools.audit.catalog", "tenantwatch.sql.rls_coverage") in EDGES
    assert ("tenantwatch.instrumentation._listeners", "tenantwatch.core.rls_metrics") in EDGES
    assert ("tenantwatch.cli.audit", "tenantwatch.tools.audit") in EDGES  # a lazy import


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_it_stands_above_or_beside(layer: str) -> None:
    broken = [edge for edge in _broken(EDGES) if _layer(edge[0]) == layer and edge not in TEMPORARY_ALLOWLIST]
    assert broken == [], "\n".join(f"{a} imports {b}" for a, b in broken)


def test_only_configure_wires_instrumentation_and_processors() -> None:
    both: dict[str, set[str]] = {}
    for importer, imported in EDGES:
        if _layer(importer) in ("instrumentation", "processors"):
            continue  # held by the layer test above
        if _layer(imported) in ("instrumentation", "processors"):
            both.setdefault(importer, set()).add(str(_layer(imported)))
    wiring = sorted(m for m, layers in both.items() if layers == {"instrumentation", "processors"})
    assert set(wiring) <= WIRING, wiring


def test_the_temporary_allowlist_holds_only_imports_that_still_exist() -> None:
    """When an import on the list goes away, so must its entry: the list only ever shrinks to empty."""
    stale = sorted(TEMPORARY_ALLOWLIST - set(_broken(EDGES)))
    assert stale == [], f"remove from TEMPORARY_ALLOWLIST: {stale}"


def test_only_install_touches_the_sdks_private_span_processor_list() -> None:
    readers = sorted(
        name
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.Attribute) and node.attr in PRIVATE_SDK)
        or (isinstance(node, ast.Constant) and node.value in PRIVATE_SDK)
    )
    assert set(readers) <= PRIVATE_SDK_ALLOWED, readers
