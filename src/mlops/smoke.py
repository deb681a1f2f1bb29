"""A smoke test every deployment must pass before it takes traffic.

What a right answer looks like is the model's contract, not this module's: the
response schema that src/model/features.py declares and generates into
src/model/swagger3.json, beside the sample request. So a classifier, a
regressor or any other task is checked against its own answer.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from mlops.backends.base import Response
from mlops.errors import MlopsError
from mlops.paths import MODEL_CODE

SAMPLE_REQUEST = MODEL_CODE / "sample-request.json"
OPENAPI = MODEL_CODE / "swagger3.json"  # generated: python src/model/features.py
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


@dataclass(frozen=True)
class Contract:
    """A request every deployment must answer, and the schema its answer must match."""

    sample: bytes
    answer_schema: dict


def load_contract(root: Path) -> Contract:
    """The sample request and the scoring route's 200 response schema, or one sentence."""
    regenerate = f"regenerate it with `python {(MODEL_CODE / 'features.py').as_posix()}`"
    try:
        document = json.loads((root / OPENAPI).read_text())
        post = document["paths"]["/score"]["post"]
        schema = post["responses"]["200"]["content"]["application/json"]["schema"]
        # OpenAPI 3.0's schema objects are a subset of JSON Schema draft 4/5 (OpenAPI 3.0.3,
        # "Schema Object"), so draft 4's rules read them.
        jsonschema.Draft4Validator.check_schema(schema)
    except FileNotFoundError:
        raise MlopsError(f"{OPENAPI.as_posix()} is missing; {regenerate}") from None
    except (ValueError, KeyError, TypeError, jsonschema.SchemaError):
        raise MlopsError(
            f"{OPENAPI.as_posix()} declares no usable response schema for POST /score; {regenerate}"
        ) from None
    return Contract(load_sample(root), schema)


def smoke_test(invoke: Callable[[bytes], Response], contract: Contract) -> SmokeResult:
    with marked_as("smoke"):
        return _smoke_test(invoke, contract)


def _smoke_test(invoke: Callable[[bytes], Response], contract: Contract) -> SmokeResult:
    rows = len(json.loads(contract.sample)["data"])
    started = time.perf_counter()
    reply = invoke(contract.sample)
    latency_ms = (time.perf_counter() - started) * 1000
    problem = _check_answer(reply, rows, contract.answer_schema)
    if problem:
        return SmokeResult(False, problem, latency_ms)
    refused = invoke(BAD_REQUEST)
    if not 400 <= refused.status < 500:
        return SmokeResult(
            False, f"an empty batch got HTTP {refused.status}, expected a 4xx refusal", latency_ms
        )
    return SmokeResult(True, f"{rows} rows scored, bad request refused", latency_ms)


def _check_answer(reply: Response, rows: int, schema: dict) -> str | None:
    if reply.status != 200:
        return (
            f"sample request got HTTP {reply.status}: {reply.body[:200].decode(errors='replace')}"
        )
    try:
        answer = json.loads(reply.body)
    except ValueError:
        return f"sample request got an answer that is not JSON: {reply.body[:200]!r}"
    wrong = jsonschema.exceptions.best_match(jsonschema.Draft4Validator(schema).iter_errors(answer))
    if wrong is not None:
        where = "/".join(map(str, wrong.absolute_path)) or "the top"
        problem = wrong.message[:200]
        return f"sample request got an answer off the response schema at {where}: {problem}"
    for name, items in answer.items() if isinstance(answer, dict) else ():
        if isinstance(items, list) and len(items) != rows:
            return f"sample request sent {rows} rows but got {len(items)} {name}"
    return None
