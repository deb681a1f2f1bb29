"""The gate holds a challenger's lineage tags against its bytes and its data: a registry entry
whose onnx_sha256 or data_version tag was edited is refused, and metadata of the wrong shape
is one sentence, never a traceback."""

from __future__ import annotations

import json

import pytest
from endpoint_client import MODEL, fresh_home
from helpers import run_mlops

CHALLENGER = f"{MODEL}:1"


@pytest.fixture
def world(shared_model, tmp_path):
    repo, home = fresh_home(shared_model, tmp_path / "home")
    return repo, home, home / "registry" / MODEL / "1" / "meta.json"


def edit_meta(path, change) -> None:
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def gate(repo, home):
    done = run_mlops(repo, home, "gate", "--env", "prod", "--model", CHALLENGER, check=False)
    return done.returncode, (done.stderr.strip().splitlines() or [""])[-1]


def test_the_untouched_challenger_passes(world):
    repo, home, _ = world
    assert gate(repo, home)[0] == 0


def test_a_wrong_onnx_sha256_tag_refuses_the_gate(world):
    repo, home, meta = world
    edit_meta(meta, lambda m: m["tags"].update(onnx_sha256="0" * 64))
    code, said = gate(repo, home)
    assert code == 3
    assert said.startswith(f"error: {CHALLENGER}: model.onnx (sha256 ")
    assert "does not match its onnx_sha256 tag (000000000000…); failing closed" in said


@pytest.mark.parametrize(
    ("version", "expected"), [("2", "is not in the registry"), ("x", "not a version number")]
)
def test_a_wrong_data_version_tag_refuses_the_gate(world, version, expected):
    repo, home, meta = world
    edit_meta(meta, lambda m: m["tags"].update(data_version=version))
    code, said = gate(repo, home)
    assert code == 3 and expected in said and said.endswith("failing closed"), said


def test_a_data_version_holding_other_bytes_refuses_the_gate(world):
    repo, home, meta = world
    data_meta = home / "registry" / "data" / json.loads(meta.read_text())["tags"]["data_asset"]
    edit_meta(data_meta / "1" / "meta.json", lambda m: m["tags"].update(sha256="1" * 64))
    code, said = gate(repo, home)
    assert code == 3 and "its data_sha256 differs from that version's sha256" in said, said


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m: m.update(tags=[]), "tags"),
        (lambda m: m["tags"].update(onnx_sha256=7), "tags.onnx_sha256"),
        (lambda m: m.pop("artifact_sha256"), "artifact_sha256"),
        (lambda m: m.update(version=2), "version"),
    ],
)
def test_registry_metadata_of_the_wrong_shape_is_one_sentence(world, change, field):
    repo, home, meta = world
    edit_meta(meta, change)
    code, said = gate(repo, home)
    assert code == 2
    named = (
        f"error: {meta}: field `{field}` ",
        f"error: state file {meta} is unreadable ({field}: ",
    )
    assert said.startswith(named) and "Traceback" not in said, said
