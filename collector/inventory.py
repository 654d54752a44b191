"""The province's inventory: communes, stations, schedules, people, upstreams, maintenance.

Loaded from TOML (``config/inventory.example.toml`` documents every key) and validated at
start-up without network calls. A bad file raises :class:`InventoryError` whose message names
the key path (``stations[2].commune``), never a bare pydantic dump.

Inventory format version 1. Times in ``[[maintenance]]`` are ISO 8601, local province time
when they carry no offset; everything is converted to ms since the Unix epoch (UTC).
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

INVENTORY_VERSION = 1
_T = TypeVar("_T")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
CommuneCode = Annotated[str, Field(pattern=r"^\d{5}$")]
Phone = Annotated[str, Field(pattern=r"^\+84\d{8,10}$")]


class InventoryError(ValueError):
    """The inventory file is missing, not TOML, or breaks a rule; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    telemetry_interval_s: Annotated[int, Field(gt=0, description="agent telemetry period")] = 60
    down_after_intervals: Annotated[int, Field(ge=1, description="missed reports = down")] = 3
    silence_threshold_dbfs: Annotated[float, Field(le=0, description="below = silent")] = -50.0
    silence_after_min: Annotated[float, Field(gt=0, description="quiet in window = silent")] = 5
    unscheduled_after_min: Annotated[float, Field(gt=0, description="audio off-window")] = 10
    battery_low_v: Annotated[float, Field(gt=0, description="battery below = battery_low")] = 11.5
    damping_s: Annotated[int, Field(ge=0, description="shorter link drops open nothing")] = 60
    flap_window_min: Annotated[int, Field(gt=0, description="window counting link drops")] = 60
    flap_threshold: Annotated[int, Field(ge=2, description="drops in window = flapping")] = 3

    @property
    def down_after_ms(self) -> int:
        return self.telemetry_interval_s * self.down_after_intervals * 1000


class ThresholdOverrides(_Strict):
    """Per commune or station: only the keys given replace the defaults."""

    telemetry_interval_s: Annotated[int, Field(gt=0)] | None = None
    down_after_intervals: Annotated[int, Field(ge=1)] | None = None
    silence_threshold_dbfs: Annotated[float, Field(le=0)] | None = None
    silence_after_min: Annotated[float, Field(gt=0)] | None = None
    unscheduled_after_min: Annotated[float, Field(gt=0)] | None = None
    battery_low_v: Annotated[float, Field(gt=0)] | None = None
    damping_s: Annotated[int, Field(ge=0)] | None = None
    flap_window_min: Annotated[int, Field(gt=0)] | None = None
    flap_threshold: Annotated[int, Field(ge=2)] | None = None


class Province(_Strict):
    code: Annotated[str, Field(pattern=r"^\d{2}$")]
    slug: Id
    name: str
    department: str = Field(description="the provincial department that receives reports")
    timezone: str = "Asia/Ho_Chi_Minh"
    goal_percent: Annotated[float, Field(ge=0, le=100)] = 100

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r}") from err
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Schedule(_Strict):
    """Daily broadcast windows ("05:30-06:30", local time; "22:00-01:00" crosses midnight)."""

    id: Id
    windows: list[str] = []
    always: bool = False  # 24 h channel

    @field_validator("windows")
    @classmethod
    def _valid_windows(cls, values: list[str]) -> list[str]:
        for value in values:
            match = _WINDOW.match(value)
            if not match:
                raise ValueError(f"window {value!r} is not HH:MM-HH:MM")
            start, end = value.split("-")
            if start == end or (end == "24:00" and start == "00:00"):
                raise ValueError(f"window {value!r} is empty or 24 h: use always = true")
            if end.startswith("24") and end != "24:00":
                raise ValueError(f"window {value!r} ends after 24:00")
        return values

    @model_validator(mode="after")
    def _windows_or_always(self) -> Schedule:
        if self.always == bool(self.windows):
            raise ValueError("give either windows or always = true (not both, not neither)")
        return self


class Person(_Strict):
    id: Id
    name: str
    phone: Phone | None = None
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    language: Literal["vi", "en"] = "vi"


class Technician(Person):
    pass


class Contact(Person):
    role: Literal["district", "department"]


