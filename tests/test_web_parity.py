"""exporter-toolkit parity of ``--web.config.file``: every key, client certificates, basic auth, headers.

The real exporter runs on 127.0.0.1 and is spoken to with Python's ssl module, ``requests``, raw
sockets and the real ``curl`` binary.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import trustme
import yaml

from exporter.config.validation import ConfigError
from exporter.web import webconfig

from .procs import Exporter, Simulator, command, sim_config, wait_for
from .test_security import server_cert, web_config

STATIC_CONFIG = "region: ap-southeast-1\nproject_id: abc\nauth: {token: abcdefgh}\njobs: [a]\n"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator("--jobs", "1", "--objects", "5")
    yield s
    s.stop()


def check(tmp_path: Path, content: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
    """``drs-exporter --config.check`` with this web configuration: a real start-up, without serving."""
    (tmp_path / "c.yml").write_text(STATIC_CONFIG)
    web = tmp_path / "web.yml"
    web.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return subprocess.run(
        [
            command("drs-exporter"),
            "--config.check",
            "--config.file",
            str(tmp_path / "c.yml"),
            *("--web.config.file", str(web)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


# --- every key: accepted, or refused at start-up with exit 2 and one line naming it


def client_files(ca: trustme.CA, tmp_path: Path, name: str, *identities: str) -> tuple[str, str]:
    """A client certificate and key issued by ``ca``, as two files."""
    cert = ca.issue_cert(*(identities or ("prometheus",)))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / f"{name}.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / f"{name}.key"))
    return str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key")


def test_every_supported_key_is_accepted(ca: trustme.CA, tmp_path: Path) -> None:
    files = server_cert(ca, tmp_path)
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    content = {
        "tls_server_config": {
            **files,
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": str(tmp_path / "ca.crt"),
            "client_allowed_sans": ["prometheus"],
            "min_version": "TLS12",
            "max_version": "TLS13",
            "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
            "prefer_server_cipher_suites": False,
            "curve_preferences": ["X25519"],
        },
        "http_server_config": {
            "http2": False,
            "headers": {
                "Content-Security-Policy": "default-src 'self'",
                "X-Frame-Options": "sameorigin",
                "X-Content-Type-Options": "nosniff",
                "X-XSS-Protection": 1,
                "Strict-Transport-Security": "max-age=31536000",
            },
        },
        "basic_auth_users": {"prometheus": hashed},
        "rate_limit": {"interval": "1m30s", "burst": 5},
    }
    result = check(tmp_path, content)
    assert result.returncode == 0, result.stderr
    inline = {
        "tls_server_config": {
            "cert": Path(files["cert_file"]).read_text(),
            "key": Path(files["key_file"]).read_text(),
            "client_auth_type": "VerifyClientCertIfGiven",
            "client_ca": (tmp_path / "ca.crt").read_text(),
        }
    }
    result = check(tmp_path, inline)
    assert result.returncode == 0, result.stderr


REFUSED = [
    ({"client_auth_type": "RequireAnyCert"}, "tls_server_config.client_auth_type: must be one of"),
    (
        {"client_auth_type": "RequireAnyClientCert", "curve_preferences": ["X25519"]},
        "tls_server_config.curve_preferences: X25519 is not supported with RequireAnyClientCert",
    ),
    (
        {"client_auth_type": "RequestClientCert", "client_allowed_sans": ["x"]},
        "tls_server_config.client_allowed_sans: needs client_auth_type RequireAnyClientCert or",
    ),
    ({"min_version": "TLS10"}, "tls_server_config.min_version: TLS10 is not supported"),
    ({"max_version": "TLS11"}, "tls_server_config.max_version: TLS11 is not supported"),
    ({"min_version": "TLS13", "max_version": "TLS12"}, "tls_server_config.min_version: is above max_version"),
    ({"curve_preferences": ["CurveP256", "X25519"]}, "tls_server_config.curve_preferences: lists of several curves"),
    ({"curve_preferences": ["CurveP257"]}, "tls_server_config.curve_preferences: must be one of"),
    ({"cipher_suites": ["TLS_RSA_WITH_RC4_128_SHA"]}, "tls_server_config.cipher_suites: must be one of"),
    (
        {"cipher_suites": ["TLS_AES_128_GCM_SHA256"], "max_version": "TLS12"},
        "tls_server_config.cipher_suites: names no TLS 1.2 suite",
    ),
    ({"client_ca_file": "CA"}, "tls_server_config.client_ca_file: is set but client_auth_type is NoClientCert"),
    ({"client_allowed_sans": ["x"]}, "tls_server_config.client_allowed_sans: needs client_auth_type"),
    ({"cert": "CERT"}, "tls_server_config.cert: give cert or cert_file, not both"),
    ({"key": "KEY"}, "tls_server_config.key: give key or key_file, not both"),
    ({"key_file": None}, "tls_server_config.key_file: is required (or key)"),
]


@pytest.mark.parametrize(("tls", "expected"), REFUSED, ids=[e.split(": ")[0] + ":" + str(t) for t, e in REFUSED])
def test_unsupported_tls_settings_exit_2_naming_the_key(
    ca: trustme.CA, tmp_path: Path, tls: dict[str, Any], expected: str
) -> None:
    files: dict[str, Any] = server_cert(ca, tmp_path)
    pems = {"CA": str(tmp_path / "ca.crt"), "CERT": Path(files["cert_file"]).read_text()}
    pems["KEY"] = Path(files["key_file"]).read_text()
    settings = {**files, **{k: pems.get(v, v) if isinstance(v, str) else v for k, v in tls.items()}}
    result = check(tmp_path, {"tls_server_config": {k: v for k, v in settings.items() if v is not None}})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert "PRIVATE KEY" not in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"http_server_config": {"headers": {"Content-Type": "x"}}}, "http_server_config.headers.Content-Type: unk"),
        ({"http_server_config": {"headers": {"X-Frame-Options": "allow"}}}, "headers.X-Frame-Options: must be one of"),
        ({"http_server_config": {"headers": {"X-XSS-Protection": "1\r\nX: y"}}}, "X-XSS-Protection: must be one line"),
        ({"rate_limit": {"interval": 5}}, "rate_limit.interval: must be a duration with a unit"),
        ({"rate_limit": {"interval": "1s", "burst": -1}}, "rate_limit.burst: must not be negative"),
        ({"rate_limit": {"every": "1s"}}, "rate_limit.every: unknown key"),
        ({"basic_auth_users": {"u": "$2y$03$" + "a" * 53}}, "basic_auth_users.u: must be a bcrypt hash"),
        ({"basic_auth_users": {"u": "$2b$04$" + "a" * 53 + "\n"}}, "basic_auth_users.u: must be a bcrypt hash"),
        (
            {"http_server_config": {"headers": {"Content-Security-Policy": "default-src \u2018self\u2019"}}},
            "headers.Content-Security-Policy: must be visible ASCII text (RFC 9110)",
        ),
        (
            {"http_server_config": {"headers": {"X-XSS-Protection": "1; mode=block\u0000\u007f"}}},
            "headers.X-XSS-Protection: must be visible ASCII text",
        ),
        ("basic_auth_users:\n  u: x\n  u: y\n", "web config file"),
    ],
)
def test_bad_http_settings_exit_2_naming_the_key(tmp_path: Path, content: dict[str, Any], expected: str) -> None:
    result = check(tmp_path, content)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_user_names_are_read_as_written_and_mixed_costs_are_warned(sim: Simulator, start: Any, tmp_path: Path) -> None:
    """YAML would read `yes` as true and `007` as 7; Go reads map keys as written. Mixed costs leak timing."""
    four = bcrypt.hashpw(b"pw-four", bcrypt.gensalt(rounds=4)).decode()
    five = bcrypt.hashpw(b"pw-five", bcrypt.gensalt(rounds=5)).decode()
    text = f"basic_auth_users:\n  yes: '{four}'\n  on: '{four}'\n  007: '{five}'\n"
    (tmp_path / "web.yml").write_text(text)
    exp = start(sim_config(sim, sim.info["jobs"]), "--web.config.file", str(tmp_path / "web.yml"))
    assert raw_get(exp.url, basic(b"yes:pw-four"))[0] == 200
    assert raw_get(exp.url, basic(b"on:pw-four"))[0] == 200
    assert raw_get(exp.url, basic(b"007:pw-five"))[0] == 200
    assert raw_get(exp.url, basic(b"True:pw-four"))[0] == 401
    assert raw_get(exp.url, basic(b"7:pw-five"))[0] == 401
    assert "basic auth required (3 users)" in exp.log()
    assert "different bcrypt costs (cost 4: yes, on; cost 5: 007)" in exp.log()


def test_failed_tls_handshakes_go_through_the_log_format(
    sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path
) -> None:
    exp, _ = tls_exporter(
        start,
        sim,
        ca,
        tmp_path,
        *("--log.format", "json", "--log.level", "debug"),
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file=str(tmp_path / "ca.crt"),
    )
    url = exp.url.replace("http://", "https://") + "/-/healthy"
    for _ in range(3):
        assert curl_status(url, str(tmp_path / "ca.crt")) == "refused"
    assert exp.proc.poll() is None
    lines = [line for line in exp.log().splitlines() if line.strip()]
    assert lines and all(json.loads(line) for line in lines), "every line is a JSON log record"
    assert any("handshake" in json.loads(line)["msg"] for line in lines)


# exporter-toolkit's own fixtures (prometheus/exporter-toolkit web/testdata/, by name), with its verdict
# ("good"/"bad") and ours. File names map onto files made here; inline PEM bodies are replaced by ours.
TOOLKIT_FIXTURES: list[tuple[str, str, str, str]] = [
    # name, YAML, exporter-toolkit's verdict, ours (when different: why)
    ("tls_config_noAuth.requireandverifyclientcert.good.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n"
     "  client_ca_file: client_selfsigned.pem\n",
     "good", "good"),
    ("tls_config_noAuth.requireanyclientcert.good.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_auth_type: RequireAnyClientCert\n",
     "good", "good"),
    ("tls_config_noAuth.requireanyclientcertkeyinline.good.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key: |\n    KEY\n  client_auth_type: RequireAnyClientCert\n",
     "good", "good"),
    ("web_config_auth_clientCAs_invalid.bad.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_ca_file: somefile\n", "bad", "bad"),
    ("web_config_auth_clientCAs_missing.bad.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n", "bad", "bad"),
    ("web_config_auth_client_san.bad.yaml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client2_selfsigned.pem\n"
     "  client_allowed_sans:\n    - bad\n", "good (the handshake fails)", "good"),
    ("web_config_auth_client_san.good.yaml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client2_selfsigned.pem\n"
     "  client_allowed_sans:\n    - one\n    - test3\n    - two\n", "good", "good"),
    ("web_config_auth_user_list_invalid.bad.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\nbasic_auth_users:\n  john: doe\n", "bad", "bad"),
    ("web_config_empty.yml", "", "good", "good"),
    ("web_config_headers.good.yml", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
     "    Strict-Transport-Security: max-age=31536000; includeSubDomains\n    X-Content-Type-Options: nosniff\n"
     "    X-XSS-Protection: 1\n    Content-Security-Policy: \"default-src 'self' *.test.example.net\"\n",
     "good", "good"),
    ("web_config_headers_content_type_options.bad.yml",
     "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n", "bad", "bad"),
    ("web_config_headers_extra_header.bad.yml", "http_server_config:\n  headers:\n    Content-Type: foo\n",
     "bad", "bad"),
    ("web_config_headers_frame_options.bad.yml", "http_server_config:\n  headers:\n    X-Frame-Options: foo\n",
     "bad", "bad"),
    ("web_config_junk.yml", "hWkNKCp3fvIx3jKnsaBI\nTuEjdwNS8A2vYdFbiKqr\nay3RiOtykgt4m6m3KOol\n", "bad", "bad"),
    ("web_config_junk_key.yml", "tls_server_config:\n  cert_filse: server.crt\n", "bad", "bad"),
    ("web_config_noAuth.bad.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_ca_file: /dev/null\n", "bad", "bad"),
    ("web_config_noAuth.good.blocking.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: RequireAndVerifyClientCert\n",
     "good", "bad: without client CAs Go trusts every public CA; same file as clientCAs_missing.bad"),
    ("web_config_noAuth.good.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: VerifyClientCertIfGiven\n", "good", "good"),
    ("web_config_noAuth_allCiphers.good.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: VerifyClientCertIfGiven\n  cipher_suites:\n  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n"
     "  - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
     "  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n"
     "  - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256\n  - TLS_AES_128_GCM_SHA256\n  - TLS_AES_256_GCM_SHA384\n"
     "  - TLS_CHACHA20_POLY1305_SHA256\n  - TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA\n"
     "  - TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA\n  - TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\n"
     "  - TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA\n", "good", "good"),
    ("web_config_noAuth_allCurves.good.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: VerifyClientCertIfGiven\n  curve_preferences:\n    - CurveP256\n    - CurveP384\n"
     "    - CurveP521\n    - X25519\n", "good", "bad: the stdlib sets one curve, not a list"),
    ("web_config_noAuth_certPath_empty.bad.yml", "tls_server_config:\n  cert_file: ''\n  key_file: server.key\n",
     "bad", "bad"),
    ("web_config_noAuth_certPath_invalid.bad.yml",
     "tls_server_config:\n  cert_file: somefile\n  key_file: server.key\n", "bad", "bad"),
    ("web_config_noAuth_certPath_keyPath_empty.bad.yml",
     "tls_server_config:\n  cert_file: ''\n  key_file: ''\n  client_auth_type: x\n", "bad", "bad"),
    ("web_config_noAuth_certPath_keyPath_invalid.bad.yml",
     "tls_server_config:\n  cert_file: somefile\n  key_file: somefile\n", "bad", "bad"),
    ("web_config_noAuth_cert_empty.bad.yml", "tls_server_config:\n  cert: ''\n  key_file: server.key\n",
     "bad", "bad"),
    ("web_config_noAuth_inventedCiphers.bad.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  cipher_suites:\n"
     "  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048\n", "bad", "bad"),
    ("web_config_noAuth_inventedCurves.bad.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  curve_preferences:\n"
     "    - CurveP257\n", "bad", "bad"),
    ("web_config_noAuth_keyPath_empty.bad.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: ''\n",
     "bad", "bad"),
    ("web_config_noAuth_keyPath_invalid.bad.yml", "tls_server_config:\n  cert_file: server.cert\n"
     "  key_file: somefile\n", "bad", "bad"),
    ("web_config_noAuth_key_empty.bad.yml", "tls_server_config:\n  cert_file: server.crt\n  key: ''\n",
     "bad", "bad"),
    ("web_config_noAuth_noHTTP2.good.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: VerifyClientCertIfGiven\n  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n"
     "  max_version: TLS12\nhttp_server_config:\n  http2: false\n", "good", "good"),
    ("web_config_noAuth_noHTTP2Cipher.bad.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  cipher_suites:\n"
     "    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  max_version: TLS12\n",
     "bad (Go's HTTP/2 needs an AES-128-GCM suite)", "good: no HTTP/2 is served, so it needs no such suite"),
    ("web_config_noAuth_someCiphers.good.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  cipher_suites:\n"
     "  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n"
     "  min_version: TLS12\n  max_version: TLS12\n", "good", "good"),
    ("web_config_noAuth_someCiphers_noOrder.good.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  cipher_suites:\n"
     "  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
     "  prefer_server_cipher_suites: false\n  min_version: TLS12\n  max_version: TLS12\n", "good", "good"),
    ("web_config_noAuth_someCurves.good.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  min_version: TLS13\n"
     "  curve_preferences:\n  - CurveP521\n", "good", "good"),
    ("web_config_noAuth_tlsInline.good.yml", "tls_server_config:\n  cert: |\n    CERT\n  key: |\n    KEY\n"
     "  client_auth_type: VerifyClientCertIfGiven\n", "good", "good"),
    ("web_config_noAuth_wrongTLSVersion.bad.yml", "tls_server_config:\n  cert_file: server.crt\n"
     "  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  min_version: TLS111\n", "bad", "bad"),
    ("web_config_rate_limiter_nonblocking.yaml", "rate_limit:\n  interval: 0\n  burst: 0\n", "good", "good"),
    ("web_config_rate_limiter_one_second.yaml", "rate_limit:\n  interval: 1s\n  burst: 0\n", "good", "good"),
    ("web_config_users.good.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "basic_auth_users:\n  alice: $2y$12$1DpfPeqF9HzHJt.EWswy1exHluGfbhnn3yXhR7Xes6m3WJqFg0Wby\n"
     "  bob: $2y$18$4VeFDzXIoPHKnKTU3O3GH.N.vZu06CVqczYZ8WvfzrddFU6tGqjR.\n"
     "  carol: $2y$10$qRTBuFoULoYNA7AQ/F3ck.trZBPyjV64.oA4ZsSBCIWvXuvQlQTuu\n"
     "  dave: $2y$10$2UXri9cIDdgeKjBo4Rlpx.U3ZLDV8X1IxKmsfOvhcM5oXQt/mLmXq\n", "good", "good"),
    ("web_config_users_noTLS.good.yml", "basic_auth_users:\n"
     "  alice: $2y$12$1DpfPeqF9HzHJt.EWswy1exHluGfbhnn3yXhR7Xes6m3WJqFg0Wby\n"
     "  carol: $2y$10$qRTBuFoULoYNA7AQ/F3ck.trZBPyjV64.oA4ZsSBCIWvXuvQlQTuu\n", "good", "good"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "theirs", "ours"), TOOLKIT_FIXTURES, ids=[f[0] for f in TOOLKIT_FIXTURES])
def test_exporter_toolkit_fixtures(
    ca: trustme.CA, tmp_path: Path, name: str, text: str, theirs: str, ours: str
) -> None:
    files = server_cert(ca, tmp_path)
    Path(files["cert_file"]).rename(tmp_path / "server.crt")
    Path(files["key_file"]).rename(tmp_path / "server.key")
    for ca_name in ("client_selfsigned.pem", "client2_selfsigned.pem"):
        (tmp_path / ca_name).write_text((tmp_path / "ca.crt").read_text())
    indent = "\n    "
    text = text.replace("CERT\n", (tmp_path / "server.crt").read_text().strip().replace("\n", indent) + "\n")
    text = text.replace("KEY\n", (tmp_path / "server.key").read_text().strip().replace("\n", indent) + "\n")
    (tmp_path / "web.yml").write_text(text)
    try:
        webconfig.load(tmp_path / "web.yml")
        verdict = "good"
    except ConfigError:
        verdict = "bad"
    assert verdict == ours.split(":")[0], (name, theirs)
    if not ours.startswith(theirs.split(" ")[0]):
        assert ":" in ours, f"{name}: a difference from exporter-toolkit needs its reason"


# --- client certificates, as Go's crypto/tls treats them


def https_status(url: str, ca_file: str, cert: tuple[str, str] | None = None) -> int | str:
    """The status of GET ``url`` with Python's ssl module (via requests), or "refused"."""
    try:
        return requests.get(url, verify=ca_file, cert=cert, timeout=10).status_code
    except requests.exceptions.RequestException:
        return "refused"


