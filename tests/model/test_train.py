"""The pipeline's steps write their outputs; the ONNX model agrees with scikit-learn and needs no
pickle; permutation importance is the same for the same seed."""

import json
import pickle
import subprocess
import sys

import evaluate
import mlflow
import numpy as np
import onnx
import prep
import pytest
import score
import train
from features import FEATURES, TARGET
from helpers import MODEL_DIR

DATA = MODEL_DIR / "data" / "breast_cancer.csv"
AGREEMENT_TOLERANCE = 1e-5  # float32 ONNX trees vs float64 averaging in scikit-learn


def test_outputs_hold_model_charts_and_record(trained_model):
    record = json.loads((trained_model / "evaluation.json").read_text())
    assert set(record["metrics"]) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert all(0 <= v <= 1 for v in record["metrics"].values())
    assert record["tags"]["data_sha256"] == prep.sha256_of(DATA)
    assert record["tags"]["onnx_sha256"] == prep.sha256_of(trained_model / "model" / "model.onnx")
    assert record["params"]["n_estimators"] == 30 and record["params"]["test_fraction"] == 0.2
    assert (trained_model / "model" / "MLmodel").is_file()
    for chart in (evaluate.PLOT_FILE, evaluate.IMPORTANCE_FILE):
        assert (trained_model / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    onnx.checker.check_model(onnx.load(str(trained_model / "model" / "model.onnx")))


def test_permutation_importance_is_the_same_for_the_same_seed(trained_model, tmp_path):
    record = json.loads((trained_model / "evaluation.json").read_text())
    importances = record["importances"]
    assert set(importances) == set(FEATURES)
    assert list(importances.values()) == sorted(importances.values(), reverse=True)
    assert max(importances.values()) > 0, "shuffling some feature costs the model"
    assert {f"importance.{k}": str(v) for k, v in importances.items()}.items() <= (
        record["tags"].items()
    )
    prepared = trained_model / "prepared"
    again = evaluate.evaluate(prepared, trained_model, tmp_path / "again", seed=42)
    assert again["importances"] == importances
    other = evaluate.evaluate(prepared, trained_model, tmp_path / "other", seed=7)
    assert other["importances"] != importances, "the seed decides the shuffles"
    assert other["metrics"] == record["metrics"], "and nothing else"


@pytest.mark.e2e  # runs prep.py and evaluate.py as processes
def test_each_step_is_a_command_line_with_its_inputs_and_outputs(tmp_path):
    def step(script: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(MODEL_DIR / script), *args],
            cwd=MODEL_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )

    prepared = step("prep.py", "--data", str(DATA), "--output", str(tmp_path / "p"), "--seed", "3")
    assert prepared.returncode == 0, prepared.stderr
    summary = json.loads((tmp_path / "p" / "prep.json").read_text())
    assert summary == {
        "data_sha256": prep.sha256_of(DATA),
        "rows": 569,
        "train_rows": 455,
        "test_rows": 114,
        "test_fraction": 0.2,
        "seed": 3,
    }
    refused = step("prep.py", "--data", str(tmp_path / "absent.csv"), "--output", str(tmp_path))
    assert refused.returncode == 2 and refused.stderr.strip().endswith("no such data file")
    lost = step(
        "evaluate.py",
        "--prepared",
        str(tmp_path / "p"),
        "--trained",
        str(tmp_path),
        "--output",
        str(tmp_path / "e"),
    )
    assert lost.returncode == 2 and "holds no model/model.onnx" in lost.stderr


def test_onnx_agrees_with_the_training_time_model_on_held_out_rows(trained_model):
    record = json.loads((trained_model / "evaluation.json").read_text())
    _, held_out = prep.split(
        prep.load(DATA), record["params"]["test_fraction"], record["params"]["seed"]
    )
    frame = held_out[list(FEATURES)].astype(np.float32)
    sklearn_model = mlflow.sklearn.load_model(str(trained_model / "model"))
    expected = sklearn_model.predict_proba(frame)[:, 1]
    served = score.predict(
        score.load_session(trained_model / "model" / "model.onnx"), frame.values.tolist()
    )
    assert np.max(np.abs(np.array(served["probabilities"]) - expected)) <= AGREEMENT_TOLERANCE
    assert served["predictions"] == sklearn_model.predict(frame).tolist()
    assert len(served["predictions"]) == len(held_out) == int(0.2 * 569) + 1
    assert set(held_out[TARGET]) == {0, 1}


def test_the_served_artifact_loads_without_pickle(trained_model, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used to load the served model")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(trained_model))
    score.init()
    answer = score.predict(score._session, [[1.0] * len(FEATURES)])
    assert answer["predictions"][0] in (0, 1)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--n-estimators", "0", "--n-estimators must be at least 1"),
        ("--test-fraction", "0.9", "between 0.05 and 0.5"),
    ],
)
def test_bad_hyperparameters_are_refused(flag, value, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        train.main(["--data", str(DATA), "--output", str(tmp_path), flag, value])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_the_mlflow_model_carries_the_named_input_contract(trained_model):
    """Any MLflow client scores the CSV as read like the endpoint does, or refuses the frame."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(str(trained_model / "model"))
    assert model.metadata.get_input_schema().input_names() == list(FEATURES)
    assert (trained_model / "model" / "input_example.json").is_file()

    frame = pd.read_csv(DATA)[list(FEATURES)]  # float64, named columns: as a client reads it
    served = score.predict(score.load_session(trained_model / "model" / "model.onnx"), frame.values)
    labels = model.predict(frame).tolist()
    assert labels == served["predictions"]
    assert sum(labels) == sum(served["predictions"]) > 150  # most of 212 malignant rows

    reversed_order = frame[list(reversed(FEATURES))]
    assert model.predict(reversed_order).tolist() == labels, "columns are matched by name"
    renamed = frame.rename(columns={FEATURES[0]: "radius"})
    with pytest.raises(MlflowException, match=FEATURES[0]):
        model.predict(renamed)
    with pytest.raises(MlflowException):
        model.predict(frame.to_numpy()[:, ::-1])  # an unnamed matrix cannot say its order


def test_the_run_records_the_lineage_the_seam_reads(trained_model):
    """Both backends build a job from its MLflow run's tags (on Azure ML a job's tags are its
    run's tags), so the names the evaluate step logs must be the seam's constants."""
    from mlops.backends.base import METRIC_PREFIX, PARAM_PREFIX, TAG_ARTIFACT, TAG_DATA
    from mlops.lineage import job_from_run_tags

    client = mlflow.MlflowClient(f"sqlite:///{trained_model.parent / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("Default").experiment_id])
    tags = run.data.tags
    assert tags[TAG_DATA] == prep.sha256_of(DATA)
    assert tags[TAG_ARTIFACT] == prep.sha256_of(trained_model / "model" / "model.onnx")
    assert {k for k in tags if k.startswith(METRIC_PREFIX)} == {
        METRIC_PREFIX + k for k in run.data.metrics
    }
    assert {k for k in tags if k.startswith(PARAM_PREFIX)} == {
        PARAM_PREFIX + k for k in run.data.params
    }
    job = job_from_run_tags("job-1", run.info.run_id, tags)
    assert job.metrics == run.data.metrics
    assert job.params == run.data.params  # MLflow keeps parameters as strings, as tags are
    assert (job.data_sha256, job.artifact_sha256) == (tags[TAG_DATA], tags[TAG_ARTIFACT])
    assert set(job.importances) == set(FEATURES)
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
        "roc_curve.png",
        "importance.png",
        "model",
    }
