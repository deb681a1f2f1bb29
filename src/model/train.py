"""Train, evaluate and package the model: exactly what an Azure ML command job runs.

    python train.py --data data/breast_cancer.csv --output outputs/ [--n-estimators 100 ...]

Writes to --output:
    model/            an MLflow model (scikit-learn flavour) with model.onnx beside MLmodel
    roc_curve.png     the evaluation plot (evaluate.PLOT_FILE)
    training.json     run id, parameters, metrics and the data's sha256

MLflow tracking follows MLFLOW_TRACKING_URI: Azure ML sets it inside a job, the
local backend sets it to the environment's SQLite store.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import evaluate
import mlflow
import numpy as np
import prep
from features import FEATURES, TARGET
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

ONNX_FILE = "model.onnx"
INPUT_EXAMPLE_ROWS = 3
CONDA_FILE = Path(__file__).parent / "environment" / "conda.yml"  # the software environment
# Extension point with build_pipeline: skl2onnx's options for the estimator (a classifier's
# output as a plain probability tensor, no ZipMap; a regressor needs none).
ONNX_OPTIONS: dict = {"zipmap": False}


def build_pipeline(args: argparse.Namespace) -> Pipeline:
    """Extension point: the estimator and its preprocessing."""
    forest = RandomForestClassifier(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        min_samples_leaf=args.min_samples_leaf,
        random_state=args.seed,
        n_jobs=1,  # deterministic and polite on small agents
    )
    return Pipeline([("classifier", forest)])


def export_onnx(pipeline: Pipeline, sample: np.ndarray, path: Path) -> None:
    """The serving artifact: no pickle, outputs as score.py reads them."""
    onnx_model = to_onnx(
        pipeline,
        sample[:1].astype(np.float32),
        options=ONNX_OPTIONS,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onnx_model.producer_version = ""  # keep bytes stable across skl2onnx patch releases
    path.write_bytes(onnx_model.SerializeToString())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the model.")
    parser.add_argument("--data", required=True, help="raw CSV file (see features.py)")
    parser.add_argument("--output", required=True, help="folder for the model and reports")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--min-samples-leaf", type=int, default=1)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    for name in ("n_estimators", "max_depth", "min_samples_leaf"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0.05 <= args.test_fraction <= 0.5:
        parser.error("--test-fraction must be between 0.05 and 0.5")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        frame = prep.load(args.data)
    except prep.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train, test = prep.split(frame, args.test_fraction, args.seed)
    x_train, y_train = train[list(FEATURES)], train[TARGET].to_numpy()
    x_test, y_test = test[list(FEATURES)], test[TARGET].to_numpy()

    # Fitted on named columns, so the model refuses a frame whose columns are not FEATURES.
    pipeline = build_pipeline(args).fit(x_train.astype(np.float32), y_train)

    out = Path(args.output)
    model_dir = out / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The input contract travels with the model: named float64 columns, as the CSV reads, so
    # an MLflow client or a no-code deployment matches columns by name or refuses the frame.
    example = x_train.head(INPUT_EXAMPLE_ROWS)
    mlflow.sklearn.save_model(
        pipeline,
        model_dir,
        signature=infer_signature(x_train, pipeline.predict(x_train.astype(np.float32))),
        input_example=example,
        # skops refuses unreviewed types; the tree storage is ours, written just above
        skops_trusted_types=["sklearn.tree._tree.Tree"],
        # the pinned environment this model is trained and served in, instead of MLflow
        # inferring requirements by importing the model in a subprocess (seconds per run)
        conda_env=str(CONDA_FILE),
    )
    export_onnx(pipeline, x_train.to_numpy(np.float32), model_dir / ONNX_FILE)
    # Judged as served: the held-out rows scored by the ONNX artifact, as the exam scores it.
    y_score = evaluate.onnx_scores(model_dir / ONNX_FILE, x_test.to_numpy(np.float32))
    scores = evaluate.metrics(y_test, y_score)
    plot = evaluate.plot(y_test, y_score, out / evaluate.PLOT_FILE)

    params = {
        "n_estimators": args.n_estimators,
        "max_depth": args.max_depth,
        "min_samples_leaf": args.min_samples_leaf,
        "test_fraction": args.test_fraction,
        "seed": args.seed,
    }
    data_sha256 = prep.sha256_of(args.data)
    onnx_sha256 = prep.sha256_of(model_dir / ONNX_FILE)
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        mlflow.log_metrics(scores)
        # Also as tags: on Azure ML a job's tags are its run's tags, so the
        # lifecycle reads the lineage from the job without downloading outputs.
        mlflow.set_tags(
            {
                "data_sha256": data_sha256,
                "onnx_sha256": onnx_sha256,
                "data_rows": str(len(frame)),
                **{f"metric.{k}": str(v) for k, v in scores.items()},
                **{f"param.{k}": str(v) for k, v in params.items()},
            }
        )
        mlflow.log_artifact(str(plot))
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        run_id = run.info.run_id

    summary = {
        "run_id": run_id,
        "params": params,
        "metrics": scores,
        "data_sha256": data_sha256,
        "onnx_sha256": onnx_sha256,
    }
    (out / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"run_id": run_id, **scores}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
