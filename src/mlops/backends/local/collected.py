"""The records the local collector wrote (src/model/collect.py), read back for the monitor.

Two ways to read the same files: row by row (a dict per input row, the seam's form), and a
batch of columns at a time (pyarrow's JSON reader, for the drift pass at volume). A block the
columnar reader cannot take whole (a torn line, a value that is not a number, a key written
twice, a time in another form) is read again row by row, so both ways agree on every line.
Labelled feedback reads whole requests instead (inputs and answers, by request id), picking
the labelled ones by the id at the head of each line and parsing only those.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from mlops import clock
from mlops.backends.base import CollectedRecord

BLOCK_BYTES = 8 << 20  # JSON text per columnar batch: bounds the memory of a pass
# The head of a line as the collector writes it: its request id first, as a JSON string.
_HEAD = re.compile(rb'\{"request_id":"((?:[^"\\]|\\.)*)"')
# What the collector writes: UTC, milliseconds (collect.py); such texts sort as the times do.
_COLLECTED_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$"


class CollectedJsonLines:
    """Live input rows of an endpoint's model in a window, oldest first, from JSON Lines files.

    Iterating yields each row as a dict, and {} for each line that cannot be read (the monitor
    counts those); column_batches yields the same rows as columns."""

    def __init__(
        self, paths: Sequence[Path], endpoint: str, model: str | None, since: datetime | None
    ):
        self.paths, self.endpoint, self.model = list(paths), endpoint, model
        self.since = clock.utc(since) if since else None

    def __iter__(self) -> Iterator[dict]:
        for path in self.paths:
            with open(path, "rb") as handle:
                for line in handle:
                    if line.strip():
                        yield from self._rows_of(line)

    def column_batches(
        self, features: Sequence[str]
    ) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        """Per block of records: each feature's values (NaN where a row lacks it or it is not a
        number) and how many records could not be read at all."""
        import pyarrow as pa
        import pyarrow.json as pj

        row_type = pa.struct([(name, pa.float64()) for name in features])
        schema = pa.schema(
            [
                ("deployment", pa.string()),
                ("model", pa.string()),
                ("traffic", pa.string()),
                ("timestamp", pa.string()),
                ("inputs", pa.list_(row_type)),
            ]
        )
        options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        for block in self._blocks():
            try:
                table = pj.read_json(io.BytesIO(block), parse_options=options)
                batch = self._columns_of(table, features)
            except (pa.ArrowInvalid, _NotCollectorTime):
                batch = None
            yield batch if batch is not None else self._columns_row_by_row(block, features)

    def _blocks(self) -> Iterator[bytes]:
        """The files' bytes in blocks of whole lines (a block ends at a line break, or at the
        end of a file)."""
        for path in self.paths:
            with open(path, "rb") as handle:
                pending = b""
                while chunk := handle.read(BLOCK_BYTES):
                    cut = chunk.rfind(b"\n")
                    if cut < 0:
                        pending += chunk
                        continue
                    yield pending + chunk[: cut + 1]
                    pending = chunk[cut + 1 :]
                if pending.strip():
                    yield pending

    def _columns_of(self, table, features: Sequence[str]) -> tuple[dict[str, np.ndarray], int]:
        import pyarrow.compute as pc

        # a filter drops the rows whose mask is null (a field the record lacks)
        keep = pc.starts_with(table["deployment"], f"{self.endpoint}/")
        # no traffic mark: written before the marks existed, by a client
        live = pc.or_kleene(pc.is_null(table["traffic"]), pc.equal(table["traffic"], "live"))
        keep = pc.and_kleene(keep, live)
        if self.model:
            keep = pc.and_kleene(keep, pc.equal(table["model"], self.model))
        unreadable = 0
        if self.since is not None:
            stamps = table["timestamp"].filter(keep)
            if pc.any(pc.invert(pc.match_substring_regex(stamps, _COLLECTED_TIME))).as_py():
                raise _NotCollectorTime
            unreadable += stamps.null_count  # no time: it cannot be placed in the window
            recent = pc.greater_equal(table["timestamp"], _as_collected_time(self.since))
            keep = pc.and_kleene(keep, recent)
        inputs = table["inputs"].filter(keep)
        unreadable += inputs.null_count
        rows = inputs.combine_chunks().flatten().flatten()  # list -> struct -> one array a field
        columns = {
            name: column.to_numpy(zero_copy_only=False)
            for name, column in zip(features, rows, strict=True)
        }
        return columns, unreadable

    def _columns_row_by_row(
        self, block: bytes, features: Sequence[str]
    ) -> tuple[dict[str, np.ndarray], int]:
        rows = [row for line in block.split(b"\n") if line.strip() for row in self._rows_of(line)]
        columns = {
            name: np.array([_number(row.get(name)) for row in rows], dtype=np.float64)
            for name in features
        }
        return columns, 0  # an unreadable line is a {} row: all NaN, so the monitor counts it

    def _rows_of(self, line: bytes) -> Iterator[dict]:
        """The input rows of one collected line if they count as the live traffic of the
        endpoint's model since the given time; a line that cannot be read yields {}."""
        try:
            record = json.loads(line)
            if not self._counts(record):
                return
            rows = record["inputs"]
            if not isinstance(rows, list):
                raise TypeError("inputs is not a list")
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            yield {}
            return
        for row in rows:
            yield row if isinstance(row, dict) else {}

    def _counts(self, record: dict) -> bool:
        """Whether a collected record is live traffic of the endpoint's model in the window
        (raises for a record that cannot be read that far)."""
        if not record.get("deployment", "").startswith(f"{self.endpoint}/"):
            return False
        if record.get("traffic", "live") != "live" or (
            self.model and record.get("model") != self.model
        ):
            return False  # mirrored copies, smoke tests, probes; rows of other models
        return not (
            self.since and clock.utc(datetime.fromisoformat(record["timestamp"])) < self.since
        )

    def records(self, request_ids: set[str] | None = None) -> Iterator[CollectedRecord]:
        """The requests themselves, with their answers; with request_ids, only those. A line
        whose id is not wanted is skipped on its head alone (the collector writes the id
        first), so picking a few labelled requests out of many parses only theirs."""
        for path in self.paths:
            with open(path, "rb") as handle:
                for line in handle:
                    if request_ids is not None:
                        head = _HEAD.match(line)
                        if head and _unescaped(head[1]) not in request_ids:
                            continue
                    record = self._record_of(line)
                    if record is not None and (
                        request_ids is None or record.request_id in request_ids
                    ):
                        yield record

    def _record_of(self, line: bytes) -> CollectedRecord | None:
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not self._counts(record):
                return None
            rows, outputs = record["inputs"], record["outputs"]
            answers = answers_per_row(outputs, len(rows))
            if answers is None or not all(isinstance(row, dict) for row in rows):
                return None
            return CollectedRecord(
                str(record["request_id"]),
                clock.utc(datetime.fromisoformat(record["timestamp"])),
                record["deployment"],
                str(record.get("model", "")),
                rows,
                answers,
            )
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return None


