"""`mlops monitor` on Azure: the data collector's blobs against the served model's training data."""

import csv
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from fake_azure import CI_PERSONA, Identity, collector_blob
from harness import release_to_registry
from helpers import ROOT, env_setting

from mlops import lifecycle
from mlops.errors import DriftDetected

DATA = ROOT / "src" / "model" / "data" / "breast_cancer.csv"
PROD = env_setting("prod", "endpoint.name")


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


def collect(fake, hours_ago: int, rows: list[dict]) -> None:
    """The rows as the collector writes them, in the hour folder of hours_ago (UTC)."""
    lines = [
        json.dumps({"type": "azureml.inference.model_inputs", "data": rows[i : i + 5]})
        for i in range(0, len(rows), 5)
    ]
    hour = datetime.now(UTC) - timedelta(hours=hours_ago)
    fake.blobs[collector_blob(PROD, "blue", "model_inputs", hour)] = (
        "\n".join(lines) + "\n"
    ).encode()


def test_training_like_traffic_is_no_drift(ctx, fake, serving_prod):
    collect(fake, 0, serving_prod)
    result = lifecycle.monitor(ctx, "prod")
    assert result.rows == len(serving_prod) and result.drifted == []


def test_shifted_traffic_is_drift(ctx, fake, serving_prod):
    collect(fake, 1, serving_prod)
    collect(fake, 0, [{**row, "mean_texture": row["mean_texture"] * 1.6} for row in serving_prod])
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


def test_the_window_reads_the_collectors_utc_hours_across_a_year_end(
    ctx, fake, serving_prod, time_machine
):
    """At 00:30 on 1 January a 2h window starts at 22:30 on 31 December: the 23:00 folder of
    the old year is read, the 21:00 one (shifted rows: drift, were it read) is not."""
    new_year = datetime(datetime.now(UTC).year + 1, 1, 1, 0, 30, tzinfo=UTC)
    time_machine.move_to(new_year, tick=True)
    collect(fake, 1, serving_prod)
    collect(fake, 3, [{**row, "mean_texture": row["mean_texture"] * 1.6} for row in serving_prod])
    result = lifecycle.monitor(ctx, "prod", "2h")
    assert result.rows == len(serving_prod) and result.drifted == []
    assert any(f"/{new_year.year - 1}/12/31/23/" in name for name in fake.blobs)
