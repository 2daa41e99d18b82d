"""The HTTP server in the process: request parsing, fair turns, per-address limits, a live web config."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import bcrypt
import pytest
import requests
import trustme
import yaml

from exporter.web import httpwire, webconfig
from exporter.web.connections import Conn, FairQueue, Limits, client_key
from exporter.web.httpserver import Server
from exporter.web.passwords import PasswordChecks
from exporter.web.server import WebApp, WebServer, scrape_budget

from .test_security import server_cert

# --- the wire


def parse(raw: bytes) -> httpwire.Request:
    end = httpwire.head_end(raw)
    assert end > 0
    request = httpwire.parse_head(raw[:end])
    got = httpwire.body_length(request, raw[end:])
    assert got is not None
    request.body = got[0]
    return request


def test_a_request_into_a_wsgi_environ() -> None:
    request = parse(
        b"\r\nGET /a%20b%2Fc?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nX-Two: 1\r\nX-Two: 2\r\n"
        b"X-Folded: a\r\n  b\r\nContent-Type: text/plain\r\n\r\n"
    )
    env = httpwire.environ(request, ("127.0.0.1", 80), ("10.0.0.1", 5555), "http")
    assert env["PATH_INFO"] == "/a b%2Fc" and env["QUERY_STRING"] == "x=1&y=%20"
    assert env["HTTP_X_TWO"] == "1, 2" and env["HTTP_X_FOLDED"] == "a b"
    assert env["CONTENT_TYPE"] == "text/plain" and "HTTP_CONTENT_TYPE" not in env
    assert env["REMOTE_ADDR"] == "10.0.0.1" and env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert request.keep_alive


def test_bodies_by_length_and_chunked() -> None:
    assert parse(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcNEXT").body == b"abc"
    chunked = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert chunked.body == b"abcde"
    head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    request = httpwire.parse_head(head)
    assert httpwire.body_length(request, b"3\r\nab") is None, "not whole yet"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", "400"),
        (b"GET / HTTP/2.0\r\n\r\n", "505"),
        (b"get / HTTP/1.1\r\n\r\n", "400"),
        (b"GET http://x/ HTTP/1.1\r\n\r\n", "400"),
        (b"GET /#f HTTP/1.1\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n", "413"),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "501"),
        (b"GET / HTTP/1.1\nHost: x\n\n", "400"),
    ],
)
def test_bad_requests_are_refused_as_cheroot_did(raw: bytes, status: str) -> None:
    with pytest.raises(httpwire.HTTPError) as info:
        end = httpwire.head_end(raw)
        httpwire.parse_head(raw[:end])
    assert info.value.status.startswith(status)
    assert info.value.answer().startswith(b"HTTP/1.1 " + status.encode())


def plain(status: str, text: str, close: bool = False) -> bytes:
    """cheroot's simple_response, as its server.py writes it."""
    extra = b"Connection: close\r\n" if close else b""
    head = b"HTTP/1.1 %s\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n" % (status.encode(), len(text))
    return head + extra + b"\r\n" + text.encode()


