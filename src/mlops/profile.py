"""Profile an environment's endpoint: what one instance sustains, and how many the target needs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from mlops.config import MAX_INSTANCES, EnvConfig
from mlops.load import run_load
from mlops.smoke import TRAFFIC_HEADER

HEADROOM = 0.7  # plan each instance for 70% of what it sustained, for spikes and noisy neighbours
BURST = 2  # autoscale's ceiling covers this many times the target, for bursts above it


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
    recommended_instances: int | None  # for the target: autoscale's floor
    recommended_max_instances: int | None = None  # for BURST times the target: its ceiling

    def as_dict(self) -> dict:
        return asdict(self)


def recommend(target_rps: int | None, rps_per_instance: float) -> int | None:
    if target_rps is None or rps_per_instance <= 0:
        return None
    return max(1, math.ceil(target_rps / (rps_per_instance * HEADROOM)))


def bounds(target_rps: int | None, rps_per_instance: float) -> tuple[int, int] | None:
    """Autoscale's (min_instances, max_instances): the floor carries the target with headroom
    (scaling out takes minutes), the ceiling a burst of BURST times it, within Azure's limit."""
    floor = recommend(target_rps, rps_per_instance)
    if floor is None:
        return None
    ceiling = recommend(target_rps * BURST, rps_per_instance)
    return min(floor, MAX_INSTANCES), min(max(floor, ceiling), MAX_INSTANCES)


def advice(found: Profile, cfg: EnvConfig) -> list[str]:
    """What to set in the environment file, and where, for the measured rate."""
    where = cfg.path.as_posix()
    sized = bounds(found.target_rps, found.rps_per_instance)
    if sized is None:
        return [f"set endpoint.target_rps in {where} for an instance recommendation"]
    low, high = sized
    now = cfg.autoscale
    lines = [
        f"for {found.target_rps} req/s at {int(HEADROOM * 100)}% load per instance, "
        f"{BURST}x bursts: in {where} set endpoint.autoscale.min_instances {low} and "
        f"max_instances {high}, with endpoint.instance_count within them "
        + (
            f"(now {now.min_instances}..{now.max_instances}, instance_count {cfg.instance_count})"
            if now
            else f"(now a fixed instance_count {cfg.instance_count})"
        )
    ]
    if (found.recommended_instances or 0) > MAX_INSTANCES:
        lines.append(
            f"{found.recommended_instances} instances are over Azure's {MAX_INSTANCES} per "
            "deployment: choose a larger endpoint.instance_type or ask Azure for more"
        )
    return lines


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
    sized = bounds(target_rps, per_instance)
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
        recommended_max_instances=sized[1] if sized else None,
    )
