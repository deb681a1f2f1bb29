"""The champion/challenger gate, fail closed.

A challenger passes when every gated metric reaches its absolute floor and is
not worse than the prod champion's by more than the tolerance. A champion that
is declared but whose metrics cannot be read refuses the challenger: an
unreadable champion is never a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops.config import Gate


@dataclass(frozen=True)
class Champion:
    """What prod serves: nothing yet (ref None), readable metrics, or a problem reading them."""

    ref: str | None
    metrics: dict[str, float] | None = None
    problem: str | None = None


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)

    def refuse(self, reason: str) -> None:
        self.passed = False
        self.reasons.append(f"REFUSED: {reason}")

    def note(self, reason: str) -> None:
        self.reasons.append(f"ok: {reason}")


def judge(challenger: dict[str, float], champion: Champion, gate: Gate) -> Verdict:
    verdict = Verdict(passed=True)
    for metric, floor in sorted(gate.thresholds.items()):
        value = challenger.get(metric)
        if value is None:
            verdict.refuse(f"challenger has no {metric} metric to compare with its floor {floor}")
        elif value < floor:
            verdict.refuse(f"challenger {metric} {value:.4f} is below the floor {floor:.4f}")
        else:
            verdict.note(f"challenger {metric} {value:.4f} reaches the floor {floor:.4f}")

    if champion.ref is None:
        verdict.note("no champion: prod serves no model yet, so thresholds alone decide")
        return verdict
    if champion.metrics is None:
        verdict.refuse(
            f"champion {champion.ref}: metrics cannot be read ({champion.problem}); failing closed"
        )
        return verdict
    for metric in sorted(gate.thresholds):
        if metric not in challenger:
            continue
        if metric not in champion.metrics:
            verdict.refuse(f"champion {champion.ref} has no {metric} metric; failing closed")
            continue
        ours, theirs = challenger[metric], champion.metrics[metric]
        if ours < theirs - gate.tolerance:
            verdict.refuse(
                f"challenger {metric} {ours:.4f} is worse than champion {champion.ref} "
                f"{theirs:.4f} by more than the tolerance {gate.tolerance}"
            )
        else:
            verdict.note(
                f"challenger {metric} {ours:.4f} vs champion {theirs:.4f} "
                f"(tolerance {gate.tolerance})"
            )
    return verdict