NOT_ORIGIN = (
    "Invalid path in Request-URI: request-target must contain origin-form which starts with absolute-path "
    '(URI starting with a slash "/").'
)


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        (
            b"GET / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",
            plain("400 Bad Request", "Malformed Content-Length Header."),
        ),
        (b"GET /\r\n", plain("400 Bad Request", "Malformed Request-Line")),  # at once: no blank line needed
        (b"GET /a b HTTP/1.1\r\n", plain("400 Bad Request", "Malformed Request-Line: bad protocol")),
        (b"GET / HTTP/1\r\n", plain("400 Bad Request", "Malformed Request-Line: bad version")),
        (b"GET / HTTP/1.1 x\r\n", plain("400 Bad Request", "Malformed Request-Line")),
        (b"GET x HTTP/1.1\r\n\r\n", plain("400 Bad Request", NOT_ORIGIN)),
        (b"GET * HTTP/1.1\r\n\r\n", plain("400 Bad Request", NOT_ORIGIN)),
        (
            b"GET //host/ HTTP/1.1\r\n\r\n",
            plain("400 Bad Request", "Absolute URI not allowed if server is not a proxy."),
        ),
        (b"GET /\xe9 HTTP/1.1\r\n\r\n", plain("400 Bad Request", "Malformed Request-URI")),
        (b"CONNECT h:443 HTTP/1.1\r\n\r\n", plain("405 Method Not Allowed", "")),
        (b"GET / HTTP/1.1\n", plain("400 Bad Request", "HTTP requires CRLF terminators")),
        (
            b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n",
            plain(
                "414 Request-URI Too Long", "The Request-URI sent with the request exceeds the maximum allowed bytes."
            ),
        ),
        (
            b"GET / HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n",
            plain(
                "413 Request Entity Too Large",
                "The headers sent with the request exceed the maximum allowed bytes.",
                True,
            ),
        ),
        (
            b"GET / HTTP/1.0\r\nContent-Length: 70000\r\n\r\n",
            plain(
                "413 Request Entity Too Large", "The entity sent with the request exceeds the maximum allowed bytes."
            ),
        ),
    ],
)
def test_refusals_are_cheroots_byte_for_byte(raw: bytes, answer: bytes) -> None:
    with pytest.raises(httpwire.HTTPError) as info:
        httpwire.parse_head(raw[: httpwire.head_end(raw)])
    assert info.value.answer() == answer


def test_a_fragment_alone_is_no_fragment() -> None:
    request = parse(b"GET /x?q=1# HTTP/1.1\r\n\r\n")  # cheroot's urlsplit: an empty fragment is none
    env = httpwire.environ(request, ("127.0.0.1", 80), ("10.0.0.1", 5555), "http")
    assert env["PATH_INFO"] == "/x" and env["QUERY_STRING"] == "q=1"


@pytest.mark.parametrize("raw", [b"GET /\r\n", b"GET / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n"])
def test_bad_requests_are_answered_at_once_on_the_wire(running: Any, raw: bytes) -> None:
    server = running(Server(hello, "127.0.0.1", 0, limits=Limits(workers=1)))
    with socket.create_connection(server.bind_addr, timeout=5) as s:
        s.sendall(raw)
        s.settimeout(3)  # well before the 10 s request deadline
        received = b""
        for _ in range(10):
            data = s.recv(4096)
            if not data:
                break
            received += data
    assert received.startswith(b"HTTP/1.1 400 Bad Request\r\n"), received


def test_response_heads() -> None:
    request = httpwire.parse_head(b"GET / HTTP/1.1\r\n\r\n")
    head, close = httpwire.response_head("200 OK", [("Content-Length", "2")], request, close=False)
    assert not close and head.startswith(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: ")
    assert head.endswith(b"Server: drs-exporter\r\n\r\n")
    head, close = httpwire.response_head("200 OK", [("Content-Type", "x")], request, close=False)
    assert close and b"Connection: close\r\n" in head, "no length: delimited by closing"
    old = httpwire.parse_head(b"GET / HTTP/1.0\r\n\r\n")
    assert not old.keep_alive
    head, close = httpwire.response_head("200 OK", [("Content-Length", "2")], old, close=True)
    assert close and b"Connection" not in head


def test_scrape_budget_is_capped() -> None:
    assert scrape_budget("1e9") == pytest.approx(59.5)
    assert scrape_budget("1e9", 5) == pytest.approx(4.5)
    assert scrape_budget(None, 5) == pytest.approx(4.5)
    assert scrape_budget("2", 5) == pytest.approx(1.6)


# --- turns


def conn(ip: str) -> Conn:
    return Conn(cast(Any, None), (ip, 1), "running", 0.0)


def test_fair_queue_takes_addresses_in_turn_with_a_cap() -> None:
    queue = FairQueue(limit=2)
    first = [conn("a"), conn("a"), conn("a")]
    other = conn("b")
    for c in first:
        queue.put(c)
    queue.put(other)
    taken = [queue.get(), queue.get(), queue.get()]
    assert taken == [first[0], other, first[1]], "a, then b's turn, then a again"
    got: list[Conn | None] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get()))
    waiter.start()
    waiter.join(timeout=0.3)
    assert not got, "a already has 2 running: its third waits"
    queue.done("a")
    waiter.join(timeout=5)
    assert got == [first[2]]
    queue.close()
    assert queue.get() is None