CURL = shutil.which("curl") or "/usr/bin/curl"


def curl_status(url: str, ca_file: str, cert: tuple[str, str] | None = None) -> int | str:
    """The status of GET ``url`` with the real curl binary, or "refused"."""
    args = [CURL, "-sS", "--noproxy", "*", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"]
    args += ["--cacert", ca_file]
    if cert is not None:
        args += ["--cert", cert[0], "--key", cert[1]]
    result = subprocess.run([*args, url], capture_output=True, text=True, timeout=20)
    return int(result.stdout) if result.returncode == 0 else "refused"


EXPECTED_AUTH = {
    # client_auth_type: (no certificate, a certificate from another CA, a certificate from client_ca_file)
    "NoClientCert": (200, 200, 200),
    "VerifyClientCertIfGiven": (200, "refused", 200),
    "RequireAndVerifyClientCert": ("refused", "refused", 200),
    # Asked for, never verified (served on pyOpenSSL): any certificate will do, no client CA is needed.
    "RequestClientCert": (200, 200, 200),
    "RequireAnyClientCert": ("refused", 200, 200),
    "RequireClientCert": ("refused", 200, 200),  # exporter-toolkit's old name of RequireAnyClientCert
}


@pytest.mark.parametrize("auth_type", list(EXPECTED_AUTH))
def test_client_auth_types_behave_as_go(
    sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path, auth_type: str
) -> None:
    tls: dict[str, Any] = {**server_cert(ca, tmp_path), "client_auth_type": auth_type}
    if "Verify" in auth_type:
        tls["client_ca_file"] = str(tmp_path / "ca.crt")
    exp = start(
        sim_config(sim, sim.info["jobs"]), "--web.config.file", web_config(tmp_path, {"tls_server_config": tls})
    )
    url = exp.url.replace("http://", "https://") + "/-/healthy"
    trusted = client_files(ca, tmp_path, "trusted")
    untrusted = client_files(trustme.CA(), tmp_path, "untrusted")
    ca_file = str(tmp_path / "ca.crt")
    for client in (https_status, curl_status):
        seen = (client(url, ca_file), client(url, ca_file, untrusted), client(url, ca_file, trusted))
        assert seen == EXPECTED_AUTH[auth_type], (client.__name__, seen)
    assert exp.proc.poll() is None


def test_client_allowed_sans(sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path) -> None:
    tls = {
        **server_cert(ca, tmp_path),
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(tmp_path / "ca.crt"),
        "client_allowed_sans": ["prometheus.example", "10.0.0.7", "prometheus@example.org"],
    }
    exp = start(
        sim_config(sim, sim.info["jobs"]), "--web.config.file", web_config(tmp_path, {"tls_server_config": tls})
    )
    url = exp.url.replace("http://", "https://") + "/metrics"
    ca_file = str(tmp_path / "ca.crt")
    by_dns = client_files(ca, tmp_path, "dns", "other.example", "prometheus.example")
    by_ip = client_files(ca, tmp_path, "ip", "10.0.0.7")
    by_email = client_files(ca, tmp_path, "email", "prometheus@example.org")
    wrong = client_files(ca, tmp_path, "wrong", "grafana.example", "10.0.0.8")
    for client in (https_status, curl_status):
        assert client(url, ca_file, by_dns) == 200, client.__name__
        assert client(url, ca_file, by_ip) == 200, client.__name__
        assert client(url, ca_file, by_email) == 200, client.__name__
        assert client(url, ca_file, wrong) == "refused", client.__name__
        assert client(url, ca_file) == "refused", client.__name__
    assert exp.proc.poll() is None


def handshake(
    port: int,
    ca_file: str,
    ciphers: str | None = None,
    curve: str | None = None,
    cert: tuple[str, str] | None = None,
) -> tuple[str, str] | str:
    """(TLS version, cipher) of a handshake (and one request) with Python's ssl module, or "refused"."""
    ctx = ssl.create_default_context(cafile=ca_file)
    if ciphers is not None:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
    if curve is not None:
        ctx.set_ecdh_curve(curve)
    if cert is not None:
        ctx.load_cert_chain(*cert)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            # A TLS 1.3 server refuses a client certificate after the client's handshake ends: ask something.
            tls.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if not tls.recv(64).startswith(b"HTTP/1.1 "):
                return "refused"
            cipher = tls.cipher()
            return (str(tls.version()), cipher[0] if cipher else "")
    except (ssl.SSLError, OSError):
        return "refused"


def tls_exporter(
    start: Any, sim: Simulator, ca: trustme.CA, tmp_path: Path, *flags: str, **tls: Any
) -> tuple[Exporter, int]:
    """An exporter serving TLS with ``tls`` over the test server certificate, started with ``flags``."""
    config = {"tls_server_config": {**server_cert(ca, tmp_path), **tls}}
    exp = start(sim_config(sim, sim.info["jobs"]), "--web.config.file", web_config(tmp_path, config), *flags)
    return exp, int(exp.url.rsplit(":", 1)[1])


def test_cipher_suites_and_their_order(sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = str(tmp_path / "ca.crt")  # trustme issues ECDSA certificates: ECDSA suites
    suites = ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]
    _, port = tls_exporter(start, sim, ca, tmp_path, cipher_suites=suites, max_version="TLS12")
    both = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"  # the client prefers AES-256
    assert handshake(port, ca_file, both) == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"), "the server's order"
    assert handshake(port, ca_file, "ECDHE-ECDSA-AES256-SHA") == "refused", "no common suite"
    assert handshake(port, ca_file) == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"), "max_version TLS12"
    _, port = tls_exporter(
        start, sim, ca, tmp_path, cipher_suites=suites, prefer_server_cipher_suites=False, max_version="TLS12"
    )
    assert handshake(port, ca_file, both) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384"), "the client's order"


def test_curve_preferences_and_min_version(sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = str(tmp_path / "ca.crt")
    # exporter-toolkit's web_config_noAuth_someCurves.good.yml, and the clients of its test table.
    _, port = tls_exporter(start, sim, ca, tmp_path, min_version="TLS13", curve_preferences=["CurveP521"])
    assert handshake(port, ca_file, curve="secp521r1") == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert handshake(port, ca_file, curve="secp384r1") == "refused"
    assert handshake(port, ca_file, ciphers="ECDHE-RSA-AES128-GCM-SHA256") == "refused", "TLS 1.2 below min_version"


def test_inline_certificate_and_key(sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path) -> None:
    files = server_cert(ca, tmp_path)
    key = Path(files["key_file"]).read_text()
    tls = {"cert": Path(files["cert_file"]).read_text(), "key": key}
    exp = start(
        sim_config(sim, sim.info["jobs"]), "--web.config.file", web_config(tmp_path, {"tls_server_config": tls})
    )
    url = exp.url.replace("http://", "https://") + "/metrics"
    assert https_status(url, str(tmp_path / "ca.crt")) == 200
    assert curl_status(url, str(tmp_path / "ca.crt")) == 200
    body = key.splitlines()[1]
    assert body not in exp.log()


def test_unverified_client_certificates_keep_every_tls_feature(
    sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path
) -> None:
    """RequireAnyClientCert (on pyOpenSSL) with SANs, suites, curve, version, inline PEM, basic auth, headers."""
    files = server_cert(ca, tmp_path)
    key = Path(files["key_file"]).read_text()
    tls = {
        "cert": Path(files["cert_file"]).read_text(),
        "key": key,
        "client_auth_type": "RequireAnyClientCert",
        "client_ca": (tmp_path / "ca.crt").read_text(),  # only named to clients in this mode, as in Go
        "client_allowed_sans": ["prometheus.example"],
        "cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"],
        "max_version": "TLS12",
    }
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    content = {
        "tls_server_config": tls,
        "basic_auth_users": {"p": hashed},
        "http_server_config": {"headers": {"X-Frame-Options": "deny"}},
    }
    exp = start(sim_config(sim, sim.info["jobs"]), "--web.config.file", web_config(tmp_path, content))
    url = exp.url.replace("http://", "https://") + "/metrics"
    port = int(exp.url.rsplit(":", 1)[1])
    ca_file = str(tmp_path / "ca.crt")
    # Self-signed by CAs the exporter has never seen: not verified, but their SANs are checked.
    stranger = client_files(trustme.CA(), tmp_path, "stranger", "prometheus.example")
    wrong = client_files(trustme.CA(), tmp_path, "wrong", "grafana.example", "10.0.0.8")
    answer = requests.get(url, verify=ca_file, cert=stranger, auth=("p", "pw"), timeout=10)
    assert answer.status_code == 200 and "huaweicloud_drs_" in answer.text
    assert answer.headers["X-Frame-Options"] == "deny"
    for client in (https_status, curl_status):
        assert client(url, ca_file, stranger) == 401, client.__name__  # TLS accepted, basic auth still asked
        assert client(url, ca_file, wrong) == "refused", client.__name__
        assert client(url, ca_file) == "refused", client.__name__
    both = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"
    assert handshake(port, ca_file, both, cert=stranger) == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert handshake(port, ca_file, "ECDHE-ECDSA-AES256-SHA", cert=stranger) == "refused", "no common suite"
    assert key.splitlines()[1] not in exp.log()
    assert exp.proc.poll() is None
    # TLS 1.3 here: under TLS 1.2 OpenSSL also holds a client's EC certificate to the one curve (both paths).
    _, port = tls_exporter(
        start,
        sim,
        ca,
        tmp_path,
        client_auth_type="RequireAnyClientCert",
        min_version="TLS13",
        curve_preferences=["CurveP521"],
    )
    assert handshake(port, ca_file, curve="secp521r1", cert=stranger) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert handshake(port, ca_file, curve="secp384r1", cert=stranger) == "refused", "not the configured curve"
    assert handshake(port, ca_file, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256", cert=stranger) == "refused", "TLS 1.2"
    assert handshake(port, ca_file, curve="secp521r1") == "refused", "no certificate"


def test_unverified_mode_serves_large_answers_on_kept_connections(start: Any, ca: trustme.CA, tmp_path: Path) -> None:
    """The pyOpenSSL path: megabytes to fast and slow readers, keep-alive, gzip, plain HTTP answered 400."""
    big = Simulator("--jobs", "1", "--objects", "20000")
    try:
        tls = {**server_cert(ca, tmp_path), "client_auth_type": "RequestClientCert"}
        exp = start(
            sim_config(big, big.info["jobs"]), "--web.config.file", web_config(tmp_path, {"tls_server_config": tls})
        )
        url = exp.url.replace("http://", "https://") + "/metrics"
        ca_file = str(tmp_path / "ca.crt")
        # The answers below are compared byte for byte: first let the background job-details read
        # (on by default) land, so that no scrape in between gains its families.
        wait_for(
            lambda: b"huaweicloud_drs_job_details_up{" in requests.get(url, verify=ca_file, timeout=60).content,
            timeout=60,
            interval=0.5,
        )
        with requests.Session() as session:
            plain = session.get(url, verify=ca_file, headers={"Accept-Encoding": "identity"}, timeout=60)
            packed = session.get(url, verify=ca_file, headers={"Accept-Encoding": "gzip"}, timeout=60)
            again = session.get(url, verify=ca_file, headers={"Accept-Encoding": "identity"}, timeout=60)
        assert plain.status_code == 200 and len(plain.content) > 2_000_000
        assert len(plain.content) == int(plain.headers["Content-Length"])
        assert packed.headers["Content-Encoding"] == "gzip" and packed.content == plain.content
        assert again.content == plain.content
        assert slow_read(exp.url, ca_file).endswith(plain.content), "a reader slower than the server"
        assert requests.get(exp.url + "/-/healthy", timeout=10).status_code == 400, "plain HTTP on the TLS port"
        assert exp.proc.poll() is None
    finally:
        big.stop()


def slow_read(http_url: str, ca_file: str) -> bytes:
    """GET /metrics over TLS, reading 16 KiB at a time with pauses, so that the server's sends must wait."""
    host, port = http_url.removeprefix("http://").split(":")
    ctx = ssl.create_default_context(cafile=ca_file)
    received = bytearray()
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n")
        for _ in range(10_000):  # far more reads than the answer needs; each waits at most 10 s
            chunk = tls.recv(16384)
            if not chunk:
                break
            received += chunk
            time.sleep(0.002)
    return bytes(received)


# --- basic auth: 401 for any bad input, never 500


def raw_get(url: str, authorization: bytes) -> tuple[int, dict[str, str]]:
    """GET with an Authorization header of arbitrary bytes (requests would refuse some)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("GET", "/metrics")
        conn.putheader("Authorization", authorization)
        conn.endheaders()
        answer = conn.getresponse()
        answer.read()
        return answer.status, dict(answer.getheaders())
    finally:
        conn.close()


def basic(credentials: bytes, scheme: bytes = b"Basic") -> bytes:
    return scheme + b" " + base64.b64encode(credentials)


def test_basic_auth_answers_401_for_bad_input(sim: Simulator, start: Any, tmp_path: Path) -> None:
    users = {"prometheus": b"s3cret-pass", "colon": b"pa:ss:word", "long": b"x" * 72}
    hashed = {user: bcrypt.hashpw(pw, bcrypt.gensalt(rounds=4)).decode() for user, pw in users.items()}
    exp = start(
        sim_config(sim, sim.info["jobs"]), "--web.config.file", web_config(tmp_path, {"basic_auth_users": hashed})
    )
    good = {
        "Basic": basic(b"prometheus:s3cret-pass"),
        "lower-case scheme": basic(b"prometheus:s3cret-pass", b"basic"),
        "upper-case scheme": basic(b"prometheus:s3cret-pass", b"BASIC"),
        "colon in password": basic(b"colon:pa:ss:word"),
        "72-byte password": basic(b"long:" + b"x" * 72),
        # Go's CompareHashAndPassword reads the first 72 bytes, as bcrypt does (only hashing refuses more).
        "73-byte password, first 72 right": basic(b"long:" + b"x" * 73),
    }
    bad = {
        "73-byte password, first 72 wrong": basic(b"long:" + b"x" * 71 + b"yx"),
        "long password of a known user": basic(b"prometheus:" + b"s3cret-pass" * 10),
        "long password of an unknown user": basic(b"nobody:" + b"y" * 100),
        "bad base64": b"Basic !!!notbase64",
        "base64 without padding": b"Basic " + base64.b64encode(b"prometheus:s3cret-pass").rstrip(b"="),
        "non-ASCII in the header": b"Basic \xff\xfe\xfd",
        "non-UTF-8 user": basic(b"\xff\xfe:s3cret-pass"),
        "non-UTF-8 password": basic(b"prometheus:\xff\xfe"),
        "NUL in password": basic(b"prometheus:s3cret\x00pass"),
        "empty user": basic(b":s3cret-pass"),
        "empty password": basic(b"prometheus:"),
        "no colon": basic(b"prometheus"),
        "no space after scheme": b"Basic" + base64.b64encode(b"prometheus:s3cret-pass"),
        "other scheme": b"Bearer abcdef",
        "scheme alone": b"Basic ",
    }
    for name, header in good.items():
        assert raw_get(exp.url, header)[0] == 200, name
    for name, header in bad.items():
        status, headers = raw_get(exp.url, header)
        assert status == 401, (name, status)
        assert headers["WWW-Authenticate"].startswith("Basic"), name
    assert exp.proc.poll() is None
    assert "Traceback" not in exp.log() and "s3cret" not in exp.log()


def test_unknown_users_cost_what_known_users_cost() -> None:
    """The dummy hash spent on unknown users has the users' bcrypt cost (benchmarks/auth_timing.py times it)."""
    hashes = {cost: bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=cost)).decode() for cost in (4, 5, 6)}
    for cost, hashed in hashes.items():
        web = msgspec_web({"u": hashed})
        assert web.__dict__["dummy"].startswith(b"$2b$%02d$" % cost)
    mixed = msgspec_web({"a": hashes[4], "b": hashes[6], "c": hashes[6], "d": hashes[5]})
    assert mixed.dummy_cost() == 6, "the most common cost"
    web = msgspec_web({"u": hashes[5]})
    assert not web.authorized(basic(b"nobody:pw").decode())
    assert not bcrypt.checkpw(b"", web.__dict__["dummy"]) and not bcrypt.checkpw(b"pw", web.__dict__["dummy"])


