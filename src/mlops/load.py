"""A bounded HTTP load: a few client threads, a cap on requests and on seconds.

Used by `mlops profile` and by benchmarks/. Keeps each connection open while
the server allows it, and stops by itself.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
import urllib.parse
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99_ms(self) -> float:
        return self.percentile(99)


def run_load(
    url: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    concurrency: int = 2,
    max_requests: int = 2000,
    max_seconds: float = 10.0,
    expect_status: int = 200,
) -> LoadResult:
    """POST body to url from `concurrency` threads until either cap is reached."""
    target = urllib.parse.urlsplit(url)
    if target.hostname not in ("127.0.0.1", "localhost", "::1") and target.scheme != "https":
        raise ValueError(f"refusing to load {url}: only loopback or an https endpoint")
    sent_headers = {"Content-Type": "application/json", **(headers or {})}
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"sent": 0, "errors": 0}
    deadline = time.monotonic() + max_seconds

    def take_ticket() -> bool:
        with lock:
            if counts["sent"] >= max_requests or time.monotonic() >= deadline:
                return False
            counts["sent"] += 1
            return True

    def worker() -> None:
        connection = None
        while take_ticket():
            began = time.perf_counter()
            try:
                if connection is None:
                    connection = _connect(target)
                connection.request("POST", target.path or "/", body=body, headers=sent_headers)
                reply = connection.getresponse()
                reply.read()
                ok = reply.status == expect_status
                if reply.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                ok = False
                connection = None
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    counts["errors"] += 1
        if connection is not None:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max_seconds + 30)
    seconds = time.perf_counter() - started
    return LoadResult(len(latencies), counts["errors"], seconds, tuple(latencies))


def _connect(target: urllib.parse.SplitResult) -> http.client.HTTPConnection:
    if target.scheme == "https":
        return http.client.HTTPSConnection(target.hostname, target.port or 443, timeout=30)
    return http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
