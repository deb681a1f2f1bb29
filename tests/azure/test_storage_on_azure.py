"""The workspace storage as our infra configures it: shared keys off, the default datastore
identity-based, every blob request held against the caller's storage data roles."""

from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from fake_azure import CI_PERSONA, account_of
from harness import release_to_registry
from helpers import env_setting
from mlops_infra import access  # the double put infra on the path (fake_azure.identity)

from mlops import batch, clock
from mlops.errors import MlopsError

ENDPOINT = env_setting("prod", "endpoint.name") + batch.SUFFIX


def without(monkeypatch, persona: str, env: str, role: str) -> None:
    """The access matrix with one of env's persona's roles taken away."""
    kept = [g for g in access.MATRIX[persona][env] if g.role != role]
    assert len(kept) < len(access.MATRIX[persona][env]), f"{persona} holds no {role} in {env}"
    monkeypatch.setitem(access.MATRIX[persona], env, kept)


def test_the_default_datastore_is_identity_based_and_the_account_refuses_keys(ctx, fake):
    from azure.ai.ml.entities import NoneCredentialConfiguration
    from azure.storage.blob import BlobClient, BlobSasPermissions, generate_blob_sas

    ml = ctx.backend("prod").ml
    store = ml.datastores.get_default()
    assert store.name == "workspaceblobstore"
    assert isinstance(store.credentials, NoneCredentialConfiguration)  # the SDK skips listSecrets

    account = account_of(env_setting("prod", "azure.workspace"))
    url = f"https://{account}.blob.core.windows.net"
    key = "a2V5LW5vYm9keS1ob2xkcw=="  # any key: the account takes none
    keyed = BlobClient(
        url, "azureml-blobstore", "x.csv", credential={"account_name": account, "account_key": key}
    )
    with pytest.raises(HttpResponseError) as refused:
        keyed.upload_blob(b"1")
    assert refused.value.status_code == 403
    assert refused.value.error_code == "KeyBasedAuthenticationNotPermitted"

    sas = generate_blob_sas(
        account,
        "azureml-blobstore",
        "x.csv",
        account_key=key,
        permission=BlobSasPermissions(write=True),
        expiry=clock.now() + timedelta(hours=1),
    )
    with pytest.raises(HttpResponseError) as refused:
        BlobClient.from_blob_url(f"{url}/azureml-blobstore/x.csv?{sas}").upload_blob(b"1")
    assert refused.value.error_code == "KeyBasedAuthenticationNotPermitted"
    assert "azureml-blobstore/x.csv" not in fake.blobs


@pytest.fixture
def shared(ctx):
    return release_to_registry(ctx)


def test_prods_automation_uploads_the_smoke_sample_with_its_own_token(ctx, fake, shared):
    mark = fake.mark()
    batch.deploy(ctx, "prod", shared.ref)
    calls = fake.since(mark)
    assert not [c for c in calls if c.path.endswith("/listSecrets")]
    uploads = [c for c in calls if c.method == "PUT" and c.path.endswith("/smoke-sample.csv")]
    assert uploads and all(  # Entra, no key, no SAS
        c.headers["authorization"].startswith("Bearer ") and "sig" not in c.query for c in uploads
    )


@pytest.mark.parametrize("env", ["preprod", "prod"])
def test_without_a_blob_data_role_automation_cannot_upload_a_local_input(
    ctx, fake, shared, monkeypatch, tmp_path, env
):
    """`mlops batch --env preprod|prod --input LOCAL_FILE` as that environment's automation."""
    batch.deploy(ctx, env, shared.ref)
    rows = tmp_path / "rows.csv"
    rows.write_text(
        (ctx.root / "src" / "model" / "data" / "breast_cancer.csv")
        .read_text()[:2000]
        .rsplit("\n", 1)[0]
        + "\n"
    )
    assert batch.score(ctx, env, str(rows)).status == "Completed"

    without(monkeypatch, CI_PERSONA, env, "Storage Blob Data Contributor")
    before = set(fake.blobs)
    mark = fake.mark()
    with pytest.raises(MlopsError, match=r"needs Storage Blob Data Contributor") as refused:
        batch.score(ctx, env, str(rows))
    assert "\n" not in str(refused.value)
    assert set(fake.blobs) == before  # nothing uploaded
    assert not [c for c in fake.since(mark) if c.path == "/jobs"]  # no job started


def test_prod_batch_deploy_is_refused_without_the_role_and_keeps_the_default(
    ctx, fake, shared, monkeypatch
):
    without(monkeypatch, CI_PERSONA, "prod", "Storage Blob Data Contributor")
    with pytest.raises(
        MlopsError, match=r"smoke-sample.csv .* needs Storage Blob Data Contributor"
    ):
        batch.deploy(ctx, "prod", shared.ref)
    assert not [name for name in fake.blobs if name.endswith("smoke-sample.csv")]
    endpoint = ctx.backend("prod").get_batch_endpoint(ENDPOINT)
    assert endpoint.default is None  # the unsmoked deployment never became the default
