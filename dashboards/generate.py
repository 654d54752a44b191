"""Write the dashboards as JSON files (committed in dashboards/json/, checked up to date by a test).

The JSON is a pure function of the inventory (province slug and goal, map centre, broadcast
windows), so a deployment regenerates it from its own inventory:
``loaxa dashboards generate --inventory /etc/loaxa/inventory.toml --out DIR``.
"""

from __future__ import annotations

import json
from pathlib import Path

from collector.inventory import Inventory, load_inventory
from dashboards import compliance, overview, station
from dashboards.grafana import Json

PACKAGE_DIR = Path(__file__).resolve().parent
JSON_DIR = PACKAGE_DIR / "json"
EXAMPLE_INVENTORY = PACKAGE_DIR.parent / "config" / "inventory.example.toml"


def build_all(inventory: Inventory) -> dict[str, Json]:
    """File name -> dashboard model, for every loaxa dashboard."""
    return {
        "overview.json": overview.build(inventory),
        "station.json": station.build(inventory),
        "compliance.json": compliance.build(inventory),
    }


def render(dashboard: Json) -> str:
    """Stable text: the same inventory always gives the same bytes (reviewable diffs)."""
    return json.dumps(dashboard, ensure_ascii=False, indent=2) + "\n"


def write_all(inventory: Inventory, out_dir: Path = JSON_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, dashboard in build_all(inventory).items():
        path = out_dir / name
        path.write_text(render(dashboard), encoding="utf-8")
        written.append(path)
    return written


def stale_files(inventory: Inventory, out_dir: Path = JSON_DIR) -> list[str]:
    """Names of the files in ``out_dir`` that differ from what the generator writes now."""
    stale = []
    for name, dashboard in build_all(inventory).items():
        path = out_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != render(dashboard):
            stale.append(name)
    return stale


def load_dashboards(json_dir: Path = JSON_DIR) -> list[Json]:
    """The committed dashboards, as ``loaxa dashboards push`` uploads them."""
    files = sorted(json_dir.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no dashboard JSON in {json_dir}: run `loaxa dashboards generate`")
    return [json.loads(f.read_text(encoding="utf-8")) for f in files]


def example_inventory() -> Inventory:
    return load_inventory(EXAMPLE_INVENTORY)
