"""Pure logic of collector groups: commune -> partition, derived configs, fair share, plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import CollectorConfig, load_config
from collector.group.member import GroupConfigError, GroupMember
from collector.group.partitions import (
    acquire_order,
    assign,
    fair_share,
    partition_config,
    partition_inventory,
    partition_of,
    plan,
    suffixed,
)
from collector.inventory import load_inventory
from loaxa.cli import main

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "config" / "inventory.example.toml"


def test_partition_is_crc32_of_the_code_and_stable_under_additions():
    codes = [f"{10000 + i:05d}" for i in range(200)]
    before = {c: partition_of(c, 8) for c in codes}
    after = assign([*codes, "99999", "00001"], 8)
    assert all(c in after[before[c]] for c in codes)  # nobody moved
    # The CRC-32 check value (ISO-HDLC): crc32("123456789") = 0xCBF43926 = 3421780262
    assert partition_of("123456789", 8) == 3421780262 % 8 == 6
    assert partition_of("123456789", 10) == 2
    sizes = [len(v) for v in assign(codes, 8).values()]
    assert sum(sizes) == 200 and min(sizes) >= 15  # roughly even for a province's ~200


def test_every_commune_in_exactly_one_partition():
    codes = [f"{20000 + 7 * i:05d}" for i in range(97)]
    parts = assign(codes, 5)
    flat = [c for v in parts.values() for c in v]
    assert sorted(flat) == sorted(codes) and set(parts) == set(range(5))


@pytest.mark.parametrize(
    ("partitions", "members", "share"), [(8, 1, 8), (8, 2, 4), (8, 3, 3), (8, 5, 2), (8, 9, 1)]
)
def test_fair_share_covers_every_partition(partitions, members, share):
    assert fair_share(partitions, members) == share
    assert share * members >= partitions  # the shares together always cover the group


def test_plan_releases_highest_above_share_and_wants_what_is_missing():
    assert plan({0, 1, 2, 5, 6, 7}, 4).release == (6, 7)
    assert plan({0, 1, 2, 5, 6, 7}, 4).want == 0
    assert plan({3}, 4) == plan([3], 4)
    assert plan({3}, 4).want == 3 and plan({3}, 4).release == ()
    assert plan(set(), 2).want == 2


def test_acquire_order_is_a_rotation():
    assert acquire_order([5, 1, 3], 1) == [3, 5, 1]
    assert sorted(acquire_order(range(8), 12345)) == list(range(8))
    assert acquire_order([], 7) == []


def test_partition_inventory_keeps_only_its_communes():
    full = load_inventory(INVENTORY)
    communes = sorted(full.communes)[:1]
    part = partition_inventory(INVENTORY, communes)
    assert list(part.communes) == communes
    assert part.stations and all(s.commune in communes for s in part.stations.values())
    assert set(part.stations) == {s.id for s in full.stations.values() if s.commune in communes}
    assert all(m.commune in communes or m.station in part.stations for m in part.maintenance)


def test_partition_config_derives_session_files_and_filters(tmp_path):
    path = tmp_path / "collector.toml"
    path.write_text(
        f'inventory = "{INVENTORY}"\n[daemon]\nstate_db = "state.sqlite"\n'
        '[mqtt]\nclient_id = "col"\nshared_group = "g"\n'
        '[spool]\npath = "spool.sqlite"\ndead_letter_path = "dead.jsonl"\n'
        '[group]\ndir = "group"\npartitions = 4\n'
    )
    config = load_config(path)
    assert config.group is not None and config.group.dir == tmp_path / "group"
    part = partition_config(config, 3, "cao-bang", ["01273", "01290"], 9500)
    assert part.mqtt.client_id == "col-p3" and part.mqtt.shared_group is None
    assert part.mqtt.filters() == ["loaxa/v1/cao-bang/01273/+/+", "loaxa/v1/cao-bang/01290/+/+"]
    assert part.daemon.state_db == tmp_path / "state-p3.sqlite"
    assert part.spool.path == tmp_path / "spool-p3.sqlite"
    assert part.spool.dead_letter_path == tmp_path / "dead-p3.jsonl"
    assert part.http.enabled and part.http.port == 9503
    assert not part.export.monthly and not part.export.yearly and part.group is None
    assert not partition_config(config, 0, "cao-bang", ["01273"], 0).http.enabled
    with pytest.raises(ValueError, match="partition 2 has no commune"):
        partition_config(config, 2, "cao-bang", [], 0)
    assert isinstance(part, CollectorConfig)


def test_check_describes_the_group(tmp_path, capsys):
    path = tmp_path / "collector.toml"
    path.write_text(f'inventory = "{INVENTORY}"\n[group]\ndir = "g"\npartitions = 2\n')
    assert main(["collector", "--config", str(path), "--check"]) == 0
    sizes = sorted(map(len, assign(load_inventory(INVENTORY).communes, 2).values()))
    assert (
        f"group member: 2 partitions of {sizes[0]}-{sizes[1]} communes, locks in {tmp_path / 'g'}"
        in capsys.readouterr().out
    )


def test_suffixed_keeps_folder_and_extension():
    assert suffixed(Path("/v/state.sqlite"), 0) == Path("/v/state-p0.sqlite")
    assert suffixed(Path("dead"), 12) == Path("dead-p12")


def test_account_per_partition_logs_in_with_the_generated_partition_accounts(tmp_path):
    """With the deploy broker's use_username_as_clientid one account holds one session: each
    partition gets its own account, generated by `credentials generate --collector-partitions`."""
    creds = tmp_path / "creds"
    argv = ["credentials", "generate", "--inventory", str(INVENTORY), "--out", str(creds),
            "--broker-host", "mqtt.example.vn", "--collector", "loaxa-collector",
            "--collector", "loaxa-collector-ops", "--collector-partitions", "4"]  # fmt: skip
    assert main(argv) == 0
    secret_dir = creds / "secrets"
    assert {f"loaxa-collector-p{k}.secret" for k in range(4)} <= {
        p.name for p in secret_dir.iterdir()
    }
    passwd_users = {
        line.split(":", 1)[0] for line in (creds / "broker" / "passwd").read_text().splitlines()
    }
    assert {f"loaxa-collector-p{k}" for k in range(4)} <= passwd_users
    path = tmp_path / "collector.toml"
    path.write_text(
        f'inventory = "{INVENTORY}"\n'
        f'[mqtt]\nclient_id = "col"\nusername = "loaxa-collector"\n'
        f'password_file = "{secret_dir / "loaxa-collector.secret"}"\n'
        f'ops_username = "loaxa-collector-ops"\n'
        f'ops_password_file = "{secret_dir / "loaxa-collector-ops.secret"}"\n'
        '[group]\ndir = "group"\npartitions = 4\naccount_per_partition = true\n'
    )
    config = load_config(path)
    part = partition_config(config, 3, "cao-bang", ["01273"], 0)
    assert part.mqtt.username == "loaxa-collector-p3"
    assert part.mqtt.password == (secret_dir / "loaxa-collector-p3.secret").read_text().strip()
    assert part.mqtt.password != config.mqtt.password and part.mqtt.client_id == "col-p3"
    assert part.mqtt.ops_username == "loaxa-collector-ops-p3"
    assert (
        part.mqtt.ops_password == (secret_dir / "loaxa-collector-ops-p3.secret").read_text().strip()
    )


def test_account_per_partition_without_a_password_file_is_refused(tmp_path):
    path = tmp_path / "collector.toml"
    path.write_text(
        f'inventory = "{INVENTORY}"\n[mqtt]\nusername = "loaxa-collector"\npassword = "x"\n'
        '[group]\ndir = "group"\naccount_per_partition = true\n'
    )
    config = load_config(path)
    with pytest.raises(ValueError, match=r"needs mqtt\.username and mqtt\.password_file"):
        partition_config(config, 0, "cao-bang", ["01273"], 0)
    with pytest.raises(GroupConfigError, match="account_per_partition needs"):
        GroupMember(config)
