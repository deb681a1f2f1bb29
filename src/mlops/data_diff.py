"""How the challenger's training data differs from the champion's: rows, label balance, and the
features whose distribution moved most (standardised mean difference: the change of a
feature's mean in units of its pooled standard deviation; |SMD| above 0.1 is the usual
mark of a noticeable shift)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

TOP = 5  # features listed by shift
NOTICEABLE = 0.1
MAX_CLASSES = 20  # a target with more values is a number, not a class


@dataclass(frozen=True)
class Side:
    """One model's training data: its name (a data version, or its sha256 for older models) and
    the file when it could be read, else why not."""

    name: str
    file: Path | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Shift:
    feature: str
    challenger_mean: float
    champion_mean: float
    smd: float


@dataclass(frozen=True)
class DataDiff:
    rows: tuple[int, int]  # challenger, champion
    labels: tuple[dict[str, float], dict[str, float]]  # share of each class (a regressor: mean)
    shifts: list[Shift]  # largest |SMD| first, at most TOP


@dataclass(frozen=True)
class Comparison:
    """What the promotion pull request says about the two models' training data."""

    challenger: Side
    champion: Side | None  # None: no champion
    diff: DataDiff | None  # None: a side could not be read (or there is no champion)


def compare(challenger: Path, champion: Path, features: list[str], target: str) -> DataDiff:
    import pandas as pd  # here, not at the top: every `mlops` command imports this module

    ours, theirs = pd.read_csv(challenger), pd.read_csv(champion)
    shifts = []
    for name in features:
        a, b = ours[name].astype(float), theirs[name].astype(float)
        pooled = math.sqrt((a.var() + b.var()) / 2)
        smd = (a.mean() - b.mean()) / pooled if pooled > 0 else 0.0
        shifts.append(Shift(name, float(a.mean()), float(b.mean()), float(smd)))
    shifts.sort(key=lambda shift: -abs(shift.smd))
    labels = (_shares(ours[target]), _shares(theirs[target]))
    return DataDiff((len(ours), len(theirs)), labels, shifts[:TOP])


def _shares(column) -> dict[str, float]:
    if column.nunique() > MAX_CLASSES:  # a regressor's target: its mean says more
        return {"mean": float(column.mean())}
    counts = column.value_counts(normalize=True).sort_index()
    return {_shown_label(label): float(share) for label, share in counts.items()}


def _shown_label(label: object) -> str:
    return str(int(label)) if float(label).is_integer() else str(label)
