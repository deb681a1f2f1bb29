"""Cohort bounds: a group below its floor refuses, a missing record refuses, a group too small
is said, a gap past its ceiling refuses; bad input is one sentence, exit 2."""

import pytest

from mlops import config, lineage
from mlops.config import CohortBounds, Gate
from mlops.errors import ConfigError, MlopsError
from mlops.gate import Verdict, check_cohort_records, judge_cohorts

RULES = Gate(
    thresholds={"recall": 0.9, "accuracy": 0.9},
    tolerance=0.01,
    cohorts={"size": CohortBounds(min_rows=5, bounds={"recall": 0.85}, max_gap={"recall": 0.15})},
)


def group(rows, support, **metrics):
    return {"rows": rows, "support": support, "metrics": metrics}


EXAM = {"size": {"small": group(70, 8, recall=0.875), "large": group(44, 10, recall=0.941176)}}


def tags_of(examined):
    return {
        f"cohort.{cohort}.{name}.{metric}": str(value)
        for cohort, groups in examined.items()
        for name, line in groups.items()
        for metric, value in line["metrics"].items()
    }


def judged(examined, tags=None, rules=RULES):
    verdict = Verdict(passed=True)
    judge_cohorts(verdict, tags_of(examined) if tags is None else tags, examined, rules)
    return verdict


def refusals(verdict):
    return [r for r in verdict.reasons if r.startswith("REFUSED")]


def test_groups_within_their_bounds_pass_with_each_said():
    verdict = judged(EXAM)
    assert verdict.passed, verdict.reasons
    assert "ok: challenger recall on size=small 0.8750 meets the floor 0.8500" in verdict.reasons
    assert any(r.startswith("ok: challenger size recall gap 0.0662") for r in verdict.reasons)


def test_a_group_below_its_floor_refuses_and_is_named():
    examined = {"size": {**EXAM["size"], "small": group(70, 8, recall=0.75)}}
    verdict = judged(
        examined,
        rules=Gate(
            RULES.thresholds,
            0.01,
            cohorts={"size": CohortBounds(min_rows=5, bounds={"recall": 0.85})},
        ),
    )
    assert not verdict.passed
    assert refusals(verdict) == [
        "REFUSED: challenger recall on size=small 0.7500 is below the floor 0.8500"
    ]


def test_a_gap_past_its_ceiling_refuses_and_one_at_it_passes():
    at_ceiling = {"size": {"small": group(70, 8, recall=0.85), "large": group(44, 10, recall=1.0)}}
    assert judged(at_ceiling).passed
    past = {"size": {"small": group(70, 8, recall=0.875), "large": group(44, 10, recall=1.0)}}
    rules = Gate(
        RULES.thresholds,
        0.01,
        cohorts={
            "size": CohortBounds(min_rows=5, bounds={"recall": 0.85}, max_gap={"recall": 0.1})
        },
    )
    assert refusals(judged(past, rules=rules)) == [
        "REFUSED: challenger size recall gap 0.1250 (large 1.0000, small 0.8750) is above "
        "the ceiling 0.1000"
    ]


def test_a_missing_cohort_record_refuses():
    tags = tags_of(EXAM)
    del tags["cohort.size.small.recall"]
    verdict = judged(EXAM, tags)
    assert not verdict.passed
    assert "REFUSED: challenger has no cohort record cohort.size.small.recall; failing closed" in (
        verdict.reasons
    )


def test_a_record_the_exam_does_not_find_again_refuses():
    tags = {**tags_of(EXAM), "cohort.size.small.recall": "0.99"}
    assert any("scores 0.875 on the same held-out rows" in r for r in refusals(judged(EXAM, tags)))


def test_a_group_too_small_is_reported_not_passed_in_silence():
    examined = {"size": {**EXAM["size"], "tiny": group(4, 1, recall=0.0)}}
    verdict = judged(examined)
    assert verdict.passed
    assert (
        "NOT JUDGED: size=tiny has 1 row(s) of support among 4, fewer than min_rows 5: "
        "too small to judge" in verdict.reasons
    )


def test_a_cohort_whose_groups_are_all_too_small_refuses():
    examined = {"size": {"a": group(3, 1, recall=1.0), "b": group(2, 0)}}
    verdict = judged(examined)
    assert not verdict.passed
    assert "its bounds judge nothing" in refusals(verdict)[0]


def test_an_undeclared_cohort_is_bad_input_naming_file_and_field():
    with pytest.raises(MlopsError) as refused:
        check_cohort_records("m:1", tags_of(EXAM), RULES, {"age"})
    assert refused.value.exit_code == 2
    assert str(refused.value) == (
        "environments/prod.yml: field `gate.cohorts.size` names no cohort of "
        "src/model/features.py COHORTS (declared: age)"
    )


def test_a_nan_group_figure_is_bad_input():
    tags = {**tags_of(EXAM), "cohort.size.small.recall": "nan"}
    with pytest.raises(MlopsError, match=r"tag `cohort.size.small.recall` is 'nan'") as refused:
        check_cohort_records("m:1", tags, RULES, {"size"})
    assert refused.value.exit_code == 2


def edit(repo, old, new):
    path = repo / "environments" / "prod.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_the_shipped_cohort_bounds_load(repo):
    bounds = config.load("prod", repo).gate.cohorts["tumour_size"]
    assert bounds.min_rows >= 1 and set(bounds.metrics) <= set(
        config.load("prod", repo).gate.thresholds
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "bounds: {recall: 0.75, accuracy: 0.90}",
            "bounds: {recal: 0.85}",
            "environments/prod.yml: field `gate.cohorts.tumour_size.bounds.recal` is not a "
            "gated metric (gate.thresholds has accuracy, recall, roc_auc)",
        ),
        (
            "max_gap: {recall: 0.20}",
            "max_gap: {f1: 0.15}",
            "environments/prod.yml: field `gate.cohorts.tumour_size.max_gap.f1` is not a "
            "gated metric (gate.thresholds has accuracy, recall, roc_auc)",
        ),
        (
            "min_rows: 5",
            "min_rows: 0",
            "environments/prod.yml: field `gate.cohorts.tumour_size.min_rows` must be at least 1, not 0",
        ),
        (
            "max_gap: {recall: 0.20}",
            "max_gap: {recall: -0.1}",
            "environments/prod.yml: field `gate.cohorts.tumour_size.max_gap.recall` must be at "
            "least 0, not -0.1",
        ),
        (
            "    tumour_size:\n",
            "    tumour size:\n",
            "environments/prod.yml: field `gate.cohorts.tumour size` must be a cohort's name: "
            "letters, digits, _ or -",
        ),
    ],
)
def test_bad_cohort_bounds_are_refused_in_one_sentence(repo, old, new, expected):
    edit(repo, old, new)
    with pytest.raises(ConfigError) as refused:
        config.load("prod", repo)
    assert str(refused.value) == expected


def test_training_prints_the_cohort_table_from_the_runs_tags():
    tags = {**tags_of(EXAM), "cohort.size.small.rows": "70", "cohort.size.small.support": "8"}
    tags |= {
        "cohort.size.large.rows": "44",
        "cohort.size.large.support": "10",
        "metric.recall": "1",
    }
    assert lineage.cohort_lines(tags) == [
        "cohort size=large: 44 rows (support 10) recall=0.9412",
        "cohort size=small: 70 rows (support 8) recall=0.8750",
    ]
