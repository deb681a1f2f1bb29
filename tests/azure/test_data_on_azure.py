"""Data asset versions on Azure through the real SDK: numbered by the policy in mlops.data,
immutable as the service keeps them, downloaded and checked by sha256."""

import hashlib

import pytest
from helpers import MODEL_DIR, env_setting

from mlops import data, lifecycle
from mlops.backends.base import TAG_DATA, TAG_DATA_ASSET, TAG_DATA_VERSION, ModelVersion
from mlops.errors import MlopsError

WS = f"/workspaces/{env_setting('dev', 'azure.workspace')}"
ASSET = env_setting("dev", "training.data.asset")
LINES = (MODEL_DIR / "data" / "breast_cancer.csv").read_text().splitlines(keepends=True)


def write(path, lines):
    path.write_text("".join(lines))
    return str(path)


def test_versions_are_numbered_reused_for_the_same_bytes_and_grown_from_a_base(ctx, fake, tmp_path):
    first = data.register(ctx, "dev", ASSET, write(tmp_path / "first.csv", LINES[:301]))
    assert first.ref == f"{ASSET}:1" and first.location.endswith(f"/data/{ASSET}/versions/1")
    mark = fake.mark()
    assert data.register(ctx, "dev", ASSET, write(tmp_path / "again.csv", LINES[:301])) == first
    assert not [c for c in fake.since(mark) if c.method == "PUT"], "nothing registered again"
    grown = data.register(
        ctx, "dev", ASSET, write(tmp_path / "labels.csv", LINES[:1] + LINES[301:]), base=first.ref
    )
    assert grown.ref == f"{ASSET}:2" and grown.tags["parent"] == first.ref
    (put,) = fake.made("PUT", rf"{WS}/data/{ASSET}/versions/2$")
    assert put.json()["properties"]["tags"]["rows"] == str(len(LINES) - 1)
    # the new version is the base's bytes (downloaded from its datastore) and the new rows
    whole = "".join(LINES).encode()
    assert grown.sha256 == hashlib.sha256(whole).hexdigest()
    assert data.local_file(ctx, grown).read_bytes() == whole


def test_the_double_refuses_a_version_again_with_other_content(ctx, fake, tmp_path):
    backend = ctx.backend("dev")
    data.register(ctx, "dev", ASSET, write(tmp_path / "first.csv", LINES[:101]))
    other = tmp_path / "other" / f"{ASSET}.csv"
    other.parent.mkdir()
    other.write_text("".join(LINES[:51]))
    with pytest.raises(MlopsError, match=f"registering data {ASSET}:1 failed: .*immutable"):
        backend.create_data_version(ASSET, 1, other, {"sha256": "x"})
    assert [v.version for v in backend.list_data_versions(ASSET)] == [1]


def test_a_models_training_data_is_read_from_its_data_asset_version(ctx, tmp_path):
    data.register(ctx, "dev", ASSET, str(MODEL_DIR / "data" / "breast_cancer.csv"))
    subset = data.register(ctx, "dev", ASSET, write(tmp_path / "half.csv", LINES[:285]))
    tags = {TAG_DATA: subset.sha256, TAG_DATA_ASSET: ASSET, TAG_DATA_VERSION: "2"}
    found = lifecycle.training_data_of(ctx, "m:1", ModelVersion("m", 1, tags, "", ""))
    assert found.read_text() == "".join(LINES[:285])
    assert found.is_relative_to(ctx.home / "dev" / data.CACHE)


def test_the_double_refuses_a_data_version_without_type_or_uri(ctx, fake):
    from azure.core.rest import HttpRequest

    backend = ctx.backend("dev")
    client = backend.ml.data._operation._client  # the SDK's own pipeline: auth, api-version
    url = (
        f"https://management.azure.com/subscriptions/{backend.settings.subscription_id}"
        f"/resourceGroups/{backend.settings.resource_group}/providers/"
        f"Microsoft.MachineLearningServices{WS}/data/{ASSET}/versions/1?api-version=2024-04-01"
    )
    for properties in ({"dataUri": "azureml://x"}, {"dataType": "uri_file"}):
        answer = client.send_request(HttpRequest("PUT", url, json={"properties": properties}))
        assert answer.status_code == 400 and b"dataType and a dataUri" in answer.read()
    assert backend.list_data_versions(ASSET) == []


def test_a_data_version_another_identity_cannot_read_is_one_sentence(ctx, fake, tmp_path):
    """Preprod's identity holds no role in dev's workspace: asked to read a data version there,
    it fails closed, in one sentence. (The gate and the monitor read shared models' data from
    the registry instead: tests/azure/test_data_sharing_on_azure.py.)"""
    from fake_azure import CI_PERSONA
    from harness import sign_in

    subset = data.register(ctx, "dev", ASSET, write(tmp_path / "half.csv", LINES[:285]))
    tags = {TAG_DATA: subset.sha256, TAG_DATA_ASSET: ASSET, TAG_DATA_VERSION: "1"}
    sign_in(ctx, fake, "dev", CI_PERSONA, "preprod")  # preprod's identity, reading dev
    with pytest.raises(MlopsError) as refusal:
        lifecycle.training_data_of(ctx, "m:1", ModelVersion("m", 1, tags, "", ""))
    message = str(refusal.value)
    assert message.startswith(f"reading data {ASSET}:1 in dev failed: ") and "\n" not in message
