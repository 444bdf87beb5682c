"""Electronic passes (电子出入证): the bytes a gate's scanner reads, signed by the deployment.

A pass is a QR code ``GS1:P:<body>`` (see ``qr``), the body base32 (upper case, no padding: QR's
alphanumeric mode) of a small binary record. Two forms, one contract:

**Signed** (``S``): the whole pass — holder, doors and buildings, validity window, use limit —
signed with the deployment's Ed25519 key. A gateway verifies it offline with the public key
alone, even for a pass issued after its last sync; a stolen gateway holds no key that can make
one. About 180 characters: fine for a camera/USB/serial scanner, too long for OSDP.

**Compact** (``M``): pass id, validity window and a 128-bit HMAC under a per-site key that the
credential sync gives every gateway of the community; the rest of the pass (holder, scope, use
limit) is the record the sync delivered for that pass id. 62 characters, which fits the 64 bytes
an OSDP reader passes through libosdp. The trade-off: a compact pass works only at gateways that
have synced its record, and anyone holding a gateway's site key could make compact passes for
that community (rotate it through the sync after a gateway is stolen); signed passes have
neither limit.

Both carry a key id so keys can be rotated while old passes still verify. Times are whole epoch
seconds (UTC); the window is half-open ``[not_before, not_after)``. What a gateway then decides
(expired, wrong door, used up, revoked, clock not synchronised) is the access module's; this
module only says whether the bytes are a genuine pass and what they say. Pure apart from the
``cryptography`` import, which is deferred so a gateway that never sees a pass never loads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .qr import PASS, QrError, compose, expect

VERSION = 1
SIGNED = "S"
COMPACT = "M"
PassForm = Literal["S", "M"]
PassKind = Literal["resident", "visitor"]
_KIND_CODES: dict[PassKind, int] = {"resident": 0, "visitor": 1}
_KINDS_BY_CODE = {code: kind for kind, code in _KIND_CODES.items()}

PASS_ID_BYTES = 8
SIGNATURE_BYTES = 64
MAC_BYTES = 16
MAX_TEXT_FIELD = 64  # holder ids, door and building ids (UTF-8 bytes)
MAX_SCOPE = 32  # doors + buildings of one pass
MAX_USES = 0xFFFF
_SIGN_DOMAIN = b"gridsense-pass-v1/S"  # a signature or MAC over one form is never valid for another
_MAC_DOMAIN = b"gridsense-pass-v1/M"
_HEAD = struct.Struct(">BcB8sII")  # version, form, key id, pass id, not_before, not_after
_SIGNED_TAIL = struct.Struct(">BH")  # kind, uses
COMPACT_TEXT_LENGTH = len(compose(PASS, "")) + (_HEAD.size + MAC_BYTES) * 8 // 5

PassFailure = Literal["malformed", "unknown_key", "forged"]


class PassError(ValueError):
    """Scanned bytes that are no genuine pass. ``reason`` is what an access log records:
    ``malformed`` (not a pass, or cut short), ``unknown_key`` (a key id this gateway does not
    hold: another deployment's pass, or keys not synced yet), ``forged`` (signature or MAC
    wrong: altered or made without the key)."""

    def __init__(self, reason: PassFailure, message: str) -> None:
        super().__init__(message)
        self.reason: PassFailure = reason


@dataclass(frozen=True, slots=True)
class Pass:
    """What a pass says. For a compact pass only ``pass_id``, the window and ``key_id`` travel;
    the other fields are left at their defaults and come from the synced record."""

    pass_id: str  # 16 hex digits
    not_before: int
    not_after: int
    form: PassForm = SIGNED
    key_id: int = 0
    kind: PassKind = "resident"
    holder: str | None = None  # the access module's credential id: the resident, or the inviter
    uses: int = 0  # how many entries it grants per gateway; 0 = no limit
    doors: tuple[str, ...] = field(default=())
    buildings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.pass_id) != PASS_ID_BYTES * 2 or not _is_hex(self.pass_id):
            raise ValueError(f"pass id {self.pass_id!r}: expected {PASS_ID_BYTES * 2} hex digits")
        if not 0 <= self.not_before < self.not_after <= 0xFFFFFFFF:
            raise ValueError(f"pass {self.pass_id}: window [{self.not_before}, "
                             f"{self.not_after}) is empty or out of range")
        if not 0 <= self.key_id <= 0xFF:
            raise ValueError(f"key id {self.key_id} out of range 0..255")
        if not 0 <= self.uses <= MAX_USES:
            raise ValueError(f"use limit {self.uses} out of range 0..{MAX_USES}")
        if len(self.doors) + len(self.buildings) > MAX_SCOPE:
            raise ValueError(f"pass {self.pass_id}: more than {MAX_SCOPE} doors and buildings")


def new_pass_id() -> str:
    return secrets.token_hex(PASS_ID_BYTES)


def new_signing_key() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key pair as raw bytes: (private 32, public 32)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return key.private_bytes_raw(), key.public_key().public_bytes_raw()


def new_site_key() -> bytes:
    """A per-site MAC key for compact passes (32 random bytes)."""
    return secrets.token_bytes(32)


# ---- issuing (server side) ----

def sign(item: Pass, private_key: bytes) -> str:
    """The QR text of a signed pass."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    payload = _head(item, SIGNED) + _signed_fields(item)
    signature = Ed25519PrivateKey.from_private_bytes(private_key).sign(_SIGN_DOMAIN + payload)
    return compose(PASS, _b32(payload + signature))


