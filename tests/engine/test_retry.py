"""The retry policy of connector calls, on its own (no real sleeping: a fake clock), and of the requests inside
a call that a connector marks with ``Connector.request`` (an engine with one scripted connector)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from offboard.config._config import Config, Limits
from offboard.connector import Connector
from offboard.engine._engine import Engine
from offboard.engine._ratelimit import TokenBucket
from offboard.engine._retry import backoff, call_with_retries
from offboard.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    NotFound,
    PermanentError,
    PermissionDenied,
    RateLimited,
    TransientError,
)
from offboard.models import Account, Action, ActionKind, Receipt


class Script:
    """Raises the scripted errors in turn, then answers; records every pause and sleep on a fake clock."""

    def __init__(self, *errors: BaseException, answer: object = "done", cost: float = 0.0):
        self.errors = list(errors)
        self.answer = answer
        self.cost = cost  # seconds each attempt takes
        self.calls = 0
        self.now = 0.0
        self.pauses: list[tuple[str | None, float]] = []
        self.sleeps: list[float] = []

    def __call__(self) -> object:
        self.calls += 1
        self.now += self.cost
        if self.errors:
            raise self.errors.pop(0)
        return self.answer

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def pause(self, lane: str | None, seconds: float) -> None:
        self.pauses.append((lane, seconds))
        self.now += seconds  # the next attempt waits for its token that long

    def run(self, limits: Limits | None = None, rng=lambda: 1.0) -> tuple[object, int]:
        return call_with_retries(
            self,
            system="slack",
            limits=limits or Limits(),
            pause=self.pause,
            sleep=self.sleep,
            clock=lambda: self.now,
            rng=rng,
        )


def test_success_at_once_is_one_attempt_and_no_wait():
    script = Script()
    assert script.run() == ("done", 1)
    assert script.pauses == [] and script.sleeps == []


def test_transient_errors_back_off_on_their_own_and_never_pause_the_system():
    script = Script(TransientError("503"), TransientError("reset"), TransientError("timeout"))
    assert script.run() == ("done", 4)
    assert script.sleeps == [0.5, 1.0, 2.0]  # min_retry_wait doubling (rng 1.0: the top of the jitter)
    assert script.pauses == []  # nobody else waits for this call's failures


def test_backoff_is_jittered_between_half_and_all_of_the_ceiling_and_never_below_the_minimum():
    """The first wait is a full jitter of the minimum (a fifth of it to all of it); later ones between half and
    all of the doubling ceiling, never below the minimum."""
    limits = Limits(min_retry_wait=0.5, max_retry_wait=30)
    assert [backoff(n, limits, rng=lambda: 1.0) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert [backoff(n, limits, rng=lambda: 0.0) for n in range(1, 9)] == [0.1, 0.5, 1, 2, 4, 8, 15, 15]
    assert backoff(10_000, limits, rng=lambda: 1.0) == 30  # no overflow on a long run
    assert Limits().min_retry_wait == 0.5 and Limits().max_retry_wait == 30 and Limits().action_budget == 300


def test_the_backoff_counts_the_calls_own_failures_not_the_rate_limits_before_them():
    # The reported fault: 429s had pushed the attempt count up, so a later 5xx waited 102 s.
    script = Script(*[RateLimited(retry_after=1) for _ in range(9)], TransientError("503"))
    assert script.run() == ("done", 11)
    assert script.sleeps == [0.5]  # the first failure of the call itself: the minimum
    assert script.pauses == [(None, 1.0)] * 9


def test_rate_limits_pause_the_system_for_exactly_the_time_the_vendor_asked():
    script = Script(RateLimited(retry_after=7), RateLimited(retry_after=2.5, lane="chat.write"))
    assert script.run() == ("done", 3)
    assert script.pauses == [(None, 7.0), ("chat.write", 2.5)]
    assert script.sleeps == []


def test_a_long_retry_after_is_honoured_not_cut_short():
    script = Script(RateLimited(retry_after=120))
    assert script.run(Limits(max_retry_wait=30)) == ("done", 2)
    assert script.pauses == [(None, 120.0)]  # retrying after 30 s would only earn another 429


def test_transient_error_with_retry_after_is_a_vendor_answer_for_everyone():
    script = Script(TransientError("busy"))
    script.errors[0].retry_after = 3  # type: ignore[attr-defined]
    assert script.run() == ("done", 2)
    assert script.pauses == [(None, 3.0)] and script.sleeps == []


def test_rate_limit_without_retry_after_pauses_for_a_backoff_of_its_own_count():
    script = Script(RateLimited(), RateLimited(), TransientError())
    script.run()
    assert script.pauses == [(None, 0.5), (None, 1.0)] and script.sleeps == [0.5]


def test_a_transient_failure_does_not_hold_back_another_caller_of_the_system():
    now = [0.0]
    bucket = TokenBucket("slack", rate=None, clock=lambda: now[0])
    waited: list[float] = []

    def failing_twice(calls=[0]) -> str:  # noqa: B006 - a counter local to this test
        calls[0] += 1
        if calls[0] <= 2:
            raise TransientError("503")
        return "done"

    call_with_retries(
        failing_twice,
        system="slack",
        limits=Limits(),
        pause=lambda lane, s: bucket.pause(s),
        sleep=waited.append,
        clock=lambda: now[0],
    )
    assert len(waited) == 2
    assert bucket.acquire(sleep=lambda s: pytest.fail(f"another caller waited {s} s")) == 0.0
    bucket.pause(5)  # whereas a vendor's Retry-After holds everybody back
    slept: list[float] = []
    bucket.acquire(sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    assert slept == [5]


def test_a_call_gives_up_when_the_next_wait_would_pass_its_time_budget():
    limits = Limits(action_budget=60, max_attempts=50)
    script = Script(*[TransientError(f"timeout #{n}") for n in range(40)], cost=10)  # each attempt times out in 10 s
    with pytest.raises(TransientError, match=r"gave up after \d+ attempts: .*limits.action_budget") as caught:
        script.run(limits)
    assert caught.value.budget_spent is True
    assert script.now <= 60  # never past the budget, never spinning
    assert script.calls == caught.value.attempts < 40


def test_a_retry_after_past_the_budget_gives_up_at_once_without_pausing_anyone():
    script = Script(RateLimited(retry_after=3600))  # GitHub's primary limit resets in an hour
    with pytest.raises(RateLimited, match="limits.action_budget") as caught:
        script.run()
    assert script.calls == 1 and script.pauses == [] and caught.value.attempts == 1


@pytest.mark.parametrize(
    "error",
    [AuthError("expired"), PermissionDenied(permissions=("User.ReadWrite.All",)), PermanentError("400"), NotFound()],
    ids=lambda e: type(e).__name__,
)
def test_authentication_and_permanent_errors_are_never_retried(error):
    script = Script(error)
    with pytest.raises(type(error)) as caught:
        script.run()
    assert script.calls == 1 and script.pauses == []
    assert caught.value.attempts == 1 and caught.value.system == "slack"


def test_a_system_named_by_the_connector_is_kept():
    script = Script(PermanentError("400", system="slack:chat"))
    with pytest.raises(PermanentError) as caught:
        script.run()
    assert caught.value.system == "slack:chat"


def test_gives_up_after_max_attempts_of_transient_errors():
    script = Script(*[TransientError(f"503 #{n}") for n in range(10)])
    with pytest.raises(TransientError, match="503 #2") as caught:
        script.run(Limits(max_attempts=3))
    assert script.calls == 3 and caught.value.attempts == 3 and caught.value.budget_spent
    assert script.sleeps == [0.5, 1.0]  # no wait after the last failure
    assert script.pauses == []


def test_a_run_of_bad_luck_at_a_flaky_vendor_is_retried_through_under_the_default_limits():
    """At 20% failures six running happen once in 15,000 requests (twice in a 200-person run): not a give-up.
    Nine running are retried through within the time budget; a dead vendor still gives up after the tenth."""
    script = Script(*[TransientError(f"503 #{n}") for n in range(9)])
    assert script.run(Limits()) == ("done", 10)
    assert script.now < Limits().action_budget
    dead = Script(*[TransientError(f"503 #{n}") for n in range(50)])
    with pytest.raises(TransientError, match="503 #9"):
        dead.run(Limits())
    assert dead.calls == 10 and dead.now <= 121.5  # ceilings 0.5, 1, 2, ... 30: within the budget


def test_rate_limits_spend_the_rate_limited_budget_not_the_attempt_budget():
    limits = Limits(max_attempts=2, max_rate_limited_wait=25)
    script = Script(*[RateLimited(retry_after=10) for _ in range(5)], TransientError())
    with pytest.raises(RateLimited) as caught:
        script.run(limits)
    # 10, then 20 s are under the 25 s budget; the third wait would bring it to 30 s: no pause.
    assert script.calls == 3 and caught.value.attempts == 3
    assert [seconds for _, seconds in script.pauses] == [10.0, 10.0]


def test_rate_limits_do_not_use_up_the_attempts_of_transient_errors():
    limits = Limits(max_attempts=2)
    script = Script(RateLimited(retry_after=1), RateLimited(retry_after=1), TransientError())
    assert script.run(limits) == ("done", 4)


def test_an_unexpected_exception_is_a_connector_error_without_retry():
    script = Script(KeyError("id"))
    with pytest.raises(ConnectorError, match="unexpected KeyError") as caught:
        script.run()
    assert script.calls == 1 and caught.value.attempts == 1 and caught.value.system == "slack"
    assert isinstance(caught.value.__cause__, KeyError)


def test_other_offboard_errors_pass_through_unchanged():
    error = ConfigError("bad lane")
    script = Script(error)
    with pytest.raises(ConfigError) as caught:
        script.run()
    assert caught.value is error and script.calls == 1


# -- requests retried inside a call (Connector.request, backed by the engine) ---------------------


class FiveRequests(Connector):
    """Removes memberships as vendors make us: one listing, then one write per group (five requests).

    Each request fails the first ``fails`` times it is sent, with ``error`` (a fault injector per request)."""

    name = "five"

    def __init__(self, instance: str, settings: object = None):
        super().__init__(instance, settings)  # type: ignore[arg-type]
        self.sent: Counter[str] = Counter()
        self.entered = 0  # how many times the engine called the whole method
        self.fails = 1
        self.error: Callable[[], ConnectorError] = lambda: TransientError("HTTP 503", status=503)
        self.idempotent_writes = True

    def _send(self, request: str) -> str:
        self.sent[request] += 1
        if self.sent[request] <= self.fails:
            raise self.error()
        return request

    def remove_memberships(self, action: Action) -> Receipt:
        self.entered += 1
        self.request(lambda: self._send("GET groups"), lane="read")
        groups = ["g1", "g2", "g3", "g4"]  # what the listing found
        for group in groups:
            self.request(lambda g=group: self._send(f"DELETE {g}"), lane="write", idempotent=self.idempotent_writes)
        return Receipt(action, changed=True, before={"groups": groups})


@pytest.fixture
def five(tmp_path, monkeypatch):
    """An engine with one ``FiveRequests`` system on a fake clock: (engine, connector, sleeps)."""
    from offboard import plugins

    monkeypatch.setattr(plugins, "connector_classes", lambda: {"five": FiveRequests})
    config = Config.model_validate({"connectors": {"five": {"type": "five"}}})
    (tmp_path / "data").mkdir()
    engine = Engine.open(config, tmp_path / "data")
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    engine.sleep, engine.monotonic = sleep, lambda: now[0]
    connector = engine.connector("five")
    assert isinstance(connector, FiveRequests)
    yield engine, connector, sleeps
    engine.close()


def _remove(engine: Engine, connector: FiveRequests) -> tuple[object, int]:
    action = Action(ActionKind.REMOVE_MEMBERSHIPS, Account("five", "u1", "u1"))
    return engine.call("five", connector.remove_memberships, action)


def test_a_five_request_call_whose_every_request_fails_once_succeeds_in_one_call_attempt(five):
    engine, connector, sleeps = five
    receipt, attempts = _remove(engine, connector)
    assert receipt.changed  # type: ignore[attr-defined]
    assert connector.entered == 1  # the call was not sent again whole
    assert sorted(connector.sent.values()) == [2] * 5  # each request: its failure, then its success
    assert attempts == 6  # the call's attempt and the five requests sent again
    assert len(sleeps) == 5 and all(0.1 <= s <= 0.5 for s in sleeps)  # each request's own first backoff, only


def test_a_write_that_is_not_idempotent_is_not_sent_again_inside_the_call(five):
    engine, connector, _ = five
    connector.idempotent_writes = False
    receipt, attempts = _remove(engine, connector)
    assert receipt.changed  # type: ignore[attr-defined]
    assert connector.entered == 5  # each write failed once: the whole call again, four times
    assert connector.sent["GET groups"] == 6  # its own failure and retry, then once more per call
    assert connector.sent["DELETE g4"] == 2 and connector.sent["DELETE g1"] == 5


def test_a_request_that_keeps_failing_gives_up_and_the_call_is_not_sent_again(five):
    engine, connector, _ = five
    connector.fails = 100
    with pytest.raises(TransientError, match=r"gave up after 10 attempts") as caught:
        _remove(engine, connector)
    assert connector.entered == 1 and connector.sent["GET groups"] == engine.config.limits.max_attempts
    assert caught.value.attempts == 10 and caught.value.budget_spent  # type: ignore[attr-defined]


def test_a_rate_limited_request_pauses_the_system_for_the_vendors_retry_after(five):
    engine, connector, sleeps = five
    connector.error = lambda: RateLimited(retry_after=7, status=429)
    _, attempts = _remove(engine, connector)
    assert connector.entered == 1 and attempts == 6
    assert 7 in sleeps  # the retry waited for its token behind the pause: 7 s, as the vendor asked
    assert engine._buckets["five"].acquire(sleep=lambda s: pytest.fail("paused")) == 0.0  # the pause is over


def test_the_requests_share_the_calls_time_budget(five):
    engine, connector, sleeps = five
    engine.config.limits.__dict__["action_budget"] = 1.2  # room for about two backoffs in the whole call
    connector.fails = 3
    with pytest.raises(TransientError, match="limits.action_budget"):
        _remove(engine, connector)
    assert sum(sleeps) <= 1.2 and connector.entered == 1


def test_without_an_engine_a_request_is_sent_once():
    connector = FiveRequests("five")
    with pytest.raises(TransientError, match="503"):
        connector.remove_memberships(Action(ActionKind.REMOVE_MEMBERSHIPS, Account("five", "u1", "u1")))
    assert connector.sent == Counter({"GET groups": 1})


def test_a_batch_that_gets_some_items_done_each_time_is_not_counted_as_failing():
    limits = Limits(max_attempts=3)
    script = Script(*[TransientError("2 of 9 items: 503", partial=True) for _ in range(5)], TransientError("503"))
    assert script.run(limits) == ("done", 7)  # five rounds of progress, one failure: under the three allowed
    assert script.sleeps == [0.5] * 6  # each waits the least backoff: the items left are new failures
