"""Case 14: fuzzing (hypothesis) of the frame decoder, the MQTT payload validation and the config
loaders (agent, collector, inventory). Property: no uncaught exception; each input ends as a
result or the loader's own error type. Executions and line coverage of the target modules
(``coverage``, measured in-process around the run) are recorded.

Fast variant: a few hundred inputs per target (make test); slow: thousands (make faults).
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import coverage
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import AgentConfig, ConfigError, load_config
from collector.config import CollectorConfig
from collector.config import ConfigError as CollectorConfigError
from collector.config import load_config as load_collector_config
from collector.ingest.validate import Accepted, Limits, Rejected, validate
from collector.inventory import Inventory, InventoryError, load_inventory
from firmware_protocol import Frame, StreamDecoder, encode_frame
from firmware_protocol.messages import Poll
from loaxa.topics import Kind, station_topic
from tests.faults.report import record

ROOT = Path(__file__).resolve().parents[2]
AGENT_EXAMPLE = ROOT / "config" / "agent.example.toml"
COLLECTOR_EXAMPLE = ROOT / "config" / "collector.example.toml"
INVENTORY_EXAMPLE = ROOT / "config" / "inventory.example.toml"
INVENTORY = load_inventory(INVENTORY_EXAMPLE)
NOW_MS = 1_790_000_000_000
FAST, SLOW = 300, 4000
SIZES = [pytest.param(FAST, id="fast"), pytest.param(SLOW, id="slow", marks=pytest.mark.slow)]


def _settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@contextmanager
def measured(case: str, modules: list[str], counter: list[int]) -> Iterator[None]:
    """Line coverage of ``modules`` (paths under the repo) while the fuzz loop runs."""
    cov = coverage.Coverage(data_file=None, include=[str(ROOT / m) for m in modules], branch=False)
    cov.start()
    uncaught = 1
    try:
        yield
        uncaught = 0
    finally:
        cov.stop()
        record(case, executions=counter[0], body_coverage_pct=_body_coverage(cov),
               uncaught=uncaught)  # fmt: skip


def _body_coverage(cov: coverage.Coverage) -> float:
    """Percent of the statements inside functions that ran. Module-level lines ran at import,
    before the measurement began, so ``coverage``'s own total would understate the figure."""
    body = run = 0
    for name in cov.get_data().measured_files():
        statements = set(cov.analysis2(name)[1])
        executed = set(cov.get_data().lines(name) or [])
        tree = ast.parse(Path(name).read_text(encoding="utf-8"))
        inside = {
            n.lineno
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
            for stmt in f.body
            for n in ast.walk(stmt)
            if isinstance(n, ast.stmt)
        }
        lines = statements & inside
        body += len(lines)
        run += len(lines & executed)
    return round(100 * run / body, 1) if body else 0.0


# ----- frame decoder ---------------------------------------------------------------------------
GOOD = [encode_frame(Frame(address=a, seq=s, message=Poll())) for a, s in ((1, 1), (2, 200))]


@st.composite
def serial_streams(draw: st.DrawFn) -> list[bytes]:
    """Random bytes mixed with valid frames, bit flips and truncations, cut into chunks."""
    parts = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=300),
                st.sampled_from(GOOD),
                st.sampled_from(GOOD).flatmap(
                    lambda f: st.integers(0, len(f) - 1).map(lambda i: f[:i])
                ),
                st.tuples(st.sampled_from(GOOD), st.integers(0, 10_000)).map(
                    lambda t: bytes(
                        b ^ (1 << (t[1] % 8)) if i == t[1] % len(t[0]) else b
                        for i, b in enumerate(t[0])
                    )
                ),
            ),
            max_size=12,
        )
    )
    blob = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(blob)), max_size=6)))
    edges = [0, *cuts, len(blob)]
    return [blob[a:b] for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize("n", SIZES)
def test_frame_decoder_never_raises(n: int) -> None:
    runs = [0]

    @_settings(n)
    @given(serial_streams())
    def target(chunks: list[bytes]) -> None:
        runs[0] += 1
        decoder = StreamDecoder()
        for chunk in chunks:
            for frame in decoder.feed(memoryview(chunk)):
                assert isinstance(frame, Frame)
        assert decoder.buffered <= 2 * 1024  # bounded memory whatever arrives

    with measured(
        f"f14 fuzz frame decoder ({n})",
        ["firmware_protocol/stream.py", "firmware_protocol/framing.py"],
        runs,
    ):
        target()
    assert runs[0] >= min(n, 50)


# ----- MQTT payload validation ----------------------------------------------------------------
STATIONS = list(INVENTORY.stations.items())
JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
)  # fmt: skip
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "v",
    "station",
    "session",
    "seq",
    "ts",
    "backfill",
    "kind",
    "agent_uptime_s",
    "audio",
    "power",
    "clusters",
    "code",
    "state",
    "action",
    "start_ts",
    "controller",
    "amp",
    "fm",
]


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    sid, station = draw(st.sampled_from(STATIONS))
    kind = draw(st.sampled_from(list(Kind)))
    topic = draw(
        st.one_of(
            st.just(station_topic(INVENTORY.province.slug, station.commune, sid, kind)),
            st.text(max_size=80),
        )
    )
    base: dict[str, Any] = {
        "station": sid,
        "session": 1,
        "seq": 1,
        "ts": NOW_MS,
        "kind": kind.value,
        "agent_uptime_s": 1,
    }
    extra = draw(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=4))
    doc = {**base, **extra}
    payload = draw(
        st.one_of(
            st.just(json.dumps(doc).encode()),
            st.binary(max_size=200),
            st.just(json.dumps(doc).encode()).flatmap(
                lambda b: st.integers(0, len(b)).map(lambda i: b[:i])
            ),
            st.sampled_from([b"NaN", b'{"ts": Infinity}', b"\xff\xfe{}", b"[]" * 9000]),
        )
    )
    return topic, payload


