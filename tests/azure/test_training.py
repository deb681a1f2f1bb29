"""Training on Azure: a pipeline job of three components (prep, train, evaluate) on the pinned
environment (versioned by content hash), its data the data asset version train resolved (the
committed file becomes version 1 of an empty asset), unchanged steps reused, and the evaluate
step's run holding the lineage the gate reads."""

import copy
import hashlib

import pytest
import yaml
from azure.core.rest import HttpRequest
from features import FEATURES
from helpers import MODEL_DIR, ROOT, env_setting

from mlops import lifecycle
from mlops.errors import GateRefused, MlopsError

WS = f"/workspaces/{env_setting('dev', 'azure.workspace')}"
MODEL = env_setting("dev", "model.name")
ASSET = env_setting("dev", "training.data.asset")
STEPS = ("prep", "train", "evaluate")


def content_version(relative: str) -> str:
    return hashlib.sha256((ROOT / relative).read_bytes()).hexdigest()[:16]


def submitted_pipeline(fake):
    """The one pipeline job the backend submitted (not one a test wrote by hand)."""
    (submitted,) = [
        c for c in fake.made("PUT", rf"{WS}/jobs/[^/]+$") if "hand-written" not in c.path
    ]
    return submitted


def children(fake, job_id: str) -> dict[str, dict]:
    return {run["displayName"]: run for run in fake.runs.values() if run["parentRunId"] == job_id}


def reused(run: dict) -> bool:
    return run["properties"].get("azureml.isreused") == "true"


def test_train_submits_a_pipeline_of_three_components_on_the_pinned_environment(ctx, fake):
    job = lifecycle.train(ctx, "dev")

    env_version = content_version("src/model/environment/conda.yml")
    data_sha256 = hashlib.sha256((ROOT / "src/model/data/breast_cancer.csv").read_bytes())
    (environment,) = fake.made("PUT", rf"{WS}/environments/{MODEL}-env/versions/{env_version}$")
    assert "azureml-inference-server-http" in environment.json()["properties"]["condaFile"]
    (data,) = fake.made("PUT", rf"{WS}/data/{ASSET}/versions/1$")
    assert data.json()["properties"]["dataType"] == "uri_file"
    assert data.json()["properties"]["tags"]["sha256"] == data_sha256.hexdigest()

    properties = submitted_pipeline(fake).json()["properties"]
    assert properties["jobType"] == "Pipeline"
    assert properties["settings"]["default_compute"].endswith("/computes/cpu-cluster")
    assert properties["settings"]["force_rerun"] is False
    assert properties["experimentName"] == MODEL and "git_commit" in properties["tags"]
    assert properties["inputs"]["raw_data"]["uri"].endswith(f"data/{ASSET}/versions/1")
    assert (properties["tags"]["data_asset"], properties["tags"]["data_version"]) == (ASSET, "1")
    assert list(properties["jobs"]) == list(STEPS)
    for step, node in properties["jobs"].items():
        spec = fake.resource(node["componentId"].split(WS, 1)[1])["properties"]["componentSpec"]
        defined = yaml.safe_load((MODEL_DIR / "components" / f"{step}.yml").read_text())
        assert spec["command"] == defined["command"], "each component is defined once"
        assert spec["is_deterministic"] is True
        assert spec["environment"].endswith(f"/environments/{MODEL}-env/versions/{env_version}")
    train = properties["jobs"]["train"]["inputs"]
    assert train["prepared"]["value"] == "${{parent.jobs.prep.outputs.prepared}}"
    assert train["n_estimators"]["value"] == "100" and train["max_depth"]["value"] == "8"
    assert "test_fraction" not in train, "each parameter goes to the steps that declare it"

    # the lineage is the evaluate step's MLflow run, from a real run of evaluate.py
    steps = children(fake, job.id)
    assert set(steps) == set(STEPS) and not any(map(reused, steps.values()))
    lineage = fake.runs[job.run_id]
    assert lineage["displayName"] == "evaluate"
    assert job.metrics["roc_auc"] == float(lineage["tags"]["metric.roc_auc"]) > 0.9
    assert job.data_sha256 == data_sha256.hexdigest(), "the run read the registered data file"
    assert (job.data_asset, job.data_version) == (ASSET, "1")
    assert job.params["n_estimators"] == "100" and job.params["test_fraction"] == "0.2"
    assert set(job.importances) == set(FEATURES), "permutation importance of every feature"
    run = fake.job_runs[job.id]
    assert (
        job.artifact_sha256
        == hashlib.sha256((run.model_dir / "model.onnx").read_bytes()).hexdigest()
    )
    states = [c for c in fake.calls if c.method == "GET" and c.path.endswith(f"/jobs/{job.id}")]
    assert len(states) >= 4, "polled through NotStarted, Queued, Running to Completed"


