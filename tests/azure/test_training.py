"""Training on Azure: a command job, with environment and data versioned by content hash."""

import hashlib

from helpers import ROOT, env_setting

from mlops import lifecycle

WS = f"/workspaces/{env_setting('dev', 'azure.workspace')}"
MODEL = env_setting("dev", "model.name")


def content_version(relative: str) -> str:
    return hashlib.sha256((ROOT / relative).read_bytes()).hexdigest()[:16]


def test_train_submits_a_command_job_with_versioned_environment_and_data(ctx, fake):
    job = lifecycle.train(ctx, "dev")

    env_version = content_version("src/model/environment/conda.yml")
    data_version = content_version("src/model/data/breast_cancer.csv")
    (environment,) = fake.made("PUT", rf"{WS}/environments/{MODEL}-env/versions/{env_version}$")
    assert "azureml-inference-server-http" in environment.json()["properties"]["condaFile"]
    (data,) = fake.made("PUT", rf"{WS}/data/{MODEL}-data/versions/{data_version}$")
    assert data.json()["properties"]["dataType"] == "uri_file"
    assert fake.made("PUT", r"/LocalUpload/.*/breast_cancer\.csv$"), "the data file is uploaded"

    (submitted,) = fake.made("PUT", rf"{WS}/jobs/[^/]+$")
    properties = submitted.json()["properties"]
    assert properties["jobType"] == "Command"
    assert properties["command"].startswith(
        "python train.py --data ${{inputs.data}} --output ${{outputs.model}}"
    )
    assert (
        "--n-estimators=100" in properties["command"] and "--max-depth=8" in properties["command"]
    )
    assert properties["inputs"]["data"]["uri"].endswith(f"{MODEL}-data/versions/{data_version}")
    assert properties["environmentId"].endswith(f"{MODEL}-env/versions/{env_version}")
    assert properties["computeId"].endswith("/computes/cpu-cluster")
    assert properties["experimentName"] == MODEL
    assert "git_commit" in properties["tags"]

    assert job.artifact_sha256 == "0" * 64 and job.metrics["roc_auc"] == 0.99
    assert job.run_id == job.id


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
