"""Inventory generators (loaxa/sim/inventory_gen.py) and fault plans (loaxa/sim/faults.py):
outputs load with collector.inventory, the committed demo file is what the generator writes,
and a seed makes a plan reproducible."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from collector.inventory import load_inventory, parse_inventory
from loaxa.sim import cli
from loaxa.sim.fault_injector import expand
from loaxa.sim.faults import NO_FAULTS, FaultKind, FaultRates, areas_of, build_plan
from loaxa.sim.inventory_gen import (
    DATA_DIR,
    LAT_RANGE,
    LON_RANGE,
    cao_bang_inventory,
    synthetic_inventory,
)
from loaxa.sim.showcase import with_showcase

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cao_bang():
    return parse_inventory(cao_bang_inventory())


def test_cao_bang_has_161_stations_in_56_communes(cao_bang):
    with open(DATA_DIR / "former_communes.csv", encoding="utf-8") as fh:
        former = list(csv.DictReader(fh))
    assert len(cao_bang.stations) == 161 and len(cao_bang.communes) == 56
    for row in former:  # one station per former commune, in the 2025 commune it merged into
        assert cao_bang.stations[f"cb-{row['former_code']}"].commune == row["new_code"]
    assert all(cao_bang.stations_of(code) for code in cao_bang.communes)
    assert {s.position for s in cao_bang.stations.values()} == {"demo"}
    for s in cao_bang.stations.values():
        assert LAT_RANGE[0] <= s.lat <= LAT_RANGE[1] and LON_RANGE[0] <= s.lon <= LON_RANGE[1]
        assert 1 <= len(s.clusters) <= 4


def test_cao_bang_people_schedules_and_gateways(cao_bang):
    assert len(cao_bang.technicians) == 10  # one per former district
    assert [c.role for c in cao_bang.contacts.values()] == ["department"]
    for code in cao_bang.communes:
        some = cao_bang.stations_of(code)[0].id
        assert cao_bang.technicians_for(some) and cao_bang.escalation_for(some)
    kinds = {k for s in cao_bang.stations.values() for k in s.clusters}
    assert kinds == {"wired", "fm", "ip"}
    assert cao_bang.schedules["daily"].windows == ["05:30-06:30", "17:00-18:30"]
    assert any(s.schedule == "fm-24h" for s in cao_bang.stations.values())
    gateways = [u for u in cao_bang.upstreams.values() if u.kind == "serial_gateway"]
    assert 1 <= len(gateways) <= 2
    for gw in gateways:
        behind = cao_bang.children_of(gw.id)
        assert 2 <= len(behind) <= 5
        assert sorted(s.address for s in behind) == list(range(1, len(behind) + 1))


def simulate(*argv: str) -> int:
    """``loaxa simulate ...`` through this package's own parser (no other subcommands loaded)."""
    parser = argparse.ArgumentParser(prog="loaxa")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate", *argv])
    return args.func(args)


def test_committed_demo_file_is_the_generator_output(tmp_path):
    committed = ROOT / "config" / "cao-bang.demo.toml"
    assert (
        simulate("make-inventory", "--cao-bang", "--out", str(tmp_path / "cao-bang.demo.toml")) == 0
    )
    assert (tmp_path / "cao-bang.demo.toml").read_text() == committed.read_text()
    assert len(load_inventory(committed).stations) == 161


def test_seed_changes_the_demo_but_not_its_facts():
    a, b = cao_bang_inventory(seed=1), cao_bang_inventory(seed=1)
    assert a == b
    c = cao_bang_inventory(seed=2)
    assert [s["lat"] for s in a["stations"]] != [s["lat"] for s in c["stations"]]
    assert [s["commune"] for s in a["stations"]] == [s["commune"] for s in c["stations"]]


def test_synthetic_inventories_load(tmp_path):
    assert simulate("make-inventory", "--stations", "1000", "--out", str(tmp_path / "s.toml")) == 0
    assert len(load_inventory(tmp_path / "s.toml").stations) == 1000
    inv = parse_inventory(synthetic_inventory(10_000, seed=3))
    assert len(inv.stations) == 10_000 and len(inv.communes) == 3334
    gateways = [u for u in inv.upstreams if inv.upstreams[u].kind == "serial_gateway"]
    assert len(gateways) == 50 and all(len(inv.children_of(g)) == 4 for g in gateways)


def test_cli_rejects_bad_arguments(capsys):
    assert simulate("--inventory", "x.toml") == 2  # no --broker
    assert "--broker" in capsys.readouterr().err
    assert simulate("--inventory", "/nonexistent.toml", "--broker", "127.0.0.1:1883") == 1
    assert "cannot read inventory" in capsys.readouterr().err


@pytest.mark.slow
def test_synthetic_100k_loads():
    assert len(parse_inventory(synthetic_inventory(100_000)).stations) == 100_000


