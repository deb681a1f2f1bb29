"""The monitor's reference is the data the served model was trained on, found by its lineage
(the data_sha256 tag; tests/mlops/test_data_versions.py: its data asset version), not by
assuming which environment trains."""

import hashlib

import pytest
from helpers import copy_repo

from mlops import lifecycle
from mlops.backends.base import TAG_DATA, ModelVersion
from mlops.context import Context
from mlops.errors import MlopsError


def trained_on(data: bytes) -> ModelVersion:
    return ModelVersion("m", 1, {TAG_DATA: hashlib.sha256(data).hexdigest()}, "", "")


def test_the_training_data_is_the_environment_file_whose_data_the_model_names(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    dev_data = repo / "src" / "model" / "data" / "breast_cancer.csv"
    prod_data = dev_data.with_name("prod_sample.csv")
    prod_data.write_text("".join(dev_data.read_text().splitlines(keepends=True)[:50]))
    with open(repo / "environments" / "prod.yml", "a") as handle:
        handle.write(
            "training:\n  data: {asset: prod-sample, version: 1, "
            "initial: src/model/data/prod_sample.csv}\n"
        )
    ctx = Context(repo, tmp_path / "home")
    for data in (dev_data, prod_data):
        assert lifecycle.training_data_of(ctx, "m:1", trained_on(data.read_bytes())) == data
    with pytest.raises(MlopsError) as refusal:
        lifecycle.training_data_of(ctx, "m:1", trained_on(b"other data"))
    message = str(refusal.value)
    assert "src/model/data/breast_cancer.csv nor src/model/data/prod_sample.csv" in message
    assert "data_sha256 differs" in message and "\n" not in message
