"""The bounded hand-off (paho thread → loop) and the live hub's bounded subscriber queues."""

from __future__ import annotations

import asyncio
import threading

from gridsense_server.counters import Counters
from gridsense_server.ingest.handoff import Handoff
from gridsense_server.live.hub import LiveHub
from gridsense_server.registry.viewers import Viewer


async def test_a_full_handoff_blocks_the_producer_until_the_loop_takes_items() -> None:
    handoff: Handoff[int] = Handoff(capacity=3, loop=asyncio.get_running_loop())
    produced: list[int] = []
    refused = threading.Event()

    def producer() -> None:
        for i in range(10):
            while not handoff.put(i, timeout=0.05):
                refused.set()  # full: the producer waits instead of growing memory
            produced.append(i)

    thread = threading.Thread(target=producer)
    thread.start()
    await asyncio.to_thread(refused.wait, 20)
    assert len(handoff) == 3 and len(produced) == 3
    received: list[int] = []
    while len(received) < 10:
        received += await asyncio.wait_for(handoff.get_batch(2), 20)
    await asyncio.to_thread(thread.join, 20)
    assert received == list(range(10))  # in order, nothing lost
    assert len(handoff) == 0


async def test_many_items_at_once_take_the_room_there_is_and_wait_for_the_rest() -> None:
    handoff: Handoff[int] = Handoff(capacity=4, loop=asyncio.get_running_loop())
    # Nobody takes: the first four go in, in order, and the call gives up after its timeout.
    assert await asyncio.to_thread(handoff.put_many, list(range(10)), 0.05) == 4
    assert len(handoff) == 4
    rest = list(range(4, 10))
    taken_rest: list[int] = []

    def producer() -> None:
        items = rest
        while items:  # as the bridge does: hand on what is left until all is taken
            taken = handoff.put_many(items, 0.05)
            taken_rest.extend(items[:taken])
            items = items[taken:]

    thread = threading.Thread(target=producer)
    thread.start()
    received: list[int] = []
    while len(received) < 10:
        received += await asyncio.wait_for(handoff.get_batch(3), 20)
    await asyncio.to_thread(thread.join, 20)
    assert received == list(range(10)) and taken_rest == rest
    assert len(handoff) == 0


async def test_a_slow_subscriber_loses_its_oldest_events_and_they_are_counted() -> None:
    counters = Counters()
    hub = LiveHub(counters, queue_size=3)
    worker = hub.subscribe(Viewer("w", "worker", frozenset({"g01"})))
    other = hub.subscribe(Viewer("o", "worker", frozenset({"g02"})))
    for i in range(5):
        assert hub.publish("g01", {"n": i}) == 1
    assert len(other) == 0
    assert [(await worker.next())["n"] for _ in range(3)] == [2, 3, 4]
    assert worker.dropped == 2 and counters.get("live.dropped_events") == 2
    hub.unsubscribe(worker)
    assert hub.publish("g01", {"n": 5}) == 0


async def test_a_relayed_message_reaches_only_who_it_is_for_and_a_gap_asks_all_to_reread(
) -> None:
    hub = LiveHub(Counters())
    sent: list[dict] = []

    class Relay:
        def send(self, message: dict) -> None:
            sent.append(message)

    hub.relay = Relay()
    g01 = hub.subscribe(Viewer("w", "worker", frozenset({"g01"})))
    g02 = hub.subscribe(Viewer("o", "worker", frozenset({"g02"})))
    event = {"type": "incident", "event": "opened", "incident": {"id": "i1"}}
    assert hub.publish("g01", event) == 1  # here at once, and handed to the relay
    assert sent == [{"k": "grid", "g": "g01", "live": True, "e": event}]
    assert hub.deliver_remote({"k": "user", "u": "o", "e": {"type": "page"}}) == 1
    assert await g01.next() == event
    assert await g02.next() == {"type": "page"}
    assert hub.resync() == 2
    assert (await g01.next())["type"] == "connected"
    assert (await g02.next())["type"] == "connected"
    assert len(sent) == 1  # what came from the relay, or a resync, is not sent back


async def test_a_logout_elsewhere_wakes_this_process_streams_of_that_person() -> None:
    from gridsense_server.api.session_watch import SessionWatch

    hub, sent = LiveHub(Counters()), []

    class Relay:
        def send(self, message: dict) -> None:
            sent.append(message)

    hub.relay = Relay()
    here, there = SessionWatch(), SessionWatch()
    here.relay, hub.on_recheck = hub.recheck_elsewhere, there.wake
    alice, bob = there.watch("alice"), there.watch("bob")
    here.recheck("alice")  # a logout on this process
    assert sent == [{"k": "recheck", "u": "alice"}]
    assert hub.deliver_remote(sent[0]) == 0  # as the other process receives it
    await asyncio.wait_for(alice.wait(), 5)
    assert not bob.is_set()
