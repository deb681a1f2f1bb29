"""A raw HTTP/1.1 client for local endpoints: it sends exactly the bytes a test writes,
malformed ones included, and reads one answer. Loopback only, every wait bounded."""

from __future__ import annotations

import json
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers import env_setting

LOOPBACK = "127.0.0.1"
MODEL = env_setting("prod", "model.name")


def fresh_home(shared_model: tuple[Path, Path], target: Path) -> tuple[Path, Path]:
    """A state home of one's own, holding the shared model (see conftest.shared_model)."""
    repo, home = shared_model
    shutil.copytree(home, target)
    return repo, target


@dataclass
class Answer:
    status: int  # 0: the connection closed with no answer
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass(frozen=True)
class Endpoint:
    port: int
    key: str

    @staticmethod
    def of(home: Path, env: str) -> Endpoint:
        state = json.loads(
            (
                home / env / "endpoints" / env_setting(env, "endpoint.name") / "endpoint.json"
            ).read_text()
        )
        return Endpoint(state["port"], state["key"])

    def request(
        self,
        body: bytes,
        method: str = "POST",
        path: str = "/score",
        headers: dict[str, str] | None = None,
        key: bool = True,
    ) -> bytes:
        """A well-formed request's bytes (tests then break the part they are about)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}:{self.port}"]
        fields = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if key:
            fields["Authorization"] = f"Bearer {self.key}"
        fields.update(headers or {})
        lines += [f"{name}: {value}" for name, value in fields.items() if value is not None]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def send(self, raw: bytes, half_close: bool = False, timeout: float = 30) -> Answer:
        started = time.monotonic()
        with socket.create_connection((LOOPBACK, self.port), timeout=timeout) as sock:
            sock.sendall(raw)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            answer = read_answer(sock)
        answer.seconds = time.monotonic() - started
        return answer


def read_answer(sock: socket.socket) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return Answer(0, body=data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body[:length])
