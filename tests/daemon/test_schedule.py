"""The daemon's timetable, driven by fake clocks: full passes, retries, idling, back-off."""

from __future__ import annotations

import pytest

from syncd.service.schedule import (
    FULL_PASS_MAX_DELAY,
    RETRY_MIN_WAIT,
    SERVICE_RETRY_SECONDS,
    Schedule,
)

INTERVAL = 900.0
WALL = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(WALL)


def schedule_with(clock: FakeClock, wall: FakeClock, factor: float = 1.0) -> Schedule:
    return Schedule(INTERVAL, clock=clock, wall_clock=wall, jitter=lambda low, high: factor)


@pytest.fixture
def schedule(clock: FakeClock, wall: FakeClock) -> Schedule:
    return schedule_with(clock, wall)


def test_the_first_full_pass_is_due_at_once(schedule: Schedule) -> None:
    assert schedule.full_pass(writing=False) == "due"


def test_a_full_pass_comes_every_interval(schedule: Schedule, clock: FakeClock) -> None:
    schedule.start()
    clock.advance(INTERVAL - 1)
    assert schedule.full_pass(writing=False) == "not_due"
    clock.advance(1)
    assert schedule.full_pass(writing=False) == "due"
    # The next one is on the timetable as soon as this one is due.
    assert schedule.next_full == clock.now + INTERVAL
    assert schedule.full_pass(writing=False) == "not_due"


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_the_interval_is_jittered_within_ten_percent(
    clock: FakeClock, wall: FakeClock, factor: float
) -> None:
    bounds: list[tuple[float, float]] = []

    def jitter(low: float, high: float) -> float:
        bounds.append((low, high))
        return factor

    schedule = Schedule(INTERVAL, clock=clock, wall_clock=wall, jitter=jitter)
    schedule.start()
    assert bounds == [(0.9, 1.1)]
    assert schedule.next_full == pytest.approx(clock.now + INTERVAL * factor)


def test_a_due_full_pass_waits_for_files_being_written_but_not_forever(
    schedule: Schedule, clock: FakeClock
) -> None:
    schedule.start()
    clock.advance(INTERVAL)
    assert schedule.full_pass(writing=True) == "held"
    clock.advance(FULL_PASS_MAX_DELAY - 1)
    assert schedule.full_pass(writing=True) == "held"
    clock.advance(1)
    assert schedule.full_pass(writing=True) == "due"


def test_a_held_full_pass_runs_once_the_writing_stops(schedule: Schedule, clock: FakeClock) -> None:
    schedule.start()
    clock.advance(INTERVAL + 5)
    assert schedule.full_pass(writing=True) == "held"
    assert schedule.full_pass(writing=False) == "due"


def test_an_unreachable_service_brings_the_full_pass_forward_doubling_the_wait(
    schedule: Schedule, clock: FakeClock
) -> None:
    schedule.start()
    waits = [schedule.pass_failed() for _ in range(9)]
    assert waits[:4] == [SERVICE_RETRY_SECONDS, 20.0, 40.0, 80.0]
    assert max(waits) == INTERVAL  # capped at the rescan interval
    assert schedule.next_full == clock.now + SERVICE_RETRY_SECONDS
    clock.advance(SERVICE_RETRY_SECONDS)
    assert schedule.full_pass(writing=False) == "due"


def test_the_back_off_starts_over_once_the_service_answers(schedule: Schedule) -> None:
    schedule.start()
    schedule.pass_failed()
    schedule.pass_failed()
    schedule.pass_succeeded()
    assert schedule.pass_failed() == SERVICE_RETRY_SECONDS


def test_a_refused_key_idles_for_an_interval_then_a_full_pass_is_due(
    schedule: Schedule, clock: FakeClock
) -> None:
    schedule.start()
    schedule.key_refused()
    assert schedule.idle()
    clock.advance(INTERVAL - 1)
    assert schedule.idle()
    clock.advance(1)
    assert not schedule.idle()
    assert schedule.full_pass(writing=False) == "due"


def test_a_reload_ends_idling_and_takes_a_shorter_interval_at_once(
    schedule: Schedule, clock: FakeClock
) -> None:
    schedule.start()
    schedule.key_refused()
    schedule.reconfigure(60.0)
    assert not schedule.idle()
    assert schedule.next_full == clock.now + 60.0
    schedule.reconfigure(INTERVAL)  # a longer one waits for the pass already due
    assert schedule.next_full == clock.now + 60.0


def test_failed_uploads_are_retried_when_due_but_never_sooner_than_the_minimum(
    schedule: Schedule, clock: FakeClock, wall: FakeClock
) -> None:
    schedule.retry_at(wall.now - 100)  # overdue already
    assert schedule.next_retry == clock.now + RETRY_MIN_WAIT
    schedule.retry_at(wall.now + 30)
    assert schedule.next_retry == clock.now + 30
    clock.advance(29)
    assert not schedule.retry_due()
    clock.advance(1)
    assert schedule.retry_due()
    assert not schedule.retry_due()  # taken off the timetable
    schedule.retry_at(None)
    assert schedule.next_retry is None


def test_wake_at_is_the_earliest_of_the_full_pass_and_the_retry(
    schedule: Schedule, clock: FakeClock, wall: FakeClock
) -> None:
    schedule.start()
    assert schedule.wake_at() == clock.now + INTERVAL
    schedule.retry_at(wall.now + 30)
    assert schedule.wake_at() == clock.now + 30


def test_a_failed_first_pass_keeps_its_full_pass_forward_when_the_loop_starts(
    schedule: Schedule, clock: FakeClock
) -> None:
    # The first pass (before the loop) could not reach the service: the log says a full
    # pass follows in 10 s, and starting the loop must not push it an interval away.
    assert schedule.pass_failed() == SERVICE_RETRY_SECONDS
    schedule.start()
    assert schedule.next_full == clock.now + SERVICE_RETRY_SECONDS
    clock.advance(SERVICE_RETRY_SECONDS)
    assert schedule.full_pass(writing=False) == "due"


def test_after_a_good_first_pass_the_next_full_pass_is_an_interval_away(
    schedule: Schedule, clock: FakeClock
) -> None:
    schedule.pass_succeeded()
    schedule.start()
    assert schedule.next_full == clock.now + INTERVAL
