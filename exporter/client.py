"""Client for the DRS progress-data API: paging, validation and merging of pages."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from operator import itemgetter
from typing import Any

import requests

from .errors import DEADLINE_EXCEEDED, PAGE_CAP_EXCEEDED, DRSAPIError
from .progress import OBJECT_TYPES, CompactRows, Page, ProgressData, parse_page
from .transport import Transport

MAX_PAGE_SIZE = 1000
_NAMES = itemgetter(0, 1, 2, 3)
_PROGRESS = itemgetter(4)
OPERATION = "show_progress_data"


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
        self._pool = ThreadPoolExecutor(max_workers=page_workers, thread_name_prefix="drs-page")

    def close(self) -> None:
        """Stop the page pool and close connections."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.transport.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        deadline: float,
        version: str = "v5",
        job_id: str = "",
        params: dict[str, Any] | None = None,
        json_body: Any = None,
    ) -> Any:
        """Another DRS API of this project: ``path`` below ``/{version}/{project_id}``; the JSON body back."""
        reply = self.transport.request(
            method,
            f"{self.endpoint}/{version}/{self.project_id}{path}",
            operation=operation,
            job_id=job_id,
            params=params,
            json_body=json_body,
            auth=self.auth,
            deadline=deadline,
        )
        return reply.body

    def _url(self, job_id: str, object_type: str) -> str:
        return f"{self.endpoint}/v5/{self.project_id}/jobs/{job_id}/progress-data/{object_type}"

    def fetch_page(
        self, job_id: str, object_type: str, offset: int, *, deadline: float, search_name: str | None = None
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
            parse=parse_page,
        )
        page: Page = reply.body
        return page

    def progress_data(
        self, job_id: str, object_type: str, *, deadline: float, search_name: str | None = None
    ) -> ProgressData:
        """Every object of the job and type, all pages merged and de-duplicated.

        Pages after the first are fetched concurrently once the first has told ``count``.
        Paging stops at ``count`` or at the first empty page; more than ``max_pages`` pages
        is an error rather than a partial answer.
        """
        if object_type not in OBJECT_TYPES:
            raise ValueError(f"unknown object type {object_type!r}")
        first = self.fetch_page(job_id, object_type, 0, deadline=deadline, search_name=search_name)
        pages: list[Page] = [first]
        if first.rows and first.count > len(first.rows) + first.skipped_rows:
            # A server that caps the page below our limit would make fixed strides skip items,
            # so step by what the first page really held (as Huawei's Terraform provider does).
            stride = min(self.page_size, len(first.rows) + first.skipped_rows)
            total = math.ceil(first.count / stride)
            if total > self.max_pages:
                raise DRSAPIError(
                    PAGE_CAP_EXCEEDED,
                    f"{first.count} objects need {total} pages, over the cap of {self.max_pages}",
                    operation=OPERATION,
                )
            offsets = [stride * i for i in range(1, total)]
            pages.extend(self._fetch_rest(job_id, object_type, offsets, deadline, search_name))
        return merge(pages)

    def _fetch_rest(
        self, job_id: str, object_type: str, offsets: list[int], deadline: float, search_name: str | None
    ) -> list[Page]:
        ended = threading.Event()  # set by the first empty page: nothing lies beyond it

        def one(offset: int) -> Page | None:
            if ended.is_set():
                return None
            page = self.fetch_page(job_id, object_type, offset, deadline=deadline, search_name=search_name)
            if not page.rows and not page.skipped_rows:
                ended.set()
            return page

        futures: list[Future[Page | None]] = [self._pool.submit(one, offset) for offset in offsets]
        try:
            done, pending = wait(futures, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_EXCEPTION)
            for future in done:
                exc = future.exception()
                if exc is not None:
                    raise exc
            if pending:
                raise DRSAPIError(DEADLINE_EXCEEDED, "pages not fetched in time", operation=OPERATION)
        finally:
            ended.set()
            for future in futures:
                future.cancel()
        return [page for page in (f.result() for f in futures) if page is not None]


def merge(pages: list[Page]) -> ProgressData:
    """Join pages in offset order; a row seen twice (rows shift while paging) keeps its latest value."""
    by_name: dict[tuple[str, str, str, str], float] = {}
    seen = 0
    for page in pages:
        # A row is (src_db, src_tb, dst_db, dst_tb, progress): its first four fields name it.
        by_name.update(zip(map(_NAMES, page.rows), map(_PROGRESS, page.rows), strict=True))
        seen += len(page.rows)
    first = pages[0]
    return ProgressData(
        count=first.count,
        create_time=first.create_time,
        rows=CompactRows.from_names(by_name),
        skipped_rows=sum(p.skipped_rows for p in pages),
        duplicate_rows=seen - len(by_name),
        pages=len(pages),
    )