def msgspec_web(users: dict[str, str]) -> webconfig.WebConfig:
    return webconfig.WebConfig(basic_auth_users=users)


# --- http_server_config.headers and rate_limit


def test_configured_headers_are_on_every_answer(sim: Simulator, start: Any, tmp_path: Path) -> None:
    headers = {
        "X-Frame-Options": "deny",
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "X-XSS-Protection": 1,
        "Content-Security-Policy": "default-src 'self' *.test.example.net",
    }
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    content = {"http_server_config": {"headers": headers}, "basic_auth_users": {"p": hashed}}
    exp = start(sim_config(sim, sim.info["jobs"]), "--web.config.file", web_config(tmp_path, content))
    answers = {path: exp.get(path, auth=("p", "pw")) for path in ("/", "/metrics", "/-/healthy", "/-/ready", "/x")}
    answers["401"] = exp.get("/metrics")
    assert answers["401"].status_code == 401 and answers["/x"].status_code == 404
    for name, answer in answers.items():
        for header, value in headers.items():
            assert answer.headers.get(header) == str(value), (name, header)
    blank = {"http_server_config": {"headers": {"X-Frame-Options": None, "Content-Security-Policy": ""}}}
    plain = start(sim_config(sim, sim.info["jobs"]), "--web.config.file", web_config(tmp_path, blank))
    answer = plain.get("/-/healthy")
    assert "X-Frame-Options" not in answer.headers and "Content-Security-Policy" not in answer.headers


