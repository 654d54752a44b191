"""Message templates from config/templates/<lang>.toml (format version 1), rendered per language.

Text lives in the TOML files, not here: each ``[message.<kind>]`` table has ``subject`` and
``text`` (``alert_group`` also ``item``) written with str.format named fields. Loading checks
that every kind exists and that each field is one the router supplies, so a typo in a template
stops the collector at start-up instead of producing a broken SMS at 3 a.m.
"""

from __future__ import annotations

import logging
import string
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.alerts.errors import TemplateError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_PLACE = {"station_name", "commune_name", "station", "commune", "state", "cause", "since", "code"}
# Fields each message kind may use (documented in collector/alerts/README.md).
FIELDS: dict[str, set[str]] = {
    "alert": _PLACE,
    "alert_group": {"count", "items"},
    "alert_group.item": _PLACE,
    "reminder": _PLACE | {"duration"},
    "escalation": _PLACE | {"duration", "technicians"},
    "recovery": _PLACE | {"duration", "until"},
    "upstream_down": {"upstream_name", "upstream", "since", "count", "stations", "code"},
    "upstream_restored": {"upstream_name", "upstream", "since", "until", "duration", "code"},
    "update": _PLACE,
    "flap_summary": _PLACE | {"flaps", "window_min"},
    "unscheduled_broadcast": _PLACE,
    "battery_warning": _PLACE | {"battery_v", "hours_left"},
    "controller_lost": _PLACE,
    "ack_confirm": {"code", "subject_name", "by", "at"},
}
_WORDS = ("day", "hour", "minute", "less_than_minute", "time_format", "list_separator", "unknown")


class _Lenient(dict):
    """A missing field renders as the language's "unknown" word and is logged, never raised."""

    def __init__(self, values: dict[str, object], unknown: str, where: str) -> None:
        super().__init__(values)
        self.unknown, self.where = unknown, where

    def __missing__(self, key: str) -> str:
        log.warning("template %s: no value for {%s}", self.where, key)
        return self.unknown


@dataclass(frozen=True)
class LanguagePack:
    language: str
    words: dict[str, str]
    states: dict[str, str]
    causes: dict[str, str]
    messages: dict[str, dict[str, str]]

    def render(self, kind: str, part: str, values: dict[str, object]) -> str:
        template = self.messages[kind][part]
        return template.format_map(
            _Lenient(values, self.words["unknown"], f"{self.language}.{kind}")
        )

    def state(self, state: str) -> str:
        return self.states.get(state, state)

    def cause(self, cause: str) -> str:
        return self.causes.get(cause, cause)

    def duration(self, ms: int) -> str:
        minutes = max(0, ms) // 60_000
        if minutes == 0:
            return self.words["less_than_minute"]
        days, rest = divmod(minutes, 1440)
        hours, mins = divmod(rest, 60)
        parts = [(days, "day"), (hours, "hour"), (mins, "minute")]
        return " ".join(f"{n} {self.words[w]}" for n, w in parts if n)

    def local_time(self, ms: int, tz: ZoneInfo) -> str:
        return (
            datetime.fromtimestamp(ms / 1000, UTC)
            .astimezone(tz)
            .strftime(self.words["time_format"])
        )

    def join(self, items: list[str]) -> str:
        return self.words["list_separator"].join(items)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def load_language(path: Path) -> LanguagePack:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise TemplateError(f"{path}: {err}") from err
    if data.get("version") != FORMAT_VERSION:
        got = data.get("version")
        raise TemplateError(f"{path}: version must be {FORMAT_VERSION}, got {got!r}")
    words, messages = data.get("words", {}), data.get("message", {})
    for word in _WORDS:
        if word not in words:
            raise TemplateError(f"{path}: words.{word} is missing")
    for kind, allowed in FIELDS.items():
        table, _, sub = kind.partition(".")
        parts = (sub,) if sub else ("subject", "text")
        for part in parts:
            template = messages.get(table, {}).get(part)
            if not isinstance(template, str):
                raise TemplateError(f"{path}: message.{table}.{part} is missing")
            try:
                unknown = _fields(template) - allowed
            except ValueError as err:
                raise TemplateError(f"{path}: message.{table}.{part}: {err}") from err
            if unknown:
                raise TemplateError(
                    f"{path}: message.{table}.{part} uses unknown field(s) {sorted(unknown)}; "
                    f"allowed: {sorted(allowed)}"
                )
    language = str(data.get("language", path.stem))
    return LanguagePack(language, words, data.get("states", {}), data.get("causes", {}), messages)


class Templates:
    """All language packs of a folder; ``pack(lang)`` falls back to the default language."""

    def __init__(self, packs: dict[str, LanguagePack], default: str = "vi") -> None:
        if default not in packs:
            raise TemplateError(f"default language {default!r} has no template file")
        self.packs, self.default = packs, default

    @classmethod
    def load(cls, folder: Path, default: str = "vi") -> Templates:
        files = sorted(Path(folder).glob("*.toml"))
        if not files:
            raise TemplateError(f"no *.toml templates in {folder}")
        return cls({p.stem: load_language(p) for p in files}, default)

    def pack(self, language: str | None) -> LanguagePack:
        return self.packs.get(language or self.default) or self.packs[self.default]
