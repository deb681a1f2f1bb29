"""`mlops monitor` with labels: performance judged beside drift, the same retrain exit, the step
outputs the monitor workflow reads, and drift rows ordered by the served model's importance.

The endpoint and registry answers are those of a prod serving MODEL (no server runs: that is
tests/e2e's part); the collected records, labels, metrics, report and chart are real."""

import csv
import hashlib
import re

import numpy as np
import pytest
from collect import JsonLinesCollector
from features import FEATURES, TARGET
from helpers import MODEL_DIR, ROOT, copy_repo, env_setting
from test_monitor import REFERENCE, sample

from mlops import lifecycle
from mlops.backends.base import IMPORTANCE_PREFIX, TAG_DATA, Deployment, Endpoint, ModelVersion
from mlops.backends.local.backend import LocalBackend
from mlops.context import Context
from mlops.errors import DriftDetected, PerformanceDegraded, RetrainNeeded
from mlops.monitor import measure, report_markdown

DATA = MODEL_DIR / "data" / "breast_cancer.csv"
ENDPOINT = env_setting("prod", "endpoint.name")
MODEL = f"{env_setting('prod', 'model.name')}:3"
with open(DATA, newline="") as _handle:
    TABLE = list(csv.DictReader(_handle))
IMPORTANCES = {"worst_area": 0.08, "mean_texture": 0.02, "mean_radius": 0.05}


class ServingProd(LocalBackend):
    """The local backend as prod serving MODEL, trained on the shipped data."""

    def get_endpoint(self, name):
        return Endpoint(name, "", {"blue": 100}, {"blue": Deployment("blue", MODEL, "", "ok")})

    def get_shared_model(self, name, version):
        tags = {TAG_DATA: hashlib.sha256(DATA.read_bytes()).hexdigest()}
        tags |= {f"{IMPORTANCE_PREFIX}{k}": str(v) for k, v in IMPORTANCES.items()}
        return ModelVersion(name, version, tags, "", "")


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "outputs"))
    return Context(ROOT, tmp_path, backend_factory=lambda cfg: ServingProd(cfg, ROOT, tmp_path))


def outputs(ctx) -> dict[str, str]:
    lines = (ctx.home / "outputs").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def serve(ctx, rows: int, missed: float = 0.0, scale: float = 1.0, small_missed: int = 0) -> str:
    """Collect `rows` single-row requests of the shipped table (times `scale`) whose answers
    miss the given share of malignant rows (and every other malignant row of a small tumour,
    up to small_missed of them); return their true labels as a CSV file."""
    writer = JsonLinesCollector(ctx.home / "prod" / "collected", f"{ENDPOINT}/blue", MODEL)
    malignant = small = 0
    lines = ["request_id,label"]
    for i, record in enumerate(TABLE[:rows]):
        label = int(record[TARGET])
        malignant += label
        miss = label == 1 and malignant % 10 < missed * 10
        if label == 1 and float(record["mean_radius"]) < 14:
            small += 1
            miss = miss or (small % 2 == 0 and small // 2 <= small_missed)
        probability = 0.2 if miss else 0.9 if label else 0.1
        values = [[float(record[name]) * scale for name in FEATURES]]
        writer.record(
            f"r{i}",
            values,
            {"predictions": [int(probability >= 0.5)], "probabilities": [probability]},
        )
        lines.append(f"r{i},{label}")
    path = ctx.home / "labels.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_healthy_labelled_traffic_is_judged_and_reported_with_drift(ctx):
    labels = serve(ctx, 300)
    result = lifecycle.monitor(ctx, "prod", "all", labels)
    assert result.drifted == []
    report = (ctx.home / "prod" / "monitor" / "monitor-report.md").read_text()
    assert "## Drift of collected inputs" in report and "no drift" in report
    assert "## Performance on labelled requests" in report
    assert "within the gate's bounds" in report and "300 of 300 label(s) matched" in report
    chart = ctx.home / "prod" / "monitor" / "monitor.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outputs(ctx) | {"report": ""} == {
        "drift": "false",
        "performance": "ok",
        "retrain": "false",
        "reason": "none",
        "report": "",
    }


def test_recall_below_its_floor_starts_retraining_with_exit_5(ctx):
    labels = serve(ctx, 300, missed=0.3)
    emitted = []
    ctx.event_sinks.append(emitted.append)
    with pytest.raises(PerformanceDegraded) as degraded:
        lifecycle.monitor(ctx, "prod", "all", labels)
    (event,) = [e for e in emitted if e.kind == "performance.degraded"]
    assert event.model == MODEL and "recall" in event.details["metrics"]
    message = str(degraded.value)
    assert degraded.value.exit_code == 5 and "\n" not in message
    assert re.search(
        r"performance degraded in prod on labelled requests \(recall 0\.[5-8]\d+ \(bound >= 0\.9\)",
        message,
    )
    assert outputs(ctx)["retrain"] == "true" and outputs(ctx)["reason"] == "performance"
    assert outputs(ctx)["performance"] == "degraded" and outputs(ctx)["drift"] == "false"
    report = (ctx.home / "prod" / "monitor" / "monitor-report.md").read_text()
    assert "**degraded**: recall" in report


