"""The same exam for champion and challenger: both served artifacts scored on one held-out split.

Metric tags come from each model's own evaluate step, each on its own held-out
rows; comparing them compares two different exams. The exam re-creates the
challenger's split (its data, by sha256, and its seed and test fraction) and
scores both ONNX files on it with `src/model/evaluate.py`, the data scientist's
metrics, run as a subprocess since `src/model` is a code snapshot, not a package.
The challenger is judged by the figures its evaluate step recorded, which the exam
must reproduce on those same rows; the champion by its figures on them. The exam also
scores each cohort's groups (src/model/features.py COHORTS), the figures the gate's cohort
bounds check the challenger's recorded cohort tags against.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mlops import lineage
from mlops.backends.base import PARAM_PREFIX, TAG_DATA, ModelVersion
from mlops.errors import GateRefused, MlopsError
from mlops.paths import MODEL_CODE

EVALUATE = MODEL_CODE / "evaluate.py"
AGREEMENT = 1e-6  # the evaluate step rounds its metrics to 6 decimals, as the exam does
TIMEOUT_S = 600  # scoring a held-out split takes seconds; a hang must not hold the release


@dataclass(frozen=True)
class ExamPaper:
    """The held-out split the exam uses, as the challenger's training made it."""

    data: Path
    data_sha256: str  # checked equal to the challenger's data_sha256 tag when the paper was made
    seed: int
    test_fraction: float

    def describe(self, root: Path) -> str:
        shown = self.data.relative_to(root) if self.data.is_relative_to(root) else self.data
        return (
            f"{shown.as_posix()} (sha256 {self.data_sha256[:12]}…), "
            f"seed {self.seed}, test fraction {self.test_fraction}"
        )


def paper_for(challenger: ModelVersion, data: Path, data_file_label: str) -> ExamPaper:
    """The challenger's split, refused in one sentence when it cannot be re-created exactly."""
    wanted = challenger.tags.get(TAG_DATA)
    if not data.is_file() or lineage.sha256_of(data) != wanted:
        raise GateRefused(
            f"{challenger.ref} was trained on data with sha256 {str(wanted)[:12]}…, which is not "
            f"{data_file_label}; the gate cannot set the same exam for both models, failing closed"
        )
    try:
        seed = int(challenger.tags[f"{PARAM_PREFIX}seed"])
        fraction = float(challenger.tags[f"{PARAM_PREFIX}test_fraction"])
    except (KeyError, ValueError):
        raise GateRefused(
            f"{challenger.ref} carries no usable param.seed and param.test_fraction tags, so its "
            "held-out split cannot be re-created; failing closed"
        ) from None
    return ExamPaper(data, wanted, seed, fraction)


@dataclass(frozen=True)
class Scores:
    """The exam's figures by label (challenger, champion): overall, and per cohort and group
    ({cohort: {group: {"rows", "support", "metrics"}}})."""

    metrics: dict[str, dict[str, float]]
    cohorts: dict[str, dict[str, dict]] = field(default_factory=dict)


def sit(root: Path, paper: ExamPaper, artifacts: dict[str, Path]) -> Scores:
    """Each artifact's metrics on the paper's held-out rows; any failure refuses the gate,
    except a cohort declaration that cannot split them: that is the code's fault, said as
    such (exit 2)."""
    command = [
        sys.executable,
        str(root / EVALUATE),
        "exam",
        f"--data={paper.data}",
        f"--seed={paper.seed}",
        f"--test-fraction={paper.test_fraction}",
        *(f"--model={label}={path}" for label, path in artifacts.items()),
    ]
    try:
        done = subprocess.run(
            command, cwd=root / EVALUATE.parent, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise GateRefused(f"the exam took over {TIMEOUT_S}s; failing closed") from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = None
    if done.returncode == 2 and isinstance(answer, dict) and isinstance(answer.get("error"), str):
        raise MlopsError(answer["error"])
    scores = answer.get("metrics") if done.returncode == 0 and isinstance(answer, dict) else None
    cohorts = answer.get("cohorts") if isinstance(scores, dict) else None
    if not isinstance(scores, dict) or set(scores) != set(artifacts) or cohorts is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise GateRefused(f"the exam of {', '.join(artifacts)} failed ({last}); failing closed")
    return Scores(scores, cohorts)


def recorded_figures(challenger: ModelVersion, examined: dict[str, float]) -> dict[str, float]:
    """The metrics the challenger's evaluate step recorded, refused unless the exam, scoring
    the same artifact on the same rows, finds each of them again: the gate judges the
    evaluate step's output, and the champion is compared on the rows it was computed on."""
    recorded = challenger.metrics
    for metric, value in sorted(examined.items()):
        try:
            agrees = abs(float(recorded[metric]) - value) <= AGREEMENT  # False for a NaN
        except (KeyError, TypeError, ValueError):
            agrees = False
        if not agrees:
            raise GateRefused(
                f"{challenger.ref} records {metric} {recorded.get(metric)!r} from its evaluate "
                f"step, but its artifact scores {value} on the same held-out rows; failing closed"
            )
    return {metric: float(recorded[metric]) for metric in examined}
