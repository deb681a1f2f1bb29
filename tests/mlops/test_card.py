"""A version's model card: read from its files, completed from its tags and the gate's verdict,
rendered by src/model/card.py; a version without one is one sentence."""

import json
import shutil

import card as model_card
import pytest
from helpers import ROOT

from mlops import card
from mlops.backends.base import ModelVersion
from mlops.backends.local.backend import LocalBackend
from mlops.context import Context
from mlops.errors import MlopsError
from mlops.gate import Verdict
from mlops.lineage import TAG_ARTIFACT, sha256_of


@pytest.fixture
def ctx(tmp_path):
    return Context(ROOT, tmp_path, backend_factory=lambda cfg: LocalBackend(cfg, ROOT, tmp_path))


def version(trained_model, folder, with_card=True, **tags) -> ModelVersion:
    folder.mkdir()
    shutil.copy(trained_model / "model" / "model.onnx", folder / "model.onnx")
    if with_card:
        shutil.copy(trained_model / model_card.CARD_JSON, folder / model_card.CARD_JSON)
    sha = sha256_of(folder / "model.onnx")
    lineage = {  # as model_tags gives every registered version, the artifact's sha256 included
        "job_id": "job-7",
        "run_id": "run-7",
        "git_commit": "abc123",
        "data_sha256": "d",
        TAG_ARTIFACT: sha,
    }
    return ModelVersion("m", 7, {**lineage, **tags}, sha, str(folder))


def test_the_card_is_completed_from_the_versions_tags_and_verdict(ctx, trained_model, tmp_path):
    verdict = Verdict(passed=False, reasons=["REFUSED: challenger recall on size=small 0.5"])
    key, value = card.verdict_tag("prod", verdict)
    model = version(
        trained_model, tmp_path / "v7", data_asset="cells", data_version="3", **{key: value}
    )
    found = card.card_of(ctx, "prod", model)
    assert found["model"] == "m:7" and found["data"]["asset_version"] == "cells:3"
    assert found["lineage"] | {"data_sha256": "d"} == {
        "commit": "abc123",
        "job": "job-7",
        "run": "run-7",
        "data_sha256": "d",
        "artifact_sha256": model.artifact_sha256,
    }
    assert found["verdict"]["passed"] is False and found["verdict"]["reasons"] == verdict.reasons
    text = card.render(ROOT, found)
    assert text == model_card.render(found)  # one renderer, run as the code snapshot's
    assert "- refused for prod (" in text and "REFUSED: challenger recall on size=small" in text
    assert card.card_of(ctx, "dev", model)["verdict"] is None  # no verdict for dev yet


def test_a_version_without_a_card_is_one_sentence(ctx, trained_model, tmp_path):
    model = version(trained_model, tmp_path / "v7", with_card=False)
    with pytest.raises(MlopsError) as refused:
        card.card_of(ctx, "prod", model)
    assert str(refused.value) == (
        "m:7 carries no card.json: it was registered before the evaluate step wrote model cards"
    )


def test_the_comparison_renders_both_cards(ctx, trained_model, tmp_path):
    ours = card.card_of(ctx, "prod", version(trained_model, tmp_path / "a"))
    theirs = json.loads(json.dumps(ours)) | {"model": "m:6"}
    theirs["metrics"]["recall"] = 0.5
    text = card.compare(ROOT, ours, theirs)
    assert f"| {model_card.CHANGED} **metric recall** |" in text
    assert "| model | m:7 | m:6 |" in text
