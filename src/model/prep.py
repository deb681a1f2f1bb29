"""Data preparation: load the raw table, check it against the contract, split it.

train.py and evaluate.py call it, so training and the gate's exam split alike."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from features import CLASSES, FEATURES, TARGET
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
    missing = [c for c in (*FEATURES, TARGET) if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    frame = frame[[*FEATURES, TARGET]]
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
