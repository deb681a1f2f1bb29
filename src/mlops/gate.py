"""The champion/challenger gate, fail closed.

A challenger passes when every gated metric reaches its bound (a floor for a
metric where higher is better, a ceiling where lower is better, as
environments/prod.yml declares each) and is not worse than the prod champion's
by more than the tolerance, and, for each cohort prod.yml bounds, every group
large enough to judge reaches its bounds and no gap between those groups exceeds
its ceiling (judged on the cohort figures the challenger recorded, which the exam
must find again on the same rows). A group too small is reported, never passed in
silence; a missing cohort record refuses. A champion that
is declared but whose metrics cannot be read refuses the challenger: an
unreadable champion is never a silent pass, and neither is a metric that is
missing, not a number, NaN or infinite, on either side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mlops.backends.base import COHORT_PREFIX, ModelVersion
from mlops.config import CohortBounds, Gate
from mlops.errors import MlopsError

AGREEMENT = 1e-6  # the evaluate step rounds its figures to 6 decimals, as the exam does


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

    def not_judged(self, reason: str) -> None:
        """Said, so a reviewer sees what the gate could not judge; it neither passes nor refuses."""
        self.reasons.append(f"NOT JUDGED: {reason}")


@dataclass(frozen=True)
class GateResult:
    challenger: ModelVersion
    champion: Champion  # metrics: its figures on the exam, when it has one
    champion_model: ModelVersion | None
    figures: dict[str, float]  # the challenger's figures on the exam
    paper: str  # the exam's data, seed and test fraction, said once
    verdict: Verdict
    # the challenger's groups on the exam: {cohort: {group: {"rows", "support", "metrics"}}}
    cohorts: dict[str, dict[str, dict]] = field(default_factory=dict)


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


def check_cohort_records(ref: str, tags: dict[str, str], gate: Gate, declared: set[str]) -> None:
    """Bad input ends here, in one sentence (exit 2), before anything is judged: a cohort
    prod.yml bounds that src/model/features.py does not declare, or a recorded group figure
    that is not a number (the evaluate step refuses NaN, so such a tag is broken)."""
    for cohort in sorted(gate.cohorts):
        if cohort not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise MlopsError(
                f"environments/prod.yml: field `gate.cohorts.{cohort}` names no cohort of "
                f"src/model/features.py COHORTS (declared: {known})"
            )
        prefix = f"{COHORT_PREFIX}{cohort}."
        for key, raw in sorted(tags.items()):
            if key.startswith(prefix) and _number(raw) is None:
                raise MlopsError(
                    f"{ref}: tag `{key}` is {raw!r}, not a finite number; the cohort "
                    f"src/model/features.py COHORTS[{cohort!r}] gives a group no figure to judge"
                )


def judge_cohorts(
    verdict: Verdict, tags: dict[str, str], examined: dict[str, dict[str, dict]], gate: Gate
) -> None:
    """Each bounded cohort's groups, on the figures the challenger recorded (tags) and the
    exam found again (examined: the exam's groups of each cohort)."""
    for cohort, rules in sorted(gate.cohorts.items()):
        judged: dict[str, dict[str, float]] = {}  # metric -> group -> value
        for group, line in sorted(examined.get(cohort, {}).items()):
            where = f"{cohort}={group}"
            if int(line.get("support", 0)) < rules.min_rows:
                verdict.not_judged(
                    f"{where} has {line.get('support', 0)} row(s) of support among "
                    f"{line.get('rows', 0)}, fewer than min_rows {rules.min_rows}: "
                    "too small to judge"
                )
                continue
            for metric in rules.metrics:
                value = _recorded(verdict, tags, cohort, group, metric, line)
                if value is None:
                    continue
                judged.setdefault(metric, {})[group] = value
                if metric in rules.bounds:
                    _bound(verdict, where, metric, value, rules.bounds[metric], gate)
        if not judged:
            verdict.refuse(
                f"no group of cohort {cohort} has min_rows {rules.min_rows} of support, so its "
                "bounds judge nothing; failing closed"
            )
            continue
        _gaps(verdict, cohort, rules, judged)


def _recorded(
    verdict: Verdict, tags: dict[str, str], cohort: str, group: str, metric: str, line: dict
) -> float | None:
    """The group's figure as recorded, refused when missing or when the exam disagrees."""
    tag = f"{COHORT_PREFIX}{cohort}.{group}.{metric}"
    if tag not in tags:
        verdict.refuse(f"challenger has no cohort record {tag}; failing closed")
        return None
    value = float(tags[tag])  # a number: check_cohort_records ran first
    found = line.get("metrics", {}).get(metric)
    if found is None or abs(value - float(found)) > AGREEMENT:
        verdict.refuse(
            f"challenger records {tag} {value}, but its artifact scores {found} on the same "
            "held-out rows; failing closed"
        )
        return None
    return value


def _bound(verdict: Verdict, where: str, metric: str, value: float, bound: float, gate: Gate):
    higher = gate.higher_is_better(metric)
    name = "floor" if higher else "ceiling"
    shown = f"challenger {metric} on {where} {value:.4f}"
    if _worse(value, bound, higher):
        side = "below" if higher else "above"
        verdict.refuse(f"{shown} is {side} the {name} {bound:.4f}")
    else:
        verdict.note(f"{shown} meets the {name} {bound:.4f}")


def _gaps(verdict: Verdict, cohort: str, rules: CohortBounds, judged: dict) -> None:
    for metric, ceiling in sorted(rules.max_gap.items()):
        values = judged.get(metric, {})
        if len(values) < 2:
            verdict.not_judged(
                f"{cohort} has {len(values)} group(s) large enough to judge {metric}: "
                "no gap to measure"
            )
            continue
        best, worst = max(values, key=values.get), min(values, key=values.get)
        gap = values[best] - values[worst]
        shown = (
            f"{cohort} {metric} gap {gap:.4f} "
            f"({best} {values[best]:.4f}, {worst} {values[worst]:.4f})"
        )
        if gap > ceiling + AGREEMENT:
            verdict.refuse(f"challenger {shown} is above the ceiling {ceiling:.4f}")
        else:
            verdict.note(f"challenger {shown} is within the ceiling {ceiling:.4f}")