def test_an_unchanged_pipeline_reuses_every_step_and_keeps_its_lineage(ctx, fake):
    first = lifecycle.train(ctx, "dev")
    mark = fake.mark()
    second = lifecycle.train(ctx, "dev")
    again = fake.since(mark)
    assert not [
        c for c in again if c.method == "PUT" and ("/environments/" in c.path or "/data/" in c.path)
    ]
    assert [c for c in again if c.method == "PUT" and "/jobs/" in c.path], "the job runs again"
    steps, before = children(fake, second.id), children(fake, first.id)
    for step in STEPS:
        assert reused(steps[step]), f"{step} is reused"
        assert steps[step]["properties"]["azureml.reusedrunid"] == before[step]["runId"]
    assert not steps["evaluate"]["tags"], "the reused child carries no tags of its own"
    # the lineage is read from the run the evaluate step reused
    assert second.run_id == before["evaluate"]["runId"]
    assert (second.metrics, second.artifact_sha256) == (first.metrics, first.artifact_sha256)


def test_a_changed_parameter_reruns_train_and_evaluate_but_reuses_prep(fake, repo, tmp_path):
    from harness import azure_context

    ctx = azure_context(fake, repo, tmp_path / "home")
    first = lifecycle.train(ctx, "dev")
    dev = repo / "environments" / "dev.yml"
    dev.write_text(dev.read_text().replace("n_estimators: 100", "n_estimators: 60"))
    second = lifecycle.train(ctx, "dev")
    steps = children(fake, second.id)
    assert reused(steps["prep"]) and not reused(steps["train"]) and not reused(steps["evaluate"])
    assert (
        steps["prep"]["properties"]["azureml.reusedrunid"]
        == children(fake, first.id)["prep"]["runId"]
    )
    assert second.params["n_estimators"] == "60" and second.artifact_sha256 != first.artifact_sha256


def test_the_gate_judges_the_evaluate_steps_figures(ctx, fake):
    from harness import release_to_registry

    shared = release_to_registry(ctx)
    (job,) = [name for name in fake.job_runs]
    recorded = fake.job_runs[job].tags
    result = lifecycle.gate(ctx, "prod", shared.ref)
    assert result.verdict.passed
    assert result.figures == {
        k.removeprefix("metric."): float(v) for k, v in recorded.items() if k.startswith("metric.")
    }
    # figures the artifact does not reproduce on the same rows are refused, not judged
    registry = env_setting("dev", "azure.registry")
    version = fake.resource(f"/registries/{registry}/models/{MODEL}/versions/{shared.version}")
    version["properties"]["tags"]["metric.roc_auc"] = "0.999999"
    with pytest.raises(GateRefused, match="records roc_auc '0.999999' from its evaluate step"):
        lifecycle.gate(ctx, "prod", shared.ref)


@pytest.mark.parametrize("ending", ["Failed", "Canceled", "Paused"])
def test_a_job_that_does_not_complete_is_one_sentence_not_a_wait(ctx, fake, ending):
    fake.next_job_ends.append(ending)
    with pytest.raises(
        MlopsError, match=f"training job .* ended {ending}; its logs are at https://ml"
    ):
        lifecycle.train(ctx, "dev")


