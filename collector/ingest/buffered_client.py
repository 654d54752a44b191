"""A paho-mqtt client that reads the socket in 64 KiB chunks and handles every packet in them.

paho-mqtt 2.2 reads a packet with ``recv(1)`` for the command byte, ``recv(1)`` per length
byte, then ``recv(rest)``, and handles one packet per ``select()``: four system calls and a
loop turn per message. Here ``_sock_recv`` serves those reads from a buffer filled by one
``recv(65536)``, and ``loop_read`` handles packets until that buffer is used up.

- Bytes leave the buffer in order and are never dropped: the packet parser sees the same byte
  stream as before.
- One socket read per ``loop_read``: when the buffer runs out inside a packet, the next read
  reports "would block" (paho keeps the partial packet) and the loop returns to ``select()``,
  which sees the rest waiting in the kernel. So nothing is ever left in the buffer while paho
  waits in ``select()``, and outgoing PUBACKs/PINGREQs get a turn after every 64 KiB.
- The buffer belongs to one socket; a new connection starts empty.

Lean PUBLISH path (``on_fast_publish``): paho builds an ``MQTTMessage``, a ``Properties``
object (``unpack`` first clears ~30 attribute names), formats a debug log line and walks the
topic matcher for every PUBLISH. When ``on_fast_publish(topic, payload, mid, qos)`` is set,
an MQTT 5 PUBLISH at QoS 0/1 with no properties and a non-empty UTF-8 topic goes straight to it
(``manual_ack`` is then required: nothing is acknowledged here). Anything else (properties,
QoS 2, a topic alias, a malformed packet, MQTT 3) takes paho's own path to ``on_message``.
``message_callback_add`` filters are not consulted on the lean path.

``ack_many(mids)``: paho's ``ack`` queues one 4-byte PUBACK per message, each with a wake-up
write to its socket pair and later its own ``send``; ``ack_many`` queues a batch's PUBACKs
(QoS 1, success: ``0x40 0x02 <packet id>``, MQTT 5.0 3.4.2.1) as one write, in order.

MQTT 5 PUBLISH after the fixed header (OASIS MQTT 5.0, 3.3.2)::

    topic length (2, big endian) | topic (UTF-8) | packet id (2, QoS > 0 only)
    | properties length (variable byte integer; 0x00: none) | properties | payload

Depends on paho's private ``_sock_recv``/``_sock``/``_in_packet``/``_handle_publish``
(checked against paho-mqtt 2.2; the MQTT ingest tests run through this class).
"""

from __future__ import annotations

from collections.abc import Callable

import paho.mqtt._packet as paho_packet
import paho.mqtt.client as paho
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

CHUNK = 65536


class SharedTableProperties(Properties):
    """paho's ``Properties`` rebuilds three constant lookup tables (~40 entries) for every
    object, and MQTT 5 makes one per received PUBLISH: ~10 % of the collector's network thread.
    This subclass shares one copy of the tables (paho only reads them); behaviour is the same."""

    _TABLES = Properties(PacketTypes.PUBLISH)

    def __init__(self, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)
        for name in ("types", "names", "properties"):
            object.__setattr__(self, name, getattr(self._TABLES, name))


# decode_publish looks the class up in its module: received PUBLISH properties use the shared
# tables (in this process, for every paho client; the class is a drop-in subclass).
paho_packet.Properties = SharedTableProperties  # type: ignore[misc]


class BufferedClient(paho.Client):
    _rbuf: bytes = b""
    _rpos: int = 0
    _rsock: object = None
    _reads_left: int = 0  # socket reads still allowed in this loop_read
    on_fast_publish: Callable[[str, bytes, int, int], None] | None = None

    def ack_many(self, mids: list[int]) -> MQTTErrorCode:
        """PUBACK each QoS 1 packet id of ``mids`` (needs ``manual_ack``), in one write."""
        if not mids:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        acks = b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids)
        return self._packet_queue(PUBACK, acks, 0, 1)

    def _handle_publish(self) -> MQTTErrorCode:
        fast = self.on_fast_publish
        header: int = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if fast is None or qos > 1 or self._protocol != MQTTProtocolVersion.MQTTv5:
            return super()._handle_publish()
        packet: bytes = self._in_packet["packet"]
        end = 2 + ((packet[0] << 8) | packet[1]) if len(packet) >= 2 else 0
        pos = end + 2 if qos else end
        if not 2 < end < pos + 1 <= len(packet) or packet[pos] != 0:  # no topic, or properties
            return super()._handle_publish()
        try:
            topic = packet[2:end].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()
        mid = (packet[end] << 8) | packet[end + 1] if qos else 0
        with self._in_callback_mutex:
            fast(topic, packet[pos + 1 :], mid, qos)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _buffered(self) -> int:
        return len(self._rbuf) - self._rpos if self._rsock is self._sock else 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._buffered():
            if self._reads_left <= 0:
                raise BlockingIOError  # back to select(); the kernel holds the rest
            self._reads_left -= 1
            data = super()._sock_recv(CHUNK)  # BlockingIOError / b"" (closed) pass through
            self._rsock, self._rbuf, self._rpos = self._sock, data, 0
            if not data:
                return data
        end = self._rpos + bufsize
        chunk = self._rbuf[self._rpos : end]
        self._rpos = min(end, len(self._rbuf))
        return chunk

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        self._reads_left = 1
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None and self._buffered():
            rc = super().loop_read(1)
        self._reads_left = 0
        return rc
