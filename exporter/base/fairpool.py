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


def share(slots: int, groups: int) -> int:
    """How many of ``slots`` one of ``groups`` may hold at once: all but a reserve for each other group.

    Half the slots are reserved, split evenly: each group keeps ``slots // (2 × groups)`` that the
    others cannot take, so that a group whose calls all hang (an endpoint that accepts and never
    answers) leaves the others room to work, while a group alone at work still gets most of the
    slots. Below two slots per group nothing is reserved: a group may then hold them all.
    """
    reserve = slots // (2 * groups) if groups > 1 else 0
    return slots - (groups - 1) * reserve


class FairPool:
    """Runs submitted calls in up to ``workers`` threads, taking one call per queue key in turn.

    A key with 40 calls queued and a key with one get the next free thread alternately, so the
    small key's wait does not grow with the big key's size (a FIFO pool would run all 40 first).
    With ``limit``, a key runs at most that many calls at once; its other calls wait in its queue
    while the threads serve other keys.
    """

    def __init__(self, workers: int, name: str, limit: int | None = None) -> None:
        self._max = workers
        self._name = name
        self._limit = workers if limit is None else max(1, limit)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._queues: OrderedDict[Hashable, deque[_Item]] = OrderedDict()
        self._running: dict[Hashable, int] = {}
        self._threads = 0
        self._idle = 0
        self._closed = False

    def submit(self, key: Hashable, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``fn(*args)`` under ``key``."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("pool is shut down")
            self._queues.setdefault(key, deque()).append((future, fn, args))
            if self._idle == 0 and self._threads < self._max and self._running.get(key, 0) < self._limit:
                self._threads += 1
                threading.Thread(target=self._run, name=f"{self._name}-{self._threads}", daemon=True).start()
            else:
                self._work.notify()
        return future

    def _next(self) -> tuple[Hashable, _Item] | None:
        """The next call, round-robin over keys below their limit; None once shut down (lock held)."""
        while True:
            if self._closed and not self._queues:
                return None
            for key in self._queues:
                if self._running.get(key, 0) < self._limit:
                    break
            else:
                key = _NONE
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
        return key, item

    def _run(self) -> None:
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
                    self._running[key] -= 1
                    if not self._running[key]:
                        del self._running[key]
                    if key in self._queues:
                        self._work.notify()  # a call of this key may run now, in an idle thread

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
    """A semaphore of ``slots`` shared by groups, none holding more than ``limit`` at once.

    A free slot goes to the waiter whose group holds the fewest (first come among equals), so
    groups take turns; a group at its limit waits even while slots are free, keeping them for
    the others.
    """

    def __init__(self, slots: int, limit: int | None = None) -> None:
        self._free = slots
        self._limit = slots if limit is None else max(1, limit)
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
        """Hand free slots to waiters, the group holding fewest first (lock held)."""
        while self._free > 0:
            eligible = [w for w in self._waiters if self._held.get(w[0], 0) < self._limit]
            if not eligible:
                return
            waiter = min(eligible, key=lambda w: self._held.get(w[0], 0))  # min keeps the earliest of equals
            self._waiters.remove(waiter)
            self._free -= 1
            self._held[waiter[0]] = self._held.get(waiter[0], 0) + 1
            waiter[1].set()
