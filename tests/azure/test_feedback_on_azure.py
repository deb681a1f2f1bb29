"""Labelled feedback on Azure: the data collector's model_inputs and model_outputs lines, tied by
their correlation id, joined with labels; degraded performance ends the monitor with exit 5.

The lines follow the documented layout (Azure ML docs, how-to-collect-production-data: blob
path .../<endpoint>/<deployment>/<collection>/YYYY/MM/DD/HH/<instance>.jsonl; `data`,
`correlationid`, `time` per line); `data` is a DataFrame as the collector SDK sends it,
`to_json(orient="records")` (azureml-ai-monitoring 1.0.0, payload/logdata.py)."""

import csv
import json
from datetime import UTC, datetime

import pytest
from fake_azure import CI_PERSONA, Identity, collector_blob
from features import FEATURES, TARGET
from harness import release_to_registry
from helpers import ROOT, env_setting

from mlops import feedback, lifecycle
from mlops.errors import PerformanceDegraded

DATA = ROOT / "src" / "model" / "data" / "breast_cancer.csv"
PROD = env_setting("prod", "endpoint.name")
SENT = datetime.now(UTC)  # when the collector got this module's requests


@pytest.fixture(autouse=True)
def blob_reader(fake):
    """Feedback is about the join, not access (test_access.py's question)."""
    fake.grants[Identity(CI_PERSONA, "prod")] = [("Storage Blob Data Reader", "storage")]


@pytest.fixture
def table():
    with open(DATA, newline="") as handle:
        return list(csv.DictReader(handle))


def collect(fake, deployment: str, collection: str, lines: list[dict]) -> None:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    blob = collector_blob(PROD, deployment, collection, SENT, "instance-1.jsonl")
    fake.blobs[blob] = fake.blobs.get(blob, b"") + text.encode()


def envelope(collection: str, correlation: str, data: list[dict]) -> dict:
    return {
        "specversion": "1.0",
        "type": f"azureml.inference.{collection}",
        "time": f"{SENT:%Y-%m-%dT%H:%M:%SZ}",
        "data": data,
        "correlationid": correlation,
        "xrequestid": correlation,
    }


def serve(fake, table, rows: int, missed_every: int = 0, merged: bool = False) -> list[str]:
    """One request of two rows per pair of table rows; its answers miss every n-th malignant
    row. Returns the labels CSV lines (ID#ROW,label).

    merged: each row names its request in a correlationid column (src/model/collect.py), and
    every two requests land in one line under the first one's id, as the data collector
    batches requests that arrive close together (Learn how-to-collect-production-data, "Data
    collector batching")."""
    labels, malignant, pending = ["request_id,label"], 0, []
    for start in range(0, rows, 2):
        pair = table[start : start + 2]
        inputs = [{name: float(r[name]) for name in FEATURES} for r in pair]
        answers = []
        for offset, record in enumerate(pair):
            label = int(record[TARGET])
            malignant += label
            miss = label and missed_every and malignant % missed_every == 0
            probability = 0.2 if miss else 0.9 if label else 0.1
            answers.append({"predictions": int(probability >= 0.5), "probabilities": probability})
            labels.append(f"q{start}#{offset},{label}")
        if not merged:
            collect(fake, "blue", "model_inputs", [envelope("model_inputs", f"q{start}", inputs)])
            collect(
                fake, "blue", "model_outputs", [envelope("model_outputs", f"q{start}", answers)]
            )
            continue
        pending.append((f"q{start}", inputs, answers))
        if len(pending) == 2 or start + 2 >= rows:
            first = pending[0][0]
            for collection, at in (("model_inputs", 1), ("model_outputs", 2)):
                data = [{"correlationid": p[0], **row} for p in pending for row in p[at]]
                collect(fake, "blue", collection, [envelope(collection, first, data)])
            pending = []
    return labels


def test_labels_join_inputs_and_outputs_by_correlation_id(ctx, fake, table, tmp_path):
    shared = release_to_registry(ctx)
    lifecycle.deploy(ctx, "prod", shared.ref)
    labels = serve(fake, table, 40)
    # inputs whose outputs were never collected, and a line the collector tore
    collect(fake, "blue", "model_inputs", [envelope("model_inputs", "lonely", [{"x": 1}])])
    fake.blobs[collector_blob(PROD, "blue", "model_outputs", SENT, "instance-2.jsonl")] = (
        b'{"data": [\n'
    )
    path = tmp_path / "labels.csv"
    path.write_text("\n".join([*labels, "lonely,1", "q0#5,1"]) + "\n")
    out = tmp_path / "feedback.csv"
    result = feedback.run(ctx, "prod", path, "all", out)
    assert result.rows["overall"] == 40 and result.judged is False  # 40 < min_labels
    assert result.joined.missing == ["lonely"] and result.joined.no_such_row == ["q0#5"]
    assert result.metrics["overall"]["recall"] == 1.0
    with open(out, newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [int(r[TARGET]) for r in written] == [int(r[TARGET]) for r in table[:40]]


def test_degraded_recall_on_azure_starts_retraining(ctx, fake, table, tmp_path):
    shared = release_to_registry(ctx)
    lifecycle.deploy(ctx, "prod", shared.ref)
    labels = serve(fake, table, 300, missed_every=3)
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(labels) + "\n")
    with pytest.raises(PerformanceDegraded, match="performance degraded in prod .*recall 0\\.6"):
        lifecycle.monitor(ctx, "prod", "all", path)


def test_requests_the_collector_merged_into_one_line_keep_their_own_labels(
    ctx, fake, table, tmp_path
):
    shared = release_to_registry(ctx)
    lifecycle.deploy(ctx, "prod", shared.ref)
    labels = serve(fake, table, 40, merged=True)
    lines = b"".join(v for k, v in fake.blobs.items() if "/model_inputs/" in k).splitlines()
    assert len(lines) == 10  # twenty requests, two to a line
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(labels) + "\n")
    result = feedback.run(ctx, "prod", path, "all", tmp_path / "feedback.csv")
    assert result.rows["overall"] == 40  # every request found, not only each line's first
    assert result.joined.missing == [] and result.joined.no_such_row == []
