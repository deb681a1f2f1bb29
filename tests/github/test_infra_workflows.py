"""Pulumi in CI: the environment it runs in, where its state is, and what it may use.

- The set-up action builds the virtualenv that infra/Pulumi.yaml and the policy
  pack name (Pulumi runs `<virtualenv>/bin/python`; with no such file it stops,
  pulumi/pulumi sdk/python toolchain "doesn't appear to be a virtual environment").
- The infra workflows use no stored secret, run the policy pack, and read only
  variables that a stack publishes.
- They never go red on GitHub resources: no stack a workflow applies or previews plans one,
  and no Pulumi step holds a GitHub token; the github stack, which an administrator runs,
  makes them all (infra/README.md, "The GitHub side")."""

import re
import sys

import pytest
import yaml
from helpers import ROOT
from workflows import ACTIONS, load

sys.path.insert(0, str(ROOT / "infra"))
from mlops_infra.offline import run_stack  # noqa: E402

INFRA_WORKFLOWS = ("infra.yml", "infra-preview.yml", "ci.yml")
PULUMI_ACTION = "pulumi/actions@"


def setup_steps() -> list[dict]:
    return yaml.safe_load((ACTIONS / "setup-mlops" / "action.yml").read_text())["runs"]["steps"]


def virtualenv_of(project_file) -> str:
    return yaml.safe_load(project_file.read_text())["runtime"]["options"]["virtualenv"]


def test_the_setup_action_builds_the_virtualenv_pulumi_and_the_policy_pack_name():
    steps = setup_steps()
    (uv,) = [s for s in steps if s.get("uses", "").startswith("astral-sh/setup-uv@")]
    # setup-uv's activate-environment makes `venv-path` (default .venv) and puts it on the PATH
    # (astral-sh/setup-uv action.yml); `uv sync` installs into the project environment,
    # .venv beside pyproject.toml unless UV_PROJECT_ENVIRONMENT says otherwise (uv docs)
    assert uv["with"]["activate-environment"] == "true"
    made = uv["with"].get("venv-path", ".venv")
    built = (ROOT / made).resolve()  # composite steps run at the repository root
    assert built == (ROOT / ".venv").resolve()
    assert built == (ROOT / "infra" / virtualenv_of(ROOT / "infra" / "Pulumi.yaml")).resolve()
    policy = ROOT / "infra" / "policy" / "PulumiPolicy.yaml"
    assert built == (policy.parent / virtualenv_of(policy)).resolve()
    (install,) = [s["run"] for s in steps if "uv sync" in s.get("run", "")]
    assert "uv sync --frozen" in install, "CI installs exactly what uv.lock holds"
    assert steps.index(uv) < [s.get("run", "") for s in steps].index(install)
    # the uv CI runs is the one `make install` fetches
    pinned = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert uv["with"]["version"] == pinned.group(1)
    assert uv["with"]["cache-dependency-glob"] == "uv.lock"


def test_infra_jobs_install_the_infra_extra_which_holds_pulumi_and_its_policy_sdk():
    pyproject = (ROOT / "pyproject.toml").read_text()
    infra_extra = re.search(r"(?ms)^infra = \[(.*?)\]", pyproject).group(1)
    assert "pulumi>=" in infra_extra and "pulumi-policy>=" in infra_extra
    for name in ("infra.yml", "infra-preview.yml"):
        for job in load(name)["jobs"].values():
            setups = [s for s in job.get("steps", []) if "setup-mlops" in s.get("uses", "")]
            for step in setups:
                assert step["with"]["extra"] == "infra", name


def pulumi_steps():
    for name in ("infra.yml", "infra-preview.yml"):
        for job in load(name)["jobs"].values():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith(PULUMI_ACTION):
                    yield name, step


