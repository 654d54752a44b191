"""CSV files: UTF-8 with a BOM (so Excel shows Vietnamese correctly), one file per level.

Files: ``<prefix>-stations.csv``, ``-communes.csv``, ``-outages.csv``, ``-summary.csv``.
Headers in the report language; text cells pass the formula-injection guard.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from collector.export.columns import Value, display, header
from collector.export.safe import cell, output_path
from collector.export.tables import Tables


def write_table(
    path: Path, keys: Sequence[str], rows: Iterable[dict[str, Value]], lang: str
) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([header(k, lang) for k in keys])
        for row in rows:
            w.writerow(
                ["" if (v := display(k, row.get(k), lang)) is None else cell(v) for k in keys]
            )


def write_csv(tables: Tables, directory: Path, prefix: str, lang: str) -> list[Path]:
    paths = []
    for level, keys, rows in tables.levels():
        path = output_path(directory, f"{prefix}-{level}.csv")
        write_table(path, keys, rows, lang)
        paths.append(path)
    path = output_path(directory, f"{prefix}-summary.csv")
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        for label, value in tables.summary(lang):
            w.writerow([cell(label), "" if value is None else cell(value)])
    paths.append(path)
    return paths
