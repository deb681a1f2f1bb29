"""`mlops init` turns a fresh fork into its own project from one set of answers."""

import difflib
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from helpers import ROOT, copy_repo, run_mlops, run_mlops_here

sys.path.insert(0, str(ROOT / "infra"))
from mlops_infra.naming import Names  # noqa: E402

ANSWERS = {
    "--project": "acme",
    "--subscription-id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
    "--tenant-id": "12345678-1234-4234-8234-123456789abc",
    "--location": "swedencentral",
    "--github-repository": "acme-corp/churn-mlops",
    "--github-owner-id": "5544123",
    "--github-repository-id": "821093847",
    "--github-name-only-subjects": "no",
    "--data-scientists-group-id": "33333333-3333-4333-8333-333333333333",
    "--ml-engineers-group-id": "44444444-4444-4444-8444-444444444444",
    "--ml-engineers-team": "acme-corp/mlops-engineers",
    "--model-name": "churn-classifier",
    "--prod-reviewer-team-ids": "42,43",
    "--manage-github": "yes",
    "--alert-email": "ml-alerts@acme.example",
    "--bootstrap-principal-id": "55555555-5555-4555-8555-555555555555",
}
TEMPLATE = yaml.safe_load((ROOT / "project.yml").read_text())


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test asks GitHub: `mlops init` takes its offline path unless a test fakes `gh`."""
    monkeypatch.setenv("MLOPS_OFFLINE", "1")


def flags(**overrides) -> list[str]:
    merged = {**ANSWERS, **overrides}
    return [item for pair in merged.items() for item in pair]


def snapshot(repo) -> dict:
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in repo.rglob("*") if p.is_file()}


@pytest.fixture
def fork(tmp_path):
    return copy_repo(tmp_path / "fork", whole=True)


def test_the_template_itself_agrees_with_its_answers():
    result = run_mlops_here(ROOT, ROOT / ".mlops", "init", "--check")
    assert "every dependent file agrees with project.yml" in result.stdout


@pytest.mark.e2e  # plans every stack and runs the demo in the rendered fork
def test_fresh_answers_render_a_consistent_project_that_plans_and_runs(fork, tmp_path):
    result = run_mlops(fork, tmp_path / "home", "init", "--yes", *flags())
    assert "Steps left that need a person" in result.stdout
    names = {
        env: Names.build("acme", env, ANSWERS["--subscription-id"])
        for env in ("dev", "preprod", "prod")
    }
    prod = (fork / "environments" / "prod.yml").read_text()
    assert (
        f"workspace: {names['prod'].workspace}" in prod
        and "name: churn-classifier" in prod
        and f"name: {names['prod'].endpoint}" in prod
    )
    assert "@acme-corp/mlops-engineers" in (fork / ".github" / "CODEOWNERS").read_text()
    assert "github.com/acme-corp/churn-mlops/actions" in (fork / "README.md").read_text()
    pulumi = (fork / "infra" / "Pulumi.yaml").read_text()
    assert "value: swedencentral" in pulumi and "value: acme\n" in pulumi
    assert "mlops:manageGitHub:\n    value: true" in pulumi
    assert "- 42\n    - 43" in (fork / "infra" / "Pulumi.github.yaml").read_text()
    run_mlops(fork, tmp_path / "home", "init", "--check")

    plan = subprocess.run(
        [sys.executable, str(fork / "infra" / "plan.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    for name in (
        "rg-acme-dev",
        "mlw-acme-preprod",
        "mlw-acme-prod",
        "mlr-acme",
        "id-acme-prod-github",
        "repo:acme-corp@5544123/churn-mlops@821093847:environment:prod-infra",
    ):
        assert name in plan.stdout, name

    demo = run_mlops(fork, tmp_path / "home", "demo")
    assert "churn-classifier:1" in demo.stdout
    status = json.loads(run_mlops(fork, tmp_path / "home", "status", "--env", "prod").stdout)
    assert status["prod"][0]["endpoint"] == names["prod"].endpoint
    run_mlops(fork, tmp_path / "home", "down", "--all")


def test_a_second_run_with_the_same_answers_changes_nothing(fork, tmp_path):
    run_mlops_here(fork, tmp_path / "home", "init", "--yes", *flags())
    before = snapshot(fork)
    again = run_mlops_here(fork, tmp_path / "home", "init", "--yes", *flags())
    assert "nothing changed" in again.stdout
    assert snapshot(fork) == before


def test_a_new_answer_changes_exactly_its_dependent_lines(fork, tmp_path):
    run_mlops_here(fork, tmp_path / "home", "init", "--yes", *flags())
    before = snapshot(fork)
    run_mlops_here(
        fork, tmp_path / "home", "init", "--yes", *flags(**{"--location": "northeurope"})
    )
    after = snapshot(fork)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"infra/Pulumi.yaml", "project.yml"}
    for name in changed:
        diff = [
            line
            for line in difflib.unified_diff(
                before[name].decode().splitlines(), after[name].decode().splitlines(), lineterm=""
            )
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        assert diff == [
            f"-{diff[0][1:]}",
            f"+{diff[0][1:].replace('swedencentral', 'northeurope')}",
        ], name


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"--subscription-id": "not-a-guid"}, "subscription id must be a GUID"),
        ({"--location": "atlantis"}, "location 'atlantis' is not a supported Azure region"),
        ({"--project": "averyveryverylongname"}, "must be 3-12 lowercase letters and digits"),
        ({"--project": "Acme_1"}, "must be 3-12 lowercase letters and digits"),
        ({"--model-name": "Churn Model"}, "model name 'Churn Model' must be 3-32 lowercase"),
        ({"--github-repository": "no-slash"}, "must be written OWNER/REPO"),
        ({"--prod-reviewer-team-ids": "ops"}, "prod reviewer team ids must be numbers"),
        ({"--github-owner-id": "0"}, "GitHub owner id must be a positive number"),
        ({"--github-repository-id": "acme"}, "GitHub repository id must be a positive number"),
        ({"--github-name-only-subjects": "maybe"}, "github_name_only_subjects must be yes or no"),
        ({"--manage-github": "maybe"}, "manage GitHub must be yes or no"),
        (
            {"--alert-email": "oncall-at-example.com"},
            "alert email 'oncall-at-example.com' is refused: it must be an email address",
        ),
        (
            {"--alert-webhook-url": "http://pager.example.com/hook"},
            "alert webhook URL 'http://pager.example.com/hook' is refused: it must be an https://",
        ),
        (
            {"--event-webhook-url": "https://hooks.example.com/in?sig=abc"},
            "is refused: it must carry no user, password, query or fragment: the URL is committed",
        ),
        (
            {"--alert-email": "none", "--alert-webhook-url": "none"},
            "name an alert_email or an alert_webhook_url: prod's endpoint alerts must page someone",
        ),
    ],
)
def test_an_invalid_answer_is_one_sentence_and_changes_no_file(fork, tmp_path, override, expected):
    before = snapshot(fork)
    refused = run_mlops_here(
        fork, tmp_path / "home", "init", "--yes", *flags(**override), check=False
    )
    assert refused.returncode == 2
    assert expected in refused.stderr and refused.stderr.count("\n") == 1
    assert snapshot(fork) == before


def test_check_names_a_file_that_disagrees(fork, tmp_path):
    prod = fork / "environments" / "prod.yml"
    prod.write_text(prod.read_text().replace("workspace: mlw-", "workspace: mlw-other-"))
    refused = run_mlops_here(fork, tmp_path / "home", "init", "--check", check=False)
    assert refused.returncode == 2
    assert "environments/prod.yml disagrees with project.yml" in refused.stderr


def test_init_rewrites_only_the_codeowners_lines_it_owns(fork, tmp_path):
    owners = fork / ".github" / "CODEOWNERS"
    owners.write_text(
        re.sub(r"(?m)^(/infra/\s+@\S+)$", r"\1 @your-org/platform", owners.read_text())
        + "/src/model/  @your-org/data-scientists\n"
    )
    run_mlops_here(fork, tmp_path / "home", "init", "--yes", *flags())
    text = owners.read_text()
    assert re.search(r"(?m)^/infra/\s+@acme-corp/mlops-engineers @your-org/platform$", text)
    assert "/src/model/  @your-org/data-scientists" in text  # the fork's own line
    assert re.search(r"(?m)^/environments/prod.yml\s+@acme-corp/mlops-engineers$", text)
    run_mlops_here(fork, tmp_path / "home", "init", "--check")


def test_a_changed_name_generation_renames_what_the_environment_files_name(fork, tmp_path):
    pulumi = fork / "infra" / "Pulumi.yaml"
    pulumi.write_text(
        re.sub(r"(mlops:nameGeneration:\n    value: )\d+", r"\g<1>987", pulumi.read_text())
    )
    refused = run_mlops_here(fork, tmp_path / "home", "init", "--check", check=False)
    assert "environments/prod.yml disagrees with project.yml" in refused.stderr
    run_mlops_here(fork, tmp_path / "home", "init", "--yes", *flags())
    answers = yaml.safe_load((fork / "project.yml").read_text())
    second = Names.build(answers["project"], "prod", answers["subscription_id"], 987)
    assert f"workspace: {second.workspace}" in (fork / "environments" / "prod.yml").read_text()


def test_the_alert_and_event_receivers_land_in_the_stack_config(fork, tmp_path):
    hook = "https://hooks.example.com/mlops/events"
    run_mlops_here(fork, tmp_path / "home", "init", "--yes", *flags())
    before = snapshot(fork)
    run_mlops_here(
        fork,
        tmp_path / "home",
        "init",
        "--yes",
        *flags(**{"--alert-email": "oncall@acme.example", "--event-webhook-url": hook}),
    )
    after = snapshot(fork)
    assert {name for name in after if after[name] != before[name]} == {
        "infra/Pulumi.yaml",
        "project.yml",
    }
    config = yaml.safe_load((fork / "infra" / "Pulumi.yaml").read_text())["config"]
    assert config["mlops:alertEmail"]["value"] == "oncall@acme.example"
    assert config["mlops:eventWebhookUrl"]["value"] == hook
    # `none` clears an answer: no event subscription again
    run_mlops_here(fork, tmp_path / "home", "init", "--yes", "--event-webhook-url", "none")
    config = yaml.safe_load((fork / "infra" / "Pulumi.yaml").read_text())["config"]
    assert config["mlops:eventWebhookUrl"]["value"] == ""
    run_mlops_here(fork, tmp_path / "home", "init", "--check")


# ---- no placeholder survives, and GitHub's spelling (issue: a bootstrap the person can run) ----

PLACEHOLDER_FLAGS = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "tenant_id": "00000000-0000-0000-0000-000000000000",
    "github_repository": TEMPLATE["github_repository"],
    "github_owner_id": str(TEMPLATE["github_owner_id"]),
    "github_repository_id": str(TEMPLATE["github_repository_id"]),
    "data_scientists_group_id": TEMPLATE["data_scientists_group_id"],
    "ml_engineers_group_id": TEMPLATE["ml_engineers_group_id"],
    "ml_engineers_team": TEMPLATE["ml_engineers_team"],
    "prod_reviewer_team_ids": ",".join(map(str, TEMPLATE["prod_reviewer_team_ids"])),
    "bootstrap_principal_id": TEMPLATE["bootstrap_principal_id"],
    "alert_email": TEMPLATE["alert_email"],
}


def test_the_template_marks_itself_and_its_placeholders_are_the_guarded_ones():
    from mlops import init_guards

    assert TEMPLATE["template"] is True
    assert init_guards.placeholders_in(TEMPLATE) == list(PLACEHOLDER_FLAGS)


@pytest.mark.parametrize("key", sorted(PLACEHOLDER_FLAGS))
def test_each_placeholder_is_refused_by_name_and_nothing_is_written(fork, tmp_path, key):
    before = snapshot(fork)
    flag = "--" + key.replace("_", "-")
    refused = run_mlops_here(
        fork,
        tmp_path / "home",
        "init",
        "--yes",
        *flags(**{flag: PLACEHOLDER_FLAGS[key]}),
        check=False,
    )
    assert refused.returncode == 2
    assert f"{key} is the template's placeholder" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert snapshot(fork) == before


def test_a_fork_marks_itself_and_check_names_every_placeholder_left(fork, tmp_path):
    run_mlops_here(fork, tmp_path / "home", "init", "--yes", *flags())
    answers = yaml.safe_load((fork / "project.yml").read_text())
    assert answers["template"] is False
    run_mlops_here(fork, tmp_path / "home", "init", "--check")

    untouched = copy_repo(tmp_path / "untouched", whole=True)
    answers_file = untouched / "project.yml"
    answers_file.write_text(answers_file.read_text().replace("template: true", "template: false"))
    refused = run_mlops_here(untouched, tmp_path / "home", "init", "--check", check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    for key in PLACEHOLDER_FLAGS:
        assert f"{key} is the template's placeholder" in refused.stderr, key


def typed(repo, home, text: str) -> subprocess.CompletedProcess:
    """`mlops init` answering its questions from `text`, as a person at a prompt (or a pipe)."""
    env = {
        **os.environ,
        "MLOPS_ROOT": str(repo),
        "MLOPS_HOME": str(home),
        "MLOPS_BACKEND": "local",
    }
    return subprocess.run(
        [sys.executable, "-m", "mlops", "init"],
        cwd=repo,
        env=env,
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pressing_enter_through_the_questions_renders_nothing(fork, tmp_path):
    before = snapshot(fork)
    result = typed(fork, tmp_path / "home", "\n" * 60)
    assert result.returncode == 2
    assert "subscription_id is the template's placeholder" in result.stdout  # asked again
    assert result.stderr == (
        "error: input ended before subscription_id was answered; nothing was written\n"
    )
    assert snapshot(fork) == before


def test_answers_typed_in_full_render_the_fork_and_yes_no_questions_show_yes_or_no(fork, tmp_path):
    answers = {flag.removeprefix("--").replace("-", "_"): value for flag, value in ANSWERS.items()}
    from mlops.init import QUESTIONS

    lines = []
    for question in QUESTIONS:
        value = answers.get(question.key, "")
        lines.append(
            "" if question.key in ("github_name_only_subjects", "manage_github") else value
        )
    half = "\n".join(lines[:9]) + "\n"
    stopped = typed(fork, tmp_path / "home", half)
    assert stopped.stderr == (
        f"error: input ended before {QUESTIONS[9].key} was answered; nothing was written\n"
    )
    done = typed(fork, tmp_path / "home", "\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    assert "yes/no [no]: " in done.stdout and "yes/no) [yes]: " in done.stdout
    assert "[True]" not in done.stdout and "[False]" not in done.stdout
    written = yaml.safe_load((fork / "project.yml").read_text())
    assert written["subscription_id"] == ANSWERS["--subscription-id"]
    assert written["template"] is False


@pytest.fixture
def fake_gh(tmp_path, monkeypatch):
    """A `gh` on PATH that answers GitHub's `repos/OWNER/REPO` as told, and logs its calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gh.log"
    script = bin_dir / "gh"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{log}"\n'
        'printf "%s" "$FAKE_GH_OUT"\n'
        'printf "%s" "$FAKE_GH_ERR" >&2\n'
        'exit "${FAKE_GH_RC:-0}"\n'
    )
    script.chmod(0o755)
    monkeypatch.delenv("MLOPS_OFFLINE")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    def answer(full_name="", owner=0, repo=0, rc=0, err=""):
        out = json.dumps({"full_name": full_name, "owner": owner, "id": repo}) if full_name else ""
        monkeypatch.setenv("FAKE_GH_OUT", out)
        monkeypatch.setenv("FAKE_GH_ERR", err)
        monkeypatch.setenv("FAKE_GH_RC", str(rc))
        return log

    return answer


