"""Benchmark variant (b): the same contract and server, scoring with the scikit-learn model."""

import json
import os
import sys
from pathlib import Path

import mlflow
import numpy as np
from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import PayloadError, parse_request  # noqa: E402

_model = None


def init():
    global _model
    folder = next(Path(os.environ["AZUREML_MODEL_DIR"]).rglob("MLmodel")).parent
    _model = mlflow.sklearn.load_model(str(folder))


@rawhttp
def run(request):
    try:
        rows = parse_request(request.get_data(cache=False))
    except PayloadError as exc:
        return AMLResponse(
            json.dumps({"error": str(exc)}), 400, {"Content-Type": "application/json"}
        )
    probabilities = _model.predict_proba(np.asarray(rows, dtype=np.float32))[:, 1]
    body = {
        "predictions": (probabilities >= 0.5).astype(int).tolist(),
        "probabilities": np.round(probabilities, 6).tolist(),
    }
    return AMLResponse(json.dumps(body), 200, {"Content-Type": "application/json"})
