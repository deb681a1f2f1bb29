"""The drift pass read as columns gives today's figures: the same rows and unreadable counts as
the row-by-row reader, PSI from the same bin counts, KS within its documented binning error."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from collect import JsonLinesCollector
from features import FEATURES, parse_batch
from helpers import MODEL_DIR
from scipy.stats import ks_2samp

from mlops.backends.local import collected
from mlops.backends.local.collected import CollectedJsonLines
from mlops.monitor import ColumnarRows, FeatureHistogram, load_reference, measure

REFERENCE = load_reference(MODEL_DIR / "data" / "breast_cancer.csv")
TABLE = np.column_stack([REFERENCE[name] for name in FEATURES])
NOW = datetime.now(UTC)


def body(rows: np.ndarray) -> bytes:
    return json.dumps({"data": [dict(zip(FEATURES, row, strict=True)) for row in rows]}).encode()


def collect_shipped_data(folder, scale: float = 1.0) -> None:
    """Score-path records of the shipped rows (as sent, via the request parser), 7 per request."""
    writer = JsonLinesCollector(folder, "mlops-prod/blue", "m:2")
    for start in range(0, len(TABLE), 7):
        batch = parse_batch(body(TABLE[start : start + 7] * scale))
        writer.record(f"r{start}", batch.matrix, {"predictions": []}, rows_json=batch.rows_json)


def damage(path) -> None:
    """Lines the collector never writes but a file may hold: each must be read the same way."""
    row = dict(zip(FEATURES, TABLE[0], strict=True))
    stamp = NOW.isoformat(timespec="milliseconds")
    base = {"timestamp": stamp, "deployment": "mlops-prod/blue", "model": "m:2", "traffic": "live"}
    lines = [
        {**base, "inputs": [{**row, "mean_area": "big"}]},
        {**base, "inputs": [{**row, "mean_area": None}, {}, 7]},
        {**base, "inputs": [{k: v for k, v in row.items() if k != "mean_area"}]},
        {**base, "inputs": None},
        {**base, "inputs": [row], "traffic": "mirror"},
        {**base, "inputs": [row], "deployment": "mlops-preprod/blue"},
        {**base, "inputs": [row], "model": "m:1"},
        {k: v for k, v in {**base, "inputs": [row]}.items() if k != "traffic"},
        {k: v for k, v in {**base, "inputs": [row]}.items() if k != "timestamp"},
        {**base, "inputs": [row], "timestamp": (NOW - timedelta(hours=2)).isoformat()},
    ]
    marked = json.dumps({**base, "inputs": [{**row, "mean_area": "HERE"}]})
    with open(path, "a") as handle:
        for line in lines:
            handle.write(json.dumps(line) + "\n")
        handle.write(marked.replace('"HERE"', "1e999") + "\n")  # an infinity
        handle.write('{"request_id": "torn", "inpu\n')
        handle.write(marked.replace('"HERE"', '1.0, "mean_area": 2.0') + "\n")  # twice: last counts


def figures(result):
    by_name = {f.name: (f.psi, f.ks) for f in result.features}
    return result.rows, result.unreadable, by_name


@pytest.mark.parametrize("since", [None, NOW - timedelta(hours=1)], ids=["all", "window"])
def test_columns_and_rows_read_the_same_figures(tmp_path, monkeypatch, since):
    collect_shipped_data(tmp_path)
    (path,) = tmp_path.glob("inference-*.jsonl")
    damage(path)
    collect_shipped_data(tmp_path, scale=1.2)  # clean blocks after the damaged ones
    monkeypatch.setattr(collected, "BLOCK_BYTES", 32_000)  # many blocks, most of them clean
    read_as_rows = []
    real = CollectedJsonLines._columns_row_by_row
    monkeypatch.setattr(
        CollectedJsonLines,
        "_columns_row_by_row",
        lambda self, block, names: read_as_rows.append(block) or real(self, block, names),
    )
    reader = CollectedJsonLines([path], "mlops-prod", "m:2", since)
    assert isinstance(reader, ColumnarRows)
    columns = measure(REFERENCE, reader, 0.2, 0.2, 200)
    blocks = sum(1 for _ in reader._blocks())
    assert 0 < len(read_as_rows) < blocks / 2  # both ways were taken, columns mostly
    rows = measure(REFERENCE, list(reader), 0.2, 0.2, 200)
    assert figures(columns) == figures(rows)
    # the shipped rows twice, and the lines with no traffic mark, with a key twice, and (outside
    # a window) the timeless and the old line; unreadable: 8 lines or rows, and the timeless in a window
    assert (columns.rows, columns.unreadable) == (
        (2 * len(TABLE) + 4, 8) if since is None else (2 * len(TABLE) + 2, 9)
    )
    assert {f.name for f in columns.drifted} == {f.name for f in rows.drifted} != set()


def test_the_window_starts_at_its_exact_time(tmp_path):
    """The collector writes milliseconds: a window that starts within one keeps what follows."""
    stamp = NOW.replace(microsecond=123000)
    row = dict(zip(FEATURES, TABLE[0], strict=True))
    path = tmp_path / f"inference-{stamp:%Y%m%d}.jsonl"
    with open(path, "w") as handle:
        for shift in (-1, 0, 1):
            moment = (stamp + timedelta(milliseconds=shift)).isoformat(timespec="milliseconds")
            record = {"timestamp": moment, "deployment": "e/b", "inputs": [row]}
            handle.write(json.dumps(record) + "\n")
    for since, kept in [(stamp, 2), (stamp + timedelta(microseconds=1), 1)]:
        reader = CollectedJsonLines([path], "e", None, since)
        assert measure(REFERENCE, reader, 0.2, 0.2, 1).rows == kept
        assert measure(REFERENCE, list(reader), 0.2, 0.2, 1).rows == kept


def test_the_bins_count_as_one_search_per_edge_set_would():
    rng = np.random.default_rng(3)
    for name in FEATURES:
        values = rng.choice(REFERENCE[name], 5000) * rng.uniform(0.8, 1.3)
        histogram = FeatureHistogram.from_reference(name, REFERENCE[name])
        histogram.add(values[:1234])
        histogram.add(values[1234:])
        for edges, counts in [
            (histogram.coarse_edges, histogram.current_coarse),
            (histogram.fine_edges, histogram.current_fine),
        ]:
            search = np.searchsorted(edges, values, side="right")
            assert np.array_equal(counts, np.bincount(search, minlength=len(edges) + 1))


@pytest.mark.parametrize("factor", [1.0, 1.1, 1.5])
def test_ks_is_within_its_binning_error_of_scipy(factor):
    """KS is evaluated at the reference's percentiles: it can only fall short of the exact
    statistic, by at most the reference's largest share between two of them."""
    rng = np.random.default_rng(5)
    picks = rng.integers(0, len(TABLE), 3000)
    rows = [dict(zip(FEATURES, (TABLE[i] * factor).tolist(), strict=True)) for i in picks]
    result = measure(REFERENCE, rows, 0.2, 0.2, 200)
    assert result.rows == len(picks)
    for feature in result.features:
        histogram = result.histograms[feature.name]
        exact = ks_2samp(
            TABLE[picks, FEATURES.index(feature.name)] * factor, REFERENCE[feature.name]
        )
        error = histogram.reference_fine.max() / histogram.reference_fine.sum()
        assert exact.statistic - error - 1e-12 <= histogram.ks() <= exact.statistic + 1e-12
        assert abs(feature.ks - histogram.ks()) <= 5e-5  # the report rounds to 4 places


def test_a_first_row_with_a_bad_value_is_unreadable_both_ways(tmp_path):
    """The features are the first row's keys, as sent, even when one of its values is bad."""
    row = dict(zip(FEATURES, TABLE[0].tolist(), strict=True))
    path = tmp_path / f"inference-{NOW:%Y%m%d}.jsonl"
    with open(path, "w") as handle:
        for inputs in ([{**row, "mean_area": "big"}], [row], [{**row, "mean_area": None}], [row]):
            handle.write(json.dumps({"deployment": "e/b", "inputs": inputs}) + "\n")
    reader = CollectedJsonLines([path], "e", None, None)
    for read in (reader, list(reader)):
        result = measure(REFERENCE, read, 0.2, 0.2, 1)
        assert (result.rows, result.unreadable) == (2, 2)
        assert len(result.features) == len(FEATURES)
