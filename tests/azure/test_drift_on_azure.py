"""`mlops monitor` on Azure: the data collector's blobs against the served model's training data."""

import csv
import hashlib
import json

import pytest
from fake_azure import CI_PERSONA, Identity
from harness import release_to_registry
from helpers import ROOT, env_setting

from mlops import lifecycle
from mlops.errors import DriftDetected

DATA = ROOT / "src" / "model" / "data" / "breast_cancer.csv"
BLOBS = (
    f"azureml-blobstore/modelDataCollector/{env_setting('prod', 'endpoint.name')}"
    "/blue/model_inputs/2026/11/21"
)


@pytest.fixture(autouse=True)
def blob_reader(fake):
    """These tests are about drift, not access: the monitor may read prod's blobs here.
    Whether the access matrix grants that is test_access.py's question."""
    fake.grants[Identity(CI_PERSONA, "prod")] = [("Storage Blob Data Reader", "storage")]


@pytest.fixture
def serving_prod(ctx, fake):
    shared = release_to_registry(ctx)
    lifecycle.deploy(ctx, "prod", shared.ref)
    with open(DATA, newline="") as handle:
        return [
            {k: float(v) for k, v in row.items() if k != "malignant"}
            for row in csv.DictReader(handle)
        ]


def collect(fake, hour: str, rows: list[dict]) -> None:
    lines = [
        json.dumps({"type": "azureml.inference.model_inputs", "data": rows[i : i + 5]})
        for i in range(0, len(rows), 5)
    ]
    fake.blobs[f"{BLOBS}/{hour}/part.jsonl"] = ("\n".join(lines) + "\n").encode()


def test_training_like_traffic_is_no_drift(ctx, fake, serving_prod):
    collect(fake, "10", serving_prod)
    result = lifecycle.monitor(ctx, "prod")
    assert result.rows == len(serving_prod) and result.drifted == []


def test_shifted_traffic_is_drift(ctx, fake, serving_prod):
    collect(fake, "10", serving_prod)
    collect(
        fake, "11", [{**row, "mean_texture": row["mean_texture"] * 1.6} for row in serving_prod]
    )
    with pytest.raises(DriftDetected, match="drifted in prod \\(mean_texture"):
        lifecycle.monitor(ctx, "prod")
    assert (ctx.home / "prod" / "monitor" / "monitor.png").is_file()


def test_a_model_trained_on_other_data_is_not_monitored_against_this_data(ctx, fake):
    shared = release_to_registry(ctx)
    # as if trained on another file: the registry copy names other data
    tags = fake.resource(
        f"/registries/{env_setting('dev', 'azure.registry')}/models/{shared.name}/versions/{shared.version}"
    )
    tags["properties"]["tags"]["data_sha256"] = hashlib.sha256(b"other data").hexdigest()
    lifecycle.deploy(ctx, "prod", shared.ref)
    with pytest.raises(Exception, match="data_sha256 differs"):
        lifecycle.monitor(ctx, "prod")