def test_a_repository_spelled_in_another_case_than_githubs_is_refused(fork, tmp_path, fake_gh):
    log = fake_gh("Acme-Corp/Churn-MLOps", 5544123, 821093847)
    before = snapshot(fork)
    refused = run_mlops_here(fork, tmp_path / "home", "init", "--yes", *flags(), check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert (
        "github_repository 'acme-corp/churn-mlops' is spelled 'Acme-Corp/Churn-MLOps' on GitHub"
        in refused.stderr
    )
    assert snapshot(fork) == before
    assert log.read_text().split()[:2] == ["api", "repos/acme-corp/churn-mlops"]


def test_githubs_ids_are_rendered_for_the_immutable_subject(fork, tmp_path, fake_gh):
    fake_gh("Acme-Corp/Churn-MLOps", 777001, 888002)
    answers = flags(
        **{
            "--github-repository": "Acme-Corp/Churn-MLOps",
            "--github-owner-id": PLACEHOLDER_FLAGS["github_owner_id"],
            "--github-repository-id": PLACEHOLDER_FLAGS["github_repository_id"],
        }
    )
    done = run_mlops_here(fork, tmp_path / "home", "init", "--yes", *answers)
    assert "spelling and ids confirmed with GitHub" in done.stdout
    written = yaml.safe_load((fork / "project.yml").read_text())
    assert (written["github_owner_id"], written["github_repository_id"]) == (777001, 888002)
    pulumi = yaml.safe_load((fork / "infra" / "Pulumi.yaml").read_text())["config"]
    assert pulumi["mlops:githubRepository"]["value"] == "Acme-Corp/Churn-MLOps"
    assert pulumi["mlops:githubOwnerId"]["value"] == 777001


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            {"full_name": "acme-corp/churn-mlops", "owner": 5544123, "repo": 1},
            "github_repository_id is '821093847', but GitHub says acme-corp/churn-mlops has 1",
        ),
        (
            {"rc": 1, "err": "gh: Not Found (HTTP 404)"},
            "github_repository 'acme-corp/churn-mlops' is not found on GitHub",
        ),
    ],
    ids=["other-id", "no-such-repository"],
)
def test_what_github_contradicts_is_refused(fork, tmp_path, fake_gh, reply, expected):
    fake_gh(**reply)
    refused = run_mlops_here(fork, tmp_path / "home", "init", "--yes", *flags(), check=False)
    assert refused.returncode == 2 and expected in refused.stderr


def test_without_github_init_says_what_to_check_by_hand(fork, tmp_path, fake_gh):
    fake_gh(rc=4, err="To get started with GitHub CLI, please run:  gh auth login")
    done = run_mlops_here(fork, tmp_path / "home", "init", "--yes", *flags())
    assert "GitHub not reached (gh api repos/acme-corp/churn-mlops): check by hand" in done.stdout
