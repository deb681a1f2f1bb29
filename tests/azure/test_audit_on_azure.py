"""Events and the audit trail on Azure: each verb's event, audit tags on the registry's model
version (the double enforces what the service lets a PUT of an existing version change), and
`mlops history` reading them back on a fresh runner."""

import json

import pytest
from azure.core.exceptions import HttpResponseError
from fake_azure import CI_PERSONA
from harness import azure_context, release_to_registry
from helpers import ROOT, copy_repo
from mlops_infra import access

from mlops import events, history, lifecycle
from mlops.errors import MlopsError, RolloutFailed

PUBLISHER = [(access.REGISTRY_PUBLISHER, access.MODEL_REGISTRY)]


@pytest.fixture
def captured(ctx) -> list[events.Event]:
    found: list[events.Event] = []
    ctx.event_sinks.append(found.append)
    return found


def kinds(captured) -> list[str]:
    return [e.kind for e in captured]


def test_train_register_share_gate_each_emit_their_event(ctx, captured):
    shared = release_to_registry(ctx)
    lifecycle.gate(ctx, "prod", shared.ref)
    assert kinds(captured) == [
        "training.completed",
        "model.registered",
        "model.shared",
        "model.gated",
    ]
    completed, registered, shared_event, gated = captured
    assert completed.details["job"] and completed.details["metrics"]["roc_auc"] > 0
    assert completed.details["data"]  # the data asset version it trained on (NAME:VERSION)
    assert registered.model == shared_event.model == gated.model == shared.ref
    assert registered.sha256 == shared_event.sha256 == shared.artifact_sha256
    assert gated.environment == "prod" and gated.details["passed"] is True
    assert gated.details["reasons"]
    logged = events.read_lines(ctx.home / events.LOG_FILE)
    assert [r["kind"] for r in logged] == kinds(captured)


def test_a_failed_training_job_emits_before_the_error_propagates(ctx, fake, captured):
    fake.next_job_ends.append("Failed")
    with pytest.raises(MlopsError, match="ended Failed"):
        lifecycle.train(ctx, "dev")
    (failed,) = captured
    assert failed.kind == "training.failed" and "ended Failed" in failed.details["error"]


def test_a_deploy_without_registry_write_still_succeeds_and_says_so(
    ctx, fake, captured, monkeypatch
):
    """A fork whose preprod CI identity only reads the registry: the audit tag is refused, the
    deployment stands, the local history and the events log keep the entry."""
    reader_only = [
        g for g in access.MATRIX[CI_PERSONA]["preprod"] if g.scope != access.MODEL_REGISTRY
    ] + [access.Grant("Reader", access.MODEL_REGISTRY)]
    monkeypatch.setitem(access.MATRIX[CI_PERSONA], "preprod", reader_only)
    shared = release_to_registry(ctx)
    lines = []
    ctx.progress.say = lines.append
    lifecycle.deploy(ctx, "preprod", shared.ref)
    assert any(
        line.startswith(f"warning: the audit entry is not on {shared.ref} in the registry")
        and "AuthorizationFailed" in line
        for line in lines
    )
    assert kinds(captured)[-1] == "model.deployed"
    (entry,) = events.read_lines(ctx.home / "preprod" / history.HISTORY_FILE)
    assert entry["action"] == "deployed" and entry["model"] == shared.ref
    assert not [k for k in ctx.backend("dev").get_shared_model(*_ref(shared)).tags if "audit" in k]


def test_deploys_and_rollbacks_are_tagged_on_the_registry_version_and_read_back(
    ctx, fake, captured, tmp_path, monkeypatch
):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "octo-release")
    monkeypatch.setenv("GITHUB_SHA", "b" * 40)
    monkeypatch.setenv("GITHUB_REF", "refs/pull/7/merge")
    # the matrix grants preprod's CI identity the publisher role the trail needs
    assert PUBLISHER[0] in {(g.role, g.scope) for g in access.MATRIX[CI_PERSONA]["preprod"]}
    shared = release_to_registry(ctx)
    lifecycle.deploy(ctx, "preprod", shared.ref)
    fake.broken_deployments.add("green")
    with pytest.raises(RolloutFailed):
        lifecycle.deploy(ctx, "preprod", shared.ref)
    assert kinds(captured)[-2:] == ["model.deployed", "deployment.rolled_back"]
    assert "failed its smoke test" in captured[-1].details["reason"]

    tags = ctx.backend("dev").get_shared_model(*_ref(shared)).tags
    audit = {k: json.loads(v) for k, v in tags.items() if k.startswith("audit.preprod.")}
    assert sorted(e["action"] for e in audit.values()) == ["deployed", "rolled back"]
    assert tags["onnx_sha256"] == shared.artifact_sha256, "the version's own tags stay"

    fresh = azure_context(fake, ROOT, tmp_path / "fresh-runner")
    found = history.entries(fresh, "preprod")
    assert [e.action for e in found] == ["rolled back", "deployed"]
    deployed = found[1]
    assert deployed.actor == "octo-release" and deployed.commit == "b" * 40
    assert deployed.pull_request == 7 and deployed.deployment == "blue"
    assert deployed.sha256 == shared.artifact_sha256 and deployed.model == shared.ref
    assert history.entries(fresh, "prod") == []


def test_a_registry_version_takes_new_tags_but_never_new_files(ctx, fake):
    """The double's rule, through the real SDK: a PUT of an existing version may change its
    tags and description, not its files (how-to-manage-models: versions are immutable)."""
    shared = release_to_registry(ctx)
    registry = ctx.backend("dev").registry
    found = registry.models.get(name=shared.name, version=str(shared.version))
    found.tags = {**found.tags, "reviewed": "yes"}
    found.description = "reviewed"
    assert registry.models.create_or_update(found).tags["reviewed"] == "yes"

    moved = registry.models.get(name=shared.name, version=str(shared.version))
    moved.path = moved.path.replace("/model", "/other-model")
    with pytest.raises(HttpResponseError, match="immutable"):
        registry.models.create_or_update(moved)
    again = ctx.backend("dev").get_shared_model(shared.name, shared.version)
    assert again.tags["reviewed"] == "yes" and again.artifact_sha256 == shared.artifact_sha256


def test_a_failing_webhook_never_fails_the_verb(fake, tmp_path, monkeypatch):
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    repo = copy_repo(tmp_path / "repo")
    dev = repo / "environments" / "dev.yml"
    dev.write_text(dev.read_text() + f"\nevents:\n  webhook: http://127.0.0.1:{port}/hook\n")
    ctx = azure_context(fake, repo, tmp_path / "home")
    lines = []
    ctx.progress.say = lines.append
    job = lifecycle.train(ctx, "dev")
    assert job.id
    assert any("events webhook did not take training.completed" in line for line in lines)
    logged = [r["kind"] for r in events.read_lines(ctx.home / events.LOG_FILE)]
    assert logged == ["training.completed", "webhook.failed"]


def _ref(model):
    return model.name, model.version
