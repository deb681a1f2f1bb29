"""Labelled feedback: true labels for scored requests, joined with what the endpoint collected.

A labels file is a CSV with the header `request_id,label`: the request id is the one the
endpoint answered with (its x-request-id); the label is one of the task's classes
(src/model/features.py CLASSES) or, for a regressor, a number. A request of one row takes
its plain id; row N (from 0) of a request of several rows is labelled `ID#N` (`ID#0` and
`ID` name the same row, so giving both is a duplicate). A plain id for a request of several
rows is not guessed: it is counted as ambiguous and left out. Nor is a request id the endpoint
saw more than once (a client reusing its x-request-id): its labels are counted as reused.

The join keeps the live requests of the served model in the window. The served model's
metrics over the labelled rows are computed per UTC day and overall by the task's own code
(src/model/labelled.py, which calls evaluate.metrics, the function the gate reads), run as a
subprocess since src/model is a code snapshot, and judged against the gate's bounds in
environments/<env>.yml (gate.thresholds, each at_least or at_most). With fewer labelled rows
than monitor.min_labels the figures are reported, not judged. Each cohort's groups
(src/model/features.py COHORTS, scored by the evaluate step's own cohort_table) are reported
too and judged against gate.cohorts, as the gate judges them: a group below its floor, or a
gap between groups past its ceiling, is degraded performance naming the group; a group with
fewer rows of support than min_rows is reported, not judged. The labelled rows can be
written as a training table (the columns prep.load reads) for a new training data version.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlops import clock
from mlops.backends.base import TAG_DATA_ASSET, TAG_DATA_VERSION, CollectedRecord
from mlops.champion import TRAINING_ENV, parse_model_ref
from mlops.config import DEFAULT_MIN_LABELS, DEFAULT_WINDOW, Gate
from mlops.errors import MlopsError
from mlops.files import checked_output, read_text
from mlops.paths import MODEL_CODE
from mlops.state import write_text
from mlops.window import since

LABELLED = MODEL_CODE / "labelled.py"
LABEL_COLUMNS = ("request_id", "label")
ROW_MARK = "#"  # ID#N: row N of request ID
OVERALL = "overall"
TIMEOUT_S = 300
_SHOWN = 5  # ids named in a summary line


@dataclass(frozen=True)
class Contract:
    """The task's data contract, as src/model/features.py declares it."""

    features: list[str]
    target: str
    classes: list | None  # None: a regressor, whose target is any finite number


@dataclass(frozen=True)
class Label:
    value: int | float
    written: str  # the request_id cell as written, for reports
    plain: bool  # no #N: the request's only row
    where: str  # FILE line N


LabelKey = tuple[str, int]  # request id, row


@dataclass(frozen=True)
class LabelledRow:
    request_id: str
    row: int
    day: str  # UTC date of the request
    inputs: dict
    answer: dict
    label: int | float


@dataclass
class Joined:
    labels: int
    rows: list[LabelledRow] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # no such live request of the model
    ambiguous: list[str] = field(default_factory=list)  # plain id, request of several rows
    no_such_row: list[str] = field(default_factory=list)  # ID#N beyond the request's rows
    unusable: list[str] = field(default_factory=list)  # inputs not a number for every feature
    reused: list[str] = field(default_factory=list)  # an id the endpoint saw more than once

    def summary(self) -> str:
        parts = [f"{len(self.rows)} of {self.labels} label(s) matched a collected row"]
        for name, ids in (
            ("without a live request of the model in the window", self.missing),
            ("ambiguous (a request of several rows: label ID#ROW)", self.ambiguous),
            ("naming a row the request does not have", self.no_such_row),
            ("whose collected inputs are not numbers for every feature", self.unusable),
            ("naming a request id sent more than once, so which request is unclear", self.reused),
        ):
            if ids:
                more = f", …{len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
                parts.append(f"{len(ids)} {name} ({', '.join(ids[:_SHOWN])}{more})")
        return "; ".join(parts)


