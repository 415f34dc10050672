"""The token bucket: callers behind an empty bucket sleep once, in turn; a pause sends them round again."""

from __future__ import annotations

import threading
import time

from offboard.engine._ratelimit import TokenBucket


def test_callers_behind_an_empty_bucket_each_sleep_once_and_keep_the_rate():
    bucket = TokenBucket("google_workspace", rate=200.0, burst=1)
    sleeps: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            sleeps.append(seconds)
        time.sleep(seconds)

    start = threading.Barrier(20)

    def caller() -> None:
        start.wait()
        bucket.acquire(sleep)

    threads = [threading.Thread(target=caller) for _ in range(20)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sleeps) <= 19  # the first takes the burst token; nobody wakes only to sleep again
    assert time.monotonic() - began >= 19 / 200 * 0.95  # 19 tokens at 200/s: the rate holds
    assert max(sleeps) <= 19 / 200 + 1e-9  # the last in the queue waits 19 turns, no more


def test_a_pause_while_callers_wait_sends_them_round_again_after_it():
    now = [0.0]
    bucket = TokenBucket("okta", rate=1.0, burst=1, clock=lambda: now[0])
    assert bucket.acquire(sleep=lambda s: None) == 0.0  # the burst token
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            bucket.pause(10)  # Retry-After came while this caller waited for its turn
        now[0] += seconds

    assert bucket.acquire(sleep) == 10.0  # its turn (1 s), then the rest of the pause: it goes when the pause ends
    assert slept == [1.0, 9.0]
    assert bucket.acquire(sleep) == 1.0  # the next queues behind it, at the rate: the pause took the tokens away
