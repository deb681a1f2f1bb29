"""Connecting to Azure: a missing setting or an absent credential is one sentence and exit 2."""

import re
import urllib.parse

import pytest
from fake_azure import SUBSCRIPTION

from mlops import cli

CREDENTIAL_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)


@pytest.fixture
def azure_cli(fake, repo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_ROOT", str(repo))
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLOPS_BACKEND", "azure")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no az, azd or pwsh to fall back on
    for variable in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)

    def call(*args):
        code = cli.main(list(args))
        return code, capsys.readouterr().err

    return call


def test_a_missing_subscription_is_named(azure_cli, monkeypatch):
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    code, err = azure_cli("train", "--env", "dev")
    assert code == 2
    assert err.strip() == "error: the azure backend needs AZURE_SUBSCRIPTION_ID; it is not set"


def test_a_missing_workspace_names_the_variable_and_the_file(azure_cli, repo, monkeypatch):
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    dev = repo / "environments" / "dev.yml"
    dev.write_text(re.sub(r"(?m)^  workspace: .*\n", "", dev.read_text()))
    code, err = azure_cli("train", "--env", "dev")
    assert code == 2
    assert "needs AZURE_ML_WORKSPACE or `azure.workspace` in environments/dev.yml" in err


def test_no_credential_is_one_sentence_not_a_traceback(azure_cli, fake, monkeypatch):
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    code, err = azure_cli("status", "--env", "prod")
    assert code == 2
    assert err.startswith("error: no Azure credential is available: run `az login`")
    assert "Traceback" not in err and err.count("\n") == 1
    hosts = {urllib.parse.urlsplit(c.url).netloc for c in fake.calls}
    assert "management.azure.com" not in hosts, "nothing is asked of Azure without a token"


def test_down_on_azure_asks_for_yes_without_a_terminal(azure_cli, monkeypatch):
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    code, err = azure_cli("down", "--env", "preprod")  # MLOPS_BACKEND=azure, not --backend
    assert code == 2
    assert "deleting cloud endpoints needs --yes when there is no terminal to ask" in err


def test_a_jobs_variables_name_its_own_environment_and_no_other():
    """The release's preprod job exports preprod's variables and gates against prod: prod's
    names come from environments/prod.yml, never from preprod's variables."""
    from helpers import ROOT

    from mlops.backends.azure.connection import AzureSettings
    from mlops.config import load

    preprod_job = {
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_RESOURCE_GROUP": "rg-of-preprod",
        "AZURE_ML_WORKSPACE": "mlw-of-preprod",
        "AZURE_ML_REGISTRY": "mlr-shared",
        "MLOPS_VARS_ENV": "preprod",
    }
    prod, preprod = load("prod", ROOT), load("preprod", ROOT)
    read_prod = AzureSettings.resolve(prod, preprod_job)
    assert (read_prod.resource_group, read_prod.workspace, read_prod.registry) == (
        prod.azure["resource_group"],
        prod.azure["workspace"],
        prod.azure["registry"],
    )
    assert read_prod.subscription_id == SUBSCRIPTION  # one subscription holds every stack
    own = AzureSettings.resolve(preprod, preprod_job)
    assert (own.resource_group, own.workspace, own.registry) == (
        "rg-of-preprod",
        "mlw-of-preprod",
        "mlr-shared",
    )
    # a laptop's variables, bound to no environment, apply to whichever --env a verb names
    unbound = {k: v for k, v in preprod_job.items() if k != "MLOPS_VARS_ENV"}
    assert AzureSettings.resolve(prod, unbound).workspace == "mlw-of-preprod"
