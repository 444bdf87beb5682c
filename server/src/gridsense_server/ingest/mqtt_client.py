"""paho's MQTT client with the two per-message system calls of ingest taken out.

paho reads a packet's fixed header a byte at a time and its body in a third read, each a
``recv`` on the socket; it builds an MQTT 5 ``Properties`` object (some 50 attribute probes)
and an ``MQTTMessage`` with a condition variable for every PUBLISH; and it writes every PUBACK
with a ``send`` of its own. At one reading per message that was most of the server's work per
message. Here the socket is read in large chunks (paho parses from the chunk); a QoS 0/1
PUBLISH without properties — what gateways send — goes straight to ``on_publish_received``;
and the acknowledgements of a round go out as one write. Anything else (properties, QoS 2, a
topic that is not UTF-8, a malformed packet) takes paho's own path and reaches ``on_message``.

It overrides three of paho's internal methods (``_sock_recv``, ``_sock_close``,
``_handle_publish``) and calls a fourth (``_packet_queue``), stable through paho-mqtt 2.x;
tests drive it against a real broker.
"""

from __future__ import annotations

import ssl
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

READ_CHUNK = 64 * 1024
_PUBLISH = 0x30
_PUBACK = 0x40
_PUBACK_PACKET = struct.Struct("!BBH")  # PUBACK, remaining length 2, packet id (reason 0)


@dataclass(slots=True)
class Publish:
    """A received PUBLISH, as much of it as ingest uses."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool


class IngestClient(mqtt.Client):
    """A paho client that reads ahead, hands plain PUBLISHes over without paho's per-message
    objects and sends PUBACKs in bulk (use with an external loop and ``manual_ack``)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._read_buffer = b""
        self._read_pos = 0
        # Takes the PUBLISHes of the fast path (the rest go to paho's on_message).
        self.on_publish_received: Callable[[Publish], None] | None = None

    def buffered(self) -> bool:
        """Bytes received but not parsed yet: the socket's select will not report them."""
        if self._read_pos < len(self._read_buffer):
            return True
        sock = self._sock
        return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0

    def ack_many(self, mids: Sequence[int]) -> MQTTErrorCode:
        """PUBACK (success) for each QoS 1 packet id, in one write."""
        if not mids:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        packet = b"".join([_PUBACK_PACKET.pack(_PUBACK, 2, mid) for mid in mids])
        return self._packet_queue(_PUBACK, packet, 0, 0)

    def read_available(self, limit: int) -> MQTTErrorCode:
        """Parse what has arrived, up to ``limit`` packets: plain PUBLISHes straight from the
        read-ahead buffer, anything else (or a packet split across reads) through paho."""
        for _ in range(limit):
            if not self._take_publish():
                rc = self.loop_read()  # one packet, reading the socket if the buffer is empty
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return rc
            if not self.buffered():
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _take_publish(self) -> bool:
        """Hand on the next packet if it is whole in the buffer and a plain PUBLISH."""
        handler = self.on_publish_received
        buffer, pos = self._read_buffer, self._read_pos
        size = len(buffer)
        if handler is None or pos >= size or self._in_packet["command"] != 0 \
                or buffer[pos] & 0xF0 != _PUBLISH:
            return False
        length, multiplier, at = 0, 1, pos + 1
        while True:  # the remaining length: a variable byte integer of up to four bytes
            if at >= size or multiplier > 128 ** 3:
                return False  # split across reads, or malformed: paho's path
            byte = buffer[at]
            at += 1
            length += (byte & 0x7F) * multiplier
            if not byte & 0x80:
                break
            multiplier *= 128
        if at + length > size:
            return False
        publish = self._plain_publish(buffer[pos], buffer[at:at + length])
        if publish is None:
            return False
        self._read_pos = at + length
        with self._msgtime_mutex:  # as paho notes traffic, for its keepalive
            self._last_bytes_received = mqtt.time_func()
        handler(publish)
        return True

    def _handle_publish(self) -> MQTTErrorCode:
        handler = self.on_publish_received
        publish = None if handler is None else self._plain_publish(
            self._in_packet["command"], self._in_packet["packet"])
        if handler is None or publish is None:
            return super()._handle_publish()
        handler(publish)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _plain_publish(self, header: int, packet: bytes | bytearray) -> Publish | None:
        """The PUBLISH if it is QoS 0/1 without properties (with ``manual_ack``, MQTT 5)."""
        qos = (header & 0x06) >> 1
        if (qos == 2 or not self._manual_ack or self._protocol != MQTTProtocolVersion.MQTTv5
                or len(packet) < 2):
            return None
        topic_end = 2 + (packet[0] << 8 | packet[1])
        end = topic_end + 2 if qos else topic_end  # the packet id follows the topic
        # Then one byte of property length, zero: no properties. (An empty topic needs a
        # topic alias, a property: paho's path.)
        if topic_end == 2 or len(packet) <= end or packet[end] != 0:
            return None
        mid = packet[topic_end] << 8 | packet[topic_end + 1] if qos else 0
        try:
            topic = bytes(packet[2:topic_end]).decode("utf-8")
        except UnicodeDecodeError:
            return None
        return Publish(topic, bytes(packet[end + 1:]), mid, qos, bool(header & 0x08))

    def _sock_recv(self, bufsize: int) -> bytes:
        buffer, pos = self._read_buffer, self._read_pos
        if pos < len(buffer):
            end = min(pos + bufsize, len(buffer))
            self._read_pos = end
            return buffer[pos:end]
        data = super()._sock_recv(max(bufsize, READ_CHUNK))
        if len(data) <= bufsize:  # all of it asked for, or b"" (the broker closed)
            self._read_buffer, self._read_pos = b"", 0
            return data
        self._read_buffer, self._read_pos = data, bufsize
        return data[:bufsize]

    def _sock_close(self) -> None:
        # What was read ahead belongs to the connection being closed.
        self._read_buffer, self._read_pos = b"", 0
        super()._sock_close()
