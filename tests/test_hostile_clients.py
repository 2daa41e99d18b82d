"""Hostile and broken HTTP clients against the real exporter process (issue 22, the server half).

Idle connections, clients dripping their headers, silent or truncated TLS handshakes and readers
that never read must cost the exporter a file descriptor, not a worker or the accept loop: a scrape
and /-/healthy answer within 2 s while they are open, and each of them is closed at its deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import struct
import threading
import time
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import trustme

from exporter.web import passwords

from .procs import Exporter, Simulator, sim_config, value, wait_for
from .test_security import server_cert, web_config

QUICK = 2.0  # seconds: what a scrape may take while the hostile clients are connected


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator("--jobs", "2", "--objects", "200")
    yield s
    s.stop()


def address(exp: Exporter) -> tuple[str, int]:
    host, port = exp.url.rsplit("//", 1)[1].split(":")
    return host, int(port)


def answers_quickly(url: str, **kwargs: Any) -> None:
    """/metrics and /-/healthy answer 200 within QUICK seconds each."""
    for path in ("/metrics", "/-/healthy"):
        started = time.monotonic()
        answer = requests.get(url + path, timeout=QUICK + 3, **kwargs)
        took = time.monotonic() - started
        assert answer.status_code == 200, path
        assert took < QUICK, f"{path} took {took:.1f}s"


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes ``sock`` within ``timeout`` seconds (reading and dropping what it sends)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionError, OSError):
        return True
    return False


def connect_many(exp: Exporter, count: int) -> list[socket.socket]:
    return [socket.create_connection(address(exp), timeout=5) for _ in range(count)]


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


def test_idle_connections_cost_no_worker(sim: Simulator, start: Any) -> None:
    """A port scanner's bare connects (150, more than cheroot's 64 workers) do not delay anyone."""
    exp = start(sim_config(sim, sim.info["jobs"]))
    exp.metrics()  # refreshed once: what follows measures the server, not the API
    idle = connect_many(exp, 150)
    try:
        answers_quickly(exp.url)
        assert closed_by_server(idle[0], 15), "a connection that says nothing is closed at the request deadline"
    finally:
        close_all(idle)
    assert exp.proc.poll() is None


def test_dripping_headers_are_cut_at_the_request_deadline(sim: Simulator, start: Any) -> None:
    """Slowloris: 80 clients sending one header line every 3 s; per-read timeouts never end them."""
    exp = start(sim_config(sim, sim.info["jobs"]))
    exp.metrics()
    drips = connect_many(exp, 80)
    stop = threading.Event()

    def drip() -> None:
        for n in range(20):  # bounded: 60 s at most, stopped long before
            for s in drips:
                with contextlib.suppress(OSError):  # closed by the server: what is expected
                    s.sendall(b"GET /metrics HTTP/1.1\r\n" if n == 0 else b"X-Drip-%d: x\r\n" % n)
            if stop.wait(3):
                return

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        for _ in range(3):  # while they drip (the first 7 s)
            time.sleep(1.5)
            answers_quickly(exp.url)
        # The head must be whole 10 s after the connection was accepted, however it trickles in.
        assert all(closed_by_server(s, 15) for s in drips[:5])
    finally:
        stop.set()
        dripper.join(timeout=10)
        close_all(drips)
    assert exp.proc.poll() is None


def client_hello() -> bytes:
    """The first flight of a real TLS client."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("auth_type", ["NoClientCert", "RequestClientCert"], ids=["stdlib", "pyopenssl"])
