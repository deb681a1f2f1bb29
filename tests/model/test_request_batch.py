"""The batch parser: one pass over valid requests, with today's answers and today's refusals."""

import csv
import json

import numpy as np
import pytest
from features import FEATURES, PayloadError, _checked_row_by_row, parse_batch
from helpers import MODEL_DIR

with open(MODEL_DIR / "data" / "breast_cancer.csv", newline="") as handle:
    SHIPPED = [{name: float(row[name]) for name in FEATURES} for row in csv.DictReader(handle)]
ROW = {name: 1.5 for name in FEATURES}


@pytest.mark.parametrize("size", [1, 7, 100])
def test_the_shipped_rows_parse_as_the_row_by_row_check_does(size):
    for start in range(0, len(SHIPPED), size):
        rows = SHIPPED[start : start + size]
        batch = parse_batch(json.dumps({"data": rows}).encode())
        assert np.array_equal(batch.matrix, np.array(_checked_row_by_row(rows)))
        assert json.loads(batch.rows_json) == rows


def test_the_rows_are_kept_as_sent_on_one_line():
    sent = json.dumps({"data": [ROW, {**ROW, "mean_area": 7}]}, indent=2).encode()
    batch = parse_batch(b"\r\n " + sent + b"\n")
    assert b"\n" not in batch.rows_json and b"\r" not in batch.rows_json
    assert json.loads(batch.rows_json) == json.loads(sent)["data"]
    assert batch.matrix[1][FEATURES.index("mean_area")] == 7.0


def test_a_body_whose_rows_cannot_be_cut_out_still_parses():
    escaped = b'{"\\u0064ata": ' + json.dumps([ROW]).encode() + b"}"
    batch = parse_batch(escaped)
    assert batch.rows_json is None and batch.matrix.tolist() == [[1.5] * len(FEATURES)]
    assert parse_batch(json.dumps({"data": [ROW]})).rows_json is None  # text, not bytes


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (
            {**ROW, "mean_area": True},
            "row 2, feature 'mean_area': expected a number, got a boolean",
        ),
        (
            {**ROW, "mean_area": "1.5"},
            "row 2, feature 'mean_area': expected a number, got a string",
        ),
        ({**ROW, "mean_area": None}, "row 2, feature 'mean_area': expected a number, got null"),
        ({**ROW, "mean_area": [1.5]}, "row 2, feature 'mean_area': expected a number, got a list"),
        ({**ROW, "mean_area": {}}, "row 2, feature 'mean_area': expected a number, got an object"),
        ({**ROW, "mean_area": 4e38}, "row 2, feature 'mean_area': 4e+38 is outside float32's"),
        ([1.5] * len(FEATURES), "row 2 must be an object of feature values, got a list"),
        ("row", "row 2 must be an object of feature values, got a string"),
        ({**ROW, "extra": 1}, "row 2 has unknown feature(s): extra"),
    ],
)
def test_a_bad_row_among_good_ones_is_named_first(bad, expected):
    later = {**ROW, "mean_radius": "also bad"}
    with pytest.raises(PayloadError) as refusal:
        parse_batch(json.dumps({"data": [ROW, ROW, bad, later]}).encode())
    assert str(refusal.value).startswith(expected)


def test_a_key_sent_twice_is_refused_whichever_value_is_good():
    """Parsers disagree on which of two values counts (Python's json the last, others the
    first), so the scored row and the recorded row could differ: the body is refused."""
    text = json.dumps({"data": [ROW]}).replace(
        '"mean_area": 1.5', '"mean_area": "x", "mean_area": 2'
    )
    for body in (text, text.replace('"mean_area": 2', '"mean_area": "y"')):
        with pytest.raises(PayloadError, match="has the key 'mean_area' twice in one object"):
            parse_batch(body.encode())


def test_the_largest_float32_is_accepted_and_one_more_refused_as_today():
    edge = int(np.finfo(np.float32).max)
    text = json.dumps({"data": [{**ROW, "mean_area": edge}]}).encode()
    assert parse_batch(text).matrix[0][FEATURES.index("mean_area")] == float(edge)
    with pytest.raises(PayloadError, match="outside float32's finite range"):
        parse_batch(text.replace(str(edge).encode(), str(edge + 1).encode()))
