"""Evaluation: the metrics the gate reads, the plot logged with each run, and the exam.

Extension points, the task's side of evaluation: `onnx_scores` (what the
served artifact gives each row), `metrics` (what the gate judges; each gated
metric's bound and direction live in environments/prod.yml under
`gate.thresholds`) and `plot`. A regressor returns its predictions, reports
errors such as rmse (`at_most` in the gate) and plots residuals.

The exam scores served artifacts (ONNX) on one held-out split, so the gate
compares champion and challenger on the same rows:

    python evaluate.py --data data/breast_cancer.csv --seed 42 --test-fraction 0.2 \
        --model challenger=a/model.onnx --model champion=b/model.onnx

prints {"rows": N, "metrics": {"challenger": {...}, "champion": {...}}} as JSON.
"""

from __future__ import annotations

import argparse
import json
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
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, probabilities = session.run(None, {session.get_inputs()[0].name: features})
    return np.asarray(probabilities)[:, 1]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score ONNX models on one held-out split.")
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


if __name__ == "__main__":
    sys.exit(main())
