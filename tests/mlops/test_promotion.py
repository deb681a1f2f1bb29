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


def exam_result(challenger, champion):
    verdict = Verdict(True, ["ok"])
    return GateResult(
        challenger, Champion("m:3", {}, source="prod.yml"), champion, {}, "data.csv", verdict
    )


def test_the_body_compares_the_two_models_training_data(tmp_path):
    import features
    from helpers import MODEL_DIR

    from mlops.data_diff import Comparison, Side, compare

    lines = (MODEL_DIR / "data" / "breast_cancer.csv").read_text().splitlines(keepends=True)
    champion_file = tmp_path / "v1.csv"
    champion_file.write_text("".join(lines[:301]))
    header = lines[0].rstrip("\n").split(",")
    area = header.index("mean_area")
    grown = []
    for line in lines[301:]:  # the new rows: larger areas, all malignant
        values = line.rstrip("\n").split(",")
        values[area], values[-1] = str(float(values[area]) * 3), "1"
        grown.append(",".join(values) + "\n")
    challenger_file = tmp_path / "v2.csv"
    challenger_file.write_text("".join(lines[:301] + grown))
    diff = compare(challenger_file, champion_file, list(features.FEATURES), features.TARGET)
    data = Comparison(Side("breast-cancer:2", challenger_file), Side("breast-cancer:1"), diff)
    body = render(PROD, exam_result(model(4), model(3)), "checked", data).body
    section = body.split("### Training data")[1].split("###")[0]
    assert "| data version | `breast-cancer:2` | `breast-cancer:1` |" in section
    assert "| rows | 569 | 300 (+269) |" in section
    ones = sum(line.rstrip("\n").endswith(",1") for line in lines[:301]) / 300
    assert f"| label 1 share | {(ones * 300 + 269) / 569:.1%} | {ones:.1%} |" in section
    first_shift = section.split("| --- | ---: | ---: | ---: |\n")[1].splitlines()[0]
    assert first_shift.startswith("| mean_area |")  # the feature that moved most comes first
    assert diff.shifts[0].smd > 0.1 and len(diff.shifts) == 5


def test_the_body_says_when_the_data_cannot_be_compared():
    from mlops.data_diff import Comparison, Side

    problem = "the training data of m:3 is not known (its data_sha256 differs)"
    data = Comparison(Side("breast-cancer:2", None), Side("sha256 dddd…", None, problem), None)
    body = render(PROD, exam_result(model(4), model(3)), "checked", data).body
    assert f"Not compared: {problem}." in body


def test_the_body_lists_top_importances_side_by_side_or_not_recorded():
    challenger = model(4)
    challenger.tags.update({"importance.worst_area": "0.05", "importance.mean_radius": "0.02"})
    body = render(PROD, exam_result(challenger, model(3)), "checked").body
    section = body.split("### Feature importance")[1].split("###")[0]
    assert "| 1 | `worst_area` 0.0500 | not recorded |" in section  # the champion predates them
    assert "| 2 | `mean_radius` 0.0200 |  |" in section
    champion = model(3)
    champion.tags.update({"importance.mean_radius": "0.04"})
    body = render(PROD, exam_result(challenger, champion), "checked").body
    assert "| 1 | `worst_area` 0.0500 | `mean_radius` 0.0400 |" in body
