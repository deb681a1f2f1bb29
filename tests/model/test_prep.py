"""The data check refuses a broken table in one sentence; the split is reproducible."""

import pandas as pd
import pytest
from features import FEATURES, TARGET
from helpers import MODEL_DIR
from prep import DataError, load, split

DATA = MODEL_DIR / "data" / "breast_cancer.csv"


def test_the_shipped_data_meets_the_contract():
    frame = load(DATA)
    assert list(frame.columns) == [*FEATURES, TARGET]
    assert len(frame) == 569


def test_the_split_is_stratified_and_seeded():
    frame = load(DATA)
    train_a, test_a = split(frame, 0.2, seed=7)
    train_b, test_b = split(frame, 0.2, seed=7)
    pd.testing.assert_frame_equal(test_a, test_b)
    assert abs(test_a[TARGET].mean() - frame[TARGET].mean()) < 0.02
    assert len(train_a) + len(test_a) == len(frame)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.drop(columns=["mean_area"]), "missing column(s) mean_area"),
        (lambda f: f.assign(mean_area=None), "column mean_area has empty values"),
        (lambda f: f.assign(**{TARGET: 2}), f"column {TARGET} must hold only 0, 1"),
    ],
)
def test_a_broken_table_is_refused(tmp_path, change, expected):
    broken = tmp_path / "broken.csv"
    change(pd.read_csv(DATA)).to_csv(broken, index=False)
    with pytest.raises(DataError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load(broken)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        load(tmp_path / "absent.csv")
