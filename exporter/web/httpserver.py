"""The HTTP server: one event-loop thread holds every connection until its request is read whole.

A connection costs a file descriptor and a few hundred bytes until it has sent a complete request:
the TLS handshake, the request head and the body are read by the loop, without blocking, under one
deadline; only then does a worker thread run the application. The answer is handed back to the
loop, which sends it as the client reads. So clients that connect and say nothing, drip their
headers, stall in a TLS handshake or read slowly take neither a worker nor the accept loop
(with cheroot, the server before, each of them took one or the other). Connections and their
limits are in ``connections``.

Workers are shared fairly between client addresses (an IPv6 client's /64 counts as one address:
``connections.client_key``; round robin, and at most ``running_per_ip`` of
them for one address), and an address holds at most ``connections_per_ip`` connections: past
that, or past ``max_connections`` in all, a new connection closes an older one (its own
address's, or that of the address holding the most; ``connections.victim`` says which).

Requests that ``slow`` picks out (the exporter's: credentials that need a bcrypt check) run on
``check_workers`` threads of their own, one per address at a time; the loop decides before any
thread is taken, so they never keep the workers from anyone else.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import io
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import httpwire
from .connections import (
    BODY,
    CONTINUE,
    HANDSHAKE,
    HEAD,
    LINGER,
    RUNNING,
    SWEEP,
    WAITING,
    WRITE,
    Conn,
    FairQueue,
    Limits,
    bind,
    client_key,
    send_deadline,
    victim,
)
from .tlsserver import Acceptor, HandshakeError, PlainStream, WantRead, WantWrite

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# WSGI environ keys this server adds: the client's address group (its key for the per-address
# limits) and when the request was read whole (time.monotonic()), before it waited for a thread.
CLIENT_KEY = "drs_exporter.client"
QUEUED_KEY = "drs_exporter.queued_at"


class Server:
    """An HTTP/1.1 server of a WSGI application (plain or TLS), bound at creation; serve() runs it."""

    def __init__(
        self,
        app: WSGIApp,
        host: str,
        port: int,
        acceptor: Acceptor | None = None,
        limits: Limits | None = None,
        slow: Callable[[httpwire.Request], bool] | None = None,
    ) -> None:
        self.app = app
        self._slow = slow
        self.limits = limits or Limits()
        self._acceptor = acceptor
        self._listener = bind(host, port)
        self.bind_addr: tuple[str, int] = self._listener.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._conns: dict[Conn, None] = {}
        self._by_ip: dict[str, dict[Conn, None]] = {}
        self._answers: collections.deque[tuple[Conn, bytes, list[Any], bool]] = collections.deque()
        self._queue = FairQueue(self.limits.running_per_ip)
        self._slow_queue = FairQueue(1)
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._accept_paused_until = 0.0

    @property
    def tls(self) -> bool:
        """Whether new connections are served with TLS."""
        return self._acceptor is not None

    def set_acceptor(self, acceptor: Acceptor | None) -> None:
        """Serve new connections with this TLS side (None: plain HTTP); connections already open keep theirs."""
        self._acceptor = acceptor

    def stop(self) -> None:
        """Stop accepting; serve() returns once answers in progress are sent (at most ``drain`` seconds). Any thread."""
        self._stopping.set()
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # --- the loop

    def serve(self) -> None:
        """Serve until stop()."""
        pools = [(self._queue, "http-worker", self.limits.workers)]
        if self._slow is not None:
            pools.append((self._slow_queue, "http-check", self.limits.check_workers))
        for queue, name, count in pools:
            for n in range(count):
                worker = threading.Thread(target=self._work, args=(queue,), name=f"{name}-{n}")
                worker.start()
                self._workers.append(worker)
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        next_sweep = time.monotonic() + SWEEP
        drain_until = 0.0
        try:
            while True:
                if self._stopping.is_set() and not drain_until:
                    drain_until = time.monotonic() + self.limits.drain
                    self._stop_accepting()
                if drain_until and (not self._conns or time.monotonic() >= drain_until):
                    break
                for key, mask in self._sel.select(max(0.0, next_sweep - time.monotonic())):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    else:
                        self._ready(key.data, mask)
                self._send_answers()
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + SWEEP
        finally:
            for conn in list(self._conns):
                self._close(conn)
            self._queue.close()
            self._slow_queue.close()
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(self._listener)
            self._listener.close()
            self._sel.close()
            self._wake_r.close()
            self._wake_w.close()

    def _stop_accepting(self) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self._listener)
        for conn in list(self._conns):
            if conn.state in (*WAITING, LINGER):
                self._close(conn)
            else:  # answered, then closed
                conn.close_after = True

    def _sweep(self, now: float) -> None:
        for conn in list(self._conns):
            if now >= conn.deadline:
                log.debug("connection from %s closed: no progress (%s) in time", conn.ip, conn.state)
                self._close(conn)
        if self._accept_paused_until and now >= self._accept_paused_until and not self._stopping.is_set():
            self._accept_paused_until = 0.0
            self._sel.register(self._listener, selectors.EVENT_READ, None)

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, addr = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: make room from the waiting connections, or pause accepting.
                    if not self._evict(None):
                        log.warning("cannot accept connections: %s; pausing for 0.1 s", exc.strerror)
                        self._sel.unregister(self._listener)
                        self._accept_paused_until = time.monotonic() + 0.1
                        return
                    continue
                log.debug("accept failed: %s", exc)
                return
            self._admit(sock, (str(addr[0]), int(addr[1])))

    def _admit(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        limits = self.limits
        ip = client_key(peer[0])
        if len(self._by_ip.get(ip, ())) >= limits.connections_per_ip and not self._evict(ip):
            sock.close()
            return
        if len(self._conns) >= limits.max_connections and not self._evict(None):
            sock.close()
            return
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        acceptor = self._acceptor
        try:
            stream = acceptor.wrap(sock) if acceptor is not None else PlainStream(sock)
        except (OSError, ValueError) as exc:
            log.debug("cannot set up the connection from %s: %s", ip, exc)
            sock.close()
            return
        state = HANDSHAKE if acceptor is not None else HEAD
        conn = Conn(stream, peer, state, time.monotonic() + limits.request_timeout)
        self._conns[conn] = None
        self._by_ip.setdefault(ip, {})[conn] = None
        self._watch(conn, selectors.EVENT_READ)

    def _evict(self, ip: str | None) -> bool:
        """Close a connection of ``ip`` (or of the address with most) for a newer one (``victim``)."""
        if ip is None:
            if not self._by_ip:
                return False
            ip = max(self._by_ip, key=lambda addr: len(self._by_ip[addr]))
        conn = victim(self._by_ip.get(ip, ()))
        if conn is None:
            return False
        log.debug("connection from %s (%s) closed for a newer one (limit of connections)", ip, conn.state)
        if conn.state == RUNNING:
            self._queue.discard(conn)
            self._slow_queue.discard(conn)
        self._close(conn)
        return True

    def _watch(self, conn: Conn, events: int) -> None:
        """Wait for ``events`` on the connection's socket (0: for nothing)."""
        if events == conn.events or conn.closed:
            return
        if not conn.events:
            self._sel.register(conn.stream.sock, events, conn)
        elif not events:
            self._sel.unregister(conn.stream.sock)
        else:
            self._sel.modify(conn.stream.sock, events, conn)
        conn.events = events

    def _close(self, conn: Conn) -> None:
        if conn.closed:
            return
        self._watch(conn, 0)
        conn.closed = True
        del self._conns[conn]
        same = self._by_ip[conn.ip]
        del same[conn]
        if not same:
            del self._by_ip[conn.ip]
        with contextlib.suppress(OSError):
            conn.stream.sock.close()

    def _ready(self, conn: Conn, mask: int) -> None:
        if conn.state == HANDSHAKE:
            self._guarded(conn, self._handshake)
        elif conn.state in (HEAD, BODY):
            self._guarded(conn, self._read)
        elif conn.state == WRITE:
            self._guarded(conn, self._write)
        elif conn.state == LINGER:
            self._guarded(conn, self._linger)

    def _guarded(self, conn: Conn, step: Callable[[Conn], None]) -> None:
        """One step of a connection; whatever goes wrong ends that connection, never the loop."""
        try:
            step(conn)
        except (OSError, ValueError) as exc:  # the peer reset or left, or TLS broke: its problem
            log.debug("connection from %s: %s", conn.ip, exc)
            self._close(conn)
        except Exception:
            log.exception("connection from %s dropped", conn.ip)
            self._close(conn)

    def _handshake(self, conn: Conn) -> None:
        try:
            conn.stream.handshake()
        except WantRead:
            self._watch(conn, selectors.EVENT_READ)
            return
        except WantWrite:
            self._watch(conn, selectors.EVENT_WRITE)
            return
        except HandshakeError as exc:
            log.debug("TLS handshake with %s failed: %s", conn.ip, exc)
            if exc.answer:  # in plain text, on the kernel's socket
                conn.stream = PlainStream(conn.stream.sock)
                self._answer(conn, exc.answer)
            else:
                self._close(conn)
            return
        conn.state = HEAD
        self._read(conn)

    def _read(self, conn: Conn) -> None:
        stream = conn.stream
        want = selectors.EVENT_READ
        for _ in range(64):  # bounded: a fast sender cannot keep the loop to itself
            try:
                data = stream.recv(65536)
            except WantRead:
                break
            except WantWrite:  # TLS may have to send before it can read on
                want = selectors.EVENT_WRITE
                break
            if not data:
                self._close(conn)  # the client left; a half-sent request is dropped
                return
            if not conn.buf and conn.state == HEAD and conn.request is not None:
                # The next request on a kept connection has begun: from now, the request deadline.
                conn.deadline = time.monotonic() + self.limits.request_timeout
            conn.buf += data
            if len(conn.buf) > httpwire.MAX_HEAD_BYTES + httpwire.MAX_BODY_BYTES + 4096 or not stream.pending():
                break
        self._watch(conn, want)
        self._advance(conn)

    def _advance(self, conn: Conn) -> None:
        """Parse what has arrived; once a request is whole, queue it for a worker."""
        try:
            if conn.state == HEAD:
                end = httpwire.head_end(conn.buf)
                if end < 0:
                    return
                request = httpwire.parse_head(bytes(conn.buf[:end]))
                del conn.buf[:end]
                conn.request = request
                conn.state = BODY
                if request.expect_continue and (request.content_length or request.chunked) and not conn.buf:
                    self._send_now(conn, CONTINUE)
            current = conn.request
            if conn.state == BODY and current is not None:
                got = httpwire.body_length(current, conn.buf)
                if got is None:
                    if len(conn.buf) > httpwire.MAX_BODY_BYTES + 4096:
                        raise httpwire.body_too_large(current.version)
                    return
                current.body, used = got
                del conn.buf[:used]
                current.environ_extra = {**conn.stream.environ(), QUEUED_KEY: time.monotonic()}
                conn.state = RUNNING
                conn.deadline = float("inf")  # a worker has it; the application bounds its own time
                self._watch(conn, 0)
                slow = self._slow is not None and self._slow(current)
                (self._slow_queue if slow else self._queue).put(conn)
        except httpwire.HTTPError as exc:
            self._answer(conn, exc.answer())

    def _send_now(self, conn: Conn, data: bytes) -> None:
        """A small interim answer (100 Continue): sent whole now, or the connection is dropped."""
        try:
            if conn.stream.send(memoryview(data)) == len(data):
                return
        except (WantRead, WantWrite):
            pass
        raise OSError("could not send 100 Continue at once")

    def _answer(self, conn: Conn, data: bytes) -> None:
        """Send a refusal, then close."""
        conn.out = collections.deque([memoryview(data)])
        conn.close_after = True
        self._start_write(conn, len(data), time.monotonic())

    # --- workers

    def _work(self, queue: FairQueue) -> None:
        while True:
            conn = queue.get()
            if conn is None:
                return
            try:
                head, chunks, close = self._run(conn)
            except Exception:
                log.exception("the application failed")
                head, chunks, close = httpwire.HTTPError("500 Internal Server Error", "").answer(), [], True
            finally:
                queue.done(conn.ip)
            self._answers.append((conn, head, chunks, close))
            self._wake()

    def _run(self, conn: Conn) -> tuple[bytes, list[Any], bool]:
        request = conn.request
        if request is None:  # never: queued once its request is read
            raise RuntimeError("no request")
        env = httpwire.environ(request, self.bind_addr, conn.peer, "http")
        env[CLIENT_KEY] = conn.ip
        env["wsgi.input"] = io.BytesIO(request.body)
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        result = self.app(env, start_response)
        try:
            chunks = [*written, *result]  # the app's own chunks, not copied
        finally:
            close_result = getattr(result, "close", None)
            if close_result is not None:
                close_result()
        if not started:
            raise RuntimeError("the application did not call start_response")
        head, close = httpwire.response_head(
            started[0], started[1], request, close=not request.keep_alive or self._stopping.is_set()
        )
        return head, ([] if request.method == "HEAD" else chunks), close

    def _send_answers(self) -> None:
        now = time.monotonic()
        while self._answers:
            conn, head, chunks, close = self._answers.popleft()
            if conn.closed:
                continue
            conn.out = collections.deque(memoryview(chunk) for chunk in (head, *chunks) if chunk)
            conn.close_after = close or conn.close_after
            self._guarded(conn, lambda c: self._start_write(c, sum(len(chunk) for chunk in c.out), now))

    def _start_write(self, conn: Conn, size: int, now: float) -> None:
        conn.state = WRITE
        conn.send_by = send_deadline(self.limits, size, now)
        conn.deadline = min(now + self.limits.write_timeout, conn.send_by)
        self._write(conn)

    def _write(self, conn: Conn) -> None:
        stream = conn.stream
        while conn.out:
            try:
                sent = stream.send(conn.out[0])
            except WantWrite:
                self._watch(conn, selectors.EVENT_WRITE)
                return
            except WantRead:
                self._watch(conn, selectors.EVENT_READ)
                return
            conn.deadline = min(time.monotonic() + self.limits.write_timeout, conn.send_by)
            if sent < len(conn.out[0]):
                conn.out[0] = conn.out[0][sent:]
            else:
                conn.out.popleft()
        if conn.close_after:
            self._start_linger(conn)
            return
        # Kept alive: wait for the next request (perhaps already here, pipelined).
        conn.state = HEAD
        conn.deadline = time.monotonic() + (self.limits.request_timeout if conn.buf else self.limits.idle_timeout)
        self._watch(conn, selectors.EVENT_READ)
        if conn.buf:
            self._advance(conn)

    def _start_linger(self, conn: Conn) -> None:
        conn.stream.close_notify()
        try:
            conn.stream.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state = LINGER
        conn.buf = bytearray()
        conn.deadline = time.monotonic() + self.limits.linger
        self._watch(conn, selectors.EVENT_READ)
        self._linger(conn)

    def _linger(self, conn: Conn) -> None:
        for _ in range(16):
            try:
                # The kernel's socket, under TLS too: what is left is dropped unread.
                data = socket.socket.recv(conn.stream.sock, 65536)
            except BlockingIOError:
                return
            if not data:
                break
        self._close(conn)
