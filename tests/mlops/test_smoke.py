"""The smoke test judges answers by the model's own response schema, whatever the task."""

import json

import pytest

from mlops.backends.base import Response
from mlops.errors import MlopsError
from mlops.smoke import OPENAPI, Contract, load_contract, smoke_test

REGRESSION = {
    "type": "object",
    "required": ["predictions"],
    "additionalProperties": False,
    "properties": {"predictions": {"type": "array", "items": {"type": "number"}}},
}


def endpoint(answer):
    """An endpoint that gives answer to the sample and refuses an empty batch with a 400."""

    def invoke(body: bytes) -> Response:
        if json.loads(body)["data"]:
            return Response(200, json.dumps(answer).encode())
        return Response(400, b'{"error": "empty"}')

    return invoke


@pytest.fixture
def classifier(repo):
    return load_contract(repo)


def rows_of(contract):
    return len(json.loads(contract.sample)["data"])


def test_the_shipped_classifier_answer_passes(classifier):
    n = rows_of(classifier)
    result = smoke_test(endpoint({"predictions": [1] * n, "probabilities": [0.9] * n}), classifier)
    assert result.ok, result.detail


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (
            {"predictions": [2, 0, 1], "probabilities": [0.1, 0.2, 0.3]},
            "at predictions/0: 2 is not one of [0, 1]",
        ),
        (
            {"predictions": [1, 0, 1], "probabilities": [0.1, 1.5, 0.3]},
            "at probabilities/1: 1.5 is greater than the maximum of 1",
        ),
        ({"predictions": [1, 0, 1]}, "at the top: 'probabilities' is a required property"),
        (
            {"predictions": [1, 0], "probabilities": [0.1, 0.2]},
            "sample request sent 3 rows but got 2 predictions",
        ),
        ([1, 0, 1], "at the top: [1, 0, 1] is not of type 'object'"),
    ],
)
def test_an_answer_off_the_classifier_schema_fails(classifier, answer, problem):
    assert rows_of(classifier) == 3
    result = smoke_test(endpoint(answer), classifier)
    assert not result.ok
    assert problem in result.detail


def test_a_regressor_is_judged_by_its_own_schema(classifier):
    regressor = Contract(classifier.sample, REGRESSION)
    assert smoke_test(endpoint({"predictions": [14.2, 9.8, 20.1]}), regressor).ok
    labelled = smoke_test(
        endpoint({"predictions": [1, 0, 1], "probabilities": [0.1] * 3}), regressor
    )
    assert not labelled.ok
    assert "'probabilities' was unexpected" in labelled.detail


def test_an_endpoint_that_accepts_an_empty_batch_fails(classifier):
    def lenient(body: bytes) -> Response:
        return Response(
            200, json.dumps({"predictions": [1] * 3, "probabilities": [0.5] * 3}).encode()
        )

    result = smoke_test(lenient, classifier)
    assert not result.ok
    assert "an empty batch got HTTP 200" in result.detail


@pytest.mark.parametrize("damage", ["missing", "no response schema"])
def test_a_contract_without_a_response_schema_is_named(repo, damage):
    document = repo / OPENAPI
    if damage == "missing":
        document.unlink()
    else:
        openapi = json.loads(document.read_text())
        del openapi["paths"]["/score"]["post"]["responses"]["200"]["content"]
        document.write_text(json.dumps(openapi))
    with pytest.raises(
        MlopsError, match=r"^src/model/swagger3.json .*python src/model/features.py"
    ):
        load_contract(repo)
