"""Reading an answer's body: within the deadline and a size cap, gzip inflated piece by piece."""

from __future__ import annotations

import zlib

import requests
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

from ..base.deadline import Deadline
from .errors import INVALID_RESPONSE, RESPONSE_TOO_LARGE, DRSAPIError
from .watchdog import Watch

READ_SIZE = 256 * 1024


class _Gunzip:
    """A gzip body inflated piece by piece, each piece within a size limit.

    Several members follow each other as one body (RFC 1952); bytes after the last member
    that are no gzip member, or only the start of one, are ignored, as urllib3 and other gzip
    readers do. An empty body is empty, whatever its Content-Encoding says.
    """

    def __init__(self) -> None:
        self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._done = 0  # members complete
        self._fresh = True  # the current member has given no output yet
        self._trailing = False  # bytes after a complete member that are no member: swallowed
        self._fed = False

    @property
    def eof(self) -> bool:
        """True once the body's last member is complete (or the body was empty)."""
        # A member after a complete one that gave no output is trailing bytes, ignored.
        return not self._fed or self._trailing or self._member.eof or (self._done > 0 and self._fresh)

    def feed(self, data: bytes, limit: int) -> bytes:
        """Inflate ``data``, at most ``limit`` bytes of output (input beyond that is dropped)."""
        out = b""
        self._fed = self._fed or bool(data)
        while data and not self._trailing and len(out) < limit:
            if self._member.eof:
                self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._done += 1
                self._fresh = True
            try:
                piece = self._member.decompress(data, limit - len(out))
            except zlib.error:
                if not (self._done and self._fresh):
                    raise
                self._trailing = True
                break
            self._fresh = self._fresh and not piece
            out += piece
            data = self._member.unused_data if self._member.eof else b""
        return out


def read_body(response: requests.Response, operation: str, deadline: Deadline, watch: Watch, max_bytes: int) -> bytes:
    """The body of ``response``, decoded, read by ``deadline`` and at most ``max_bytes`` long (else DRSAPIError)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise DRSAPIError(
            RESPONSE_TOO_LARGE,
            f"body of {declared} bytes is over the {max_bytes} byte cap",
            status=response.status_code,
            operation=operation,
        )
    decoder = _decoder(response, operation)
    raw = response.raw
    connection = getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    chunks: list[bytes] = []
    size = 0
    # The socket's timeout is not restored afterwards: the connection may be back in the pool
    # and in another exchange by then, and urllib3 sets the timeout of every exchange anyway.
    try:
        while True:
            left = deadline.remaining()
            if left <= 0:
                # A body trickling in byte by byte is cut here, at the deadline.
                raise requests.Timeout()
            if sock is not None and not watch.done:
                # Each socket read waits at most until the deadline, not a full timeout. Once
                # the connection is back in the pool (watch released) it is not ours to touch.
                sock.settimeout(left)
            # read1: what has arrived, with at most one read of the socket. Not decoded by
            # urllib3, which would read on until a gzip body yields output (empty blocks never do).
            chunk = raw.read1(READ_SIZE, decode_content=False)
            if not chunk:
                break
            if decoder is not None:
                # At most one byte over the cap is inflated: a decompression bomb stops there.
                chunk = decoder.feed(chunk, max_bytes - size + 1)
            size += len(chunk)
            if size > max_bytes:
                raise DRSAPIError(
                    RESPONSE_TOO_LARGE,
                    f"body is over the {max_bytes} byte cap",
                    status=response.status_code,
                    operation=operation,
                )
            chunks.append(chunk)
        if watch.fired:
            raise requests.Timeout()  # the end was the watchdog's shutdown, not the body's
        if decoder is not None and not decoder.eof:
            raise requests.ConnectionError("gzip body ends early")
    except requests.RequestException:
        raise  # the deadline's own Timeout (an OSError too): not a connection error
    except (ReadTimeoutError, TimeoutError):
        raise requests.Timeout() from None
    except (ProtocolError, DecodeError, OSError, zlib.error) as exc:
        if watch.fired:
            raise requests.Timeout() from None
        what = "gzip body is corrupt" if isinstance(exc, zlib.error) else "body read failed"
        raise requests.ConnectionError(f"{what}: {exc}") from None
    return b"".join(chunks)


def _decoder(response: requests.Response, operation: str) -> _Gunzip | None:
    """A gzip decoder when the body is gzip, None when it is plain; any other coding is refused."""
    coding = response.headers.get("Content-Encoding", "").strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return _Gunzip()
    raise DRSAPIError(
        INVALID_RESPONSE,
        f"unsupported Content-Encoding {coding[:40]!r}",
        status=response.status_code,
        operation=operation,
    )
