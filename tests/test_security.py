"""Endpoint protection (exporter-toolkit web config), TLS to DRS, proxies, and hostile HTTP clients."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import trustme
import yaml

from .procs import Simulator, command, sim_config, value


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator("--jobs", "1", "--objects", "20")
    yield s
    s.stop()


def web_config(tmp_path: Path, content: dict[str, Any]) -> str:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(content))
    return str(path)


def server_cert(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(tmp_path / "server.crt"), append=True)
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    return {"cert_file": str(tmp_path / "server.crt"), "key_file": str(tmp_path / "server.key")}


def test_tls_endpoint(sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path) -> None:
    path = web_config(tmp_path, {"tls_server_config": server_cert(ca, tmp_path)})
    exp = start(sim_config(sim, sim.info["jobs"]), "--web.config.file", path)
    url = exp.url.replace("http://", "https://")
    answer = requests.get(url + "/metrics", verify=str(tmp_path / "ca.crt"), timeout=15)
    assert answer.status_code == 200 and "huaweicloud_drs_up" in answer.text
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/metrics", timeout=15)  # not trusted without the CA
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(exp.url + "/metrics", timeout=15)  # plain HTTP is not served


def test_mutual_tls(sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path) -> None:
    tls = {
        **server_cert(ca, tmp_path),
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(tmp_path / "ca.crt"),
    }
    exp = start(
        sim_config(sim, sim.info["jobs"]), "--web.config.file", web_config(tmp_path, {"tls_server_config": tls})
    )
    client = ca.issue_cert("prometheus")
    client.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
    url = exp.url.replace("http://", "https://") + "/metrics"
    answer = requests.get(url, verify=str(tmp_path / "ca.crt"), cert=str(tmp_path / "client.pem"), timeout=15)
    assert answer.status_code == 200
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url, verify=str(tmp_path / "ca.crt"), timeout=15)  # no client certificate


def test_basic_auth(sim: Simulator, start: Any, tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$", 1)
    path = web_config(tmp_path, {"basic_auth_users": {"prometheus": hashed}})
    exp = start(sim_config(sim, sim.info["jobs"]), "--web.config.file", path)
    for endpoint in ("/metrics", "/", "/-/healthy", "/-/ready"):
        missing = exp.get(endpoint)
        assert missing.status_code == 401, endpoint
        assert missing.headers["WWW-Authenticate"].startswith("Basic ")
    assert exp.get("/metrics", auth=("prometheus", "wrong")).status_code == 401
    assert exp.get("/metrics", auth=("nobody", "s3cret-pass")).status_code == 401
    assert exp.get("/metrics", headers={"Authorization": "Basic !!!notbase64"}).status_code == 401
    for _ in range(3):  # repeated checks use the cache of verified credentials
        good = exp.get("/metrics", auth=("prometheus", "s3cret-pass"))
        assert good.status_code == 200 and "huaweicloud_drs_up" in good.text
    assert "s3cret-pass" not in exp.log()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"basic_auth_users": {"u": "plaintext"}}, "basic_auth_users.u: must be a bcrypt hash"),
        (
            {"tls_server_config": {"cert_file": "/nonexistent.crt", "key_file": "/nonexistent.key"}},
            "tls_server_config.cert_file: file /nonexistent.crt does not exist",
        ),
        ({"tls_server_cnofig": {}}, "tls_server_cnofig: unknown key"),
    ],
)
def test_bad_web_config_exits_2(sim: Simulator, tmp_path: Path, content: dict[str, Any], expected: str) -> None:
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(sim_config(sim, sim.info["jobs"])))
    result = subprocess.run(
        [
            command("drs-exporter"),
            "--config.file",
            str(config),
            "--web.config.file",
            web_config(tmp_path, content),
            "--web.listen-address",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_slow_and_oversized_clients_do_not_block_scrapes(sim: Simulator, start: Any) -> None:
    exp = start(sim_config(sim, sim.info["jobs"]))
    host, port = exp.url.removeprefix("http://").split(":")
    slow: list[socket.socket] = []
    try:
        for _ in range(24):  # slowloris: requests that never finish their headers
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(s)
        big = socket.create_connection((host, int(port)), timeout=5)
        big.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        answer = big.recv(100)
        assert answer.startswith(b"HTTP/1.1 4"), answer  # refused (413/431), not served
        big.close()
        for _ in range(5):
            started = time.monotonic()
            assert exp.get("/metrics", timeout=5).status_code == 200
            assert time.monotonic() - started < 2.0
    finally:
        for s in slow:
            s.close()
    assert exp.proc.poll() is None


def tls_simulator(ca: trustme.CA, tmp_path: Path) -> Simulator:
    cert = server_cert(ca, tmp_path)
    return Simulator("--jobs", "1", "--objects", "5", "--tls-cert", cert["cert_file"], "--tls-key", cert["key_file"])


def test_tls_to_drs_is_verified(start: Any, ca: trustme.CA, tmp_path: Path) -> None:
    sim = tls_simulator(ca, tmp_path)
    try:
        assert sim.url.startswith("https://")
        trusted = start({**sim_config(sim, sim.info["jobs"]), "ca_file": str(tmp_path / "ca.crt")})
        assert value(trusted.metrics(), "huaweicloud_drs_up", job_id="job-0001") == 1
        default = start(sim_config(sim, sim.info["jobs"]))
        text = default.metrics()
        assert value(text, "huaweicloud_drs_up", job_id="job-0001") == 0
        assert (
            value(text, "huaweicloud_drs_api_errors_total", error_code="tls_error", operation="show_progress_data") == 1
        ), "not retried"
        insecure = start({**sim_config(sim, sim.info["jobs"]), "insecure_skip_verify": True})
        assert value(insecure.metrics(), "huaweicloud_drs_up", job_id="job-0001") == 1
        insecure.metrics()
        warnings = [line for line in insecure.log().splitlines() if "NOT verified" in line]
        assert len(warnings) == 1 and "level=warn" in warnings[0]
        assert "InsecureRequestWarning" not in insecure.log()
    finally:
        sim.stop()


class Proxy(ThreadingHTTPServer):
    """A forwarding HTTP proxy that counts what goes through it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.seen.append(self.path)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
                upstream = requests.get(self.path, headers=headers, timeout=10)
                self.send_response(upstream.status_code)
                for name in ("Content-Type", "X-Request-Id"):
                    if name in upstream.headers:
                        self.send_header(name, upstream.headers[name])
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_proxy_environment_is_honoured(sim: Simulator, start: Any) -> None:
    proxy = Proxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
        base = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
        via = start(sim_config(sim, sim.info["jobs"]), env={**base, "HTTP_PROXY": proxy_url})
        assert value(via.metrics(), "huaweicloud_drs_up", job_id="job-0001") == 1
        assert proxy.seen and all(p.startswith(sim.url + "/v5/") for p in proxy.seen), "signed requests went through"
        count = len(proxy.seen)
        direct = start(
            sim_config(sim, sim.info["jobs"]), env={**base, "HTTP_PROXY": proxy_url, "NO_PROXY": "127.0.0.1"}
        )
        assert value(direct.metrics(), "huaweicloud_drs_up", job_id="job-0001") == 1
        assert len(proxy.seen) == count, "NO_PROXY bypassed the proxy"
    finally:
        proxy.shutdown()
