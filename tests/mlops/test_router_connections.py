"""The local endpoint's router, in process, on loopback: its connection cap, its header
deadline, and its answer while a deployment's servers are down. No deployment server runs:
the deployment's port is one nothing listens on."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from mlops.backends.local import processes, router

KEY = "test-key"


@pytest.fixture
def endpoint(tmp_path, monkeypatch):
    """A router (cap: 4 connections, header deadline: 1.5 s) in front of one deployment whose
    server is down; yields its port."""
    monkeypatch.setattr(router, "HEADER_DEADLINE_S", 1.5)
    state = tmp_path / "endpoint.json"
    record = {
        "status": "Succeeded",
        "port": processes.free_port(),  # nothing listens: the server is down
        "marker": str(tmp_path / "models"),
        "model": "m:1",
        "artifact_sha256": "0" * 64,
        "folder": str(tmp_path),
    }
    state.write_text(
        json.dumps(
            {"name": "e", "key": KEY, "traffic": {"blue": 100}, "deployments": {"blue": record}}
        )
    )
    monkeypatch.setattr(router.Router, "state", router.EndpointState(state), raising=False)
    server = router.EndpointServer(("127.0.0.1", 0), router.Router, max_connections=4)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def ask(port: int, raw: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *fields = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    return int(status.split()[1]), headers, body


def score(port: int) -> tuple[int, dict[str, str], bytes]:
    body = b'{"data": []}'
    return ask(
        port,
        b"POST /score HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )


def test_a_deployment_whose_servers_are_down_is_a_503_with_retry_after(endpoint):
    status, headers, body = score(endpoint)
    assert status == 503 and headers["retry-after"] == "2"
    assert "'blue' is restarting" in json.loads(body)["error"]


def test_connections_past_the_cap_are_turned_away_without_a_thread(endpoint):
    held = [socket.create_connection(("127.0.0.1", endpoint), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.2)
        threads = threading.active_count()
        status, headers, body = ask(endpoint, b"GET / HTTP/1.1\r\n\r\n")
        assert status == 503 and headers["retry-after"] == "2"
        assert "4 connections open" in json.loads(body)["error"]
        assert threading.active_count() == threads  # the refusal took no thread
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while score(endpoint)[0] != 503 or "restarting" not in score(endpoint)[2].decode():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_headers_trickling_in_end_at_the_header_deadline(endpoint):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", endpoint), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
        answer = b""
        for _ in range(20):  # a byte every 0.25 s (the per-read timeout is 5 s), bounded
            try:
                sock.sendall(b"x")
                time.sleep(0.25)
                sock.setblocking(False)
                answer += sock.recv(4096)
            except (BlockingIOError, OSError):
                pass
            finally:
                sock.setblocking(True)
            if answer:
                break
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert 1.4 < time.monotonic() - started < 4
