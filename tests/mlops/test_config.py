"""A bad environment file is refused in one sentence naming the file, the field and the value."""

import pytest
from helpers import env_setting, run_mlops

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
            "  thresholds:\n    roc_auc: {at_least: 0.95}\n    recall: {at_least: 0.90}\n    accuracy: {at_least: 0.90}",
            "  thresholds: {}",
            "field `gate.thresholds` is empty; a gate with no floor would pass anything",
        ),
        ("prod", "version: null", "version: 0", "must be a version number (a positive integer)"),
        (
            "prod",
            "roc_auc: {at_least: 0.95}",
            "roc_auc: 0.95",
            "field `gate.thresholds.roc_auc` must be a mapping of settings, not 0.95",
        ),
        (
            "prod",
            "roc_auc: {at_least: 0.95}",
            "roc_auc: {at_least: 0.95, at_most: 0.99}",
            "field `gate.thresholds.roc_auc` must give exactly one of at_least (higher is better) or at_most (lower is better)",
        ),
        (
            "prod",
            "roc_auc: {at_least: 0.95}",
            "roc_auc: {at_least: .nan}",
            "field `gate.thresholds.roc_auc.at_least` must be a finite number, not nan",
        ),
        (
            "prod",
            "roc_auc: {at_least: 0.95}",
            "roc_auc: {at_lest: 0.95}",
            "environments/prod.yml: gate.thresholds.roc_auc.at_lest is not a known setting (did you mean at_least?)",
        ),
        (
            "prod",
            "tolerance: 0.01",
            "tolerance: 1",
            "field `gate.tolerance` must be below 1, not 1",
        ),
        (
            "prod",
            "tolerance: 0.01",
            "tolerance: high",
            "field `gate.tolerance` must be a number, not 'high'",
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
            "field `endpoint.mirror_percent` must be at most 50, not 80",
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
            "field `endpoint.instance_count` must be an integer, not True",
        ),
        (
            "preprod",
            "instance_count: 1",
            "instance_count: '1'",
            "field `endpoint.instance_count` must be an integer, not '1'",
        ),
        (
            "preprod",
            "mirror_percent: 0",
            "mirror_percnt: 20",
            "environments/preprod.yml: endpoint.mirror_percnt is not a known setting (did you mean mirror_percent?)",
        ),
        (
            "preprod",
            f"  name: {env_setting('preprod', 'model.name')}",
            f"  nmae: {env_setting('preprod', 'model.name')}",
            "environments/preprod.yml: model.nmae is not a known setting (did you mean name?)",
        ),
        (
            "prod",
            "monitor:",
            "monitr:",
            "environments/prod.yml: monitr is not a known setting (did you mean monitor?)",
        ),
        (
            "preprod",
            "window: 7d",
            "window: soon",
            "field `monitor.window` window 'soon' is neither a span",
        ),
        (
            "preprod",
            "ks: 0.2",
            "ks: 0",
            "field `monitor.ks` must be above 0, not 0",
        ),
        (
            "prod",
            "min_labels: 100",
            "min_labels: 0",
            "field `monitor.min_labels` must be at least 1, not 0",
        ),
        (
            "prod",
            "min_labels: 100",
            "min_labels: 100\n  labels: [a, b]",
            "field `monitor.labels` must be a string, not ['a', 'b']",
        ),
        (
            "dev",
            f"  compute: {env_setting('dev', 'azure.compute')}",
            "  compute: 7",
            "field `azure.compute` must be a string, not 7",
        ),
        (
            "dev",
            "environment: dev",
            "environment: prod",
            "field `environment` says 'prod' but the file is dev.yml",
        ),
        (
            "dev",
            "initial: src/model/data/breast_cancer.csv",
            "initial: nowhere.csv",
            "field `training.data.initial` names 'nowhere.csv', which is not a file",
        ),
        (
            "dev",
            "version: latest",
            "version: newest",
            "field `training.data.version` must be a version number (a positive integer) "
            "or latest, not 'newest'",
        ),
        (
            "dev",
            "version: latest",
            "version: 0",
            "field `training.data.version` must be a version number",
        ),
        (
            "dev",
            "asset: breast-cancer",
            "asset: Breast Cancer",
            "field `training.data.asset` must be 3-32 lowercase letters",
        ),
        (
            "dev",
            "asset: breast-cancer",
            "assets: breast-cancer",
            "training.data.assets is not a known setting (did you mean asset?)",
        ),
        (
            "dev",
            "  data:\n    asset: breast-cancer\n    version: latest\n"
            "    initial: src/model/data/breast_cancer.csv\n",
            "  data: src/model/data/breast_cancer.csv\n",
            "field `training.data` must name a data asset version as {asset: NAME, version: N "
            "or latest}, not the file 'src/model/data/breast_cancer.csv'",
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


def test_only_the_training_environment_may_train_on_latest(repo):
    with open(repo / "environments" / "prod.yml", "a") as handle:
        handle.write("training:\n  data: {asset: breast-cancer, version: latest}\n")
    with pytest.raises(ConfigError) as refusal:
        config.load("prod", repo)
    assert str(refusal.value) == (
        "environments/prod.yml: field `training.data.version` may say latest only in dev.yml, "
        "not in prod.yml; name a version number"
    )
    (repo / "environments" / "prod.yml").write_text(
        (repo / "environments" / "prod.yml").read_text().replace("latest", "3")
    )
    assert config.load("prod", repo).training_data == config.TrainingData("breast-cancer", 3)


def test_the_training_data_is_an_asset_version(repo):
    data = config.load("dev", repo).training_data
    assert data == config.TrainingData("breast-cancer", None, "src/model/data/breast_cancer.csv")
    assert data.shown == "breast-cancer:latest"


def test_an_unknown_environment_is_named(repo):
    with pytest.raises(
        ConfigError, match="unknown environment 'qa'; choose one of dev, preprod, prod"
    ):
        config.load("qa", repo)


def test_a_missing_file_is_named(repo):
    (repo / "environments" / "preprod.yml").unlink()
    with pytest.raises(ConfigError, match="environments/preprod.yml: file not found"):
        config.load("preprod", repo)


def test_a_typo_stops_the_command_line_with_exit_2_and_no_traceback(repo, tmp_path):
    edit(repo, "preprod", "mirror_percent: 0", "mirror_percnt: 20")
    refused = run_mlops(repo, tmp_path / "home", "status", "--env", "preprod", check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: environments/preprod.yml: endpoint.mirror_percnt is not a known setting "
        "(did you mean mirror_percent?)"
    )


def test_prod_scales_within_bounds_that_hold_its_starting_count(repo):
    scale = config.load("prod", repo).autoscale
    assert scale.min_instances <= scale.default_instances <= scale.max_instances
    assert 0 < scale.cpu_percent < 100
    assert config.load("preprod", repo).autoscale is None  # only prod scales


AUTOSCALE = "  autoscale:\n    min_instances: 1\n    max_instances: 3\n    cpu_percent: 70\n"


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (
            AUTOSCALE.replace("min_instances: 1", "min_instances: 4"),
            "environments/prod.yml: field `endpoint.autoscale` has min_instances 4 above "
            "max_instances 3",
        ),
        (
            AUTOSCALE.replace("min_instances: 1", "min_instances: 0"),
            "field `endpoint.autoscale.min_instances` must be at least 1, not 0",
        ),
        (
            AUTOSCALE.replace("max_instances: 3", "max_instances: 51"),
            "field `endpoint.autoscale.max_instances` must be at most 50, not 51",
        ),
        (
            AUTOSCALE.replace("cpu_percent: 70", "cpu_percent: 100"),
            "field `endpoint.autoscale.cpu_percent` must be below 100, not 100",
        ),
        (
            AUTOSCALE.replace("cpu_percent: 70", "cpu_percent: 0"),
            "field `endpoint.autoscale.cpu_percent` must be above 0, not 0",
        ),
        (
            AUTOSCALE.replace("cpu_percent: 70", 'cpu_percent: "70"'),
            "field `endpoint.autoscale.cpu_percent` must be an integer, not '70'",
        ),
        (
            AUTOSCALE.replace("    cpu_percent: 70\n", ""),
            "field `endpoint.autoscale.cpu_percent` is missing",
        ),
        (
            AUTOSCALE.replace("cpu_percent", "cpu_percnt"),
            "endpoint.autoscale.cpu_percnt is not a known setting (did you mean cpu_percent?)",
        ),
        (
            AUTOSCALE.replace("min_instances: 1", "min_instances: 2"),
            "field `endpoint.instance_count` is 1, outside endpoint.autoscale's 2..3; a "
            "deployment starts within its bounds",
        ),
    ],
)
def test_a_bad_autoscale_setting_is_refused_in_one_sentence(repo, new, expected):
    edit(repo, "prod", AUTOSCALE, new)
    with pytest.raises(ConfigError) as refusal:
        config.load("prod", repo)
    assert expected in str(refusal.value)
    assert "\n" not in str(refusal.value)


