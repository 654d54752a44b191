"""The committed dashboard JSON is what the generator writes, valid, and consistent with the
provisioning files (datasource uid, folder uid)."""

from __future__ import annotations

import json
import re

from dashboards import generate
from dashboards.grafana import DATASOURCE_UID
from dashboards.macros import panel_queries
from dashboards.push import FOLDER_UID
from loaxa.cli import main

PROVISIONING = generate.PACKAGE_DIR / "provisioning"


def test_committed_json_is_up_to_date():
    stale = generate.stale_files(generate.example_inventory())
    assert not stale, f"dashboards/json out of date: run `loaxa dashboards generate` ({stale})"


def test_check_flag_fails_on_a_stale_file(tmp_path):
    inv = str(generate.EXAMPLE_INVENTORY)
    assert main(["dashboards", "generate", "--inventory", inv, "--out", str(tmp_path)]) == 0
    assert main(["dashboards", "generate", "--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "station.json").write_text("{}\n")
    assert main(["dashboards", "generate", "--check", "--out", str(tmp_path)]) == 1


def test_bad_inventory_is_a_clear_error(tmp_path, caplog):
    bad = tmp_path / "inv.toml"
    bad.write_text("[province]\ncode = 'x'\n")
    assert main(["dashboards", "generate", "--inventory", str(bad), "--out", str(tmp_path)]) == 2
    assert "province.code" in caplog.text


def test_dashboards_are_valid_and_use_the_provisioned_datasource():
    boards = generate.load_dashboards()
    assert sorted(b["uid"] for b in boards) == [
        "loaxa-compliance",
        "loaxa-overview",
        "loaxa-station",
    ]
    for board in boards:
        assert board["timezone"] == "Asia/Ho_Chi_Minh" and "id" not in board
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]
        for panel in board["panels"]:
            g = panel["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
            for t in panel["targets"]:
                assert t["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
                assert t["rawQuery"] is True
        assert sum(1 for _ in panel_queries(board)) >= 6


def test_overview_is_vietnamese_and_kiosk_ready():
    overview = json.loads((generate.JSON_DIR / "overview.json").read_text(encoding="utf-8"))
    titles = [p["title"] for p in overview["panels"]]
    assert "Trạm không hoạt động" in titles and "Bản đồ trạm theo trạng thái" in titles
    assert overview["refresh"] == "1m" and overview["time"]["from"] == "now/M"
    names = [v["name"] for v in overview["templating"]["list"]]
    assert {"commune", "station"} <= set(names)


def test_provisioning_files_match_the_dashboards():
    ds = (PROVISIONING / "datasources" / "loaxa.yaml").read_text(encoding="utf-8")
    assert re.search(rf"^\s+uid: {DATASOURCE_UID}$", ds, re.M)
    assert re.search(r"^\s+type: influxdb$", ds, re.M)
    assert re.search(r"^\s+version: InfluxQL$", ds, re.M)
    for var in ("LOAXA_INFLUX_URL", "LOAXA_INFLUX_DB", "LOAXA_INFLUX_AUTH"):
        assert f"${{{var}}}" in ds
    prov = (PROVISIONING / "dashboards" / "loaxa.yaml").read_text(encoding="utf-8")
    assert re.search(rf"^\s+folderUid: {FOLDER_UID}$", prov, re.M)
    assert "${LOAXA_DASHBOARDS_DIR}" in prov
