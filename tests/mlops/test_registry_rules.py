"""Registration and sharing rules live above the seam: every backend gets them from the verbs.

The backend here holds model versions in memory and offers only the seam's primitive
operations; what is under test is the verbs' policy, not a service."""

import pytest

from mlops import lifecycle
from mlops.backends.base import Job, ModelVersion
from mlops.context import Context
from mlops.errors import MlopsError


def job(artifact: str) -> Job:
    return Job(f"job-{artifact}", f"run-{artifact}", {"roc_auc": 0.99}, {}, "d" * 64, artifact, "c")


class Versions:
    def __init__(self):
        self.jobs = {j.id: j for j in (job("a" * 64), job("b" * 64))}
        self.registered: dict[tuple[str, int], ModelVersion] = {}
        self.shared: dict[tuple[str, int], ModelVersion] = {}
        self.calls: list[str] = []

    def get_job(self, job_id):
        return self.jobs[job_id]

    def list_model_versions(self, name):
        return [m for (n, _), m in self.registered.items() if n == name]

    def create_model_version(self, job, name, tags):
        self.calls.append("create")
        version = 1 + len(self.list_model_versions(name))
        model = ModelVersion(name, version, tags, job.artifact_sha256, f"/models/{version}")
        self.registered[(name, version)] = model
        return model

    def get_registered_model(self, name, version):
        return self.registered.get((name, version))

    def get_shared_model(self, name, version):
        return self.shared.get((name, version))

    def share_model(self, model):
        self.calls.append("share")
        self.shared[(model.name, model.version)] = model
        return model


@pytest.fixture
def versions(repo, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    backend = Versions()
    ctx = Context(repo, tmp_path / "home", backend_factory=lambda config: backend)
    return ctx, backend


def test_a_job_that_made_the_same_artifact_reuses_its_version(versions):
    ctx, backend = versions
    first = lifecycle.register(ctx, "dev", "job-" + "a" * 64)
    again = lifecycle.register(ctx, "dev", "job-" + "a" * 64)
    other = lifecycle.register(ctx, "dev", "job-" + "b" * 64)
    assert (first.version, again.version, other.version) == (1, 1, 2)
    assert backend.calls == ["create", "create"]
    assert first.tags["onnx_sha256"] == "a" * 64 and first.tags["job_id"] == "job-" + "a" * 64


def test_a_shared_version_is_reused_with_the_same_bytes_and_never_overwritten(versions):
    ctx, backend = versions
    model = lifecycle.register(ctx, "dev", "job-" + "a" * 64)
    assert lifecycle.share(ctx, "dev", model.ref) == model
    assert lifecycle.share(ctx, "dev", model.ref) == model
    assert backend.calls == ["create", "share"]

    backend.shared[(model.name, model.version)] = ModelVersion(
        model.name, model.version, {}, "f" * 64, "/elsewhere"
    )
    with pytest.raises(MlopsError, match=f"already holds {model.ref} with other bytes"):
        lifecycle.share(ctx, "dev", model.ref)
    assert backend.calls == ["create", "share"]
