"""The scoring script follows the inference server contract: JSON in, JSON or a 400 out."""

import json

import pytest
import score
from helpers import MODEL_DIR
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

SAMPLE = (MODEL_DIR / "sample-request.json").read_bytes()


@pytest.fixture(scope="module", autouse=True)
def loaded(trained_model):
    """score.init() as the inference server calls it, on the session's trained model."""
    patch = pytest.MonkeyPatch()
    patch.setenv("AZUREML_MODEL_DIR", str(trained_model))
    try:
        score.init()
    finally:
        patch.undo()


def call(data: bytes, method: str = "POST"):
    request = Request(
        EnvironBuilder(method=method, data=data, content_type="application/json").get_environ()
    )
    response = score.run(request)
    return response.status_code, json.loads(response.get_data())


def test_sample_request_is_scored():
    status, answer = call(SAMPLE)
    rows = len(json.loads(SAMPLE)["data"])
    assert status == 200
    assert len(answer["predictions"]) == len(answer["probabilities"]) == rows


def test_a_bad_request_is_a_400_with_one_sentence():
    status, answer = call(b'{"data": [{"mean_radius": 1}]}')
    assert status == 400
    assert answer["error"].startswith("row 0 is missing feature(s): mean_texture")


def test_get_is_not_scoring():
    status, answer = call(b"", method="GET")
    assert status == 405
    assert "POST" in answer["error"]


def test_missing_model_is_reported_with_its_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model.onnx under"):
        score.find_model(tmp_path)
