"""Turns for bcrypt checks: the CPU that wrong passwords can cost is bounded, and shared between clients.

bcrypt is slow on purpose (tens of milliseconds a check at cost 10). Without ``rate_limit``, a
client sending wrong passwords on many connections would keep every core busy hashing. Verified
credentials are cached (webconfig), so Prometheus pays bcrypt once; everyone else waits for a
turn: at most ``slots`` checks at once (half the cores), one at a time per client address,
addresses in turn. A request that gets no turn within ``wait`` seconds is answered 429. The server
runs requests that need a check on threads of their own (``Limits.check_workers``), so that their
waiting never holds a worker that a client with verified credentials needs.
"""

from __future__ import annotations

import collections
import os
import threading
import time


def default_slots() -> int:
    """Half the cores (at least one): the other half stays free for scrapes."""
    return max(1, (os.cpu_count() or 2) // 2)


class PasswordChecks:
    """Turns to run a bcrypt check."""

    def __init__(self, slots: int | None = None, wait: float = 2.0) -> None:
        self.slots = slots or default_slots()
        self.wait = wait
        self._cond = threading.Condition()
        # Addresses with requests waiting, in the order they get their next turn; FIFO within one.
        self._waiting: collections.OrderedDict[str, collections.deque[object]] = collections.OrderedDict()
        self._running: set[str] = set()

    def _next(self) -> object | None:
        """The ticket whose turn it is, if a slot is free."""
        if len(self._running) >= self.slots:
            return None
        for client, queue in self._waiting.items():
            if client not in self._running:
                return queue[0]
        return None

    def acquire(self, client: str, since: float | None = None) -> bool:
        """Wait for a turn (True), or give up ``wait`` seconds after ``since`` (time.monotonic(); default: now)."""
        ticket = object()
        deadline = (time.monotonic() if since is None else since) + self.wait
        if time.monotonic() >= deadline:
            return False  # it waited its time for a thread already
        with self._cond:
            self._waiting.setdefault(client, collections.deque()).append(ticket)
            while self._next() is not ticket:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._leave(client, ticket)
                    self._cond.notify_all()
                    return False
                self._cond.wait(left)
            self._leave(client, ticket)
            self._running.add(client)
            return True

    def release(self, client: str) -> None:
        """End a turn."""
        with self._cond:
            self._running.discard(client)
            self._cond.notify_all()

    def _leave(self, client: str, ticket: object) -> None:
        queue = self._waiting[client]
        queue.remove(ticket)
        if queue:
            self._waiting.move_to_end(client)  # its next request waits for the other addresses
        else:
            del self._waiting[client]
