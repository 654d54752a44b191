"""Guards of the export files: formula injection, output paths, progress bar only on a tty."""

from __future__ import annotations

import csv
import fcntl
import io
import os
import select
import struct
import sys
import termios

import pytest
from openpyxl import load_workbook

from collector.export.cli import _progress_bar
from collector.export.config import ExportFormat
from collector.export.errors import OutputPathError
from collector.export.report import build_report
from collector.export.run import write_files
from collector.export.safe import cell, output_path
from tests.test_export_figures import DATA, INVENTORY, OCT


@pytest.mark.parametrize("text", ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=x", "\r=x"])
def test_formula_text_is_escaped(text):
    assert cell(text) == "'" + text


@pytest.mark.parametrize("value", ["Xã Bảo Lâm", "01273", -2.5, 0, None, "a=b"])
def test_other_values_are_unchanged(value):
    assert cell(value) == value


@pytest.mark.parametrize(
    "name", ["../x.csv", "/etc/passwd", "a/b.csv", "..", ".hidden", "", "x\\..\\y.csv", "a\nb.csv"]
)
def test_output_names_cannot_leave_the_directory(tmp_path, name):
    with pytest.raises(OutputPathError):
        output_path(tmp_path, name)


def test_symlink_out_of_the_directory_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.csv").symlink_to(outside / "report.csv")
    with pytest.raises(OutputPathError, match="outside"):
        output_path(out, "report.csv")
    assert output_path(out, "ok.csv") == (out / "ok.csv").resolve()


def test_a_hostile_prefix_writes_nothing(tmp_path):
    report = build_report(INVENTORY, DATA, OCT, 0)
    with pytest.raises(OutputPathError):
        write_files(report, tmp_path / "out", "../../evil", [ExportFormat.CSV], "vi")
    assert not any(tmp_path.parent.glob("evil*"))


def test_injected_names_are_text_in_csv_and_xlsx(tmp_path):
    report = build_report(INVENTORY, DATA, OCT, 0)
    paths = write_files(report, tmp_path, "t", [ExportFormat.CSV, ExportFormat.XLSX], "en")
    text = (tmp_path / "t-communes.csv").read_text(encoding="utf-8-sig")
    names = [r[1] for r in csv.reader(io.StringIO(text))]
    assert names[1] == "'=Phường Thục Phán"
    assert tmp_path / "t.xlsx" in [p for p in paths]
    sheet = load_workbook(tmp_path / "t.xlsx")["Communes"]
    assert sheet["B2"].value == "'=Phường Thục Phán" and sheet["B2"].data_type == "s"
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)


def test_progress_bar_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert _progress_bar(10, enabled=True) == (None, None)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a real size
    tty = os.fdopen(slave, "w")
    try:
        monkeypatch.setattr(sys, "stderr", tty)
        assert _progress_bar(10, enabled=False) == (None, None)
        update, bar = _progress_bar(10, enabled=True)
        update(10)
        bar.close()
        tty.flush()
        drawn = b""
        while select.select([master], [], [], 0.5)[0]:  # drain what the bar drew
            drawn += os.read(master, 4096)
        assert b"10/10" in drawn, drawn
    finally:
        tty.close()
        os.close(master)
