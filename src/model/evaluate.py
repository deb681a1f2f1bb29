"""Evaluation, the pipeline's third step, and the gate's exam.

    python evaluate.py --prepared prepared/ --trained trained/ --output evaluated/ [--seed 42]

Scores the held-out rows (prep.py's test.csv) through the served artifact
(train.py's model.onnx) and writes to --output: evaluation.json (metrics overall
and per cohort, parameters, permutation importances and the lineage tags of the
run), the model card (card.json, card.md: card.py), the evaluation plot
(PLOT_FILE) and the importance chart (IMPORTANCE_FILE). With --released it also
writes the model as it is registered: train's model/ with the card beside
model.onnx, so the card travels with every copy of the version. Where a
tracking URI is set (Azure ML sets one inside every job) it also logs them, with
the model, to the active MLflow run, which inside an Azure ML job is the job;
the local backend logs the record into its job's run itself.

Extension points, the task's side of evaluation: `onnx_scores` (what the
served artifact gives each row), `metrics` (what the gate judges; each gated
metric's bound and direction live in environments/prod.yml under
`gate.thresholds`, inside the metric's `METRIC_RANGES`), `importance_score`
(the figure permutation importance watches drop when a feature's values are
shuffled) and `plot`. A regressor returns its predictions, reports errors such
as rmse (`at_most` in the gate, range [0, None]), watches r2 (or a negated
error) for importance and plots residuals.

The exam scores served artifacts (ONNX) on one held-out split, so the gate
compares champion and challenger on the same rows:

    python evaluate.py exam --data data/breast_cancer.csv --seed 42 --test-fraction 0.2 \
        --model challenger=a/model.onnx --model champion=b/model.onnx

prints {"rows": N, "metrics": {"challenger": {...}, "champion": {...}}, "cohorts":
{"challenger": {COHORT: {GROUP: {"rows": n, "support": s, "metrics": {...}}}}, ...}} as JSON
(exit 2 with {"error": SENTENCE} when a cohort declaration cannot split the rows).

Cohorts (features.COHORTS) are scored with fairlearn's MetricFrame: each gated metric per
group, the rows of each group, its `support` (the rows its metrics rest on) and the largest
gap between groups per metric. A metric undefined on a group (a group of one class has no
recall) is left out of that group; a group whose support is above zero and whose metric is
still NaN is refused: the cohort or the metric is broken, and no model is made of it.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen on build agents
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

PLOT_FILE = "roc_curve.png"
IMPORTANCE_FILE = "importance.png"
RECORD_FILE = "evaluation.json"
COHORT_PREFIX, GAP_PREFIX = "cohort.", "cohort_gap."  # registry tags of the cohort table
GROUP_COUNTS = ("rows", "support")  # beside a group's metrics; no metric may take these names
IMPORTANCE_REPEATS = 10  # shuffles per feature; the seed makes them the same every run
CHART_FEATURES = 15  # the chart shows the most important ones


# The values each of `metrics` can take, [low, high] (None: unbounded on that side). The gate
# refuses a bound in environments/*.yml outside its metric's range: such a bound either passes
# anything or refuses everything. A plain literal: mlops reads it without importing it.
METRIC_RANGES: dict = {
    "accuracy": [0.0, 1.0],
    "precision": [0.0, 1.0],
    "recall": [0.0, 1.0],
    "f1": [0.0, 1.0],
    "roc_auc": [0.0, 1.0],
}


def metrics(y_true: np.ndarray, y_prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Held-out metrics; higher is better for every one of them."""
    y_pred = (y_prob >= threshold).astype(int)
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 6),
        "precision": round(float(precision_score(y_true, y_pred, zero_division=0)), 6),
        "recall": round(float(recall_score(y_true, y_pred, zero_division=0)), 6),
        "f1": round(float(f1_score(y_true, y_pred, zero_division=0)), 6),
        "roc_auc": round(float(roc_auc_score(y_true, y_prob)), 6),
    }


def plot(y_true: np.ndarray, y_prob: np.ndarray, path: Path) -> Path:
    """The ROC curve on held-out rows."""
    fpr, tpr, _ = roc_curve(y_true, y_prob)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.plot(fpr, tpr, label=f"AUC = {roc_auc_score(y_true, y_prob):.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve on held-out rows")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def onnx_scores(path: Path, features: np.ndarray) -> np.ndarray:
    """What the served artifact gives each row, as metrics and plot read it: here the
    positive class's probability."""
    session = session_of(path)
    _, probabilities = session.run(None, {session.get_inputs()[0].name: features})
    return np.asarray(probabilities)[:, 1]


