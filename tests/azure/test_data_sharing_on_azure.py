"""A shared model's training data travels with it into the registry, through the real SDK.

Preprod's gate and prod's monitor read a model's training data with the identities their jobs
sign in with, which hold no role in dev's workspace; sharing the data version beside the model
(DataOperations.share, as models are shared) lets them read it from the registry with the
Reader role infra/mlops_infra/access.py already gives them there."""

import pytest
from fake_azure import CI_PERSONA, MONITOR_PERSONA
from fake_azure.identity import access
from harness import release_to_registry, sign_in
from helpers import MODEL_DIR, env_setting

from mlops import data, lifecycle
from mlops.backends.base import TAG_DATA, TAG_DATA_VERSION
from mlops.errors import MlopsError

ASSET = env_setting("dev", "training.data.asset")
REGISTRY = f"/registries/{env_setting('dev', 'azure.registry')}"
DEV_WS = f"/workspaces/{env_setting('dev', 'azure.workspace')}"
DATA_FILE = MODEL_DIR / "data" / "breast_cancer.csv"
V2_LINES = DATA_FILE.read_text().splitlines(keepends=True)[:421]  # another version: 420 rows


@pytest.fixture(scope="module")
def v2_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data-v2") / "v2.csv"
    path.write_text("".join(V2_LINES))
    return path


def retrain_on_v2(ctx, v2_file):
    """release.yml after new data: v2 registered, a retrain on `latest` (v2), register, share."""
    release_to_registry(ctx)  # the first model, on data v1 (the committed file)
    v2 = data.register(ctx, "dev", ASSET, str(v2_file))
    assert v2.ref == f"{ASSET}:2"
    shared = release_to_registry(ctx)  # the double's job reads the data version it is given
    assert shared.tags[TAG_DATA_VERSION] == "2" and shared.tags[TAG_DATA] == v2.sha256
    return shared, v2


def refused_without_registry_read(ctx, monkeypatch, persona, env, model):
    """Without its Reader on the registry, Azure refuses the identity, and the read of the
    model's training data ends in one sentence naming the refusal."""
    grants = access.MATRIX[persona][env]
    kept = [g for g in grants if g.scope != access.MODEL_REGISTRY]
    monkeypatch.setitem(access.MATRIX[persona], env, kept)
    with pytest.raises(MlopsError) as refusal:
        lifecycle.training_data_of(ctx, model.ref, model, "prod")
    message = str(refusal.value)
    assert message.startswith(f"reading data {ASSET}:2 in the registry ") and "\n" not in message
    assert "AuthorizationFailed" in message


def test_sharing_a_model_shares_its_training_data_version_with_the_same_bytes(ctx, fake):
    mark = fake.mark()
    shared = release_to_registry(ctx)
    imports = [c.json()["properties"] for c in fake.since(mark) if c.path.endswith("/import")]
    assert [i["sourceAssetId"].split("/")[-4] for i in imports] == ["data", "models"]
    backend = ctx.backend("dev")
    copy = backend.get_shared_data(ASSET, 1)
    assert (
        copy.location.startswith("azureml://registries/") and copy.sha256 == shared.tags[TAG_DATA]
    )
    # the registry's own copy, downloaded from its storage with the SAS it hands out
    assert data.local_file(ctx, copy, "prod").read_bytes() == DATA_FILE.read_bytes()

    mark = fake.mark()
    lifecycle.share(ctx, "dev", shared.ref)  # again: both already there, nothing imported
    assert not [c for c in fake.since(mark) if c.path.endswith("/import")]


def test_a_registry_version_with_other_bytes_is_refused_by_share_and_by_the_double(ctx, fake):
    from azure.ai.ml._utils._registry_utils import begin_import_registry_asset
    from azure.core.exceptions import HttpResponseError

    job = lifecycle.train(ctx, "dev")
    model = lifecycle.register(ctx, "dev", job.id)
    source = ctx.backend("dev").get_data_version(ASSET, 1)
    ctx.backend("dev").share_data(source)
    held = fake.resource(f"{REGISTRY}/data/{ASSET}/versions/1")
    held["properties"]["tags"] = {**held["properties"]["tags"], "sha256": "0" * 64}
    mark = fake.mark()
    with pytest.raises(MlopsError) as refusal:
        lifecycle.share(ctx, "dev", model.ref)
    assert str(refusal.value) == (
        f"the registry already holds data {ASSET}:1 with other bytes (sha256 000000000000…); "
        "refusing to overwrite it"
    )
    assert not [c for c in fake.since(mark) if c.path.endswith("/import")], "nothing shared"
    assert ctx.backend("dev").get_shared_model(model.name, model.version) is None
    # the service itself never replaces a registry version, whatever the caller checked first
    operations = ctx.backend("dev").registry.data
    order = {
        "assetType": "data",
        "destinationName": ASSET,
        "destinationVersion": "1",
        "sourceAssetId": f"azureml://locations/x/workspaces/y/data/{ASSET}/versions/1",
    }
    with pytest.raises(HttpResponseError) as conflict:
        begin_import_registry_asset(
            operations._registry_service_client,
            operations._resource_group_name,
            env_setting("dev", "azure.registry"),
            {"properties": order},
        )
    assert conflict.value.status_code == 409


def test_preprods_gate_reads_the_challengers_training_data_from_the_registry(
    ctx, fake, v2_file, monkeypatch
):
    """After a retrain on data v2, the gate (preprod's identity, judging for prod) sets the exam
    on v2's rows read from the registry, and asks dev's workspace for nothing."""
    shared, v2 = retrain_on_v2(ctx, v2_file)
    sign_in(ctx, fake, "prod", CI_PERSONA, of_env="preprod")
    mark = fake.mark()
    gated = lifecycle.gate(ctx, "prod", shared.ref)
    calls = fake.since(mark)
    assert gated.challenger.ref == shared.ref and f"prod/{data.CACHE}/{ASSET}/2/" in gated.paper
    assert [c for c in calls if c.path.endswith(f"{REGISTRY}/data/{ASSET}/versions/2")]
    assert [c for c in calls if f"{REGISTRY}/datarefs/{ASSET}/versions/2" in c.path]
    assert not [c for c in calls if DEV_WS in c.path], "preprod's identity never reads dev"

    # exactly when the matrix gives preprod's identity a read of the registry
    refused_without_registry_read(ctx, monkeypatch, access.AUTOMATION, "preprod", shared)


def test_the_prod_monitor_reads_the_served_models_training_data_from_the_registry(
    ctx, fake, v2_file, monkeypatch
):
    shared, v2 = retrain_on_v2(ctx, v2_file)
    lifecycle.deploy(ctx, "prod", shared.ref)
    sign_in(ctx, fake, "prod", MONITOR_PERSONA)
    model = ctx.backend("prod").get_shared_model(shared.name, shared.version)
    mark = fake.mark()
    found = lifecycle.training_data_of(ctx, shared.ref, model, "prod")
    assert found.read_bytes() == v2_file.read_bytes()
    assert not [c for c in fake.since(mark) if DEV_WS in c.path]

    refused_without_registry_read(ctx, monkeypatch, access.MONITOR, "prod", model)
