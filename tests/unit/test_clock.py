"""The simulated clock: time moves only when every participant waits, in order, without real sleeping."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from rehearsal.clock import SimClock

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_callbacks_run_in_time_order_whatever_the_order_they_were_scheduled_in() -> None:
    clock = SimClock(START)
    seen: list[tuple[str, float]] = []
    clock.call_later(120, lambda: seen.append(("later", clock.elapsed())))
    clock.call_later(0, lambda: seen.append(("first", clock.elapsed())))
    assert clock.elapsed() == 0  # scheduling before the run does not move time

    assert clock.run_until_idle(real_timeout=5)

    assert seen == [("first", 0.0), ("later", 120.0)]


def test_hours_of_sleeping_take_no_real_time() -> None:
    clock = SimClock(START)
    woke: list[float] = []

    def sleeper() -> None:
        clock.sleep(6 * 3600)
        woke.append(clock.elapsed())

    clock.call_later(0, sleeper)
    started = time.monotonic()
    assert clock.run_until_idle(real_timeout=5)

    assert woke == [6 * 3600.0]
    assert time.monotonic() - started < 2
    assert clock.now() == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_a_signal_wakes_a_waiter_before_its_timeout_and_a_missing_one_times_out() -> None:
    clock = SimClock(START)
    outcomes: dict[str, tuple[bool, float]] = {}

    def waiter(key: str) -> None:
        outcomes[key] = (clock.wait_signal(key, timeout=3600), clock.elapsed())

    clock.call_later(0, lambda: waiter("answered"))
    clock.call_later(0, lambda: waiter("ignored"))
    clock.call_later(300, lambda: clock.signal("answered"))

    assert clock.run_until_idle(real_timeout=5)

    assert outcomes == {"answered": (True, 300.0), "ignored": (False, 3600.0)}


def test_time_does_not_move_while_a_participant_is_busy() -> None:
    clock = SimClock(START)
    release = threading.Event()
    observed: list[float] = []

    def busy() -> None:
        release.wait(5)
        observed.append(clock.elapsed())

    clock.call_later(0, busy)
    clock.call_later(60, lambda: observed.append(clock.elapsed()))
    runner = threading.Thread(target=clock.run_until_idle, kwargs={"real_timeout": 5})
    runner.start()
    time.sleep(0.2)
    assert clock.elapsed() == 0  # the busy participant holds the clock
    release.set()
    runner.join(5)

    assert observed == [0.0, 60.0]
