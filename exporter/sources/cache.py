"""Snapshots of progress data per (job, object type), cached for a TTL with one refresh in flight per key."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass

from cachetools import TTLCache

from ..base.deadline import Deadline
from ..base.fairpool import FairPool
from ..drs.errors import DRSAPIError, log_api_error
from ..drs.progress import ProgressData

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (job_id, object_type)
Fetch = Callable[[str, str, Deadline], ProgressData]  # job_id, object_type, deadline -> data
# Called once per refresh with the new snapshot and the key's previous one with data (the renderer
# renders ahead and keeps what it made; the snapshot carries nothing of it).
Prepare = Callable[["Snapshot", "Snapshot | None"], None]

SCRAPE_TIMEOUT = "scrape_timeout"
TIMEOUT_MESSAGE = "the refresh did not finish within the scrape's budget"


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The outcome of one refresh of one key: data on success, an error code (and message) otherwise.

    Compared and hashed by identity: the renderer keeps what it made of each snapshot by it.
    """

    key: Key
    data: ProgressData | None
    error_code: str | None
    refreshed_at: float  # Unix seconds
    duration: float
    last_success: float | None  # Unix seconds of the latest successful refresh, this one or earlier
    # What explains a failure: the API's message, already scrubbed of secrets and capped (errors._clean).
    error_message: str = ""

    @property
    def up(self) -> bool:
        """True when this refresh succeeded."""
        return self.data is not None


@dataclass(frozen=True)
class Kept:
    """What a cache knew of some keys, handed to its successor on a reload."""

    latest: dict[Key, Snapshot]
    last_data: dict[Key, Snapshot]
    last_success: dict[Key, float]
    counters: tuple[int, int, int]  # refreshes, timeouts, stale serves
    inflight: dict[Key, Future[Snapshot]]  # refreshes running: the successor waits for them, not calls again


