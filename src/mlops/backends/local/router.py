"""A local online endpoint: one stable loopback URL in front of its deployments.

It routes each request as Azure ML's endpoint does: to the deployment named in
the `azureml-model-deployment` header if there is one, otherwise by the traffic
split in the endpoint's state file (re-read when it changes), and copies a
share of requests to a mirror deployment without returning its answer.

Like a managed endpoint it asks for the endpoint's key, and every request gets
an HTTP answer: a malformed, slow, oversized or unauthorised one gets a 4xx with
a JSON `error` sentence, and only whole, checked requests reach a deployment.

    python -m mlops.backends.local.router <endpoint.json>
"""

from __future__ import annotations

import contextlib
import hmac
import http.client
import io
import itertools
import json
import os
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mlops.backends.local import state_files
from mlops.backends.local.server_settings import INTERNAL_TOKEN_HEADER
from mlops.backends.local.supervisor import Supervisor
from mlops.smoke import TRAFFIC_HEADER
from mlops.state import StateUnreadable, read_checked

DEPLOYMENT_HEADER = "azureml-model-deployment"
REQUEST_ID_HEADER = "x-request-id"
# Which kind of traffic a request is (TRAFFIC_HEADER, which src/model/score.py records): live
# when absent; "mirror" on the router's copies; the lifecycle marks its smoke tests and probes.
TRAFFIC_KINDS = ("live", "mirror", "smoke", "probe")
MAX_BODY_BYTES = 4 * 1024 * 1024  # a full batch (features.MAX_ROWS rows) is about 1.3 MB
READ_TIMEOUT_S = float(os.environ.get("MLOPS_ROUTER_READ_TIMEOUT", "5"))  # per socket read
# The request line and headers together, however they trickle in: a client sending a byte
# every few seconds never meets the per-read timeout, and would hold its thread for ever.
HEADER_DEADLINE_S = float(os.environ.get("MLOPS_ROUTER_HEADER_DEADLINE", "10"))
# Connections open at once; past it a connection gets a 503 with Retry-After at once, from
# the accepting thread, and no thread of its own.
MAX_CONNECTIONS = int(os.environ.get("MLOPS_ROUTER_MAX_CONNECTIONS", "256"))
RETRY_AFTER_S = 2  # what a 503 tells a client to wait: a restarting server takes a few seconds
BODY_DEADLINE_S = 30  # the whole body, however it trickles in
FORWARD_TIMEOUT_S = 60
HEALTH_TIMEOUT_S = 2
ROUTES = ("/score", "/swagger.json")  # what a managed endpoint's URL serves, besides /
STATS_ROUTE = "/mlops/stats"  # this endpoint's own figures, for `mlops status` (key required)
STATS_WINDOW = 1000  # the figures cover the last this many requests
MAX_LINE_BYTES = 8192
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")  # a path or an id: visible ASCII, no spaces
_DIGITS = re.compile(r"^[0-9]+$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class EndpointState:
    """The endpoint's state file, re-read whenever its modification time changes.

    A file that cannot be read, or has another shape than state_files.py gives, keeps the last
    good state, so a torn write or a hand edit never takes the endpoint down."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp: int | None = None
        self._data: dict = {}
        self._lock = threading.Lock()

    def current(self) -> dict:
        with self._lock:
            with contextlib.suppress(OSError, StateUnreadable):
                stamp = os.stat(self.path).st_mtime_ns
                if stamp != self._stamp:
                    self._stamp = stamp  # a bad file is read once, not on every request
                    # None: removed between the stat and the read
                    self._data = read_checked(self.path, state_files.checked) or self._data
            return self._data


class Measurements:
    """Status and latency of the last `window` requests the endpoint answered, and how many it
    answered since it started. Recording is an append under a lock: no cost a client notices."""

    def __init__(self, window: int = STATS_WINDOW):
        self._recent: deque[tuple[int, float]] = deque(maxlen=window)
        self._total = 0
        self._lock = threading.Lock()

    def record(self, status: int, seconds: float) -> None:
        with self._lock:
            self._recent.append((status, seconds * 1000))
            self._total += 1

    def summary(self) -> dict:
        with self._lock:
            recent, total = list(self._recent), self._total
        classes: dict[str, int] = {}
        for status, _ in recent:
            kind = f"{status // 100}xx" if status else "unanswered"
            classes[kind] = classes.get(kind, 0) + 1
        latencies = sorted(ms for _, ms in recent)
        return {
            "requests": len(recent),
            "total": total,
            "status_classes": classes,
            "p50_ms": round(_percentile(latencies, 50), 2),
            "p95_ms": round(_percentile(latencies, 95), 2),
        }


def _percentile(ordered: list[float], percent: float) -> float:
    """Nearest-rank percentile of sorted values (0 when there are none)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * percent // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def instance_ports(record: dict) -> list[int | None]:
    """The ports of a deployment's server instances: the first, then those its autoscale floor
    added (replicas)."""
    return [record.get("port")] + [replica.get("port") for replica in record.get("replicas", [])]


def choose(traffic: dict[str, int], rng: random.Random) -> str | None:
    serving = [(name, pct) for name, pct in sorted(traffic.items()) if pct > 0]
    if not serving:
        return None
    pick = rng.uniform(0, sum(pct for _, pct in serving))
    for name, pct in serving:
        pick -= pct
        if pick <= 0:
            return name
    return serving[-1][0]


def forward(
    port: int, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


class Refused(Exception):
    """A request the endpoint answers with a 4xx before any deployment sees it."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class EndpointServer(ThreadingHTTPServer):
    """http.server's threading server, with at most max_connections open at once."""

    daemon_threads = True
    request_queue_size = 1024  # the listen backlog: a burst of clients queues, not resets

    def __init__(self, address, handler, max_connections: int = MAX_CONNECTIONS):
        super().__init__(address, handler)
        self.max_connections = max_connections
        self._open = 0
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        with self._open_lock:
            full = self._open >= self.max_connections
            self._open += 0 if full else 1
        if full:
            _turn_away(request, self.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # a thread of its own
        except BaseException:
            self._closed()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._closed()

    def _closed(self) -> None:
        with self._open_lock:
            self._open -= 1


def _turn_away(connection: socket.socket, cap: int) -> None:
    """A 503 sent whole from the accepting thread: short, and bounded by a timeout."""
    body = json.dumps(
        {"error": f"the endpoint has {cap} connections open, its most; retry shortly"}
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Retry-After: {RETRY_AFTER_S}\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with contextlib.suppress(OSError):
        connection.settimeout(0.5)
        connection.sendall(head + body)


class _DeadlineReader(io.RawIOBase):
    """The connection's bytes, each read bounded by READ_TIMEOUT_S and, while the handler
    reads a request's line and headers, by what is left of its header deadline."""

    def __init__(self, connection: socket.socket, handler: Router):
        self.connection, self.handler = connection, handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        timeout = READ_TIMEOUT_S
        if self.handler.header_deadline is not None:
            timeout = min(timeout, self.handler.header_deadline - time.monotonic())
            if timeout <= 0:
                raise TimeoutError("the header deadline passed")
        self.connection.settimeout(timeout)
        return self.connection.recv_into(buffer)


class Router(BaseHTTPRequestHandler):
    server_version = "mlops-local-endpoint"
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_S  # each socket read: an idle or slow client only holds its own thread
    state: EndpointState
    measured = Measurements()
    turns = itertools.count()  # round robin over a deployment's instances
    answered = 0  # the status of the answer being sent (0 until one is)
    rng = random.Random()
    # Until a request line is parsed (a timeout or a refusal may come first), answers use these.
    requestline, command, request_version = "", None, "HTTP/1.0"

    header_deadline: float | None = None  # while reading a request's line and headers

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))
        # Headers and body leave in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK hold every kept-alive response back by ~40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt: str, *args) -> None:  # quiet: the servers log requests
        pass

    def handle_one_request(self) -> None:
        """http.server's loop, except that a request cut short by the read timeout gets a 408
        instead of a silent close."""
        self.header_deadline = time.monotonic() + HEADER_DEADLINE_S
        try:
            self.raw_requestline = self.rfile.readline(MAX_LINE_BYTES + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > MAX_LINE_BYTES:
                self.send_error(414, "request line too long")
                return
            if not self.parse_request():
                return
        except TimeoutError:
            self.send_error(
                408,
                f"the request line and headers did not arrive in time ({READ_TIMEOUT_S:g} s "
                f"at most between reads, {HEADER_DEADLINE_S:g} s in all)",
            )
            return
        except OSError:
            self.close_connection = True
            return
        finally:
            self.header_deadline = None
        getattr(self, f"do_{self.command}")()
        with contextlib.suppress(OSError):
            self.wfile.flush()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # a two-word request line: no headers, no key
            self.send_error(400, "request line must end with an HTTP version")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """http.server's own refusals (bad request line, headers too long…), as JSON."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # else http.server would send no status line
        reason = message or self.responses.get(code, ("error",))[0]
        if code >= 500:  # e.g. 505 for "HTTP/2.0" in the request line: still the client's doing
            code = 400
        self._error(code, f"the request could not be read: {reason}")

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # any method but GET and POST
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._error(405, f"method {self.command} is not allowed; use POST", {"Allow": "GET, POST"})

    def do_GET(self) -> None:
        if self.path == "/":
            return self._health()
        if self.path == STATS_ROUTE:
            return self._stats()
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # ---- health ------------------------------------------------------------------

    def _health(self) -> None:
        """Healthy only if the deployments taking traffic answer their own liveness route."""
        state = self.state.current()
        serving = [name for name, pct in state.get("traffic", {}).items() if pct > 0]
        if not serving:
            return self._error(503, "endpoint has no deployment taking traffic")
        for name in serving:
            for port in instance_ports(state.get("deployments", {}).get(name, {})):
                try:
                    status, _, _ = forward(port, "GET", "/", b"", {}, HEALTH_TIMEOUT_S)
                except (OSError, TypeError, http.client.HTTPException):
                    status = 0
                if status != 200:
                    return self._error(503, f"deployment {name!r} is not answering")
        self._reply(200, b"Healthy", {"Content-Type": "text/plain"})

    def _stats(self) -> None:
        """The endpoint's own figures (not counted among them), to whoever holds its key."""
        if not self._authorised():
            return self._error(401, "send the endpoint's key", {"WWW-Authenticate": "Bearer"})
        body = json.dumps(self.measured.summary()).encode()
        self._reply(200, body, {"Content-Type": "application/json"})

    # ---- scoring -------------------------------------------------------------------

    def _handle(self) -> None:
        """Answer one request to a scoring route, and count it with its status and latency."""
        started, self.answered = time.monotonic(), 0
        try:
            self._answer()
        finally:
            self.measured.record(self.answered, time.monotonic() - started)

    def _answer(self) -> None:
        try:
            request_id = self._check_request()
            body = self._read_body()
        except Refused as refusal:
            self.close_connection = True  # an unread body may follow: never parse it as a request
            return self._error(refusal.status, str(refusal), refusal.headers)
        self._route(body, request_id)

    def _check_request(self) -> str:
        if not _PRINTABLE.match(self.path):
            raise Refused(400, "the request path must be visible ASCII characters")
        route = self.path.split("?", 1)[0]
        if route not in ROUTES:
            raise Refused(404, f"no route {self.path!r}; score with POST /score")
        if route == "/swagger.json" and self.command != "GET":
            raise Refused(405, "the API document is read with GET", {"Allow": "GET"})
        if not self._authorised():
            # Azure ML's key auth: `Authorization: Bearer <key>`, 401 without it
            # (learn.microsoft.com/azure/machine-learning/how-to-authenticate-online-endpoint).
            raise Refused(
                401,
                "send the endpoint's key as 'Authorization: Bearer <key>' (see `mlops key`)",
                {"WWW-Authenticate": "Bearer"},
            )
        request_id = self.headers.get(REQUEST_ID_HEADER) or str(uuid.uuid4())
        if not _REQUEST_ID.match(request_id):
            raise Refused(400, f"{REQUEST_ID_HEADER} must be 1-128 letters, digits or . _ : -")
        traffic = self.headers.get(TRAFFIC_HEADER, "live")
        if traffic not in TRAFFIC_KINDS or traffic == "mirror":
            raise Refused(400, f"{TRAFFIC_HEADER} must be one of live, smoke, probe")
        return request_id

    def _traffic_kind(self, state: dict) -> str:
        """What the request counts as. Smoke tests and probes are left out of monitoring, so
        only the lifecycle may mark them: it sends the endpoint's internal token, which no
        client is given. Any other request is live, whatever it says, and so is recorded
        and counted (served rather than refused, as a header no client needs is no error)."""
        kind = self.headers.get(TRAFFIC_HEADER, "live")
        token = str(state.get("internal_token") or "")
        given = self.headers.get(INTERNAL_TOKEN_HEADER, "")
        owner = bool(token) and hmac.compare_digest(given.encode(), token.encode())
        return kind if owner else "live"

    def _authorised(self) -> bool:
        key = self.state.current().get("key")
        given = self.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        return (
            bool(key)
            and scheme.lower() == "bearer"
            and hmac.compare_digest(token.strip().encode(), str(key).encode())
        )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise Refused(411, "send the body with a Content-Length, not Transfer-Encoding")
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            if self.command == "POST":
                raise Refused(411, "a POST needs a Content-Length header")
            return b""
        if len(set(lengths)) != 1 or not _DIGITS.match(lengths[0].strip()):
            raise Refused(400, f"Content-Length must be one non-negative integer, got {lengths}")
        length = int(lengths[0])
        if length > MAX_BODY_BYTES:
            raise Refused(413, f"request body of {length} bytes is over {MAX_BODY_BYTES} bytes")
        body = bytearray()
        deadline = time.monotonic() + BODY_DEADLINE_S  # a trickle of bytes cannot stretch it
        with contextlib.suppress(TimeoutError):
            while len(body) < length and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(length - len(body), 1 << 16))
                if not chunk:
                    break
                body += chunk
        if len(body) < length:
            raise Refused(
                400,
                f"request body ended after {len(body)} of the {length} bytes its "
                "Content-Length declares",
            )
        return bytes(body)

    def _route(self, body: bytes, request_id: str) -> None:
        state = self.state.current()
        deployments = state.get("deployments", {})
        wanted = self.headers.get(DEPLOYMENT_HEADER)
        echo = {REQUEST_ID_HEADER: request_id}
        if wanted:
            if wanted not in deployments:
                return self._error(404, f"endpoint has no deployment named {wanted!r}", echo)
            target = wanted
        else:
            target = choose(state.get("traffic", {}), self.rng)
            if target is None:
                return self._error(503, "endpoint has no deployment taking traffic", echo)
        headers = {
            "Content-Type": self.headers.get("Content-Type", "application/json"),
            REQUEST_ID_HEADER: request_id,
            TRAFFIC_HEADER: self._traffic_kind(state),
            # the servers answer only this (server_settings.only_from_router)
            INTERNAL_TOKEN_HEADER: state.get("internal_token") or "",
        }
        if not wanted:
            self._mirror(state, body, headers)
        ports = instance_ports(deployments[target])
        first = next(self.turns)
        for attempt in range(len(ports)):
            try:
                status, payload, answer = forward(
                    ports[(first + attempt) % len(ports)],
                    self.command,
                    self.path,
                    body,
                    headers,
                    FORWARD_TIMEOUT_S,
                )
                break
            except ConnectionRefusedError:  # nothing was delivered: another instance may take it
                continue
            except (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead):
                # The instance died holding the request (it may have been scored): not sent
                # again here, so never twice; the client may retry once the instance is back.
                return self._restarting(target, echo)
            except (OSError, TypeError, http.client.HTTPException) as failure:
                why = type(failure).__name__
                return self._error(502, f"deployment {target!r} is not answering ({why})", echo)
        else:  # none listens: each is down or restarting (supervisor.py)
            return self._restarting(target, echo)
        content_type = _header(answer, "Content-Type") or "application/octet-stream"
        self._reply(
            status, payload, {"Content-Type": content_type, DEPLOYMENT_HEADER: target, **echo}
        )

    def _restarting(self, target: str, echo: dict[str, str]) -> None:
        self._error(
            503,
            f"deployment {target!r} is restarting; retry in {RETRY_AFTER_S} s",
            {**echo, "Retry-After": str(RETRY_AFTER_S)},
        )

    def _mirror(self, state: dict, body: bytes, headers: dict[str, str]) -> None:
        for name, pct in state.get("mirror_traffic", {}).items():
            deployment = state.get("deployments", {}).get(name)
            if deployment and self.rng.uniform(0, 100) < pct:
                copy = {**headers, TRAFFIC_HEADER: "mirror"}
                threading.Thread(
                    target=_quietly,
                    args=(forward, deployment.get("port"), self.command, self.path, body, copy),
                    daemon=True,
                ).start()

    # ---- answers -------------------------------------------------------------------

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self._reply(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.answered = status
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client left; nothing to tell it


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _quietly(function, *args) -> None:
    with contextlib.suppress(OSError, TypeError, http.client.HTTPException):
        function(*args, FORWARD_TIMEOUT_S)  # a mirror's failure never reaches the caller


def main(argv: list[str]) -> int:
    state_path = Path(argv[0])
    Router.state = EndpointState(state_path)
    port = Router.state.current()["port"]
    server = EndpointServer(("127.0.0.1", port), Router)
    print(f"endpoint router listening on http://127.0.0.1:{port}", flush=True)
    Supervisor(state_path).start()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