def test_a_cohort_group_past_its_bound_is_a_retrain_reason_naming_the_group(ctx):
    """Overall within the gate's bounds; small tumours' recall below its cohort floor."""
    labels = serve(ctx, 300, small_missed=8)
    with pytest.raises(PerformanceDegraded) as degraded:
        lifecycle.monitor(ctx, "prod", "all", labels)
    message = str(degraded.value)
    assert "recall on tumour_size=small 0." in message and "(bound >= 0.75)" in message
    assert "(recall 0." not in message  # the overall recall is within its floor
    assert outputs(ctx)["performance"] == "degraded" and outputs(ctx)["reason"] == "performance"
    report = (ctx.home / "prod" / "monitor" / "monitor-report.md").read_text()
    assert "### Per cohort" in report
    (small,) = [line for line in report.splitlines() if line.startswith("| tumour_size | small |")]
    assert "**0." in small  # its recall, past the bound, in bold
    assert "recall on tumour_size=small" in report and "**past its bound**" in report


def test_drift_and_degraded_performance_are_both_named(ctx):
    labels = serve(ctx, 300, missed=0.3, scale=1.5)
    with pytest.raises(RetrainNeeded) as both:
        lifecycle.monitor(ctx, "prod", "all", labels)
    assert type(both.value) is RetrainNeeded and both.value.exit_code == 5
    assert "feature(s) drifted in prod" in str(both.value)
    assert "and performance degraded in prod" in str(both.value)
    assert outputs(ctx)["reason"] == "drift and performance"


def test_too_few_labels_are_reported_not_judged_and_drift_alone_decides(ctx):
    labels = serve(ctx, 300, missed=0.5)
    kept = labels.read_text().splitlines()[:51]  # header and 50 labels, below min_labels
    labels.write_text("\n".join(kept) + "\n")
    lifecycle.monitor(ctx, "prod", "all", labels)
    assert outputs(ctx)["performance"] == "not-judged" and outputs(ctx)["retrain"] == "false"
    report = (ctx.home / "prod" / "monitor" / "monitor-report.md").read_text()
    assert "not judged: 50 labelled row(s) is fewer than the minimum 100" in report


def test_without_labels_the_monitor_is_todays_drift_monitor(ctx):
    serve(ctx, 300, scale=1.5)
    with pytest.raises(DriftDetected, match="feature\\(s\\) drifted in prod"):
        lifecycle.monitor(ctx, "prod", "all")
    assert outputs(ctx)["performance"] == "none" and outputs(ctx)["reason"] == "drift"
    report = (ctx.home / "prod" / "monitor" / "monitor-report.md").read_text()
    assert "Performance" not in report


def test_the_label_files_of_monitor_labels_are_judged_without_a_flag(tmp_path, monkeypatch):
    repo = copy_repo(tmp_path / "repo")
    prod = repo / "environments" / "prod.yml"
    prod.write_text(
        prod.read_text().replace("min_labels: 100", "min_labels: 100\n  labels: labels")
    )
    factory = lambda cfg: ServingProd(cfg, repo, tmp_path)  # noqa: E731
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "outputs"))
    ctx = Context(repo, tmp_path, backend_factory=factory)
    (repo / "labels").mkdir()
    lifecycle.monitor(ctx, "prod", "all")  # an empty folder: a notice, nothing judged
    assert outputs(ctx)["performance"] == "none"
    lines = serve(ctx, 300, missed=0.3).read_text().splitlines()
    (repo / "labels" / "monday.csv").write_text("\n".join(lines[:151]) + "\n")
    (repo / "labels" / "tuesday.csv").write_text("\n".join(lines[:1] + lines[151:]) + "\n")
    with pytest.raises(PerformanceDegraded, match="recall"):
        lifecycle.monitor(ctx, "prod", "all")
    report = (tmp_path / "prod" / "monitor" / "monitor-report.md").read_text()
    assert "300 of 300 label(s) matched" in report


def test_a_bad_labels_file_stops_the_monitor_in_one_sentence(ctx):
    serve(ctx, 10)
    bad = ctx.home / "bad.csv"
    bad.write_text("request_id,label\nr1,malignant\n")
    with pytest.raises(Exception, match="bad.csv line 2: label 'malignant' is not one of"):
        lifecycle.monitor(ctx, "prod", "all", bad)


# ---- drift ordered by importance ------------------------------------------------------


def test_drifted_features_come_first_by_importance_then_the_rest_by_importance():
    shift = {"mean_texture": 1.3, "worst_area": 1.4, "mean_smoothness": 0.8}
    result = measure(REFERENCE, sample(2000, 1, shift), 0.2, 0.2, 200, IMPORTANCES)
    drifted = [f.name for f in result.features if f.drifted]
    assert set(drifted) >= {"mean_texture", "worst_area"}
    assert [f.name for f in result.features[:2]] == ["worst_area", "mean_texture"]
    assert result.features[: len(drifted)] == result.drifted
    ranked = [f.name for f in result.features if f.name in IMPORTANCES and not f.drifted]
    assert ranked == ["mean_radius"]  # the first of the undrifted ones
    assert result.features[len(drifted)].name == "mean_radius"
    report = report_markdown("prod", MODEL, result, 0.2, 0.2)
    assert "| worst_area | 0.0800 |" in report and "| mean_radius | 0.0500 |" in report
    assert "then by the model's permutation importance" in report


def test_a_model_without_importances_keeps_the_order_by_drift():
    rows = list(sample(2000, 2, {"mean_texture": 1.3}))
    plain = measure(REFERENCE, rows, 0.2, 0.2, 200)
    empty = measure(REFERENCE, rows, 0.2, 0.2, 200, {})
    assert [f.name for f in plain.features] == [f.name for f in empty.features]
    psis = [f.psi for f in plain.features]
    assert psis == sorted(psis, reverse=True)
    assert "| mean_texture |  |" in report_markdown("prod", MODEL, plain, 0.2, 0.2)
    assert np.isfinite(psis).all()
