"""A smoke test every deployment must pass before it takes traffic."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from mlops.backends.base import Response
from mlops.paths import MODEL_CODE

SAMPLE_REQUEST = MODEL_CODE / "sample-request.json"
# A request every endpoint must refuse with a 4xx: it proves validation is live.
BAD_REQUEST = b'{"data": []}'


# What the requests sent now are, for the endpoint's data collection: "live" unless a test or
# a probe says otherwise. Backends that can mark requests read it (the local one sends it as
# the header below, which src/model/score.py records), so smoke tests and load probes stay
# out of the drift the monitor measures.
TRAFFIC_HEADER = "x-mlops-traffic"
traffic_kind: ContextVar[str] = ContextVar("traffic_kind", default="live")


@contextlib.contextmanager
def marked_as(kind: str) -> Iterator[None]:
    token = traffic_kind.set(kind)
    try:
        yield
    finally:
        traffic_kind.reset(token)


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    detail: str
    latency_ms: float


def load_sample(root: Path) -> bytes:
    return (root / SAMPLE_REQUEST).read_bytes()


def smoke_test(invoke: Callable[[bytes], Response], sample: bytes) -> SmokeResult:
    with marked_as("smoke"):
        return _smoke_test(invoke, sample)


def _smoke_test(invoke: Callable[[bytes], Response], sample: bytes) -> SmokeResult:
    rows = len(json.loads(sample)["data"])
    started = time.perf_counter()
    reply = invoke(sample)
    latency_ms = (time.perf_counter() - started) * 1000
    problem = _check_answer(reply, rows)
    if problem:
        return SmokeResult(False, problem, latency_ms)
    refused = invoke(BAD_REQUEST)
    if not 400 <= refused.status < 500:
        return SmokeResult(
            False, f"an empty batch got HTTP {refused.status}, expected a 4xx refusal", latency_ms
        )
    return SmokeResult(True, f"{rows} rows scored, bad request refused", latency_ms)


def _check_answer(reply: Response, rows: int) -> str | None:
    if reply.status != 200:
        return (
            f"sample request got HTTP {reply.status}: {reply.body[:200].decode(errors='replace')}"
        )
    try:
        answer = json.loads(reply.body)
        predictions, probabilities = answer["predictions"], answer["probabilities"]
    except (ValueError, KeyError, TypeError):
        return f"sample request got an unexpected answer: {reply.body[:200]!r}"
    if len(predictions) != rows or len(probabilities) != rows:
        return f"sample request sent {rows} rows but got {len(predictions)} predictions"
    if not all(p in (0, 1) for p in predictions):
        return "predictions are not all 0 or 1"
    if not all(isinstance(p, float | int) and 0 <= p <= 1 for p in probabilities):
        return "probabilities are not all between 0 and 1"
    return None
