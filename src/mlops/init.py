"""`mlops init`: a fork's answers, kept in project.yml, rendered into every file using them.

One source (project.yml), many places: environments/*.yml, infra/Pulumi*.yaml,
.github/CODEOWNERS and the README's badge. Rendering edits only the dependent
lines, so a second run with the same answers changes nothing. `--check` fails
when any of those files disagrees with the answers (and so with each other).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops import init_guards, yamledit
from mlops.config import ENVIRONMENTS
from mlops.errors import MlopsError
from mlops.files import load_yaml, read_text
from mlops.init_guards import TEMPLATE_KEY

ANSWERS_FILE = "project.yml"
# The CODEOWNERS lines init owns: their first owner is the ML engineers' team. Every other
# line, and every further owner on these lines, belongs to the fork.
OWNED_CODEOWNERS_PATHS = ("/environments/prod.yml", "/infra/", "/.github/")


def _infra_rules(root: Path | None = None):
    """infra/mlops_infra: the naming and settings rules the stacks apply, Pulumi-free."""
    infra = str((root or Path(__file__).resolve().parents[2]) / "infra")
    sys.path.insert(0, infra)
    try:
        from mlops_infra import naming, settings
    finally:
        sys.path.remove(infra)
    return naming, settings


class AnswerError(MlopsError):
    """An answer Azure or GitHub would refuse; nothing is written."""


def _guid(label: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = str(value).strip().lower()
        if not _infra_rules()[1].GUID.fullmatch(text):
            raise AnswerError(
                f"{label} must be a GUID like 00000000-0000-0000-0000-000000000000, not {value!r}"
            )
        return text

    return check


def _project(value: object) -> str:
    text = str(value).strip()
    if not _infra_rules()[1].PROJECT.fullmatch(text):
        raise AnswerError(
            f"project name {text!r} must be 3-12 lowercase letters and digits, starting with "
            "a letter (it becomes part of storage account and key vault names)"
        )
    return text


def _location(value: object) -> str:
    text = str(value).strip().lower().replace(" ", "")
    locations = _infra_rules()[1].LOCATIONS
    if text not in locations:
        raise AnswerError(
            f"location {value!r} is not a supported Azure region; "
            f"choose one of {', '.join(locations)}"
        )
    return text


def _repository(value: object) -> str:
    text = str(value).strip()
    if not _infra_rules()[1].REPOSITORY.fullmatch(text):
        raise AnswerError(f"GitHub repository {text!r} must be written OWNER/REPO")
    return text


def _team(value: object) -> str:
    text = str(value).strip().removeprefix("@")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}", text):
        raise AnswerError(f"GitHub team {value!r} must be written ORG/TEAM")
    return text


def _model(value: object) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,30}[a-z0-9]", text):
        raise AnswerError(f"model name {text!r} must be 3-32 lowercase letters, digits or dashes")
    return text


def _team_ids(value: object) -> list[int]:
    items = value if isinstance(value, list) else str(value).replace(" ", "").split(",")
    try:
        ids = [int(item) for item in items if str(item)]
    except ValueError:
        raise AnswerError(
            f"prod reviewer team ids must be numbers, comma-separated, not {value!r}"
        ) from None
    if not ids or any(i <= 0 for i in ids):
        raise AnswerError("name at least one GitHub team id that must approve prod deployments")
    return ids


def _github_id(label: str) -> Callable[[object], int]:
    def check(value: object) -> int:
        text = str(value).strip()
        if not text.isdigit() or int(text) <= 0:
            raise AnswerError(
                f"{label} must be a positive number (gh api repos/OWNER/REPO --jq "
                f"'.owner.id, .id'), not {value!r}"
            )
        return int(text)

    return check


def _yes_no(label: str) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        text = str(value).strip().lower()
        if text not in ("yes", "no", "true", "false"):
            raise AnswerError(f"{label} must be yes or no, not {value!r}")
        return text in ("yes", "true")

    return check


def _choice(label: str, choices: tuple[str, ...]) -> Callable[[object], str]:
    def check(value: object) -> str:
        by_lower = {c.lower(): c for c in choices}
        text = str(value).strip().lower()
        if text not in by_lower:
            raise AnswerError(f"{label} must be one of {', '.join(choices)}, not {value!r}")
        return by_lower[text]

    return check


def _optional(label: str, rule: str) -> Callable[[object], str]:
    """An answer that may stay empty (or be cleared with `none`), else must pass the stacks'
    own rule (infra/mlops_infra/settings.py), so init refuses what `pulumi up` would."""

    def check(value: object) -> str:
        text = "" if value is None else str(value).strip()
        if text.lower() in ("", "none"):
            return ""
        try:
            return getattr(_infra_rules()[1], rule)(text)
        except ValueError as problem:
            raise AnswerError(f"{label} {text!r} is refused: {problem}") from None

    return check


@dataclass(frozen=True)
class Question:
    key: str
    prompt: str
    check: Callable[[object], object]
    optional: bool = False  # an empty answer means "not configured"


QUESTIONS = (
    Question("project", "Project name (3-12 lowercase letters and digits)", _project),
    Question("subscription_id", "Azure subscription id", _guid("subscription id")),
    Question("tenant_id", "Entra tenant id", _guid("tenant id")),
    Question("location", "Azure region", _location),
    Question("github_repository", "GitHub repository (OWNER/REPO)", _repository),
    Question(
        "github_owner_id",
        "GitHub owner id (gh api repos/OWNER/REPO --jq .owner.id)",
        _github_id("GitHub owner id"),
    ),
    Question(
        "github_repository_id",
        "GitHub repository id (gh api repos/OWNER/REPO --jq .id)",
        _github_id("GitHub repository id"),
    ),
    Question(
        "github_name_only_subjects",
        "Does the repository still present name-only OIDC subjects (created before "
        "2026-07-15 and not opted in)? yes/no",
        _yes_no("github_name_only_subjects"),
    ),
    Question(
        "data_scientists_group_id",
        "Entra group id of the data scientists",
        _guid("data scientists group id"),
    ),
    Question(
        "ml_engineers_group_id",
        "Entra group id of the ML engineers",
        _guid("ML engineers group id"),
    ),
    Question(
        "ml_engineers_team", "GitHub team of the ML engineers, for CODEOWNERS (ORG/TEAM)", _team
    ),
    Question("model_name", "Model name", _model),
    Question(
        "prod_reviewer_team_ids",
        "GitHub team ids that approve prod deployments (comma-separated)",
        _team_ids,
    ),
    Question(
        "manage_github",
        "Let Pulumi manage GitHub environments, variables and gates (needs an admin token; yes/no)",
        _yes_no("manage GitHub"),
    ),
    Question(
        "bootstrap_principal_id",
        "Entra object id of the person (or group) who bootstraps the state and runs each "
        "stack's first pulumi up (az ad signed-in-user show --query id -o tsv)",
        _guid("bootstrap principal id"),
    ),
    Question(
        "bootstrap_principal_type",
        "Is that id a User or a Group?",
        _choice("bootstrap_principal_type", ("User", "Group")),
    ),
    Question(
        "alert_email",
        "Email address prod's endpoint alerts page (empty or none: no email)",
        _optional("alert email", "check_email"),
        optional=True,
    ),
    Question(
        "alert_webhook_url",
        "https webhook prod's endpoint alerts call, committed, so no key in it "
        "(empty or none: no webhook)",
        _optional("alert webhook URL", "check_https_url"),
        optional=True,
    ),
    Question(
        "event_webhook_url",
        "https webhook that receives Azure ML's lifecycle events from every workspace "
        "(empty or none: no event subscription)",
        _optional("event webhook URL", "check_https_url"),
        optional=True,
    ),
)


def validate(raw: dict, allow_placeholders: bool = False) -> dict:
    """The checked answers; the template's placeholders are refused, all named in one sentence,
    unless allowed (the template itself, and `--check`, which names them its own way)."""
    unknown = set(raw) - {q.key for q in QUESTIONS} - {TEMPLATE_KEY}
    if unknown:
        raise AnswerError(f"{ANSWERS_FILE} has unknown field(s): {', '.join(sorted(unknown))}")
    answers = {}
    for question in QUESTIONS:
        missing = raw.get(question.key) in (None, "") and raw.get(question.key) is not False
        if missing and not question.optional:
            raise AnswerError(f"no answer for {question.key} ({question.prompt})")
        answers[question.key] = question.check(raw.get(question.key))
    if not (answers["alert_email"] or answers["alert_webhook_url"]):
        raise AnswerError(
            "name an alert_email or an alert_webhook_url: prod's endpoint alerts must page someone"
        )
    left = init_guards.placeholders_in(answers)
    if left and not allow_placeholders:
        raise AnswerError(
            "; ".join(init_guards.describe(key) for key in left)
            + ": answer each with your own (mlops init --"
            + left[0].replace("_", "-")
            + " ...)"
        )
    return answers


def is_template(raw: dict) -> bool:
    """project.yml says this repository is the template itself (its placeholders allowed)."""
    return raw.get(TEMPLATE_KEY) is True


def reconcile_with_github(raw: dict) -> tuple[dict, str]:
    """The answers with GitHub's own spelling checked and its ids filled in where missing or
    placeholders; and a note to print. OIDC subjects match case-sensitively (Entra answers
    AADSTS7002138 "matches with case-insensitive comparison, but not with case-sensitive",
    github.com/Azure/login/issues/573), so a wrong case is refused, never corrected silently."""
    repository = _repository(raw.get("github_repository") or "")
    if init_guards.is_placeholder("github_repository", repository):
        return raw, ""  # refused by validate, with every other placeholder
    try:
        found = init_guards.look_up(repository)
    except init_guards.NotOnGitHub:
        raise AnswerError(
            f"github_repository {repository!r} is not found on GitHub (gh api repos/"
            f"{repository}: HTTP 404): create it first, or check its spelling"
        ) from None
    if found is None:
        return raw, (
            f"  GitHub not reached (gh api repos/{repository}): check by hand that "
            f"{repository} is spelled exactly as GitHub shows it, case included, and that "
            "github_owner_id and github_repository_id are its .owner.id and .id"
        )
    if found.full_name != repository:
        raise AnswerError(
            f"github_repository {repository!r} is spelled {found.full_name!r} on GitHub, and OIDC "
            f"subjects are case-sensitive: answer --github-repository {found.full_name}"
        )
    raw = dict(raw)
    for key, value in (
        ("github_owner_id", found.owner_id),
        ("github_repository_id", found.repository_id),
    ):
        given = raw.get(key)
        if given in (None, "") or init_guards.is_placeholder(key, given):
            raw[key] = value
        elif str(given).strip() != str(value):
            raise AnswerError(
                f"{key} is {given!r}, but GitHub says {repository} has {value}: answer --"
                f"{key.replace('_', '-')} {value}"
            )
    return raw, f"  {repository}: spelling and ids confirmed with GitHub"


# ---- line-level YAML edits: only the dependent line changes, comments stay ----------------------


def set_scalar(text: str, dotted: str, value: object, where: str, literal: bool = False) -> str:
    return yamledit.set_scalar(text, dotted, str(value) if literal else _plain(value), where)


def set_list(text: str, dotted: str, items: list, where: str) -> str:
    return yamledit.set_list(text, dotted, [_plain(item) for item in items], where)


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return (
        text
        if re.fullmatch(r"[A-Za-z0-9_./-]+", text) and not _infra_rules()[1].GUID.fullmatch(text)
        else f'"{text}"'
    )


# ---- what depends on the answers ----------------------------------------------------------------


def render(root: Path, answers: dict, template: bool = False) -> dict[Path, str]:
    """Every dependent file's new text, computed in memory; project.yml keeps `template: true`
    only when asked (the template checking itself), a fork's init writes false."""
    naming, _ = _infra_rules(root)
    project = answers["project"]
    pulumi = root / "infra" / "Pulumi.yaml"
    generation = _name_generation(pulumi)
    files: dict[Path, str] = {}
    for env in ENVIRONMENTS:
        path = root / "environments" / f"{env}.yml"
        where = path.relative_to(root).as_posix()
        names = naming.Names.build(project, env, answers["subscription_id"], generation)
        text = read_text(path, where)
        for dotted, value in (
            ("azure.resource_group", names.resource_group),
            ("azure.workspace", names.workspace),
            ("azure.registry", names.registry),
            ("model.name", answers["model_name"]),
            ("endpoint.name", names.endpoint),
        ):
            text = set_scalar(text, dotted, value, where)
        files[path] = text

    text = read_text(pulumi, "infra/Pulumi.yaml")
    for key, answer in (
        ("project", "project"),
        ("subscriptionId", "subscription_id"),
        ("tenantId", "tenant_id"),
        ("location", "location"),
        ("githubRepository", "github_repository"),
        ("githubOwnerId", "github_owner_id"),
        ("githubRepositoryId", "github_repository_id"),
        ("githubNameOnlySubjects", "github_name_only_subjects"),
        ("dataScientistsGroupId", "data_scientists_group_id"),
        ("mlEngineersGroupId", "ml_engineers_group_id"),
        ("manageGitHub", "manage_github"),
        ("alertEmail", "alert_email"),
        ("alertWebhookUrl", "alert_webhook_url"),
        ("eventWebhookUrl", "event_webhook_url"),
        ("bootstrapPrincipalId", "bootstrap_principal_id"),
        ("bootstrapPrincipalType", "bootstrap_principal_type"),
    ):
        text = set_scalar(
            text, f"config.mlops:{key}.value", _yaml_value(answers[answer]), "infra/Pulumi.yaml"
        )
    files[pulumi] = text

    github_stack = root / "infra" / "Pulumi.github.yaml"  # the reviewers are the GitHub side's
    files[github_stack] = set_list(
        read_text(github_stack, "infra/Pulumi.github.yaml"),
        "config.mlops:prodReviewerTeamIds",
        answers["prod_reviewer_team_ids"],
        "infra/Pulumi.github.yaml",
    )

    owners = root / ".github" / "CODEOWNERS"
    files[owners] = _codeowners(owners.read_text(), "@" + answers["ml_engineers_team"])

    readme = root / "README.md"
    repository = answers["github_repository"]
    files[readme] = re.sub(
        r"https://github\.com/[^/\s]+/[^/\s]+/actions/workflows/ci\.yml",
        f"https://github.com/{repository}/actions/workflows/ci.yml",
        readme.read_text(),
    )
    answers_path = root / ANSWERS_FILE
    files[answers_path] = _answers_text(answers_path, answers, template)
    return files


