"""The export against a real InfluxDB 1.x: the hand-built timeline is written with the
project's encoder (collector.storage.points), read back by the export, and the files checked."""

from __future__ import annotations

import csv
import urllib.request

import pytest
from openpyxl import load_workbook

from collector.export.config import ExportFormat
from collector.export.errors import SourceError
from collector.export.influx_query import InfluxReader
from collector.export.influx_source import InfluxSource
from collector.export.run import run_export
from collector.storage.points import points_for_payload, state_point
from loaxa.cli import main as loaxa_main
from loaxa.payloads import Broadcast, Telemetry
from tests.test_export_figures import (
    A_DOWN_S,
    BROADCASTS_A,
    INVENTORY,
    INVENTORY_TOML,
    OCT,
    OCT_S,
    TIMELINE_A,
    TIMELINE_B,
    A,
    B,
    C,
    ms,
)

DB = "loaxa"
PROVINCE = "cao-bang"


def _write(influxdb, lines: list[str]) -> None:
    req = urllib.request.Request(
        f"{influxdb.url}/write?db={DB}&precision=ms", data="\n".join(lines).encode(), method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204


def _lines() -> list[str]:
    communes = {A: "01273", B: "01273", C: "01290"}
    lines = [
        state_point(t.ts_ms, PROVINCE, communes[t.station], t.station, t.state, t.cause)
        for t in [*TIMELINE_A, *TIMELINE_B]
    ]
    # C: operating in September, then nothing at all in October
    lines.append(state_point(ms("2026-09-20T00:00:00"), PROVINCE, "01290", C, "operating"))
    # B: one telemetry message in October is the evidence that it was watched
    tel = Telemetry(station=B, session=1, seq=7, ts=ms("2026-10-15T12:00:00"), agent_uptime_s=5)
    lines += points_for_payload(tel, PROVINCE, "01273")
    for i, b in enumerate(BROADCASTS_A):
        stop = Broadcast(
            station=A,
            session=1,
            seq=100 + i,
            ts=b.end_ms,
            action="stop",
            source=b.source,
            start_ts=b.start_ms,
            end_ts=b.end_ms,
        )
        start = stop.model_copy(update={"action": "start", "ts": b.start_ms, "end_ts": None})
        lines += points_for_payload(start, PROVINCE, "01273")
        lines += points_for_payload(stop, PROVINCE, "01273")
    return lines


@pytest.fixture
def loaded(influxdb):
    influxdb.create_database(DB)
    _write(influxdb, _lines())
    return influxdb


def _source(server) -> InfluxSource:
    return InfluxSource(InfluxReader(server.url, DB), PROVINCE)


def _csv(path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "CSV must start with a UTF-8 BOM for Excel"
    return list(csv.reader(raw.decode("utf-8-sig").splitlines()))


def test_export_files_from_real_influxdb(loaded, tmp_path):
    formats = [ExportFormat.CSV, ExportFormat.XLSX, ExportFormat.PNG, ExportFormat.PDF]
    result = run_export(INVENTORY, _source(loaded), OCT, tmp_path, formats, "vi", now_ms=0)
    names = sorted(p.name for p in result.paths)
    prefix = "loaxa-cao-bang-2026-10"
    assert names == sorted(
        [
            f"{prefix}-communes.csv",
            f"{prefix}-stations.csv",
            f"{prefix}-outages.csv",
            f"{prefix}-summary.csv",
            f"{prefix}.xlsx",
            f"{prefix}-report.png",
            f"{prefix}-report.pdf",
        ]
    )

    stations = _csv(tmp_path / f"{prefix}-stations.csv")
    assert stations[0][:4] == ["Mã đài", "Tên", "Mã xã", "Tỷ lệ hoạt động (%)"]
    by_id = {r[0]: dict(zip(stations[0], r, strict=True)) for r in stations[1:]}
    known_s = OCT_S - 3 * 3600
    a = by_id[A]
    assert float(a["Tỷ lệ hoạt động (%)"]) == round(100 * (known_s - A_DOWN_S) / known_s, 4)
    assert a["Đạt mục tiêu"] == "không đạt"
    assert float(a["Thời gian ngừng (phút)"]) == 130.75
    assert a["Số lần ngừng"] == "3"
    assert float(a["Lần ngừng dài nhất (phút)"]) == 60.5
    assert float(a["Im lặng trong giờ phát (phút)"]) == 10.25
    assert float(a["Chạy ắc quy (giờ)"]) == 3.5
    assert float(a["Bảo trì (phút)"]) == 180.0
    assert float(a["Đã phát (phút)"]) == 120.0
    assert float(a["Phát trong lịch (phút)"]) == 60.0
    assert float(a["Tiếp sóng tỉnh (giờ)"]) == 1.0
    assert float(by_id[B]["Tỷ lệ hoạt động (%)"]) == 100.0
    assert by_id[C]["Tỷ lệ hoạt động (%)"] == "không rõ"  # no data: unknown, not 0 or 100
    assert by_id[C]["Độ phủ dữ liệu (%)"] == "0.0"

    outages = _csv(tmp_path / f"{prefix}-outages.csv")
    assert [(r[0], r[2], r[3], r[7]) for r in outages[1:]] == [
        (A, "2026-09-30T22:00:00+07:00", "2026-10-01T01:00:30+07:00", "power"),
        (A, "2026-10-05T05:40:00+07:00", "2026-10-05T05:50:15+07:00", "audio_chain"),
        (A, "2026-10-31T23:00:00+07:00", "chưa khắc phục", "network"),
    ]

    communes = _csv(tmp_path / f"{prefix}-communes.csv")
    # the commune name starts with "=": escaped so a spreadsheet shows it as text
    assert communes[1][:2] == ["01273", "'=Phường Thục Phán"]

    wb = load_workbook(tmp_path / f"{prefix}.xlsx")
    assert wb.sheetnames == ["Tổng hợp", "Theo xã", "Theo đài", "Sự cố"]
    rows = list(wb["Theo đài"].iter_rows(values_only=True))
    header = rows[0]
    xa = dict(zip(header, next(r for r in rows if r[0] == A), strict=True))
    assert xa["Tỷ lệ hoạt động (%)"] == float(a["Tỷ lệ hoạt động (%)"])
    assert xa["Thời gian ngừng (phút)"] == 130.75 and xa["Số lần ngừng"] == 3
    assert (
        dict(zip(header, next(r for r in rows if r[0] == C), strict=True))["Tỷ lệ hoạt động (%)"]
        == "không rõ"
    )
    commune_rows = list(wb["Theo xã"].iter_rows(values_only=True))
    assert commune_rows[1][1] == "'=Phường Thục Phán"
    assert wb["Theo xã"]["B2"].data_type == "s"  # text, not a formula
    summary = dict(r for r in wb["Tổng hợp"].iter_rows(values_only=True) if r[0])
    assert summary["Tỷ lệ xã đạt mục tiêu (%)"] == 0.0
    assert summary["Số xã có dữ liệu"] == 1
    assert (tmp_path / f"{prefix}-report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / f"{prefix}-report.pdf").read_bytes()[:5] == b"%PDF-"


def test_english_headers(loaded, tmp_path):
    run_export(INVENTORY, _source(loaded), OCT, tmp_path, [ExportFormat.CSV], "en", now_ms=0)
    rows = _csv(tmp_path / "loaxa-cao-bang-2026-10-stations.csv")
    assert rows[0][:4] == ["Station", "Name", "Commune code", "Availability (%)"]
    assert dict(zip(rows[0], rows[3], strict=True))["Availability (%)"] == "unknown"


def test_bad_rows_are_counted_not_fatal(loaded, tmp_path):
    _write(
        loaded,
        [
            f"station_state,province={PROVINCE},commune=01273,station={B},state=bogus "
            f'state_name="bogus",operating=false {ms("2026-10-03T00:00:00")}'
        ],
    )
    source = _source(loaded)
    result = run_export(INVENTORY, source, OCT, tmp_path, [ExportFormat.CSV], "en", now_ms=0)
    assert source.skipped["bad_state"] == 1
    assert next(s for s in result.report.stations if s.subject == B).availability_percent == 100


def test_unreachable_influxdb_is_a_source_error(tmp_path):
    from tests.servers import free_port

    source = InfluxSource(
        InfluxReader(f"http://127.0.0.1:{free_port()}", DB, timeout_s=2), PROVINCE
    )
    with pytest.raises(SourceError, match="unreachable"):
        run_export(INVENTORY, source, OCT, tmp_path, [ExportFormat.CSV], "vi", now_ms=0)


def test_influxql_error_is_a_source_error(influxdb, tmp_path):
    source = _source(influxdb)  # the database does not exist
    with pytest.raises(SourceError, match="database not found"):
        run_export(INVENTORY, source, OCT, tmp_path, [ExportFormat.CSV], "vi", now_ms=0)


def _config(tmp_path, server, extra: str = "") -> str:
    (tmp_path / "inventory.toml").write_text(INVENTORY_TOML, encoding="utf-8")
    path = tmp_path / "collector.toml"
    path.write_text(
        f'inventory = "inventory.toml"\n[influx]\nurl = "{server.url}"\ndb = "{DB}"\n'
        f'[export]\ndirectory = "out"\nformats = ["csv", "xlsx"]\n{extra}',
        encoding="utf-8",
    )
    return str(path)


def test_cli_month_writes_into_configured_directory(loaded, tmp_path, capsys):
    config = _config(tmp_path, loaded)
    assert loaxa_main(["export", "--config", config, "--month", "2026-10"]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in (tmp_path / "out").iterdir())
    assert len(printed) == 5  # 4 CSV + 1 XLSX
    stations = _csv(tmp_path / "out" / "loaxa-cao-bang-2026-10-stations.csv")
    assert float(dict(zip(stations[0], stations[1], strict=True))["Số lần ngừng"]) == 3


def test_cli_year_and_range_in_english(loaded, tmp_path, capsys):
    config = _config(tmp_path, loaded)
    out = tmp_path / "y"
    args = [
        "export",
        "--config",
        config,
        "--year",
        "2026",
        "--lang",
        "en",
        "--out",
        str(out),
        "--format",
        "csv",
    ]
    assert loaxa_main(args) == 0
    rows = _csv(out / "loaxa-cao-bang-2026-stations.csv")
    a = dict(zip(rows[0], rows[1], strict=True))
    # the whole year: both parts of the boundary outage, plus the September-October others
    assert float(a["Downtime (min)"]) == 180.5 + 10.25 + 61 * 24 * 60 + 60
    args = [
        "export",
        "--config",
        config,
        "--from",
        "2026-10-05",
        "--to",
        "2026-10-05",
        "--lang",
        "en",
        "--out",
        str(out),
        "--format",
        "csv",
    ]
    assert loaxa_main(args) == 0
    rows = _csv(out / "loaxa-cao-bang-2026-10-05_2026-10-05-stations.csv")
    assert float(dict(zip(rows[0], rows[1], strict=True))["Downtime (min)"]) == 10.25


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "expected YYYY-MM"),
        (["--from", "2026-10-05"], "--from needs --to"),
        (["--month", "2026-10", "--format", "docx"], "use csv, xlsx, png, pdf"),
        (["--month", "2026-10", "--goal", "120"], "--goal must be between 0 and 100"),
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path, capsys, args, message):
    config = _config(tmp_path, type("S", (), {"url": "http://127.0.0.1:9"})())
    assert loaxa_main(["export", "--config", config, *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_bad_export_section_names_the_key(tmp_path, capsys):
    config = _config(tmp_path, type("S", (), {"url": "http://127.0.0.1:9"})(), 'lang = "fr"\n')
    assert loaxa_main(["export", "--config", config, "--month", "2026-10"]) == 2
    assert "export.lang" in capsys.readouterr().err


def test_cli_influx_down_exits_1(tmp_path, capsys):
    from tests.servers import free_port

    server = type("S", (), {"url": f"http://127.0.0.1:{free_port()}"})()
    assert loaxa_main(["export", "--config", _config(tmp_path, server), "--month", "2026-10"]) == 1
    assert "unreachable" in capsys.readouterr().err