class LocalCollected:
    """The collected data part of LocalBackend (which provides dir)."""

    def collected_rows(
        self, endpoint: str, model: str | None = None, since: datetime | None = None
    ) -> CollectedJsonLines:
        """Live rows, oldest first; an unreadable line yields {} so the monitor can count it.
        Also readable as batches of columns (the monitor's fast path)."""
        paths = [
            path
            for path in sorted((self.dir / "collected").glob("inference-*.jsonl"))
            # one file per UTC day: older days hold nothing in the window
            if not since or path.stem.removeprefix("inference-") >= f"{clock.utc(since):%Y%m%d}"
        ]
        return CollectedJsonLines(paths, endpoint, model, since)

    def collected_records(
        self,
        endpoint: str,
        model: str | None = None,
        since: datetime | None = None,
        request_ids: set[str] | None = None,
    ) -> Iterator[CollectedRecord]:
        return self.collected_rows(endpoint, model, since).records(request_ids)


def answers_per_row(outputs: object, rows: int) -> list[dict] | None:
    """The answer of each row: score.py answers with a list per field, one item per row
    ({"predictions": [...], "probabilities": [...]}); a list of one object per row is taken
    as it is. None when the answer does not hold one item per row."""
    if isinstance(outputs, dict) and all(
        isinstance(v, list) and len(v) == rows for v in outputs.values()
    ):
        return [{k: v[i] for k, v in outputs.items()} for i in range(rows)] if outputs else None
    if isinstance(outputs, list) and len(outputs) == rows:
        return outputs if all(isinstance(a, dict) for a in outputs) else None
    return None


def _unescaped(text: bytes) -> str:
    """The request id of a line's head; "" (no id is empty) when it is not valid JSON text."""
    try:
        return json.loads(b'"' + text + b'"') if b"\\" in text else text.decode()
    except ValueError:  # UnicodeDecodeError too
        return ""


class _NotCollectorTime(Exception):
    """A time not in the collector's own form: the block is read row by row instead."""


def _as_collected_time(moment: datetime) -> str:
    """The earliest collected time (milliseconds, UTC) that is not before moment."""
    moment = moment.astimezone(UTC)
    if moment.microsecond % 1000:
        moment += timedelta(microseconds=1000 - moment.microsecond % 1000)
    return moment.isoformat(timespec="milliseconds")


def _number(value: object) -> float:
    """The value as a float; NaN when it is not a finite number."""
    try:
        if type(value) in (int, float) and math.isfinite(value):
            return float(value)
    except OverflowError:  # an integer beyond any float
        pass
    return math.nan