def importance_score(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Extension point: what a shuffled feature costs is measured in this figure, one of
    `metrics` where higher is better (a regressor: r2, or an error negated). Computed alone,
    as `metrics` computes it: permutation importance asks for it hundreds of times."""
    return round(float(roc_auc_score(y_true, y_score)), 6)


def support(y_true: np.ndarray) -> int:
    """Extension point: how many of a group's rows its metrics rest on, which the gate's
    cohort bounds call `min_rows`. For a classifier, the rows of its rarer class (recall needs
    positives, roc_auc both classes); a regressor returns len(y_true)."""
    from features import CLASSES

    if CLASSES is None:
        return len(y_true)
    return int(min((np.asarray(y_true) == value).sum() for value in CLASSES))


def cohort_table(
    rows: list[dict],
    y_true: np.ndarray,
    y_score: np.ndarray,
    names: list[str],
    only: list[str] | None = None,
) -> dict[str, dict]:
    """Each cohort's groups on these rows: {cohort: {"groups": {group: {"rows", "support",
    "metrics"}}, "gaps": {metric: largest difference between groups}}}, by MetricFrame.

    Raises features.CohortError for a declaration that cannot split the rows or a group whose
    metrics come out NaN though it has support."""
    from fairlearn.metrics import MetricFrame
    from features import CohortError, cohort_groups

    clash = sorted(set(names) & set(GROUP_COUNTS))
    if clash:
        raise CohortError(f"evaluate.py: metric {clash[0]!r} takes a name a group count uses")
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)

    def one(metric: str):
        def measured(truth, score) -> float:
            if support(truth) == 0:
                return math.nan  # undefined on this group; left out below
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # NaN is judged below, with the group named
                return metrics(np.asarray(truth), np.asarray(score))[metric]

        return measured

    counts = {"rows": lambda truth, _: len(truth), "support": lambda truth, _: support(truth)}
    table = {}
    for cohort, groups in cohort_groups(rows, only).items():
        frame = MetricFrame(
            metrics={**counts, **{name: one(name) for name in names}},
            y_true=y_true,
            y_pred=y_score,
            sensitive_features={cohort: groups},
        )
        by_group = frame.by_group
        found = {}
        for group in sorted(map(str, by_group.index)):
            line = by_group.loc[group]
            judged = int(line["support"]) > 0
            figures = {name: float(line[name]) for name in names} if judged else {}
            broken = [name for name, value in figures.items() if not math.isfinite(value)]
            if broken:
                raise CohortError(
                    f"src/model/features.py: COHORTS[{cohort!r}] group {group!r} has "
                    f"{broken[0]} NaN on {int(line['rows'])} rows; check the cohort and the metric"
                )
            found[group] = {
                "rows": int(line["rows"]),
                "support": int(line["support"]),
                "metrics": {name: round(value, 6) for name, value in figures.items()},
            }
        measured = [g for g in found.values() if g["metrics"]]
        gaps = {
            name: round(
                max(g["metrics"][name] for g in measured)
                - min(g["metrics"][name] for g in measured),
                6,
            )
            for name in names
            if measured
        }
        table[cohort] = {"groups": found, "gaps": gaps}
    return table


def cohort_tags(table: dict[str, dict]) -> dict[str, str]:
    """The cohort table as registry tags: cohort.<cohort>.<group>.<metric> (and .rows,
    .support) and cohort_gap.<cohort>.<metric>."""
    tags = {}
    for cohort, found in table.items():
        for group, line in found["groups"].items():
            for key in GROUP_COUNTS:
                tags[f"{COHORT_PREFIX}{cohort}.{group}.{key}"] = str(line[key])
            for metric, value in line["metrics"].items():
                tags[f"{COHORT_PREFIX}{cohort}.{group}.{metric}"] = str(value)
        for metric, gap in found["gaps"].items():
            tags[f"{GAP_PREFIX}{cohort}.{metric}"] = str(gap)
    return tags


def session_of(path: Path):
    """One onnxruntime session per artifact: permutation importance scores it hundreds of times."""
    stat = Path(path).stat()
    return _session(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _session(path: str, *_file_state):  # the file's state in the key: a rewrite opens anew
    import onnxruntime as ort

    # One thread, as the endpoint scores (score.py): on a few hundred rows a thread pool gains
    # nothing, and its spinning threads take the cores from whatever else the machine runs.
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class _Served:
    """The ONNX artifact in the shape permutation_importance takes: an estimator already fitted,
    scored through onnx_scores and importance_score like the metrics are."""

    def __init__(self, path: Path):
        self.path = path

    def fit(self, *_):  # permutation_importance checks that an estimator has one
        return self

    def score(self, features, y_true) -> float:
        return importance_score(y_true, onnx_scores(self.path, np.asarray(features, np.float32)))


def permutation_importances(path: Path, x_test: np.ndarray, y_test: np.ndarray, seed: int):
    """Mean and spread of the score lost when each feature is shuffled, on held-out rows.

    The served artifact is scored, not the scikit-learn object: the same bytes and task
    functions the metrics use, so a fork's onnx_scores and metric apply unchanged; and the
    seed fixes the shuffles, so the same model and rows give the same figures."""
    from sklearn.inspection import permutation_importance

    found = permutation_importance(
        _Served(path),
        x_test,
        y_test,
        scoring=lambda model, x, y: model.score(x, y),
        n_repeats=IMPORTANCE_REPEATS,
        random_state=seed,
        n_jobs=1,
    )
    return found.importances_mean, found.importances_std


def plot_importances(importances: dict[str, float], spread: dict[str, float], path: Path) -> Path:
    """The most important features as horizontal bars, the spread over shuffles as error bars."""
    top = list(importances)[:CHART_FEATURES][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1.2), dpi=100)
    ax.barh(top, [importances[f] for f in top], xerr=[spread[f] for f in top], color="#4c72b0")
    ax.set_xlabel("score lost when shuffled (permutation importance)")
    ax.set_title("Feature importance on held-out rows")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def evaluate(
    prepared: Path, trained: Path, output: Path, seed: int, released: Path | None = None
) -> dict:
    """The step: the held-out rows scored by the served artifact; the run's record and the
    model card written (and, with `released`, the model as registered: model/ and its card)."""
    import card as model_card
    import prep
    from features import CLASSES, COHORTS, FEATURES, TARGET, cohort_groups

    train, test, split = prep.read_split(prepared)
    onnx_path = trained / "model" / "model.onnx"
    train_summary = json.loads((trained / "train.json").read_text())
    x_test = test[list(FEATURES)].to_numpy(np.float32)
    y_test = test[TARGET].to_numpy()
    y_score = onnx_scores(onnx_path, x_test)
    scores = metrics(y_test, y_score)
    cohorts = cohort_table(test.to_dict("records"), y_test, y_score, list(scores))
    output.mkdir(parents=True, exist_ok=True)
    plot(y_test, y_score, output / PLOT_FILE)
    mean, std = permutation_importances(onnx_path, x_test, y_test, seed)
    order = sorted(range(len(FEATURES)), key=lambda i: (-mean[i], FEATURES[i]))
    importances = {FEATURES[i]: round(float(mean[i]), 6) for i in order}
    spread = {FEATURES[i]: round(float(std[i]), 6) for i in order}
    plot_importances(importances, spread, output / IMPORTANCE_FILE)
    params = {
        **train_summary["params"],
        "test_fraction": split["test_fraction"],
        "seed": split["seed"],
    }
    onnx_sha256 = prep.sha256_of(onnx_path)
    record = {
        "metrics": scores,
        "cohorts": cohorts,
        "params": params,
        "importances": importances,
        "importance_spread": spread,
        "importance_seed": seed,
        "charts": [PLOT_FILE, IMPORTANCE_FILE],
        # Also as tags: on Azure ML a job's tags are its run's tags, so the lifecycle reads
        # the lineage from the job without downloading outputs.
        "tags": {
            "data_sha256": split["data_sha256"],
            "onnx_sha256": onnx_sha256,
            "data_rows": str(split["rows"]),
            **{f"metric.{k}": str(v) for k, v in scores.items()},
            **{f"param.{k}": str(v) for k, v in params.items()},
            **{f"importance.{k}": str(v) for k, v in importances.items()},
            **cohort_tags(cohorts),
        },
    }
    (output / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    training_groups = cohort_groups(train.to_dict("records")) if COHORTS else {}
    profile = {
        "train_rows": len(train),
        "test_rows": len(test),
        "test_fraction": split["test_fraction"],
        "seed": split["seed"],
        "classes": {str(k): int(v) for k, v in train[TARGET].value_counts().sort_index().items()}
        if CLASSES is not None
        else {},
        "cohorts": {
            cohort: {g: groups.count(g) for g in sorted(set(groups))}
            for cohort, groups in training_groups.items()
        },
    }
    card = model_card.build(
        metrics=scores,
        cohorts=cohorts,
        importances=importances,
        data={"sha256": split["data_sha256"], "rows": split["rows"]},
        profile=profile,
        lineage={"data_sha256": split["data_sha256"], "artifact_sha256": onnx_sha256},
        target=TARGET,
    )
    for folder in (output, *((released / "model",) if released else ())):
        if folder != output:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(trained / "model", folder)
        (folder / model_card.CARD_JSON).write_text(json.dumps(card, indent=2) + "\n")
        (folder / model_card.CARD_MARKDOWN).write_text(model_card.render(card))
    return record


def log_run(record: dict, output: Path, model_dir: Path) -> str:
    """The record, its charts and the model, logged to the active MLflow run (MLFLOW_RUN_ID,
    set by Azure ML inside a job); its id."""
    import mlflow

    with mlflow.start_run() as run:
        mlflow.log_params(record["params"])
        mlflow.log_metrics(record["metrics"])
        mlflow.set_tags(record["tags"])
        for chart in record["charts"]:
            mlflow.log_artifact(str(output / chart))
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        return run.info.run_id


def exam(
    data: Path, seed: int, test_fraction: float, models: dict[str, Path]
) -> tuple[int, dict[str, dict[str, float]], dict[str, dict]]:
    """Each model's metrics, overall and per cohort, on the held-out split that `data`, `seed`
    and `test_fraction` make."""
    import prep
    from features import FEATURES, TARGET

    _, test = prep.split(prep.load(data), test_fraction, seed)
    x_test = test[list(FEATURES)].to_numpy(np.float32)
    y_test = test[TARGET].to_numpy()
    rows = test.to_dict("records")
    overall, cohorts = {}, {}
    for label, path in models.items():
        y_score = onnx_scores(path, x_test)
        overall[label] = metrics(y_test, y_score)
        table = cohort_table(rows, y_test, y_score, list(overall[label]))
        cohorts[label] = {cohort: found["groups"] for cohort, found in table.items()}
    return len(test), overall, cohorts


def exam_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="evaluate.py exam", description="Score ONNX models on one held-out split."
    )
    parser.add_argument("--data", required=True, type=Path, help="raw CSV file (see features.py)")
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--test-fraction", required=True, type=float)
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=PATH")
    args = parser.parse_args(argv)
    models = {}
    for item in args.model:
        label, _, path = item.partition("=")
        if not label or not path or not Path(path).is_file():
            parser.error(f"--model {item!r} must be LABEL=PATH to an existing model.onnx")
        models[label] = Path(path)
    import prep
    from features import CohortError

    try:
        rows, scores, cohorts = exam(args.data, args.seed, args.test_fraction, models)
    except CohortError as exc:  # the declaration's fault, not the models': said as such
        print(json.dumps({"error": str(exc)}))
        return 2
    except (prep.DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"rows": rows, "metrics": scores, "cohorts": cohorts}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["exam"]:
        return exam_main(argv[1:])
    parser = argparse.ArgumentParser(description="Evaluate a trained model on held-out rows.")
    parser.add_argument("--prepared", required=True, type=Path, help="prep.py's output folder")
    parser.add_argument("--trained", required=True, type=Path, help="train.py's output folder")
    parser.add_argument("--output", required=True, type=Path, help="folder for the record")
    parser.add_argument("--seed", type=int, default=42, help="fixes permutation importance")
    parser.add_argument(
        "--released", type=Path, help="folder for the model as registered: model/ and its card"
    )
    args = parser.parse_args(argv)
    import prep
    from features import CohortError

    if not (args.trained / "model" / "model.onnx").is_file():
        parser.error(f"--trained {args.trained} holds no model/model.onnx; is it train.py's?")
    try:
        record = evaluate(args.prepared, args.trained, args.output, args.seed, args.released)
    except (prep.DataError, CohortError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("MLFLOW_TRACKING_URI"):
        model_dir = args.released / "model" if args.released else args.trained / "model"
        log_run(record, args.output, model_dir)
    print(json.dumps(record["metrics"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
