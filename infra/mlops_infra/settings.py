"""Stack settings from Pulumi config, every `mlops:*` value checked here and only here.

A bad value stops the program with one sentence naming the key, the value and
the file that holds it (a `pulumi.RunError`, which Pulumi prints without a
traceback). The value rules are Pulumi-free, so `mlops init` checks its answers
with the same ones."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from mlops.config import ENVIRONMENTS  # one list of environments, the lifecycle's

try:
    from pulumi import RunError as _Stop
except ImportError:  # `mlops init` uses the rules without Pulumi installed
    _Stop = Exception

INFRA = Path(__file__).resolve().parents[1]
SHARED = "shared"
# The GitHub side (environments, their reviewers and variables, repository variables, the label,
# main's protection), in a stack only an administrator runs: no workflow applies or previews it,
# so no workflow needs a GitHub token (infra/README.md, "The GitHub side").
GITHUB = "github"

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# 3-12 lowercase letters and digits, a letter first: every name in naming.py fits Azure's
# rules for every such project (tests/infra/test_names.py sweeps them).
PROJECT = re.compile(r"[a-z][a-z0-9]{2,11}")
# GitHub: an owner is 1-39 alphanumerics or single hyphens; a repository 1-100 of [A-Za-z0-9._-].
REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
VM_SIZE = re.compile(r"Standard_[A-Za-z0-9_]+")
# Regions that offer Azure Machine Learning managed online endpoints and registries.
LOCATIONS = (
    "australiaeast", "brazilsouth", "canadacentral", "centralindia", "centralus", "eastasia",
    "eastus", "eastus2", "francecentral", "germanywestcentral", "japaneast", "koreacentral",
    "northcentralus", "northeurope", "norwayeast", "southafricanorth", "southcentralus",
    "southeastasia", "swedencentral", "switzerlandnorth", "uaenorth", "uksouth", "westeurope",
    "westus", "westus2", "westus3",
)  # fmt: skip
MAX_COMPUTE_NODES = 100


class SettingsError(_Stop):
    """A config value Azure, GitHub or the program would refuse."""


@dataclass(frozen=True)
class Settings:
    stack: str
    project: str
    location: str
    subscription_id: str
    tenant_id: str
    github_repository: str  # OWNER/REPO
    data_scientists_group: str
    ml_engineers_group: str
    compute_vm_size: str
    compute_max_nodes: int
    manage_github: bool
    purge_protection: bool
    name_generation: int
    prod_reviewer_team_ids: list[int] = field(default_factory=list)
    # GitHub's immutable ids, for OIDC subjects (`gh api repos/OWNER/REPO --jq '.owner.id, .id'`)
    github_owner_id: int = 0
    github_repository_id: int = 0
    github_name_only_subjects: bool = False  # also trust repo:OWNER/REPO:... (old claim format)
    shared_stack: str = ""
    protect_main: bool = False
    # Who hears of alerts and events (`mlops init`); empty: not configured.
    alert_email: str = ""
    alert_webhook_url: str = ""
    event_webhook_url: str = ""
    # Who bootstraps the state backend and runs the first `pulumi up` (state_access.py)
    bootstrap_principal_id: str = ""
    bootstrap_principal_type: str = "User"

    @staticmethod
    def from_config(stack: str) -> Settings:
        import pulumi

        config = pulumi.Config("mlops")
        return Settings.parse(stack, {key: config.get(key) for key in KEYS})

    @staticmethod
    def parse(stack: str, raw: dict[str, str | None], infra: Path = INFRA) -> Settings:
        """Check every value (raw strings, as Pulumi config holds them) and build the settings."""
        if stack not in (SHARED, GITHUB, *ENVIRONMENTS):
            raise SettingsError(
                f"stack {stack!r} is none of {SHARED}, {GITHUB}, {', '.join(ENVIRONMENTS)}: "
                f"name it after one of the infra/Pulumi.<stack>.yaml files"
            )
        _refuse_unknown_keys(stack, infra)
        values = {}
        for key, (required, check) in KEYS.items():
            value = raw.get(key)
            if value in (None, ""):
                if required:
                    raise SettingsError(
                        f"mlops:{key} is not set in {_file_of(key, stack, infra)}; "
                        "run `mlops init` to set it"
                    )
                values[key] = None
                continue
            try:
                values[key] = check(value)
            except ValueError as problem:
                raise SettingsError(
                    f"mlops:{key} is {value!r} in {_file_of(key, stack, infra)}: {problem}"
                ) from None
        teams = values["prodReviewerTeamIds"] or []
        manage_github = bool(values["manageGitHub"])
        if stack == GITHUB and manage_github and not teams:
            where = _file_of("prodReviewerTeamIds", stack, infra)
            raise SettingsError(
                f"mlops:prodReviewerTeamIds is empty in {where}: without reviewers the prod "
                "gate would do nothing; name at least one team id"
            )
        if stack == "prod" and not (values["alertEmail"] or values["alertWebhookUrl"]):
            where = _file_of("alertEmail", stack, infra)
            raise SettingsError(
                f"mlops:alertEmail and mlops:alertWebhookUrl are both empty in {where}: prod's "
                "alerts would page nobody; run `mlops init` to name a receiver"
            )
        return Settings(
            stack=stack,
            project=values["project"],
            location=values["location"],
            subscription_id=values["subscriptionId"],
            tenant_id=values["tenantId"],
            github_repository=values["githubRepository"],
            data_scientists_group=values["dataScientistsGroupId"],
            ml_engineers_group=values["mlEngineersGroupId"],
            compute_vm_size=values["computeVmSize"],
            compute_max_nodes=values["computeMaxNodes"],
            manage_github=manage_github,
            purge_protection=bool(values["purgeProtection"]),
            name_generation=values["nameGeneration"] or 1,
            prod_reviewer_team_ids=teams,
            github_owner_id=values["githubOwnerId"],
            github_repository_id=values["githubRepositoryId"],
            github_name_only_subjects=bool(values["githubNameOnlySubjects"]),
            shared_stack=values["sharedStack"] or "",
            protect_main=bool(values["protectMain"]),
            alert_email=values["alertEmail"] or "",
            alert_webhook_url=values["alertWebhookUrl"] or "",
            event_webhook_url=values["eventWebhookUrl"] or "",
            bootstrap_principal_id=values["bootstrapPrincipalId"],
            bootstrap_principal_type=values["bootstrapPrincipalType"] or "User",
        )


# ---- one check per kind of value: return the parsed value or raise ValueError(why) ----------


def check_guid(value: str) -> str:
    text = str(value).strip().lower()
    if not GUID.fullmatch(text):
        raise ValueError("it must be a GUID like 00000000-0000-0000-0000-000000000000")
    return text


def check_project(value: str) -> str:
    if not PROJECT.fullmatch(str(value)):
        raise ValueError("it must be 3-12 lowercase letters and digits, starting with a letter")
    return str(value)


def check_location(value: str) -> str:
    if value not in LOCATIONS:
        raise ValueError(f"it must be one of {', '.join(LOCATIONS)}")
    return value


def check_repository(value: str) -> str:
    if not REPOSITORY.fullmatch(str(value)):
        raise ValueError("it must be written OWNER/REPO")
    return str(value)


def check_vm_size(value: str) -> str:
    if not VM_SIZE.fullmatch(str(value)):
        raise ValueError("it must be an Azure VM size such as Standard_DS2_v2")
    return str(value)


def _whole_number(low: int, high: int) -> Callable[[str], int]:
    def check(value: str) -> int:
        try:
            number = int(str(value))
        except ValueError:
            raise ValueError(f"it must be a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise ValueError(f"it must be a whole number from {low} to {high}")
        return number

    return check


def check_bool(value: str) -> bool:
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError("it must be true or false")
    return text == "true"


def check_team_ids(value: str) -> list[int]:
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in items
    ):
        raise ValueError("it must be a list of GitHub team ids (positive numbers)")
    return items


def check_stack_reference(value: str) -> str:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+/[\w.-]+", str(value)):
        raise ValueError("it must be written ORGANIZATION/PROJECT/STACK")
    return str(value)


# Deliberately plain: one @, no spaces, a dot in the domain. The mailbox is the real test.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def check_email(value: str) -> str:
    text = str(value).strip()
    if len(text) > 254 or not EMAIL.fullmatch(text):  # RFC 5321: a path holds 254 characters
        raise ValueError("it must be an email address such as ops@example.com")
    return text


def check_https_url(value: str) -> str:
    """A webhook both Event Grid and action groups can call, and safe to commit."""
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname or " " in text:
        # "Event Grid only supports HTTPS webhook endpoints" (learn: event-grid/event-handlers)
        raise ValueError("it must be an https:// URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(
            "it must carry no user, password, query or fragment: the URL is committed in "
            "infra/Pulumi.yaml, so a key in it would be public"
        )
    return text


def check_principal_type(value: str) -> str:
    # the role assignment's principalType for a person or an Entra group (REST spec enum)
    text = str(value).strip()
    if text not in ("User", "Group"):
        raise ValueError("it must be User or Group")
    return text


# key -> (required, check)
KEYS: dict[str, tuple[bool, Callable]] = {
    "project": (True, check_project),
    "location": (True, check_location),
    "subscriptionId": (True, check_guid),
    "tenantId": (True, check_guid),
    "githubRepository": (True, check_repository),
    "dataScientistsGroupId": (True, check_guid),
    "mlEngineersGroupId": (True, check_guid),
    "computeVmSize": (True, check_vm_size),
    "computeMaxNodes": (True, _whole_number(1, MAX_COMPUTE_NODES)),
    "manageGitHub": (False, check_bool),
    "purgeProtection": (False, check_bool),
    "nameGeneration": (False, _whole_number(1, 999)),
    "prodReviewerTeamIds": (False, check_team_ids),
    "githubOwnerId": (True, _whole_number(1, 2**63 - 1)),  # GitHub's numeric ids
    "githubRepositoryId": (True, _whole_number(1, 2**63 - 1)),
    "githubNameOnlySubjects": (False, check_bool),
    "sharedStack": (False, check_stack_reference),
    "protectMain": (False, check_bool),
    "alertEmail": (False, check_email),
    "alertWebhookUrl": (False, check_https_url),
    "eventWebhookUrl": (False, check_https_url),
    "bootstrapPrincipalId": (True, check_guid),
    "bootstrapPrincipalType": (False, check_principal_type),
}


def _stack_config(path: Path) -> dict:
    if not path.is_file():
        return {}
    return (yaml.safe_load(path.read_text()) or {}).get("config") or {}


def _file_of(key: str, stack: str, infra: Path) -> str:
    """The file a value comes from: the stack's own file when it sets the key, else Pulumi.yaml."""
    if f"mlops:{key}" in _stack_config(infra / f"Pulumi.{stack}.yaml"):
        return f"infra/Pulumi.{stack}.yaml"
    return "infra/Pulumi.yaml"


def _refuse_unknown_keys(stack: str, infra: Path) -> None:
    for name in ("Pulumi.yaml", f"Pulumi.{stack}.yaml"):
        for key in _stack_config(infra / name):
            namespace, _, short = str(key).partition(":")
            if namespace == "mlops" and short not in KEYS:
                close = difflib.get_close_matches(short, KEYS, n=1)
                hint = (
                    f"did you mean mlops:{close[0]}?"
                    if close
                    else f"known: {', '.join('mlops:' + k for k in KEYS)}"
                )
                raise SettingsError(
                    f"{key} in infra/{name} is not a setting this program reads; {hint}"
                )
