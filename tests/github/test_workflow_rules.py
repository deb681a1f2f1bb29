"""The hardening rules every workflow keeps, read from the files themselves."""

import re

import pytest
from workflows import ACTIONS, WORKFLOWS, all_steps, all_workflows

WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^\s*(-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*\s*$")
SELF = re.compile(r"^\s*(-\s+)?uses:\s+\$/\.github/(actions|workflows)/[\w./-]+\s*$")
LOGIN_ACTIONS = ("azure/login@", "pulumi/actions@")
WRITERS = ("peter-evans/create-pull-request@",)


def uses_lines():
    for path in [*WORKFLOW_FILES, *ACTIONS.glob("*/action.yml")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"^\s*(-\s+)?uses:", line):
                yield f"{path.name}:{number}", line


@pytest.mark.parametrize(("where", "line"), list(uses_lines()))
def test_every_uses_is_pinned_to_a_sha_with_a_version_comment(where, line):
    assert PINNED.match(line) or SELF.match(line), f"{where}: {line.strip()}"


@pytest.mark.parametrize(("name", "workflow"), all_workflows().items())
def test_top_level_permissions_are_empty(name, workflow):
    assert workflow["permissions"] == {}


@pytest.mark.parametrize(("name", "workflow"), all_workflows().items())
def test_no_pull_request_target(name, workflow):
    assert "pull_request_target" not in workflow["on"]


def jobs():
    for name, workflow in all_workflows().items():
        for job_id, job in workflow["jobs"].items():
            yield f"{name}:{job_id}", job


@pytest.mark.parametrize(("where", "job"), list(jobs()))
def test_every_job_states_its_permissions_and_a_timeout(where, job):
    assert "permissions" in job, where
    if "uses" not in job:  # a reusable-workflow call takes its callee's timeouts
        assert isinstance(job["timeout-minutes"], int) and job["timeout-minutes"] <= 180, where


@pytest.mark.parametrize(("where", "job"), list(jobs()))
def test_least_privilege_per_job(where, job):
    if "uses" in job:
        return  # checked through the callee below
    uses = [step.get("uses", "") for step in job["steps"]]
    logs_in = any(u.startswith(LOGIN_ACTIONS) for u in uses)
    comments = any(step.get("with", {}).get("comment-on-pr") for step in job["steps"])
    writes = any(u.startswith(WRITERS) for u in uses)
    permissions = job["permissions"]
    assert (permissions.get("id-token") == "write") == logs_in, where
    assert (permissions.get("pull-requests") == "write") == (comments or writes), where
    assert (permissions.get("contents") == "write") == writes, where
    assert set(permissions.values()) <= {"read", "write"}, where


@pytest.mark.parametrize(("where", "job"), list(jobs()))
def test_every_environment_job_is_serialised(where, job):
    if "environment" in job:
        assert job["concurrency"]["cancel-in-progress"] is False, where
        assert job["concurrency"]["group"], where


def test_every_checkout_drops_its_credentials():
    checkouts = [
        (w, j, s) for w, j, s in all_steps() if s.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    for where, job, step in checkouts:
        assert step["with"]["persist-credentials"] is False, f"{where}:{job}"


def test_azure_login_is_oidc_from_variables_with_no_secret():
    logins = [s for _, _, s in all_steps() if s.get("uses", "").startswith("azure/login@")]
    assert logins
    for step in logins:
        assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}
        assert all(value.startswith("${{ vars.") for value in step["with"].values())
    for path in WORKFLOW_FILES:
        assert "secrets." not in path.read_text(), path.name


def test_reusable_callers_grant_what_their_callees_need():
    workflows = all_workflows()
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            if "uses" not in job:
                continue
            callee = workflows[job["uses"].removeprefix("$/.github/workflows/")]
            needed = {}
            for callee_job in callee["jobs"].values():
                for scope, level in callee_job["permissions"].items():
                    if level == "write" or needed.get(scope) != "write":
                        needed[scope] = level
            assert job["permissions"] == needed, f"{name}:{job_id}"


def test_each_stage_has_one_concurrency_group_wherever_it_runs():
    """README, "From a push to prod": overlapping releases are serialised one stage at a time.
    act does not apply `concurrency:`, so this is read from the files: one fixed group per
    stage (a push's release and the monitor's or retrain's call of it share it), none shared
    by two stages, none that a run-specific value would make unique."""
    groups: dict[str, set[str]] = {}
    for name, workflow in all_workflows().items():
        for job_id, job in workflow["jobs"].items():
            if "concurrency" in job:
                group = job["concurrency"]["group"]
                assert "${{" not in group or "matrix." in group, f"{name}:{job_id}: {group}"
                groups.setdefault(group, set()).add(f"{name}:{job_id}")
    stages = {"train-dev", "deploy-preprod", "promotion-pull-request", "deploy-prod"}
    assert stages <= set(groups)
    for stage in stages:
        assert len(groups[stage]) == 1, groups[stage]  # reusable callers reuse the job itself
