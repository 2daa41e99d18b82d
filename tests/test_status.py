"""The status page (`/`) and `/status.json` of the real exporter process, in headless Chromium too.

The scenario has a healthy job, a stalled job whose objects and job name are hostile (HTML,
quotes, control characters, CJK), and a failing key whose API message carries markup and the
secret key: the page must escape all of it and redact the secret, the JSON must keep it intact.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import time
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.simulator.server import demo_comparisons
from exporter.web.status import JobStatus, KeyStatus, ProjectStatus, ShardStatus, Status

from .procs import Exporter, Simulator, samples, sim_config, wait_for
from .test_exporter import ODD_NAMES
from .test_scrape_clients import HEADLESS

SECRET = "status-page-secret-key-0123456789"
HTML_NAMES = [
    {
        "src_db": "<script>alert(1)</script>",
        "src_tb": '"><img src=x onerror=alert(2)>',
        "dst_db": "&amp;&lt;",
        "dst_tb": "</td></tr></table><b>x",
    }
]
HOSTILE_NAMES = HTML_NAMES + ODD_NAMES
# A right-to-left override (U+202E) must not reorder the text around the name; NUL must not reach the HTML.
JOB_NAME = 'hostile <script>alert("name")</script> & "quoted" \u202edesrever\x00 end'
SHOWN_NAME = JOB_NAME.replace("\x00", "\ufffd")
LONG_TABLE = "t" * 50_000  # shown cut, with an ellipsis
MESSAGE = 'The task <b>was deleted</b> & "gone"; key {} </p><script>alert(3)</script>'
SCENARIO = {
    "jobs": [
        {"id": "healthy-job", "objects": {"table": 300, "view": 20}, "speed": 0.5, "comparisons": demo_comparisons(40)},
        {"id": "failing-job", "objects": {"table": 5}, "error": "DRS.M05004", "error_msg": MESSAGE.format(SECRET)},
        {
            "id": "hostile-job",
            "name": JOB_NAME,
            "objects": {"table": 6},
            "stalled": True,
            "names": [*HOSTILE_NAMES, {"src_db": "db", "src_tb": LONG_TABLE, "dst_db": "db", "dst_tb": LONG_TABLE}],
            # A row comparison running after a finished one, and a failed value comparison.
            "comparisons": [
                {"id": "hostile-rows-1", "type": "lines", "tables": 6, "started_ago": 86400},
                {"id": "hostile-rows-2", "type": "lines", "tables": 6, "status": "RUNNING", "started_ago": 300},
                {"id": "hostile-values-1", "type": "contents", "tables": 6, "status": "FAILED"},
            ],
        },
    ]
}
JOBS = [{"id": "healthy-job", "object_types": ["table", "view"], "comparisons": True}, "failing-job"]
# The hostile job is found by discovery, so that its (hostile) name from the job list is shown too.
DISCOVERY = {"job_types": ["migration"], "name_regex": "^hostile", "object_types": ["table"], "comparisons": True}
LONG = {"X-Prometheus-Scrape-Timeout-Seconds": "60"}
# Every tag the page is made of: anything else would be markup that came in with the data.
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "nav", "a", "p"}
PAGE_TAGS |= {"span", "main", "section", "dl", "dt", "dd", "code", "article", "div", "table", "thead", "tbody"}
PAGE_TAGS |= {"tr", "th", "td", "b", "br", "bdi", "ul", "li"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    path = tmp_path_factory.mktemp("sim") / "scenario.yaml"
    path.write_text(yaml.safe_dump(SCENARIO, allow_unicode=True))
    s = Simulator("--scenario", str(path), "--secret-key", SECRET)
    yield s
    s.stop()


def config(sim: Simulator, **extra: Any) -> dict[str, Any]:
    return sim_config(sim, JOBS, discovery=DISCOVERY, **extra)


@pytest.fixture(scope="module")
def exporter(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """An exporter whose every key has been refreshed once, with a TTL that outlasts the tests."""
    # Cut-over thresholds of the exporter's own (the chart sets them from the rules' settings): the page
    # judges with them, not with the defaults.
    cutover = {"cutover_delay_seconds": 1, "cutover_comparison_max_age_seconds": 1800}
    exp = Exporter(config(sim, cache_ttl=3600, **cutover), tmp_path_factory.mktemp("status"))
    try:
        exp.get(headers=LONG, timeout=60).raise_for_status()
        # Comparisons are read in the background after the first scrape: until both jobs' are in.
        wait_for(lambda: compared(status(exp)), timeout=60, interval=0.5)
        yield exp
    finally:
        exp.stop()


def status(exp: Exporter) -> dict[str, Any]:
    answer = exp.get("/status.json")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = answer.json()
    return body


def jobs_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_id"]: job for project in body["projects"] for job in project["jobs"]}


def compared(body: dict[str, Any]) -> bool:
    """Both jobs with comparisons have them, the healthy job's results read."""
    jobs = jobs_of(body)
    verdicts = [
        t["verdict"] for j in ("healthy-job", "hostile-job") for t in (jobs[j]["comparison"] or {}).get("types", [])
    ]
    return len(verdicts) == 4 and "unread" not in verdicts


