"""RPO and RTO of DR jobs (v3 ``POST /v3/{project_id}/jobs/batch-rpo-and-rto``, many jobs per call).

Answer (SDK ``BatchListRposAndRtosResponse``): ``{"count": n, "results": [{"job_id", "rpo_info",
"rto_info", "error_code", "error_msg"}]}`` with ``rpo_info``/``rto_info`` =
``{check_point, delay, gtid_set, time}``. RPO is the business database → DRS hop, RTO DRS → the
DR database. ``delay`` is a string; the SDK names no unit, the API page (drs_03_0117) says
milliseconds: a bare number is read as milliseconds unless the caller says ``delay_unit="s"``,
and a string with its own unit (``"3s"``) is read as written. ``time`` is ``yyyy-MM-dd HH:mm:ss``
without a zone, read as UTC (epoch and ISO-8601 forms are accepted too).

An entry with ``error_code`` marks that job only (see :mod:`exporter.drs.batch`).

Public API: :class:`RpoRto`, :class:`Lag`, :func:`parse_rpo_rto`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .batch import Batch, parse_batch
from .compare import timestamp
from .fields import seconds, text

OPERATION = "batch_rpo_rto"


@dataclass(frozen=True)
class Lag:
    """One hop's lag: how far behind, as of when, at which position."""

    delay_seconds: float | None
    time: float | None  # Unix seconds the figure is for
    check_point: str


@dataclass(frozen=True)
class RpoRto:
    """A DR job's RPO (source → DRS) and RTO (DRS → DR database); a hop DRS did not report is None."""

    job_id: str
    rpo: Lag | None
    rto: Lag | None

    @property
    def rpo_seconds(self) -> float | None:
        """RPO in seconds, None when unknown."""
        return self.rpo.delay_seconds if self.rpo is not None else None

    @property
    def rto_seconds(self) -> float | None:
        """RTO in seconds, None when unknown."""
        return self.rto.delay_seconds if self.rto is not None else None


def _lag(value: Any, unit: str) -> Lag | None:
    if not isinstance(value, dict):
        return None
    lag = Lag(seconds(value.get("delay"), unit), timestamp(value.get("time")), text(value.get("check_point")))
    return None if lag.delay_seconds is None and lag.time is None else lag


def parse_rpo_rto(body: Any, asked: list[str], operation: str = OPERATION, delay_unit: str = "ms") -> Batch[RpoRto]:
    """Per-job RPO/RTO of a batch answer; an entry with neither hop usable is that job's ``invalid_response``."""

    def one(job_id: str, item: dict[str, Any]) -> RpoRto | None:
        value = RpoRto(job_id, _lag(item.get("rpo_info"), delay_unit), _lag(item.get("rto_info"), delay_unit))
        return value if value.rpo is not None or value.rto is not None else None

    return parse_batch(body, asked, operation, one)