def test_password_checks_one_per_address_and_bounded_waits() -> None:
    checks = PasswordChecks(slots=2, wait=0.2)
    assert checks.acquire("a")
    assert not checks.acquire("a"), "one at a time per address: the second gives up after its wait"
    assert checks.acquire("b")
    assert not checks.acquire("c"), "both slots taken"
    checks.release("a")
    assert checks.acquire("c")
    checks.release("b")
    checks.release("c")
    assert not checks.acquire("d", since=time.monotonic() - 0.3), "it waited its time for a thread already"
    assert checks.acquire("d", since=time.monotonic() - 0.1)
    checks.release("d")


def test_an_unknown_user_waits_for_a_turn_too() -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    web = webconfig.WebConfig(basic_auth_users={"u": hashed})
    checks = PasswordChecks(slots=1, wait=0.05)
    header = "Basic " + base64.b64encode(b"u:pw").decode()
    assert web.authorize(header, "a", checks) is webconfig.Verdict.OK
    assert checks.acquire("x")  # someone is hashing
    try:
        assert web.authorize(header, "a", checks) is webconfig.Verdict.OK, "verified credentials are cached"
        unknown = "Basic " + base64.b64encode(b"nobody:pw").decode()
        assert web.authorize(unknown, "a", checks) is webconfig.Verdict.BUSY
        wrong = "Basic " + base64.b64encode(b"u:wrong").decode()
        assert web.authorize(wrong, "a", checks) is webconfig.Verdict.BUSY
    finally:
        checks.release("x")
    assert web.authorize(wrong, "a", checks) is webconfig.Verdict.DENIED


# --- a server in this process


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"hi\n"]


@pytest.fixture
def running() -> Iterator[Any]:
    """Start a server in a thread; stopped (and its thread joined) after the test."""
    servers: list[tuple[Server, threading.Thread]] = []

    def run(server: Server) -> Server:
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server

    yield run
    for server, thread in servers:
        server.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()


