"""The command line turns every mistake a user can make into one sentence and a non-zero exit."""

import os
import subprocess
import sys

import pytest
from helpers import env_setting

from mlops import cli

PROD_ENDPOINT = env_setting("prod", "endpoint.name")


@pytest.fixture
def mlops(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_ROOT", str(repo))
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLOPS_BACKEND", raising=False)

    def call(*args):
        try:
            code = cli.main(list(args))
        except SystemExit as stop:  # the parser's refusals: flags checked before any work
            code = stop.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("gate", "--model", "nope"), 2, "model 'nope' must be written NAME:VERSION"),
        (("gate", "--model", "m:0"), 2, "model 'm:0' must be written NAME:VERSION"),
        (("gate", "--model", "m:latest"), 2, "with a version number"),
        (("gate", "--model", "m:7"), 2, "the registry holds no model m:7"),
        # an unset step output arrives as an empty value: refused, never "the default"
        (("gate", "--model", ""), 2, "model '' must be written NAME:VERSION"),
        (("deploy", "--model", ""), 2, "model '' must be written NAME:VERSION"),
        (("promote", "--model", ""), 2, "model '' must be written NAME:VERSION"),
        (("test", "--model", ""), 2, "model '' must be written NAME:VERSION"),
        (("deploy", "--model", "m:latest"), 2, "with a version number"),
        (("promote", "--model", "m:2"), 2, "the registry holds no model m:2"),
        (("register", "--job", "xyz"), 2, "no job 'xyz' in dev"),
        (
            ("test", "--env", "prod"),
            2,
            f"prod has no endpoint {PROD_ENDPOINT} serving traffic; deploy first",
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
            f"prod has no endpoint {PROD_ENDPOINT} serving traffic; deploy first",
        ),
        (("profile", "--seconds", "999"), 2, "--seconds: must be above 0 and at most 300, not 999"),
        (("profile", "--concurrency", "0"), 2, "--concurrency: must be above 0 and at most 32"),
        (("profile", "--max-requests", "many"), 2, "--max-requests: 'many' is not a whole number"),
    ],
)
def test_user_errors_are_one_sentence(mlops, args, code, message):
    exit_code, _, err = mlops(*args)
    assert exit_code == code
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in err


def test_sharing_an_unregistered_version_is_refused(mlops):
    code, _, err = mlops("share", "--model", "m:1")
    assert code == 2
    assert err.strip().splitlines()[-1] == "error: m:1 is not registered in dev"


def test_an_unknown_backend_is_named(mlops, monkeypatch):
    monkeypatch.setenv("MLOPS_BACKEND", "gcp")
    code, _, err = mlops("status")
    assert code == 2
    assert "unknown backend 'gcp'; choose one of local, azure" in err


def test_a_bad_config_stops_a_verb_before_any_work(mlops, repo):
    prod = repo / "environments" / "prod.yml"
    prod.write_text(prod.read_text().replace("tolerance: 0.01", "tolerance: 2"))
    code, _, err = mlops("gate", "--model", "m:1")
    assert code == 2
    assert "environments/prod.yml: field `gate.tolerance` must be below 1, not 2" in err


@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "--env", "qa"),
        ("register",),  # which job: nothing is remembered between verbs
        ("share",),
        ("gate",),
        ("promote",),
        ("feedback",),  # which labels
    ],
)
def test_an_unknown_flag_or_a_missing_job_or_model_is_refused_by_the_parser(mlops, args):
    code, _, err = mlops(*args)
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("verb", "notice", "output"),
    [
        ("deploy", "notice: environments/prod.yml names no model.version", "deployed=false"),
        (
            "monitor",
            "notice: prod serves no model yet",
            "drift=false\nperformance=none\nretrain=false\nreason=none",
        ),
    ],
)
def test_a_never_promoted_prod_is_a_notice_not_a_failure(
    mlops, tmp_path, monkeypatch, verb, notice, output
):
    outputs = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    code, out, err = mlops(verb, "--env", "prod")
    assert (code, err) == (0, "")
    assert notice in out
    assert outputs.read_text() == f"{output}\n"


def test_status_on_a_fresh_home_is_empty(mlops):
    code, out, _ = mlops("status")
    assert code == 0
    assert '"prod": []' in out


def test_feedback_for_an_environment_serving_nothing_is_one_sentence(mlops, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\nr1,1\n")
    code, _, err = mlops("feedback", "--env", "prod", "--labels", str(labels))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "serving traffic, so no request to label" in err


def test_what_a_command_and_its_jobs_write_is_this_users_only(mlops, monkeypatch, tmp_path):
    """The CLI runs under umask 077: files it or a process it starts writes are 0600, folders
    0700; the mask is set back when the command ends."""
    out = tmp_path / "out"

    def writes(ctx, envs):
        (out / "folder").mkdir(parents=True)
        (out / "folder" / "by-the-command.txt").write_text("x")
        job = "open(r'%s', 'w').write('x')" % (out / "by-a-job.txt")
        subprocess.run([sys.executable, "-c", job], check=True, timeout=60)
        return {}

    monkeypatch.setattr(cli.lifecycle, "status", writes)
    before = os.umask(0o022)
    os.umask(before)
    assert mlops("status")[0] == 0
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in out.rglob("*")}
    assert modes == {"folder": "0o700", "by-the-command.txt": "0o600", "by-a-job.txt": "0o600"}
    after = os.umask(before)
    assert after == before
