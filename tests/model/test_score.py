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


def test_a_key_sent_twice_is_a_400_and_nothing_is_recorded(tmp_path, monkeypatch):
    """With "data" twice, the parser scored the last array and the collector recorded the first:
    the monitor and feedback saw rows the model never scored. Now the body is refused."""
    import collect

    monkeypatch.setattr(score, "_collector", collect.JsonLinesCollector(tmp_path, "d", "m:1"))
    rows = json.loads(SAMPLE)["data"]
    first, last = json.dumps(rows[:1]), json.dumps(rows[1:2])
    status, answer = call(f'{{"data": {first}, "data": {last}}}'.encode())
    assert (status, answer) == (
        400,
        {"error": "request body has the key 'data' twice in one object; send it once"},
    )
    feature = next(iter(rows[0]))
    row = json.dumps(rows[0])[:-1] + f', "{feature}": 0}}'  # one feature twice, inside a row
    status, answer = call(f'{{"data": [{row}]}}'.encode())
    assert status == 400
    assert (
        answer["error"] == f"request body has the key {feature!r} twice in one object; send it once"
    )
    assert not list(tmp_path.glob("*.jsonl"))  # nothing recorded for either

    status, answer = call(json.dumps({"data": rows}).encode())
    assert status == 200
    (recorded,) = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).open()]
    assert recorded["inputs"] == rows  # what was scored is what was recorded