def is_closed(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_an_address_over_its_limit_loses_its_oldest_waiting_connection(running: Any) -> None:
    server = running(Server(hello, "127.0.0.1", 0, limits=Limits(connections_per_ip=4, workers=2)))
    idle = [socket.create_connection(server.bind_addr, timeout=5) for _ in range(6)]
    try:
        assert is_closed(idle[0], 5) and is_closed(idle[1], 5), "the two oldest make room"
        assert not any(is_closed(s, 0.3) for s in idle[2:])
        answer = requests.get("http://{}:{}/".format(*server.bind_addr), timeout=5)
        assert answer.text == "hi\n", "a client that asks something is served"
    finally:
        for s in idle:
            s.close()


def test_an_answer_has_a_total_deadline_however_the_client_reads(running: Any) -> None:
    """A client that keeps taking bytes, but slowly, gets no more than answer_time + size / answer_rate
    to take its answer (here 1 + 32 MiB / 16 MiB = 3 s), however often it makes progress."""
    size = 32 * 1024 * 1024  # more than the kernel buffers of both ends (6 + 4 MiB by default)

    def big(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(size))])
        return [b"x" * size]

    limits = Limits(workers=1, write_timeout=5.0, answer_time=1.0, answer_rate=16 * 1024 * 1024)
    server = running(Server(big, "127.0.0.1", 0, limits=limits))
    with socket.create_connection(server.bind_addr, timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = 0
        for _ in range(200):  # 4 s of a slow reader: 16 KB every 20 ms
            got += len(s.recv(16384))
            time.sleep(0.02)
        s.settimeout(10)
        for _ in range(10_000):  # then it reads as fast as it can: what the kernel still holds, and the end
            data = s.recv(1 << 20)
            if not data:
                break
            got += len(data)
        assert got < size, "cut at its deadline, not sent whole"


def test_ipv6_clients_are_limited_by_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1" != client_key("::ffff:10.0.0.2"), "IPv4 is per address"
    assert client_key("10.0.0.1") == "10.0.0.1"
    assert conn("2001:db8::1").ip == "2001:db8::/64"


def test_a_64_over_its_limit_loses_its_oldest_connection() -> None:
    """Three addresses of one /64 share its limit of 2 connections (peers given as accept() would)."""
    server = Server(hello, "127.0.0.1", 0, limits=Limits(connections_per_ip=2))
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        for n, (ours, _) in enumerate(pairs):
            server._admit(ours, (f"2001:db8::{n + 1}", 5000 + n))
        assert is_closed(pairs[0][1], 2), "the oldest of the /64 made room"
        assert not is_closed(pairs[2][1], 0.2)
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
        server.stop()
        server.serve()  # returns at once: closes what it holds


def test_stop_answers_requests_in_flight(running: Any) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        entered.set()
        release.wait(5)
        return hello(environ, start_response)

    server = Server(slow, "127.0.0.1", 0, limits=Limits(workers=1, drain=5))
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    conn = http.client.HTTPConnection(*server.bind_addr, timeout=10)
    conn.request("GET", "/")
    assert entered.wait(10), "the request reached the application"
    server.stop()
    release.set()
    answer = conn.getresponse()
    assert answer.status == 200 and answer.getheader("Connection") == "close"
    thread.join(timeout=10)
    assert not thread.is_alive()


def web_file(tmp_path: Path, content: dict[str, Any]) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(content))
    return path


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_apply_web_config_serves_new_connections_with_the_new_settings(running: Any, tmp_path: Path) -> None:
    """Users and TLS change for new connections; an open one keeps its TLS (none here) and gets the new users."""
    alice = bcrypt.hashpw(b"alice-pw", bcrypt.gensalt(rounds=4)).decode()
    bob = bcrypt.hashpw(b"bob-pw", bcrypt.gensalt(rounds=4)).decode()
    app = WebApp(cast(Any, None), web=webconfig.WebConfig(basic_auth_users={"alice": alice}))
    server = running(WebServer(app, "127.0.0.1", 0))
    host, port = server.bind_addr
    kept = http.client.HTTPConnection(host, port, timeout=10)

    def kept_status(headers: dict[str, str]) -> int:
        kept.request("GET", "/-/healthy", headers=headers)
        answer = kept.getresponse()
        answer.read()
        return answer.status

    assert kept_status(basic("alice", "alice-pw")) == 200
    ca = trustme.CA()
    files = server_cert(ca, tmp_path)
    path = web_file(tmp_path, {"tls_server_config": files, "basic_auth_users": {"bob": bob}})
    server.apply_web_config(webconfig.load(path))
    https = f"https://{host}:{port}/-/healthy"
    ca_file = str(tmp_path / "ca.crt")
    assert requests.get(https, verify=ca_file, headers=basic("bob", "bob-pw"), timeout=10).status_code == 200
    assert requests.get(https, verify=ca_file, headers=basic("alice", "alice-pw"), timeout=10).status_code == 401
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://{host}:{port}/-/healthy", timeout=10)  # new connections speak TLS
    assert kept_status(basic("bob", "bob-pw")) == 200, "the open connection, plain as it began, with the new users"
    assert kept_status(basic("alice", "alice-pw")) == 401
    kept.close()

    # A rotated certificate: the same file names, another CA; read when the configuration is applied.
    old_ca = tmp_path / "old-ca.crt"
    old_ca.write_text((tmp_path / "ca.crt").read_text())
    server_cert(trustme.CA(), tmp_path)
    server.apply_web_config(webconfig.load(path))
    assert requests.get(https, verify=ca_file, headers=basic("bob", "bob-pw"), timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https, verify=str(old_ca), timeout=10)


def test_a_web_config_that_cannot_load_changes_nothing(running: Any, tmp_path: Path) -> None:
    ca = trustme.CA()
    files = server_cert(ca, tmp_path)
    path = web_file(tmp_path, {"tls_server_config": files})
    app = WebApp(cast(Any, None), web=webconfig.load(path))
    server = running(WebServer(app, "127.0.0.1", 0))
    broken = webconfig.load(path)
    Path(files["key_file"]).write_text("not a key\n")  # between validation and use
    with pytest.raises((ssl.SSLError, OSError, ValueError)):
        server.apply_web_config(broken)
    assert app.web is not broken
    url = "https://{}:{}/-/healthy".format(*server.bind_addr)
    assert requests.get(url, verify=str(tmp_path / "ca.crt"), timeout=10).status_code == 200
