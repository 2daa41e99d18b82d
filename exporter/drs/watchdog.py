"""Cuts an HTTP exchange when its deadline passes, whatever part of it is waiting.

A socket timeout bounds one read, not an exchange: a server that sends its status line and
then one header byte every 0.25 s, or a gzip body of empty deflate blocks, keeps every read
short and the exchange endless. One thread shuts the socket of each exchange down at its
deadline, so the reader blocked in http.client or urllib3 wakes up with an error at once.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from typing import Any

from ..base.deadline import Deadline

RETRY_CUT = 0.05  # no socket yet (connecting): look again this soon


class Watch:
    """One exchange under watch: the connection it uses, and whether it was cut."""

    __slots__ = ("_lock", "at", "conn", "done", "fired")

    def __init__(self, at: float, lock: threading.Condition) -> None:
        self.at = at
        self._lock = lock  # the watchdog's: a cut and a release never overlap
        self.conn: Any = None  # the urllib3 connection, set once the pool hands it out
        self.done = False
        self.fired = False

    def release(self) -> None:
        """The exchange is over: its connection is not cut after this returns."""
        with self._lock:
            self.done = True
            self.conn = None


class Watchdog:
    """Shuts down the socket of every watched exchange still running at its deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, deadline: Deadline) -> Watch:
        """Start watching an exchange that must be over by ``deadline``."""
        watch = Watch(deadline.at, self._cond)
        with self._cond:
            heapq.heappush(self._heap, (watch.at, next(self._seq), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._cond.notify()  # due before whatever the thread sleeps until
        return watch

    def close(self) -> None:
        """Let the thread end once no exchange is under watch (it is started again if one comes)."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def release(self, watch: Watch) -> None:
        """The exchange is over: it is not cut after this returns."""
        watch.release()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, watch = heapq.heappop(self._heap)
                    if not watch.done and not self._cut(watch):
                        heapq.heappush(self._heap, (now + RETRY_CUT, next(self._seq), watch))
                if self._closed:
                    # Exchanges of a closed transport are still cut at their deadlines; the
                    # thread ends when none is left, and watch() starts another if needed.
                    self._heap = [entry for entry in self._heap if not entry[2].done]
                    heapq.heapify(self._heap)
                    if not self._heap:
                        self._thread = None
                        return
                # Done watches stay in the heap until their time; waking for them costs nothing.
                self._cond.wait(self._heap[0][0] - now if self._heap else None)

    @staticmethod
    def _cut(watch: Watch) -> bool:
        """Shut the exchange's socket down; False when it has none yet."""
        watch.fired = True
        sock = getattr(watch.conn, "sock", None)
        if sock is None:
            return False
        with contextlib.suppress(OSError):  # closed or detached meanwhile: nothing left to cut
            sock.shutdown(socket.SHUT_RDWR)
        return True