def test_every_preview_and_update_runs_the_policy_pack_against_the_shared_state():
    steps = list(pulumi_steps())
    assert {step["with"]["command"] for _, step in steps} == {"up", "preview"}
    for name, step in steps:
        options = step["with"]
        # pulumi/actions runs the CLI in work-dir: the pack is infra/policy
        assert (ROOT / options["work-dir"] / options["policyPacks"] / "PulumiPolicy.yaml").is_file()
        assert options["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}", name
        # each stack's own key (state_access.py): a JSON map the shared stack publishes
        assert options["secrets-provider"] == (
            "${{ fromJSON(vars.PULUMI_SECRETS_PROVIDERS)[matrix.stack] }}"
        ), name
        assert step["env"]["ARM_USE_OIDC"] == "true", name


def test_previews_never_touch_prod_whose_secrets_the_preview_identity_cannot_decrypt():
    (job,) = load("infra-preview.yml")["jobs"].values()
    assert job["strategy"]["matrix"]["stack"] == ["shared", "dev", "preprod"]


def test_infra_workflows_reference_no_stored_secret():
    for name in INFRA_WORKFLOWS:
        text = (ROOT / ".github" / "workflows" / name).read_text()
        assert "secrets." not in text and "PULUMI_ACCESS_TOKEN" not in text, name
        assert "PULUMI_CONFIG_PASSPHRASE" not in text, name


@pytest.mark.pulumi  # runs the shared stack's program
def test_every_variable_the_infra_workflows_read_is_published_by_a_stack():
    published = set()
    for stack in ("shared", "dev", "preprod", "prod", "github"):
        records = run_stack(stack, overrides={"mlops:manageGitHub": "true"})
        published |= {r.inputs["variableName"] for r in records if "variableName" in r.inputs}
    for name in INFRA_WORKFLOWS:
        used = set(
            re.findall(r"vars\.([A-Z_]+)", (ROOT / ".github" / "workflows" / name).read_text())
        )
        assert used <= published, (name, used - published)


def test_pulumi_jobs_wait_for_the_state_backend_so_a_fresh_fork_ends_green():
    # a job whose `if` is false is skipped, and a skipped job does not fail the run
    for name in ("infra.yml", "ci.yml"):
        for job in load(name)["jobs"].values():
            steps = job.get("steps", [])
            if "uses" in job or any(s.get("uses", "").startswith(PULUMI_ACTION) for s in steps):
                assert "vars.PULUMI_BACKEND_URL != ''" in job["if"], name


def stacks_workflows_run() -> dict[str, set[str]]:
    """Each Pulumi command a workflow runs (up, preview) -> the stacks its matrix names."""
    found: dict[str, set[str]] = {}
    for name in ("infra.yml", "infra-preview.yml"):
        for job in load(name)["jobs"].values():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith(PULUMI_ACTION):
                    assert step["with"]["stack-name"] == "${{ matrix.stack }}", name
                    stacks = job["strategy"]["matrix"]["stack"]
                    found.setdefault(step["with"]["command"], set()).update(stacks)
    return found


def test_no_workflow_runs_the_github_stack():
    ran = stacks_workflows_run()
    assert ran == {"up": {"dev", "preprod", "prod"}, "preview": {"shared", "dev", "preprod"}}
    assert "github" not in set().union(*ran.values())


@pytest.mark.pulumi  # runs every stack's program
def test_no_stack_a_workflow_runs_plans_a_github_resource_even_when_github_is_managed():
    # Without a token the GitHub provider cannot create, change or delete anything, so any
    # GitHub resource in these stacks would turn the run red (the provider reads GITHUB_TOKEN:
    # pulumi/pulumi-github#578); with one, a dev job could change prod's gate.
    def github_types(stack):
        records = run_stack(stack, overrides={"mlops:manageGitHub": "true"})
        return {
            r.type
            for r in records
            if r.type.startswith("github:") or r.type == "pulumi:providers:github"
        }

    for stack in set().union(*stacks_workflows_run().values()):
        assert not github_types(stack), stack
    # the resources exist, in the stack an administrator runs
    made = github_types("github")
    assert "pulumi:providers:github" in made
    assert "github:index/repositoryEnvironment:RepositoryEnvironment" in made


def test_no_pulumi_step_holds_a_github_token():
    """The GitHub token stays out of Pulumi's reach: the steps that need one (the preview's
    pull-request comment) take it as an input of that action, never as Pulumi's environment."""
    for name, step in pulumi_steps():
        env = step.get("env") or {}
        assert not {"GITHUB_TOKEN", "GH_TOKEN"} & set(env), name
        if step["with"]["command"] == "up":
            assert "github-token" not in step["with"], name
            assert "github.token" not in str(step), name
