"""The model's input contract, declared once.

Training reads its columns from here, the scoring script validates requests
with it, and the sample request and the OpenAPI document are generated from
it. Extension points: a forker with other data edits FEATURES and TARGET; with
another task (a regressor, more classes), RESPONSE_SCHEMA, the answer score.py
gives, which every deployment's smoke test checks (through swagger3.json); and
COHORTS, the slices of the rows whose performance is reported, gated and monitored
group by group.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import numpy as np

# Breast cancer Wisconsin (diagnostic): 30 real-valued cell-nucleus measures.
FEATURES: tuple[str, ...] = tuple(
    f"{stat}_{measure}"
    for stat in ("mean", "se", "worst")
    for measure in (
        "radius",
        "texture",
        "perimeter",
        "area",
        "smoothness",
        "compactness",
        "concavity",
        "concave_points",
        "symmetry",
        "fractal_dimension",
    )
)
TARGET = "malignant"  # 1 = malignant, 0 = benign
# The values TARGET may hold, for a classifier (its split is stratified on them); None for a
# regressor, whose target is any finite number.
CLASSES: tuple[int, ...] | None = (0, 1)
# The answer to a request, as JSON Schema (OpenAPI 3.0's subset). Each array in it holds one
# item per request row, in order: the smoke test of every deployment checks both.
RESPONSE_SCHEMA: dict = {
    "type": "object",
    "required": ["predictions", "probabilities"],
    "additionalProperties": False,
    "properties": {
        "predictions": {"type": "array", "items": {"type": "integer", "enum": [0, 1]}},
        "probabilities": {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 1},
        },
    },
}
MAX_ROWS = 1000  # rows per request; bigger batches belong to batch endpoints
# The model computes in float32: a larger magnitude would become an infinity inside it.
FLOAT32_MAX = 3.4028234663852886e38
_MAX_INT_DIGITS = 40  # beyond float32's range whatever the digits; refused before conversion

_FEATURE_SET = frozenset(FEATURES)
_NUMBER_TYPES = frozenset({int, float})
# One row's values in FEATURES order, in one C call (a tuple even for a single feature).
_ROW_VALUES = itemgetter(*FEATURES) if len(FEATURES) > 1 else lambda row: (row[FEATURES[0]],)
# A body that parsed as {"data": [...]}: everything between the colon and the last brace.
_DATA_ARRAY = re.compile(rb'\A[ \t\r\n]*\{[ \t\r\n]*"data"[ \t\r\n]*:(.*)\}[ \t\r\n]*\Z', re.S)


def _tumour_size(row: Mapping[str, float]) -> str:
    """Small or large tumours by the mean radius of their cell nuclei (the data's median is
    about 13.4): a slice where a model may do well overall and badly on the rarer cases."""
    return "small" if row["mean_radius"] < 14.0 else "large"


# Cohorts: each splits the rows into named groups, by a column (its values are the groups'
# names) or by a function of a row (a mapping of FEATURES and COHORT_COLUMNS to values) that
# returns the group's name. The evaluate step reports every gated metric per group, the gate
# judges the groups against environments/prod.yml `gate.cohorts`, the monitor does the same on
# labelled requests. Names of cohorts and groups: letters, digits, `_` and `-` (they become
# registry tags `cohort.<cohort>.<group>.<metric>`). A fork with a sensitive attribute names it
# here, e.g. {"sex": "sex", "age": lambda row: "under 50" if row["age"] < 50 else "50 and over"}
# with COHORT_COLUMNS = ("sex", "age") when those columns are not FEATURES.
COHORTS: dict[str, str | Callable[[Mapping[str, object]], str]] = {"tumour_size": _tumour_size}
# Columns of the data the cohorts read that are not FEATURES (kept by prep, never sent to the
# model): the columns named in COHORTS are added on their own.
COHORT_COLUMNS: tuple[str, ...] = ()
_NAME_OF_GROUP = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")


class CohortError(ValueError):
    """A cohort declaration that cannot split the rows; the message is one sentence."""


def cohort_columns() -> tuple[str, ...]:
    """The columns the cohorts read beyond FEATURES and TARGET, in a stable order."""
    named = [spec for spec in COHORTS.values() if isinstance(spec, str)]
    wanted = dict.fromkeys([*COHORT_COLUMNS, *named])
    return tuple(c for c in wanted if c not in _FEATURE_SET and c != TARGET)


def cohort_groups(
    rows: list[Mapping[str, object]], only: list[str] | None = None
) -> dict[str, list[str]]:
    """Each cohort's (or only the named ones') group name for every row, in order; CohortError
    for a declaration that raises, names a missing column or returns a name that cannot be a
    tag."""
    found = {}
    for cohort, spec in COHORTS.items():
        if only is not None and cohort not in only:
            continue
        where = f"src/model/features.py: COHORTS[{cohort!r}]"
        if not _NAME_OF_GROUP.match(cohort):
            raise CohortError(f"{where}: the cohort's name must be letters, digits, _ or -")
        groups = []
        for index, row in enumerate(rows):
            try:
                value = row[spec] if isinstance(spec, str) else spec(row)
            except Exception as exc:  # noqa: BLE001 - whatever a fork's function raises
                raise CohortError(
                    f"{where} raised {type(exc).__name__} ({exc}) on row {index}"
                ) from None
            name = str(value).replace(" ", "_") if not isinstance(value, bool) else None
            if name is None or not _NAME_OF_GROUP.match(name):
                raise CohortError(
                    f"{where} gave row {index} the group {value!r}; a group's name must be "
                    "1-64 letters, digits, _ or - (spaces become _)"
                )
            groups.append(name)
        found[cohort] = groups
    return found


class PayloadError(ValueError):
    """A request the endpoint refuses; the message is one sentence for the caller."""


def _refuse_constant(name: str) -> float:
    raise PayloadError(f"request body contains {name}, which is not a finite number")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise PayloadError(
            f"request body contains an integer of {len(digits.lstrip('-'))} digits, "
            "outside the float32 range the model accepts"
        )
    return int(digits)


@dataclass(frozen=True)
class Batch:
    """A valid request: its rows as a matrix in FEATURES order, and as the client sent them."""

    matrix: np.ndarray  # float64, one row per request row
    rows_json: bytes | None  # the "data" array's JSON text on one line; None if not recoverable


def parse_request(body: bytes | str) -> list[list[float]]:
    """Turn a request body into rows of floats in FEATURES order, or raise PayloadError."""
    return parse_batch(body).matrix.tolist()


def parse_batch(body: bytes | str) -> Batch:
    """Parse and validate a request body in one pass over the batch, or raise PayloadError.

    Never raises anything else: whatever the JSON parser throws becomes one sentence. The
    whole batch is screened at once; only a batch the screen doubts is walked row by row,
    which names the first bad row and feature (or accepts a value exactly at float32's edge)."""
    rows = _rows_of(body)
    rows_json = _data_json(body)
    matrix = _screened(rows, rows_json)
    if matrix is None:
        matrix = np.array(_checked_row_by_row(rows), dtype=np.float64)
    return Batch(matrix, rows_json)


def _screened(rows: list, rows_json: bytes | None) -> np.ndarray | None:
    """The batch as a matrix if every row has exactly FEATURES, each a plain number inside
    float32's range; None when in doubt.

    The conversion to floats refuses lists and objects, turns null into NaN (which the range
    check refuses) but would take a boolean as 0 or 1 and a numeric string as its number: the
    values that became 0 or 1 have their type checked, and strings are counted as quotes (the
    keys of rows with exactly FEATURES account for two each, a key is never sent twice: one more
    is a string value). Without the text as sent, every value's type is checked."""
    width = len(FEATURES)
    try:
        values = list(map(_ROW_VALUES, rows))  # KeyError: a feature is missing
        if set(map(len, rows)) != {width}:  # all of FEATURES and nothing else
            return None
        strings_possible = rows_json is None or rows_json.count(b'"') != 2 * width * len(rows)
        if strings_possible and not set(map(type, chain.from_iterable(values))) <= _NUMBER_TYPES:
            return None
        matrix = np.fromiter(chain.from_iterable(values), np.float64, len(rows) * width)
    except (KeyError, TypeError, ValueError):  # a row or a value that is not what it should be
        return None
    if not (np.abs(matrix) < FLOAT32_MAX).all():
        return None
    for index in np.flatnonzero((matrix == 0) | (matrix == 1)).tolist():
        if type(values[index // width][index % width]) is bool:
            return None
    return matrix.reshape(len(rows), width)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """An object whose keys are each written once: with a key twice, JSON parsers disagree on
    which value counts, so what is scored and what is recorded could differ."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise PayloadError(
                    f"request body has the key {key!r} twice in one object; send it once"
                )
            seen.add(key)
    return found


def _rows_of(body: bytes | str) -> list:
    """The request's "data" list, checked as a whole (object, key, type, size)."""
    try:
        payload = json.loads(
            body,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            object_pairs_hook=_unique_keys,
        )
    except PayloadError:
        raise
    except RecursionError:
        raise PayloadError("request body is nested too deeply to be a request") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"request body is not valid JSON ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - any other parser failure is still the body's fault
        raise PayloadError(
            f"request body could not be read as JSON ({type(exc).__name__})"
        ) from None
    if not isinstance(payload, dict) or set(payload) != {"data"}:
        raise PayloadError('request body must be a JSON object with exactly one key, "data"')
    rows = payload["data"]
    if not isinstance(rows, list):
        raise PayloadError('"data" must be a list of rows, each an object of feature values')
    if not rows:
        raise PayloadError('"data" is empty: send at least one row')
    if len(rows) > MAX_ROWS:
        raise PayloadError(f'"data" has {len(rows)} rows; at most {MAX_ROWS} are accepted')
    return rows


def _checked_row_by_row(rows: list) -> list[list[float]]:
    """The exact check, row by row: raises for the first bad row, in the batch's order."""
    matrix = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or row.keys() != _FEATURE_SET:
            _explain_row_shape(index, row)
        values = [row[name] for name in FEATURES]
        if not set(map(type, values)) <= _NUMBER_TYPES or not all(map(_in_float32, values)):
            _explain_row_values(index, values)
        matrix.append(values)
    return matrix


def _data_json(body: bytes | str) -> bytes | None:
    """The "data" array of a body already parsed as valid, cut from the bytes as sent.

    Valid JSON has no raw line break inside a string, so turning line breaks into spaces
    keeps the same value on one line (JSON Lines)."""
    found = _DATA_ARRAY.match(body) if isinstance(body, bytes) else None
    if found is None:  # another encoding, or the key written with escapes
        return None
    text = found.group(1).strip()
    if b"\n" in text or b"\r" in text:
        text = text.replace(b"\n", b" ").replace(b"\r", b" ")
    return text


def _explain_row_shape(index: int, row: object) -> None:
    if not isinstance(row, dict):
        raise PayloadError(f"row {index} must be an object of feature values, got {_kind(row)}")
    missing = [name for name in FEATURES if name not in row]
    if missing:
        raise PayloadError(f"row {index} is missing feature(s): {', '.join(missing)}")
    extra = sorted(set(row) - _FEATURE_SET)
    raise PayloadError(f"row {index} has unknown feature(s): {', '.join(extra)}")


def _explain_row_values(index: int, values: list[object]) -> None:
    for name, value in zip(FEATURES, values, strict=True):
        if type(value) not in _NUMBER_TYPES:
            raise PayloadError(
                f"row {index}, feature {name!r}: expected a number, got {_kind(value)}"
            )
        if not math.isfinite(value):
            raise PayloadError(f"row {index}, feature {name!r}: {value} is not a finite number")
        if not _in_float32(value):
            raise PayloadError(
                f"row {index}, feature {name!r}: {value:.6g} is outside float32's finite range "
                f"(magnitude at most {FLOAT32_MAX:.6g})"
            )


def _in_float32(value: float) -> bool:
    return -FLOAT32_MAX <= value <= FLOAT32_MAX  # False for NaN and the infinities too


def _kind(value: object) -> str:
    return {
        bool: "a boolean",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def sample_request(rows: list[dict[str, float]]) -> dict:
    """A request body for the given rows (keys must be exactly FEATURES)."""
    return {"data": [{name: float(row[name]) for name in FEATURES} for row in rows]}


def openapi(sample: dict) -> dict:
    """The OpenAPI 3 document for the scoring route, generated from FEATURES."""
    row_schema = {
        "type": "object",
        "required": list(FEATURES),
        "additionalProperties": False,
        "properties": {name: {"type": "number"} for name in FEATURES},
    }
    request_schema = {
        "type": "object",
        "required": ["data"],
        "additionalProperties": False,
        "properties": {
            "data": {"type": "array", "minItems": 1, "maxItems": MAX_ROWS, "items": row_schema}
        },
    }
    error_schema = {"type": "object", "properties": {"error": {"type": "string"}}}
    return {
        "openapi": "3.0.1",
        "info": {"title": "Breast cancer classifier", "version": "1.0"},
        "paths": {
            "/score": {
                "post": {
                    "summary": f"Probability that each row is {TARGET}",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": request_schema, "example": sample}
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "One prediction per row",
                            "content": {"application/json": {"schema": RESPONSE_SCHEMA}},
                        },
                        "400": {
                            "description": "The request breaks the input contract",
                            "content": {"application/json": {"schema": error_schema}},
                        },
                    },
                }
            }
        },
    }


def swagger2(sample: dict) -> dict:
    """The same document in Swagger 2.0, which the inference server serves by default."""
    modern = openapi(sample)
    post = modern["paths"]["/score"]["post"]
    request = post["requestBody"]["content"]["application/json"]
    responses = {
        code: {
            "description": answer["description"],
            "schema": answer["content"]["application/json"]["schema"],
        }
        for code, answer in post["responses"].items()
    }
    return {
        "swagger": "2.0",
        "info": modern["info"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "paths": {
            "/score": {
                "post": {
                    "summary": post["summary"],
                    "parameters": [
                        {
                            "in": "body",
                            "name": "body",
                            "required": True,
                            "schema": {**request["schema"], "example": request["example"]},
                        }
                    ],
                    "responses": responses,
                }
            }
        },
    }


def contract_files(data_csv: str, rows: int = 3) -> dict[str, str]:
    """The files generated from this contract, by name: the sample request and the API documents.

    The inference server publishes swagger.json (2.0) and swagger3.json from the
    scoring script's folder."""
    import csv

    with open(data_csv, newline="") as handle:
        sample = sample_request(
            [row for _, row in zip(range(rows), csv.DictReader(handle), strict=False)]
        )
    return {
        "sample-request.json": json.dumps(sample, indent=2) + "\n",
        "swagger.json": json.dumps(swagger2(sample), indent=2) + "\n",
        "swagger3.json": json.dumps(openapi(sample), indent=2) + "\n",
    }


if __name__ == "__main__":  # python features.py: regenerate the contract files beside this one
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for name, text in contract_files(str(here / "data" / "breast_cancer.csv")).items():
        (here / name).write_text(text)
        print(f"wrote {name}")
