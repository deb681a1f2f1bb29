"""Labelled feedback: the labels file refused in one sentence when it is wrong, joined with the
requests the local collector wrote (src/model/collect.py), measured per day by the task's own
metrics and judged against the gate's bounds in both directions."""

import csv
import os
import stat
from datetime import UTC, datetime, timedelta

import numpy as np
import prep
import pytest
from collect import JsonLinesCollector
from evaluate import metrics
from features import FEATURES, TARGET
from helpers import MODEL_DIR, ROOT, copy_repo, env_setting, run_mlops

from mlops import config, feedback
from mlops.backends.local.backend import LocalBackend
from mlops.config import Gate
from mlops.errors import MlopsError

ENDPOINT = env_setting("prod", "endpoint.name")
MODEL = "m:2"
with open(MODEL_DIR / "data" / "breast_cancer.csv", newline="") as _handle:
    TABLE = list(csv.DictReader(_handle))
TASK = feedback.contract(ROOT)


def row(i: int) -> list[float]:
    return [float(TABLE[i][name]) for name in FEATURES]


def truth(i: int) -> int:
    return int(TABLE[i][TARGET])


def answer(probabilities: list[float]) -> dict:
    return {
        "predictions": [int(p >= 0.5) for p in probabilities],
        "probabilities": probabilities,
    }


def backend(home) -> LocalBackend:
    return LocalBackend(config.load("prod", ROOT), ROOT, home)


def collector(home, model: str = MODEL, deployment: str = "blue") -> JsonLinesCollector:
    return JsonLinesCollector(home / "prod" / "collected", f"{ENDPOINT}/{deployment}", model)


def labels_file(tmp_path, text: str, name: str = "labels.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- the labels file ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id,label\nr1,1\n", "the header must be request_id,label, not id,label"),
        ("", "the header must be request_id,label, not empty"),
        ("request_id,label\n", "holds no labels"),
        ("request_id,label\nr1,1\nr2,2\n", "line 3: label '2' is not one of the classes"),
        ("request_id,label\nr1,yes\n", "line 2: label 'yes' is not one of the classes"),
        ("request_id,label\nr1,1.0\n", "label '1.0' is not one of the classes of malignant"),
        ("request_id,label\nr1,1,extra\n", "line 2: expected 2 fields (request_id,label), found 3"),
        ("request_id,label\n,1\n", "line 2: request_id is empty"),
        ("request_id,label\nr1,1\nr2,0\nr1,0\n", "line 4: request r1 row 0 is labelled twice"),
        ("request_id,label\nr1,1\nr1#0,1\n", "line 3: request r1 row 0 is labelled twice"),
        ("request_id,label\nr7#2,1\nr7#2,0\n", "line 3: request r7 row 2 is labelled twice"),
    ],
)
def test_a_bad_labels_file_is_refused_in_one_sentence_naming_the_line(tmp_path, text, expected):
    path = labels_file(tmp_path, text)
    with pytest.raises(MlopsError) as refusal:
        feedback.read_labels([path], TASK, tmp_path)
    message = str(refusal.value)
    assert message.startswith("labels.csv") and expected in message and "\n" not in message


def test_a_missing_or_binary_labels_file_is_refused(tmp_path):
    with pytest.raises(MlopsError, match="no such labels file"):
        feedback.read_labels([tmp_path / "none.csv"], TASK, tmp_path)
    binary = tmp_path / "labels.csv"
    binary.write_bytes(b"request_id,label\n\xff\xfe,1\n")
    with pytest.raises(MlopsError, match=r"labels.csv line 2: byte 0xff is not UTF-8"):
        feedback.read_labels([binary], TASK, tmp_path)


def test_a_duplicate_across_two_files_names_both(tmp_path):
    first = labels_file(tmp_path, "request_id,label\nr1,1\n", "a.csv")
    second = labels_file(tmp_path, "label,request_id\n0,r1\n", "b.csv")  # columns in any order
    with pytest.raises(MlopsError, match=r"b.csv line 2: .* \(first at a.csv line 2\)"):
        feedback.read_labels([first, second], TASK, tmp_path)


