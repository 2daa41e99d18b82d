"""Sharing between keys: a thread pool that serves its queues round-robin, and slots shared by projects.

One big batch must not starve small ones, and one project whose endpoint hangs must not hold every
thread or every request slot while the other projects wait.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]
_NONE = object()  # no key (None is one)


def reserve(slots: int, groups: int) -> int:
    """How many of ``slots`` each of ``groups`` gets at once when it asks: half of them split evenly, one at least.

    A group alone has no one to keep slots from. With fewer slots than groups, the one each is
    sure of takes the total above ``slots`` while every group is at work (see :class:`FairSlots`).
    """
    return max(1, slots // (2 * groups)) if groups > 1 else 0


def share(slots: int, groups: int) -> int:
    """How many of ``slots`` one of ``groups`` may hold while another group waits: all but their reserves.

    More only as a loan of the others' reserves while they do not ask for them, taken back at once
    when they do, so that a group whose calls all hang (an endpoint that accepts and never
    answers) cannot keep the others waiting, while a group alone at work gets every slot.
    """
    return max(1, slots - (groups - 1) * reserve(slots, groups))


class FairPool:
    """Runs submitted calls in up to ``workers`` threads, taking one call per queue key in turn.

    A key with 40 calls queued and a key with one get the next free thread alternately, so the
    small key's wait does not grow with the big key's size (a FIFO pool would run all 40 first).
    With ``limit``, a key runs more than that many calls at once only while no key below its limit
    waits (a loan of idle threads). With ``reserve``, a key running fewer than that gets a thread
    at once, in one beyond ``workers`` if they are all taken (by a loan, a hanging call cannot be
    taken back); no call of a key past its reserve starts until fewer than ``workers`` run again.
    """

    def __init__(self, workers: int, name: str, limit: int | None = None, reserve: int = 0) -> None:
        self._max = workers
        self._name = name
        self._limit = workers if limit is None else max(1, limit)
        self._reserve = reserve
        self._busy = 0  # calls running
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._queues: OrderedDict[Hashable, deque[_Item]] = OrderedDict()
        self._running: dict[Hashable, int] = {}
        self._threads = 0
        self._idle = 0
        self._starting = 0  # threads started that have not looked for a call yet
        self._closed = False

    def submit(self, key: Hashable, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``fn(*args)`` under ``key``."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("pool is shut down")
            self._queues.setdefault(key, deque()).append((future, fn, args))
            self._wake()
        return future

    def _wake(self) -> None:
        """Get a thread for the next call that may start: an idle one, else a new one (lock held).

        One at a time: a thread that takes a call wakes the next, so a burst of calls starts no
        more threads than can run them.
        """
        if self._idle:
            self._work.notify()
        elif not self._starting and self._pick() is not _NONE:
            self._starting += 1
            self._threads += 1
            threading.Thread(target=self._run, name=f"{self._name}-{self._threads}", daemon=True).start()

    def _pick(self) -> Hashable:
        """The key whose call runs next, round-robin: below its reserve first; then, while fewer than
        ``workers`` run, below its limit, else any (a loan); _NONE when no call may start (lock held)."""
        owed = next((k for k in self._queues if self._running.get(k, 0) < self._reserve), _NONE)
        if owed is not _NONE or self._busy >= self._max:
            return owed
        within = next((k for k in self._queues if self._running.get(k, 0) < self._limit), _NONE)
        return within if within is not _NONE else next(iter(self._queues), _NONE)

    def _next(self) -> tuple[Hashable, _Item] | None:
        """The next call (see :meth:`_pick`); None once shut down (lock held)."""
        while True:
            if self._closed and not self._queues:
                return None
            key = self._pick()
            if key is not _NONE:
                break
            self._idle += 1
            self._work.wait()  # idle worker: nothing on any scrape path waits on this
            self._idle -= 1
        queue = self._queues[key]
        item = queue.popleft()
        if queue:
            self._queues.move_to_end(key)
        else:
            del self._queues[key]
        self._running[key] = self._running.get(key, 0) + 1
        self._busy += 1
        if self._queues:
            self._wake()
        return key, item

    def _run(self) -> None:
        with self._lock:
            self._starting -= 1
        while True:
            with self._lock:
                picked = self._next()
            if picked is None:
                return
            key, (future, fn, args) = picked
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as exc:  # handed to whoever waits on the future
                        future.set_exception(exc)
            finally:
                with self._lock:
                    self._busy -= 1
                    self._running[key] -= 1
                    if not self._running[key]:
                        del self._running[key]

    def shutdown(self) -> None:
        """Cancel queued calls and let the threads end; running calls finish on their own."""
        with self._lock:
            self._closed = True
            for queue in self._queues.values():
                for future, _, _ in queue:
                    future.cancel()
            self._queues.clear()
            self._work.notify_all()


class FairSlots:
    """A semaphore of ``slots`` shared by groups: each sure of ``reserve``, none above ``limit`` while others wait.

    A free slot goes to the waiter whose group holds the fewest (first come among equals), so
    groups take turns; a group at its limit gets one only while no group below its limit waits
    (a loan of the others' reserves while they do not ask). A group holding fewer than
    ``reserve`` gets a slot at once, free or not: a loan is taken back by going above ``slots``
    (a request in flight is never cut), and slots given back are not handed on again until fewer
    than ``slots`` are held.
    """

    def __init__(self, slots: int, limit: int | None = None, reserve: int = 0) -> None:
        self._free = slots  # below 0 while a loan is being taken back
        self._limit = slots if limit is None else max(1, limit)
        self._reserve = reserve
        self._lock = threading.Lock()
        self._held: dict[Hashable, int] = {}
        self._waiters: list[tuple[Hashable, threading.Event]] = []

    def acquire(self, group: Hashable, timeout: float) -> bool:
        """Take a slot for ``group`` within ``timeout`` seconds; False when none came in time."""
        granted = threading.Event()
        with self._lock:
            self._waiters.append((group, granted))
            self._grant()
        if granted.wait(timeout):
            return True
        with self._lock:
            if granted.is_set():  # granted while giving up: keep it
                return True
            self._waiters.remove((group, granted))
        return False

    def release(self, group: Hashable) -> None:
        """Give back a slot ``group`` holds."""
        with self._lock:
            self._free += 1
            self._held[group] -= 1
            if not self._held[group]:
                del self._held[group]
            self._grant()

    def held(self, group: Hashable) -> int:
        """Slots ``group`` holds now."""
        with self._lock:
            return self._held.get(group, 0)

    def _grant(self) -> None:
        """Hand slots to waiters: below their reserve at once, then free ones (lock held)."""
        while self._waiters:
            eligible = [w for w in self._waiters if self._held.get(w[0], 0) < self._reserve]
            if not eligible:
                if self._free <= 0:
                    return
                eligible = [w for w in self._waiters if self._held.get(w[0], 0) < self._limit] or self._waiters
            waiter = min(eligible, key=lambda w: self._held.get(w[0], 0))  # min keeps the earliest of equals
            self._waiters.remove(waiter)
            self._free -= 1
            self._held[waiter[0]] = self._held.get(waiter[0], 0) + 1
            waiter[1].set()
