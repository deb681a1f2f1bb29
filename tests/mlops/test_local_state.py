"""A local endpoint's state file is read through its model: any other shape is one sentence
naming the file and the field, never a KeyError further on."""

from __future__ import annotations

import json

import pytest

from mlops.backends.local import state_files
from mlops.backends.local.meta import read_meta
from mlops.errors import MlopsError
from mlops.state import StateUnreadable, read_checked

GOOD = {
    "name": "mlops-preprod",
    "port": 8123,
    "key": "k",
    "router_pid": 4242,
    "traffic": {"blue": 100},
    "mirror_traffic": {},
    "deployments": {
        "blue": {
            "status": "Succeeded",
            "pid": 4343,
            "port": 8124,
            "marker": "/home/x/azureml-models",
            "model": "m:1",
            "artifact_sha256": "ab" * 32,
            "folder": "/home/x",
        }
    },
}


def test_a_good_state_reads_back_with_its_defaults(tmp_path):
    path = tmp_path / "endpoint.json"
    path.write_text(json.dumps(GOOD))
    state = read_checked(path, state_files.checked)
    assert state["deployments"]["blue"]["replicas"] == []
    assert state["deployments"]["blue"]["autoscale"] is None
    assert state["traffic"] == {"blue": 100}
    assert read_checked(tmp_path / "absent.json", state_files.checked) is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: s.pop("name"), "name: field required"),
        (lambda s: s.update(traffic=[100]), "traffic: input should be a valid dictionary"),
        (lambda s: s.update(traffic={"blue": 101}), "traffic.blue: input should be less than"),
        (lambda s: s.update(port="8123"), "port: input should be a valid integer"),
        (lambda s: s.update(port=0), "port: input should be greater than or equal to 1"),
        (lambda s: s["deployments"].update(blue="x"), "deployments.blue: input should be"),
        (lambda s: s["deployments"]["blue"].pop("marker"), "deployments.blue.marker: field"),
        (
            lambda s: s.update(traffic={"ghost": 100}),
            "traffic names 'ghost', which is none of the endpoint's deployments",
        ),
        (
            lambda s: s.update(mirror_traffic={"green": 20}),
            "mirror_traffic names 'green', which is none of the endpoint's deployments",
        ),
        (
            lambda s: s["deployments"]["blue"].update(autoscale={"min": 1}),
            "deployments.blue.autoscale.min_instances: field required",
        ),
    ],
)
def test_another_shape_is_one_sentence_naming_the_file_and_field(tmp_path, change, named):
    path = tmp_path / "endpoint.json"
    state = json.loads(json.dumps(GOOD))
    change(state)
    path.write_text(json.dumps(state))
    with pytest.raises(StateUnreadable) as refused:
        read_checked(path, state_files.checked)
    message = str(refused.value)
    assert str(path) in message and named in message and "\n" not in message, message


def test_nesting_too_deep_for_the_parser_is_one_sentence(tmp_path):
    path = tmp_path / "endpoint.json"
    path.write_text('{"name": "x", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(StateUnreadable, match="endpoint.json is unreadable"):
        read_checked(path, state_files.checked)


def test_a_batch_endpoint_state_of_another_shape_is_one_sentence(tmp_path):
    path = tmp_path / "endpoint.json"
    path.write_text(json.dumps({"default": "blue", "deployments": {"blue": {"model": "m:1"}}}))
    with pytest.raises(StateUnreadable, match=r"deployments\.blue\.artifact_sha256: field"):
        read_checked(path, state_files.checked_batch)


@pytest.mark.parametrize(
    ("check", "data", "named"),
    [
        (state_files.checked_job, {"id": "j", "status": 3}, "status: input should be"),
        (state_files.checked_step, {"step": "prep"}, "job: field required"),
    ],
)
def test_the_other_local_state_files_are_checked_too(tmp_path, check, data, named):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StateUnreadable, match=named):
        read_checked(path, check)


@pytest.mark.parametrize(
    ("shape", "data", "named"),
    [
        (state_files.DataMeta, {"tags": {}}, "file: field required"),
        (state_files.DataMeta, {"file": "d.csv", "tags": []}, "tags: input should be"),
        (state_files.ModelMeta, {"name": "m", "version": 1, "tags": {}}, "artifact_sha256: field"),
    ],
)
def test_a_version_meta_of_another_shape_is_one_sentence(tmp_path, shape, data, named):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StateUnreadable, match=named):
        read_meta(path, shape)


def test_a_model_meta_naming_another_version_than_its_folder_is_refused(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"name": "m", "version": 2, "artifact_sha256": "0" * 64}))
    with pytest.raises(MlopsError, match="field `version` is 2, but its folder says 1"):
        read_meta(path, state_files.ModelMeta, name="m", version=1)


def test_the_home_is_closed_only_if_made_here(tmp_path, capsys):
    """A home the project makes is 0700; one that already existed (MLOPS_HOME=/tmp) keeps its
    mode, with a warning if others can read it; the project's own folders are closed."""
    from mlops.state import private_dir

    mode = lambda path: path.stat().st_mode & 0o777  # noqa: E731
    made = private_dir(tmp_path / "new" / "home")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    private_dir(shared)
    own = shared / "dev"
    own.mkdir(mode=0o755)
    own.chmod(0o755)
    private_dir(own, own=True)
    assert (mode(made), mode(shared), mode(own)) == (0o700, 0o755, 0o700)
    assert f"warning: {shared} is readable by other users" in capsys.readouterr().err