@dataclass(frozen=True)
class Verdict:
    metric: str
    value: float | None  # None: not measured on these labels
    bound: float
    at_most: bool  # lower is better: the bound is a ceiling

    @property
    def ok(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.bound if self.at_most else self.value >= self.bound

    def describe(self) -> str:
        sign = "<=" if self.at_most else ">="
        shown = "not measured" if self.value is None else f"{self.value:.4f}"
        return f"{self.metric} {shown} (bound {sign} {self.bound:g})"


@dataclass
class Performance:
    model: str
    window: str
    joined: Joined
    rows: dict[str, int]  # labelled rows per UTC day, and overall
    metrics: dict[str, dict[str, float]]  # per UTC day, and overall
    unmeasured: dict[str, str]  # day (or overall) -> why its metrics could not be computed
    verdicts: list[Verdict]
    min_labels: int
    # per cohort: {cohort: {group: {"rows", "support", "metrics"}}}, and why a cohort is not
    cohorts: dict[str, dict[str, dict]] = field(default_factory=dict)
    cohort_unmeasured: dict[str, str] = field(default_factory=dict)
    # gate.cohorts' bounds: each group's floor ("recall on tumour_size=small"), each gap's
    # ceiling ("tumour_size recall gap"); and what was too small to judge
    cohort_verdicts: list[Verdict] = field(default_factory=list)
    cohort_notes: list[str] = field(default_factory=list)

    @property
    def judged(self) -> bool:
        return self.rows.get(OVERALL, 0) >= self.min_labels and OVERALL in self.metrics

    @property
    def degraded(self) -> list[Verdict]:
        found = [*self.verdicts, *self.cohort_verdicts]
        return [v for v in found if v.ok is False] if self.judged else []

    def verdict(self) -> str:
        rows = self.rows.get(OVERALL, 0)
        if rows < self.min_labels:
            return f"not judged: {rows} labelled row(s) is fewer than the minimum {self.min_labels}"
        if OVERALL not in self.metrics:
            return f"not judged: {self.unmeasured.get(OVERALL, 'no metrics')}"
        if self.degraded:
            return "**degraded**: " + ", ".join(v.describe() for v in self.degraded)
        return "within the gate's bounds"


# ---- the task's code, run as a subprocess ---------------------------------------------


def _run_model_code(root: Path, *args: str, stdin: str | None = None) -> dict:
    try:
        done = subprocess.run(
            [sys.executable, str(root / LABELLED), *args],
            cwd=root / LABELLED.parent,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise MlopsError(f"{LABELLED.as_posix()} {args[0]} took over {TIMEOUT_S}s") from None
    try:
        answer = json.loads(done.stdout) if done.returncode == 0 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MlopsError(f"{LABELLED.as_posix()} {args[0]} failed ({last})")
    return answer


def contract(root: Path) -> Contract:
    """The task's features, target and classes, from features.py as data registration reads
    it (no process: the module only declares them)."""
    from mlops.data import contract as features_of

    features = features_of(root)
    classes = list(features.CLASSES) if features.CLASSES else None
    return Contract(list(features.FEATURES), str(features.TARGET), classes)


def group_metrics(root: Path, groups: dict[str, list[LabelledRow]]) -> tuple[dict, dict]:
    """Each group's metrics by the task's evaluate.metrics, and the groups it could not
    measure (e.g. one class only) with the reason."""
    payload = {
        name: {"labels": [r.label for r in rows], "answers": [r.answer for r in rows]}
        for name, rows in groups.items()
    }
    found = _run_model_code(root, "metrics", stdin=json.dumps({"groups": payload}))
    return found["metrics"], found["unmeasured"]


def cohort_metrics(
    root: Path, rows: list[LabelledRow], metrics: list[str]
) -> tuple[dict[str, dict], dict[str, str]]:
    """Each cohort's groups over the labelled rows, by the task's code; and the cohorts it
    could not split (a column the requests do not carry) with the reason."""
    payload = {
        "rows": [r.inputs for r in rows],
        "labels": [r.label for r in rows],
        "answers": [r.answer for r in rows],
        "metrics": metrics,
    }
    found = _run_model_code(root, "cohorts", stdin=json.dumps(payload))
    return found["cohorts"], found["unmeasured"]


def judge_cohorts(
    gate: Gate, cohorts: dict[str, dict], unmeasured: dict[str, str]
) -> tuple[list[Verdict], list[str]]:
    """gate.cohorts' bounds on the labelled groups: a verdict per judged group and metric and
    per gap; a note for each group too small, or cohort not measured."""
    verdicts, notes = [], []
    for cohort, rules in sorted(gate.cohorts.items()):
        if cohort not in cohorts:
            notes.append(f"{cohort}: not measured ({unmeasured.get(cohort, 'no such cohort')})")
            continue
        judged: dict[str, dict[str, float]] = {}
        for group, line in sorted(cohorts[cohort].items()):
            if line["support"] < rules.min_rows:
                notes.append(
                    f"{cohort}={group}: {line['support']} row(s) of support among {line['rows']}, "
                    f"fewer than min_rows {rules.min_rows}: not judged"
                )
                continue
            for metric, bound in sorted(rules.bounds.items()):
                value = line["metrics"].get(metric)
                lower = not gate.higher_is_better(metric)
                verdicts.append(Verdict(f"{metric} on {cohort}={group}", value, bound, lower))
            for metric in rules.max_gap:
                if line["metrics"].get(metric) is not None:
                    judged.setdefault(metric, {})[group] = line["metrics"][metric]
        for metric, ceiling in sorted(rules.max_gap.items()):
            values = judged.get(metric, {})
            if len(values) < 2:
                notes.append(f"{cohort} {metric} gap: fewer than two groups to compare")
                continue
            gap = round(max(values.values()) - min(values.values()), 6)
            verdicts.append(Verdict(f"{cohort} {metric} gap", gap, ceiling, at_most=True))
    return verdicts, notes


# ---- the labels files -----------------------------------------------------------------


def read_labels(paths: Iterable[Path], task: Contract, root: Path) -> dict[LabelKey, Label]:
    """Every label of the files, checked; the first problem is refused in one sentence
    naming the file and line, before anything is joined or written."""
    labels: dict[LabelKey, Label] = {}
    for path in paths:
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        if not path.is_file():
            raise MlopsError(f"{shown}: no such labels file")
        before = len(labels)
        text = read_text(path, shown).removeprefix("\ufeff")  # not UTF-8: names the line
        try:
            _read_one(csv.reader(io.StringIO(text, newline="")), shown, task, labels)
        except csv.Error as problem:
            raise MlopsError(f"{shown}: not a readable CSV ({problem})") from None
        if len(labels) == before:
            raise MlopsError(f"{shown}: holds no labels, only its header (or nothing)")
    return labels


def _read_one(reader, shown: str, task: Contract, labels: dict[LabelKey, Label]) -> None:
    header = next(reader, None)
    if header is None or sorted(h.strip() for h in header) != sorted(LABEL_COLUMNS):
        raise MlopsError(
            f"{shown}: the header must be {','.join(LABEL_COLUMNS)}, "
            f"not {','.join(header) if header else 'empty'}"
        )
    at_id = [h.strip() for h in header].index("request_id")
    for cells in reader:
        where = f"{shown} line {reader.line_num}"
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(LABEL_COLUMNS):
            raise MlopsError(f"{where}: expected 2 fields (request_id,label), found {len(cells)}")
        written, text = cells[at_id].strip(), cells[1 - at_id].strip()
        if not written:
            raise MlopsError(f"{where}: request_id is empty")
        request_id, row, plain = _split_row(written)
        value = _label_value(text, task, where)
        key = (request_id, row)
        if key in labels:
            raise MlopsError(
                f"{where}: request {request_id} row {row} is labelled twice "
                f"(first at {labels[key].where}); keep one label per row"
            )
        labels[key] = Label(value, written, plain, where)


def _split_row(written: str) -> tuple[str, int, bool]:
    head, mark, tail = written.rpartition(ROW_MARK)
    if mark and head and tail.isascii() and tail.isdigit():
        return head, int(tail), False
    return written, 0, True


def _label_value(text: str, task: Contract, where: str) -> int | float:
    if task.classes is not None:
        by_text = {str(c): c for c in task.classes}
        if text not in by_text:
            known = ", ".join(by_text)
            raise MlopsError(
                f"{where}: label {text!r} is not one of the classes of {task.target} ({known})"
            )
        return by_text[text]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise MlopsError(f"{where}: label {text!r} is not a finite number for {task.target}")
    return value


def label_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.csv") if p.is_file())


# ---- the join -------------------------------------------------------------------------


def wanted_ids(labels: dict[LabelKey, Label]) -> set[str]:
    return {request_id for request_id, _ in labels}


def join(
    records: Iterable[CollectedRecord], labels: dict[LabelKey, Label], features: list[str]
) -> Joined:
    """Labelled rows of the records; every label that finds no row is counted, by why. A request
    id the endpoint saw more than once (a client reusing its x-request-id) names no one request:
    its labels are refused, counted and listed, never joined to a guess."""
    joined = Joined(len(labels))
    found: set[LabelKey] = set()
    sent: dict[str, list[CollectedRecord]] = {}
    for record in records:
        sent.setdefault(record.request_id, []).append(record)
    for requests in sent.values():
        if len(requests) > 1:
            continue
        record = requests[0]
        for row in range(len(record.rows)):
            label = labels.get((record.request_id, row))
            if label is None:
                continue
            found.add((record.request_id, row))
            if label.plain and len(record.rows) > 1:
                joined.ambiguous.append(label.written)
            elif not _numbers(record.rows[row], features):
                joined.unusable.append(label.written)
            else:
                joined.rows.append(
                    LabelledRow(
                        record.request_id,
                        row,
                        f"{clock.utc(record.time):%Y-%m-%d}",  # the UTC day
                        record.rows[row],
                        record.answers[row],
                        label.value,
                    )
                )
    for key, label in labels.items():
        if key in found:
            continue
        times = len(sent.get(key[0], ()))
        target = (
            joined.missing if not times else joined.no_such_row if times == 1 else joined.reused
        )
        target.append(label.written)
    return joined


def _numbers(row: dict, features: list[str]) -> bool:
    return all(
        type(row.get(name)) in (int, float) and math.isfinite(row[name]) for name in features
    )


# ---- performance ----------------------------------------------------------------------


def judge(gate: Gate, measured: dict[str, float]) -> list[Verdict]:
    """Each gated metric against its bound, in the direction the env file gives it."""
    return [
        Verdict(metric, measured.get(metric), bound, not gate.higher_is_better(metric))
        for metric, bound in gate.thresholds.items()
    ]


def performance(
    root: Path,
    model: str,
    window: str,
    records: Iterable[CollectedRecord],
    labels: dict[LabelKey, Label],
    task: Contract,
    gate: Gate,
    min_labels: int = DEFAULT_MIN_LABELS,
) -> Performance:
    joined = join(records, labels, task.features)
    groups: dict[str, list[LabelledRow]] = {}
    for row in sorted(joined.rows, key=lambda r: r.day):
        groups.setdefault(row.day, []).append(row)
    if joined.rows:
        groups[OVERALL] = joined.rows
    measured, unmeasured = group_metrics(root, groups) if groups else ({}, {})
    rows = {name: len(members) for name, members in groups.items()}
    rows.setdefault(OVERALL, 0)
    if not joined.rows:
        unmeasured[OVERALL] = "no labelled row"
    verdicts = judge(gate, measured.get(OVERALL, {}))
    cohorts, cohorts_unmeasured = (
        cohort_metrics(root, joined.rows, list(gate.thresholds)) if joined.rows else ({}, {})
    )
    cohort_verdicts, notes = judge_cohorts(gate, cohorts, cohorts_unmeasured)
    return Performance(
        model,
        window,
        joined,
        rows,
        measured,
        unmeasured,
        verdicts,
        min_labels,
        cohorts,
        cohorts_unmeasured,
        cohort_verdicts,
        notes,
    )


def report_markdown(result: Performance) -> str:
    """The performance section of the monitor report: per day and overall, bound by bound."""
    metrics = [v.metric for v in result.verdicts]
    bounds = [f"{'<=' if v.at_most else '>='} {v.bound:g}" for v in result.verdicts]
    lines = [
        "## Performance on labelled requests",
        "",
        f"Model `{result.model}`, window {result.window}: {result.verdict()}.",
        f"{result.joined.summary()}.",
        f"Judged with at least {result.min_labels} labelled rows, against the gate's bounds.",
        "",
        "| window | rows | " + " | ".join(metrics) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in metrics) + " |",
        "| bound | | " + " | ".join(bounds) + " |",
    ]
    for name, count in result.rows.items():
        if name in result.metrics:
            cells = []
            for v in result.verdicts:
                value = result.metrics[name].get(v.metric)
                below = value is not None and not Verdict(v.metric, value, v.bound, v.at_most).ok
                cells.append(
                    "n/a" if value is None else f"**{value:.4f}**" if below else f"{value:.4f}"
                )
        else:
            cells = [f"n/a ({result.unmeasured.get(name, 'not measured')})"] + [""] * (
                len(metrics) - 1
            )
        lines.append(f"| {name} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines + _cohort_lines(result, metrics)) + "\n"


def _cohort_lines(result: Performance, metrics: list[str]) -> list[str]:
    """The per-cohort table of the report, each figure past its bound in bold."""
    if not result.cohorts and not result.cohort_unmeasured:
        return []
    failed = {v.metric for v in result.cohort_verdicts if v.ok is False}
    lines = ["", "### Per cohort", ""]
    lines += ["| cohort | group | rows | support | " + " | ".join(metrics) + " |"]
    lines += ["| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in metrics) + " |"]
    for cohort, groups in sorted(result.cohorts.items()):
        for group, line in sorted(groups.items()):
            cells = []
            for metric in metrics:
                value = line["metrics"].get(metric)
                past = f"{metric} on {cohort}={group}" in failed
                shown = "n/a" if value is None else f"{value:.4f}"
                cells.append(f"**{shown}**" if past else shown)
            lines.append(
                f"| {cohort} | {group} | {line['rows']} | {line['support']} | "
                + " | ".join(cells)
                + " |"
            )
    lines.append("")
    lines += [
        f"- {v.describe()}: {'ok' if v.ok else '**past its bound**'}"
        for v in result.cohort_verdicts
        if v.ok is not None
    ]
    lines += [f"- {note}" for note in result.cohort_notes]
    lines += [f"- {c}: not measured ({why})" for c, why in sorted(result.cohort_unmeasured.items())]
    return lines


def plot_axis(axis, result: Performance) -> None:
    """The gated metrics per day, each with its bound as a dashed line."""
    days = [name for name in result.rows if name != OVERALL and name in result.metrics]
    for index, verdict in enumerate(result.verdicts):
        colour = f"C{index}"
        values = [result.metrics[d].get(verdict.metric, math.nan) for d in days]
        axis.plot(days, values, marker="o", color=colour, label=verdict.metric)
        axis.axhline(verdict.bound, color=colour, linestyle="--", linewidth=0.8)
    state = output_of(result)
    axis.set_title(f"labelled rows: {state}\n{result.rows.get(OVERALL, 0)} rows", fontsize=9)
    axis.tick_params(axis="x", labelrotation=45, labelsize=7)
    axis.legend(fontsize=7)


# ---- the training table ---------------------------------------------------------------


def write_training_rows(rows: list[LabelledRow], task: Contract, out: Path) -> Path:
    """The labelled rows as a training table (FEATURES then TARGET, as prep.load reads it),
    written whole or not at all."""
    if not rows:
        raise MlopsError(f"no labelled row matched a collected request; {out} was not written")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([*task.features, task.target])
    for row in rows:
        writer.writerow([*(row.inputs[n] for n in task.features), row.label])
    try:
        write_text(checked_output(out), text.getvalue())
    except OSError as exc:
        raise MlopsError(f"--out {out}: cannot be written ({exc.strerror or exc})") from None
    return out


# ---- the verb, and the monitor's performance pass -------------------------------------


def labels_of_monitor(ctx, cfg, labels_file: Path | None) -> list[Path]:
    """The label files the monitor reads: --labels, then every CSV in monitor.labels."""
    paths = [labels_file] if labels_file is not None else []
    folder = cfg.monitor.labels if cfg.monitor is not None else None
    if folder:
        found = label_files(ctx.root / folder)
        if not found:
            ctx.say(f"notice: no label files in {folder} ({cfg.path.as_posix()}'s monitor.labels)")
        paths += found
    return paths


def monitored_performance(
    ctx, cfg, backend, served: str, window: str, start, labels_file: Path | None
) -> Performance | None:
    """Performance of the served model on the labels the monitor finds (None: no labels)."""
    paths = labels_of_monitor(ctx, cfg, labels_file)
    if not paths:
        return None
    task = contract(ctx.root)
    labels = read_labels(paths, task, ctx.root)
    return _performance_of(ctx, cfg, backend, served, window, start, task, labels)


def _performance_of(ctx, cfg, backend, served, window, start, task, labels) -> Performance:
    records = backend.collected_records(
        cfg.endpoint_name, model=served, since=start, request_ids=wanted_ids(labels)
    )
    min_labels = cfg.monitor.min_labels if cfg.monitor is not None else DEFAULT_MIN_LABELS
    return performance(
        ctx.root, served, window, records, labels, task, cfg.require_gate(), min_labels
    )


def output_of(result: Performance | None) -> str:
    """The monitor's `performance` step output: none (no labels), not-judged, ok, degraded."""
    if result is None:
        return "none"
    return "not-judged" if not result.judged else "degraded" if result.degraded else "ok"


def say_performance(ctx, result: Performance) -> None:
    ctx.say(f"{result.joined.summary()}")
    for name, count in result.rows.items():
        shown = result.metrics.get(name)
        gated = [v.metric for v in result.verdicts if shown and v.metric in shown]
        figures = (
            ", ".join(f"{m} {shown[m]:.4f}" for m in gated)
            if shown
            else f"not measured ({result.unmeasured.get(name, 'no metrics')})"
        )
        ctx.say(f"{name}: {count} labelled row(s): {figures}")
    for cohort, groups in sorted(result.cohorts.items()):
        for group, line in sorted(groups.items()):
            shown = ", ".join(f"{m} {v:.4f}" for m, v in sorted(line["metrics"].items()))
            ctx.say(
                f"{cohort}={group}: {line['rows']} labelled row(s), support {line['support']}"
                + (f": {shown}" if shown else "")
            )
    for note in result.cohort_notes:
        ctx.say(note)
    ctx.say(f"performance of {result.model}: {result.verdict().replace('**', '')}")


def run(ctx, env: str, labels_file: Path, window: str | None = None, out: Path | None = None):
    """`mlops feedback`: the labels checked, joined with what env's endpoint collected from
    clients of the model it serves, its metrics per day and overall against the gate's
    bounds; with out, the labelled rows as a training table."""
    cfg = ctx.config(env)
    cfg.require_gate()
    window = window or (cfg.monitor.window if cfg.monitor is not None else DEFAULT_WINDOW)
    start = since(window)
    if out is not None:
        checked_output(out)  # before any work: a device or a folder is never replaced
    task = contract(ctx.root)
    labels = read_labels([labels_file], task, ctx.root)  # refused before the endpoint is asked
    backend = ctx.backend(env)
    endpoint = backend.get_endpoint(cfg.endpoint_name)
    if endpoint is None or endpoint.live is None:
        raise MlopsError(
            f"{env} has no endpoint {cfg.endpoint_name} serving traffic, so no request to label"
        )
    served = endpoint.deployments[endpoint.live].model
    result = _performance_of(ctx, cfg, backend, served, window, start, task, labels)
    say_performance(ctx, result)
    if out is not None:
        write_training_rows(result.joined.rows, task, out)
        model = backend.get_shared_model(*parse_model_ref(served))
        tags = model.tags if model is not None else {}
        asset, version = tags.get(TAG_DATA_ASSET, "ASSET"), tags.get(TAG_DATA_VERSION, "VERSION")
        ctx.say(f"wrote {len(result.joined.rows)} labelled row(s) to {out}")
        ctx.say(
            f"next: mlops data register --env {TRAINING_ENV} --asset {asset} "
            f"--base {asset}:{version} --path {out}  "
            f"(a new training data version: {served}'s data plus these rows)"
        )
    return result
