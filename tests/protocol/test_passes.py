"""Electronic passes: both forms verify with their key, and nothing else passes as one."""

from __future__ import annotations

import base64

import pytest

from gridsense_protocol import passes, qr
from gridsense_protocol.passes import Pass, PassError

T0 = 1_796_000_000  # 2026-11-30


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes, bytes]:
    private, public = passes.new_signing_key()
    return private, public, passes.new_site_key()


def visitor_pass(**changes: object) -> Pass:
    fields: dict[str, object] = dict(
        pass_id=passes.new_pass_id(), not_before=T0, not_after=T0 + 4 * 3600, key_id=3,
        kind="visitor", holder="res-3-1-402", uses=1, doors=("b3-entrance",),
        buildings=("3号楼",))
    fields.update(changes)
    return Pass(**fields)  # type: ignore[arg-type]


def test_a_signed_pass_says_what_was_signed(keys: tuple[bytes, bytes, bytes]) -> None:
    private, public, _ = keys
    item = visitor_pass()
    text = passes.sign(item, private)
    assert text.startswith("GS1:P:")
    body = qr.expect(text, "P")
    assert body == body.upper() and "=" not in body  # QR alphanumeric mode
    assert len(text) < qr.MAX_QR_TEXT
    assert passes.verify(text, public_keys={3: public}, site_keys={}) == item


def test_a_resident_pass_without_scope_or_holder_round_trips(
        keys: tuple[bytes, bytes, bytes]) -> None:
    private, public, _ = keys
    item = Pass(pass_id=passes.new_pass_id(), not_before=T0, not_after=T0 + 60)
    assert passes.verify(passes.sign(item, private), public_keys={0: public},
                         site_keys={}) == item


def test_a_compact_pass_fits_an_osdp_reader(keys: tuple[bytes, bytes, bytes]) -> None:
    _, _, site = keys
    item = visitor_pass()
    text = passes.mac(item, site)
    assert len(text.encode()) == passes.COMPACT_TEXT_LENGTH <= 64
    got = passes.verify(text, public_keys={}, site_keys={3: site})
    assert (got.form, got.pass_id, got.not_before, got.not_after, got.key_id) == (
        "M", item.pass_id, item.not_before, item.not_after, 3)
    assert got.holder is None and got.doors == ()  # the rest is the synced record's


def raw_of(text: str) -> bytearray:
    body = qr.expect(text, "P")
    return bytearray(base64.b32decode(body + "=" * (-len(body) % 8)))


def flip_last_char(text: str) -> str:
    last = text[-2]
    return text[:-2] + ("A" if last != "A" else "B") + text[-1]


@pytest.mark.parametrize("form", ["S", "M"])
def test_an_altered_pass_is_forged(keys: tuple[bytes, bytes, bytes], form: str) -> None:
    private, public, site = keys
    item = visitor_pass()
    text = passes.sign(item, private) if form == "S" else passes.mac(item, site)
    with pytest.raises(PassError) as caught:
        passes.verify(flip_last_char(text), public_keys={3: public}, site_keys={3: site})
    assert caught.value.reason == "forged"


def test_a_longer_window_cannot_be_spliced_into_a_signed_pass(
        keys: tuple[bytes, bytes, bytes]) -> None:
    private, public, _ = keys
    item = visitor_pass()
    raw = raw_of(passes.sign(item, private))
    raw[15:19] = (T0 + 365 * 86400).to_bytes(4, "big")  # not_after, one year on
    forged = qr.compose("P", base64.b32encode(bytes(raw)).decode().rstrip("="))
    with pytest.raises(PassError, match="signature") as caught:
        passes.verify(forged, public_keys={3: public}, site_keys={})
    assert caught.value.reason == "forged"


def test_another_deployments_key_is_forged_and_an_unknown_key_id_is_named(
        keys: tuple[bytes, bytes, bytes]) -> None:
    _, public, site = keys
    other_private, _ = passes.new_signing_key()
    text = passes.sign(visitor_pass(), other_private)
    with pytest.raises(PassError) as caught:
        passes.verify(text, public_keys={3: public}, site_keys={})
    assert caught.value.reason == "forged"
    with pytest.raises(PassError) as caught:
        passes.verify(text, public_keys={4: public}, site_keys={3: site})
    assert caught.value.reason == "unknown_key"
    with pytest.raises(PassError) as caught:  # a compact pass needs the site key, not the public
        passes.verify(passes.mac(visitor_pass(), site), public_keys={3: public}, site_keys={})
    assert caught.value.reason == "unknown_key"


def test_a_mac_made_for_one_form_is_not_accepted_by_the_other(
        keys: tuple[bytes, bytes, bytes]) -> None:
    _, _, site = keys
    text = passes.mac(visitor_pass(), site)
    raw = raw_of(text)
    raw[1:2] = b"S"
    relabelled = qr.compose("P", base64.b32encode(bytes(raw)).decode().rstrip("="))
    with pytest.raises(PassError) as caught:
        passes.verify(relabelled, public_keys={3: site}, site_keys={3: site})
    assert caught.value.reason == "malformed"  # too short to be signed: never parsed


@pytest.mark.parametrize("text", [
    "", "hello", "GS1:L:p1:1:abc", "GS1:P:", "GS1:P:!!!!", "GS1:P:AAAA",
    "GS1:P:" + "A" * 400, "GS1:P:" + base64.b32encode(b"\x02S" + bytes(40)).decode(),
])
def test_what_is_no_pass_is_malformed(keys: tuple[bytes, bytes, bytes], text: str) -> None:
    _, public, site = keys
    with pytest.raises(PassError) as caught:
        passes.verify(text, public_keys={0: public}, site_keys={0: site})
    assert caught.value.reason == "malformed"
    assert str(caught.value)


def test_a_point_label_is_refused_as_the_wrong_kind(keys: tuple[bytes, bytes, bytes]) -> None:
    _, public, site = keys
    with pytest.raises(PassError, match="point label, not a pass"):
        passes.verify("GS1:L:boiler-1:1:XYZ", public_keys={0: public}, site_keys={0: site})


@pytest.mark.parametrize("bad", [
    dict(pass_id="xyz"), dict(not_after=T0), dict(uses=70_000), dict(key_id=300),
    dict(doors=tuple(f"d{i}" for i in range(40))),
])
def test_a_pass_that_cannot_be_issued_says_why(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        visitor_pass(**bad)


def test_a_holder_name_too_long_for_the_format_is_refused_at_signing(
        keys: tuple[bytes, bytes, bytes]) -> None:
    private, _, _ = keys
    with pytest.raises(ValueError, match="longer than 64 bytes"):
        passes.sign(visitor_pass(holder="楼" * 30), private)
