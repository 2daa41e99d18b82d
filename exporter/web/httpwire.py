"""HTTP/1.1 on the wire: a request head into a WSGI environ, a WSGI answer into response bytes.

Pure functions, no sockets: the server (httpserver.py) reads bytes under its deadlines and hands
them here. What is refused, and the words of the refusal, are cheroot's (the server before this
one, its cheroot/server.py), byte for byte, so that clients see the same answers: among them
``400 Malformed Request-Line`` (and ``: bad protocol``, ``: bad version``), ``400 Malformed
Content-Length Header.``, ``400 Invalid path in Request-URI: request-target must contain
origin-form ...``, ``414 Request-URI Too Long`` for a request line over 16 KiB, ``413`` for a head
over 16 KiB or a body over 64 KiB. As with cheroot, a bad request line is answered as soon as it
is in, without waiting for the rest of the head.

Where this server answers otherwise, on purpose (cheroot's answer was looser or broke):
- HTTP/1.x with x > 1 (HTTP/1.9) is served as HTTP/1.1 (cheroot: 505); version numbers must be
  ASCII digits (cheroot's int() also took ``+1``, ``1_0``, `` 1``);
- any number of empty lines before the request line are skipped (cheroot: one);
- a header name with whitespace before its colon, or a method that is not a token, is refused
  (400); a folded line right after the request line is ``400 Illegal continuation line.``
  (cheroot failed on it), later ones are joined to the value they continue;
- a negative or non-digit Content-Length is refused (cheroot took ``-1`` and ``+5`` from int());
- a malformed chunked body is refused with 400 naming the problem, and a chunked body over 64 KiB
  with 413 (cheroot failed later, or differently);
- ``100 Continue`` is not sent when the body has already arrived with the head;
- ``OPTIONS`` is checked as other methods are, but for the target ``*``; a target urlsplit cannot
  read (bad IPv6 brackets) is ``400 Malformed Request-URI`` (cheroot: an error 500).
"""

from __future__ import annotations

import email.utils
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
SERVER_NAME = "drs-exporter"
TOO_LARGE = "413 Request Entity Too Large"
URI_TOO_LONG = "414 Request-URI Too Long"
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED_SLASH = re.compile(rb"(?i)%2F")
_NOT_ORIGIN_FORM = (
    "Invalid path in Request-URI: request-target must contain origin-form which starts with absolute-path "
    '(URI starting with a slash "/").'
)
_UPPER_METHOD = (
    "Malformed method name: According to RFC 2616 (section 5.1.1) and its successors RFC 7230 (section 3.1.1) "
    "and RFC 7231 (section 4.1) method names are case-sensitive and uppercase."
)


class HTTPError(Exception):
    """A request refused before the application sees it: answered ``status`` with ``text``, then closed."""

    def __init__(self, status: str, text: str = "", close_header: bool = False) -> None:
        super().__init__(status, text)
        self.status = status
        self.text = text
        self.close_header = close_header

    def answer(self) -> bytes:
        """cheroot's plain-text refusal (no Date or Server header, as it sent)."""
        body = self.text.encode("latin-1")
        extra = b"Connection: close\r\n" if self.close_header else b""
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
    """The length of the request head in ``buffer`` (through its empty line), or -1 while it is incomplete.

    The request line is checked as soon as it is in, as cheroot read it (on its own, first): a bad
    one is refused at once, not once the head is whole. A request line longer than MAX_HEAD_BYTES
    is 414, a longer head 413.
    """
    # Empty lines before the request line are skipped (RFC 9112 2.2); they do not end the head.
    start = 0
    while buffer.startswith(b"\r\n", start):
        start += 2
    line_end = buffer.find(b"\n", start)
    if line_end < 0 or line_end >= MAX_HEAD_BYTES:
        if line_end >= 0 or len(buffer) > MAX_HEAD_BYTES:
            raise HTTPError(URI_TOO_LONG, "The Request-URI sent with the request exceeds the maximum allowed bytes.")
        return -1
    if buffer[line_end - 1 : line_end] != b"\r":
        raise HTTPError("400 Bad Request", "HTTP requires CRLF terminators")
    version = parse_request_line(bytes(buffer[start : line_end - 1]))[2]
    end = buffer.find(b"\r\n\r\n", line_end - 1)
    if end < 0:
        if buffer.find(b"\n\n", line_end) >= 0:
            raise HTTPError("400 Bad Request", "HTTP requires CRLF terminators")
        if len(buffer) > MAX_HEAD_BYTES:
            raise head_too_large(version)
        return -1
    if end + 4 > MAX_HEAD_BYTES:
        raise head_too_large(version)
    return end + 4


