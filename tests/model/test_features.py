"""The input contract refuses each class of bad request with one sentence."""

import json
import math

import pytest
from features import FEATURES, MAX_ROWS, PayloadError, contract_files, openapi, parse_request
from helpers import MODEL_DIR

ROW = {name: 1.5 for name in FEATURES}


def body(rows) -> bytes:
    return json.dumps({"data": rows}).encode()


def with_value(literal: str) -> bytes:
    """A one-row request whose mean_area is the given JSON literal, written as is."""
    return body([{**ROW, "mean_area": "HERE"}]).replace(b'"HERE"', literal.encode())


def test_the_largest_float32_is_still_a_number():
    assert parse_request(with_value("3.4e38"))[0][FEATURES.index("mean_area")] == 3.4e38


def test_a_valid_request_becomes_rows_in_feature_order():
    row = {name: float(i) for i, name in enumerate(FEATURES)}
    assert parse_request(body([row, ROW])) == [[float(i) for i in range(len(FEATURES))], [1.5] * 30]


def test_integers_are_numbers_too():
    assert parse_request(body([{**ROW, "mean_radius": 14}]))[0][0] == 14


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", 'exactly one key, "data"'),
        (b'{"data": [], "extra": 1}', 'exactly one key, "data"'),
        (b'{"data": {"a": 1}}', '"data" must be a list of rows'),
        (b'{"data": []}', '"data" is empty'),
        (b'{"data": [7]}', "row 0 must be an object"),
        (
            body([{k: v for k, v in ROW.items() if k != "mean_area"}]),
            "row 0 is missing feature(s): mean_area",
        ),
        (body([ROW, {**ROW, "colour": 1}]), "row 1 has unknown feature(s): colour"),
        (
            body([{**ROW, "mean_area": "big"}]),
            "feature 'mean_area': expected a number, got a string",
        ),
        (body([{**ROW, "mean_area": True}]), "expected a number, got a boolean"),
        (body([{**ROW, "mean_area": None}]), "expected a number, got null"),
        (body([ROW]).replace(b"1.5", b"NaN", 1), "NaN, which is not a finite number"),
        (body([ROW]).replace(b"1.5", b"Infinity", 1), "Infinity, which is not a finite number"),
        (body([ROW]).replace(b"1.5", b"1e999", 1), "inf is not a finite number"),
        (body([ROW] * (MAX_ROWS + 1)), f"at most {MAX_ROWS} are accepted"),
        (with_value("1" * 401), "an integer of 401 digits"),
        (b'{"data": ' + b"[" * 100_000, "nested too deeply"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (with_value("1e300"), "outside float32's finite range"),
        (with_value("-1e300"), "outside float32's finite range"),
        (with_value("3.5e38"), "outside float32's finite range"),
        (with_value("-" + "9" * 39), "outside float32's finite range"),
        ("\ud800".encode("utf-8", "surrogatepass"), "not valid JSON"),
    ],
    ids=[
        "non-json",
        "not-utf8",
        "top-level-list",
        "extra-top-level-key",
        "data-not-list",
        "empty-batch",
        "row-not-object",
        "missing-feature",
        "extra-feature",
        "string-value",
        "boolean-value",
        "null-value",
        "nan",
        "infinity",
        "overflow",
        "oversized-batch",
        "huge-integer",
        "deep-nesting-open",
        "deep-nesting-closed",
        "beyond-float32",
        "beyond-float32-negative",
        "just-beyond-float32",
        "huge-negative-integer",
        "lone-surrogate",
    ],
)
def test_each_bad_request_gets_one_sentence(raw, expected):
    with pytest.raises(PayloadError) as refusal:
        parse_request(raw)
    message = str(refusal.value)
    assert expected in message
    assert "\n" not in message


def test_committed_contract_files_are_generated_from_the_contract():
    generated = contract_files(str(MODEL_DIR / "data" / "breast_cancer.csv"))
    for name, text in generated.items():
        assert (MODEL_DIR / name).read_text() == text, (
            f"regenerate with: python src/model/features.py ({name})"
        )


def test_sample_request_and_openapi_agree_with_the_contract():
    sample = json.loads((MODEL_DIR / "sample-request.json").read_text())
    assert len(parse_request(json.dumps(sample))) == len(sample["data"])
    document = openapi(sample)
    request = document["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    row_schema = request["schema"]["properties"]["data"]["items"]
    assert tuple(row_schema["required"]) == FEATURES
    assert row_schema["additionalProperties"] is False
    assert request["schema"]["properties"]["data"]["maxItems"] == MAX_ROWS
    assert request["example"] == sample
    assert all(not math.isnan(v) for row in sample["data"] for v in row.values())
