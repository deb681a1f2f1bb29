"""Training, the pipeline's second step: fit the estimator on the train split, package it.

    python train.py --prepared prepared/ --output trained/ [--n-estimators 100 ...]

Reads prep.py's output; writes to --output:
    model/        an MLflow model (scikit-learn flavour) with model.onnx beside MLmodel
    train.json    the step's parameters

With --data RAW instead of --prepared, the three steps run in this one process
(prep into OUTPUT/prepared, train, evaluate into OUTPUT) and the evaluation is
logged to MLflow: the quick way to try the model alone.
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
from features import FEATURES, TARGET, CohortError
from mlflow.models import infer_signature
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

ONNX_FILE = "model.onnx"
MODEL_DIR, SUMMARY_FILE = "model", "train.json"
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
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prepared", help="prep.py's output folder")
    source.add_argument("--data", help="raw CSV file: run prep, train and evaluate here")
    parser.add_argument("--output", required=True, help="folder for the model")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--min-samples-leaf", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--test-fraction", type=float, default=0.2, help="with --data only")
    args = parser.parse_args(argv)
    for name in ("n_estimators", "max_depth", "min_samples_leaf"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0.05 <= args.test_fraction <= 0.5:
        parser.error("--test-fraction must be between 0.05 and 0.5")
    return args


def fit(prepared: Path, output: Path, args: argparse.Namespace) -> dict:
    """The step: the fitted pipeline saved as an MLflow model with model.onnx; its parameters."""
    train, _, _ = prep.read_split(prepared)
    x_train, y_train = train[list(FEATURES)], train[TARGET].to_numpy()
    # Fitted on named columns, so the model refuses a frame whose columns are not FEATURES.
    pipeline = build_pipeline(args).fit(x_train.astype(np.float32), y_train)

    model_dir = output / MODEL_DIR
    if model_dir.exists():
        shutil.rmtree(model_dir)
    output.mkdir(parents=True, exist_ok=True)
    # The input contract travels with the model: named float64 columns, as the CSV reads, so
    # an MLflow client or a no-code deployment matches columns by name or refuses the frame.
    mlflow.sklearn.save_model(
        pipeline,
        model_dir,
        signature=infer_signature(x_train, pipeline.predict(x_train.astype(np.float32))),
        input_example=x_train.head(INPUT_EXAMPLE_ROWS),
        # skops refuses unreviewed types; the tree storage is ours, written just above
        skops_trusted_types=["sklearn.tree._tree.Tree"],
        # the pinned environment this model is trained and served in, instead of MLflow
        # inferring requirements by importing the model in a subprocess (seconds per run)
        conda_env=str(CONDA_FILE),
    )
    export_onnx(pipeline, x_train.to_numpy(np.float32), model_dir / ONNX_FILE)
    params = {
        "n_estimators": args.n_estimators,
        "max_depth": args.max_depth,
        "min_samples_leaf": args.min_samples_leaf,
        "seed": args.seed,
    }
    (output / SUMMARY_FILE).write_text(json.dumps({"params": params}, indent=2) + "\n")
    return params


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output)
    try:
        if args.prepared is not None:
            print(json.dumps(fit(Path(args.prepared), out, args)))
            return 0
        prepared = out / "prepared"
        prep.prepare(args.data, prepared, args.test_fraction, args.seed)
        fit(prepared, out, args)
        record = evaluate.evaluate(prepared, out, out, args.seed)
    except (prep.DataError, CohortError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_id = evaluate.log_run(record, out, out / MODEL_DIR)
    print(json.dumps({"run_id": run_id, **record["metrics"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