class Upstream(_Strict):
    id: Id
    kind: Literal["serial_gateway", "relay", "uplink"]
    name: str


class Commune(_Strict):
    code: CommuneCode
    name: str
    technicians: list[Id] = []
    escalation: list[Id] = []
    schedule: Id
    thresholds: ThresholdOverrides = ThresholdOverrides()


class Station(_Strict):
    id: Id
    commune: CommuneCode
    name: str  # the place ("Sông Hiến (cũ)"); alert templates say "Đài {station_name}"
    clusters: list[Literal["wired", "fm", "ip"]] = []
    required: bool = True  # counts toward the commune's compliance
    schedule: Id | None = None  # overrides the commune's
    upstream: Id | None = None
    address: Annotated[int, Field(ge=1, le=247)] | None = None  # RS-485, serial-gateway stations
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    position: Literal["demo", "surveyed"]
    thresholds: ThresholdOverrides = ThresholdOverrides()


class Maintenance(_Strict):
    station: Id | None = None
    commune: CommuneCode | None = None
    start: datetime | str
    end: datetime | str
    note: str = ""


class MaintenanceWindow(_Strict):
    """A declared maintenance window, resolved to ms; covers a station or a whole commune."""

    station: str | None
    commune: str | None
    start_ms: int
    end_ms: int
    note: str = ""

    def covers(self, station: Station, ts_ms: int) -> bool:
        hit = self.station == station.id or self.commune == station.commune
        return hit and self.start_ms <= ts_ms < self.end_ms


class _InventoryFile(_Strict):
    province: Province
    defaults: Thresholds = Thresholds()
    schedules: list[Schedule] = []
    technicians: list[Technician] = []
    contacts: list[Contact] = []
    upstreams: list[Upstream] = []
    communes: list[Commune] = []
    stations: list[Station] = []
    maintenance: list[Maintenance] = []


def _by_id(items: list[_T], key: str, section: str) -> dict[str, _T]:
    out: dict[str, _T] = {}
    for i, item in enumerate(items):
        value = getattr(item, key)
        if value in out:
            raise InventoryError(f"{section}[{i}].{key}: duplicate {key} {value!r}")
        out[value] = item
    return out


def _to_ms(value: datetime | str, tz: ZoneInfo, where: str) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as err:
            raise InventoryError(f"{where}: {value!r} is not an ISO 8601 date-time") from err
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return int(value.timestamp() * 1000)


