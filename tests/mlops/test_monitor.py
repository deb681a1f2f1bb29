"""Drift: a synthetic shift is found, an unshifted sample of the same size is not (fixed seeds)."""

import numpy as np
import pytest
from helpers import MODEL_DIR

from mlops.monitor import CHUNK_ROWS, load_reference, measure, plot, report_markdown

REFERENCE = load_reference(MODEL_DIR / "data" / "breast_cancer.csv")
FEATURES = [name for name in REFERENCE if name != "malignant"]


def sample(size: int, seed: int, shift: dict[str, float] | None = None):
    """Rows drawn from the training data; `shift` scales the named features."""
    rng = np.random.default_rng(seed)
    for i in rng.integers(0, len(REFERENCE["mean_radius"]), size=size):
        row = {name: float(REFERENCE[name][i]) for name in FEATURES}
        for name, factor in (shift or {}).items():
            row[name] *= factor
        yield row


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_unshifted_sample_does_not_drift(seed):
    result = measure(
        REFERENCE, sample(2000, seed), psi_threshold=0.2, ks_threshold=0.2, min_rows=200
    )
    assert result.judged and result.rows == 2000
    assert result.drifted == []
    assert max(f.psi for f in result.features) < 0.05


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_shift_of_the_same_size_drifts_in_exactly_the_shifted_features(seed):
    shift = {"mean_texture": 1.3, "worst_smoothness": 0.8}
    result = measure(
        REFERENCE, sample(2000, seed, shift), psi_threshold=0.2, ks_threshold=0.2, min_rows=200
    )
    assert {f.name for f in result.drifted} == set(shift)
    assert result.features[0].name in shift


def test_rows_stream_in_chunks_with_the_same_answer():
    size = CHUNK_ROWS * 2 + 123
    streamed = measure(REFERENCE, sample(size, 9), 0.2, 0.2, 200)
    listed = measure(REFERENCE, list(sample(size, 9)), 0.2, 0.2, 200)
    assert streamed.rows == listed.rows == size
    assert [(f.name, f.psi, f.ks) for f in streamed.features] == [
        (f.name, f.psi, f.ks) for f in listed.features
    ]


def test_too_few_rows_are_reported_but_not_judged():
    result = measure(REFERENCE, sample(50, 4, {"mean_radius": 2.0}), 0.2, 0.2, min_rows=200)
    assert not result.judged and result.drifted == []
    assert "not judged" in report_markdown("prod", "m:1", result, 0.2, 0.2)


def test_the_report_and_the_image_are_written(tmp_path):
    result = measure(REFERENCE, sample(1000, 5, {"mean_radius": 1.5}), 0.2, 0.2, 200)
    report = report_markdown("prod", "m:3", result, 0.2, 0.2)
    assert "**drift** in 1 feature(s)" in report and "| mean_radius |" in report
    image = plot(result, tmp_path / "drift.png")
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 10_000


def test_unreadable_rows_are_counted_and_left_out():
    rows = list(sample(300, 6))
    damaged = [{}, {**rows[0], "mean_area": "big"}, {**rows[0], "mean_area": None}, "row", None]
    damaged.append({k: v for k, v in rows[0].items() if k != "mean_area"})
    damaged.append({**rows[0], "mean_area": float("nan")})
    result = measure(REFERENCE, damaged + rows, 0.2, 0.2, 200)
    assert result.rows == 300 and result.unreadable == len(damaged)
    clean = measure(REFERENCE, rows, 0.2, 0.2, 200)
    assert [(f.name, f.psi) for f in result.features] == [(f.name, f.psi) for f in clean.features]
    report = report_markdown("prod", "m:1", result, 0.2, 0.2, "7d")
    assert f"{len(damaged)} unreadable row(s) skipped" in report and "Window: 7d" in report


def test_nothing_readable_is_not_judged_and_does_not_fail():
    result = measure(REFERENCE, [{}, {"x": 1}, "torn"], 0.2, 0.2, 200)
    assert (result.rows, result.unreadable, result.judged) == (0, 3, False)
