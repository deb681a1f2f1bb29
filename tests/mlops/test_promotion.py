"""The promotion pull request changes one line of prod.yml and tells the whole story."""

import pytest
import yaml

from mlops.backends.base import ModelVersion
from mlops.errors import MlopsError
from mlops.gate import Verdict
from mlops.promotion import bump_version, render

PROD = """# prod settings
environment: prod
model:
  name: m
  version: null  # nothing promoted yet
endpoint:
  name: mlops-prod
  version: 9
"""


def model(version, **metrics):
    tags = {f"metric.{k}": str(v) for k, v in metrics.items()}
    tags.update(git_commit="abc123", data_sha256="d" * 64, run_id="r1", onnx_sha256="e" * 64)
    return ModelVersion("m", version, tags, "e" * 64, "/nowhere")


def test_only_model_version_changes():
    new = bump_version(PROD, 4)
    changed = [(a, b) for a, b in zip(PROD.splitlines(), new.splitlines(), strict=True) if a != b]
    assert changed == [
        (
            "  version: null  # nothing promoted yet",
            "  version: 4  # set by the promotion pull request",
        )
    ]
    assert yaml.safe_load(new)["model"]["version"] == 4
    assert yaml.safe_load(new)["endpoint"]["version"] == 9


def test_a_file_without_model_version_is_refused():
    with pytest.raises(MlopsError, match="no `version:` line under `model:`"):
        bump_version("environment: prod\nmodel:\n  name: m\n", 2)


def test_the_body_compares_challenger_and_champion_and_carries_lineage():
    verdict = Verdict(True, ["ok: challenger roc_auc 0.9900 vs champion 0.9500 (tolerance 0.01)"])
    promotion = render(
        bump_version(PROD, 3), model(4, roc_auc=0.99), model(3, roc_auc=0.95), verdict
    )
    assert promotion.title == "Promote m:4 to prod"
    assert "| roc_auc | 0.9900 | 0.9500 | +0.0400 |" in promotion.body
    assert "| git commit | `abc123` | `abc123` |" in promotion.body
    assert "- ok: challenger roc_auc" in promotion.body
    assert "-  version: 3  # set by the promotion pull request" in promotion.diff
    assert "+  version: 4  # set by the promotion pull request" in promotion.diff
    assert promotion.diff in promotion.body
