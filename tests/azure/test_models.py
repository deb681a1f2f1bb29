"""Models on Azure: registered from the job output with lineage tags, shared once to the registry."""

from helpers import env_setting

from mlops import card, lifecycle

WS = f"/workspaces/{env_setting('dev', 'azure.workspace')}"
REGISTRY = f"/registries/{env_setting('dev', 'azure.registry')}"
MODEL = env_setting("dev", "model.name")


def test_register_from_the_job_output_with_lineage_tags(ctx, fake):
    job = lifecycle.train(ctx, "dev")
    model = lifecycle.register(ctx, "dev", job.id)
    (created,) = fake.made("PUT", rf"{WS}/models/{MODEL}/versions/\d+$")
    properties = created.json()["properties"]
    assert properties["modelUri"].startswith(f"azureml://jobs/{job.id}/outputs/model")
    assert properties["modelType"] == "mlflow_model"
    tags = properties["tags"]
    run = fake.job_runs[job.id]  # what the evaluate step's MLflow run tagged
    assert tags["onnx_sha256"] == run.tags["onnx_sha256"]
    assert tags["data_sha256"] == run.tags["data_sha256"]
    assert tags["job_id"] == job.id and fake.runs[tags["run_id"]]["parentRunId"] == job.id
    assert tags["importance.worst_area"] == run.tags["importance.worst_area"]
    assert tags["metric.roc_auc"] == run.tags["metric.roc_auc"]
    assert tags["param.n_estimators"] == "100"
    assert "git_commit" in tags
    assert model.version == int(created.path.rsplit("/", 1)[-1])


def test_the_same_bytes_are_not_registered_twice(ctx, fake):
    first = lifecycle.register(ctx, "dev", lifecycle.train(ctx, "dev").id)
    mark = fake.mark()
    second = lifecycle.register(ctx, "dev", lifecycle.train(ctx, "dev").id)
    assert second.ref == first.ref
    assert not [c for c in fake.since(mark) if c.method == "PUT" and "/models/" in c.path]


def test_share_copies_to_the_registry_once(ctx, fake):
    registered = lifecycle.register(ctx, "dev", lifecycle.train(ctx, "dev").id)
    mark = fake.mark()
    shared = lifecycle.share(ctx, "dev", registered.ref)
    sharing = fake.since(mark)
    assert [c for c in sharing if "registrymanagement" in c.url and c.path.endswith("/discovery")]
    writes = [c for c in sharing if c.method in ("PUT", "POST") and REGISTRY in c.path]
    assert writes, "the registry receives the model"
    assert shared.artifact_sha256 == model_tags(fake)["onnx_sha256"]

    mark = fake.mark()
    again = lifecycle.share(ctx, "dev", shared.ref)
    assert again.ref == shared.ref
    assert not [c for c in fake.since(mark) if c.method in ("PUT", "POST") and REGISTRY in c.path]


def model_tags(fake) -> dict:
    (model,) = [v for k, v in fake.resources.items() if f"{WS}/models/" in k and "/versions/" in k]
    return model["properties"]["tags"]


def test_cohort_tags_and_the_model_card_travel_with_share(ctx, fake):
    registered = lifecycle.register(ctx, "dev", lifecycle.train(ctx, "dev").id)
    cohort = {k: v for k, v in registered.tags.items() if k.startswith(("cohort.", "cohort_gap."))}
    assert "cohort.tumour_size.small.recall" in cohort and "cohort_gap.tumour_size.recall" in cohort
    backend = ctx.backend("dev")
    real_share = backend.share_model

    def share_dropping_cohort_tags(model):
        """As a registry that kept the files but not every tag would answer."""
        real_share(model)
        (copy,) = [
            v for k, v in fake.resources.items() if f"{REGISTRY}/models/{MODEL}/versions/" in k
        ]
        copy["properties"]["tags"] = {
            k: v for k, v in copy["properties"]["tags"].items() if not k.startswith("cohort")
        }
        return backend.get_shared_model(model.name, model.version)

    backend.share_model = share_dropping_cohort_tags
    shared = lifecycle.share(ctx, "dev", registered.ref)
    assert cohort.items() <= shared.tags.items()
    again = backend.get_shared_model(MODEL, shared.version)  # read back from the registry
    assert cohort.items() <= again.tags.items()

    found = card.card_of(ctx, "dev", again)  # the card is one of the shared version's files
    assert found["model"] == shared.ref
    assert found["lineage"]["job"] == registered.tags["job_id"]
    assert found["lineage"]["artifact_sha256"] == shared.artifact_sha256
    small = found["cohorts"]["tumour_size"]["groups"]["small"]
    assert str(small["metrics"]["recall"]) == cohort["cohort.tumour_size.small.recall"]
