"""A rehearsal of the release and the prod deployment, step by step, on the local backend.

Every step of the workflows runs in order, except those the workflow marks
`MLOPS_REHEARSAL: skip` (checkout, set-up, Azure login, opening the pull
request). Step outputs, job outputs and `if:` conditions flow as on GitHub, so
the version the release names is the one each later job receives.
"""

import hashlib
import json

from helpers import copy_repo, env_setting, run_mlops
from workflows import (
    condition_holds,
    is_skipped_in_rehearsal,
    jobs_in_order,
    load,
    mlops_commands,
    read_outputs,
    shell_expand,
    substitute,
)

MODEL = env_setting("prod", "model.name")


def rehearse(workflow_name: str, repo, home, scratch) -> list[str]:
    """Run the workflow's mlops steps; return the command lines as the shell would run them."""
    workflow, ran = load(workflow_name), []
    finished: dict[str, dict[str, str]] = {}  # job id -> its outputs
    for job_id in jobs_in_order(workflow):
        job = workflow["jobs"][job_id]
        needs = job.get("needs", [])
        # a job sees the outputs of the jobs it lists in `needs`, and only those
        outputs = {
            "needs": {n: finished[n] for n in ([needs] if isinstance(needs, str) else needs)},
            "steps": {},
        }
        if not condition_holds(job.get("if"), outputs):
            continue
        if "uses" in job:  # a reusable workflow of this repository
            ran += rehearse(job["uses"].rsplit("/", 1)[-1], repo, home, scratch)
            finished[job_id] = {}
            continue
        for index, step in enumerate(job["steps"]):
            if is_skipped_in_rehearsal(step) or not condition_holds(step.get("if"), outputs):
                continue
            commands = mlops_commands(step["run"])
            assert commands, f"{workflow_name}:{job_id}: a step neither marked nor made of mlops"
            env = {
                name: substitute(str(value), outputs)
                for name, value in {**job.get("env", {}), **step.get("env", {})}.items()
            }
            step_output = scratch / f"{workflow_name}-{job_id}-{index}-{len(ran)}"
            for command in commands:
                line = shell_expand(" ".join(command), env)
                run_mlops(
                    repo, home, *line.split()[1:], extra_env={"GITHUB_OUTPUT": str(step_output)}
                )
                ran.append(line)
            if "id" in step:
                outputs["steps"][step["id"]] = read_outputs(step_output)
        finished[job_id] = {
            name: substitute(value, outputs) for name, value in job.get("outputs", {}).items()
        }
    return ran


def served(home, env: str) -> dict:
    endpoint = env_setting(env, "endpoint.name")
    state = json.loads((home / env / "endpoints" / endpoint / "endpoint.json").read_text())
    (live,) = [name for name, share in state["traffic"].items() if share == 100]
    return state["deployments"][live]


def test_release_then_prod_deployment_ends_with_prod_serving_this_runs_model(tmp_path):
    repo, home = copy_repo(tmp_path / "repo"), tmp_path / "home"
    scratch = tmp_path / "outputs"
    scratch.mkdir()
    try:
        released = rehearse("release.yml", repo, home, scratch)
        (job_id,) = [p.name for p in (home / "dev" / "jobs").iterdir()]
        assert released == [
            "mlops train --env dev",
            f"mlops register --env dev --job {job_id}",
            f"mlops share --env dev --model {MODEL}:1",
            f"mlops gate --env prod --model {MODEL}:1",
            f"mlops deploy --env preprod --model {MODEL}:1",
            f"mlops test --env preprod --model {MODEL}:1",
            f"mlops promote --env prod --model {MODEL}:1 --write",
        ]
        assert (
            "version: 1  # set by the promotion pull request"
            in (repo / "environments" / "prod.yml").read_text()
        )

        deployed = rehearse("deploy-prod.yml", repo, home, scratch)
        assert deployed == [
            "mlops deploy --env prod",
            "mlops test --env prod",
            f"mlops batch-deploy --env prod --model {MODEL}:1",
        ]

        (trained,) = home.glob("dev/jobs/*/train/model/model/model.onnx")
        assert served(home, "prod")["model"] == f"{MODEL}:1"
        assert (
            served(home, "prod")["artifact_sha256"]
            == hashlib.sha256(trained.read_bytes()).hexdigest()
        )
        batch = env_setting("prod", "endpoint.name") + "-batch"
        batch = json.loads((home / "prod" / "batch" / batch / "endpoint.json").read_text())
        assert batch["deployments"][batch["default"]]["model"] == f"{MODEL}:1"
    finally:
        run_mlops(repo, home, "down", "--all", check=False)


def test_a_never_promoted_prod_ends_deploy_and_monitor_green_with_a_notice(tmp_path):
    repo, home = copy_repo(tmp_path / "repo"), tmp_path / "home"
    scratch = tmp_path / "outputs"
    scratch.mkdir()
    assert "version: null" in (repo / "environments" / "prod.yml").read_text()
    assert rehearse("deploy-prod.yml", repo, home, scratch) == ["mlops deploy --env prod"]
    assert rehearse("monitor.yml", repo, home, scratch) == ["mlops monitor --env prod"]
    assert not (home / "prod" / "endpoints").exists()
