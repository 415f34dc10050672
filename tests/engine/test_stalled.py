"""A request that stalls lends its call's concurrency slot to another call until it answers (``_stalled``)."""

from __future__ import annotations

import threading

import pytest

from offboard.config._config import Config
from offboard.connector import Connector
from offboard.engine._engine import Engine
from offboard.engine._stalled import CallSlot, StalledRequests


class OneAtATime(Connector):
    """A system whose cap is one call at a time; ``hang`` makes the next ``slow`` request wait for ``answer``."""

    name = "one"

    def __init__(self, instance: str, settings: object = None):
        super().__init__(instance, settings)  # type: ignore[arg-type]
        self.answer = threading.Event()
        self.in_flight = 0
        self.most = 0
        self._lock = threading.Lock()

    def _send(self, hang: bool) -> str:
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            if hang:
                assert self.answer.wait(10), "the stalled request was never answered"
            return "hung" if hang else "quick"
        finally:
            with self._lock:
                self.in_flight -= 1

    def quick(self) -> str:
        return self.request(lambda: self._send(False))

    def slow(self) -> str:
        return self.request(lambda: self._send(True))


@pytest.fixture
def one(tmp_path, monkeypatch):
    from offboard import plugins

    monkeypatch.setattr(plugins, "connector_classes", lambda: {"one": OneAtATime})
    config = Config.model_validate({"connectors": {"one": {"type": "one", "concurrency": 1}}})
    (tmp_path / "data").mkdir()
    engine = Engine.open(config, tmp_path / "data")
    connector = engine.connector("one")
    assert isinstance(connector, OneAtATime)
    yield engine, connector
    connector.answer.set()
    engine.close()


def test_a_stalled_request_lends_its_slot_and_takes_one_again_when_it_answers(one):
    engine, connector = one
    for _ in range(engine.stalled.warmup):  # the system's usual latency: well under a millisecond
        assert engine.call("one", connector.quick)[0] == "quick"
    assert engine.stalled.limit("one") == engine.stalled.floor
    results: dict[str, str] = {}
    stalled = threading.Thread(target=lambda: results.update(a=engine.call("one", connector.slow)[0]))
    stalled.start()
    quick = threading.Thread(target=lambda: results.update(b=engine.call("one", connector.quick)[0]))
    quick.start()
    quick.join(5)  # before: it waited for the stalled call's slot until that request answered
    assert results == {"b": "quick"} and stalled.is_alive()
    assert engine.stalled.lent["one"] == 1 and connector.most == 2  # the stalled one, and the one served meanwhile
    connector.answer.set()
    stalled.join(5)
    assert results == {"a": "hung", "b": "quick"}
    slots = engine._slots["one"]
    assert slots.acquire(timeout=1) and not slots.acquire(blocking=False)  # the cap is whole again: one slot
    slots.release()


def test_nothing_is_lent_before_the_system_has_answered_enough_requests():
    watcher = StalledRequests(warmup=5)
    slots = threading.BoundedSemaphore(1)
    slots.acquire()
    slot = CallSlot(slots)
    for _ in range(4):
        with watcher.watch("x", slot):
            pass
    assert watcher.limit("x") is None
    with watcher.watch("x", slot):  # unwatched: no limit yet
        assert not slots.acquire(timeout=0.2)
    watcher.close()


def test_at_most_the_cap_is_lent_at_once_so_never_more_than_twice_the_cap_is_in_flight():
    """A cap of two: two stalled calls lend both slots, the two calls served meanwhile stall too and lend
    nothing (four in flight, twice the cap, no more); before, only one of the first two was lent."""
    watcher = StalledRequests(warmup=1, floor=0.05)
    slots = threading.BoundedSemaphore(2)
    first = [CallSlot(slots, 2) for _ in range(2)]
    for _ in first:
        slots.acquire()
    with watcher.watch("x", first[0]):
        pass
    answer = threading.Event()

    def stalled(slot: CallSlot) -> None:
        with watcher.watch("x", slot):
            answer.wait(5)

    threads = [threading.Thread(target=stalled, args=(slot,)) for slot in first]
    for thread in threads:
        thread.start()
    assert slots.acquire(timeout=2) and slots.acquire(timeout=2)  # both lent
    second = [CallSlot(slots, 2) for _ in range(2)]  # the calls that took the lent slots: they stall as well
    threads += [threading.Thread(target=stalled, args=(slot,)) for slot in second]
    for thread in threads[2:]:
        thread.start()
    assert not slots.acquire(timeout=0.5) and watcher.lent["x"] == 2
    answer.set()
    for thread in threads[2:]:
        thread.join(5)
    for slot in second:  # the second two's calls end: their slots go back
        slot.give()
    for thread in threads[:2]:
        thread.join(5)
    assert all(slot.held for slot in first) and not slots.acquire(blocking=False)
    watcher.close()


def test_a_request_inside_a_stalled_request_does_not_give_the_slot_twice():
    """Entra's batch sends requests inside a request: the slot is lent once, taken again once."""
    watcher = StalledRequests(warmup=1, floor=0.05)
    slots = threading.BoundedSemaphore(1)
    slots.acquire()
    slot = CallSlot(slots)
    with watcher.watch("x", slot):
        pass
    with watcher.watch("x", slot):
        with watcher.watch("x", slot):
            assert slots.acquire(timeout=2)  # lent by one of them
            assert not slot.give()  # a backoff now gives nothing: the slot is already lent
            slots.release()
    assert slot.held and not slots.acquire(blocking=False)  # taken again, once: the cap is whole
    watcher.close()


def test_eight_chains_of_a_one_slot_system_wait_out_their_backoffs_at_once(one):
    """A chain sleeping out a backoff or a stalled request holds a thread, not the slot: eight of them at once
    (before: four threads per slot, and the other chains of the system waited for a thread)."""
    engine, _ = one
    waiting = threading.Barrier(8, timeout=5)
    futures = [engine._system_pool("one").submit(waiting.wait) for _ in range(8)]
    assert sorted(f.result(timeout=10) for f in futures) == list(range(8))