@pytest.mark.parametrize("n", SIZES)
def test_payload_validation_never_raises(n: int) -> None:
    runs, outcomes = [0], {"accepted": 0, "rejected": 0}
    limits = Limits()

    @_settings(n)
    @given(messages())
    def target(message: tuple[str, bytes]) -> None:
        runs[0] += 1
        result = validate(message[0], message[1], NOW_MS, INVENTORY, limits)
        assert isinstance(result, Accepted | Rejected)
        outcomes["accepted" if isinstance(result, Accepted) else "rejected"] += 1
        if isinstance(result, Accepted):  # what passed is a finite, well-typed payload
            assert math.isfinite(result.payload.ts)

    with measured(
        f"f14 fuzz payload validation ({n})",
        ["collector/ingest/validate.py", "loaxa/payloads.py"],
        runs,
    ):
        target()
    assert outcomes["rejected"] > 0


# ----- config loaders -------------------------------------------------------------------------
def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(doc, list) and doc:
        return [p for i, v in enumerate(doc) for p in _leaves(v, (*path, i))]
    return [path]


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if not isinstance(doc, dict | list) or (isinstance(doc, dict) and head not in doc):
        return doc  # an earlier edit removed or replaced this branch
    if isinstance(doc, dict):
        out = dict(doc)
        if value is _DELETE and not rest:
            out.pop(head, None)
            return out
        out[head] = _replace(doc[head], rest, value)
        return out
    out_list = list(doc)
    out_list[head] = _replace(doc[head], rest, value)
    return out_list


_DELETE = object()
TOML_VALUE = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True), st.booleans(),
    st.text(max_size=30), st.sampled_from(["../../etc/passwd", "", "/", "=cmd", "\x00"]),
    st.lists(st.integers(-5, 5), max_size=3), st.dictionaries(st.text(max_size=5),
                                                              st.integers(), max_size=2),
    st.just(_DELETE),
)  # fmt: skip


def _config_inputs(example: Path) -> st.SearchStrategy[bytes]:
    doc = tomllib.loads(example.read_text(encoding="utf-8"))
    paths = _leaves(doc)

    def mutate(edits: list[tuple[tuple[Any, ...], Any]]) -> bytes:
        out = doc
        for path, value in edits:
            if value is _DELETE and not path:
                continue
            out = _replace(out, path, value)
        try:
            return tomli_w.dumps(out).encode()
        except (TypeError, ValueError):  # a value TOML cannot hold (e.g. NUL in a key)
            return example.read_bytes()

    mutated = st.lists(st.tuples(st.sampled_from(paths), TOML_VALUE), min_size=1, max_size=3)
    return st.one_of(mutated.map(mutate), st.binary(max_size=300))


LOADERS: dict[str, tuple[Path, Callable[[Path], object], type, type[Exception]]] = {
    "agent": (AGENT_EXAMPLE, load_config, AgentConfig, ConfigError),
    "collector": (COLLECTOR_EXAMPLE, load_collector_config, CollectorConfig,
                  CollectorConfigError),
    "inventory": (INVENTORY_EXAMPLE, load_inventory, Inventory, InventoryError),
}  # fmt: skip
MODULES = {
    "agent": ["agent/config.py", "agent/mqtt_config.py"],
    "collector": ["collector/config.py", "collector/*/config.py"],
    "inventory": ["collector/inventory.py"],
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("which", list(LOADERS))
def test_config_loader_raises_only_its_own_error(which: str, n: int, tmp_path: Path) -> None:
    example, load, model, error = LOADERS[which]
    runs, outcomes = [0], {"valid": 0, "refused": 0}
    path = tmp_path / "fuzzed.toml"

    @_settings(n // 2)
    @given(_config_inputs(example))
    def target(text: bytes) -> None:
        runs[0] += 1
        path.write_bytes(text)
        try:
            result = load(path)
        except error as err:
            assert str(err)  # a message for the operator, not an empty error
            outcomes["refused"] += 1
            return
        assert isinstance(result, model)
        outcomes["valid"] += 1

    with measured(f"f14 fuzz {which} config ({n // 2})", MODULES[which], runs):
        target()
    assert outcomes["refused"] > 0 and outcomes["valid"] > 0