def mac(item: Pass, site_key: bytes) -> str:
    """The QR text of a compact pass: pass id, window and MAC (62 characters)."""
    payload = _head(item, COMPACT)
    return compose(PASS, _b32(payload + _mac(site_key, payload)))


# ---- reading (gateway side) ----

def verify(text: str, *, public_keys: Mapping[int, bytes],
           site_keys: Mapping[int, bytes]) -> Pass:
    """The pass a scanned text carries, once its signature or MAC is checked against the
    keys by id; PassError(reason) otherwise. Validity window, scope, use limit and revocation
    are the caller's to judge."""
    try:
        body = expect(text, PASS)
    except QrError as exc:
        raise PassError("malformed", str(exc)) from None
    raw = _unb32(body)
    if len(raw) < _HEAD.size:
        raise PassError("malformed", f"pass of {len(raw)} bytes is shorter than its header")
    version, form_byte, key_id, pass_id, not_before, not_after = _HEAD.unpack_from(raw)
    if version != VERSION:
        raise PassError("malformed", f"pass version {version} (this gateway reads {VERSION})")
    form = form_byte.decode("latin-1")
    if form == COMPACT:
        return _verify_compact(raw, key_id, site_keys, pass_id, not_before, not_after)
    if form == SIGNED:
        return _verify_signed(raw, key_id, public_keys)
    raise PassError("malformed", f"pass form {form!r} (expected {SIGNED} or {COMPACT})")


def _verify_compact(raw: bytes, key_id: int, site_keys: Mapping[int, bytes], pass_id: bytes,
                    not_before: int, not_after: int) -> Pass:
    if len(raw) != _HEAD.size + MAC_BYTES:
        raise PassError("malformed", f"compact pass of {len(raw)} bytes "
                                     f"(expected {_HEAD.size + MAC_BYTES})")
    key = site_keys.get(key_id)
    if key is None:
        raise PassError("unknown_key", f"no site key {key_id} for compact passes")
    payload, tag = raw[:_HEAD.size], raw[_HEAD.size:]
    if not hmac.compare_digest(tag, _mac(key, payload)):
        raise PassError("forged", f"compact pass {pass_id.hex()}: MAC does not match")
    return _checked(lambda: Pass(pass_id.hex(), not_before, not_after, COMPACT, key_id))


