"""The command line turns every mistake a user can make into one sentence and a non-zero exit."""

import pytest

from mlops import cli


@pytest.fixture
def mlops(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_ROOT", str(repo))
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLOPS_BACKEND", raising=False)

    def call(*args):
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("deploy", "--env", "prod"),
            2,
            "environments/prod.yml: model.version is empty, so there is nothing to deploy",
        ),
        (("gate", "--model", "nope"), 2, "model 'nope' must be written NAME:VERSION"),
        (("gate", "--model", "m:0"), 2, "model 'm:0' must be written NAME:VERSION"),
        (("gate",), 2, "the registry holds no model breast-cancer-classifier:latest"),
        (("register", "--job", "xyz"), 2, "no job 'xyz' in dev"),
        (("register",), 2, "no training job has run in dev yet; run `mlops train`"),
        (("share",), 2, "no model registered in dev yet"),
        (
            ("test", "--env", "prod"),
            2,
            "prod has no endpoint mlops-prod serving traffic; deploy first",
        ),
        (
            ("train", "--env", "prod"),
            2,
            "environments/prod.yml: no `training.data`; prod is not a training environment",
        ),
        (("down",), 2, "say which environments to stop: --env NAME (repeatable) or --all"),
        (
            ("profile", "--env", "prod"),
            2,
            "prod has no endpoint mlops-prod serving traffic; deploy first",
        ),
        (("profile", "--seconds", "999"), 2, "profile bounds: --seconds 0-300"),
    ],
)
def test_user_errors_are_one_sentence(mlops, args, code, message):
    exit_code, _, err = mlops(*args)
    assert exit_code == code
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in err


def test_an_unknown_backend_is_named(mlops, monkeypatch):
    monkeypatch.setenv("MLOPS_BACKEND", "gcp")
    code, _, err = mlops("status")
    assert code == 2
    assert "unknown backend 'gcp'; choose one of local, azure" in err


def test_a_bad_config_stops_a_verb_before_any_work(mlops, repo):
    prod = repo / "environments" / "prod.yml"
    prod.write_text(prod.read_text().replace("tolerance: 0.01", "tolerance: 2"))
    code, _, err = mlops("gate")
    assert code == 2
    assert "environments/prod.yml: field `gate.tolerance` must be from 0 up to 1, not 2" in err


def test_an_unknown_flag_is_refused_by_the_parser(mlops):
    with pytest.raises(SystemExit) as stop:
        mlops("deploy", "--env", "qa")
    assert stop.value.code == 2


def test_status_on_a_fresh_home_is_empty(mlops):
    code, out, _ = mlops("status")
    assert code == 0
    assert '"prod": []' in out
