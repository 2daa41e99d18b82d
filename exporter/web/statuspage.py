"""The status page (``/``) and ``/status.json``: rendered from :class:`status.Status`, cached per refresh.

Plain HTML and CSS (no JavaScript), readable from 400 px wide and in dark mode. Every text that
came from configuration or an API answer is HTML-escaped.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from html import escape

from ..app import Exporter
from .cutover import Cutover, limits
from .healthpage import _ddl, _dirty, _health_comparisons, _job_details, _monitor, _rpo_rto
from .pagetext import _age, _attr, _count, _percent, _span, _text, _utc
from .status import (
    FAILING,
    OK,
    PENDING,
    STALE,
    ComparisonStatus,
    ComparisonTypeStatus,
    JobStatus,
    KeyStatus,
    ObjectStatus,
    ProjectStatus,
    Status,
    StatusBuilder,
)

CSS = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1c2230;--muted:#5a6478;--line:#dde2ea;--card:#f5f7fa;
--ok:#1a7f37;--failing:#c62828;--stale:#9a5b00;--pending:#5a6478;--bar:#2f6fde;--track:#e1e6ee}
@media (prefers-color-scheme:dark){:root{--bg:#11141a;--fg:#e3e7ee;--muted:#9aa4b6;--line:#2d333e;
--card:#191e26;--ok:#57c26f;--failing:#ff7070;--stale:#eea83a;--pending:#9aa4b6;--bar:#5f9cff;--track:#2d333e}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:72rem;padding:1rem;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
h3{font-size:1.05rem;margin:0;overflow-wrap:anywhere}h4{font-size:.9rem;margin:1rem 0 .25rem;color:var(--muted)}
a{color:var(--bar)}code{font-size:.9em;overflow-wrap:anywhere}
.muted{color:var(--muted)}nav a{margin-right:.8rem;white-space:nowrap}
.summary span{margin-right:1rem;white-space:nowrap}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:.5rem 0}dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
.job{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:.8rem;margin:.8rem 0}
.job-head{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;justify-content:space-between}
.bar{height:.7rem;background:var(--track);border-radius:.35rem;overflow:hidden;margin:.5rem 0 .25rem}
.bar span{display:block;height:100%;background:var(--bar)}
.facts span{margin-right:1rem;display:inline-block}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.875rem}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;white-space:nowrap}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{overflow-wrap:anywhere;width:100%}td code{white-space:nowrap}
.state{font-weight:600;white-space:nowrap}
.state::before{content:"\\25CF\\00A0"}
.ok{color:var(--ok)}.failing{color:var(--failing)}.stale{color:var(--stale)}.pending{color:var(--pending)}
p.error{color:var(--failing);margin:.4rem .5rem;overflow-wrap:anywhere}
.job-body h4{margin-top:.6rem}
.comparison{margin:.4rem 0 0;padding:0;list-style:none}.comparison li{margin:.1rem 0}
.consistent{color:var(--ok)}.inconsistent{color:var(--failing)}.running,.unread{color:var(--muted)}
.failed{color:var(--stale)}bdi{unicode-bidi:isolate}
.cutover{margin:.4rem 0 0}.cutover ul{margin:.1rem 0 0;padding-left:1.2rem}
@media (min-width:960px){.job-body{display:grid;grid-template-columns:1fr 1fr;gap:0 1.5rem}
.job-body h4{margin-top:0}}
@media (max-width:560px){body{padding:.6rem}.job{padding:.6rem}th,td{padding:.3rem .3rem}.wide{display:none}}
"""


def _key_row(key: KeyStatus) -> str:
    t = _attr(key.object_type)
    state = key.state + (" (refreshing)" if key.refreshing else "")
    duration = f"{key.refresh_duration_seconds:.2f} s" if key.refresh_duration_seconds is not None else "—"
    return (
        f'<tr data-object-type="{t}" data-state="{key.state}"><td><code>{t}</code></td>'
        f'<td><span class="state {key.state}">{escape(state)}</span></td>'
        f'<td class="n">{_count(key.objects)}</td><td class="n">{_count(key.objects_completed)}</td>'
        f'<td class="n">{_age(key.last_success_age_seconds)}</td><td class="n wide">{duration}</td></tr>'
    )


def _key_error(key: KeyStatus) -> str:
    message = f": {_text(key.error_message, 400)}" if key.error_message else ""
    return (
        f'<p class="error" data-object-type="{_attr(key.object_type)}"><code>{_attr(key.object_type)}</code> '
        f'<code class="error-code">{_text(key.error_code or "")}</code>'
        f'<span class="error-message">{message}</span></p>'
    )


