"""The status page's lines of the replication-health sources (issue 24): monitor data, RPO/RTO, job details, ...

Every text from DRS is escaped (:mod:`.pagetext`); customer data (SQL, DDL text) is never part of them.
"""

from __future__ import annotations

from ..drs.ddl import TEXT_LIMIT
from ..sources.perjob import STALE
from .details_status import JobDetailsStatus
from .health_status import DdlStatus, DirtyStatus, HealthCompareStatus, MonitorStatus, RpoRtoStatus
from .pagetext import _attr, _count, _percent, _span, _text, _utc

# What the failure time of an expiry estimate rests on (JobDetailsStatus.failed_since).
FAILED_SINCE = {
    "update_time": " (the job's last update in DRS)",
    "first_seen": " (when this exporter first saw it failed: it may have failed earlier, so this may be late)",
}
DDL_TEXT_SHOWN = TEXT_LIMIT + 1  # the DDL's cut start and its "…" (cut when read: drs/ddl.py)


def _reading_failed(up: bool, error_code: str | None) -> str:
    """What a background source's line adds when its last reading failed, or its data aged out."""
    if up:
        return ""
    if error_code == STALE:
        return f" — no data: the last reading is older than max_staleness (<code>{STALE}</code>)"
    return f" — reading failed: <code>{_text(error_code or '')}</code>"


def _monitor(m: MonitorStatus | None) -> str:
    """A job's endpoints as DRS's monitor data shows them: up or down, and the delay on each side."""
    if m is None:
        return ""
    down = _reading_failed(m.up, m.error_code)
    sides = [
        f'{name} <span class="state {"ok" if side.up else "failing"}">{"up" if side.up else "down"}</span>'
        f", delay {_span(side.delay_seconds)}"
        for name, side in (("source", m.source), ("target", m.target))
        if side is not None and side.up is not None
    ]
    return f"<h4>Endpoints (monitor data)</h4><p>{'; '.join(sides) or 'no data'}{down}</p>"


def _lag(seconds: float | None) -> str:
    """RPO and RTO are often below a few seconds: tenths there, as :func:`_span` above."""
    return f"{seconds:.1f} s" if seconds is not None and seconds < 10 else _span(seconds)


def _rpo_rto(r: RpoRtoStatus | None) -> str:
    """A DR job's RPO and RTO, and why the last reading failed."""
    if r is None:
        return ""
    down = _reading_failed(r.up, r.error_code)
    values = (
        f"RPO {_lag(r.rpo_seconds)}, RTO {_lag(r.rto_seconds)}"
        if r.rpo_seconds is not None or r.rto_seconds is not None
        else "no data"
    )
    return f'<h4>Disaster recovery</h4><p class="rpo-rto">{values}{down}</p>'


def _job_details(d: JobDetailsStatus | None) -> str:
    """Why the job failed (DRS's reason, escaped), when it ends by itself, and when its full phase ended."""
    if d is None:
        return ""
    down = _reading_failed(d.up, d.error_code)
    lines = []
    if d.job_error_code is not None:
        message = f": {_text(d.error_message, 400)}" if d.error_message else ""
        lines.append(f'<li class="failing">DRS error <code>{_text(d.job_error_code)}</code>{message}</li>')
    if d.failed_reason:
        lines.append(f'<li class="failing">Failure reason: {_text(d.failed_reason, 500)}</li>')
    if d.failed_expiry_timestamp_seconds is not None:
        days = f"{d.expired_days} days{' (assumed: DRS does not say)' if d.expired_days_assumed else ''}"
        lines.append(
            f"<li>Ends by itself (cannot be resumed after) about {_utc(d.failed_expiry_timestamp_seconds)}: "
            f"failed about {_utc(d.failed_timestamp_seconds or 0)}{FAILED_SINCE.get(d.failed_since or '', '')}"
            f" + {days}</li>"
        )
    if d.full_transfer_completed_timestamp_seconds is not None:
        lines.append(f"<li>Full phase ended {_utc(d.full_transfer_completed_timestamp_seconds)}</li>")
    if not lines and not down:
        return ""
    return f'<h4>Job details</h4><ul class="details">{"".join(lines) or "<li>no data</li>"}</ul>{down}'


def _dirty(d: DirtyStatus | None) -> str:
    """A job's abnormal rows per phase over the window (counts only: their SQL is never read)."""
    if d is None:
        return ""
    down = _reading_failed(d.up, d.error_code)
    phases = [
        f'{p.phase} <span class="state {"failing" if p.rows else "ok"}">'
        f"{'' if p.exact else '≥ '}{_count(p.rows)}</span>{' (listing capped)' if p.capped else ''}"
        for p in d.phases
    ]
    window = f" in the last {_span(d.window_seconds)}" if d.window_seconds is not None else ""
    return f"<h4>Abnormal rows{window}</h4><p>{'; '.join(phases) or 'no data'}{down}</p>"


def _ddl(d: DdlStatus | None) -> str:
    """A job's active DDL alarms: sequence number, time, result, and the DDL's start when the operator shows it."""
    if d is None:
        return ""
    down = _reading_failed(d.up, d.error_code)
    if d.active is None:
        return f"<h4>DDL alarms</h4><p>no data{down}</p>"
    failed = f", {d.failed} failed on the target" if d.failed else ""
    items = "".join(
        f"<li>#{a.seqno} {_utc(a.timestamp_seconds) if a.timestamp_seconds is not None else 'time unknown'} "
        f'<span class="state {"failing" if a.exe_result is False else "ok"}">'
        f"{'failed' if a.exe_result is False else 'applied' if a.exe_result else 'result unknown'}</span>"
        + (f" <code>{_text(a.text, DDL_TEXT_SHOWN)}</code>" if a.text is not None else "")
        + "</li>"
        for a in d.alarms
    )
    more = f"<li>and {d.active - len(d.alarms)} more</li>" if d.active > len(d.alarms) else ""
    listed = f'<ul class="ddl">{items}{more}</ul>' if items else ""
    return f"<h4>DDL alarms</h4><p>{d.active} active{failed}{down}</p>{listed}"


def _health_comparisons(h: HealthCompareStatus | None) -> str:
    """A job's scheduled comparisons: the policy, and the latest of each type with its status and times."""
    if h is None:
        return ""
    down = _reading_failed(h.up, h.error_code)
    p = h.policy
    if p is None:
        schedule = "schedule unknown"
    elif p.status == "OPEN":
        schedule = "scheduled" + (
            f", next {_utc(p.next_run_timestamp_seconds)}" if p.next_run_timestamp_seconds else ""
        )
    else:
        schedule = f"not scheduled ({_attr(p.status)})"
    runs = []
    for t in h.types:
        text = f"{_attr(t.compare_type)}: {_attr((t.status or 'none').lower())}"
        if t.progress_ratio is not None:
            text += f" {_percent(t.progress_ratio)}"
        if t.last_finished_timestamp_seconds is not None:
            text += f", last finished {_utc(t.last_finished_timestamp_seconds)}"
        runs.append(text)
    if h.inconsistent_object_types:
        runs.append("objects inconsistent: " + ", ".join(_attr(o) for o in h.inconsistent_object_types))
    return f"<h4>Scheduled comparisons</h4><p>{'; '.join([schedule, *runs])}{down}</p>"
