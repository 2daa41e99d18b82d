"""Real clients scraping the real exporter on `make demo`'s data (the exporter's own DRS client: test_drs_client.py).

Every Accept header gets prometheus_client's bytes and Content-Type; a compressed answer is
one gzip member that curl, zlib, gzip and headless Chromium read whole; HEAD gets headers only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter import __version__

from .accept import ACCEPTS, BROWSER
from .procs import Exporter, Simulator, gunzip_whole, sim_config, wait_for

BUILD_INFO = b'huaweicloud_drs_exporter_build_info{version="'
LONG = {"X-Prometheus-Scrape-Timeout-Seconds": "60"}
CURL = ["/usr/bin/curl", "--silent", "--show-error", "--compressed"]
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check"]


class Families:
    """A registry stand-in for prometheus_client's encoders."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def demo_jobs(sim: Simulator) -> list[dict[str, Any]]:
    return [{"id": job, "object_types": ["table", "view"]} for job in sim.info["jobs"]]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator("--jobs", "3", "--objects", "2000", "--types", "table,view", "--speed", "0.1")  # make demo's
    yield s
    s.stop()


@pytest.fixture(scope="module")
def demo(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """An exporter on the demo data, every key refreshed, with a TTL that outlasts the tests."""
    exp = Exporter(
        sim_config(sim, demo_jobs(sim), cache_ttl=3600), tmp_path_factory.mktemp("demo"), "--log.level", "debug"
    )
    try:
        exp.get(headers=LONG, timeout=60).raise_for_status()
        # Job details are read in the background (on by default): their first read lands before the
        # answers are compared, so that the data stays put.
        wait_for(lambda: "huaweicloud_drs_job_details_up{" in exp.metrics(headers=LONG), timeout=30, interval=0.2)
        yield exp
    finally:
        exp.stop()


@pytest.fixture(scope="module")
def reference(demo: Exporter) -> Families:
    """The exporter's data as prometheus_client's own families, parsed from its OpenMetrics answer."""
    answer = demo.get(headers={"Accept": "application/openmetrics-text;version=1.0.0", "Accept-Encoding": "identity"})
    families = Families(list(text_string_to_metric_families(answer.text)))  # type: ignore[no-untyped-call]
    assert openmetrics_latest(families) == answer.content, "the parse keeps everything"  # type: ignore[no-untyped-call]
    again = demo.get(headers={"Accept": "application/openmetrics-text;version=1.0.0", "Accept-Encoding": "identity"})
    assert again.content == answer.content, "the data stays put during these tests"
    return families


@pytest.mark.parametrize("compressed", [False, True], ids=["identity", "gzip"])
@pytest.mark.parametrize("accept", list(ACCEPTS.values()), ids=list(ACCEPTS))
def test_every_accept_header_gets_prometheus_clients_answer(
    demo: Exporter, reference: Families, accept: str | None, compressed: bool
) -> None:
    encoder, content_type = choose_encoder(accept or "")
    # None drops the header (requests would send */* otherwise).
    headers = {**LONG, "Accept": accept, "Accept-Encoding": "gzip" if compressed else "identity"}
    with demo.get(headers=headers, stream=True) as answer:
        raw = answer.raw.read(decode_content=False)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == content_type
        assert answer.headers.get("Content-Encoding") == ("gzip" if compressed else None)
        assert int(answer.headers["Content-Length"]) == len(raw)
    body = gunzip_whole(raw) if compressed else raw
    assert body == encoder(reference)
    assert f'{{version="{__version__}"}} 1.0\n'.encode() in body, "build info, the last family, arrived"


def test_curl_compressed_reads_the_whole_answer(demo: Exporter, tmp_path: Path) -> None:
    plain = demo.get(headers={**LONG, "Accept": "*/*", "Accept-Encoding": "identity"}).content
    headers = tmp_path / "headers"
    result = subprocess.run(
        [*CURL, "--dump-header", str(headers), "--max-time", "60", demo.url + "/metrics"],
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "content-encoding: gzip" in headers.read_text().lower()
    assert len(result.stdout) > 1_500_000, "make demo's answer is about 1.9 MB"
    assert result.stdout == plain
    assert BUILD_INFO in result.stdout


class PreText(HTMLParser):
    """The text inside <pre>, which is how a browser shows a text/plain page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside = self.inside or tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        self.inside = self.inside and tag != "pre"

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.parts.append(data)


def test_headless_chromium_shows_the_whole_answer(demo: Exporter, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium is not None, "Debian's chromium is missing: `make test` installs it"
    plain = demo.get(headers={**LONG, "Accept": BROWSER, "Accept-Encoding": "identity"}).text
    logged = len(demo.log())
    result = subprocess.run(
        [chromium, *HEADLESS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", demo.url + "/metrics"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    page = PreText()
    page.feed(result.stdout.decode())
    shown = "".join(page.parts)
    assert len(shown) > 1_500_000, f"Chromium showed {len(shown)} characters"
    assert shown == plain
    assert BUILD_INFO.decode() in shown
    assert "charset=utf-8, gzip" in demo.log()[logged:], "Chromium was answered with gzip"


def raw_request(url: str, method: str, path: str) -> tuple[str, dict[str, str], bytes]:
    """Status line, headers and every byte after them, from one request on its own connection."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        conn.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept-Encoding: gzip\r\n"
            "X-Prometheus-Scrape-Timeout-Seconds: 60\r\nConnection: close\r\n\r\n".encode()
        )
        received = bytearray()
        while chunk := conn.recv(65536):  # until the server closes: bounded by the timeout and the answer
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, headers, body


@pytest.mark.parametrize("path", ["/", "/metrics", "/-/healthy", "/-/ready", "/no-such-page"])
def test_head_answers_get_headers_without_a_body(demo: Exporter, path: str) -> None:
    get_status, get_headers, get_body = raw_request(demo.url, "GET", path)
    status, headers, body = raw_request(demo.url, "HEAD", path)
    assert get_body and body == b""
    assert status == get_status
    leave_out = {"date"} | ({"content-length", "connection"} if path == "/metrics" else set())
    # HEAD /metrics renders nothing, so it cannot say the length (RFC 9110 lets it leave it out).
    assert {k: v for k, v in headers.items() if k not in leave_out} == {
        k: v for k, v in get_headers.items() if k not in leave_out
    }
    if path == "/metrics":
        assert "content-length" not in headers and headers["content-encoding"] == "gzip"


def test_head_metrics_on_a_cold_exporter_calls_no_api(sim: Simulator, start: Any) -> None:
    exp = start(sim_config(sim, demo_jobs(sim), cache_ttl=3600))
    before = sim.stats()
    status, headers, body = raw_request(exp.url, "HEAD", "/metrics")
    assert status.endswith("200 OK") and body == b""
    assert headers["content-type"] == choose_encoder("")[1]
    for _ in range(10):  # nothing started in the background either
        assert sim.stats() == before
        time.sleep(0.1)
    log = exp.log()
    assert "refreshed job" not in log and "scrape answered" not in log
    # A GET then does refresh: the simulator is seen to count.
    exp.get(headers=LONG, timeout=60).raise_for_status()
    assert sim.stats() != before


def test_an_accept_version_prometheus_client_cannot_compare_is_a_clear_400(demo: Exporter) -> None:
    answer = demo.get(headers={"Accept": "application/openmetrics-text;version=one"})
    assert answer.status_code == 400 and "Accept header" in answer.text
    assert demo.get(headers=LONG).status_code == 200, "and the exporter keeps serving"
