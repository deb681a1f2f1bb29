"""The champion/challenger gate, fail closed.

A challenger passes when every gated metric reaches its bound (a floor for a
metric where higher is better, a ceiling where lower is better, as
environments/prod.yml declares each) and is not worse than the prod champion's
by more than the tolerance. A champion that
is declared but whose metrics cannot be read refuses the challenger: an
unreadable champion is never a silent pass, and neither is a metric that is
missing, not a number, NaN or infinite, on either side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mlops.backends.base import ModelVersion
from mlops.config import Gate


@dataclass(frozen=True)
class Champion:
    """What prod serves: nothing yet (ref None), readable metrics, or a problem reading them."""

    ref: str | None
    metrics: dict[str, object] | None = None
    problem: str | None = None
    source: str = ""  # where the champion was read: prod's live endpoint or its env file


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)

    def refuse(self, reason: str) -> None:
        self.passed = False
        self.reasons.append(f"REFUSED: {reason}")

    def note(self, reason: str) -> None:
        self.reasons.append(f"ok: {reason}")


@dataclass(frozen=True)
class GateResult:
    challenger: ModelVersion
    champion: Champion  # metrics: its figures on the exam, when it has one
    champion_model: ModelVersion | None
    figures: dict[str, float]  # the challenger's figures on the exam
    paper: str  # the exam's data, seed and test fraction, said once
    verdict: Verdict


def _number(value: object) -> float | None:
    """A finite number, or None: a metric that is not one can only refuse."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _worse(value: float, bound: float, higher_is_better: bool) -> bool:
    return value < bound if higher_is_better else value > bound


def judge(challenger: dict[str, object], champion: Champion, gate: Gate) -> Verdict:
    verdict = Verdict(passed=True)
    ours: dict[str, float] = {}
    for metric, bound in sorted(gate.thresholds.items()):
        raw = challenger.get(metric)
        value = _number(raw)
        higher = gate.higher_is_better(metric)
        name = "floor" if higher else "ceiling"
        if raw is None:
            verdict.refuse(f"challenger has no {metric} metric to compare with its {name} {bound}")
        elif value is None:
            verdict.refuse(f"challenger {metric} is {raw!r}, not a finite number; failing closed")
        elif _worse(value, bound, higher):
            side = "below" if higher else "above"
            verdict.refuse(f"challenger {metric} {value:.4f} is {side} the {name} {bound:.4f}")
        else:
            ours[metric] = value
            verdict.note(f"challenger {metric} {value:.4f} meets the {name} {bound:.4f}")

    if champion.ref is None:
        verdict.note("no champion: prod serves no model yet, so thresholds alone decide")
        return verdict
    if champion.metrics is None:
        verdict.refuse(
            f"champion {champion.ref}: metrics cannot be read ({champion.problem}); failing closed"
        )
        return verdict
    for metric in sorted(gate.thresholds):
        raw = champion.metrics.get(metric)
        theirs = _number(raw)
        if raw is None:
            verdict.refuse(f"champion {champion.ref} has no {metric} metric; failing closed")
            continue
        if theirs is None:
            verdict.refuse(
                f"champion {champion.ref} {metric} is {raw!r}, not a finite number; failing closed"
            )
            continue
        if metric not in ours:
            continue  # already refused above
        higher = gate.higher_is_better(metric)
        allowed = theirs - gate.tolerance if higher else theirs + gate.tolerance
        if _worse(ours[metric], allowed, higher):
            verdict.refuse(
                f"challenger {metric} {ours[metric]:.4f} is worse than champion {champion.ref} "
                f"{theirs:.4f} by more than the tolerance {gate.tolerance}"
            )
        else:
            verdict.note(
                f"challenger {metric} {ours[metric]:.4f} vs champion {theirs:.4f} "
                f"(tolerance {gate.tolerance})"
            )
    return verdict