def _codeowners(text: str, team: str) -> str:
    """Set the first owner of the lines init owns; leave every other line and owner alone."""

    def owned(match: re.Match) -> str:
        return match.group(1) + team if match.group(2) in OWNED_CODEOWNERS_PATHS else match.group(0)

    return re.sub(r"(?m)^((\S+)\s+)@\S+", owned, text)


def _name_generation(pulumi_yaml: Path) -> int:
    """infra/Pulumi.yaml's mlops:nameGeneration: environment files name what the stacks make."""
    config = (load_yaml(pulumi_yaml, "infra/Pulumi.yaml") or {}).get("config") or {}
    spec = config.get("mlops:nameGeneration") or {}
    return int(spec.get("value", 1) if isinstance(spec, dict) else spec)


def _yaml_value(value: object) -> object:
    return str(value).lower() if isinstance(value, bool) else value


def _answers_text(path: Path, answers: dict, template: bool) -> str:
    text = (
        read_text(path, ANSWERS_FILE)
        if path.exists()
        else "".join(f"{q.key}:\n" for q in QUESTIONS)
    )
    if re.search(rf"(?m)^{TEMPLATE_KEY}:", text) or template:
        if not re.search(rf"(?m)^{TEMPLATE_KEY}:", text):
            text += f"{TEMPLATE_KEY}:\n"
        text = set_scalar(text, TEMPLATE_KEY, template, ANSWERS_FILE)
    for question in QUESTIONS:
        value = answers[question.key]
        if not re.search(rf"(?m)^{question.key}:", text):  # a question added since the last init
            text += f"{question.key}:\n"
        if isinstance(value, list):
            flow = "[" + ", ".join(str(item) for item in value) + "]"
            text = set_scalar(text, question.key, flow, ANSWERS_FILE, literal=True)
        elif isinstance(value, bool):
            text = set_scalar(text, question.key, _yaml_value(value), ANSWERS_FILE)
        else:
            text = set_scalar(text, question.key, value, ANSWERS_FILE)
    return text


