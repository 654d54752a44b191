"""XLSX workbook (openpyxl): a summary sheet, then one sheet per level (communes, stations,
outages). Text cells pass the formula-injection guard; numbers stay numbers."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from collector.export.columns import display, header
from collector.export.safe import cell, output_path
from collector.export.tables import Tables

SHEETS = {  # level -> (vi, en) sheet title
    "summary": ("Tổng hợp", "Summary"),
    "communes": ("Theo xã", "Communes"),
    "stations": ("Theo đài", "Stations"),
    "outages": ("Sự cố", "Outages"),
}


def sheet_title(level: str, lang: str) -> str:
    vi, en = SHEETS[level]
    return en if lang == "en" else vi


def write_xlsx(tables: Tables, directory: Path, prefix: str, lang: str) -> Path:
    path = output_path(directory, f"{prefix}.xlsx")
    wb = Workbook(write_only=True)  # streamed: a year's outage list stays fast and small
    ws = wb.create_sheet(sheet_title("summary", lang))
    ws.column_dimensions["A"].width = 42
    ws.column_dimensions["B"].width = 40
    for i, (label, value) in enumerate(tables.summary(lang)):
        ws.append([_bold(ws, label, 14) if i == 0 else cell(label), cell(value)])
    for level, keys, rows in tables.levels():
        sheet = wb.create_sheet(sheet_title(level, lang))
        sheet.freeze_panes = "A2"
        sheet.append([_bold(sheet, header(k, lang)) for k in keys])
        for row in rows:
            sheet.append([cell(display(k, row.get(k), lang)) for k in keys])
    wb.save(path)
    return path


def _bold(sheet, text: str, size: float = 11) -> WriteOnlyCell:
    c = WriteOnlyCell(sheet, value=cell(text))
    c.font = Font(bold=True, size=size)
    return c
