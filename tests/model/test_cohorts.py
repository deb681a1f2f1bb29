"""Cohorts: declared once, scored per group with fairlearn's MetricFrame through the served
artifact, recorded as tags and in the model card; a broken declaration is one sentence."""

import json
import math

import card
import evaluate
import features
import numpy as np
import prep
import pytest
from features import FEATURES, TARGET, CohortError, cohort_groups


@pytest.fixture(scope="module")
def held_out(trained_model):
    _, test, _ = prep.read_split(trained_model / "prepared")
    scores = evaluate.onnx_scores(
        trained_model / "model" / "model.onnx", test[list(FEATURES)].to_numpy(np.float32)
    )
    return test, test[TARGET].to_numpy(), scores


def test_tumour_size_splits_the_rows_by_mean_radius():
    rows = [{"mean_radius": 9.0}, {"mean_radius": 14.0}, {"mean_radius": 21.5}]
    assert cohort_groups(rows) == {"tumour_size": ["small", "large", "large"]}


def test_each_group_is_scored_as_its_rows_alone_would_be(held_out):
    test, truth, scores = held_out
    table = evaluate.cohort_table(test.to_dict("records"), truth, scores, ["recall", "accuracy"])
    groups = table["tumour_size"]["groups"]
    assert set(groups) == {"small", "large"}
    assert sum(g["rows"] for g in groups.values()) == len(test)
    for name, mask in (("small", test.mean_radius < 14), ("large", test.mean_radius >= 14)):
        alone = evaluate.metrics(truth[mask], scores[mask])  # the oracle: the rows on their own
        assert groups[name]["metrics"] == {"recall": alone["recall"], "accuracy": alone["accuracy"]}
        assert groups[name]["rows"] == int(mask.sum())
        assert groups[name]["support"] == int(min((truth[mask] == c).sum() for c in (0, 1)))
    recalls = [g["metrics"]["recall"] for g in groups.values()]
    assert table["tumour_size"]["gaps"]["recall"] == round(max(recalls) - min(recalls), 6)


def test_a_group_of_one_class_has_no_metrics_and_no_part_in_the_gap(held_out, monkeypatch):
    test, truth, scores = held_out
    monkeypatch.setitem(features.COHORTS, "class", lambda row: f"c{int(row[TARGET])}")
    table = evaluate.cohort_table(test.to_dict("records"), truth, scores, ["recall"])
    assert {g["support"] for g in table["class"]["groups"].values()} == {0}
    assert all(g["metrics"] == {} for g in table["class"]["groups"].values())
    assert table["class"]["gaps"] == {}


def test_the_record_tags_every_group_and_gap(trained_model):
    record = json.loads((trained_model / "evaluation.json").read_text())
    tags = record["tags"]
    for name, line in record["cohorts"]["tumour_size"]["groups"].items():
        assert tags[f"cohort.tumour_size.{name}.rows"] == str(line["rows"])
        for metric in record["metrics"]:
            assert tags[f"cohort.tumour_size.{name}.{metric}"] == str(line["metrics"][metric])
    assert set(record["metrics"]) == {
        k.rsplit(".", 1)[1] for k in tags if k.startswith("cohort_gap.tumour_size.")
    }


def test_a_cohort_that_raises_is_one_sentence_naming_it(held_out, monkeypatch):
    test, truth, scores = held_out
    monkeypatch.setitem(features.COHORTS, "age", lambda row: row["age"] // 10)
    with pytest.raises(CohortError) as refused:
        evaluate.cohort_table(test.to_dict("records"), truth, scores, ["recall"])
    assert str(refused.value) == (
        "src/model/features.py: COHORTS['age'] raised KeyError ('age') on row 0"
    )


def test_a_group_with_nan_metrics_is_refused(held_out, monkeypatch):
    test, truth, scores = held_out
    real = evaluate.metrics

    def broken(t, s):  # NaN on every group, as a metric that breaks on a slice would give
        return {**real(t, s), "recall": math.nan} if len(t) < len(truth) else real(t, s)

    monkeypatch.setattr(evaluate, "metrics", broken)
    with pytest.raises(CohortError, match=r"COHORTS\['tumour_size'\] group 'large' has recall NaN"):
        evaluate.cohort_table(test.to_dict("records"), truth, scores, ["recall"])


def test_a_column_cohort_is_kept_by_prep_and_split_by_its_values(tmp_path, monkeypatch):
    data = prep.load(prep.Path(evaluate.__file__).parent / "data" / "breast_cancer.csv")
    data["sex"] = np.where(np.arange(len(data)) % 2 == 0, "female", "male")
    path = tmp_path / "with-sex.csv"
    data.to_csv(path, index=False)
    monkeypatch.setitem(features.COHORTS, "sex", "sex")
    assert "sex" in prep.load(path).columns
    rows = prep.load(path).head(3).to_dict("records")
    assert cohort_groups(rows)["sex"] == ["female", "male", "female"]


def test_the_card_holds_the_cohort_table_and_renders_it(trained_model):
    found = json.loads((trained_model / card.CARD_JSON).read_text())
    record = json.loads((trained_model / "evaluation.json").read_text())
    assert found["cohorts"] == record["cohorts"] and found["metrics"] == record["metrics"]
    assert found["lineage"]["artifact_sha256"] == record["tags"]["onnx_sha256"]
    assert "## Intended use" in found["intended_use"]
    text = card.render(found)
    assert "### Cohort `tumour_size`" in text and "| largest gap |" in text
    assert (trained_model / card.CARD_MARKDOWN).read_text() == text


def test_the_comparison_marks_what_differs_from_the_champion(trained_model):
    ours = json.loads((trained_model / card.CARD_JSON).read_text())
    theirs = json.loads(json.dumps(ours))
    theirs["cohorts"]["tumour_size"]["groups"]["small"]["metrics"]["recall"] = 0.5
    lines = card.compare(ours, theirs).splitlines()
    changed = [line for line in lines if line.startswith(f"| {card.CHANGED}")]
    assert len(changed) == 1 and "tumour_size=small recall" in changed[0]
    assert sum("model card</summary>" in line for line in lines) == 2