def test_the_verb_refuses_a_bad_file_with_exit_2_and_writes_nothing(tmp_path):
    repo, home = copy_repo(tmp_path / "repo"), tmp_path / "home"
    bad = labels_file(tmp_path, "request_id,label\nr1,1\nr1,0\n")
    out = tmp_path / "feedback.csv"
    done = run_mlops(
        repo, home, "feedback", "--env", "prod", "--labels", str(bad), "--out", str(out),
        check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "line 3: request r1 row 0 is labelled twice" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


# ---- the join -------------------------------------------------------------------------


def test_labels_join_rows_by_request_id_and_row_and_every_miss_is_counted(tmp_path):
    writer = collector(tmp_path)
    writer.record("one", [row(0)], answer([0.9]))
    writer.record("three", [row(1), row(2), row(3)], answer([0.1, 0.8, 0.3]))
    writer.record("copy", [row(4)], answer([0.9]), traffic="mirror")
    collector(tmp_path, model="m:1").record("older", [row(5)], answer([0.9]))
    with open(
        tmp_path / "prod" / "collected" / f"inference-{datetime.now(UTC):%Y%m%d}.jsonl", "a"
    ) as f:
        f.write('{"request_id":"torn","inp\n')  # fmt: skip
    path = labels_file(
        tmp_path,
        "request_id,label\none,1\nthree#1,0\nthree#2,1\nthree,1\nthree#7,0\n"
        "copy,1\nolder,0\ntorn,1\nnever,0\n",
    )
    labels = feedback.read_labels([path], TASK, tmp_path)
    records = backend(tmp_path).collected_records(
        ENDPOINT, model=MODEL, request_ids=feedback.wanted_ids(labels)
    )
    joined = feedback.join(records, labels, TASK.features)
    assert [(r.request_id, r.row, r.label) for r in joined.rows] == [
        ("one", 0, 1),
        ("three", 1, 0),
        ("three", 2, 1),
    ]
    by_key = {(r.request_id, r.row): r for r in joined.rows}
    assert by_key[("three", 1)].answer == {"predictions": 1, "probabilities": 0.8}
    assert by_key[("three", 2)].inputs == dict(zip(FEATURES, row(3), strict=True))
    assert joined.ambiguous == ["three"] and joined.no_such_row == ["three#7"]
    assert sorted(joined.missing) == ["copy", "never", "older", "torn"]
    summary = joined.summary()
    assert summary.startswith("3 of 9 label(s) matched a collected row")
    assert "4 without a live request of the model in the window" in summary


def test_picking_labelled_requests_reads_the_same_records_as_reading_all(tmp_path):
    writer = collector(tmp_path)
    for i in range(50):
        writer.record(f'r"{i}\u00e9', [row(i)], answer([0.5]))  # ids the collector escapes
    wanted = {'r"7\u00e9', 'r"42\u00e9'}
    picked = list(backend(tmp_path).collected_records(ENDPOINT, request_ids=wanted))
    everything = list(backend(tmp_path).collected_records(ENDPOINT))
    assert len(everything) == 50
    assert picked == [r for r in everything if r.request_id in wanted] and len(picked) == 2


def test_labels_for_a_request_id_seen_twice_are_refused_counted_and_listed(tmp_path):
    """A client that reuses its x-request-id makes one id name two requests: the label could
    belong to either, so it is joined to neither."""
    writer = collector(tmp_path)
    writer.record("reused", [row(0)], answer([0.9]))
    writer.record("reused", [row(1)], answer([0.1]))  # same id, another request
    writer.record("kept", [row(2)], answer([0.8]))
    writer.record("kept", [row(2)], answer([0.8]), traffic="mirror")  # the router's copy
    writer.record("twice", [row(3), row(4)], answer([0.2, 0.7]))
    collector(tmp_path, deployment="green").record("twice", [row(3)], answer([0.2]))
    path = labels_file(tmp_path, "request_id,label\nreused,1\nkept,1\ntwice#1,0\n")
    labels = feedback.read_labels([path], TASK, tmp_path)
    records = backend(tmp_path).collected_records(
        ENDPOINT, model=MODEL, request_ids=feedback.wanted_ids(labels)
    )
    joined = feedback.join(records, labels, TASK.features)
    assert [(r.request_id, r.label) for r in joined.rows] == [("kept", 1)]
    assert joined.reused == ["reused", "twice#1"]
    assert joined.summary() == (
        "1 of 3 label(s) matched a collected row; 2 naming a request id sent more than once, "
        "so which request is unclear (reused, twice#1)"
    )


# ---- windows and metrics --------------------------------------------------------------


@pytest.mark.e2e  # the task's metrics come from a process of the model code (labelled.py)
def test_metrics_per_day_and_overall_are_the_tasks_own(tmp_path, time_machine):
    """Requests an hour either side of a year's end: two UTC days, two collection files."""
    year_end = datetime(datetime.now(UTC).year, 12, 31, 23, 0, tzinfo=UTC)
    last_day, first_day = f"{year_end:%Y-%m-%d}", f"{year_end + timedelta(hours=1):%Y-%m-%d}"
    writer, rng = collector(tmp_path), np.random.default_rng(3)
    sent = {last_day: [], first_day: []}
    for i in range(120):
        moment = year_end + timedelta(minutes=i)
        time_machine.move_to(moment, tick=False)
        probability = float(np.clip(truth(i) * 0.7 + rng.normal(0.15, 0.2), 0, 1))
        writer.record(f"r{i}", [row(i)], answer([probability]))
        sent[f"{moment:%Y-%m-%d}"].append((truth(i), probability))
    assert len(list((tmp_path / "prod" / "collected").glob("inference-*.jsonl"))) == 2
    path = labels_file(
        tmp_path, "request_id,label\n" + "".join(f"r{i},{truth(i)}\n" for i in range(120))
    )
    labels = feedback.read_labels([path], TASK, tmp_path)
    gate = Gate({"recall": 0.9, "roc_auc": 0.95}, 0.01)
    result = feedback.performance(
        ROOT, MODEL, "all", backend(tmp_path).collected_records(ENDPOINT), labels, TASK, gate, 100
    )
    assert result.rows == {last_day: 60, first_day: 60, "overall": 120}
    for day, pairs in sent.items():
        y, p = np.array([t for t, _ in pairs]), np.array([q for _, q in pairs])
        assert result.metrics[day] == metrics(y, p)
    everything = [pair for pairs in sent.values() for pair in pairs]
    expected = metrics(np.array([t for t, _ in everything]), np.array([q for _, q in everything]))
    assert result.metrics["overall"] == expected
    assert result.judged
    assert [v.metric for v in result.degraded] == [
        m for m in ("recall", "roc_auc") if expected[m] < gate.thresholds[m]
    ]
    report = feedback.report_markdown(result)
    assert f"| {last_day} | 60 |" in report and "| overall | 120 |" in report


@pytest.mark.e2e  # the task's metrics come from a process of the model code (labelled.py)
def test_a_metric_undefined_on_one_class_is_reported_unmeasured_not_failed(tmp_path):
    writer = collector(tmp_path)
    positives = [i for i in range(len(TABLE)) if truth(i) == 1][:5]
    for i in positives:
        writer.record(f"r{i}", [row(i)], answer([0.9]))
    path = labels_file(tmp_path, "request_id,label\n" + "".join(f"r{i},1\n" for i in positives))
    labels = feedback.read_labels([path], TASK, tmp_path)
    result = feedback.performance(
        ROOT, MODEL, "all", backend(tmp_path).collected_records(ENDPOINT), labels, TASK,
        Gate({"roc_auc": 0.95}, 0.01), 1,
    )  # fmt: skip
    assert result.unmeasured == {day: "roc_auc undefined on these labels" for day in result.rows}
    assert "roc_auc" not in result.metrics["overall"] and result.metrics["overall"]["recall"] == 1
    (verdict,) = result.verdicts
    assert verdict.ok is None and result.judged and result.degraded == []
    assert "n/a" in feedback.report_markdown(result)


# ---- the verdict ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measured", "failing"),
    [
        ({"recall": 0.95, "rmse": 0.30}, []),
        ({"recall": 0.85, "rmse": 0.30}, ["recall"]),  # below a floor
        ({"recall": 0.95, "rmse": 0.60}, ["rmse"]),  # above a ceiling
        ({"recall": 0.90, "rmse": 0.50}, []),  # on the bound passes, either way
        ({"rmse": 0.60}, ["rmse"]),  # recall not measured: reported, not failed
    ],
)
def test_the_verdict_follows_each_bounds_direction(measured, failing):
    gate = Gate({"recall": 0.9, "rmse": 0.5}, 0.01, frozenset({"rmse"}))
    verdicts = feedback.judge(gate, measured)
    assert [v.metric for v in verdicts if v.ok is False] == failing
    if "recall" not in measured:
        assert verdicts[0].ok is None and "not measured" in verdicts[0].describe()


