"""Retraining that changes something, on the local backend: the committed file becomes data
version 1, labelled rows grow it into version 2, and the retrain on `latest` trains on
version 2, makes another model that says so in its lineage, and the gate judges it on
version 2's held-out rows; the promotion body shows how the two data versions differ."""

from __future__ import annotations

import csv

from helpers import MODEL_DIR, copy_repo, env_setting

from mlops import data, lifecycle
from mlops.backends.base import TAG_DATA_ASSET, TAG_DATA_VERSION
from mlops.progress import Progress
from mlops.promotion import render

MODEL = env_setting("dev", "model.name")
ASSET = env_setting("dev", "training.data.asset")


def feedback_rows(path, count: int = 80) -> None:
    """Labelled rows as feedback brings them: larger cells, all found malignant."""
    with open(MODEL_DIR / "data" / "breast_cancer.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:count]
    for row in rows:
        row["mean_area"] = str(float(row["mean_area"]) * 1.5)
        row["malignant"] = "1"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def release(ctx):
    job = lifecycle.train(ctx, "dev")
    model = lifecycle.share(ctx, "dev", lifecycle.register(ctx, "dev", job.id).ref)
    return job, model


def test_a_retrain_on_the_newest_data_version_makes_another_model(tmp_path):
    repo, home = copy_repo(tmp_path / "repo"), tmp_path / "home"
    dev = repo / "environments" / "dev.yml"
    dev.write_text(dev.read_text().replace("n_estimators: 100", "n_estimators: 20"))
    ctx = lifecycle.Context(repo, home, "local", Progress())

    first_job, first = release(ctx)
    assert (first_job.data_asset, first_job.data_version) == (ASSET, "1")
    labels = tmp_path / "labelled.csv"
    feedback_rows(labels)
    grown = data.register(ctx, "dev", ASSET, str(labels), base=f"{ASSET}:1")
    assert grown.ref == f"{ASSET}:2" and grown.tags["rows"] == "649"

    second_job, second = release(ctx)  # what retrain.yml's release does: latest, resolved once
    assert second.tags[TAG_DATA_ASSET] == ASSET and second.tags[TAG_DATA_VERSION] == "2"
    assert second.tags["data_sha256"] == grown.sha256
    assert second.artifact_sha256 != first.artifact_sha256  # new data, another model
    assert second.ref == f"{MODEL}:2"

    result = lifecycle.examine(ctx, "prod", second.ref)  # the gate judges it, on v2's rows
    assert f"registry/data/{ASSET}/2/" in result.paper  # the copy share made, as prod reads it
    comparison = data.comparison(ctx, second, first)
    body = render((repo / "environments" / "prod.yml").read_text(), result, "", comparison).body
    assert f"| data version | `{ASSET}:2` | `{ASSET}:1` |" in body
    assert "| rows | 649 | 569 (+80) |" in body
    shifted = body.split("| --- | ---: | ---: | ---: |\n")[-1].splitlines()[0]
    assert shifted.startswith("| mean_area |")
