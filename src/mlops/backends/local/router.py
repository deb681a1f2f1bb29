"""A local online endpoint: one stable loopback URL in front of its deployments.

It routes each request as Azure ML's endpoint does: to the deployment named in
the `azureml-model-deployment` header if there is one, otherwise by the traffic
split in the endpoint's state file (re-read when it changes), and copies a
share of requests to a mirror deployment without returning its answer.

    python -m mlops.backends.local.router <endpoint.json>
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEPLOYMENT_HEADER = "azureml-model-deployment"
_FORWARDED = ("Content-Type", "Content-Length", "x-request-id")


class EndpointState:
    """The endpoint's state file, re-read whenever its modification time changes."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp: int | None = None
        self._data: dict = {}
        self._lock = threading.Lock()

    def current(self) -> dict:
        with self._lock:
            stamp = os.stat(self.path).st_mtime_ns
            if stamp != self._stamp:
                self._data = json.loads(self.path.read_text())
                self._stamp = stamp
            return self._data


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


def forward(port: int, method: str, path: str, body: bytes, headers: dict[str, str]):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type", "")
    finally:
        conn.close()


class Router(BaseHTTPRequestHandler):
    server_version = "mlops-local-endpoint"
    protocol_version = "HTTP/1.1"
    state: EndpointState
    rng = random.Random()

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK hold every kept-alive response back by ~40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt: str, *args) -> None:  # quiet: the servers log requests
        pass

    def do_GET(self) -> None:
        if self.path == "/":
            self._reply(200, b"Healthy", "text/plain")
        else:
            self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state = self.state.current()
        deployments = state.get("deployments", {})
        wanted = self.headers.get(DEPLOYMENT_HEADER)
        if wanted:
            if wanted not in deployments:
                return self._error(404, f"endpoint has no deployment named {wanted!r}")
            target = wanted
        else:
            target = choose(state.get("traffic", {}), self.rng)
            if target is None:
                return self._error(503, "endpoint has no deployment taking traffic")
        headers = {k: v for k in _FORWARDED if (v := self.headers.get(k)) is not None}
        if not wanted:
            self._mirror(state, body, headers)
        try:
            status, payload, content_type = forward(
                deployments[target]["port"], self.command, self.path, body, headers
            )
        except OSError:
            return self._error(502, f"deployment {target!r} is not answering")
        self._reply(status, payload, content_type, target)

    def _mirror(self, state: dict, body: bytes, headers: dict[str, str]) -> None:
        for name, pct in state.get("mirror_traffic", {}).items():
            deployment = state.get("deployments", {}).get(name)
            if deployment and self.rng.uniform(0, 100) < pct:
                threading.Thread(
                    target=_quietly,
                    args=(forward, deployment["port"], self.command, self.path, body, headers),
                    daemon=True,
                ).start()

    def _error(self, status: int, message: str) -> None:
        self._reply(status, json.dumps({"error": message}).encode(), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str, deployment: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if deployment:
            self.send_header(DEPLOYMENT_HEADER, deployment)
        self.end_headers()
        self.wfile.write(body)


def _quietly(function, *args) -> None:
    with contextlib.suppress(OSError):  # a mirror's failure never reaches the caller
        function(*args)


def main(argv: list[str]) -> int:
    state_path = Path(argv[0])
    Router.state = EndpointState(state_path)
    port = Router.state.current()["port"]
    server = ThreadingHTTPServer(("127.0.0.1", port), Router)
    server.daemon_threads = True
    print(f"endpoint router listening on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
