"""A local training step that refuses its input (exit 2, `error: ...`) is one sentence from the
job, not a log tail."""

from __future__ import annotations

import pytest

from mlops.backends.local.jobs import refusal_of


@pytest.mark.parametrize(
    ("log", "sentence"),
    [
        (
            "loading rows\nerror: COHORTS['size'] raised ZeroDivisionError on row 3\n",
            "COHORTS['size'] raised ZeroDivisionError on row 3",
        ),
        ("error: first\nwarning: x\nerror: the last one said\n", "the last one said"),
        ("Traceback (most recent call last):\n  ...\nKeyError: 'x'\n", None),
        ("", None),
    ],
    ids=["one", "the-last", "a-traceback", "empty"],
)
def test_the_refusal_is_the_last_error_line_of_the_steps_log(tmp_path, log, sentence):
    path = tmp_path / "evaluate.log"
    path.write_text(log)
    assert refusal_of(path) == sentence
