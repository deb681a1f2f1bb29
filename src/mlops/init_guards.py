"""What `mlops init` refuses beyond a value's shape: the template's placeholders, and a
repository whose spelling or ids differ from GitHub's.

The template's project.yml answers with placeholders that name no real subscription, group,
team or mailbox; they are allowed only while project.yml says `template: true` (the template
repository itself). A fork's `mlops init` refuses each by name, and writes `template: false`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

TEMPLATE_KEY = "template"
# The template's own answers (project.yml): each names no real identity, team or receiver.
PLACEHOLDERS: dict[str, object] = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "tenant_id": "00000000-0000-0000-0000-000000000000",
    "github_repository": "your-org/azureml-mlops-template",
    "github_owner_id": 1000001,
    "github_repository_id": 2000002,
    "data_scientists_group_id": "11111111-1111-1111-1111-111111111111",
    "ml_engineers_group_id": "22222222-2222-2222-2222-222222222222",
    "ml_engineers_team": "your-org/ml-engineers",
    "prod_reviewer_team_ids": 1234567,  # refused wherever it appears in the list
    "bootstrap_principal_id": "99999999-9999-9999-9999-999999999999",
    "alert_email": "ml-oncall@example.com",
}
OFFLINE_VARIABLE = "MLOPS_OFFLINE"  # set: never ask GitHub (tests, air-gapped machines)


def is_placeholder(key: str, value: object) -> bool:
    if key not in PLACEHOLDERS or value in (None, ""):
        return False
    placeholder = PLACEHOLDERS[key]
    if isinstance(value, list):
        return placeholder in value
    return str(value).strip().lower() == str(placeholder).lower()


def placeholders_in(answers: dict) -> list[str]:
    """The answers still holding the template's placeholder, in question order."""
    return [key for key in PLACEHOLDERS if is_placeholder(key, answers.get(key))]


def describe(key: str) -> str:
    return f"{key} is the template's placeholder {PLACEHOLDERS[key]!r}"


@dataclass(frozen=True)
class GitHubRepository:
    full_name: str  # as GitHub spells it
    owner_id: int
    repository_id: int


class NotOnGitHub(Exception):
    """GitHub answered, and has no such repository (or hides it from this login)."""


def look_up(repository: str) -> GitHubRepository | None:
    """GitHub's own spelling and ids of OWNER/REPO (`gh api repos/OWNER/REPO`: GitHub matches
    the path in any case and answers the canonical `full_name`, docs.github.com REST "Get a
    repository"), or None when gh is missing, not logged in, or GitHub cannot be reached."""
    if os.environ.get(OFFLINE_VARIABLE):
        return None
    command = ["gh", "api", f"repos/{repository}", "--jq", "{full_name, owner: .owner.id, id}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        if "HTTP 404" in done.stderr:
            raise NotOnGitHub(repository)
        return None
    try:
        found = json.loads(done.stdout)
        return GitHubRepository(str(found["full_name"]), int(found["owner"]), int(found["id"]))
    except (ValueError, KeyError, TypeError):
        return None
