"""A bad environment file is refused in one sentence naming the file, the field and the value."""

import pytest
from helpers import env_setting

from mlops import config
from mlops.errors import ConfigError


@pytest.mark.parametrize("env", config.ENVIRONMENTS)
def test_the_shipped_environment_files_load(env, repo):
    loaded = config.load(env, repo)
    assert loaded.name == env
    assert loaded.model_name == env_setting(env, "model.name")


def test_only_prod_carries_the_gate(repo):
    assert config.load("prod", repo).gate.thresholds["roc_auc"] == 0.95
    with pytest.raises(ConfigError, match="no `gate` section"):
        config.load("preprod", repo).require_gate()


def edit(repo, env, old, new):
    path = repo / "environments" / f"{env}.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("env", "old", "new", "expected"),
    [
        (
            "prod",
            "version: null",
            "version: seven",
            "environments/prod.yml: field `model.version` must be a version number (a positive integer) or empty, not 'seven'",
        ),
        (
            "prod",
            "version: null",
            "version: latest",
            "field `model.version` must be a version number (a positive integer) or empty, not 'latest'",
        ),
        (
            "preprod",
            "version: null",
            "version: latest",
            "field `model.version` must be a version number (a positive integer) or empty, not 'latest'",
        ),
        (
            "prod",
            "  thresholds:\n    roc_auc: 0.95\n    recall: 0.90\n    accuracy: 0.90",
            "  thresholds: {}",
            "field `gate.thresholds` is empty; a gate with no floor would pass anything",
        ),
        ("prod", "version: null", "version: 0", "must be a version number (a positive integer)"),
        (
            "prod",
            "roc_auc: 0.95",
            "roc_auc: 1.5",
            "field `gate.thresholds.roc_auc` must be a number from 0 to 1, not 1.5",
        ),
        (
            "prod",
            "tolerance: 0.01",
            "tolerance: high",
            "field `gate.tolerance` must be int or float, not 'high'",
        ),
        (
            "preprod",
            f"name: {env_setting('preprod', 'endpoint.name')}",
            "name: BC_Preprod",
            "field `endpoint.name` must be 3-32 lowercase",
        ),
        (
            "preprod",
            "mirror_percent: 0",
            "mirror_percent: 80",
            "field `endpoint.mirror_percent` must be from 0 to 50, not 80",
        ),
        (
            "preprod",
            "instance_count: 1",
            "instance_count: 0",
            "field `endpoint.instance_count` must be at least 1, not 0",
        ),
        (
            "preprod",
            "instance_count: 1",
            "instance_count: true",
            "field `endpoint.instance_count` must be int, not True",
        ),
        (
            "dev",
            "environment: dev",
            "environment: prod",
            "field `environment` says 'prod' but the file is dev.yml",
        ),
        (
            "dev",
            "data: src/model/data/breast_cancer.csv",
            "data: nowhere.csv",
            "field `training.data` names 'nowhere.csv', which is not a file",
        ),
        (
            "dev",
            f"  name: {env_setting('dev', 'model.name')}\n",
            "",
            "field `model.name` is missing",
        ),
        ("dev", "model:", "model: [", "environments/dev.yml: not valid YAML at line"),
    ],
)
def test_a_bad_value_is_named(repo, env, old, new, expected):
    edit(repo, env, old, new)
    with pytest.raises(ConfigError) as refusal:
        config.load(env, repo)
    assert expected in str(refusal.value)
    assert "\n" not in str(refusal.value)


def test_an_unknown_environment_is_named(repo):
    with pytest.raises(
        ConfigError, match="unknown environment 'qa'; choose one of dev, preprod, prod"
    ):
        config.load("qa", repo)


def test_a_missing_file_is_named(repo):
    (repo / "environments" / "preprod.yml").unlink()
    with pytest.raises(ConfigError, match="environments/preprod.yml: file not found"):
        config.load("preprod", repo)