# ---- endpoint.alerts: the thresholds the infra stacks give Azure Monitor --------------------------


def test_alert_thresholds_load_where_the_file_sets_them(repo):
    alerts = config.load("prod", repo).alerts
    assert alerts == config.Alerts(
        latency_ms=env_setting("prod", "endpoint.alerts.latency_ms"),
        error_rate=env_setting("prod", "endpoint.alerts.error_rate"),
        cpu_percent=env_setting("prod", "endpoint.alerts.cpu_percent"),
        memory_percent=env_setting("prod", "endpoint.alerts.memory_percent"),
    )
    assert config.load("dev", repo).alerts is None  # dev pages nobody and has no rules


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("latency_ms: 500", "latency_ms: 0", "field `endpoint.alerts.latency_ms` must be at least 1, not 0"),
        ("latency_ms: 500", "latency_ms: 0.5", "field `endpoint.alerts.latency_ms` must be an integer, not 0.5"),
        ("error_rate: 0.01", "error_rate: 1.5", "field `endpoint.alerts.error_rate` must be below 1, not 1.5"),
        ("error_rate: 0.01", "error_rate: 0", "field `endpoint.alerts.error_rate` must be above 0, not 0"),
        ("cpu_percent: 80", "cpu_percent: 120", "field `endpoint.alerts.cpu_percent` must be at most 100, not 120"),
        ("memory_percent: 85", "memory_percent: '85'", "field `endpoint.alerts.memory_percent` must be a number, not '85'"),
        ("memory_percent: 85", "", "field `endpoint.alerts.memory_percent` is missing"),
        ("cpu_percent: 80", "cpu_percnt: 80", "endpoint.alerts.cpu_percnt is not a known setting (did you mean cpu_percent?)"),
        (
            "  target_rps: 20  # peak requests per second to size for (mlops profile)\n",
            "",
            "field `endpoint` has `alerts` but no `target_rps`: alerts.error_rate is a share of that load",
        ),
    ],
)  # fmt: skip
def test_a_bad_alert_threshold_is_named(repo, old, new, expected):
    edit(repo, "prod", old, new)
    with pytest.raises(ConfigError) as refusal:
        config.load("prod", repo)
    assert expected in str(refusal.value)
    assert "\n" not in str(refusal.value)
