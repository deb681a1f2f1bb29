"""The promotion pull request changes one line of prod.yml and tells the whole story."""

import pytest
import yaml

from mlops.backends.base import ModelVersion
from mlops.errors import MlopsError
from mlops.gate import Champion, GateResult, Verdict
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


def test_the_body_shows_the_exam_the_preprod_check_and_the_recorded_tags():
    verdict = Verdict(True, ["ok: challenger roc_auc 0.9900 vs champion 0.9500 (tolerance 0.01)"])
    result = GateResult(
        challenger=model(4, roc_auc=0.98),
        champion=Champion(
            "m:3", {"roc_auc": 0.95}, source="prod's live endpoint (mlops-prod/blue)"
        ),
        champion_model=model(3, roc_auc=0.97),
        figures={"roc_auc": 0.99},
        paper="data.csv (sha256 abc…), seed 42, test fraction 0.2",
        verdict=verdict,
    )
    promotion = render(bump_version(PROD, 3), result, "preprod's live deployment serves `m:4`")
    assert promotion.title == "Promote m:4 to prod"
    exam, recorded = promotion.body.split("### Metrics each training run recorded")
    assert "| roc_auc | 0.9900 | 0.9500 | +0.0400 |" in exam  # judged: the same rows for both
    assert "| roc_auc | 0.9800 | 0.9700 | +0.0100 |" in recorded  # kept for reference
    assert "Champion `m:3`, read from prod's live endpoint (mlops-prod/blue)." in promotion.body
    assert "held-out\nrows of data.csv (sha256 abc…), seed 42, test fraction 0.2" in promotion.body
    assert "Checked before rendering: preprod's live deployment serves `m:4`." in promotion.body
    assert "| git commit | `abc123` | `abc123` |" in promotion.body
    assert "- ok: challenger roc_auc" in promotion.body
    assert "-  version: 3  # set by the promotion pull request" in promotion.diff
    assert "+  version: 4  # set by the promotion pull request" in promotion.diff
    assert promotion.diff in promotion.body
