"""What the HTTP server keeps per connection: its limits, a connection's state and the fair queue of work."""

from __future__ import annotations

import collections
import ipaddress
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from . import httpwire
from .tlsserver import Stream


@dataclass(frozen=True)
class Limits:
    """What one client may take, in time and in connections (docs/reliability.md, hostile clients)."""

    workers: int = 16
    # Requests whose credentials need a bcrypt check (passwords.PasswordChecks) run on these threads,
    # one per address at a time, apart from the workers: waiting for a turn never holds a worker
    # that a client with verified credentials needs.
    check_workers: int = 4
    # From accept to a whole first request (TLS handshake, head and body); for later requests on a
    # kept connection, from their first byte.
    request_timeout: float = 10.0
    # A kept connection waits this long for the first byte of its next request.
    idle_timeout: float = 60.0
    # Sending an answer may go this long without the client taking a byte.
    write_timeout: float = 10.0
    # And the whole answer must be sent within answer_time plus one second per answer_rate bytes
    # (10 s + 1 s per MiB), so that a client taking a few bytes now and then cannot hold its
    # connection for ever.
    answer_time: float = 10.0
    answer_rate: float = 1024 * 1024
    # Past either limit a new connection closes an older one: of its own address, or (server full)
    # of the address holding the most (``victim``), so that no address can lock the others out.
    max_connections: int = 1024
    connections_per_ip: int = 256
    # Answers to one address computed at once; the others keep a worker free for other addresses.
    running_per_ip: int = 12
    # After the last answer on a closed connection, what the client still sends is read and dropped
    # this long, so that closing does not reset the connection before the client has read the answer.
    linger: float = 2.0
    # After stop(), answers in progress get this long to be computed and sent.
    drain: float = 1.5


# Connection states.
HANDSHAKE, HEAD, BODY, RUNNING, WRITE, LINGER = "handshake", "head", "body", "running", "write", "linger"
WAITING = (HANDSHAKE, HEAD, BODY)  # no request (or no next request) yet
SWEEP = 0.25  # seconds between two looks at the deadlines
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def client_key(ip: str) -> str:
    """The address group whose connections the per-address limits count: an IPv6 client's /64 (a host
    usually has a whole /64 to pick addresses from), an IPv4 one's address (also when IPv4-mapped)."""
    if ":" not in ip:
        return ip
    try:
        address = ipaddress.IPv6Address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class Conn:
    """One client connection and where it is in its exchange."""

    __slots__ = (
        *("buf", "close_after", "closed", "deadline", "events", "ip"),
        *("out", "peer", "request", "send_by", "state", "stream"),
    )

    def __init__(self, stream: Stream, peer: tuple[str, int], state: str, deadline: float) -> None:
        self.stream = stream
        self.peer = peer
        self.ip = client_key(peer[0])  # the key of the per-address limits
        self.state = state
        self.deadline = deadline
        self.buf = bytearray()
        self.request: httpwire.Request | None = None
        self.out: collections.deque[memoryview] = collections.deque()
        self.close_after = False
        self.closed = False
        self.events = 0
        self.send_by = float("inf")  # the answer being sent must be sent by then


def victim(conns: Iterable[Conn]) -> Conn | None:
    """The connection to close for a newer one: the oldest that loses least.

    First those with no request in hand (waiting for one, or lingering after the last answer),
    then those sending an answer, then those whose request a thread has or waits for.
    """
    best: Conn | None = None
    best_rank = 3
    for conn in conns:  # oldest first: dicts keep the order connections were accepted in
        rank = 0 if conn.state in (*WAITING, LINGER) else 1 if conn.state == WRITE else 2
        if rank < best_rank:
            best, best_rank = conn, rank
            if rank == 0:
                break
    return best


def send_deadline(limits: Limits, size: int, now: float) -> float:
    """When an answer of ``size`` bytes begun ``now`` must be sent by."""
    return now + limits.answer_time + size / limits.answer_rate


class FairQueue:
    """Requests waiting for a worker, taken in turn by client address, at most ``limit`` running per address."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._cond = threading.Condition()
        self._waiting: collections.OrderedDict[str, collections.deque[Conn]] = collections.OrderedDict()
        self._running: collections.Counter[str] = collections.Counter()
        self._closed = False

    def put(self, conn: Conn) -> None:
        """Queue a connection whose request is read."""
        with self._cond:
            self._waiting.setdefault(conn.ip, collections.deque()).append(conn)
            self._cond.notify()

    def get(self) -> Conn | None:
        """The next request to run (the address served longest ago goes first); None once closed."""
        with self._cond:
            while not self._closed:
                for ip, queue in self._waiting.items():
                    if self._running[ip] < self._limit:
                        conn = queue.popleft()
                        if queue:
                            self._waiting.move_to_end(ip)
                        else:
                            del self._waiting[ip]
                        self._running[ip] += 1
                        return conn
                self._cond.wait()
            return None

    def discard(self, conn: Conn) -> None:
        """Forget ``conn`` if it still waits (it was closed)."""
        with self._cond:
            queue = self._waiting.get(conn.ip)
            if queue is not None and conn in queue:
                queue.remove(conn)
                if not queue:
                    del self._waiting[conn.ip]

    def done(self, ip: str) -> None:
        """A request of ``ip`` is answered."""
        with self._cond:
            self._running[ip] -= 1
            if self._running[ip] <= 0:
                del self._running[ip]
            self._cond.notify()

    def close(self) -> None:
        """Wake every worker waiting in get(): they return None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def bind(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A non-blocking listening socket on (host, port), IPv4 or IPv6."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
