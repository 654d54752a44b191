"""Guards for files a human opens: spreadsheet formula injection and output-path escapes.

A text cell starting with ``= + - @`` (or tab/CR, which some spreadsheet programs strip first)
would be run as a formula by Excel/LibreOffice (OWASP "CSV injection"); such text gets a
leading apostrophe, which spreadsheet programs display as literal text. Numbers are left alone
(a negative number is not text).
"""

from __future__ import annotations

import re
from pathlib import Path

from collector.export.errors import OutputPathError

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def output_path(directory: Path, name: str) -> Path:
    """``directory/name``, refusing names with separators, ``..`` or anything that resolves
    outside ``directory`` (a symlink included)."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise OutputPathError(f"output file name {name!r} is not a plain file name")
    base = directory.resolve()
    target = (base / name).resolve()
    if target.parent != base:
        raise OutputPathError(f"output file {name!r} would land outside {base}")
    return target