def test_too_few_labelled_rows_are_reported_not_judged():
    gate = Gate({"recall": 0.9}, 0.01)
    result = feedback.Performance(
        MODEL, "7d", feedback.Joined(10), {"overall": 10}, {"overall": {"recall": 0.2}}, {},
        feedback.judge(gate, {"recall": 0.2}), min_labels=50,
    )  # fmt: skip
    assert not result.judged and result.degraded == []
    assert (
        result.verdict() == ("not judged: 10 labelled row(s) is fewer than the minimum 50")
        and feedback.output_of(result) == "not-judged"
    )


# ---- the training table ---------------------------------------------------------------


def test_the_labelled_rows_become_a_table_prep_loads(tmp_path):
    writer = collector(tmp_path)
    for i in range(6):
        writer.record(f"r{i}", [row(i), row(i + 10)], answer([0.2, 0.7]))
    path = labels_file(
        tmp_path, "request_id,label\n" + "".join(f"r{i}#1,{truth(i + 10)}\n" for i in range(6))
    )
    labels = feedback.read_labels([path], TASK, tmp_path)
    joined = feedback.join(backend(tmp_path).collected_records(ENDPOINT), labels, TASK.features)
    out = feedback.write_training_rows(joined.rows, TASK, tmp_path / "new" / "feedback.csv")
    frame = prep.load(out)
    assert len(frame) == 6 and list(frame.columns) == [*FEATURES, TARGET]
    assert frame[TARGET].tolist() == [truth(i + 10) for i in range(6)]
    assert np.allclose(frame[list(FEATURES)].to_numpy(), [row(i + 10) for i in range(6)])
    with pytest.raises(MlopsError, match="no labelled row matched"):
        feedback.write_training_rows([], TASK, tmp_path / "empty.csv")
    assert not (tmp_path / "empty.csv").exists()


