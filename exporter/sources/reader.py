"""The base of every background reader: one read at a time in a thread of its own, calls in a small pool.

A reader is asked for its state on each scrape and answers at once with what it has; when a read
is due (see :meth:`BackgroundReader.is_due`) it starts one in its reader thread, unless one is
already running. The read fans its calls out to a pool of its own, each call under a deadline
of ``refresh_timeout``. What a failed call leaves is the source's choice (usually the last good
value, for at most ``max_staleness``); what no HTTP attempt counted (the source's own findings,
a bug) goes to ``on_error`` (``huaweicloud_drs_api_errors_total``). Both threads are kept for the
reader's life: a thread per read would make the thread count churn. A reload hands what a reader
knows to its successor with :meth:`BackgroundReader.adopt`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ErrorCounter = Callable[[str, str, str], None]  # (operation, job_id, error_code)
INTERNAL_ERROR = "internal_error"  # an exception the reader did not expect (a bug, or an answer it could not handle)


class BackgroundReader:
    """Due check, max staleness, the reader thread and its pool, close, error accounting and adopt."""

    WORKERS = 4  # calls of one read in flight at a time

    def __init__(
        self,
        name: str,
        *,
        interval: float,
        refresh_timeout: float,
        max_staleness: float = math.inf,
        on_error: ErrorCounter | None = None,
        workers: int | None = None,
        pool_name: str | None = None,
    ) -> None:
        self.interval = interval
        self.refresh_timeout = refresh_timeout
        self.max_staleness = max_staleness
        self.on_error = on_error  # counts failures no HTTP attempt reported (api_errors_total)
        self.reads = 0  # completed reads: what the status page's cache goes by
        self._running: threading.Event | None = None  # set when the read in flight ends
        self._lock = threading.Lock()
        self._reader = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pool = ThreadPoolExecutor(workers or self.WORKERS, thread_name_prefix=pool_name or f"{name}-job")

    def close(self) -> None:
        """Stop the background reads (a read in flight is abandoned)."""
        self._reader.shutdown(wait=False, cancel_futures=True)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def adopt(self, previous: Any) -> None:
        """Start from what ``previous`` (the same source of the configuration before a reload) knows.

        Takes :meth:`handover` of ``previous`` under its lock and gives it to :meth:`take_over`
        under this one's. A reader whose state depends on settings a reload may change leaves
        both alone (the default): it reads everything again.
        """
        if type(previous) is not type(self):
            return
        with previous._lock:
            state = previous.handover()
        if state is not None:
            with self._lock:
                self.take_over(state)

    def handover(self) -> object | None:
        """What a successor may start from (called under the lock); None: nothing."""
        return None

    def take_over(self, state: Any) -> None:
        """Start from ``state``, a predecessor's :meth:`handover` (called under the lock)."""

    def is_due(self, last: float | None, now: float) -> bool:
        """Whether a read last started at monotonic ``last`` (None: never) is due again at ``now``."""
        return last is None or now - last >= self.interval

    def fresh(self, read_at: float, now: float) -> bool:
        """Whether a value read at Unix time ``read_at`` may still be shown at ``now``."""
        return now - read_at <= self.max_staleness

    def start(self, read: Callable[..., None], *args: Any) -> threading.Event | None:
        """Start ``read(*args)`` in the reader thread; call with the lock held, when a read is due.

        Returns the event set when the read in flight ends: the one just started, or one already
        running (then nothing is started); None once the reader is closed.
        """
        if self._running is not None:
            return self._running
        self._running = threading.Event()
        try:
            self._reader.submit(self._run, read, self._running, *args)
        except RuntimeError:  # closed
            self._running = None
        return self._running

    def running(self) -> threading.Event | None:
        """The event of the read in flight, if one is."""
        with self._lock:
            return self._running

    def _run(self, read: Callable[..., None], done: threading.Event, *args: Any) -> None:
        try:
            read(*args)
        finally:
            with self._lock:
                self._running = None
                self.reads += 1
            done.set()

    def count(self, operation: str, job_id: str, code: str) -> None:
        """Count one failure that no HTTP attempt counted."""
        if self.on_error is not None:
            self.on_error(operation, job_id, code)
