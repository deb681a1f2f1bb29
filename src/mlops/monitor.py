"""Data drift: collected inputs against the training data of the served model.

Memory stays bounded whatever the volume: collected rows stream through in
batches (as columns when the reader offers them, see ColumnarRows) and only
per-feature histograms are kept. The bins are the reference's quantiles:
deciles for the population stability index (PSI) and percentiles for the
Kolmogorov–Smirnov statistic (KS, evaluated at the percentile edges). Binning
error of KS: it never exceeds the exact two-sample statistic, and falls short
of it by at most the largest share of the reference between two adjacent
percentile edges (about 1 %, more where the reference has ties).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

CHUNK_ROWS = 10_000
_FLOOR = 1e-4  # proportions are floored so that an empty bin does not make PSI infinite


@dataclass
class FeatureHistogram:
    name: str
    coarse_edges: np.ndarray  # reference deciles
    fine_edges: np.ndarray  # reference percentiles
    reference_coarse: np.ndarray
    reference_fine: np.ndarray
    current_coarse: np.ndarray = field(init=False)
    current_fine: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.current_coarse = np.zeros_like(self.reference_coarse)
        self.current_fine = np.zeros_like(self.reference_fine)
        # One search per value finds both bins: the search runs over the union of the edges,
        # and each union bin maps to the coarse and fine bins that hold it (exact counts).
        self._edges = np.union1d(self.coarse_edges, self.fine_edges)
        self._to_coarse = _bins_of(self._edges, self.coarse_edges)
        self._to_fine = _bins_of(self._edges, self.fine_edges)

    @staticmethod
    def from_reference(name: str, values: np.ndarray) -> FeatureHistogram:
        coarse = np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1]))
        fine = np.unique(np.quantile(values, np.linspace(0, 1, 101)[1:-1]))
        return FeatureHistogram(name, coarse, fine, _counts(values, coarse), _counts(values, fine))

    def add(self, values: np.ndarray) -> None:
        counts = _counts(values, self._edges)
        np.add.at(self.current_coarse, self._to_coarse, counts)
        np.add.at(self.current_fine, self._to_fine, counts)

    def psi(self) -> float:
        ref = np.maximum(self.reference_coarse / self.reference_coarse.sum(), _FLOOR)
        cur = np.maximum(self.current_coarse / max(self.current_coarse.sum(), 1), _FLOOR)
        return float(np.sum((cur - ref) * np.log(cur / ref)))

    def ks(self) -> float:
        ref = np.cumsum(self.reference_fine) / self.reference_fine.sum()
        cur = np.cumsum(self.current_fine) / max(self.current_fine.sum(), 1)
        return float(np.max(np.abs(cur - ref)))


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Values per bin: bin i holds edges[i - 1] <= value < edges[i]."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def _bins_of(union: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """For each bin of union (a superset of edges), the bin of edges that contains it."""
    return np.concatenate([[0], np.searchsorted(edges, union, side="right")])


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    psi: float
    ks: float
    drifted: bool


@dataclass
class DriftResult:
    rows: int
    features: list[FeatureDrift]
    judged: bool  # False when there were too few rows to judge
    unreadable: int = 0  # collected rows (or torn lines) that were not numbers for every feature
    histograms: dict[str, FeatureHistogram] = field(default_factory=dict, repr=False)
    importances: dict[str, float] = field(default_factory=dict)  # the served model's, if known

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.drifted]


def load_reference(path: Path) -> dict[str, np.ndarray]:
    """The numeric columns of the training table, by name."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns: dict[str, list[float]] = {name: [] for name in reader.fieldnames or []}
        for row in reader:
            for name, value in row.items():
                columns[name].append(float(value))
    return {name: np.asarray(values, dtype=float) for name, values in columns.items()}


