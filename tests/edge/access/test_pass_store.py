"""Pass keys, records, revocations and use counts in the gateway's credential copy: the
schema upgrade, snapshots, deltas and multi-part transfers applied with the credentials."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from pass_support import KEY_ID, PUBLIC, SITE, T0, make_pass, pass_keys, record

from gridsense_edge.drivers.osdp.credentials import CredentialStore, card_hash
from gridsense_edge.drivers.osdp.sync import AccessSync
from gridsense_protocol import Command

KEY = bytes(range(7, 39))
NOW = datetime.fromtimestamp(T0, UTC)


def cmd(seq: int, **args: object) -> Command:
    return Command(gateway="gw", seq=seq, ts=NOW, name="access_sync", args=args)


def wire(ident: str, card: str) -> list[object]:
    return [ident, card_hash(KEY, card), None, None, None, ["d1"], []]


def test_a_schema_1_copy_is_upgraded_and_keeps_its_credentials(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "access.db")
    db.executescript(f"""
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE credentials(id TEXT PRIMARY KEY, card TEXT, pin TEXT, valid_from REAL,
            valid_until REAL, doors TEXT, buildings TEXT, revoked INTEGER);
        INSERT INTO meta VALUES ('version', '7'), ('hash_key', '{KEY.hex()}');
        INSERT INTO credentials VALUES ('alice', 'h1', NULL, NULL, NULL, '["d1"]', '[]', 0);
        PRAGMA user_version = 1;
    """)
    db.close()
    store = CredentialStore(tmp_path)
    assert store.schema_version == 2 and store.version == 7
    credential = store.by_id("alice")
    assert credential is not None and credential.doors == ("d1",)
    assert store.passes.counts() == {"passes": 0, "revoked_passes": 0, "pass_uses": 0}
    store.close()
    again = CredentialStore(tmp_path)  # opening an upgraded copy changes nothing
    assert again.schema_version == 2 and again.by_id("alice") is not None
    again.close()


def test_snapshot_and_delta_carry_keys_records_and_revocations(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    sync = AccessSync(store)
    a, b = make_pass(not_after=int(NOW.timestamp()) + 3600), make_pass()
    reply = sync.handle(cmd(1, mode="snapshot", version=1, secret=KEY.hex(),
                            credentials=[wire("alice", "1")], pass_keys=pass_keys(),
                            passes=[record(a), record(b)], revoked_passes=[b.pass_id]))
    assert reply is not None and reply.ok, reply
    book = store.passes
    assert book.public_keys == {KEY_ID: PUBLIC} and book.site_keys == {KEY_ID: SITE}
    got = book.record(a.pass_id)
    assert got is not None and (got.holder, got.uses, got.doors) == ("alice", 1, ("b3-east",))
    assert book.is_revoked(b.pass_id) and not book.is_revoked(a.pass_id)
    # a delta without pass_keys keeps them; its revocations add to the list
    reply = sync.handle(cmd(2, mode="delta", base=1, version=2, credentials=[],
                            revoked_passes=[a.pass_id]))
    assert reply is not None and reply.ok
    assert book.is_revoked(a.pass_id) and book.is_revoked(b.pass_id)
    assert book.site_keys == {KEY_ID: SITE}
    # a delta with pass_keys replaces the whole set (the site key was rotated)
    reply = sync.handle(cmd(3, mode="delta", base=2, version=3,
                            pass_keys={"public": {"2": PUBLIC.hex()}, "site": {}}))
    assert reply is not None and reply.ok
    assert book.site_keys == {} and book.public_keys == {KEY_ID: PUBLIC}
    # a snapshot replaces records and revocations (one not listed again is no longer revoked)
    reply = sync.handle(cmd(4, mode="snapshot", version=4, secret=KEY.hex(), credentials=[],
                            pass_keys=pass_keys(), passes=[record(a)]))
    assert reply is not None and reply.ok
    assert book.record(b.pass_id) is None and not book.is_revoked(a.pass_id)
    store.close()


def test_a_bad_pass_field_refuses_the_whole_sync(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    sync = AccessSync(store)
    sync.handle(cmd(1, mode="snapshot", version=1, secret=KEY.hex(),
                    credentials=[wire("alice", "1")], pass_keys=pass_keys()))
    good = make_pass()
    for seq, bad in enumerate((
            {"passes": [record(good), ["zz", "visitor", "x", 0, 1, 0, [], []]]},
            {"pass_keys": {"public": {"1": "abcd"}}},
            {"pass_keys": {"site": {"300": SITE.hex()}}},
            {"revoked_passes": ["not-a-pass-id"]},
            {"passes": [[good.pass_id, "courier", "x", 0, 1, 0, [], []]]}), start=2):
        reply = sync.handle(cmd(seq, mode="delta", base=1, version=2,
                                credentials=[wire("bob", "2")], **bad))
        assert reply is not None and not reply.ok and reply.error, bad
    assert store.version == 1 and store.by_id("bob") is None
    assert store.passes.record(good.pass_id) is None and store.passes.site_keys
    # a key kind a later server adds is left out, the rest applies
    reply = sync.handle(cmd(9, mode="delta", base=1, version=2, pass_keys={
        "public": {"2": PUBLIC.hex()}, "site": {}, "pq": {"1": "00"}}))
    assert reply is not None and reply.ok and store.passes.public_keys == {KEY_ID: PUBLIC}


def test_a_multi_part_snapshot_swaps_passes_in_with_the_last_part(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    sync = AccessSync(store)
    first, second = make_pass(), make_pass()
    common = dict(mode="snapshot", version=5, secret=KEY.hex(), parts=2)
    reply = sync.handle(cmd(1, part=0, credentials=[wire("alice", "1")], pass_keys=pass_keys(),
                            passes=[record(first)], **common))
    assert reply is not None and reply.ok and reply.result["transfer"]["missing"] == [1]
    assert store.passes.site_keys == {} and store.passes.record(first.pass_id) is None
    reply = sync.handle(cmd(2, part=1, credentials=[wire("bob", "2")],
                            passes=[record(second)], revoked_passes=[first.pass_id], **common))
    assert reply is not None and reply.ok and store.version == 5
    book = store.passes
    assert book.site_keys == {KEY_ID: SITE}
    assert book.record(first.pass_id) and book.record(second.pass_id)
    assert book.is_revoked(first.pass_id)
    assert store.staging.current() is None
    # a multi-part delta revokes the second pass only once complete
    common = dict(mode="delta", base=5, version=6, parts=2)
    sync.handle(cmd(3, part=1, revoked_passes=[second.pass_id], **common))
    assert not book.is_revoked(second.pass_id)
    reply = sync.handle(cmd(4, part=0, **common))
    assert reply is not None and reply.ok and book.is_revoked(second.pass_id)
    store.close()


def test_use_counts_survive_syncs_are_capped_and_pruned(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path, max_credentials=3)
    book = store.passes
    now = float(T0)
    short = make_pass(uses=2)
    assert book.consume(short.pass_id, 2, short.not_after, now)
    assert book.consume(short.pass_id, 2, short.not_after, now)
    assert not book.consume(short.pass_id, 2, short.not_after, now)
    assert book.used(short.pass_id) == 2
    store.apply_snapshot(1, KEY, [], None, now=now)
    assert book.used(short.pass_id) == 2  # the gateway's own count: no sync resets it
    others = [make_pass() for _ in range(2)]
    for item in others:
        assert book.consume(item.pass_id, 1, item.not_after, now)
    refused = make_pass()
    try:
        book.consume(refused.pass_id, 1, refused.not_after, now)
    except RuntimeError as exc:
        assert "cap of 3" in str(exc)
    else:
        raise AssertionError("a full use table must refuse a new count")
    # a day after they all expired, the counts are pruned and room is back
    later = now + 3600 + 86400 + 120
    assert book.consume(refused.pass_id, 1, int(later) + 60, later)
    assert book.counts()["pass_uses"] == 1
    store.close()
