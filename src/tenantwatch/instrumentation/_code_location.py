"""Where the application issued a statement: the first frame outside SQLAlchemy, OpenTelemetry and tenantwatch.

Cheap on purpose (it runs for every statement): a ``sys._getframe`` walk with a per-file cache of "is this a library
frame", so a warm lookup costs one dict probe per frame. (Keyed by file name, whose hash Python caches, not by code
object, whose hash is recomputed from its bytecode and constants on every lookup.)

Async engines run the statement inside a greenlet whose own stack ends in SQLAlchemy; the walk then continues in the
parent greenlet's suspended frame, which is the application's coroutine chain.
"""

from __future__ import annotations

import os
import sys
from types import FrameType
from typing import Any, NamedTuple

__all__ = ["CodeLocation", "find_caller"]


class CodeLocation(NamedTuple):
    """A function name, file path and line number (semconv ``code.function``, ``code.filepath``, ``code.lineno``)."""

    function: str
    filepath: str
    lineno: int


def _module_dirs(*names: str) -> list[str]:
    dirs: list[str] = []
    for name in names:
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        for path in getattr(module, "__path__", ()):
            for variant in (os.path.abspath(path), os.path.realpath(path)):
                entry = os.path.join(variant, "")
                if entry not in dirs:
                    dirs.append(entry)
    return dirs


def _library_prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(library directory prefixes, exceptions under them that are application code)."""
    prefixes = _module_dirs("sqlalchemy", "opentelemetry", "tenantwatch", "asyncio", "greenlet", "wrapt")
    tenantwatch_dirs = _module_dirs("tenantwatch")
    # The demo is an application built on tenantwatch: its queries should point at the demo's code.
    exceptions = tuple(os.path.join(d, "demo", "") for d in tenantwatch_dirs)
    return tuple(prefixes), exceptions


_PREFIXES, _EXCEPTIONS = _library_prefixes()
_MAX_CACHE = 20_000
"""Source files are finite in most programs; the cap only guards against code generated at run time."""
_is_library: dict[str, bool] = {}


def _classify(filename: str) -> bool:
    if filename.startswith("<"):
        # <frozen importlib._bootstrap> is the import machinery; <string>/<stdin> is application code (python -c).
        library = filename.startswith("<frozen")
    else:
        library = False
        for path in (os.path.abspath(filename), os.path.realpath(filename)):
            if path.startswith(_PREFIXES) and not path.startswith(_EXCEPTIONS):
                library = True
                break
    if len(_is_library) >= _MAX_CACHE:
        _is_library.clear()
    _is_library[filename] = library
    return library


def _parent_greenlet_frame() -> FrameType | None:
    greenlet_module: Any = sys.modules.get("greenlet")
    if greenlet_module is None:
        return None
    parent = greenlet_module.getcurrent().parent
    if parent is None:
        return None
    frame: FrameType | None = parent.gr_frame
    return frame


def find_caller(skip: int = 1) -> CodeLocation | None:
    """The first application frame above the caller (``skip`` frames up), or ``None`` if there is none."""
    frame: FrameType | None = sys._getframe(skip + 1)
    cache = _is_library
    crossed_greenlet = False
    while True:
        while frame is not None:
            code = frame.f_code
            library = cache.get(code.co_filename)
            if library is None:
                library = _classify(code.co_filename)
            if not library:
                return CodeLocation(code.co_name, code.co_filename, frame.f_lineno)
            frame = frame.f_back
        if crossed_greenlet:
            return None
        # Async engines: the statement runs in a greenlet spawned by SQLAlchemy; the application awaits in the parent.
        crossed_greenlet = True
        frame = _parent_greenlet_frame()
        if frame is None:
            return None
