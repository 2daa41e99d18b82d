"""HTTP/1.1 on the wire: a request head into a WSGI environ, a WSGI answer into response bytes.

Pure functions, no sockets: the server (server.py) reads bytes under its deadlines and hands them
here. What is refused, and the words of the refusal, are cheroot's (the server before this one),
so that clients see the same answers.
"""

from __future__ import annotations

import email.utils
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
SERVER_NAME = "drs-exporter"
TOO_LARGE = "413 Request Entity Too Large"
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED_SLASH = re.compile(rb"(?i)%2F")
_UPPER_METHOD = (
    "Malformed method name: According to RFC 2616 (section 5.1.1) and its successors RFC 7230 (section 3.1.1) "
    "and RFC 7231 (section 4.1) method names are case-sensitive and uppercase."
)


class HTTPError(Exception):
    """A request refused before the application sees it: answered ``status`` with ``text``, then closed."""

    def __init__(self, status: str, text: str = "") -> None:
        super().__init__(status, text)
        self.status = status
        self.text = text

    def answer(self) -> bytes:
        """cheroot's plain-text refusal (no Date or Server header, as it sent)."""
        body = self.text.encode("latin-1")
        extra = b"Connection: close\r\n" if self.status.startswith("413") else b""
        return b"HTTP/1.1 %s\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n%s\r\n%s" % (
            self.status.encode("latin-1"),
            len(body),
            extra,
            body,
        )


@dataclass
class Request:
    """A parsed request head; ``body`` is filled once read."""

    method: str
    target: bytes
    version: tuple[int, int]
    headers: list[tuple[str, str]]
    content_length: int = 0
    chunked: bool = False
    expect_continue: bool = False
    body: bytes = b""
    environ_extra: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (in environ form: upper case, ``_`` for ``-``), or None."""
        return next((value for key, value in self.headers if key == name), None)

    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1 without ``Connection: close`` (HTTP/1.0 connections are closed after one answer, as before)."""
        if self.version < (1, 1):
            return False
        return not any(
            name == "CONNECTION" and "close" in (t.strip().lower() for t in value.split(","))
            for name, value in self.headers
        )


def head_end(buffer: bytes | bytearray) -> int:
    """The length of the request head in ``buffer`` (through its empty line), or -1 while it is incomplete."""
    # Empty lines before the request line are skipped (RFC 9112 2.2); they do not end the head.
    start = 0
    while buffer.startswith(b"\r\n", start):
        start += 2
    end = buffer.find(b"\r\n\r\n", start)
    if end < 0:
        bare = buffer.find(b"\n\n", start)
        if bare >= 0:
            raise HTTPError("400 Bad Request", "HTTP requires CRLF terminators")
        return -1
    return end + 4


def parse_head(head: bytes) -> Request:
    """The request line and headers of ``head`` (which ends with its empty line)."""
    lines = head.lstrip(b"\r\n").split(b"\r\n")[:-2]
    if any(b"\n" in line for line in lines):
        raise HTTPError("400 Bad Request", "HTTP requires CRLF terminators")
    parts = lines[0].split(b" ") if lines else []
    if len(parts) != 3:
        raise HTTPError("400 Bad Request", "Malformed Request-Line")
    method, target, protocol = parts
    version = _VERSION.fullmatch(protocol)
    if version is None:
        raise HTTPError("400 Bad Request", "Malformed Request-Line: bad protocol")
    major, minor = int(version.group(1)), int(version.group(2))
    if major > 1:
        raise HTTPError("505 HTTP Version Not Supported", "Cannot fulfill request")
    if not _TOKEN.fullmatch(method):
        raise HTTPError("400 Bad Request", "Malformed Request-Line")
    if method != method.upper():
        raise HTTPError("400 Bad Request", _UPPER_METHOD)
    if b"#" in target:
        raise HTTPError("400 Bad Request", "Illegal #fragment in Request-URI.")
    if target == b"*":
        if method != b"OPTIONS":
            raise HTTPError("400 Bad Request", "Invalid path in Request-URI.")
    elif b"://" in target.split(b"?", 1)[0]:
        raise HTTPError("400 Bad Request", "Absolute URI not allowed if server is not a proxy.")
    elif not target.startswith(b"/"):
        raise HTTPError("400 Bad Request", "Invalid path in Request-URI.")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):  # obsolete line folding: part of the previous value
            if not headers:
                raise HTTPError("400 Bad Request", "Illegal continuation line.")
            previous, value = headers[-1]
            headers[-1] = (previous, f"{value} {line.strip().decode('latin-1')}")
            continue
        raw_name, colon, raw_value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(raw_name):
            raise HTTPError("400 Bad Request", "Illegal header line.")
        headers.append((raw_name.decode("ascii").upper().replace("-", "_"), raw_value.strip(b" \t").decode("latin-1")))
    request = Request(method.decode("ascii"), target, (major, minor), headers)
    _read_framing(request)
    return request


