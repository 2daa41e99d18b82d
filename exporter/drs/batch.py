"""Answers of the v3 batch APIs (``{"jobs": [ids]}`` in, ``{"results": [...]}`` out), entry by entry.

A batch answer holds one entry per job asked for. An entry that carries its own ``error_code``
(a job not found, a job whose query failed) marks that job only: the others of the batch keep
their values. Such entries, and jobs the answer left out, are in ``Batch.errors``; nothing here
counts them in ``api_errors_total`` (the HTTP call itself succeeded): the caller does, with
``ApiStats.error(operation, job_id, code)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from ..config.values import JobId
from .errors import INVALID_RESPONSE, api_code
from .fields import first, invalid, json_object, text

T = TypeVar("T")
MISSING = "missing_entry"  # asked for, not in the answer


@dataclass(frozen=True)
class EntryError:
    """One job's failure inside an otherwise successful batch answer."""

    job_id: str
    error_code: str  # the API's code (bounded like every error code), ``missing_entry`` or ``invalid_response``
    error_msg: str = ""
    # The whole call for this job's chunk failed: the transport counted that already, once per
    # attempt. Only the other errors (the entry's own, a missing entry) are for the caller to count.
    call_failed: bool = False


@dataclass(frozen=True)
class Batch(Generic[T]):
    """Per-job values of one or more batch calls, and the jobs that got none (with why)."""

    values: Mapping[str, T] = field(default_factory=lambda: MappingProxyType({}))
    errors: Mapping[str, EntryError] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, values: dict[str, T], errors: dict[str, EntryError]) -> Batch[T]:
        """A batch from plain dicts (kept read-only)."""
        return cls(MappingProxyType(dict(values)), MappingProxyType(dict(errors)))

    def merged(self, other: Batch[T]) -> Batch[T]:
        """This batch and ``other``: a value in either wins over an error in the other."""
        values = {**self.values, **other.values}
        errors = {k: v for k, v in {**self.errors, **other.errors}.items() if k not in values}
        return Batch.of(values, errors)


def entry_error(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(code, message)`` when the entry carries a non-empty error code (either message spelling)."""
    code = item.get("error_code")
    if not isinstance(code, str) or not code.strip():
        return None
    return api_code(code.strip()), text(first(item, "error_msg", "error_message"), 300)


def parse_batch(
    body: Any,
    asked: Iterable[str],
    operation: str,
    parse: Callable[[str, dict[str, Any]], T | None],
    *,
    id_keys: tuple[str, ...] = ("job_id", "id"),
    data_key: str | None = None,
) -> Batch[T]:
    """Entries of a batch answer: ``parse(job_id, item)`` per entry of a job asked for.

    The answer must be an object with a ``results`` list (else ``invalid_response``); entries
    that are no object, name no job asked for, or that ``parse`` refuses (None) are left out;
    a job without a usable entry is an error of that job. An entry with an ``error_code`` is that
    job's error, unless it also carries ``data_key`` (batch-detail's ``status``): then the code is
    the job's own last error, data like the rest, for ``parse`` to keep.
    """
    answer = json_object(body, operation)
    results = answer.get("results")
    if not isinstance(results, list):
        raise invalid("results is not a list", operation, answer)
    wanted = set(asked)
    values: dict[str, T] = {}
    errors: dict[str, EntryError] = {}
    for item in results:
        if not isinstance(item, dict):
            continue
        job_id = first(item, *id_keys)
        if not isinstance(job_id, str) or job_id not in wanted or not JobId.pattern.fullmatch(job_id):
            continue
        failed = entry_error(item)
        if failed is not None and (data_key is None or item.get(data_key) is None):
            errors[job_id] = EntryError(job_id, *failed)
            continue
        value = parse(job_id, item)
        if value is None:
            errors[job_id] = EntryError(job_id, INVALID_RESPONSE, "entry of the wrong shape")
        else:
            values[job_id] = value
            errors.pop(job_id, None)
    for job_id in wanted - values.keys() - errors.keys():
        errors[job_id] = EntryError(job_id, MISSING, "not in the answer")
    return Batch.of(values, errors)


def chunks(job_ids: Iterable[str], size: int) -> list[list[str]]:
    """Distinct ``job_ids`` in order, ``size`` per call."""
    ids = list(dict.fromkeys(job_ids))
    return [ids[i : i + size] for i in range(0, len(ids), size)]
