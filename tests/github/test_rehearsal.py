"""A rehearsal of the release and the prod deployment, step by step, on the local backend.

Every step of the two workflows runs in order, except those the workflow marks
`MLOPS_REHEARSAL: skip` (checkout, set-up, Azure login, opening the pull request).
"""

import hashlib
import json

from helpers import copy_repo, run_mlops
from workflows import is_skipped_in_rehearsal, jobs_in_order, load, mlops_commands


def rehearse(workflow_name: str, repo, home, outputs) -> list[str]:
    workflow, ran = load(workflow_name), []
    for job_id in jobs_in_order(workflow):
        for step in workflow["jobs"][job_id]["steps"]:
            if is_skipped_in_rehearsal(step):
                continue
            commands = mlops_commands(step["run"])
            assert commands, (
                f"{workflow_name}:{job_id}: a step neither marked nor made of mlops verbs"
            )
            for command in commands:
                run_mlops(repo, home, *command[1:], extra_env={"GITHUB_OUTPUT": str(outputs)})
                ran.append(" ".join(command))
    return ran


def test_release_then_prod_deployment_ends_with_prod_serving_this_runs_model(tmp_path):
    repo, home, outputs = (
        copy_repo(tmp_path / "repo"),
        tmp_path / "home",
        tmp_path / "github-output",
    )
    try:
        released = rehearse("release.yml", repo, home, outputs)
        assert (
            released[0] == "mlops train --env dev"
            and released[-1] == "mlops promote --env prod --write"
        )
        assert (
            "version: 1  # set by the promotion pull request"
            in (repo / "environments" / "prod.yml").read_text()
        )
        assert "title=Promote breast-cancer-classifier:1 to prod" in outputs.read_text()

        deployed = rehearse("deploy-prod.yml", repo, home, outputs)
        assert deployed == ["mlops deploy --env prod", "mlops test --env prod"]

        (trained,) = home.glob("dev/jobs/*/outputs/model/model.onnx")
        state = json.loads(
            (home / "prod" / "endpoints" / "mlops-prod" / "endpoint.json").read_text()
        )
        (live,) = [name for name, share in state["traffic"].items() if share == 100]
        served = state["deployments"][live]
        assert served["model"] == "breast-cancer-classifier:1"
        assert served["artifact_sha256"] == hashlib.sha256(trained.read_bytes()).hexdigest()
    finally:
        run_mlops(repo, home, "down", "--all", check=False)