def test_synthetic_rejects_zero():
    with pytest.raises(ValueError, match="n_stations"):
        synthetic_inventory(0)


def test_same_seed_same_plan(cao_bang):
    rates = FaultRates().scaled(5)
    plan = build_plan(cao_bang, 2 * 86400, seed=7, rates=rates)
    assert plan == build_plan(cao_bang, 2 * 86400, seed=7, rates=rates)
    assert plan != build_plan(cao_bang, 2 * 86400, seed=8, rates=rates)
    assert [f.at_s for f in plan.faults] == sorted(f.at_s for f in plan.faults)
    assert {f.kind for f in plan.faults} >= {FaultKind.LINK_LOSS, FaultKind.POWER_CUT}


def test_power_cuts_hit_whole_former_districts(cao_bang):
    areas = areas_of(cao_bang, list(cao_bang.stations))
    assert len(areas) == 10 and "former district Hoà An" in areas
    plan = build_plan(cao_bang, 20 * 86400, seed=1, rates=FaultRates().scaled(3))
    cuts = [f for f in plan.faults if f.kind == FaultKind.POWER_CUT]
    assert cuts
    for cut in cuts:
        assert sorted(cut.stations) == sorted(areas[cut.target])
        for station, after in cut.flat:  # only a cut longer than the battery runs it flat
            assert station in cut.stations and after < cut.duration_s
    assert any(cut.flat for cut in cuts)


def test_lightning_amp_faults_end_with_a_repair_visit(cao_bang):
    plan = build_plan(cao_bang, 30 * 86400, seed=2, rates=FaultRates().scaled(5))
    amps = [f for f in plan.faults if f.kind == FaultKind.AMP_FAULT]
    assert amps and all(f.cause == "lightning" for f in amps)
    visits = {(f.stations, round(f.at_s + f.duration_s, 3)) for f in plan.faults
              if f.kind == FaultKind.MAINTENANCE}  # fmt: skip
    for amp in amps:
        assert (amp.stations, round(amp.at_s + amp.duration_s, 3)) in visits


def test_gateway_stations_get_no_link_or_clock_faults(cao_bang):
    plan = build_plan(cao_bang, 30 * 86400, seed=4, rates=FaultRates().scaled(10))
    behind = {s for s, st in cao_bang.stations.items() if st.address is not None}
    agentless = [f for f in plan.faults if set(f.stations) & behind]
    assert agentless
    kinds = {FaultKind.LINK_LOSS, FaultKind.FLAPPING_LINK, FaultKind.CLOCK_RESET}
    assert not [f for f in agentless if f.kind in kinds]
    assert any(f.kind == FaultKind.GATEWAY_FAILURE for f in plan.faults)


def test_no_faults_profile_is_empty(cao_bang):
    assert build_plan(cao_bang, 30 * 86400, seed=1, rates=NO_FAULTS).faults == ()


def test_plan_lines_and_steps(cao_bang):
    from datetime import datetime

    plan = build_plan(cao_bang, 86400, seed=1, rates=FaultRates().scaled(4))
    lines = plan.lines(datetime(2026, 11, 27, 14, 0), speed=60)
    assert len(lines) == len(plan.faults)
    cut = next(i for i, f in enumerate(plan.faults) if f.kind == FaultKind.POWER_CUT)
    assert "power cut in former district" in lines[cut] and "stations" in lines[cut]
    steps = expand(plan)
    assert [s.at_s for s in steps] == sorted(s.at_s for s in steps)
    for i, fault in enumerate(plan.faults):
        mine = [s for s in steps if s.fault == i]
        assert mine[0].at_s >= fault.at_s and mine[-1].at_s <= fault.at_s + fault.duration_s


def test_showcase_opens_with_every_kind_of_fault(cao_bang):
    base = build_plan(cao_bang, 86400, seed=5, rates=NO_FAULTS)
    plan = with_showcase(base, cao_bang, within_s=3600)
    early = [f for f in plan.faults if f.at_s < 3600]
    assert {f.kind for f in early} == set(FaultKind)
    cut = next(f for f in early if f.kind == FaultKind.POWER_CUT)
    assert cut.flat and len(cut.flat) < len(cut.stations)  # some batteries run flat, not all
    silent = next(f for f in early if f.kind == FaultKind.SILENT_BROADCAST)
    assert cao_bang.schedule_for(silent.stations[0]).always  # on air, so silence shows
    assert plan == with_showcase(base, cao_bang, within_s=3600)
    agents_only = [s for s, st in cao_bang.stations.items() if st.address is None][:20]
    small = with_showcase(base, cao_bang, agents_only, within_s=3600)
    assert FaultKind.GATEWAY_FAILURE not in {f.kind for f in small.faults}
    assert all(set(f.stations) <= set(agents_only) for f in small.faults)
