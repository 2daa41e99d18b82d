"""The status page (`/`) and `/status.json` of the real exporter process, in headless Chromium too.

The scenario has a healthy job, a stalled job whose objects and job name are hostile (HTML,
quotes, control characters, CJK), and a failing key whose API message carries markup and the
secret key: the page must escape all of it and redact the secret, the JSON must keep it intact.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.status import JobStatus, KeyStatus, ProjectStatus, Status

from .procs import Exporter, Simulator, samples, sim_config, wait_for
from .test_clients import HEADLESS
from .test_exporter import ODD_NAMES

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
JOB_NAME = 'hostile <script>alert("name")</script> & "quoted"'
MESSAGE = 'The task <b>was deleted</b> & "gone"; key {} </p><script>alert(3)</script>'
SCENARIO = {
    "jobs": [
        {"id": "healthy-job", "objects": {"table": 300, "view": 20}, "speed": 0.5},
        {"id": "failing-job", "objects": {"table": 5}, "error": "DRS.M05004", "error_msg": MESSAGE.format(SECRET)},
        {"id": "hostile-job", "name": JOB_NAME, "objects": {"table": 6}, "stalled": True, "names": HOSTILE_NAMES},
    ]
}
JOBS = [{"id": "healthy-job", "object_types": ["table", "view"]}, "failing-job"]
# The hostile job is found by discovery, so that its (hostile) name from the job list is shown too.
DISCOVERY = {"job_types": ["migration"], "name_regex": "^hostile", "object_types": ["table"]}
LONG = {"X-Prometheus-Scrape-Timeout-Seconds": "60"}
# Every tag the page is made of: anything else would be markup that came in with the data.
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "nav", "a", "p"}
PAGE_TAGS |= {"span", "main", "section", "dl", "dt", "dd", "code", "article", "div", "table", "thead", "tbody"}
PAGE_TAGS |= {"tr", "th", "td", "b", "br"}


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
    exp = Exporter(config(sim, cache_ttl=3600), tmp_path_factory.mktemp("status"))
    try:
        exp.get(headers=LONG, timeout=60).raise_for_status()
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
    assert all(job["comparison"] is None for job in jobs.values()), "reserved for the data-consistency check"
    assert SECRET not in exporter.get("/status.json").text


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
        self._job = ""
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

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._error is not None:
            self.errors[self._job] = "".join(self._error)
            self._error = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._error is not None:
            self._error.append(data)


def check_page(page: Page) -> None:
    assert page.tags <= PAGE_TAGS, f"markup from the data: {page.tags - PAGE_TAGS}"
    assert not [a for a in page.attributes if a.startswith("on") or a == "src"], "no handlers, no images"
    text = "".join(page.text)
    for name in HOSTILE_NAMES:
        for value in name.values():
            assert value.replace("\n", " ") in text.replace("\n", " "), f"{value!r} shown as text"
    assert JOB_NAME in text
    assert page.states == {
        ("healthy-job", "table"): "ok",
        ("healthy-job", "view"): "ok",
        ("failing-job", "table"): "failing",
        ("hostile-job", "table"): "ok",
    }
    assert page.job_state == {"healthy-job": "ok", "failing-job": "failing", "hostile-job": "ok"}
    assert page.errors["failing-job"] == "table DRS.M05004: " + MESSAGE.format("<redacted>")
    assert SECRET not in text


def test_html_escapes_every_hostile_value(exporter: Exporter) -> None:
    answer = exporter.get("/")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/html; charset=utf-8"
    raw = answer.text
    assert "<script" not in raw and "<img" not in raw and "<b>x" not in raw and SECRET not in raw
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
    assert (tmp_path / "status-dark.png").read_bytes() != (tmp_path / "status-wide.png").read_bytes()
    assert "refreshed job" not in exporter.log()[before:], "the browser's requests refreshed nothing"


def test_a_key_without_a_recent_success_is_stale(sim: Simulator, start: Any) -> None:
    exp = start(config(sim, cache_ttl=1, max_staleness=1))
    exp.get(headers=LONG, timeout=60).raise_for_status()
    # Nobody scrapes: the last refresh grows older than max_staleness, and the page says so.
    stale = wait_for(
        lambda: [k for k in jobs_of(status(exp))["healthy-job"]["keys"] if k["state"] == "stale"], timeout=15
    )
    assert {k["object_type"] for k in stale} == {"table", "view"}
    assert all(k["last_success_age_seconds"] > 1 for k in stale)
    assert 'data-state="stale"' in exp.get("/").text


def test_status_json_stays_valid_json_with_text_orjson_refuses() -> None:
    key = KeyStatus("table", "failing", None, None, 1.0, None, None, 0.1, False, "DRS.M05004", "bad \ud800 byte")
    job = JobStatus("j", "name \udfff", "", "", "", 0, 0, None, None, None, None, [key], [])
    status = Status(1, "0", 1.0, 10, 80, [ProjectStatus("p", "", "http://127.0.0.1", "AK/SK", None, [job])])
    parsed = json.loads(status.to_json())
    assert parsed["projects"][0]["jobs"][0]["keys"][0]["error_message"] == "bad \ud800 byte"
