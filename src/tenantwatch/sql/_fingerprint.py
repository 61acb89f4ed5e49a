"""Statement fingerprints: a stable 16-hex-digit hash of a statement's shape.

Computed from the normalized text (placeholders and literals already ``$n``, comments already dropped): case and
whitespace are folded, every ``$n`` becomes ``?``, a parenthesized list of values becomes ``(?)`` and repeated
``(?), (?)`` rows collapse, so an expanding ``IN`` list or a multi-row ``VALUES`` has one fingerprint whatever its
length. It costs a few microseconds (libpg_query's own fingerprint would parse the statement a second time).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["fingerprint"]

_PARAM = re.compile(r"\$\d+")
_LIST = re.compile(r"\(\s*\?(?:\s*(?:::\s*[\w.]+(?:\[\])?\s*)?,\s*\?)*\s*(?:::\s*[\w.]+(?:\[\])?\s*)?\)")
_ROWS = re.compile(r"\(\?\)(?:\s*,\s*\(\?\))+")


def fingerprint(normalized_text: str) -> str:
    """Fingerprint of a normalized statement (see the module docstring)."""
    text = " ".join(normalized_text.lower().split()).rstrip("; ")
    text = _PARAM.sub("?", text)
    if "(?" in text:
        text = _LIST.sub("(?)", text)
        if "(?)," in text or "(?) ," in text:
            text = _ROWS.sub("(?)", text)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
