"""Injected misbehaviour: the API-wide faults and the names of per-job faults."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Misbehaviour of one job's progress-data answers (scenario `fault:` or POST /_sim/jobs/{id}).
FAULTS = (
    "timeout",  # answers after 5 s
    "reset",  # closes the connection without an answer
    "status:500",
    "status:502",
    "status:503",
    "status:504",  # DRS/gateway JSON error bodies
    "plain:500",
    "plain:502",
    "plain:503",
    "plain:504",  # the status and no body
    "html",  # 502 with an HTML error page
    "malformed",  # 200 with JSON cut in half
    "truncated",  # 200 whose body is shorter than its Content-Length
    "oversize",  # 200 with a body of several MiB
    "count_larger",  # count three times the objects: paging ends on an empty page
    "count_smaller",  # count 1 while pages carry every object
    "count_negative",
    "count_string",
    "endless",  # count of a billion objects
    "repeat_rows",  # every page after the first starts with the previous page's last row
    "odd_progress",  # progress negative, over 100, float, string, null, missing, garbage
    "missing_keys",  # rows without some name fields
    "control_chars",  # names with control characters and invalid UTF-8 bytes
    "create_time_garbage",
    "expire_token_mid_paging",  # every IAM token expires when the second page is asked for
    "skew",  # 401 APIGW.0303 as for a skewed X-Sdk-Date
    "trickle",  # 200 whose body arrives one byte every 0.25 s
    "slow_headers",  # the status line, then one header byte every 0.25 s (never a whole header)
    "gzip_empty_blocks",  # 200, gzip, then an empty deflate block every 0.25 s (never any output)
    "redirect",  # 302 to another loopback port, which records the credential headers it gets
    "count_grows",  # the first page reports count 500 less than the later pages (objects added while paging)
    "empty_page_once",  # every page after the first is empty when first asked, whole when asked again
    "short_page",  # every page after the first is empty, however often asked (count unchanged)
    "first_page_invalid",  # every row of the first page has progress null
    "garbage_error_code",  # 400 with an error_code that is no API code (free text)
    "reject_token",  # 403 DRS.M00100 "invalid token" for this job only, whatever token (others work)
    "deep_json",  # 200 whose JSON nests 5000 arrays deep
    "huge_create_time",  # 200 whose create_time is an integer of 400 digits
)
ODD_PROGRESS: tuple[Any, ...] = (-5, 150, 55.5, "42", None, "missing", "abc")


@dataclass
class Faults:
    """Injected misbehaviour, applied to API requests (not to the ``/_sim`` admin endpoints)."""

    latency_ms: float = 0.0
    rate_429: float = 0.0
    retry_after: str = "1"
    rate_5xx: float = 0.0
    rate_malformed: float = 0.0
    throttle_next: int = 0  # the next N API requests get 429, whatever the rate
    rate_list_error: float = 0.0  # share of job-list requests answered 500
    iam_error_next: int = 0  # the next N IAM logins get 503 APIGW.0613
    job_progress_error: bool = False  # batch progress and job progress answer 500
    iam_slow_headers: bool = False  # IAM logins send the status line, then one header byte every 0.25 s
    list_slow_headers: bool = False  # job-list requests send the status line, then one header byte every 0.25 s
    reject_tokens: bool = False  # every DRS request with an IAM token gets 403 DRS.M00100 (logins still work)


def apply_faults(faults: Faults, changes: dict[str, Any]) -> Faults:
    """A copy of ``faults`` with ``changes`` applied; unknown keys are an error."""
    known = Faults.__dataclass_fields__
    for key in changes:
        if key not in known:
            raise ValueError(f"unknown fault {key!r}")
    merged = {**faults.__dict__, **changes}
    merged["retry_after"] = str(merged["retry_after"])
    for key in ("throttle_next", "iam_error_next"):
        merged[key] = int(merged[key])
        if merged[key] < 0:
            raise ValueError(f"fault {key} must be >= 0")
    for key in ("job_progress_error", "iam_slow_headers", "list_slow_headers", "reject_tokens"):
        merged[key] = bool(merged[key])
    for key in ("latency_ms", "rate_429", "rate_5xx", "rate_malformed", "rate_list_error"):
        merged[key] = float(merged[key])
        if not math.isfinite(merged[key]) or merged[key] < 0:
            raise ValueError(f"fault {key} must be a number >= 0")
    return Faults(**merged)
