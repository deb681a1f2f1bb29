"""A bad infra setting stops the program with one sentence: key, value and file."""

import re
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT
from mlops_infra.offline import run_stack, stack_config, stack_settings
from mlops_infra.settings import KEYS, SettingsError
from pulumi import RunError


@pytest.mark.parametrize(
    ("stack", "key", "value", "file"),
    [
        ("dev", "subscriptionId", "my-subscription", "infra/Pulumi.yaml"),
        ("dev", "tenantId", "contoso.onmicrosoft.com", "infra/Pulumi.yaml"),
        ("prod", "dataScientistsGroupId", "Data Scientists", "infra/Pulumi.yaml"),
        ("shared", "githubRepository", "azureml-mlops-template", "infra/Pulumi.yaml"),
        ("dev", "project", "My_Project", "infra/Pulumi.yaml"),
        ("dev", "project", "averyveryverylongname", "infra/Pulumi.yaml"),
        ("preprod", "location", "atlantis", "infra/Pulumi.yaml"),
        ("dev", "computeVmSize", "big", "infra/Pulumi.yaml"),
        ("dev", "computeMaxNodes", "two", "infra/Pulumi.yaml"),
        ("dev", "computeMaxNodes", "0", "infra/Pulumi.yaml"),
        ("dev", "manageGitHub", "maybe", "infra/Pulumi.yaml"),
        ("prod", "purgeProtection", "yes please", "infra/Pulumi.prod.yaml"),
        ("dev", "nameGeneration", "-1", "infra/Pulumi.yaml"),
        ("github", "prodReviewerTeamIds", '["ops"]', "infra/Pulumi.github.yaml"),
        ("dev", "sharedStack", "shared", "infra/Pulumi.yaml"),
        ("github", "protectMain", "soon", "infra/Pulumi.github.yaml"),
    ],
)
def test_a_bad_value_is_one_sentence_naming_key_value_and_file(stack, key, value, file):
    with pytest.raises(SettingsError) as refused:
        stack_settings(stack, overrides={f"mlops:{key}": value})  # what Settings.from_config runs
    message = str(refused.value)
    assert message.startswith(f"mlops:{key} is {value!r} in {file}: it must be"), message
    assert "\n" not in message


@pytest.mark.parametrize("stack", ["shared", "dev", "preprod", "prod"])
def test_every_key_the_stack_files_set_is_checked(stack):
    set_here = {key.removeprefix("mlops:") for key in stack_config(stack)}
    assert set_here <= set(KEYS)


def test_a_missing_required_value_and_an_unknown_key_are_named(tmp_path):
    infra = shutil.copytree(
        ROOT / "infra", tmp_path / "infra", ignore=shutil.ignore_patterns("__pycache__")
    )
    with pytest.raises(SettingsError, match=r"^mlops:tenantId is not set in infra/Pulumi.yaml"):
        stack_settings("dev", infra, overrides={"mlops:tenantId": ""})
    stack_file = infra / "Pulumi.dev.yaml"
    stack_file.write_text("config:\n  mlops:computeVMSize: Standard_DS3_v2\n")
    with pytest.raises(
        SettingsError,
        match=r"^mlops:computeVMSize in infra/Pulumi.dev.yaml is not a setting this program "
        r"reads; did you mean mlops:computeVmSize\?$",
    ):
        stack_settings("dev", infra)


def test_the_program_stops_on_a_bad_value_before_building_anything():
    with pytest.raises(
        SettingsError, match=r"^mlops:computeMaxNodes is 'two' in infra/Pulumi.yaml"
    ):
        run_stack("dev", overrides={"mlops:computeMaxNodes": "two"})


def test_pulumi_prints_the_sentence_without_a_traceback():
    # pulumi.RunError: "a clean exit rather than the usual verbose unhandled error logic"
    # (pulumi/errors.py); the program raises nothing else for a bad setting.
    assert issubclass(SettingsError, RunError)


def test_the_offline_plan_ends_with_the_sentence_and_exit_2(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "infra", repo / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    pulumi_yaml = repo / "infra" / "Pulumi.yaml"
    pulumi_yaml.write_text(
        re.sub(r"(mlops:tenantId:\n    value: ).*", r"\1contoso", pulumi_yaml.read_text())
    )
    result = subprocess.run(
        [sys.executable, str(repo / "infra" / "plan.py"), "dev"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: mlops:tenantId is 'contoso' in infra/Pulumi.yaml: "
        "it must be a GUID like 00000000-0000-0000-0000-000000000000\n"
    )
