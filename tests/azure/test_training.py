"""Training on Azure: a command job, its environment versioned by content hash, its data the
data asset version train resolved (the committed file becomes version 1 of an empty asset)."""

import hashlib

import pytest
from helpers import ROOT, env_setting

from mlops import lifecycle
from mlops.errors import MlopsError

WS = f"/workspaces/{env_setting('dev', 'azure.workspace')}"
MODEL = env_setting("dev", "model.name")
ASSET = env_setting("dev", "training.data.asset")


def content_version(relative: str) -> str:
    return hashlib.sha256((ROOT / relative).read_bytes()).hexdigest()[:16]


def test_train_submits_a_command_job_with_versioned_environment_and_data(ctx, fake):
    job = lifecycle.train(ctx, "dev")

    env_version = content_version("src/model/environment/conda.yml")
    data_sha256 = hashlib.sha256((ROOT / "src/model/data/breast_cancer.csv").read_bytes())
    (environment,) = fake.made("PUT", rf"{WS}/environments/{MODEL}-env/versions/{env_version}$")
    assert "azureml-inference-server-http" in environment.json()["properties"]["condaFile"]
    (data,) = fake.made("PUT", rf"{WS}/data/{ASSET}/versions/1$")
    assert data.json()["properties"]["dataType"] == "uri_file"
    assert data.json()["properties"]["tags"]["sha256"] == data_sha256.hexdigest()
    assert fake.made("PUT", rf"/LocalUpload/.*/{ASSET}\.csv$"), "the data file is uploaded"

    (submitted,) = fake.made("PUT", rf"{WS}/jobs/[^/]+$")
    properties = submitted.json()["properties"]
    assert properties["jobType"] == "Command"
    assert properties["command"].startswith(
        "python train.py --data ${{inputs.data}} --output ${{outputs.model}}"
    )
    assert (
        "--n-estimators=100" in properties["command"] and "--max-depth=8" in properties["command"]
    )
    assert properties["inputs"]["data"]["uri"].endswith(f"data/{ASSET}/versions/1")
    assert properties["environmentId"].endswith(f"{MODEL}-env/versions/{env_version}")
    assert properties["computeId"].endswith("/computes/cpu-cluster")
    assert properties["experimentName"] == MODEL
    assert "git_commit" in properties["tags"]
    assert (properties["tags"]["data_asset"], properties["tags"]["data_version"]) == (ASSET, "1")

    # the job's tags are what train.py's MLflow run set, in a real run with the job's flags
    run = fake.job_runs[job.id]
    assert (
        job.artifact_sha256
        == hashlib.sha256((run.model_dir / "model.onnx").read_bytes()).hexdigest()
    )
    assert job.data_sha256 == data_sha256.hexdigest(), "the run read the registered data file"
    assert (job.data_asset, job.data_version) == (ASSET, "1")
    assert job.metrics["roc_auc"] == float(run.tags["metric.roc_auc"]) > 0.9
    assert job.params["n_estimators"] == "100"
    assert job.run_id == job.id
    states = [c for c in fake.calls if c.method == "GET" and c.path.endswith(f"/jobs/{job.id}")]
    assert len(states) >= 4, "polled through NotStarted, Queued, Running to Completed"


def test_unchanged_environment_and_data_are_not_registered_again(ctx, fake):
    lifecycle.train(ctx, "dev")
    mark = fake.mark()
    lifecycle.train(ctx, "dev")
    again = fake.since(mark)
    assert not [
        c for c in again if c.method == "PUT" and ("/environments/" in c.path or "/data/" in c.path)
    ]
    assert [c for c in again if c.method == "GET" and "/environments/" in c.path]
    assert [c for c in again if c.method == "PUT" and "/jobs/" in c.path], (
        "the job itself runs again"
    )


@pytest.mark.parametrize("ending", ["Failed", "Canceled", "Paused"])
def test_a_job_that_does_not_complete_is_one_sentence_not_a_wait(ctx, fake, ending):
    fake.next_job_ends.append(ending)
    with pytest.raises(
        MlopsError, match=f"training job .* ended {ending}; its logs are at https://ml"
    ):
        lifecycle.train(ctx, "dev")


def test_without_azureml_mlflow_in_the_environment_the_job_fails(fake, repo, tmp_path):
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
