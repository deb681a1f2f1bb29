"""`mlops batch-deploy` and `mlops batch` on the local backend, as a user runs them."""

import shutil

import pandas as pd
from helpers import run_mlops

MODEL = "breast-cancer-classifier:1"


def test_batch_deploy_then_score_a_file_with_bad_rows(shared_model, tmp_path):
    repo, home = shared_model
    home = shutil.copytree(home, tmp_path / "home")  # other tests share the registry
    refused = run_mlops(repo, home, "batch", "--env", "prod", "--input", "x.csv", check=False)
    assert refused.returncode == 2
    assert "run `mlops batch-deploy --env prod` first" in refused.stderr
    assert "Traceback" not in refused.stderr

    deployed = run_mlops(repo, home, "batch-deploy", "--env", "prod", "--model", MODEL)
    assert "smoke job blue-" in deployed.stdout
    assert f"runs {MODEL} by default (blue)" in deployed.stdout
    again = run_mlops(repo, home, "batch-deploy", "--env", "prod", "--model", MODEL)
    assert "already runs" in again.stdout

    rows = pd.read_csv(repo / "src" / "model" / "data" / "breast_cancer.csv").astype(object)
    rows.loc[2, "mean_area"] = "twelve"
    rows.to_csv(tmp_path / "nightly.csv", index=False)
    scored = run_mlops(
        repo, home, "batch", "--env", "prod", "--input", str(tmp_path / "nightly.csv")
    )
    assert "568 row(s) scored, 1 refused" in scored.stdout
    (outputs,) = [
        line.split("outputs: ")[1] for line in scored.stdout.splitlines() if "outputs: " in line
    ]
    errors = pd.read_csv(f"{outputs}/errors.csv")
    assert errors["reason"].tolist() == [
        "row 2, feature 'mean_area': expected a number, got a string"
    ]
    assert set(pd.read_csv(f"{outputs}/predictions.csv")["model"]) == {MODEL}

    rerun = run_mlops(
        repo, home, "batch", "--env", "prod", "--input", str(tmp_path / "nightly.csv")
    )
    assert f"outputs: {outputs}" in rerun.stdout  # the same job: nothing scored twice
    assert len(pd.read_csv(f"{outputs}/predictions.csv")) == 568