def parse_request_line(line: bytes) -> tuple[bytes, bytes, tuple[int, int]]:
    """(method, target, version) of a request line (without its CRLF), refused in cheroot's order and words."""
    parts = line.strip().split(b" ", 2)
    if len(parts) != 3:
        raise HTTPError("400 Bad Request", "Malformed Request-Line")
    method, target, protocol = parts
    if not protocol.startswith(b"HTTP/"):
        raise HTTPError("400 Bad Request", "Malformed Request-Line: bad protocol")
    numbers = protocol[5:].split(b".", 1)
    if len(numbers) != 2:
        raise HTTPError("400 Bad Request", "Malformed Request-Line: bad version")
    if not all(n.isdigit() for n in numbers):  # bytes: ASCII digits only
        raise HTTPError("400 Bad Request", "Malformed Request-Line")
    major, minor = int(numbers[0]), int(numbers[1])
    if major > 1:
        raise HTTPError("505 HTTP Version Not Supported", "Cannot fulfill request")
    if method != method.upper():
        raise HTTPError("400 Bad Request", _UPPER_METHOD)
    if not _TOKEN.fullmatch(method):
        raise HTTPError("400 Bad Request", "Malformed Request-Line")
    if method == b"CONNECT":
        raise HTTPError("405 Method Not Allowed")
    if target == b"*" and method == b"OPTIONS":
        return method, target, (major, minor)
    try:
        scheme, authority, _, _, fragment = urlsplit(target)
    except ValueError:  # UnicodeError (not ASCII) among them
        raise HTTPError("400 Bad Request", "Malformed Request-URI") from None
    if scheme or authority:
        raise HTTPError("400 Bad Request", "Absolute URI not allowed if server is not a proxy.")
    if not target.startswith(b"/"):
        raise HTTPError("400 Bad Request", _NOT_ORIGIN_FORM)
    if fragment:
        raise HTTPError("400 Bad Request", "Illegal #fragment in Request-URI.")
    return method, target, (major, minor)


def parse_head(head: bytes) -> Request:
    """The request line and headers of ``head`` (which ends with its empty line)."""
    lines = head.lstrip(b"\r\n").split(b"\r\n")[:-2]
    if any(b"\n" in line for line in lines):
        raise HTTPError("400 Bad Request", "HTTP requires CRLF terminators")
    method, target, version = parse_request_line(lines[0] if lines else b"")
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
    request = Request(method.decode("ascii"), target, version, headers)
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
            if not (value.isascii() and value.isdigit()):  # str.isdigit() alone takes "²", which int() does not
                raise HTTPError("400 Bad Request", "Malformed Content-Length Header.")
            request.content_length = int(value)
        elif name == "EXPECT" and value.strip().lower() == "100-continue":
            request.expect_continue = True
    if request.content_length > MAX_BODY_BYTES:
        raise body_too_large(request.version)


# cheroot's 413 says "Connection: close" to HTTP/1.1 clients only; its 414 never does.
def head_too_large(version: tuple[int, int]) -> HTTPError:
    """The refusal of a head longer than MAX_HEAD_BYTES."""
    text = "The headers sent with the request exceed the maximum allowed bytes."
    return HTTPError(TOO_LARGE, text, version >= (1, 1))


def body_too_large(version: tuple[int, int]) -> HTTPError:
    """The refusal of a body longer than MAX_BODY_BYTES."""
    text = "The entity sent with the request exceeds the maximum allowed bytes."
    return HTTPError(TOO_LARGE, text, version >= (1, 1))


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
            raise body_too_large(request.version)
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
    path, _, query = request.target.partition(b"#")[0].partition(b"?")
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
