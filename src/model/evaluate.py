"""Evaluation, the pipeline's third step, and the gate's exam.

    python evaluate.py --prepared prepared/ --trained trained/ --output evaluated/ [--seed 42]

Scores the held-out rows (prep.py's test.csv) through the served artifact
(train.py's model.onnx) and writes to --output: evaluation.json (metrics,
parameters, permutation importances and the lineage tags of the run), the
evaluation plot (PLOT_FILE) and the importance chart (IMPORTANCE_FILE). Where a
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

prints {"rows": N, "metrics": {"challenger": {...}, "champion": {...}}} as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
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


def evaluate(prepared: Path, trained: Path, output: Path, seed: int) -> dict:
    """The step: the held-out rows scored by the served artifact; the run's record written."""
    import prep
    from features import FEATURES, TARGET

    _, test, split = prep.read_split(prepared)
    onnx_path = trained / "model" / "model.onnx"
    train_summary = json.loads((trained / "train.json").read_text())
    x_test = test[list(FEATURES)].to_numpy(np.float32)
    y_test = test[TARGET].to_numpy()
    y_score = onnx_scores(onnx_path, x_test)
    scores = metrics(y_test, y_score)
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
    record = {
        "metrics": scores,
        "params": params,
        "importances": importances,
        "importance_spread": spread,
        "importance_seed": seed,
        "charts": [PLOT_FILE, IMPORTANCE_FILE],
        # Also as tags: on Azure ML a job's tags are its run's tags, so the lifecycle reads
        # the lineage from the job without downloading outputs.
        "tags": {
            "data_sha256": split["data_sha256"],
            "onnx_sha256": prep.sha256_of(onnx_path),
            "data_rows": str(split["rows"]),
            **{f"metric.{k}": str(v) for k, v in scores.items()},
            **{f"param.{k}": str(v) for k, v in params.items()},
            **{f"importance.{k}": str(v) for k, v in importances.items()},
        },
    }
    (output / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
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
) -> tuple[int, dict[str, dict[str, float]]]:
    """Each model's metrics on the held-out split that `data`, `seed` and `test_fraction` make."""
    import prep
    from features import FEATURES, TARGET

    _, test = prep.split(prep.load(data), test_fraction, seed)
    x_test = test[list(FEATURES)].to_numpy(np.float32)
    y_test = test[TARGET].to_numpy()
    return len(test), {
        label: metrics(y_test, onnx_scores(path, x_test)) for label, path in models.items()
    }


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

    try:
        rows, scores = exam(args.data, args.seed, args.test_fraction, models)
    except (prep.DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"rows": rows, "metrics": scores}))
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
    args = parser.parse_args(argv)
    import prep

    if not (args.trained / "model" / "model.onnx").is_file():
        parser.error(f"--trained {args.trained} holds no model/model.onnx; is it train.py's?")
    try:
        record = evaluate(args.prepared, args.trained, args.output, args.seed)
    except prep.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("MLFLOW_TRACKING_URI"):
        log_run(record, args.output, args.trained / "model")
    print(json.dumps(record["metrics"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
