"""Data preparation, the pipeline's first step: load the raw table, check it against the
contract, split it.

    python prep.py --data data/breast_cancer.csv --output prepared/ [--test-fraction 0.2 --seed 42]

Writes to --output: train.csv and test.csv (the contract's columns, and the columns the
cohorts read: features.cohort_columns) and prep.json
(the raw data's sha256, its rows, the split's seed and test fraction). The gate's exam
calls `load` and `split` too, so it re-creates exactly the held-out rows evaluated here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd
from features import CLASSES, FEATURES, TARGET, cohort_columns
from sklearn.model_selection import train_test_split


class DataError(ValueError):
    """The training data breaks the contract in features.py."""


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path: str | Path) -> pd.DataFrame:
    """Read the raw CSV and refuse it, in one sentence, if it breaks the contract."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    frame = pd.read_csv(path)
    kept = [*FEATURES, TARGET, *cohort_columns()]
    missing = [c for c in kept if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    frame = frame[kept]
    if frame.isna().any().any():
        column = frame.columns[frame.isna().any()][0]
        raise DataError(f"{path}: column {column} has empty values")
    if CLASSES is not None and not set(frame[TARGET].unique()) <= set(CLASSES):
        raise DataError(f"{path}: column {TARGET} must hold only {', '.join(map(str, CLASSES))}")
    return frame


def split(
    frame: pd.DataFrame, test_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded split (stratified for a classifier), so the same data and seed give the same
    model."""
    stratify = frame[TARGET] if CLASSES is not None else None
    train, test = train_test_split(
        frame, test_size=test_fraction, random_state=seed, stratify=stratify
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


TRAIN_FILE, TEST_FILE, SUMMARY_FILE = "train.csv", "test.csv", "prep.json"


def prepare(data: str | Path, output: str | Path, test_fraction: float, seed: int) -> dict:
    """The step: the split written as files, and what it was made from."""
    frame = load(data)
    train, test = split(frame, test_fraction, seed)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    train.to_csv(out / TRAIN_FILE, index=False)
    test.to_csv(out / TEST_FILE, index=False)
    summary = {
        "data_sha256": sha256_of(data),
        "rows": len(frame),
        "train_rows": len(train),
        "test_rows": len(test),
        "test_fraction": test_fraction,
        "seed": seed,
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def read_split(prepared: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """What prepare wrote: (train, test, summary)."""
    folder = Path(prepared)
    summary_path = folder / SUMMARY_FILE
    if not summary_path.is_file():
        raise DataError(f"{folder}: no {SUMMARY_FILE}; is it the output of prep.py?")
    summary = json.loads(summary_path.read_text())
    return load(folder / TRAIN_FILE), load(folder / TEST_FILE), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the raw data and split it.")
    parser.add_argument("--data", required=True, help="raw CSV file (see features.py)")
    parser.add_argument("--output", required=True, help="folder for the split and prep.json")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if not 0.05 <= args.test_fraction <= 0.5:
        parser.error("--test-fraction must be between 0.05 and 0.5")
    try:
        summary = prepare(args.data, args.output, args.test_fraction, args.seed)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
