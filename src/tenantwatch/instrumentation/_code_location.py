"""Where the application issued a statement: the first frame of the application's own code.

Skipped: SQLAlchemy, OpenTelemetry, tenantwatch, the standard library, anything installed in a ``site-packages`` or
``dist-packages`` directory (a validation library whose attribute access fires a lazy load is not where the bug is)
and the path prefixes of ``Settings.code_location.skip_prefixes`` (``TENANTWATCH_CODE_LOCATION_SKIP``). The finding
fingerprint includes this location, so one bug in the application is one fingerprint, and two are two.

Cheap on purpose (it runs for every statement): a ``sys._getframe`` walk with a per-file cache of "is this a library
frame", so a warm lookup costs one dict probe per frame. (Keyed by file name, whose hash Python caches, not by code
object, whose hash is recomputed from its bytecode and constants on every lookup.) Code compiled at run time
(``<string>``, as SQLAlchemy's generated decorators are) is judged by its module's ``__name__`` instead.

Async engines run the statement inside a greenlet whose own stack ends in SQLAlchemy; the walk then continues in the
parent greenlet's suspended frame, which is the application's coroutine chain.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from collections.abc import Iterable
from types import FrameType
from typing import Any, NamedTuple

__all__ = ["CodeLocation", "find_caller", "set_skip_prefixes"]


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


_LIBRARY_PACKAGES = ("sqlalchemy", "opentelemetry", "tenantwatch", "asyncio", "greenlet", "wrapt")
_APPLICATION_PACKAGES = ("tenantwatch.demo",)
"""Inside the library packages but application code: the demo's queries should point at the demo."""


def _library_prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(library directory prefixes, directories under them that hold application code)."""
    exceptions: list[str] = []
    for package in _APPLICATION_PACKAGES:
        top, _, rest = package.partition(".")
        exceptions += [os.path.join(d, *rest.split("."), "") for d in _module_dirs(top)]
    return tuple(_module_dirs(*_LIBRARY_PACKAGES)), tuple(exceptions)


def _installed_dirs() -> tuple[str, ...]:
    """The standard library and the interpreter's (and user's) site-packages directories."""
    dirs: list[str] = []
    paths = sysconfig.get_paths()
    candidates = [paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    getsitepackages = getattr(site, "getsitepackages", None)  # missing in some embedded interpreters
    if callable(getsitepackages):
        candidates += getsitepackages()
    user_site = getattr(site, "USER_SITE", None)
    if isinstance(user_site, str):
        candidates.append(user_site)
    for path in candidates:
        if not path:
            continue
        for variant in (os.path.abspath(path), os.path.realpath(path)):
            entry = os.path.join(variant, "")
            if entry not in dirs:
                dirs.append(entry)
    return tuple(dirs)


_INSTALLED_MARKERS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
"""A file under a directory of this name was installed, not written by the application."""

_PREFIXES, _EXCEPTIONS = _library_prefixes()
_BASE_PREFIXES = _PREFIXES + _installed_dirs()
_PREFIXES = _BASE_PREFIXES
_MAX_CACHE = 20_000
"""Source files are finite in most programs; the cap only guards against code generated at run time."""

_APPLICATION, _LIBRARY, _BY_MODULE = 0, 1, 2
_by_file: dict[str, int] = {}
_by_module: dict[str, int] = {}


def _classify_file(filename: str) -> int:
    if filename.startswith("<frozen"):
        kind = _LIBRARY  # the import machinery
    elif filename.startswith("<"):
        # <string>: code compiled at run time, e.g. SQLAlchemy's generated decorators; python -c; a REPL.
        kind = _BY_MODULE
    else:
        kind = _APPLICATION
        for path in (os.path.abspath(filename), os.path.realpath(filename)):
            if path.startswith(_EXCEPTIONS):
                break
            if path.startswith(_PREFIXES) or any(marker in path for marker in _INSTALLED_MARKERS):
                kind = _LIBRARY
                break
    if len(_by_file) >= _MAX_CACHE:
        _by_file.clear()
    _by_file[filename] = kind
    return kind


def set_skip_prefixes(prefixes: Iterable[str]) -> None:
    """Also skip frames whose file is under one of ``prefixes`` (``Settings.code_location.skip_prefixes``); replaces
    the prefixes set before. Process-wide, like the code it describes."""
    global _PREFIXES  # noqa: PLW0603 - one process-wide view of which code is the application's
    extra: list[str] = []
    for prefix in prefixes:
        text = prefix.strip()
        if text:
            extra += [os.path.abspath(text), os.path.realpath(text)]
    _PREFIXES = _BASE_PREFIXES + tuple(dict.fromkeys(extra))
    _by_file.clear()


def _module_is_library(module: object) -> bool:
    if not isinstance(module, str):
        return False
    kind = _by_module.get(module)
    if kind is None:

        def within(packages: tuple[str, ...]) -> bool:
            return any(module == p or module.startswith(p + ".") for p in packages)

        kind = _LIBRARY if within(_LIBRARY_PACKAGES) and not within(_APPLICATION_PACKAGES) else _APPLICATION
        if len(_by_module) >= _MAX_CACHE:
            _by_module.clear()
        _by_module[module] = kind
    return kind == _LIBRARY


def _parent_greenlet_frame() -> FrameType | None:
    greenlet_module: Any = sys.modules.get("greenlet")
    if greenlet_module is None:
        return None
    parent = greenlet_module.getcurrent().parent
    if parent is None:
        return None
    frame: FrameType | None = parent.gr_frame
    return frame


_new_location = tuple.__new__
"""Builds a :class:`CodeLocation` without the Python-level ``__new__`` of a NamedTuple (once per statement)."""


def find_caller(skip: int = 1, *, beyond: tuple[int, frozenset[int]] | None = None) -> CodeLocation | None:
    """The first application frame above the caller (``skip`` frames up), or ``None`` if there is none.

    ``beyond=(n, code_ids)``: the caller knows how it is called: when the frame ``n`` frames above the first one
    looked at runs a code object whose ``id`` is in ``code_ids``, every frame up to that one is library code, and the
    walk starts above it (``sys._getframe`` gets there without visiting the frames in between). When it does not,
    the walk looks at every frame as usual: the result is the same either way.
    """
    frame: FrameType | None = None
    if beyond is not None:
        try:
            known: FrameType | None = sys._getframe(skip + 1 + beyond[0])
        except ValueError:  # not that deep
            known = None
        if known is not None and id(known.f_code) in beyond[1]:
            frame = known.f_back
    if frame is None:
        frame = sys._getframe(skip + 1)
    cache = _by_file
    crossed_greenlet = False
    while True:
        while frame is not None:
            code = frame.f_code
            kind = cache.get(code.co_filename)
            if kind is None:
                kind = _classify_file(code.co_filename)
            if kind == _APPLICATION or (kind == _BY_MODULE and not _module_is_library(frame.f_globals.get("__name__"))):
                return _new_location(CodeLocation, (code.co_name, code.co_filename, frame.f_lineno))
            frame = frame.f_back
        if crossed_greenlet:
            return None
        # Async engines: the statement runs in a greenlet spawned by SQLAlchemy; the application awaits in the parent.
        crossed_greenlet = True
        frame = _parent_greenlet_frame()
        if frame is None:
            return None