def _object_row(o: ObjectStatus) -> str:
    source = f"{_text(o.src_db)}.{_text(o.src_tb)}"
    # The destination only when it differs: most migrations keep the names.
    target = (
        f'<br><span class="muted">→ {_text(o.dst_db)}.{_text(o.dst_tb)}</span>'
        if (o.dst_db, o.dst_tb) != (o.src_db, o.src_tb)
        else ""
    )
    return (
        f'<tr><td><code>{_attr(o.object_type)}</code></td><td class="name">{source}{target}</td>'
        f'<td class="n">{_percent(o.progress_ratio)}</td></tr>'
    )


_RANK = {FAILING: 0, STALE: 1, PENDING: 2, OK: 3}


def _worst(job: JobStatus) -> str:
    return next((s for s in (FAILING, STALE, PENDING) if any(k.state == s for k in job.keys)), OK)


_VERDICT_NAME = {"lines": "rows", "contents": "values"}


def _counts(t: ComparisonTypeStatus) -> str:
    """E.g. "3 inconsistent, 1 target_missing of 40 tables"."""
    problems = [f"{n:,} {_attr(name)}" for name, n in t.table_counts.items() if name not in ("consistent", "empty")]
    return f"{', '.join(problems) or 'all consistent'} of {t.tables or 0:,} tables"


def _comparison_type(t: ComparisonTypeStatus) -> str:
    name = _VERDICT_NAME.get(t.compare_type, _attr(t.compare_type))
    finished = f"{_counts(t)}, finished {_age(t.finished_age_seconds)}" if t.tables is not None else ""
    if t.verdict == "running":
        text = "running" + (f"; last finished: {finished}" if finished else "")
    elif t.verdict == "failed":
        text = f"{_attr(t.status.lower())}" + (f"; last finished: {finished}" if finished else "")
    elif t.verdict == "unread":
        text = "finished, results not read yet"
    else:
        text = finished
    return (
        f'<li data-compare-type="{_attr(t.compare_type)}" data-verdict="{_attr(t.verdict)}">{name}: '
        f'<span class="state {_attr(t.verdict)}">{_attr(t.verdict)}</span> — {text}</li>'
    )


def _comparison(c: ComparisonStatus | None) -> str:
    if c is None:
        return ""
    down = (
        f'<li class="failing">reading the comparisons failed: <code>{_text(c.error_code or "")}</code></li>'
        if not c.up
        else ""
    )
    items = "".join(_comparison_type(t) for t in c.types) or '<li class="muted">no comparison yet</li>'
    return f'<h4>Data consistency (latest comparisons)</h4><ul class="comparison">{down}{items}</ul>'


def _cutover(c: Cutover | None) -> str:
    """The job's readiness for cut-over, with each blocking reason in words."""
    if c is None:
        return ""
    verdict = "ready" if c.ready else "not ready"
    reasons = "".join(f'<li data-reason="{_attr(r.reason)}">{_text(r.text, 400)}</li>' for r in c.reasons)
    return (
        f'<h4>Cut-over readiness</h4><div class="cutover" data-ready="{str(c.ready).lower()}">'
        f'<span class="state {"ok" if c.ready else "failing"}">{verdict}</span>'
        f"{f'<ul>{reasons}</ul>' if reasons else ''}"
        f'<p class="muted">As of the exporter\'s latest readings (delay below {c.delay_below_seconds:g} s, comparisons '
        f"finished within {c.comparison_max_age_seconds / 3600:g} h); the delay window, DDL alarms, abnormal rows "
        "and the full phase's end are judged by Prometheus (see above).</p></div>"
    )


def _job(job: JobStatus, worst: str, cache: Fragments) -> str:
    """A job's article: its keys (with ages) rendered each time, its head and objects reused while unchanged."""
    keys = "".join(_key_row(k) for k in job.keys)
    errors = "".join(_key_error(k) for k in job.keys if k.error_code)
    has_data = any(k.objects is not None for k in job.keys)
    signature = (
        job.name,
        job.status,
        job.job_type,
        job.engine_type,
        job.objects,
        job.objects_completed,
        has_data,
        job.drs_progress_ratio,
        job.incremental_delay_seconds,
        job.remaining_seconds,
        id(job.least_advanced),  # the builder keeps the list while the job's summaries are the same
    )
    kept = cache.get(job.job_id, signature)
    if kept is None:
        kept = _job_parts(job, has_data)
        cache.put(job.job_id, signature, job.least_advanced, kept)
    head, least_table = kept
    return (
        f'<article class="job" data-job-id="{_attr(job.job_id)}" data-state="{worst}">{head}'
        '<div class="job-body"><div><div class="scroll"><table class="keys"><thead><tr><th>Type</th><th>State</th>'
        '<th class="n">Objects</th><th class="n">Done</th><th class="n">Last success</th>'
        '<th class="n wide">Refresh took</th></tr></thead>'
        f"<tbody>{keys}</tbody></table></div>{errors}{_comparison(job.comparison)}{_monitor(job.monitor)}{_ddl(job.ddl)}"
        f"{_rpo_rto(job.rpo_rto)}"
        f"{_job_details(job.job_details)}{_dirty(job.dirty_rows)}{_health_comparisons(job.health_comparisons)}"
        f"{_cutover(job.cutover)}</div>"
        f"<div>{least_table}</div></div></article>"
    )