@runtime_checkable
class ColumnarRows(Protocol):
    """Collected rows (iterated: dicts, as any reader) that can also be handed over a batch of
    columns at a time: per batch, each asked feature's values (NaN where a row lacks it or it
    is not a number) and how many records could not be read at all."""

    def __iter__(self) -> Iterator[dict]: ...

    def column_batches(
        self, features: Sequence[str]
    ) -> Iterator[tuple[dict[str, np.ndarray], int]]: ...


def measure(
    reference: dict[str, np.ndarray],
    rows: Iterable[dict[str, float]] | ColumnarRows,
    psi_threshold: float,
    ks_threshold: float,
    min_rows: int,
    importances: dict[str, float] | None = None,
) -> DriftResult:
    """Stream rows against the reference, batch by batch: dicts of feature values, or columns
    when the reader offers them (ColumnarRows), with the same figures either way.

    Features come most drifted first; given the served model's importances (permutation
    importance, ModelVersion.importances), drifted features come first, the most important
    first, then the others by importance: drift where the model looks matters most.

    The features are the reference's that the first non-empty row has. A row that is not a
    number for every feature (a torn line arrives as {}) is counted as unreadable and left
    out; it never stops the measurement."""
    batches = _from_rows(rows, reference)
    if isinstance(rows, ColumnarRows):
        first = next((row for row in rows if isinstance(row, dict) and row), {})
        chosen = [n for n in first if n in reference]  # as the rows' way chooses them
        if chosen:  # (none: every row is unreadable, which the rows' way counts)
            batches = _from_columns(rows.column_batches(chosen), chosen)
    names: list[str] = []
    histograms: dict[str, FeatureHistogram] = {}
    total = unreadable = 0
    for batch_names, matrix, skipped in batches:
        if batch_names != names:  # chosen once, when the first readable row comes
            names = batch_names
            histograms = {n: FeatureHistogram.from_reference(n, reference[n]) for n in names}
        unreadable += skipped
        total += len(matrix)
        for column, name in enumerate(names):
            histograms[name].add(matrix[:, column])
    judged = total >= min_rows
    features = []
    for h in histograms.values():
        psi, ks = h.psi(), h.ks()
        drifted = judged and (psi >= psi_threshold or ks >= ks_threshold)
        features.append(FeatureDrift(h.name, round(psi, 4), round(ks, 4), drifted))
    features.sort(key=lambda f: (f.psi, f.ks), reverse=True)
    importances = dict(importances or {})
    if importances:  # stable: equal keys keep the order by drift
        features.sort(key=lambda f: (not f.drifted, -importances.get(f.name, -math.inf)))
    return DriftResult(total, features, judged, unreadable, histograms, importances)


Batch = tuple[list[str], np.ndarray, int]  # features, readable rows by features, unreadable


def _from_rows(rows: Iterable[object], reference: dict[str, np.ndarray]) -> Iterator[Batch]:
    names: list[str] = []
    for chunk in _chunks([], iter(rows)):
        if not names:
            first = next((row for row in chunk if isinstance(row, dict) and row), {})
            names = [n for n in first if n in reference]
        readable = [values for row in chunk if (values := _numbers(row, names)) is not None]
        matrix = np.asarray(readable, dtype=float).reshape(len(readable), len(names))
        yield names, matrix, len(chunk) - len(readable)


def _from_columns(
    batches: Iterator[tuple[dict[str, np.ndarray], int]], names: list[str]
) -> Iterator[Batch]:
    for columns, skipped in batches:
        matrix = np.column_stack([columns[name] for name in names])
        readable = np.isfinite(matrix).all(axis=1)  # NaN: missing, or not a number
        yield names, matrix[readable], skipped + int((~readable).sum())


def _numbers(row: object, names: list[str]) -> list[float] | None:
    """The row's finite values in names order, or None if it lacks one or one is not a number."""
    if not names or not isinstance(row, dict):
        return None
    values = []
    for name in names:
        value = row.get(name)
        if type(value) not in (int, float) or not math.isfinite(value):
            return None
        values.append(float(value))
    return values