def _shown(value: object) -> str:
    """An answer as the prompt shows it: lists comma-separated, yes/no for yes/no questions."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "" if value is None else str(value)


def ask(raw: dict) -> dict:
    """Prompt for each answer, showing the current one; ask again until it is valid and no
    placeholder. Input that ends early stops here, before anything is rendered."""
    answers = dict(raw)
    for question in QUESTIONS:
        while True:
            current = answers.get(question.key)
            try:
                reply = input(f"{question.prompt} [{_shown(current)}]: ").strip()
            except EOFError:
                raise AnswerError(
                    f"input ended before {question.key} was answered; nothing was written"
                ) from None
            candidate = reply or current
            try:
                if init_guards.is_placeholder(question.key, question.check(candidate)):
                    raise AnswerError(init_guards.describe(question.key) + ": answer your own")
            except MlopsError as problem:
                print(f"  {problem}")
                continue
            answers[question.key] = candidate
            break
    return answers


def load_answers(root: Path) -> dict:
    path = root / ANSWERS_FILE
    if not path.is_file():
        return {}
    data = load_yaml(path, ANSWERS_FILE) or {}
    if not isinstance(data, dict):
        raise AnswerError(f"{ANSWERS_FILE} must be a mapping of answers")
    return data


def write_all(files: dict[Path, str]) -> list[Path]:
    """Write the files that change, each by rename; return them."""
    changed = [
        path for path, text in files.items() if not path.exists() or path.read_text() != text
    ]
    staged = []
    for path in changed:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as handle:
            handle.write(files[path])
        staged.append((tmp, path))
    for tmp, path in staged:
        os.replace(tmp, path)
    return changed


def check(root: Path) -> list[str]:
    """Each placeholder left (unless project.yml marks the template itself), and the files that
    disagree with project.yml's answers (and so with each other)."""
    raw = load_answers(root)
    template = is_template(raw)
    answers = validate(raw, allow_placeholders=True)
    left = [] if template else init_guards.placeholders_in(answers)
    return [f"{ANSWERS_FILE}: {init_guards.describe(key)}" for key in left] + [
        f"{path.relative_to(root).as_posix()} disagrees with {ANSWERS_FILE}"
        for path, text in render(root, answers, template).items()
        if path.read_text() != text
    ]


NEXT_STEPS = """
Steps left that need a person (README.md, "First run of a fork", says why for each):
  1. make test, commit and push: ci.yml runs and ends green (enable Actions on a fork first).
  2. az login; create the Entra groups and GitHub team named above if they do not exist.
  3. Bootstrap the state backend once, as the bootstrap principal named above (it gets the
     data roles of the first run): pulumi up -s shared on a local backend, then move the
     shared stack into the blob container it created (infra/README.md, "First run").
  4. pulumi up -s dev, -s preprod, -s prod; then, if manage_github, pulumi up -s github with
     GITHUB_TOKEN set to a token with admin rights on the repository (no workflow runs it).
  5. Set mlops:protectMain: true in infra/Pulumi.github.yaml and pulumi up -s github again.
"""
