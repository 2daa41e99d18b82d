"""Client for the DRS progress-data API: paging, validation and merging of pages."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from typing import Any, TypeVar

import requests

from ..base.deadline import Deadline
from ..base.fairpool import FairPool
from ..base.objecttypes import OBJECT_TYPES
from .errors import DEADLINE_EXCEEDED, PAGE_CAP_EXCEEDED, DRSAPIError
from .progress import CompactRows, Names, Page, ProgressData, parse_page, parse_page_bytes
from .transport import Transport

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000
OPERATION = "show_progress_data"
T = TypeVar("T")


def endpoint_for_region(region: str) -> str:
    """The DRS endpoint of a region (``.eu`` for the EU sovereign region)."""
    suffix = "myhuaweicloud.eu" if region == "eu-west-101" else "myhuaweicloud.com"
    return f"https://drs.{region}.{suffix}"


class DRSClient:
    """Reads progress data for (job, object type) pairs of one project."""

    def __init__(
        self,
        transport: Transport,
        auth: requests.auth.AuthBase,
        endpoint: str,
        project_id: str,
        *,
        page_size: int = MAX_PAGE_SIZE,
        max_pages: int = 1000,
        page_workers: int = 8,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.transport = transport
        self.auth = auth
        self.endpoint = endpoint.rstrip("/")
        self.project_id = project_id
        self.page_size = page_size
        self.max_pages = max_pages
        self._pool = FairPool(page_workers, "drs-page")

    def submit(self, key: Hashable, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` in the page pool, queued per ``key`` so that keys take turns."""
        return self._pool.submit(key, fn, *args)

    def close(self) -> None:
        """Stop the page pool and close connections."""
        self._pool.shutdown()
        self.transport.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        deadline: Deadline | float,
        version: str = "v5",
        job_id: str = "",
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        parse: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Another DRS API of this project: ``path`` below ``/{version}/{project_id}``; the JSON body back.

        ``parse`` validates the body within the attempt: an answer of the wrong shape is a failed call.
        """
        reply = self.transport.request(
            method,
            f"{self.endpoint}/{version}/{self.project_id}{path}",
            operation=operation,
            job_id=job_id,
            params=params,
            json_body=json_body,
            auth=self.auth,
            deadline=deadline,
            project=self.project_id,
            parse=parse,
        )
        return reply.body

    def _url(self, job_id: str, object_type: str) -> str:
        return f"{self.endpoint}/v5/{self.project_id}/jobs/{job_id}/progress-data/{object_type}"

    def fetch_page(
        self, job_id: str, object_type: str, offset: int, *, deadline: Deadline | float, search_name: str | None = None
    ) -> Page:
        """One page at item ``offset``."""
        params: dict[str, str | int] = {"offset": offset, "limit": self.page_size}
        if search_name:
            params["search_name"] = search_name
        reply = self.transport.request(
            "GET",
            self._url(job_id, object_type),
            operation=OPERATION,
            job_id=job_id,
            params=params,
            auth=self.auth,
            deadline=deadline,
            project=self.project_id,
            parse=parse_page,
            parse_bytes=parse_page_bytes,
        )
        page: Page = reply.body
        return page

    def progress_data(
        self, job_id: str, object_type: str, *, deadline: Deadline | float, search_name: str | None = None
    ) -> ProgressData:
        """Every object of the job and type, all pages merged and de-duplicated.

        Pages after the first are fetched concurrently once the first has told ``count``,
        stepping by the items the first page held (valid or not). When a page reports a
        larger ``count``, paging goes on to it. An empty or short page before ``count`` is asked
        again once; if it stays short the listing ends there (``ended_early``), and
        ``objects_listed`` falls short of ``objects``. More than ``max_pages`` pages is an
        error rather than a partial answer.
        """
        if object_type not in OBJECT_TYPES:
            raise ValueError(f"unknown object type {object_type!r}")
        deadline = Deadline.of(deadline)
        # The first page sets the stride, so only an empty one is short.
        first = self._page_checked(job_id, object_type, 0, 1, deadline, search_name)
        pages: dict[int, Page] = {0: first}
        # A server that caps the page below our limit would make fixed strides skip items, so
        # step by what the first page really held (as Huawei's Terraform provider does).
        stride = min(self.page_size, first.items) if first.items else self.page_size
        count = first.count
        while not first.short:  # bounded: every round fetches new offsets, at most max_pages in all
            total = math.ceil(count / stride)
            if total > self.max_pages:
                raise DRSAPIError(
                    PAGE_CAP_EXCEEDED,
                    f"{count} objects need {total} pages, over the cap of {self.max_pages}",
                    operation=OPERATION,
                )
            offsets = [stride * i for i in range(1, total) if stride * i not in pages]
            if not offsets:
                break
            pages.update(self._fetch_rest(job_id, object_type, offsets, stride, deadline, search_name))
            if any(p.short for p in pages.values()):
                break
            # The page furthest in has the latest word on count (objects may come while paging).
            count = pages[max(pages)].count
        data = merge([pages[offset] for offset in sorted(pages)])
        data.count = pages[max(pages)].count if len(pages) > 1 else first.count
        if data.ended_early:
            offset = min(o for o, p in pages.items() if p.short)
            log.warning(
                "job %s type %s: the page at offset %d was empty or short before count %d, twice: %d of the "
                "objects listed",
                job_id,
                object_type,
                offset,
                data.count,
                data.listed,
            )
        return data

    def _page_checked(
        self,
        job_id: str,
        object_type: str,
        offset: int,
        stride: int,
        deadline: Deadline,
        search_name: str | None,
    ) -> Page:
        """The page at ``offset``, asked twice when it is empty or short before its ``count``."""
        page = self.fetch_page(job_id, object_type, offset, deadline=deadline, search_name=search_name)
        for attempt in range(2):
            if page.items >= stride or offset + page.items >= page.count:
                return page
            if attempt == 0:
                page = self.fetch_page(job_id, object_type, offset, deadline=deadline, search_name=search_name)
        page.short = True
        return page

    def _fetch_rest(
        self,
        job_id: str,
        object_type: str,
        offsets: list[int],
        stride: int,
        deadline: Deadline,
        search_name: str | None,
    ) -> dict[int, Page]:
        ended = threading.Event()  # set by a page that stayed short: nothing is asked beyond it

        def one(offset: int) -> Page | None:
            if ended.is_set():
                return None
            page = self._page_checked(job_id, object_type, offset, stride, deadline, search_name)
            if page.short:
                ended.set()
            return page

        # Queued per key: pages of different keys take turns for the pool's threads.
        key = (job_id, object_type, search_name)
        futures = {offset: self._pool.submit(key, one, offset) for offset in offsets}
        try:
            done, pending = wait(list(futures.values()), timeout=deadline.remaining(), return_when=FIRST_EXCEPTION)
            for future in done:
                exc = future.exception()
                if exc is not None:
                    raise exc
            if pending:
                raise DRSAPIError(DEADLINE_EXCEEDED, "pages not fetched in time", operation=OPERATION)
        finally:
            ended.set()
            for future in futures.values():
                future.cancel()
            # Pages already running end before the refresh does (bounded by its deadline), so
            # that no request of a finished refresh is still holding a transport slot.
            wait(list(futures.values()), timeout=deadline.remaining())
        return {offset: page for offset, future in futures.items() if (page := future.result()) is not None}


def merge(pages: list[Page]) -> ProgressData:
    """Join pages in offset order; a row seen twice (rows shift while paging) keeps its latest value."""
    first = pages[0]
    seen = sum(len(page.names) for page in pages)
    skipped = sum(page.skipped_rows for page in pages)
    if len(pages) == 1 and len(set(first.names)) == seen:
        # The common case, one page without repeats: its columns are the rows (a set is cheaper than a dict).
        rows, distinct = CompactRows.from_columns(first.names, first.progress), seen
    else:
        by_name: dict[Names, float] = {}
        for page in pages:
            by_name.update(zip(page.names, page.progress, strict=True))
        rows, distinct = CompactRows.from_names(by_name), len(by_name)
    return ProgressData(
        count=first.count,
        create_time=first.create_time,
        rows=rows,
        skipped_rows=skipped,
        duplicate_rows=seen - distinct,
        pages=len(pages),
        listed=distinct + skipped,
        ended_early=any(p.short for p in pages),
    )
