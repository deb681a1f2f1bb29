"""A fork initialised with a short, middling or longest project name plans and tests green.

`mlops init --yes` in a copy of the repository, then what `make infra-plan` and
`make test` would run that depends on the answers: the consistency check, the
offline plan of every stack (each planned name checked against Azure's rules),
and the infra tests themselves, which read every name from the copy's config."""

import re
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT, copy_repo, run_mlops
from mlops_infra.naming import problems
from test_names import KIND_OF_TYPE

# Unlike the template's answers (project.yml) in every field, so a test that reads a literal
# of the template instead of the fork's config fails in the fork.
ANSWERS = [
    "--subscription-id", "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
    "--tenant-id", "12345678-1234-4234-8234-123456789abc",
    "--location", "australiaeast",
    "--github-repository", "Acme-Corp/Churn-MLOps",
    "--github-owner-id", "5544123",
    "--github-repository-id", "821093847",
    "--github-name-only-subjects", "yes",
    "--data-scientists-group-id", "33333333-3333-4333-8333-333333333333",
    "--ml-engineers-group-id", "44444444-4444-4444-8444-444444444444",
    "--ml-engineers-team", "Acme-Corp/mlops-engineers",
    "--model-name", "churn-classifier",
    "--prod-reviewer-team-ids", "4242,97",
    "--manage-github", "no",
    "--bootstrap-principal-id", "66666666-6666-4666-8666-666666666666",
    "--bootstrap-principal-type", "Group",
    "--alert-email", "pager@acme.example",
    "--alert-webhook-url", "https://pager.acme.example/hooks/ml",
    "--event-webhook-url", "https://events.acme.example/mlops",
]  # fmt: skip
# plan.py's table rows: | resource type | name |
ROW = re.compile(r"^\| (\w+:\w+) \| (\S+) \|$", re.M)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("MLOPS_OFFLINE", "1")  # `mlops init` never asks GitHub in tests


def test_the_fork_answers_differ_from_the_templates_in_every_field():
    import yaml
    from helpers import ROOT

    template = yaml.safe_load((ROOT / "project.yml").read_text())
    given = dict(zip(ANSWERS[::2], ANSWERS[1::2], strict=True))
    for key, value in template.items():
        if key in ("template", "project"):  # project: each test names its own
            continue
        flag = "--" + key.replace("_", "-")
        assert flag in given, f"the fork test leaves {key} at the template's answer"
        shown = ",".join(map(str, value)) if isinstance(value, list) else str(value).lower()
        assert given[flag].lower() != {"true": "yes", "false": "no"}.get(shown, shown), key


def initialised(tmp_path, project: str):
    fork = copy_repo(tmp_path / "fork", whole=True)
    shutil.copy2(ROOT / "pyproject.toml", fork / "pyproject.toml")
    run_mlops(fork, tmp_path / "home", "init", "--yes", "--project", project, *ANSWERS)
    run_mlops(fork, tmp_path / "home", "init", "--check")
    return fork


@pytest.mark.parametrize("project", ["abc", "abcdefg", "abcdefghijkl"])
def test_the_offline_plan_of_every_stack_names_only_what_azure_accepts(tmp_path, project):
    fork = initialised(tmp_path, project)
    plan = subprocess.run(
        [sys.executable, str(fork / "infra" / "plan.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    kinds = {kind.removeprefix("azure-native:"): rule for kind, rule in KIND_OF_TYPE.items()}
    rows = [(kinds[t], name) for t, name in ROW.findall(plan.stdout) if t in kinds]
    assert {kind for kind, _ in rows} == set(kinds.values())
    for kind, name in rows:
        assert problems(kind, name) == [], (kind, name)
    assert f"rg-{project}-prod" in plan.stdout


def test_the_infra_tests_pass_in_a_fork_with_the_longest_project_name(tmp_path):
    fork = initialised(tmp_path, "abcdefghijkl")
    shutil.copytree(ROOT / "tests", fork / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "tests/infra/test_stacks.py", "tests/infra/test_plan.py", "tests/infra/test_names.py",
            "tests/infra/test_settings.py", "tests/infra/test_access.py",
            "tests/infra/test_policy.py", "tests/infra/test_order.py",
            "tests/infra/test_alerts.py", "tests/mlops/test_config.py",
        ],
        cwd=fork,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
