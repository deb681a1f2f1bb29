"""Labelled feedback, the task's side: served answers scored against the true labels.

Extension point: `served_score`, what one collected answer row gives the metrics (here the
positive class's probability, as `evaluate.onnx_scores` gives it for the exam). The metrics
themselves are `evaluate.metrics`, the very function the gate reads.

mlops runs this file as a subprocess (src/model is a code snapshot, never imported by it):

    python labelled.py metrics < groups.json
        reads {"groups": {NAME: {"labels": [...], "answers": [{...}, ...]}}} and prints
        {"metrics": {NAME: {...}}, "unmeasured": {NAME: "why"}}
    python labelled.py cohorts < rows.json
        reads {"rows": [{FEATURE: value, ...}, ...], "labels": [...], "answers": [{...}, ...],
        "metrics": [NAME, ...]} and prints each cohort's groups (features.COHORTS, scored as
        the evaluate step scores them: evaluate.cohort_table) as
        {"cohorts": {COHORT: {GROUP: {"rows", "support", "metrics"}}}, "unmeasured": {COHORT:
        "why"}}; a cohort the requests cannot split (it reads a column clients do not send)
        is named in `unmeasured`
"""

from __future__ import annotations

import json
import math
import sys
import warnings

import numpy as np


def served_score(answer: dict) -> float:
    """What the served answer of one row gives the metrics (see score.predict)."""
    return float(answer["probabilities"])


def group_metrics(groups: dict[str, dict]) -> dict:
    """Each group's metrics; a group they cannot be computed for (an answer without a
    score), or a metric undefined on it (roc_auc of one class), is named in `unmeasured`."""
    from evaluate import metrics

    measured, unmeasured = {}, {}
    for name, group in groups.items():
        try:
            scores = np.array([served_score(a) for a in group["answers"]], dtype=float)
            labels = np.array(group["labels"])
            with warnings.catch_warnings():  # e.g. roc_auc of one class: undefined, said below
                warnings.simplefilter("ignore")
                found = metrics(labels, scores)
            measured[name] = {k: v for k, v in found.items() if math.isfinite(v)}
            if len(measured[name]) < len(found):
                undefined = sorted(set(found) - set(measured[name]))
                unmeasured[name] = f"{', '.join(undefined)} undefined on these labels"
        except (KeyError, TypeError, ValueError) as problem:
            unmeasured[name] = str(problem).splitlines()[0] if str(problem) else repr(problem)
    return {"metrics": measured, "unmeasured": unmeasured}


def cohort_metrics(given: dict) -> dict:
    """Each cohort's groups over the labelled rows."""
    from evaluate import cohort_table
    from features import COHORTS, CohortError

    labels = np.array(given["labels"])
    scores = np.array([served_score(a) for a in given["answers"]], dtype=float)
    names = list(given["metrics"])
    found, unmeasured = {}, {}
    for cohort in COHORTS:
        try:
            table = cohort_table(given["rows"], labels, scores, names, only=[cohort])
            found[cohort] = table[cohort]["groups"]
        except CohortError as problem:
            unmeasured[cohort] = str(problem)
    return {"cohorts": found, "unmeasured": unmeasured}


def main(argv: list[str]) -> int:
    if argv == ["metrics"]:
        print(json.dumps(group_metrics(json.load(sys.stdin)["groups"])))
        return 0
    if argv == ["cohorts"]:
        print(json.dumps(cohort_metrics(json.load(sys.stdin))))
        return 0
    print("usage: labelled.py metrics < groups.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
