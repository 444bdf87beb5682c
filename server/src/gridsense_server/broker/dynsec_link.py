"""A short admin session to Mosquitto's dynamic-security control topic: send commands, wait
for their answers.

The server's second paho user besides the ingest bridge, on purpose: the bridge is the
long-lived ingest session with manual acks under the server's own account; account changes
need a short session under the broker admin's account, from a CLI that starts no ingest.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gridsense_protocol.tls import ClientTls

from .accounts import AccountError, AccountErrorKind

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
KEEPALIVE_S = 30
# Every admin session receives every answer on the control topic; only those of our pending
# request are kept, and at most this many (one request's worth).
_MAX_PENDING_ANSWERS = 100


class DynsecLink:
    """``with DynsecLink(...) as link: link.request([{"command": ...}])``.

    Its client id is the admin's name plus a random part, so two operators (or the CLI and the
    server) can administer at once without one taking the other's session over.
    """

    def __init__(self, host: str, port: int, admin: str, password: str, *,
                 tls: ClientTls | None = None, timeout_s: float = 10.0) -> None:
        self.host, self.port, self.admin = host, port, admin
        self.timeout_s = timeout_s
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue(_MAX_PENDING_ANSWERS)
        self._awaited: frozenset[str] = frozenset()  # correlation ids of the pending request
        self._connected: queue.Queue[Any] = queue.Queue(1)
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"{admin}-{secrets.token_hex(4)}",
                                   protocol=mqtt.MQTTv5)
        self._client.username_pw_set(admin, password)
        if tls is not None:
            self._client.tls_set_context(tls)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_args: self._subscribed.set()
        self._client.on_message = self._on_message

    def __enter__(self) -> DynsecLink:
        where = f"{self.host}:{self.port}"
        try:
            self._client.connect(self.host, self.port, KEEPALIVE_S)
        except (OSError, ValueError) as exc:
            raise AccountError(AccountErrorKind.UNREACHABLE,
                               f"连不上代理 {where} / cannot reach the broker at {where}: {exc}"
                               ) from None
        self._client.loop_start()
        try:
            reason = self._connected.get(timeout=self.timeout_s)
        except queue.Empty:
            self.close()
            raise AccountError(AccountErrorKind.UNREACHABLE,
                               f"代理 {where} 未应答 / no CONNACK from {where} in "
                               f"{self.timeout_s:g} s") from None
        if reason.is_failure:
            self.close()
            raise AccountError(AccountErrorKind.UNREACHABLE,
                               f"代理拒绝管理员 {self.admin} 登录 / the broker refused the admin "
                               f"login {self.admin!r}: {reason}")
        self._client.subscribe(RESPONSE_TOPIC, qos=1)
        if not self._subscribed.wait(self.timeout_s):
            self.close()
            raise AccountError(AccountErrorKind.UNREACHABLE,
                               f"订阅 {RESPONSE_TOPIC} 无应答 / no SUBACK for the control topic")
        return self

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def request(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send the commands in one message; their answers in the same order. An answer
        carries ``error`` when the plugin refused that command (the others still ran)."""
        if not 0 < len(commands) <= _MAX_PENDING_ANSWERS:
            raise AccountError(AccountErrorKind.INVALID,
                               f"一次 1–{_MAX_PENDING_ANSWERS} 条命令 / 1 to "
                               f"{_MAX_PENDING_ANSWERS} commands per request")
        ids = [secrets.token_hex(8) for _ in commands]
        self._awaited = frozenset(ids)
        payload = {"commands": [{**command, "correlationData": cid}
                                for command, cid in zip(commands, ids, strict=True)]}
        # QoS 0: with QoS 1 the broker's PUBACK and answer are two small writes, and Nagle on
        # its side with delayed ACKs on ours made every request take ~44 ms (measured; 0.6 ms
        # at QoS 0). A request lost with its connection ends in the timeout error below.
        self._client.publish(CONTROL_TOPIC, json.dumps(payload), qos=0)
        answers: dict[str, dict[str, Any]] = {}
        try:
            while len(answers) < len(ids):
                try:
                    answer = self._answers.get(timeout=self.timeout_s)
                except queue.Empty:
                    names = ", ".join(c.get("command", "?") for c in commands)
                    raise AccountError(AccountErrorKind.UNREACHABLE,
                                       f"代理未回复命令 / no answer from the broker to: {names} "
                                       f"(is the dynamic-security plugin loaded?)") from None
                answers[answer["correlationData"]] = answer
        finally:
            self._awaited = frozenset()
            while not self._answers.empty():  # late answers of this request, if it timed out
                self._answers.get_nowait()
        return [answers[cid] for cid in ids]

    # -- paho's network thread -----------------------------------------------------------------

    def _on_connect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                    _properties: Any) -> None:
        if self._connected.empty():
            self._connected.put(reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(msg.payload).get("responses", [])
        except (ValueError, AttributeError):
            return  # not an answer of the plugin's
        awaited = self._awaited
        for answer in responses if isinstance(responses, list) else []:
            if (isinstance(answer, dict) and answer.get("correlationData") in awaited
                    and not self._answers.full()):
                self._answers.put(answer)
