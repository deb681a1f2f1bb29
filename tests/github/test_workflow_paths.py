"""Triggers, environment bindings and the commands of each workflow."""

import pytest
from workflows import all_steps, load, mlops_commands, repo_path

from mlops.cli import build_parser


def test_a_push_of_model_or_dev_settings_starts_the_release():
    release = load("release.yml")
    assert release["on"]["push"]["branches"] == ["main"]
    assert set(release["on"]["push"]["paths"]) == {"src/model/**", "environments/dev.yml"}
    assert "workflow_call" in release["on"]
    bound = {job_id: job["environment"] for job_id, job in release["jobs"].items()}
    assert bound == {"train": "dev", "preprod": "preprod", "propose": "preprod"}
    assert release["jobs"]["preprod"]["needs"] == "train"
    assert release["jobs"]["propose"]["needs"] == ["train", "preprod"]


def test_the_release_orders_gate_before_preprod_and_promotion_last():
    release = load("release.yml")
    runs = [
        step["run"] for job in release["jobs"].values() for step in job["steps"] if "run" in step
    ]
    assert runs == [
        "mlops train --env dev",
        'mlops register --env dev --job "$JOB"',
        'mlops share --env dev --model "$MODEL"',
        'mlops gate --env prod --model "$MODEL"',
        'mlops deploy --env preprod --model "$MODEL"',
        'mlops test --env preprod --model "$MODEL"',
        'mlops promote --env prod --model "$MODEL" --write',
    ]
    pull_request = release["jobs"]["propose"]["steps"][-1]
    assert pull_request["with"]["add-paths"] == "environments/prod.yml"
    assert pull_request["with"]["branch"] == "promotion/prod"  # one pull request, updated in place


def test_one_model_version_travels_from_share_to_promotion_as_outputs():
    jobs = load("release.yml")["jobs"]
    steps = {step.get("id"): step for step in jobs["train"]["steps"]}
    assert steps["register"]["env"] == {"JOB": "${{ steps.train.outputs.job }}"}
    assert steps["share"]["env"] == {"MODEL": "${{ steps.register.outputs.model }}"}
    assert jobs["train"]["outputs"] == {"model": "${{ steps.share.outputs.model }}"}
    for later in ("preprod", "propose"):
        assert jobs[later]["env"]["MODEL"] == "${{ needs.train.outputs.model }}"


def test_a_merge_into_prod_yml_deploys_prod_behind_its_environment():
    deploy = load("deploy-prod.yml")
    assert deploy["on"]["push"] == {"branches": ["main"], "paths": ["environments/prod.yml"]}
    (job,) = deploy["jobs"].values()
    assert job["environment"] == "prod"
    assert [s["run"] for s in job["steps"] if "run" in s] == [
        "mlops deploy --env prod",
        "mlops test --env prod",
        'mlops batch-deploy --env prod --model "$MODEL"',
    ]
    *_, test_step, batch_step = job["steps"]
    assert test_step["if"] == "steps.deploy.outputs.deployed == 'true'"  # none promoted: green
    # the batch endpoint moves to the version the online rollout deployed, after its test
    assert batch_step["if"] == test_step["if"]
    assert batch_step["env"] == {"MODEL": "${{ steps.deploy.outputs.model }}"}


def test_retraining_reuses_the_release_path():
    retrain = load("retrain.yml")
    assert retrain["on"]["schedule"] and "workflow_dispatch" in retrain["on"]
    (job,) = retrain["jobs"].values()
    assert job["uses"] == "$/.github/workflows/release.yml"
    assert "steps" not in job


def test_infrastructure_goes_up_dev_then_preprod_then_prod_each_in_its_environment():
    infra = load("infra.yml")
    assert infra["on"]["push"]["paths"] == ["infra/**"]
    (job,) = infra["jobs"].values()
    assert job["strategy"]["matrix"]["stack"] == ["dev", "preprod", "prod"]
    assert job["strategy"]["max-parallel"] == 1
    assert job["environment"] == "${{ matrix.stack }}-infra"  # never the ML environment
    assert job["steps"][-1]["with"]["command"] == "up"


def test_pull_requests_run_the_tests_and_a_commented_preview_of_every_stack_ci_may_read():
    ci = load("ci.yml")
    assert "pull_request" in ci["on"] and ci["on"]["push"]["branches"] == ["main"]
    assert any(step.get("run") == "make test" for step in ci["jobs"]["test"]["steps"])
    assert ci["jobs"]["preview"]["uses"] == "$/.github/workflows/infra-preview.yml"
    preview = load("infra-preview.yml")["jobs"]["preview"]
    # never prod (its key is prod-infra's alone) nor github (no workflow holds a GitHub token)
    assert preview["strategy"]["matrix"]["stack"] == ["shared", "dev", "preprod"]
    pulumi = preview["steps"][-1]["with"]
    assert pulumi["command"] == "preview" and pulumi["comment-on-pr"] is True
    login = next(s for s in preview["steps"] if s.get("uses", "").startswith("azure/login@"))
    assert (
        login["with"]["client-id"] == "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"
    )  # the read-only identity


def commands():
    for where, job, step in all_steps():
        for command in mlops_commands(step.get("run", "")):
            yield f"{where}:{job}: {' '.join(command)}", command


@pytest.mark.parametrize(("where", "command"), list(commands()))
def test_every_mlops_command_in_a_workflow_is_accepted_by_the_parser(where, command):
    # the step's environment variables hold what earlier steps printed, e.g. a model version
    values = {"$MODEL": "breast-cancer-classifier:3", "$JOB": "job-1"}
    build_parser().parse_args([values.get(arg, arg) for arg in command[1:]])  # exits 2 if refused


def test_every_run_step_is_only_mlops_or_make():
    for where, job, step in all_steps():
        for line in step.get("run", "").strip().splitlines():
            assert line.startswith(("mlops ", "make ", "uv sync --frozen")), (
                f"{where}:{job}: {line}"
            )


def test_codeowners_guard_prod_and_infra_and_dependabot_watches_actions_and_uv_lock():
    owners = dict(
        line.split(maxsplit=1)
        for line in repo_path(".github/CODEOWNERS").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert owners["/environments/prod.yml"].strip() and owners["/infra/"].strip()
    import yaml

    updates = yaml.safe_load(repo_path(".github/dependabot.yml").read_text())["updates"]
    assert {u["package-ecosystem"] for u in updates} == {"github-actions", "uv"}


def test_drift_or_degraded_performance_found_by_the_daily_monitor_starts_the_release_path():
    monitor = load("monitor.yml")
    assert monitor["on"]["schedule"] and "workflow_dispatch" in monitor["on"]
    job = monitor["jobs"]["monitor"]
    assert job["environment"] == "monitor"  # its own read-only identity, no reviewers
    assert [s["run"] for s in job["steps"] if "run" in s] == ["mlops monitor --env prod"]
    for name in ("drift", "performance", "retrain", "reason"):
        assert job["outputs"][name] == f"${{{{ steps.monitor.outputs.{name} }}}}"
    retrain = monitor["jobs"]["retrain"]
    assert retrain["uses"] == "$/.github/workflows/release.yml"
    assert retrain["needs"] == "monitor"
