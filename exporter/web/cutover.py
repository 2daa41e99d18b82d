"""Cut-over readiness as the status page judges it: the rules' conditions, from the exporter's latest readings.

The recording rules (``alerts/cutover.py``, ``job_id:huaweicloud_drs_cutover_ready:bool``) and this
judge share one table of cases (``alerts/cutover_cases.yaml``, tests/test_cutover.py): for the same
state they give the same verdict and reasons. The page has no history, so it judges the delay as it
is now, not over the rules' window, and it does not read DDL alarms, abnormal rows or when DRS's
full phase ended yet: :data:`NOT_JUDGED` names what only Prometheus can judge, and the page says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..drs.compare import CompareRun
from ..sources.comparisons import JobComparisons

INCREMENTAL = "INCRE_TRANSFER_STARTED"
# The defaults of alerts.rules.Settings (cutover_*) and of the exporter's config (cutover_delay_seconds,
# cutover_comparison_max_age_seconds), which the page judges with.
DELAY_SECONDS = 60.0
WINDOW_SECONDS = 600.0
MAX_AGE_SECONDS = 86400.0
FINE_TABLES = ("consistent", "empty")
TYPE_NAMES = {"lines": "row", "contents": "value"}
# The reasons a job is not ready: the values of the rules' `reason` label (alerts/cutover.py).
REASONS = (
    "not_incremental",
    "progress_unknown",
    "full_incomplete",
    "delay",
    "comparison_unreadable",
    "comparison_missing",
    "comparison_running",
    "comparison_failed",
    "comparison_stale",
    "tables_not_consistent",
    "objects_inconsistent",
    "ddl_alarm",
    "dirty_rows",
)
# What Prometheus judges and this page cannot (yet): the delay over a window needs history; the
# replication-health readings (issue 24) are not read by the exporter yet.
NOT_JUDGED = ("delay_window", "ddl_alarm", "dirty_rows", "full_phase_end")
Block = Callable[[str, str], None]  # records a reason and its words


def limits(delay_seconds: float = DELAY_SECONDS) -> str:
    """What the page judges and what only Prometheus does, with the exporter's threshold."""
    return (
        f"This page judges the delay as it is now (below {delay_seconds:g} s); Prometheus's "
        "job_id:huaweicloud_drs_cutover_ready:bool also needs it below its cutover_delay_seconds for its "
        f"cutover_window ({WINDOW_SECONDS / 60:g} min by default). Active DDL alarms, abnormal rows and whether the "
        "comparisons finished after DRS's full phase are judged only there, from the replication-health metrics. "
        "Neither can see application-level checks, sequences, triggers or users."
    )


@dataclass(frozen=True)
class Reason:
    """One reason a job is not ready, and the facts behind it in words."""

    reason: str  # one of REASONS
    text: str


@dataclass(frozen=True)
class Cutover:
    """Whether a job is ready for cut-over, as far as the exporter's latest readings tell."""

    ready: bool
    reasons: list[Reason]  # in the order of REASONS; empty when ready
    summary: str  # "ready", or "not ready: " and every reason's text
    not_judged: list[str]  # NOT_JUDGED: conditions only Prometheus judges
    delay_below_seconds: float = DELAY_SECONDS  # the thresholds judged with (the exporter's config)
    comparison_max_age_seconds: float = MAX_AGE_SECONDS


def _ago(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(0.0, seconds) // 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _finished_at(run: CompareRun) -> float | None:
    """When a finished comparison ended (else started), as the exporter exports it (last_finished_timestamp)."""
    return run.end_time if run.end_time is not None else run.start_time


def judge(
    *,
    status: str,
    objects: int | None,
    completed: int | None,
    delay_seconds: float | None,
    comparisons: JobComparisons,
    now: float,
    delay_below: float = DELAY_SECONDS,
    max_age: float = MAX_AGE_SECONDS,
    unknown_types: Sequence[str] = (),
) -> Cutover:
    """The verdict for one job from its status, progress counts (None without data; ``unknown_types``: the
    object types whose last refresh failed or did not happen yet, left out of them), delay and comparisons,
    with the exporter's thresholds (its config's cutover_delay_seconds, cutover_comparison_max_age_seconds)."""
    found: dict[str, list[str]] = {}

    def block(reason: str, text: str) -> None:
        found.setdefault(reason, []).append(text)

    if status != INCREMENTAL:
        block("not_incremental", f"status {status or 'unknown'}, not {INCREMENTAL}")
    if unknown_types:
        # The counts cover the other types only: complete they may be, the job's full copy is not known to be.
        block("progress_unknown", f"progress of {', '.join(unknown_types)} not read (last refresh failed)")
    if not objects:
        block("full_incomplete", "no progress data")
    elif completed is None or completed < objects:
        block("full_incomplete", f"{objects - (completed or 0):,} of {objects:,} objects not complete")
    if delay_seconds is None:
        block("delay", "no delay reading")
    elif delay_seconds >= delay_below:
        block("delay", f"delay {delay_seconds:.0f} s (must stay below {delay_below:g} s)")
    if not comparisons.up:
        # The exporter keeps the last state it read: it says nothing of a newer comparison since.
        read = f", last read {_ago(now - comparisons.checked_at)}" if comparisons.checked_at is not None else ""
        block(
            "comparison_unreadable",
            f"the comparisons cannot be read now ({comparisons.error_code or 'unknown error'}{read})",
        )
    for compare_type, name in TYPE_NAMES.items():
        _comparison(comparisons, compare_type, name, now, max_age, block)
    overview = comparisons.objects
    if overview is not None:
        bad = [c.object_type for c in overview.objects if c.status == "inconsistent"]
        if bad:
            block("objects_inconsistent", f"object types inconsistent: {', '.join(bad)}")
    reasons = [Reason(r, "; ".join(found[r])) for r in REASONS if r in found]
    summary = "not ready: " + "; ".join(r.text for r in reasons) if reasons else "ready"
    return Cutover(not reasons, reasons, summary, list(NOT_JUDGED), delay_below, max_age)


def _comparison(
    comparisons: JobComparisons, compare_type: str, name: str, now: float, max_age: float, block: Block
) -> None:
    state = comparisons.types.get(compare_type)
    latest = state.latest if state is not None else None
    if state is None or latest is None:
        block("comparison_missing", f"no {name} comparison")
        return
    if latest.running:
        block("comparison_running", f"a {name} comparison is running ({latest.status})")
        return
    if not latest.finished:
        block("comparison_failed", f"the latest {name} comparison ended {latest.status}")
        return
    # The exporter keeps a type's latest run, latest finished run and its tables together: a
    # SUCCESSFUL latest run is the finished one, whose tables are counted once read.
    counts = state.table_counts if state.tables is not None else None
    if counts is None:
        block("comparison_missing", f"the {name} comparison's results are not read yet")
    elif not sum(counts.values()):
        block("comparison_missing", f"the {name} comparison compared no table")
    when = _finished_at(state.finished) if state.finished is not None else None
    if when is None:
        block("comparison_stale", f"the {name} comparison has no end time")
    elif now - when > max_age:
        block("comparison_stale", f"the {name} comparison finished {_ago(now - when)}, over {max_age / 3600:g} h")
    problems = [
        f"{n:,} table{'' if n == 1 else 's'} {status}"
        for status, n in (counts or {}).items()
        if n and status not in FINE_TABLES
    ]
    if problems:
        age = f" of {_ago(now - when)}" if when is not None else ""
        block("tables_not_consistent", f"{', '.join(problems)} in the {name} comparison{age}")
