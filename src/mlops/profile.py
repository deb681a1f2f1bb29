"""Profile an environment's endpoint: what one instance sustains, and how many the target needs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from mlops.load import run_load
from mlops.smoke import TRAFFIC_HEADER

HEADROOM = 0.7  # plan each instance for 70% of what it sustained, for spikes and noisy neighbours


@dataclass(frozen=True)
class Profile:
    endpoint: str
    instances: int
    requests: int
    errors: int
    seconds: float
    rps: float
    rps_per_instance: float
    p50_ms: float
    p99_ms: float
    target_rps: int | None
    recommended_instances: int | None

    def as_dict(self) -> dict:
        return asdict(self)


def recommend(target_rps: int | None, rps_per_instance: float) -> int | None:
    if target_rps is None or rps_per_instance <= 0:
        return None
    return max(1, math.ceil(target_rps / (rps_per_instance * HEADROOM)))


def profile(
    url: str,
    headers: dict[str, str],
    body: bytes,
    instances: int,
    target_rps: int | None,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
) -> Profile:
    result = run_load(
        url,
        body,
        {**headers, TRAFFIC_HEADER: "probe"},  # kept out of the drift the monitor measures
        concurrency=concurrency,
        max_requests=max_requests,
        max_seconds=max_seconds,
    )
    per_instance = result.rps / instances
    return Profile(
        endpoint=url,
        instances=instances,
        requests=result.requests,
        errors=result.errors,
        seconds=round(result.seconds, 2),
        rps=round(result.rps, 1),
        rps_per_instance=round(per_instance, 1),
        p50_ms=round(result.p50_ms, 2),
        p99_ms=round(result.p99_ms, 2),
        target_rps=target_rps,
        recommended_instances=recommend(target_rps, per_instance),
    )