def test_without_azureml_mlflow_in_the_environment_the_evaluate_step_fails(fake, repo, tmp_path):
    """Inside a job MLflow logs to azureml://, which only the azureml-mlflow plugin serves."""
    from harness import azure_context

    conda = repo / "src" / "model" / "environment" / "conda.yml"
    conda.write_text(
        "".join(
            line for line in conda.read_text().splitlines(True) if "azureml-mlflow==" not in line
        )
    )
    with pytest.raises(MlopsError, match="ended Failed"):
        lifecycle.train(azure_context(fake, repo, tmp_path / "home"), "dev")
    (submitted,) = fake.made("PUT", rf"{WS}/jobs/[^/]+$")
    failed = children(fake, submitted.path.rsplit("/", 1)[-1])
    assert failed["evaluate"]["status"] == "Failed", "the step that logs to MLflow fails"


def resubmit(fake, change) -> tuple[int, str]:
    """The pipeline job the backend submitted, changed by hand and sent again under a new name
    with the SDK's own credentials: what the service answers."""
    submitted = submitted_pipeline(fake)
    body = copy.deepcopy(submitted.json())
    change(body["properties"])
    request = HttpRequest(
        "PUT",
        submitted.url.replace(submitted.path.rsplit("/", 1)[-1], "hand-written"),
        json=body,
        headers={"Authorization": submitted.headers["authorization"]},
    )
    answer = fake.send(request)
    return answer.status_code, answer.text()


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (
            lambda p: (p["settings"].pop("default_compute"), None),
            "jobs.prep: no compute, and the pipeline sets no settings.default_compute",
        ),
        (
            lambda p: p["jobs"]["train"]["inputs"]["prepared"].update(
                value="${{parent.jobs.prep.outputs.split}}"
            ),
            "jobs.train.inputs.prepared: step 'prep' has no output 'split'",
        ),
        (
            lambda p: p["jobs"]["evaluate"]["inputs"]["model"].update(
                value="${{parent.jobs.trainer.outputs.model}}"
            ),
            "no other step 'trainer'",
        ),
        (
            lambda p: p["jobs"]["train"]["inputs"].update(
                learning_rate={"value": "0.1", "job_input_type": "literal"}
            ),
            "jobs.train.inputs.learning_rate: the component declares no such input",
        ),
    ],
)
def test_the_double_refuses_a_pipeline_azure_would_refuse(ctx, fake, change, refusal):
    lifecycle.train(ctx, "dev")
    status, text = resubmit(fake, change)
    assert status == 400 and refusal in text


def test_the_double_refuses_a_component_on_an_environment_that_does_not_exist(ctx, fake):
    lifecycle.train(ctx, "dev")
    node = submitted_pipeline(fake).json()["properties"]["jobs"]["prep"]
    spec = fake.resource(node["componentId"].split(WS, 1)[1])["properties"]["componentSpec"]
    spec["environment"] = spec["environment"].rsplit("/", 1)[0] + "/0000000000000000"
    status, text = resubmit(fake, lambda p: None)
    assert status == 404 and "environment" in text and "does not exist" in text


def test_a_forced_rerun_reuses_no_step(ctx, fake):
    """docs how-to-debug-pipeline-reuse-issues: with ForceRerun every child job runs again."""
    lifecycle.train(ctx, "dev")
    status, _ = resubmit(fake, lambda p: p["settings"].update(force_rerun=True))
    assert status == 201
    submitted = submitted_pipeline(fake)
    url = submitted.url.replace(submitted.path.rsplit("/", 1)[-1], "hand-written")
    headers = {"Authorization": submitted.headers["authorization"]}
    for _ in range(4):  # NotStarted -> Queued -> Running -> its end
        answer = fake.send(HttpRequest("GET", url, headers=headers))
    assert answer.json()["properties"]["status"] == "Completed"
    steps = children(fake, "hand-written")
    assert set(steps) == set(STEPS) and not any(map(reused, steps.values()))