def _verify_signed(raw: bytes, key_id: int, public_keys: Mapping[int, bytes]) -> Pass:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(raw) < _HEAD.size + _SIGNED_TAIL.size + SIGNATURE_BYTES:
        raise PassError("malformed", f"signed pass of {len(raw)} bytes is cut short")
    key = public_keys.get(key_id)
    if key is None:
        raise PassError("unknown_key", f"no public key {key_id} for signed passes")
    payload, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, _SIGN_DOMAIN + payload)
    except InvalidSignature:
        raise PassError("forged", "signed pass: signature does not match") from None
    return _parse_signed(payload, key_id)  # only now: never parse what nobody signed


def _parse_signed(payload: bytes, key_id: int) -> Pass:
    _, _, _, pass_id, not_before, not_after = _HEAD.unpack_from(payload)
    offset = _HEAD.size
    kind_code, uses = _SIGNED_TAIL.unpack_from(payload, offset)
    offset += _SIGNED_TAIL.size
    kind = _KINDS_BY_CODE.get(kind_code)
    if kind is None:
        raise PassError("malformed", f"pass kind code {kind_code}")
    holder, offset = _text(payload, offset)
    if offset >= len(payload):
        raise PassError("malformed", "signed pass: scope missing")
    count = payload[offset]
    offset += 1
    doors: list[str] = []
    buildings: list[str] = []
    for _ in range(count):
        if offset >= len(payload):
            raise PassError("malformed", "signed pass: scope cut short")
        tag = payload[offset:offset + 1]
        name, offset = _text(payload, offset + 1)
        if tag == b"D":
            doors.append(name)
        elif tag == b"B":
            buildings.append(name)
        else:
            raise PassError("malformed", f"signed pass: scope entry {tag!r}")
    if offset != len(payload):
        raise PassError("malformed", "signed pass: trailing bytes")
    return _checked(lambda: Pass(pass_id.hex(), not_before, not_after, SIGNED, key_id, kind,
                                 holder or None, uses, tuple(doors), tuple(buildings)))


# ---- encoding details ----

def _head(item: Pass, form: PassForm) -> bytes:
    return _HEAD.pack(VERSION, form.encode(), item.key_id, bytes.fromhex(item.pass_id),
                      item.not_before, item.not_after)


def _signed_fields(item: Pass) -> bytes:
    scope = [(b"D", d) for d in item.doors] + [(b"B", b) for b in item.buildings]
    parts = [_SIGNED_TAIL.pack(_KIND_CODES[item.kind], item.uses), _field(item.holder or ""),
             bytes([len(scope)])]
    parts += [tag + _field(name) for tag, name in scope]
    return b"".join(parts)


def _field(value: str) -> bytes:
    data = value.encode()
    if len(data) > MAX_TEXT_FIELD:
        raise ValueError(f"{value!r:.80} is longer than {MAX_TEXT_FIELD} bytes")
    return bytes([len(data)]) + data


def _text(payload: bytes, offset: int) -> tuple[str, int]:
    if offset >= len(payload):
        raise PassError("malformed", "signed pass cut short")
    length = payload[offset]
    end = offset + 1 + length
    if length > MAX_TEXT_FIELD or end > len(payload):
        raise PassError("malformed", f"signed pass: text field of {length} bytes")
    try:
        return payload[offset + 1:end].decode(), end
    except UnicodeDecodeError:
        raise PassError("malformed", "signed pass: text field is not UTF-8") from None


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _MAC_DOMAIN + payload, hashlib.sha256).digest()[:MAC_BYTES]


def _checked(make: Callable[[], Pass]) -> Pass:
    try:
        return make()
    except ValueError as exc:  # a genuine key signed nonsense: still not a pass to honour
        raise PassError("malformed", str(exc)) from None


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=")


def _unb32(text: str) -> bytes:
    text = text.strip().upper()
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise PassError("malformed", "pass body is not base32") from None


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
