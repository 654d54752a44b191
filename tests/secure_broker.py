"""The production broker config (deploy/mosquitto/mosquitto.conf) started for tests, and probes.

``SecureBroker`` runs the real Mosquitto with the shipped file, rewriting only what a test
machine must change: the listener's address and port, file paths, logging and the process user.
``Probe`` is an MQTT client that records what the broker answered (CONNACK, SUBACK, PUBACK
reason codes) and every message it received.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.servers import _binary, _Process, free_port, wait_until

PRODUCTION_CONF = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "mosquitto.conf"


def make_ca(folder: Path) -> dict[str, Path]:
    """A throwaway CA and a broker certificate for 127.0.0.1/localhost, made with openssl."""
    folder.mkdir(parents=True, exist_ok=True)
    p = {n: folder / n for n in ("ca.key", "ca.pem", "broker.key", "broker.csr", "broker.pem")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *argv: subprocess.run(["openssl", *argv], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        p["ca.key"],
        "-out",
        p["ca.pem"],
        "-days",
        "2",
        "-subj",
        "/CN=loaxa test CA",
    )
    run("req", *ec, "-keyout", p["broker.key"], "-out", p["broker.csr"], "-subj", "/CN=localhost")
    ext = folder / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(
        "x509",
        "-req",
        "-in",
        p["broker.csr"],
        "-CA",
        p["ca.pem"],
        "-CAkey",
        p["ca.key"],
        "-CAcreateserial",
        "-out",
        p["broker.pem"],
        "-days",
        "2",
        "-extfile",
        ext,
    )
    return p


def render_for_test(text: str, overrides: dict[str, list[str | None]], certs: bool = False) -> str:
    """The production config with the value of each option in ``overrides`` replaced, one
    list item per occurrence in file order (None: line removed). ``certs`` enables the
    commented certificate listener. Fails if an option to override is missing, so the test
    follows the file."""
    out, left = [], {k: list(v) for k, v in overrides.items()}
    for line in text.splitlines():
        if certs and line.startswith("#cert# "):
            line = line.removeprefix("#cert# ")
        key = line.split(" ", 1)[0]
        if line and not line.startswith("#") and key in left:
            if not left[key]:
                raise AssertionError(f"production config has more {key!r} lines than expected")
            value = left[key].pop(0)
            if value is not None:
                out.append(f"{key} {value}")
            continue
        out.append(line)
    missing = [k for k, v in left.items() if v]
    if missing:
        raise AssertionError(f"production config lacks {missing}")
    return "\n".join(out) + "\n"


class SecureBroker(_Process):
    def __init__(
        self, workdir: Path, tls: dict[str, Path], passwd: Path, acl: Path, certs: bool = False
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir)
        self.port = free_port()
        self.cert_port = free_port()
        self.conf = workdir / "mosquitto.conf"
        n = 2 if certs else 1  # listener blocks
        ca, cert, key = str(tls["ca.pem"]), str(tls["broker.pem"]), str(tls["broker.key"])
        overrides: dict[str, list[str | None]] = {
            "pid_file": [None],
            # As root Mosquitto would switch to "mosquitto", which cannot read the 0700 tmp dirs.
            "user": ["root" if os.geteuid() == 0 else None],
            "listener": [f"{self.port} 127.0.0.1", f"{self.cert_port} 127.0.0.1"][:n],
            "cafile": [ca] * n,
            "certfile": [cert] * n,
            "keyfile": [key] * n,
            "password_file": [str(passwd)],
            "acl_file": [str(acl)],
            "persistence_location": [f"{workdir}/"],
            "log_dest": ["stderr"],
        }
        text = render_for_test(PRODUCTION_CONF.read_text(), overrides, certs)
        self.conf.write_text(text)

    def start(self) -> SecureBroker:
        self._spawn(
            [_binary("mosquitto", "/usr/sbin/mosquitto"), "-c", str(self.conf)],
            self.port,
            "mosquitto (production config)",
        )
        return self


class Probe:
    """One MQTT client (MQTT 5 or 3.1.1, TLS or plain) that records the broker's answers."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        ca: Path | None,
        client_id: str = "",
        v5: bool = True,
        clean: bool = True,
        cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.port, self.v5 = port, v5
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else clean,
            reconnect_on_failure=False,
        )
        self._clean = clean
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca is not None:
            certfile, keyfile = (str(cert[0]), str(cert[1])) if cert else (None, None)
            self.client.tls_set(ca_certs=str(ca), certfile=certfile, keyfile=keyfile)
        self.lock = threading.Lock()
        self.connack: mqtt.ReasonCode | None = None
        self.disconnects = 0
        self.messages: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, int] = {}  # mid -> reason code value
        self.subacks: dict[int, list[int]] = {}
        c = self.client
        c.on_connect = lambda cl, ud, fl, rc, pr: setattr(self, "connack", rc)
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe

    def _on_disconnect(self, client, userdata, flags, rc, props) -> None:
        with self.lock:
            self.disconnects += 1

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def _on_publish(self, client, userdata, mid, rc, props) -> None:
        with self.lock:
            self.pubacks[mid] = rc.value

    def _on_subscribe(self, client, userdata, mid, rcs, props) -> None:
        with self.lock:
            self.subacks[mid] = [r.value for r in rcs]

    def connect(self, session_expiry_s: int = 0) -> bool:
        """True if the broker accepted the connection (CONNACK success)."""
        props = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry_s
        kw = {"clean_start": self._clean, "properties": props} if self.v5 else {}
        try:
            self.client.connect("127.0.0.1", self.port, keepalive=30, **kw)
        except OSError:
            return False
        self.client.loop_start()
        wait_until(
            lambda: self.connack is not None or self.disconnects, 10, what="CONNACK or disconnect"
        )
        return self.connack is not None and not self.connack.is_failure

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    def subscribe(self, topic: str) -> list[int]:
        _, mid = self.client.subscribe(topic, qos=1)
        wait_until(lambda: mid in self.subacks, 10, what=f"SUBACK for {topic}")
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int | None:
        """Publish at QoS 1; the PUBACK reason code (None if the link closed first)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        wait_until(
            lambda: info.mid in self.pubacks or self.disconnects or not self.connected,
            10,
            what=f"PUBACK for {topic}",
        )
        return self.pubacks.get(info.mid)

    def received(self, needle: bytes) -> list[tuple[str, bytes]]:
        with self.lock:
            return [(t, p) for t, p in self.messages if needle in p]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _utf8(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _packet(first: int, body: bytes) -> bytes:
    n, length = len(body), bytearray()
    while True:
        n, digit = divmod(n, 128)
        length.append(digit | (0x80 if n else 0))
        if not n:
            return bytes([first]) + bytes(length) + body


def raw_connect_and_publish(
    port: int,
    ca: Path | None,
    username: str | None,
    password: str | None,
    topic: str,
    payload: bytes,
) -> int | None:
    """Send an MQTT 3.1.1 CONNECT and a QoS 0 PUBLISH in one write, without waiting for CONNACK
    (what a hostile client would do), then read the CONNACK return code; None if the broker
    closed the link without one (e.g. plain MQTT sent to the TLS port)."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = _utf8("MQTT") + bytes([4, flags]) + (30).to_bytes(2, "big") + _utf8("")
    body += _utf8(username) if username is not None else b""
    body += _utf8(password) if password is not None else b""
    data = _packet(0x10, body) + _packet(0x30, _utf8(topic) + payload)
    sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        if ca is not None:
            sock = ssl.create_default_context(cafile=str(ca)).wrap_socket(
                sock, server_hostname="127.0.0.1"
            )
        sock.sendall(data)
        answer = b""
        while len(answer) < 4:
            chunk = sock.recv(4 - len(answer))
            if not chunk:
                return None
            answer += chunk
        return answer[3] if answer[0] == 0x20 else None
    except (ConnectionError, ssl.SSLError, TimeoutError):
        return None
    finally:
        sock.close()
