"""Scoring entry script for the Azure ML inference server (`init()` / `run()`).

The same file runs under `azmlinfsrv` locally and inside Azure ML's inference
containers. It serves the ONNX model through onnxruntime (no pickle), and
answers a request that breaks the contract in features.py with a 400 and one
sentence.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import numpy as np
import onnxruntime as ort
from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse

sys.path.insert(0, str(Path(__file__).resolve().parent))  # features.py sits beside this file
import collect  # noqa: E402
from features import PayloadError, parse_batch  # noqa: E402

ONNX_FILE = "model.onnx"
# Set by the local endpoint (mlops.backends.local.router.TRAFFIC_HEADER): "mirror" on the copies
# it sends a new deployment, "smoke" or "probe" from the lifecycle's own requests; absent = live.
TRAFFIC_HEADER = "x-mlops-traffic"
_session: ort.InferenceSession | None = None
_collector = None


def find_model(model_dir: str | Path) -> Path:
    """Azure ML mounts the registered model under AZUREML_MODEL_DIR, one folder deep or more."""
    matches = sorted(Path(model_dir).rglob(ONNX_FILE))
    if not matches:
        raise FileNotFoundError(f"no {ONNX_FILE} under {model_dir}")
    return matches[0]


def load_session(path: str | Path) -> ort.InferenceSession:
    """One thread per request: small instances serve best with no intra-op thread pool."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def predict(session: ort.InferenceSession, rows: np.ndarray | list[list[float]]) -> dict:
    matrix = np.asarray(rows, dtype=np.float32)
    labels, probabilities = session.run(None, {session.get_inputs()[0].name: matrix})
    return {
        "predictions": labels.astype(int).tolist(),
        "probabilities": np.round(probabilities[:, 1].astype(float), 6).tolist(),
    }


def init() -> None:
    global _session, _collector
    _session = load_session(find_model(os.environ.get("AZUREML_MODEL_DIR", ".")))
    _collector = collect.from_environment()


def _json(body: dict | bytes, status: int, request_id: str = "") -> AMLResponse:
    headers = {"Content-Type": "application/json"}
    if request_id:
        headers["x-request-id"] = request_id
    return AMLResponse(body if isinstance(body, bytes) else json.dumps(body), status, headers)


@rawhttp
def run(request):
    if request.method != "POST":
        return _json({"error": "send the rows with POST /score"}, 405)
    request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
    try:
        batch = parse_batch(request.get_data(cache=False))
    except PayloadError as exc:
        return _json({"error": str(exc)}, 400, request_id)
    answer = predict(_session, batch.matrix)
    encoded = json.dumps(answer, separators=(",", ":")).encode()  # once: reply and record
    if _collector is not None:
        try:
            _collector.record(
                request_id,
                batch.matrix,
                answer,
                request.headers.get(TRAFFIC_HEADER) or "live",
                rows_json=batch.rows_json,
                outputs_json=encoded,
            )
        except Exception as exc:  # losing a record must not lose the answer (the collector
            # SDK raises bare Exceptions through its on_error, e.g. when its queue is full)
            print(f"data collection failed for {request_id}: {exc}", file=sys.stderr)
    return _json(encoded, 200, request_id)