class SnapshotCache:
    """Refreshes keys in a bounded pool and caches each outcome (success or failure) for ``ttl`` seconds.

    Failures are cached too, so a broken job does not cost an API call per scrape. Callers
    that ask for a key while its refresh is running wait for that same refresh, until their
    deadline; then the key's last snapshot is served if it succeeded and is younger than
    ``max_staleness`` (stale-while-revalidate), else a ``scrape_timeout`` failure.

    A refresh has two stages: fetching, in the pool of ``max_concurrency`` threads, and
    ``prepare`` (rendering), in one thread of its own that holds back while half or more of the
    fetch slots are busy: the GIL lets one thread compute at a time, and during a burst of refreshes (a
    cold start) fetches waiting for CPU would leave API slots idle. It holds back for a second at
    most, and not again until fewer fetches run: fetches busy that long wait on the network. A refresh counts as done,
    for waiting callers, when both stages are.

    Keys come in groups (``group``: the project of a job): the fetch pool takes the groups in turn,
    a group runs more than ``group_limit`` fetches at once only while no other group waits, and one
    running fewer than ``group_reserve`` gets a thread at once, so that one project whose endpoint
    hangs cannot hold every thread while the other projects' keys wait.
    """

    # How long preparing may be held back by busy fetches before it goes ahead anyway.
    PREPARE_YIELD_SECONDS = 1.0

    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl: float,
        max_concurrency: int,
        refresh_timeout: float,
        prepare: Prepare | None = None,
        max_staleness: float | None = None,
        group: Callable[[Key], Hashable] | None = None,
        group_limit: int | None = None,
        group_reserve: int = 0,
    ) -> None:
        self._fetch = fetch
        self._group = group or (lambda key: None)
        self._prepare = prepare
        self.ttl = ttl
        self.refresh_timeout = refresh_timeout
        self.max_staleness = 2 * ttl + refresh_timeout if max_staleness is None else max_staleness
        self._lock = threading.Lock()
        self._fetch_slot_free = threading.Condition(self._lock)
        self._fetching = 0
        # Fetches running from which rendering holds back: a burst, not one slow request.
        self._busy_fetches = max(1, max_concurrency // 2)
        # Set when rendering waited out PREPARE_YIELD_SECONDS: fetches busy that long are waiting on
        # the network (a project that hangs), not the CPU; rendering stops holding back until
        # fewer run, or every key would wait that long in turn behind them.
        self._busy_for_long = False
        self._clock_skew = 0.0  # see adopt()
        self._cache: TTLCache[Key, Snapshot] | None = (
            TTLCache(maxsize=1_000_000, ttl=ttl, timer=self._clock) if ttl > 0 else None
        )
        self._inflight: dict[Key, Future[Snapshot]] = {}
        self._last_success: dict[Key, float] = {}
        self._last_data: dict[Key, Snapshot] = {}
        self._latest: dict[Key, Snapshot] = {}  # the last stored snapshot, failed or not
        self._wanted: frozenset[Key] | None = None  # set by retain(): keys outside it are not stored
        self._pool = FairPool(max_concurrency, "drs-refresh", group_limit, group_reserve)
        self._prepare_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drs-render")
        self.refreshes = 0
        self.timeouts = 0
        self.stale_served = 0

    def close(self) -> None:
        """Stop accepting refreshes; running ones are abandoned."""
        self._pool.shutdown()
        self._prepare_pool.shutdown(wait=False, cancel_futures=True)

    def retain(self, keys: Sequence[Key]) -> None:
        """Forget every key not in ``keys`` (a job no longer listed): its snapshots and rendered bytes go."""
        wanted = frozenset(keys)
        with self._lock:
            # A refresh running for a dropped key does not write it back when it ends; one still
            # queued is cancelled, so that it calls no API for a job that is gone.
            self._wanted = wanted
            for key in [k for k, f in self._inflight.items() if k not in wanted and f.cancel()]:
                del self._inflight[key]
            for store in (self._last_data, self._last_success, self._latest):
                for key in [k for k in store if k not in wanted]:
                    del store[key]
            if self._cache is not None:
                for key in [k for k in self._cache if k not in wanted]:
                    del self._cache[key]

    def kept(self, keys: Iterable[Key]) -> Kept:
        """What is known of ``keys``, for a successor cache to :meth:`adopt` (a reload).

        A key whose last refresh failed is not kept (its last data and success time are): the
        failure may be what the new configuration fixes (credentials, limits), so the successor
        refreshes the key at once rather than serve the old error for the rest of its TTL.
        """
        with self._lock:
            return Kept(
                {k: s for k in keys if (s := self._latest.get(k)) is not None and s.up},
                {k: s for k in keys if (s := self._last_data.get(k)) is not None},
                {k: t for k in keys if (t := self._last_success.get(k)) is not None},
                (self.refreshes, self.timeouts, self.stale_served),
                {k: f for k in keys if (f := self._inflight.get(k)) is not None},
            )

    def adopt(self, kept: Kept, carry: Callable[[Snapshot], None] | None = None) -> None:
        """Take over what a predecessor knew (before the first scrape): a reload keeps the unchanged jobs.

        A snapshot younger than the TTL stays cached for what is left of its TTL, not longer, and
        the counters go on from the predecessor's. Renderings are the renderer's to carry over
        (``carry`` is called with each snapshot of a refresh taken over, before it is stored).
        A refresh the predecessor is running is taken over: scrapes wait for it rather than call
        the API again, and its result is kept here when it succeeds.
        """
        now = time.time()
        with self._lock:
            self._latest.update(kept.latest)
            self._last_data.update(kept.last_data)
            self._last_success.update(kept.last_success)
            self.refreshes, self.timeouts, self.stale_served = kept.counters
            cache = self._cache
            for key, snapshot in self._latest.items():
                age = max(0.0, now - snapshot.refreshed_at)
                if cache is not None and age < self.ttl:
                    # Stored as if stored ``age`` seconds ago, so that it expires when it would have.
                    self._clock_skew = -age
                    try:
                        cache[key] = snapshot
                    finally:
                        self._clock_skew = 0.0
        for key, future in kept.inflight.items():
            with self._lock:
                self._inflight.setdefault(key, future)
            future.add_done_callback(functools.partial(self._handed_over, key, carry))

    def _handed_over(self, key: Key, carry: Callable[[Snapshot], None] | None, future: Future[Snapshot]) -> None:
        """A predecessor's refresh of ``key`` ended: keep a success as if this cache had refreshed it."""
        snapshot = future.result() if not future.cancelled() and future.exception() is None else None
        if snapshot is not None and snapshot.up and carry is not None:
            carry(snapshot)
        with self._lock:
            if self._inflight.get(key) is future:
                del self._inflight[key]
            if snapshot is None or not snapshot.up or not self._keeps(key):
                return  # a failure is not kept (see kept()): the next scrape refreshes the key
            latest = self._latest.get(key)
            if latest is None or latest.refreshed_at < snapshot.refreshed_at:
                self._last_data[key] = self._latest[key] = snapshot
                self._last_success[key] = snapshot.refreshed_at
                if self._cache is not None:
                    self._cache[key] = snapshot

    def _clock(self) -> float:
        return time.monotonic() + self._clock_skew

    def latest(self, keys: Sequence[Key]) -> list[Snapshot | None]:
        """The last stored snapshot of each key (None: never refreshed), without refreshing anything."""
        with self._lock:
            return [self._latest.get(key) for key in keys]

    def in_flight(self) -> int:
        """How many refreshes are running now."""
        with self._lock:
            return len(self._inflight)

    def refreshing(self, keys: Sequence[Key]) -> set[Key]:
        """Those of ``keys`` whose refresh is running now."""
        with self._lock:
            return {key for key in keys if key in self._inflight}

    def get_many(self, keys: Sequence[Key], deadline: Deadline | float) -> list[Snapshot]:
        """A snapshot for every key, waiting for refreshes until ``deadline``.

        A key whose refresh is not done by then keeps its last snapshot while that succeeded
        and is younger than ``max_staleness``; otherwise it is reported as failed with
        ``scrape_timeout``. Its refresh goes on and its result serves the next scrape.
        """
        deadline = Deadline.of(deadline)
        started = time.monotonic()
        ready, waiting = self._start(keys)
        if waiting:
            wait_all(list(waiting.values()), timeout=deadline.remaining())
        out: list[Snapshot] = []
        for key in keys:
            if key in ready:
                out.append(ready[key])
                continue
            future = waiting[key]
            if future.done() and not future.cancelled() and future.exception() is None:
                out.append(future.result())
                continue
            with self._lock:
                stale = self._latest.get(key)
                if stale is not None and stale.up and time.time() - stale.refreshed_at <= self.max_staleness:
                    self.stale_served += 1
                    out.append(stale)  # the same object: its rendering and timestamps tell its age
                    continue
                self.timeouts += 1
                last_success = self._last_success.get(key)
            waited = time.monotonic() - started
            out.append(Snapshot(key, None, SCRAPE_TIMEOUT, time.time(), waited, last_success, TIMEOUT_MESSAGE))
        return out

    def start(self, keys: Sequence[Key]) -> None:
        """Start the refreshes :meth:`get_many` would, without waiting for them."""
        self._start(keys)

    def _start(self, keys: Sequence[Key]) -> tuple[dict[Key, Snapshot], dict[Key, Future[Snapshot]]]:
        """The cached snapshots of ``keys``, and the refreshes (started now or running) of the others."""
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
                    future = Future()
                    self._inflight[key] = future
                    self._pool.submit(self._group(key), self._refresh, key, future)
                waiting[key] = future
        return ready, waiting

    def _refresh(self, key: Key, done: Future[Snapshot]) -> None:
        """Stage one, in the pool: fetch, then hand the snapshot to stage two."""
        job_id, object_type = key
        with self._lock:
            if not done.set_running_or_notify_cancel():
                return  # queued, then dropped by retain() (the job is gone): no API call for it
            self._fetching += 1
        started = time.monotonic()
        data: ProgressData | None = None
        code: str | None = None
        message = ""
        try:
            data = self._fetch(job_id, object_type, Deadline(started + self.refresh_timeout))
        except DRSAPIError as err:
            code, message = err.error_code, err.error_msg
            log_api_error(log, err, "refresh of job %s type %s failed", job_id, object_type)
        except Exception:
            code, message = "internal_error", "unexpected error in the exporter; see its log"
            log.exception("refresh of job %s type %s failed unexpectedly", job_id, object_type)
        finally:
            with self._lock:
                self._fetching -= 1
                if self._fetching < self._busy_fetches:
                    self._busy_for_long = False
                self._fetch_slot_free.notify_all()
        duration = time.monotonic() - started
        if data is not None:
            log.debug(
                "refreshed job %s type %s: %d objects, %d pages in %.3fs",
                job_id,
                object_type,
                len(data.rows),
                data.pages,
                duration,
            )
        now = time.time()
        with self._lock:
            if data is not None and self._keeps(key):
                self._last_success[key] = now
            last_success = now if data is not None else self._last_success.get(key)
        snapshot = Snapshot(key, data, code, now, duration, last_success, message)
        if self._prepare is None:
            self._store(key, snapshot, done)
        else:
            try:
                self._prepare_pool.submit(self._finish, key, snapshot, done)
            except RuntimeError as exc:  # shutting down
                with self._lock:
                    self._inflight.pop(key, None)
                done.set_exception(exc)

    def _finish(self, key: Key, snapshot: Snapshot, done: Future[Snapshot]) -> None:
        """Stage two, in the render thread: prepare once fetching is no burst, then store."""
        with self._lock:
            if not self._busy_for_long:
                self._busy_for_long = not self._fetch_slot_free.wait_for(
                    lambda: self._fetching < self._busy_fetches, timeout=self.PREPARE_YIELD_SECONDS
                )
            previous = self._last_data.get(key)
        if self._prepare is not None:
            try:
                self._prepare(snapshot, previous)
            except Exception:
                log.exception("preparing job %s type %s failed", *key)
        self._store(key, snapshot, done)

    def _keeps(self, key: Key) -> bool:
        """False for a key retain() dropped (lock held)."""
        return self._wanted is None or key in self._wanted

    def _store(self, key: Key, snapshot: Snapshot, done: Future[Snapshot]) -> None:
        with self._lock:
            if self._keeps(key):
                if snapshot.data is not None:
                    self._last_data[key] = snapshot
                self._latest[key] = snapshot
                if self._cache is not None:
                    self._cache[key] = snapshot
            self._inflight.pop(key, None)
            self.refreshes += 1
        done.set_result(snapshot)