class Inventory:
    """The validated inventory, indexed by id. Built by :func:`load_inventory`."""

    def __init__(self, raw: _InventoryFile) -> None:
        self.province = raw.province
        self.defaults = raw.defaults
        self.schedules = _by_id(raw.schedules, "id", "schedules")
        self.technicians = _by_id(raw.technicians, "id", "technicians")
        self.contacts = _by_id(raw.contacts, "id", "contacts")
        self.upstreams = _by_id(raw.upstreams, "id", "upstreams")
        self.communes = _by_id(raw.communes, "code", "communes")
        self.stations = _by_id(raw.stations, "id", "stations")
        self._check_references(raw)
        self.maintenance = [self._resolve(i, m) for i, m in enumerate(raw.maintenance)]
        # Indexes for the per-commune and per-upstream lookups of the health tick and the
        # exports: a scan per call made the compliance tick O(communes x stations), which never
        # finished at 100k stations.
        self._by_commune: dict[str, list[Station]] = {}
        self._by_upstream: dict[str, list[Station]] = {}
        for s in self.stations.values():
            self._by_commune.setdefault(s.commune, []).append(s)
            if s.upstream is not None:
                self._by_upstream.setdefault(s.upstream, []).append(s)

    def _check_references(self, raw: _InventoryFile) -> None:
        def need(ok: bool, where: str, what: str) -> None:
            if not ok:
                raise InventoryError(f"{where}: {what}")

        for i, c in enumerate(raw.communes):
            need(
                c.schedule in self.schedules,
                f"communes[{i}].schedule",
                f"unknown schedule {c.schedule!r}",
            )
            for j, t in enumerate(c.technicians):
                need(
                    t in self.technicians,
                    f"communes[{i}].technicians[{j}]",
                    f"unknown technician {t!r}",
                )
            for j, e in enumerate(c.escalation):
                need(e in self.contacts, f"communes[{i}].escalation[{j}]", f"unknown contact {e!r}")
        addresses: dict[tuple[str, int], str] = {}
        for i, s in enumerate(raw.stations):
            where = f"stations[{i}]"
            need(
                s.commune in self.communes,
                f"{where}.commune",
                f"station {s.id!r}: unknown commune {s.commune!r}",
            )
            need(
                s.schedule is None or s.schedule in self.schedules,
                f"{where}.schedule",
                f"unknown schedule {s.schedule!r}",
            )
            need(
                s.upstream is None or s.upstream in self.upstreams,
                f"{where}.upstream",
                f"station {s.id!r} claims unknown upstream {s.upstream!r}",
            )
            if s.address is not None:
                up = self.upstreams.get(s.upstream or "")
                need(
                    up is not None and up.kind == "serial_gateway",
                    f"{where}.address",
                    "an RS-485 address needs upstream = a serial_gateway",
                )
                key = (s.upstream or "", s.address)
                need(
                    key not in addresses,
                    f"{where}.address",
                    f"address {s.address} already used by {addresses.get(key)!r}",
                )
                addresses[key] = s.id

    def _resolve(self, i: int, m: Maintenance) -> MaintenanceWindow:
        where = f"maintenance[{i}]"
        if (m.station is None) == (m.commune is None):
            raise InventoryError(f"{where}: give exactly one of station or commune")
        if m.station is not None and m.station not in self.stations:
            raise InventoryError(f"{where}.station: unknown station {m.station!r}")
        if m.commune is not None and m.commune not in self.communes:
            raise InventoryError(f"{where}.commune: unknown commune {m.commune!r}")
        tz = self.province.tz
        start, end = _to_ms(m.start, tz, f"{where}.start"), _to_ms(m.end, tz, f"{where}.end")
        if end <= start:
            raise InventoryError(f"{where}.end: must be after start")
        return MaintenanceWindow(
            station=m.station, commune=m.commune, start_ms=start, end_ms=end, note=m.note
        )

    def thresholds_for(self, station_id: str) -> Thresholds:
        station = self.stations[station_id]
        merged = self.defaults.model_dump()
        for layer in (self.communes[station.commune].thresholds, station.thresholds):
            merged.update(layer.model_dump(exclude_none=True))
        return Thresholds(**merged)

    def schedule_for(self, station_id: str) -> Schedule:
        station = self.stations[station_id]
        return self.schedules[station.schedule or self.communes[station.commune].schedule]

    def technicians_for(self, station_id: str) -> list[Technician]:
        commune = self.communes[self.stations[station_id].commune]
        return [self.technicians[t] for t in commune.technicians]

    def escalation_for(self, station_id: str) -> list[Contact]:
        commune = self.communes[self.stations[station_id].commune]
        return [self.contacts[c] for c in commune.escalation]

    def stations_of(self, commune: str) -> list[Station]:
        return list(self._by_commune.get(commune, ()))

    def children_of(self, upstream: str) -> list[Station]:
        return list(self._by_upstream.get(upstream, ()))

    def in_maintenance(self, station_id: str, ts_ms: int) -> MaintenanceWindow | None:
        station = self.stations[station_id]
        return next((m for m in self.maintenance if m.covers(station, ts_ms)), None)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_inventory(data: dict[str, object]) -> Inventory:
    try:
        raw = _InventoryFile.model_validate(data)
    except ValidationError as err:
        lines = [f"{_key_path(e['loc'])}: {e['msg']}" for e in err.errors()]
        raise InventoryError("invalid inventory:\n  " + "\n  ".join(lines)) from err
    return Inventory(raw)


def load_inventory(path: str | Path) -> Inventory:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as err:
        raise InventoryError(f"cannot read inventory {path}: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise InventoryError(f"inventory {path} is not valid TOML: {err}") from err
    except UnicodeDecodeError as err:  # TOML is UTF-8; a damaged file is a clear error too
        raise InventoryError(f"inventory {path} is not UTF-8 text: {err.reason}") from err
    try:
        return parse_inventory(data)
    except InventoryError as err:
        raise InventoryError(f"{path}: {err}") from err