def test_rate_limit(sim: Simulator, start: Any, tmp_path: Path) -> None:
    content = {"rate_limit": {"interval": "1h", "burst": 3}}
    exp = start(sim_config(sim, sim.info["jobs"]), "--web.config.file", web_config(tmp_path, content))
    statuses = [exp.get("/-/healthy").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    # exporter-toolkit's web_config_rate_limiter_one_second.yaml: burst 0 refuses everything.
    none = start(
        sim_config(sim, sim.info["jobs"]),
        "--web.config.file",
        web_config(tmp_path, {"rate_limit": {"interval": "1s", "burst": 0}}),
    )
    assert none.get("/metrics").status_code == 429
    off = start(
        sim_config(sim, sim.info["jobs"]),
        "--web.config.file",
        web_config(tmp_path, {"rate_limit": {"interval": 0, "burst": 0}}),
    )
    assert [off.get("/-/healthy").status_code for _ in range(5)] == [200] * 5


def odd_san_certificate(tmp_path: Path) -> tuple[str, str]:
    """A self-signed client certificate whose SAN holds the allowed name and an empty x400Address.

    cryptography refuses to read such a SAN with an error that is no ValueError; anyone can make one.
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtensionOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    dns = b"prometheus.example"
    names = b"\x82" + bytes([len(dns)]) + dns + b"\xa3\x00"
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30" + bytes([len(names)]) + names),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "odd.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "odd.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(tmp_path / "odd.crt"), str(tmp_path / "odd.key")


def test_an_unreadable_client_san_is_refused_quietly(
    sim: Simulator, start: Any, ca: trustme.CA, tmp_path: Path
) -> None:
    exp, _ = tls_exporter(
        start,
        sim,
        ca,
        tmp_path,
        *("--log.format", "json"),
        client_auth_type="RequireAnyClientCert",
        client_allowed_sans=["prometheus.example"],
    )
    url = exp.url.replace("http://", "https://") + "/-/healthy"
    for _ in range(3):
        assert curl_status(url, str(tmp_path / "ca.crt"), odd_san_certificate(tmp_path)) == "refused"
    good = client_files(ca, tmp_path, "good", "prometheus.example")
    assert curl_status(url, str(tmp_path / "ca.crt"), good) == 200
    records = [json.loads(line) for line in exp.log().splitlines() if line.strip()]
    assert not [r for r in records if r["level"] in ("error", "warn")], records
