"""One simulated clock for the whole rehearsal (a discrete-event clock).

Every thread that does simulated work is a *participant*: state machine executions, scheduled
callbacks (the release watcher's schedule, a simulated approver). A participant that must wait for
simulated time calls `sleep` (a `Wait` state, a `Retry` interval) or `wait_signal` (a
`.waitForTaskToken` task, possibly with a timeout). When every participant is waiting, simulated
time jumps to the earliest wake-up and the threads due then run. Nothing sleeps in real time, so a
rehearsal of hours of patching takes seconds, and the order of events is the same on every run.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

FOREVER = float("inf")


@dataclass(order=True)
class _Timer:
    when: float
    seq: int
    fired: bool = field(default=False, compare=False)
    cancelled: bool = field(default=False, compare=False)
    callback: Callable[[], None] | None = field(default=None, compare=False)
    key: Any = field(default=None, compare=False)


class SimClock:
    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._start = start
        self._t = 0.0  # seconds since start
        self._cond = threading.Condition()
        self._active = 0
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._signals: dict[Any, _Timer] = {}
        self._early_signals: set[Any] = set()
        self._started = False  # time stands still while the driver is still setting up
        self.errors: list[BaseException] = []

    # ---- reading time --------------------------------------------------------------------------
    def now(self) -> datetime:
        with self._cond:
            return self._start + timedelta(seconds=self._t)

    def elapsed(self) -> float:
        with self._cond:
            return self._t

    @property
    def start(self) -> datetime:
        return self._start

    # ---- participants --------------------------------------------------------------------------
    def enter(self) -> None:
        """A new participant starts (call from the thread that creates it, before it runs)."""
        with self._cond:
            self._active += 1

    def exit(self) -> None:
        with self._cond:
            self._active -= 1
            self._advance_if_idle()

    def participant(self, target: Callable[[], None]) -> Callable[[], None]:
        """Wrap a thread target so that it counts as a participant until it returns."""

        def run() -> None:
            try:
                target()
            except BaseException as exc:  # pragma: no cover - surfaced by the engine
                self.errors.append(exc)
                raise
            finally:
                self.exit()

        return run

    def sleep(self, seconds: float) -> None:
        """Block the calling participant for `seconds` of simulated time."""
        with self._cond:
            timer = self._push(self._t + max(0.0, float(seconds)))
            self._active -= 1
            self._advance_if_idle()
            while not timer.fired:
                self._cond.wait()

    def wait_signal(self, key: Any, timeout: float | None) -> bool:
        """Block until `signal(key)` or until `timeout` simulated seconds pass; True if signalled."""
        with self._cond:
            if key in self._early_signals:
                self._early_signals.discard(key)
                return True
            # ASL's default task timeout (99999999 s) means "no timeout" for a rehearsal.
            if timeout is None or timeout >= 99_999_999:
                deadline = FOREVER
            else:
                deadline = self._t + max(0.0, float(timeout))
            timer = self._push(deadline, key=key)
            self._signals[key] = timer
            self._active -= 1
            self._advance_if_idle()
            while not timer.fired:
                self._cond.wait()
            self._signals.pop(key, None)
            return timer.key is not None

    def signal(self, key: Any) -> None:
        """Wake a participant blocked in `wait_signal(key)` (it becomes active at once)."""
        with self._cond:
            timer = self._signals.get(key)
            if timer is None or timer.fired:
                self._early_signals.add(key)
                return
            timer.cancelled = True
            timer.fired = True
            self._active += 1
            self._cond.notify_all()

    def call_at(self, when: datetime | float, callback: Callable[[], None]) -> None:
        """Run `callback` in a new participant thread at simulated time `when` (relative to the
        start when a number). Scheduling before `run_until_idle` does not move time."""
        with self._cond:
            t = (when - self._start).total_seconds() if isinstance(when, datetime) else float(when)
            self._push(max(t, self._t), callback=callback)
            self._advance_if_idle()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run `callback` `seconds` after now (see `call_at`)."""
        with self._cond:
            self._push(self._t + max(0.0, seconds), callback=callback)
            self._advance_if_idle()

    # ---- the driver ----------------------------------------------------------------------------
    def run_until_idle(self, real_timeout: float = 600.0) -> bool:
        """Block the (non-participant) caller until nothing is running and nothing is due.

        Returns False if real time ran out first (a stuck participant).
        """
        with self._cond:
            self._started = True
            self._advance_if_idle()
            return self._cond.wait_for(self._finished, timeout=real_timeout)

    def pending_signals(self) -> int:
        with self._cond:
            return sum(1 for t in self._signals.values() if not t.fired)

    def _finished(self) -> bool:
        return self._active == 0 and not any(not t.cancelled and t.when != FOREVER for t in self._timers)

    # ---- internals (hold the lock) ---------------------------------------------------------------
    def _push(self, when: float, *, callback: Callable[[], None] | None = None, key: Any = None) -> _Timer:
        timer = _Timer(when=when, seq=next(self._seq), callback=callback, key=key)
        heapq.heappush(self._timers, timer)
        return timer

    def _advance_if_idle(self) -> None:
        if not self._started:
            return
        while self._active == 0:
            while self._timers and self._timers[0].cancelled:
                heapq.heappop(self._timers)
            if not self._timers or self._timers[0].when == FOREVER:
                self._cond.notify_all()
                return
            when = self._timers[0].when
            self._t = max(self._t, when)
            while self._timers and self._timers[0].when == when:
                timer = heapq.heappop(self._timers)
                if timer.cancelled:
                    continue
                timer.fired = True
                if timer.key is not None:
                    timer.key = None  # woken by time, not by a signal
                self._active += 1
                if timer.callback is not None:
                    thread = threading.Thread(target=self.participant(timer.callback), daemon=True)
                    thread.start()
            self._cond.notify_all()