def test_the_table_is_never_written_over_a_device_a_pipe_or_a_folder(tmp_path):
    """`--out /dev/full` as root replaced the device with a regular file: the table is written
    by rename, which puts a regular file in place of whatever the path named."""
    writer = collector(tmp_path)
    writer.record("r0", [row(0)], answer([0.2]))
    labels = feedback.read_labels(
        [labels_file(tmp_path, "request_id,label\nr0,0\n")], TASK, tmp_path
    )
    joined = feedback.join(backend(tmp_path).collected_records(ENDPOINT), labels, TASK.features)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    (tmp_path / "folder").mkdir()
    for target in (pipe, tmp_path / "folder"):
        with pytest.raises(MlopsError, match=f"--out {target} is "):
            feedback.write_training_rows(joined.rows, TASK, target)
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode) and (tmp_path / "folder").is_dir()


def test_the_verb_refuses_an_out_that_is_no_file_before_any_work(tmp_path):
    repo, home = copy_repo(tmp_path / "repo"), tmp_path / "home"
    good = labels_file(tmp_path, "request_id,label\nr1,1\n")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    done = run_mlops(
        repo, home, "feedback", "--env", "prod", "--labels", str(good), "--out", str(pipe),
        check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"error: --out {pipe} is not a regular file (a device, pipe or socket); "
        "name a regular file or a new path"
    )
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