def _job_parts(job: JobStatus, has_data: bool) -> tuple[str, str]:
    """The head (names, bar, facts) and the least advanced objects' table of a job."""
    title = f"<h3><code>{_text(job.job_id)}</code>{' — ' + _text(job.name) if job.name else ''}</h3>"
    about = " · ".join(_text(x) for x in (job.status, job.job_type, job.engine_type) if x)
    ratio = job.completion_ratio
    bar = (
        f'<div class="bar" role="img" aria-label="{_percent(ratio)} of objects complete">'
        f'<span style="width:{ratio * 100:.1f}%"></span></div>'
        if ratio is not None
        else ""
    )
    facts = [
        f"<span>Objects complete <b>{job.objects_completed:,} / {job.objects:,}</b> ({_percent(ratio)})</span>"
        if has_data
        else '<span class="muted">No progress data yet</span>'
    ]
    if job.drs_progress_ratio is not None:
        facts.append(f"<span>DRS progress <b>{_percent(job.drs_progress_ratio)}</b></span>")
    if job.incremental_delay_seconds is not None:
        facts.append(f"<span>Incremental delay <b>{_span(job.incremental_delay_seconds)}</b></span>")
    if job.remaining_seconds is not None:
        facts.append(f"<span>Remaining <b>{_span(job.remaining_seconds)}</b></span>")
    least = "".join(_object_row(o) for o in job.least_advanced)
    least_table = (
        '<h4>Least advanced objects</h4><div class="scroll"><table class="least"><thead><tr><th>Type</th>'
        f'<th>Object</th><th class="n">Progress</th></tr></thead><tbody>{least}</tbody></table></div>'
        if least
        else ""
    )
    head = f'<div class="job-head">{title}<span class="muted">{about}</span></div>{bar}'
    head += f'<div class="facts">{" ".join(facts)}</div>'
    return head, least_table


