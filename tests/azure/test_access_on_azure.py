"""Every workflow verb, run as the identity its CI job signs in with, against the matrix's roles.

The double refuses what a role does not grant (as Azure does), so these tests pass
exactly when infra/mlops_infra/access.py grants enough: no more is given here."""

import csv
import json
from datetime import UTC, datetime

import pytest
from fake_azure import CI_PERSONA, MONITOR_PERSONA, collector_blob, granted_roles
from fake_azure.identity import access
from harness import azure_context, release_to_registry, sign_in
from helpers import env_setting

from mlops import lifecycle
from mlops.errors import GateRefused, MlopsError

MODEL = env_setting("dev", "model.name")


def test_train_twice_and_carry_version_2_through_share_gate_preprod_and_promotion(
    fake, repo, tmp_path
):
    """release.yml: dev's identity trains, registers, shares; preprod's gates, deploys, promotes."""
    ctx = azure_context(fake, repo, tmp_path / "home")
    first = lifecycle.train(ctx, "dev")
    assert lifecycle.register(ctx, "dev", first.id).version == 1
    dev = repo / "environments" / "dev.yml"
    dev.write_text(dev.read_text().replace("n_estimators: 100", "n_estimators: 60"))
    second = lifecycle.train(ctx, "dev")
    model = lifecycle.register(ctx, "dev", second.id)
    assert model.ref == f"{MODEL}:2", "the container's nextVersion, not a second :1"
    assert (
        ctx.backend("dev").get_registered_model(MODEL, 1).artifact_sha256 == first.artifact_sha256
    )

    shared = lifecycle.share(ctx, "dev", f"{MODEL}:2")
    assert shared.version == 2 and shared.artifact_sha256 == second.artifact_sha256
    # the preprod job reads prod (the champion) with preprod's identity, as in CI
    sign_in(ctx, fake, "prod", CI_PERSONA, of_env="preprod")
    gated = lifecycle.gate(ctx, "prod", f"{MODEL}:2")  # downloads :2 from the registry
    assert gated.challenger.ref == f"{MODEL}:2" and gated.verdict.passed
    result = lifecycle.deploy(ctx, "preprod", f"{MODEL}:2")
    assert result.endpoint.deployments[result.deployment].model == f"{MODEL}:2"
    lifecycle.test(ctx, "preprod", f"{MODEL}:2")
    lifecycle.promote(ctx, "prod", f"{MODEL}:2", write=True)
    assert "version: 2" in (repo / "environments" / "prod.yml").read_text()


def test_the_gate_reads_prods_champion_exactly_when_the_matrix_lends_preprod_a_read(
    ctx, fake, monkeypatch
):
    """Without the borrowed Reader on prod's workspace, Azure refuses preprod's identity there,
    and the gate refuses rather than judge without the champion."""
    shared = release_to_registry(ctx)
    sign_in(ctx, fake, "prod", CI_PERSONA, of_env="preprod")
    assert lifecycle.gate(ctx, "prod", shared.ref).verdict.passed
    monkeypatch.setattr(access, "BORROWED", {})
    with pytest.raises(GateRefused):
        lifecycle.gate(ctx, "prod", shared.ref)


def matrix_lets_read_blobs(persona: str, env: str) -> bool:
    return any(
        role.startswith("Storage Blob Data") and scope == "storage"
        for role, scope in granted_roles(persona, env)
    )


def test_the_prod_monitor_reads_collected_data_exactly_when_the_matrix_grants_it(ctx, fake):
    """monitor.yml runs `mlops monitor --env prod` as prod's monitor identity."""
    lifecycle.deploy(ctx, "prod", release_to_registry(ctx).ref)
    with open(ctx.root / "src" / "model" / "data" / "breast_cancer.csv", newline="") as handle:
        rows = [
            {k: float(v) for k, v in r.items() if k != "malignant"} for r in csv.DictReader(handle)
        ]
    lines = [json.dumps({"type": "azureml.inference.model_inputs", "data": [r]}) for r in rows]
    this_hour = collector_blob(
        env_setting("prod", "endpoint.name"), "blue", "model_inputs", datetime.now(UTC)
    )
    fake.blobs[this_hour] = ("\n".join(lines) + "\n").encode()

    sign_in(ctx, fake, "prod", MONITOR_PERSONA)
    if matrix_lets_read_blobs(MONITOR_PERSONA, "prod"):
        assert lifecycle.monitor(ctx, "prod").rows == len(rows)
    else:  # Azure answers 403 AuthorizationPermissionMismatch; we say what to grant
        with pytest.raises(MlopsError, match="needs a Storage Blob Data role"):
            lifecycle.monitor(ctx, "prod")