def _chunks(first: list, rest: Iterator) -> Iterator[list]:
    if first:
        yield first
    while chunk := list(islice(rest, CHUNK_ROWS)):
        yield chunk


REPORT_FILE, CHART_FILE = "monitor-report.md", "monitor.png"


def report_markdown(
    env: str,
    model: str,
    result: DriftResult,
    psi: float,
    ks: float,
    window: str = "all",
    performance: str = "",
) -> str:
    """The monitor report: drift of the inputs, then (its markdown given) performance."""
    verdict = (
        f"not judged: {result.rows} rows is fewer than the minimum"
        if not result.judged
        else f"**drift** in {len(result.drifted)} feature(s)"
        if result.drifted
        else "no drift"
    )
    ranked = bool(result.importances)
    lines = [
        f"# Monitor report: {env}",
        "",
        "## Drift of collected inputs",
        "",
        f"Model `{model}`, {result.rows} collected rows against its training data: {verdict}.",
        f"Window: {window}; live requests only (mirrored copies, smoke tests and probes are left "
        "out)"
        + (f"; {result.unreadable} unreadable row(s) skipped." if result.unreadable else "."),
        f"A feature has drifted when PSI >= {psi} or KS >= {ks}."
        + (
            " Drifted features first, then by the model's permutation importance."
            if ranked
            else " The model records no feature importances: most drifted first."
        ),
        "",
        "| feature | importance | PSI | KS | drifted |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for f in result.features:
        weight = result.importances.get(f.name)
        shown = "" if weight is None else f"{weight:.4f}"
        lines.append(
            f"| {f.name} | {shown} | {f.psi:.4f} | {f.ks:.4f} | {'yes' if f.drifted else ''} |"
        )
    if performance:
        lines += ["", performance.rstrip("\n")]
    return "\n".join(lines) + "\n"


def retrain_reason(env: str, result: DriftResult, performance, report: Path):
    """The error that ends the monitor with the retrain exit code, naming drift, degraded
    performance or both; None when neither."""
    from mlops.errors import DriftDetected, PerformanceDegraded, RetrainNeeded

    reasons = []
    if result.drifted:
        names = ", ".join(f.name for f in result.drifted[:5])
        reasons.append(f"{len(result.drifted)} feature(s) drifted in {env} ({names})")
    degraded = performance.degraded if performance is not None else []
    if degraded:
        shown = ", ".join(v.describe() for v in degraded)
        reasons.append(f"performance degraded in {env} on labelled requests ({shown})")
    if not reasons:
        return None
    kind = (
        RetrainNeeded
        if len(reasons) > 1
        else DriftDetected
        if result.drifted
        else PerformanceDegraded
    )
    return kind(f"{' and '.join(reasons)}; see {report}")


def plot(result: DriftResult, path: Path, top: int = 4, performance=None) -> Path:
    """Reference vs collected proportions per decile, for the first features of the report
    (drifted, important); then, given a feedback.Performance, the gated metrics per day."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = result.features[:top]
    count = max(len(chosen), 1) + (performance is not None)
    fig, axes = plt.subplots(1, count, figsize=(4 * count, 3.5), dpi=100)
    if performance is not None:
        from mlops.feedback import plot_axis

        plot_axis(np.atleast_1d(axes)[-1], performance)
    for axis, feature in zip(np.atleast_1d(axes), chosen, strict=False):
        h = result.histograms[feature.name]
        ref = h.reference_coarse / h.reference_coarse.sum()
        cur = h.current_coarse / max(h.current_coarse.sum(), 1)
        x = np.arange(len(ref))
        axis.bar(x - 0.2, ref, width=0.4, label="training", color="#999")
        axis.bar(
            x + 0.2, cur, width=0.4, label="collected", color="#c63" if feature.drifted else "#2a7"
        )
        axis.set_title(f"{feature.name}\nPSI {feature.psi:.2f}, KS {feature.ks:.2f}", fontsize=9)
        axis.set_xlabel("training decile")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