def test_silent_tls_clients_do_not_hold_the_accept_loop(
    sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path, auth_type: str
) -> None:
    """5 TLS clients that never finish their handshake, and a truncated ClientHello (cheroot issue 748)."""
    tls = {**server_cert(ca, tmp_path), "client_auth_type": auth_type}
    web = web_config(tmp_path, {"tls_server_config": tls})
    exp = start(sim_config(sim, sim.info["jobs"]), "--web.config.file", web)
    url = exp.url.replace("http://", "https://")
    ca_file = str(tmp_path / "ca.crt")
    requests.get(url + "/metrics", verify=ca_file, timeout=15).raise_for_status()
    silent = connect_many(exp, 6)
    hello = client_hello()
    silent[-1].sendall(hello[: len(hello) // 2])
    try:
        for _ in range(2):
            answers_quickly(url, verify=ca_file)
        assert closed_by_server(silent[-1], 15), "a stalled handshake is closed at the request deadline"
    finally:
        close_all(silent)
    assert exp.proc.poll() is None


def test_readers_that_never_read_cost_no_worker(start: Any) -> None:
    """70 clients ask for a large answer and never read it: the server sends it as they read, not in a worker."""
    big = Simulator("--jobs", "1", "--objects", "20000")
    try:
        exp = start(sim_config(big, big.info["jobs"]))
        size = len(exp.get("/metrics", headers={"Accept-Encoding": "identity"}).content)
        assert size > 2_000_000
        stuck = connect_many(exp, 70)
        for s in stuck:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n")
        try:
            time.sleep(1)  # their answers are computed and partly sent
            answers_quickly(exp.url)
        finally:
            close_all(stuck)
        assert exp.proc.poll() is None
    finally:
        big.stop()


def test_readers_filling_every_slot_make_room_for_another_address(start: Any) -> None:
    """With `ulimit -n 128` (64 connections), 64 readers of one address that never read a 6 MB answer
    fill the server: a new client from another address closes one of theirs, and is served at once."""
    big = Simulator("--jobs", "1", "--objects", "60000")
    try:
        exp = start(sim_config(big, big.info["jobs"]), open_files=128)
        # Larger than what the kernel buffers for a connection: its answer stays in the exporter.
        assert len(exp.get("/metrics", headers={"Accept-Encoding": "identity"}).content) > 6_000_000
        host, port = address(exp)
        stuck = [socket.create_connection((host, port), timeout=5, source_address=("127.0.0.2", 0)) for _ in range(64)]
        try:
            for s in stuck:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n")

            def sending(s: socket.socket) -> bool:
                s.settimeout(0.05)
                try:
                    return bool(s.recv(1, socket.MSG_PEEK))
                except (TimeoutError, BlockingIOError):
                    return False

            wait_for(lambda: all(sending(s) for s in stuck), 30)  # every answer is being sent: all 64 slots held
            answers_quickly(exp.url)
            assert any(closed_by_server(s, 0.5) for s in stuck), "room was made from the address holding most"
        finally:
            close_all(stuck)
        assert exp.proc.poll() is None
    finally:
        big.stop()


def test_scrape_timeout_header_is_capped(start: Any) -> None:
    """X-Prometheus-Scrape-Timeout-Seconds: 1e9 waits --web.max-scrape-timeout, not the refresh's minute."""
    slow = Simulator("--jobs", "1", "--objects", "10", "--latency-ms", "20000")
    try:
        exp = start(sim_config(slow, slow.info["jobs"], refresh_timeout=60), "--web.max-scrape-timeout", "2")
        started = time.monotonic()
        answer = exp.get("/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "1e9"}, timeout=15)
        took = time.monotonic() - started
        assert answer.status_code == 200
        assert value(answer.text, "huaweicloud_drs_up", job_id=slow.info["jobs"][0]) == 0, "cut at the budget"
        assert took < 5, f"answered after {took:.1f}s"
    finally:
        slow.stop()


@pytest.mark.parametrize("flag", ["0", "-1", "nan", "x"])
def test_bad_max_scrape_timeout_exits_2(sim: Simulator, start: Any, flag: str) -> None:
    with pytest.raises(RuntimeError, match="exited early"):
        start(sim_config(sim, sim.info["jobs"]), "--web.max-scrape-timeout", flag)


def test_kept_connections_are_served_and_idle_ones_closed(sim: Simulator, start: Any) -> None:
    """Keep-alive and pipelining still work; a kept connection is not a way around the request deadline."""
    exp = start(sim_config(sim, sim.info["jobs"]))
    with socket.create_connection(address(exp), timeout=10) as s:
        s.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\nGET /-/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        for _ in range(100):
            received += s.recv(65536)
            if received.count(b"HTTP/1.1 200 OK") == 2 and received.endswith(b"Ready\n"):
                break
        assert b"Healthy\n" in received and received.endswith(b"Ready\n")
        s.sendall(b"GET /-/healthy HTTP/1.1\r\n")  # then nothing more
        assert closed_by_server(s, 15)
    assert exp.proc.poll() is None


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_wrong_passwords_take_at_most_their_share_of_the_cpu(sim: Simulator, start: Any, tmp_path: Path) -> None:
    """Without rate_limit, 16 clients guessing passwords get bcrypt in turns: one check at a time per address.

    Their checks queue; those that wait longer than 2 s for a turn are answered 429 (before, all 16
    hashed at once on every core). Prometheus's verified credentials are cached and never queue.
    """
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=12)).decode()
    web = web_config(tmp_path, {"basic_auth_users": {"prometheus": hashed}})
    exp = start(sim_config(sim, sim.info["jobs"]), "--web.config.file", web)
    good = ("prometheus", "right")
    assert exp.get("/metrics", auth=good).status_code == 200  # verified once, then cached
    stop = threading.Event()
    statuses: list[int] = []
    retry_after: set[str] = set()

    def guess(n: int) -> None:
        with requests.Session() as session:
            for i in range(500):  # bounded; stopped after a few seconds
                if stop.is_set():
                    return
                answer = session.get(exp.url + "/-/healthy", auth=("prometheus", f"guess-{n}-{i}"), timeout=15)
                statuses.append(answer.status_code)
                retry_after.add(answer.headers.get("Retry-After", ""))

    guessers = [threading.Thread(target=guess, args=(n,), daemon=True) for n in range(16)]
    for thread in guessers:
        thread.start()
    try:
        time.sleep(1)  # the guessing is in full swing
        cpu, started = cpu_seconds(exp.proc.pid), time.monotonic()
        answers_quickly(exp.url, auth=good)
        time.sleep(max(0.0, started + 3 - time.monotonic()))
        used = (cpu_seconds(exp.proc.pid) - cpu) / (time.monotonic() - started)
    finally:
        stop.set()
        for thread in guessers:
            thread.join(timeout=20)
    assert set(statuses) == {401, 429}, "checked in turns, and refused when no turn comes in time"
    assert "1" in retry_after
    assert used < passwords.default_slots() + 0.4, f"{used:.2f} cores"


def test_guessers_on_many_addresses_do_not_starve_verified_clients(sim: Simulator, start: Any, tmp_path: Path) -> None:
    """The reviewer's test: 40 addresses x 2 clients guessing passwords (each waiting for a bcrypt turn)
    must not hold the workers that a client with verified, cached credentials needs."""
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=10)).decode()
    exp = start(
        sim_config(sim, sim.info["jobs"]),
        "--web.config.file",
        web_config(tmp_path, {"basic_auth_users": {"p": hashed}}),
    )
    host, port = address(exp)
    good = ("p", "right")
    assert requests.get(exp.url + "/-/healthy", auth=good, timeout=10).status_code == 200  # verified, cached
    stop = threading.Event()
    wrong = {"Authorization": "Basic " + b64encode(b"p:wrong").decode()}

    def guess(src: str) -> None:
        for _ in range(200):  # bounded; stopped after a few seconds
            if stop.is_set():
                return
            try:
                c = http.client.HTTPConnection(host, port, timeout=5, source_address=(src, 0))
                c.request("GET", "/-/healthy", headers=wrong)
                c.getresponse().read()
                c.close()
            except OSError:
                pass

    threads = [
        threading.Thread(target=guess, args=(f"127.0.1.{a + 1}",), daemon=True) for a in range(40) for _ in range(2)
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        took = []
        for _ in range(4):
            started = time.monotonic()
            assert requests.get(exp.url + "/-/healthy", auth=good, timeout=15).status_code == 200
            took.append(time.monotonic() - started)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert max(took) < 2.0, [round(t, 1) for t in took]


def test_clients_that_leave_before_their_answer(sim: Simulator, start: Any) -> None:
    """Answers to closed or reset connections end those connections, never the server."""
    exp = start(sim_config(sim, sim.info["jobs"]))
    for reset in (False, True):
        for _ in range(3):
            gone = connect_many(exp, 30)
            for s in gone:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                if reset:  # RST instead of FIN
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            close_all(gone)
        answers_quickly(exp.url)
    assert exp.proc.poll() is None
    assert "Traceback" not in exp.log()
