"""A thread pool that serves its queues round-robin, so that one big batch does not starve small ones."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class FairPool:
    """Runs submitted calls in up to ``workers`` threads, taking one call per queue key in turn.

    A key with 40 calls queued and a key with one get the next free thread alternately, so the
    small key's wait does not grow with the big key's size (a FIFO pool would run all 40 first).
    """

    def __init__(self, workers: int, name: str) -> None:
        self._max = workers
        self._name = name
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._queues: OrderedDict[Hashable, deque[_Item]] = OrderedDict()
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
            if self._idle == 0 and self._threads < self._max:
                self._threads += 1
                threading.Thread(target=self._run, name=f"{self._name}-{self._threads}", daemon=True).start()
            else:
                self._work.notify()
        return future

    def _next(self) -> _Item | None:
        """The next call, round-robin over keys; None once shut down (lock held)."""
        while not self._queues:
            if self._closed:
                return None
            self._idle += 1
            self._work.wait()  # idle worker: nothing on any scrape path waits on this
            self._idle -= 1
        key, queue = next(iter(self._queues.items()))
        item = queue.popleft()
        if queue:
            self._queues.move_to_end(key)
        else:
            del self._queues[key]
        return item

    def _run(self) -> None:
        while True:
            with self._lock:
                item = self._next()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Cancel queued calls and let the threads end; running calls finish on their own."""
        with self._lock:
            self._closed = True
            for queue in self._queues.values():
                for future, _, _ in queue:
                    future.cancel()
            self._queues.clear()
            self._work.notify_all()
