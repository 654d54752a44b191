"""The example inventory for tests that run a collector against the real clock.

``config/inventory.example.toml`` plans a maintenance of cb-01267 on a fixed date (2026-12-02
08:00-11:00 local). A test that expects that station to be operating, alerted or counted as
available would fail whenever the suite happens to run inside that window, so such tests use
this copy, which keeps every comment and value except the ``[[maintenance]]`` tables.
"""

from __future__ import annotations

import re
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "inventory.example.toml"

# A [[maintenance]] header and its lines, up to the next table header or the end of the file.
_MAINTENANCE = re.compile(r"^\[\[maintenance\]\]\n(?:(?!\[).*(?:\n|$))*", re.MULTILINE)


def live_text() -> str:
    """The example inventory's text without its planned maintenance."""
    text = _MAINTENANCE.sub("", EXAMPLE.read_text(encoding="utf-8"))
    if "[[maintenance]]" in text:  # a layout the pattern did not expect: fail loudly
        raise AssertionError("tests/live_inventory.py could not drop the maintenance tables")
    return text


def live_inventory(directory: Path, text: str | None = None) -> Path:
    """Write ``text`` (default: ``live_text()``) as ``inventory.toml`` in ``directory``."""
    path = directory / "inventory.toml"
    path.write_text(live_text() if text is None else text, encoding="utf-8")
    return path