def test_the_page_never_calls_the_api(sim: Simulator, start: Any) -> None:
    exp = start(config(sim, cache_ttl=3600))
    before = sim.stats()
    for _ in range(5):
        assert exp.get("/").status_code == 200
        assert requests.head(exp.url + "/", timeout=10).status_code == 200
        body = status(exp)
    for _ in range(10):  # nothing started in the background either
        assert sim.stats() == before
        time.sleep(0.1)
    keys = [key for job in jobs_of(body).values() for key in job["keys"]]
    assert {key["state"] for key in keys} == {"pending"} and len(keys) == 3, "configured keys, none refreshed"
    assert "refreshed job" not in exp.log()
    exp.get(headers=LONG, timeout=60).raise_for_status()  # a scrape refreshes; then the page shows it
    after = jobs_of(status(exp))
    assert after["healthy-job"]["keys"][0]["state"] == "ok"
    assert after["hostile-job"]["keys"][0]["state"] == "ok", "found by the scrape's discovery"


def test_status_json_explains_every_key(exporter: Exporter, sim: Simulator) -> None:
    body = status(exporter)
    metrics = exporter.metrics()
    assert body["schema_version"] == 1
    [project] = body["projects"]
    assert project["project_id"] == sim.info["project_id"] and project["endpoint"] == sim.url
    assert project["auth"] == "AK/SK"
    assert project["discovery"]["up"] is True and project["discovery"]["jobs"] == 1
    jobs = jobs_of(body)
    assert list(jobs) == ["healthy-job", "failing-job", "hostile-job"]
    assert body["shard"] == {"shard": 0, "total_shards": 1, "jobs": 3}  # unsharded: every job

    healthy = jobs["healthy-job"]
    assert [(k["object_type"], k["state"]) for k in healthy["keys"]] == [("table", "ok"), ("view", "ok")]
    for key in healthy["keys"]:
        labels = (("job_id", "healthy-job"), ("object_type", key["object_type"]))
        assert key["objects"] == samples(metrics, "huaweicloud_drs_objects")[labels]
        assert key["objects_completed"] == samples(metrics, "huaweicloud_drs_objects_completed")[labels]
        assert key["last_success_timestamp_seconds"] == pytest.approx(
            samples(metrics, "huaweicloud_drs_last_success_timestamp_seconds")[labels]
        )
        assert key["error_code"] is None and key["error_message"] is None
    assert healthy["objects"] == 320
    assert healthy["completion_ratio"] == pytest.approx(healthy["objects_completed"] / 320)
    assert 0 <= healthy["drs_progress_ratio"] <= 1 and healthy["incremental_delay_seconds"] == 2.0
    # The least advanced objects are the lowest incomplete ratios of the job's series, lowest first.
    series = samples(metrics, "huaweicloud_drs_object_progress_ratio")
    ratios = sorted(v for k, v in series.items() if ("job_id", "healthy-job") in k)
    least = [o["progress_ratio"] for o in healthy["least_advanced"]]
    assert least == [r for r in ratios if r < 1][:10]

    [failing] = jobs["failing-job"]["keys"]
    assert failing["state"] == "failing" and failing["error_code"] == "DRS.M05004"
    assert failing["error_message"] == MESSAGE.format("<redacted>"), "the API's message, its secret redacted"
    assert failing["objects"] is None and failing["last_success_timestamp_seconds"] is None

    hostile = jobs["hostile-job"]
    assert hostile["name"] == JOB_NAME and hostile["job_type"] == "migration"
    names = [{k: o[k] for k in ("src_db", "src_tb", "dst_db", "dst_tb")} for o in hostile["least_advanced"]]
    assert all(n in names for n in HOSTILE_NAMES), "every hostile name, intact"
    assert {"src_db": "db", "src_tb": LONG_TABLE, "dst_db": "db", "dst_tb": LONG_TABLE} in names, "long names whole"

    # The latest comparisons' verdicts, as the comparison metrics count the tables.
    assert jobs["failing-job"]["comparison"] is None, "comparisons are off for this job"
    comparison = healthy["comparison"]
    assert comparison["up"] is True and comparison["error_code"] is None and comparison["checked_timestamp_seconds"]
    rows, values = comparison["types"]
    assert (rows["compare_type"], rows["verdict"], rows["compare_job_id"]) == ("lines", "inconsistent", "demo-rows-2")
    assert rows["status"] == "SUCCESSFUL" and rows["finished_compare_job_id"] == "demo-rows-2"
    assert rows["finished_age_seconds"] >= 3500 and rows["end_timestamp_seconds"] > rows["start_timestamp_seconds"]
    for t in (rows, values):
        counted = {
            dict(k)["status"]: v
            for k, v in samples(metrics, "huaweicloud_drs_comparison_tables").items()
            if ("job_id", "healthy-job") in k and ("compare_type", t["compare_type"]) in k and v
        }
        assert t["table_counts"] == counted and t["tables"] == 40
    assert rows["table_counts"]["inconsistent"] == 1 and rows["table_counts"]["target_missing"] == 1
    assert (values["compare_type"], values["verdict"]) == ("contents", "inconsistent")
    running, failed = hostile["comparison"]["types"]
    assert (running["verdict"], running["compare_job_id"], running["end_timestamp_seconds"]) == (
        "running",
        "hostile-rows-2",
        None,
    )
    assert running["finished_compare_job_id"] == "hostile-rows-1" and running["table_counts"] == {"consistent": 6}
    assert (failed["verdict"], failed["status"], failed["tables"]) == ("failed", "FAILED", None)
    assert SECRET not in exporter.get("/status.json").text

    # Ready for cut-over (issue 25): the verdict and its reasons in words, for jobs with comparisons only.
    assert jobs["failing-job"]["cutover"] is None
    cutover = healthy["cutover"]
    assert cutover["ready"] is False and cutover["not_judged"] == [
        "delay_window",
        "ddl_alarm",
        "dirty_rows",
        "full_phase_end",
    ]
    blocked = {r["reason"]: r["text"] for r in cutover["reasons"]}
    assert "tables_not_consistent" in blocked and "comparison_running" not in blocked
    assert re.match(
        r"1 table inconsistent, 1 table target_missing, .* in the row comparison of \d+ min ago; "
        r"1 table inconsistent in the value comparison of \d+ min ago$",
        blocked["tables_not_consistent"],
    ), blocked
    assert cutover["summary"] == "not ready: " + "; ".join(r["text"] for r in cutover["reasons"])
    # With the exporter's thresholds (config cutover_*), which it says: the healthy job's delay is 2 s.
    assert (cutover["delay_below_seconds"], cutover["comparison_max_age_seconds"]) == (1, 1800)
    assert blocked["delay"] == "delay 2 s (must stay below 1 s)"
    assert re.fullmatch(r"the row comparison finished \d+ min ago, over 0.5 h", blocked["comparison_stale"]), blocked
    reasons = [r["reason"] for r in hostile["cutover"]["reasons"]]
    assert reasons == ["full_incomplete", "delay", "comparison_running", "comparison_failed"], hostile["cutover"]


