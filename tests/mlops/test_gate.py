"""The gate refuses what it must, including on ties of doubt: it fails closed."""

import pytest

from mlops.config import Gate
from mlops.gate import Champion, judge

RULES = Gate(thresholds={"roc_auc": 0.9, "recall": 0.8}, tolerance=0.01)
GOOD = {"roc_auc": 0.95, "recall": 0.9, "accuracy": 0.93}


def refusals(verdict):
    return [r for r in verdict.reasons if r.startswith("REFUSED")]


def test_first_release_is_judged_on_floors_and_says_so():
    verdict = judge(GOOD, Champion(None), RULES)
    assert verdict.passed
    assert any("no champion" in r for r in verdict.reasons)


def test_a_floor_missed_refuses():
    verdict = judge({**GOOD, "recall": 0.79}, Champion(None), RULES)
    assert not verdict.passed
    assert refusals(verdict) == ["REFUSED: challenger recall 0.7900 is below the floor 0.8000"]


def test_a_floor_met_exactly_passes():
    assert judge({**GOOD, "recall": 0.8}, Champion(None), RULES).passed


def test_a_missing_metric_refuses():
    verdict = judge({"roc_auc": 0.99}, Champion(None), RULES)
    assert not verdict.passed
    assert "no recall metric" in refusals(verdict)[0]


def test_a_tie_with_the_champion_passes():
    assert judge(GOOD, Champion("m:1", dict(GOOD)), RULES).passed


def test_worse_within_tolerance_passes():
    assert judge({**GOOD, "roc_auc": 0.941}, Champion("m:1", GOOD), RULES).passed


def test_worse_beyond_tolerance_refuses():
    verdict = judge({**GOOD, "roc_auc": 0.93}, Champion("m:1", GOOD), RULES)
    assert not verdict.passed
    assert "worse than champion m:1" in refusals(verdict)[0]


def test_an_unreadable_champion_refuses_even_a_perfect_challenger():
    perfect = {"roc_auc": 1.0, "recall": 1.0}
    verdict = judge(perfect, Champion("m:4", None, "the registry holds no such model"), RULES)
    assert not verdict.passed
    assert refusals(verdict) == [
        "REFUSED: champion m:4: metrics cannot be read (the registry holds no such model); failing closed"
    ]


def test_a_champion_lacking_a_gated_metric_refuses():
    verdict = judge(GOOD, Champion("m:2", {"roc_auc": 0.9}), RULES)
    assert not verdict.passed
    assert "champion m:2 has no recall metric" in refusals(verdict)[0]


def test_a_better_challenger_passes_with_every_comparison_printed():
    verdict = judge({"roc_auc": 0.99, "recall": 0.95}, Champion("m:1", GOOD), RULES)
    assert verdict.passed
    assert sum("vs champion" in r for r in verdict.reasons) == 2


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), float("-inf"), "nan", "inf", "high"])
def test_an_odd_challenger_value_refuses(odd):
    verdict = judge({**GOOD, "recall": odd}, Champion(None), RULES)
    assert not verdict.passed
    assert refusals(verdict) == [
        f"REFUSED: challenger recall is {odd!r}, not a finite number; failing closed"
    ]


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), "nan", "-inf", "n/a", None])
def test_an_odd_champion_value_refuses_even_a_perfect_challenger(odd):
    perfect = {"roc_auc": 1.0, "recall": 1.0}
    verdict = judge(perfect, Champion("m:1", {"roc_auc": 0.9, "recall": odd}), RULES)
    assert not verdict.passed
    (reason,) = refusals(verdict)
    assert reason.startswith("REFUSED: champion m:1 ")
    assert "failing closed" in reason


def test_a_boolean_is_not_a_metric():
    verdict = judge({**GOOD, "recall": True}, Champion(None), RULES)
    assert not verdict.passed


ERRORS = Gate(
    thresholds={"rmse": 0.5, "r2": 0.6}, tolerance=0.01, lower_is_better=frozenset({"rmse"})
)
FIT = {"rmse": 0.3, "r2": 0.8}


def test_a_lower_is_better_metric_above_its_ceiling_refuses():
    verdict = judge({**FIT, "rmse": 0.51}, Champion(None), ERRORS)
    assert not verdict.passed
    assert refusals(verdict) == ["REFUSED: challenger rmse 0.5100 is above the ceiling 0.5000"]


def test_a_lower_is_better_metric_refuses_a_worse_challenger():
    verdict = judge({**FIT, "rmse": 0.32}, Champion("m:1", FIT), ERRORS)
    assert not verdict.passed
    assert refusals(verdict) == [
        "REFUSED: challenger rmse 0.3200 is worse than champion m:1 0.3000 by more than the tolerance 0.01"
    ]


def test_a_lower_is_better_metric_lets_a_smaller_error_through():
    assert judge({**FIT, "rmse": 0.2}, Champion("m:1", FIT), ERRORS).passed
    assert judge({**FIT, "rmse": 0.305}, Champion("m:1", FIT), ERRORS).passed  # within tolerance