def _read_framing(request: Request) -> None:
    """How the body is delimited (Content-Length or chunked), and whether a 100 Continue is due."""
    for name, value in request.headers:
        if name == "TRANSFER_ENCODING":
            if value.strip().lower() != "chunked":
                raise HTTPError("501 Unimplemented")
            request.chunked = True
        elif name == "CONTENT_LENGTH":
            if not value.isdigit():
                raise HTTPError("400 Bad Request", "Malformed Content-Length Header.")
            request.content_length = int(value)
        elif name == "EXPECT" and value.strip().lower() == "100-continue":
            request.expect_continue = True
    if request.content_length > MAX_BODY_BYTES:
        raise body_too_large()


def head_too_large() -> HTTPError:
    """The refusal of a head longer than MAX_HEAD_BYTES."""
    return HTTPError(TOO_LARGE, "The headers sent with the request exceed the maximum allowed bytes.")


def body_too_large() -> HTTPError:
    """The refusal of a body longer than MAX_BODY_BYTES."""
    return HTTPError(TOO_LARGE, "The entity sent with the request exceeds the maximum allowed bytes.")


def body_length(request: Request, data: bytes | bytearray) -> tuple[bytes, int] | None:
    """(body, bytes of ``data`` it took) once the whole body is in ``data``, else None."""
    if not request.chunked:
        n = request.content_length
        return (bytes(data[:n]), n) if len(data) >= n else None
    body = bytearray()
    pos = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            if len(data) - pos > 1024:
                raise HTTPError("400 Bad Request", "Bad chunked transfer size.")
            return None
        size_text = data[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HTTPError("400 Bad Request", "Bad chunked transfer size.") from None
        if size < 0 or len(body) + size > MAX_BODY_BYTES:
            raise body_too_large()
        start = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", line_end)  # the trailer section, usually empty
            if trailer_end < 0:
                if len(data) - start > 1024:
                    raise HTTPError("400 Bad Request", "Bad chunked transfer trailer.")
                return None
            return bytes(body), trailer_end + 4
        if len(data) < start + size + 2:
            return None
        if data[start + size : start + size + 2] != b"\r\n":
            raise HTTPError("400 Bad Request", "chunked transfer encoding: bad chunk ending")
        body += data[start : start + size]
        pos = start + size + 2


def environ(request: Request, server: tuple[str, int], peer: tuple[str, int], scheme: str) -> dict[str, Any]:
    """The WSGI environ of ``request`` (PEP 3333: text is latin-1, the path percent-decoded except ``%2F``)."""
    path, _, query = request.target.partition(b"?")
    if path != b"*":
        path = b"%2F".join(unquote_to_bytes(part) for part in _QUOTED_SLASH.split(path))
    env: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path.decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "REQUEST_URI": request.target.decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{request.version[0]}.{request.version[1]}",
        "SERVER_SOFTWARE": SERVER_NAME,
        "REMOTE_ADDR": peer[0],
        "REMOTE_PORT": str(peer[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **request.environ_extra,
    }
    for name, value in request.headers:
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        env[key] = f"{env[key]}, {value}" if key in env else value
    if request.chunked:
        env["CONTENT_LENGTH"] = str(len(request.body))
    return env


def response_head(status: str, headers: list[tuple[str, str]], request: Request, close: bool) -> tuple[bytes, bool]:
    """The status line and headers as cheroot wrote them, and whether the connection closes after the answer.

    An answer without Content-Length (HEAD of /metrics) is delimited by closing, as cheroot did.
    """
    names = {name.lower() for name, _ in headers}
    code = int(status[:3])
    if code == 413 or ("content-length" not in names and code >= 200 and code not in (204, 304)):
        close = True
    out = [*headers]
    if "connection" not in names and close and request.version >= (1, 1):
        out.append(("Connection", "close"))
    if "date" not in names:
        out.append(("Date", email.utils.formatdate(usegmt=True)))
    if "server" not in names:
        out.append(("Server", SERVER_NAME))
    lines = [f"HTTP/1.1 {status}\r\n", *(f"{name}: {value}\r\n" for name, value in out), "\r\n"]
    return "".join(lines).encode("latin-1"), close
