#!/usr/bin/env python3
"""Render an Alertmanager config template from the environment (Alertmanager itself does not expand variables).

    python3 render.py alertmanager.yml > /etc/alertmanager/alertmanager.yml

``${NAME}`` must be set (the script exits 2 naming every missing variable); ``${NAME:-default}`` falls back to the
default when NAME is unset or empty. Comment lines are left alone. Values are inserted verbatim; quote them in the template. Standard library only.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def render(template: str, environ: Mapping[str, str]) -> str:
    """The template with every ``${NAME}`` / ``${NAME:-default}`` replaced; ``KeyError`` lists missing names."""
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        missing.append(name)
        return ""

    # Comment lines are kept as they are: they may show the placeholder syntax.
    out = "".join(
        line if line.lstrip().startswith("#") else _VAR.sub(substitute, line)
        for line in template.splitlines(keepends=True)
    )
    if missing:
        raise KeyError(", ".join(sorted(set(missing))))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: render.py TEMPLATE > alertmanager.yml", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as handle:
            template = handle.read()
    except OSError as exc:
        print(f"render.py: cannot read {argv[1]}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(render(template, os.environ))
    except KeyError as exc:
        print(f"render.py: missing environment variable(s): {exc.args[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
