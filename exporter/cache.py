"""Snapshots of progress data per (job, object type), cached for a TTL with one refresh in flight per key."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass

from cachetools import TTLCache

from .errors import DRSAPIError
from .progress import ProgressData

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (job_id, object_type)
Fetch = Callable[[str, str, float], ProgressData]  # job_id, object_type, deadline -> data

SCRAPE_TIMEOUT = "scrape_timeout"


@dataclass(frozen=True)
class Snapshot:
    """The outcome of one refresh of one key: data on success, an error code otherwise."""

    key: Key
    data: ProgressData | None
    error_code: str | None
    refreshed_at: float  # Unix seconds
    duration: float
    last_success: float | None  # Unix seconds of the latest successful refresh, this one or earlier

    @property
    def up(self) -> bool:
        """True when this refresh succeeded."""
        return self.data is not None


class SnapshotCache:
    """Refreshes keys in a bounded pool and caches each outcome (success or failure) for ``ttl`` seconds.

    Failures are cached too, so a broken job does not cost an API call per scrape. Callers
    that ask for a key while its refresh is running wait for that same refresh.
    """

    def __init__(self, fetch: Fetch, *, ttl: float, max_concurrency: int, refresh_timeout: float) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self.refresh_timeout = refresh_timeout
        self._lock = threading.Lock()
        self._cache: TTLCache[Key, Snapshot] | None = TTLCache(maxsize=1_000_000, ttl=ttl) if ttl > 0 else None
        self._inflight: dict[Key, Future[Snapshot]] = {}
        self._last_success: dict[Key, float] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="drs-refresh")
        self.refreshes = 0
        self.timeouts = 0

    def close(self) -> None:
        """Stop accepting refreshes; running ones are abandoned."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def get_many(self, keys: Sequence[Key], deadline: float) -> list[Snapshot]:
        """A snapshot for every key, waiting for refreshes until ``deadline`` (monotonic).

        A key whose refresh is not done by then is reported as failed with ``scrape_timeout``;
        its refresh goes on and its result serves the next scrape.
        """
        started = time.monotonic()
        ready: dict[Key, Snapshot] = {}
        waiting: dict[Key, Future[Snapshot]] = {}
        with self._lock:
            for key in keys:
                cached = self._cache.get(key) if self._cache is not None else None
                if cached is not None:
                    ready[key] = cached
                    continue
                future = self._inflight.get(key)
                if future is None:
                    future = self._pool.submit(self._refresh, key)
                    self._inflight[key] = future
                waiting[key] = future
        if waiting:
            wait_all(list(waiting.values()), timeout=max(0.0, deadline - time.monotonic()))
        out: list[Snapshot] = []
        for key in keys:
            if key in ready:
                out.append(ready[key])
                continue
            future = waiting[key]
            if future.done() and not future.cancelled() and future.exception() is None:
                out.append(future.result())
            else:
                with self._lock:
                    self.timeouts += 1
                waited = time.monotonic() - started
                out.append(Snapshot(key, None, SCRAPE_TIMEOUT, time.time(), waited, self._last_success.get(key)))
        return out

    def _refresh(self, key: Key) -> Snapshot:
        job_id, object_type = key
        started = time.monotonic()
        data: ProgressData | None = None
        code: str | None = None
        try:
            data = self._fetch(job_id, object_type, started + self.refresh_timeout)
        except DRSAPIError as err:
            code = err.error_code
            log.warning("refresh of job %s type %s failed: %s", job_id, object_type, err)
        except Exception:
            code = "internal_error"
            log.exception("refresh of job %s type %s failed unexpectedly", job_id, object_type)
        now = time.time()
        with self._lock:
            if data is not None:
                self._last_success[key] = now
            snapshot = Snapshot(key, data, code, now, time.monotonic() - started, self._last_success.get(key))
            if self._cache is not None:
                self._cache[key] = snapshot
            self._inflight.pop(key, None)
            self.refreshes += 1
        return snapshot