class Page(HTMLParser):
    """What a reader of the page sees: its text, its tags, and per job the key states and error lines."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: list[str] = []
        self.text: list[str] = []
        self.states: dict[tuple[str, str], str] = {}
        self.job_state: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.isolated: list[str] = []  # text inside <bdi>
        self.verdicts: dict[tuple[str, str], str] = {}  # (job, compare type) -> the line shown
        self.ready: dict[str, str] = {}  # job -> data-ready of its cut-over readiness
        self.reasons: dict[str, list[str]] = {}  # job -> the data-reason of each reason shown
        self._job = ""
        self._bdi: list[str] | None = None
        self._verdict: tuple[tuple[str, str], list[str]] | None = None
        self._error: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        self.attributes += [name for name, _ in attrs]
        if tag == "article":
            self._job = a["data-job-id"] or ""
            self.job_state[self._job] = a["data-state"] or ""
        if tag == "tr" and "data-state" in a:
            self.states[(self._job, a["data-object-type"] or "")] = a["data-state"] or ""
        if tag == "p" and a.get("class") == "error":
            self._error = []
        if tag == "bdi":
            self._bdi = []
        if tag == "div" and "data-ready" in a:
            self.ready[self._job] = a["data-ready"] or ""
        if tag == "li" and "data-reason" in a:
            self.reasons.setdefault(self._job, []).append(a["data-reason"] or "")
        if tag == "li" and "data-verdict" in a:
            self._verdict = ((self._job, a["data-compare-type"] or ""), [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._error is not None:
            self.errors[self._job] = "".join(self._error)
            self._error = None
        if tag == "bdi" and self._bdi is not None:
            self.isolated.append("".join(self._bdi))
            self._bdi = None
        if tag == "li" and self._verdict is not None:
            self.verdicts[self._verdict[0]] = "".join(self._verdict[1])
            self._verdict = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for collecting in (self._error, self._bdi, self._verdict[1] if self._verdict else None):
            if collecting is not None:
                collecting.append(data)


def check_page(page: Page) -> None:
    assert page.tags <= PAGE_TAGS, f"markup from the data: {page.tags - PAGE_TAGS}"
    assert not [a for a in page.attributes if a.startswith("on") or a == "src"], "no handlers, no images"
    text = "".join(page.text)
    for name in HOSTILE_NAMES:
        for value in name.values():
            assert value.replace("\n", " ") in text.replace("\n", " "), f"{value!r} shown as text"
    assert SHOWN_NAME in page.isolated, "the job name in a bidi isolate, NUL replaced"
    assert "t" * 199 + "…" in page.isolated and LONG_TABLE not in text, "a 50,000-character name cut"
    assert page.states == {
        ("healthy-job", "table"): "ok",
        ("healthy-job", "view"): "ok",
        ("failing-job", "table"): "failing",
        ("hostile-job", "table"): "ok",
    }
    assert page.job_state == {"healthy-job": "ok", "failing-job": "failing", "hostile-job": "ok"}
    assert page.errors["failing-job"] == "table DRS.M05004: " + MESSAGE.format("<redacted>")
    assert SECRET not in text
    # The latest comparison's verdict per job and type.
    assert page.verdicts[("healthy-job", "lines")].startswith(
        "rows: inconsistent — 1 inconsistent, 1 target_missing, 1 connection_failed, 1 too_large of 40 tables, finished"
    ), page.verdicts
    assert page.verdicts[("healthy-job", "contents")].startswith("values: inconsistent — 1 inconsistent of 40 tables")
    assert page.verdicts[("hostile-job", "lines")].startswith("rows: running — running; last finished: all consistent")
    assert page.verdicts[("hostile-job", "contents")] == "values: failed — failed"
    assert not [job for job, _ in page.verdicts if job == "failing-job"]
    # Cut-over readiness: the jobs with comparisons, not ready, with their reasons (as /status.json).
    assert page.ready == {"healthy-job": "false", "hostile-job": "false"}
    assert page.reasons["hostile-job"] == ["full_incomplete", "delay", "comparison_running", "comparison_failed"]
    assert "tables_not_consistent" in page.reasons["healthy-job"]
    assert "Cut-over readiness: This page judges the delay as it is now (below 1 s)" in text
    assert "(delay below 1 s, comparisons finished within 0.5 h)" in text
    assert "abnormal rows and the full phase's end are judged by Prometheus" in text


def test_html_escapes_every_hostile_value(exporter: Exporter) -> None:
    answer = exporter.get("/")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/html; charset=utf-8"
    raw = answer.text
    assert "<script" not in raw and "<img" not in raw and "<b>x" not in raw and SECRET not in raw
    assert "\x00" not in raw and LONG_TABLE not in raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw and "&amp;amp;&amp;lt;" in raw
    check_page(Page(raw))


def test_compressed_answers_decode_to_the_page(exporter: Exporter) -> None:
    for path in ("/", "/status.json"):
        with exporter.get(path, headers={"Accept-Encoding": "gzip"}, stream=True) as answer:
            raw = answer.raw.read(decode_content=False)
        assert answer.headers["Content-Encoding"] == "gzip" and answer.headers["Vary"] == "Accept-Encoding"
        assert int(answer.headers["Content-Length"]) == len(raw)
        plain = gzip.decompress(raw).decode()
        assert "hostile-job" in plain
        if path == "/status.json":
            assert json.loads(plain)["schema_version"] == 1


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("chromium")
    assert binary is not None, "Debian's chromium is missing: `make test` installs it"
    result = subprocess.run(
        [binary, *HEADLESS, "--hide-scrollbars", f"--user-data-dir={profile}", *args],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def first_pixel(path: Path) -> tuple[int, int, int]:
    """RGB of a PNG's top-left pixel (8-bit RGB or RGBA): no PNG filter changes the first pixel of the first row."""
    data = path.read_bytes()
    offset, idat, color_type = 8, b"", None
    for _ in range(10_000):  # chunks
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            assert body[8] == 8, "8-bit samples"
            color_type = body[9]
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        offset += 12 + length
    assert color_type in (2, 6), f"RGB or RGBA, not colour type {color_type}"
    row = zlib.decompressobj().decompress(idat, 16)
    return row[1], row[2], row[3]  # after the row's filter byte