class Fragments:
    """Each job's rendered parts with what they were rendered from; jobs not rendered in a page are dropped."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[object, ...], object, tuple[str, str]]] = {}
        self._used: dict[str, tuple[tuple[object, ...], object, tuple[str, str]]] = {}

    def get(self, job_id: str, signature: tuple[object, ...]) -> tuple[str, str] | None:
        """The parts rendered from an equal signature, if kept."""
        kept = self._kept.get(job_id)
        if kept is None or kept[0] != signature:
            return None
        self._used[job_id] = kept
        return kept[2]

    def put(self, job_id: str, signature: tuple[object, ...], least: object, parts: tuple[str, str]) -> None:
        """Keep ``parts`` (and ``least``, so that its id in the signature is not reused meanwhile)."""
        self._used[job_id] = (signature, least, parts)

    def sweep(self) -> None:
        """After a page: keep only what it used."""
        self._kept, self._used = self._used, {}


def _project(p: ProjectStatus, cache: Fragments) -> str:
    rows = [("Endpoint", f"<code>{escape(p.endpoint)}</code>"), ("Authentication", escape(p.auth))]
    if p.region:
        rows.insert(0, ("Region", escape(p.region)))
    d = p.discovery
    if d is not None:
        state = '<span class="state ok">up</span>' if d.up else '<span class="state failing">failing</span>'
        error = (
            f'<p class="error discovery-error"><code class="error-code">{_text(d.error_code)}</code>'
            f'<span class="error-message">{": " + _text(d.error_message, 400) if d.error_message else ""}</span></p>'
            if d.error_code is not None
            else ""
        )
        rows.append(
            (
                "Discovery",
                f"{escape(', '.join(d.job_types))} jobs; {state}, {d.jobs} found, "
                f"last successful listing {_age(d.last_listing_age_seconds)} ({escape(d.list_api)} list){error}",
            )
        )
    facts = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    # Jobs that need attention first; the order of the configuration otherwise.
    ordered = sorted(((_worst(j), j) for j in p.jobs), key=lambda pair: _RANK[pair[0]])
    jobs = "".join(_job(j, worst, cache) for worst, j in ordered) or '<p class="muted">No jobs yet.</p>'
    head = f"<h2>Project <code>{escape(p.project_id)}</code></h2>"
    return f'<section class="project">{head}<dl>{facts}</dl>{jobs}</section>'


def render_html(status: Status, telemetry_path: str, cache: Fragments | None = None) -> str:
    """The whole page; ``cache`` keeps the jobs' articles from one page to the next."""
    cache = cache if cache is not None else Fragments()
    keys = [k for p in status.projects for j in p.jobs for k in j.keys]
    counts = {s: sum(1 for k in keys if k.state == s) for s in (OK, FAILING, STALE, PENDING)}
    jobs = sum(len(p.jobs) for p in status.projects)
    summary = "".join(f'<span class="state {s}">{n} {s}</span>' for s, n in counts.items() if n or s in (OK, FAILING))
    judged = next((j.cutover for p in status.projects for j in p.jobs if j.cutover is not None), None)
    cutover = (
        f'<p class="muted" id="cutover-limits">Cut-over readiness: {escape(limits(judged.delay_below_seconds))}</p>'
        if judged is not None
        else ""
    )
    pending = (
        f'<p class="muted">Pending keys have not been refreshed yet: the exporter refreshes them when '
        f'<a href="{escape(telemetry_path)}">{escape(telemetry_path)}</a> is scraped.</p>'
        if counts[PENDING]
        else ""
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>Huawei Cloud DRS Exporter</title><style>{CSS}</style></head>
<body><header><h1>Huawei Cloud DRS Exporter</h1>
<nav><a href="{escape(telemetry_path)}">Metrics</a><a href="/status.json">status.json</a>\
<a href="/-/healthy">Health</a><a href="/-/ready">Readiness</a></nav>
<p class="muted">Version {escape(status.exporter_version)}. Per-object migration progress of Huawei Cloud \
Data Replication Service jobs. As of {_utc(status.generated_timestamp_seconds)}, from the exporter's cache (TTL \
{status.cache_ttl_seconds:g} s, a key is stale after {status.max_staleness_seconds:g} s without a successful refresh); \
this page never calls the DRS API. Ages are to the minute.</p>{_shard(status)}
<p class="summary"><span>{jobs} jobs, {len(keys)} job and type pairs:</span>{summary}</p>{pending}{cutover}</header>
<main>{"".join(_project(p, cache) for p in status.projects)}</main></body></html>
"""
    cache.sweep()
    return page


def _shard(status: Status) -> str:
    shard = status.shard
    if shard.total_shards == 1:
        return ""
    return (
        f'<p class="shard">Shard {shard.shard} of {shard.total_shards}: this process exports only its '
        f"{shard.jobs} jobs, those with crc32(job_id) mod {shard.total_shards} = {shard.shard}; the other "
        "shards' jobs are on their own pages.</p>"
    )


def _html_until(status: Status, now: float) -> float:
    """Until when the page stays true without new data: the next minute (ages are shown to the
    minute), or the moment the first ok key turns stale, whichever comes first."""
    until = (now // 60 + 1) * 60
    for project in status.projects:
        for job in project.jobs:
            for key in job.keys:
                if key.state == OK and key.refreshed_timestamp_seconds is not None:
                    until = min(until, key.refreshed_timestamp_seconds + status.max_staleness_seconds)
    return until


@dataclass
class _Page:
    generation: tuple[object, ...]
    until: float  # Unix time
    bodies: dict[bool, bytes]  # compressed -> body


class StatusPages:
    """``/`` and ``/status.json`` bodies, each built once per refresh generation and as often as its ages need.

    ``/status.json`` gives ages in seconds, so it is built at most once a second. The HTML page
    shows ages to the minute and says as of when: it is built again when data changes, a minute
    passes or a key turns stale, and then reuses the articles of jobs that did not change.
    """

    def __init__(self, exporter: Exporter, telemetry_path: str = "/metrics") -> None:
        self.builder = StatusBuilder(exporter)
        self.telemetry_path = telemetry_path
        self._lock = threading.Lock()
        self._pages: dict[str, _Page] = {}
        self._status: tuple[tuple[object, ...], int, Status] | None = None  # shared by both kinds within a second
        self._fragments = Fragments()

    def _build(self, generation: tuple[object, ...], now: float) -> Status:
        if self._status is not None and self._status[:2] == (generation, int(now)):
            return self._status[2]
        status = self.builder.build()
        self._status = (generation, int(now), status)
        return status

    def body(self, kind: str, *, compress: bool) -> bytes:
        """The ``html`` or ``json`` body, gzip-compressed when ``compress``."""
        now = time.time()
        generation = self.builder.generation()
        with self._lock:
            page = self._pages.get(kind)
            if page is None or page.generation != generation or now >= page.until:
                status = self._build(generation, now)
                if kind == "json":
                    plain, until = status.to_json(), float(int(now) + 1)
                else:
                    html = render_html(status, self.telemetry_path, self._fragments)
                    plain, until = html.encode("utf-8", "replace"), _html_until(status, now)
                page = self._pages[kind] = _Page(generation, until, {False: plain})
            body = page.bodies.get(compress)
            if body is None:
                body = page.bodies[compress] = gzip.compress(page.bodies[False], compresslevel=6)
            return body