def test_chromium_shows_every_job_state_and_message(exporter: Exporter, tmp_path: Path) -> None:
    before = len(exporter.log())
    dom = chromium("--dump-dom", exporter.url + "/", profile=tmp_path / "profile").stdout.decode()
    check_page(Page(dom))
    shots = {
        "wide": ("--window-size=1200,1400",),
        "narrow": ("--window-size=400,1800",),
        "dark": ("--window-size=1200,1400", "--force-dark-mode"),
    }
    for name, flags in shots.items():
        path = tmp_path / f"status-{name}.png"
        chromium(*flags, f"--screenshot={path}", exporter.url + "/", profile=tmp_path / "profile")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000, name
    # Dark mode changes the page's background: the top-left pixel is the CSS's --bg of each scheme.
    assert first_pixel(tmp_path / "status-wide.png") == (0xFF, 0xFF, 0xFF)
    assert first_pixel(tmp_path / "status-dark.png") == (0x11, 0x14, 0x1A)
    assert "refreshed job" not in exporter.log()[before:], "the browser's requests refreshed nothing"


def test_a_key_without_a_recent_success_is_stale(sim: Simulator, start: Any) -> None:
    exp = start(config(sim, cache_ttl=1, max_staleness=1))
    exp.get(headers=LONG, timeout=60).raise_for_status()

    # Nobody scrapes: the last refresh grows older than max_staleness, and the page says so.
    # The two keys were refreshed a moment apart, so they turn stale a moment apart: wait for both.
    def both_stale() -> list[dict[str, Any]]:
        stale = [k for k in jobs_of(status(exp))["healthy-job"]["keys"] if k["state"] == "stale"]
        return stale if {k["object_type"] for k in stale} == {"table", "view"} else []

    try:
        stale = wait_for(both_stale, timeout=15, interval=0.2)
    except TimeoutError:
        pytest.fail(f"keys not both stale: {jobs_of(status(exp))['healthy-job']['keys']}")
    assert all(k["last_success_age_seconds"] > 1 for k in stale)
    assert 'data-state="stale"' in exp.get("/").text


def test_status_json_stays_valid_json_with_text_orjson_refuses() -> None:
    key = KeyStatus("table", "failing", None, None, 1.0, None, None, 0.1, False, "DRS.M05004", "bad \ud800 byte")
    job = JobStatus("j", "name \udfff", "", "", "", 0, 0, None, None, None, None, [key], [])
    status = Status(
        1, "0", 1.0, 10, 80, ShardStatus(0, 1, 1), [ProjectStatus("p", "", "http://127.0.0.1", "AK/SK", None, [job])]
    )
    parsed = json.loads(status.to_json())
    assert parsed["projects"][0]["jobs"][0]["keys"][0]["error_message"] == "bad \ud800 byte"
