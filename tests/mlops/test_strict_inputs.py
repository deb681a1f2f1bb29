"""Files the CLI reads are read strictly: a key written twice, a bound outside its metric's range
or a byte that is not UTF-8 is refused in one sentence naming the file and the line, exit 2."""

import ast
import os
import stat
from pathlib import Path

import pytest
from helpers import run_mlops

from mlops import config, files, init, metric_ranges
from mlops.backends import steps
from mlops.errors import ConfigError, MlopsError

APPENDED_GATE = "gate:\n  thresholds:\n    roc_auc: {at_least: 0.0}\n  tolerance: 0.5\n"


def prod_yml(repo):
    return repo / "environments" / "prod.yml"


def line_of(path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_a_second_gate_section_is_refused_naming_both_lines(repo):
    path = prod_yml(repo)
    first = line_of(path, "gate:")
    with open(path, "a") as handle:
        handle.write(APPENDED_GATE)
    second = len(path.read_text().splitlines()) - 3
    with pytest.raises(ConfigError) as refusal:
        config.load("prod", repo)
    assert str(refusal.value) == (
        f"environments/prod.yml: key 'gate' is written twice in one mapping (line {first} and "
        f"line {second}); YAML would keep only the last, so keep one"
    )


def test_a_repeated_metric_inside_the_thresholds_is_refused(repo):
    path = prod_yml(repo)
    text = path.read_text()
    path.write_text(
        text.replace(
            "    roc_auc: {at_least: 0.95}\n",
            "    roc_auc: {at_least: 0.95}\n    roc_auc: {at_least: 0.0}\n",
        )
    )
    at = line_of(path, "    roc_auc: {at_least: 0.95}")
    with pytest.raises(ConfigError, match=rf"key 'roc_auc' .* \(line {at} and line {at + 1}\)"):
        config.load("prod", repo)


def test_the_gate_verb_refuses_the_appended_gate_before_any_work(repo, tmp_path):
    with open(prod_yml(repo), "a") as handle:
        handle.write(APPENDED_GATE)
    done = run_mlops(repo, tmp_path / "home", "gate", "--model", "m:1", check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        done.stderr.strip().splitlines()[-1]
    ]  # one line: the sentence, no traceback
    assert "key 'gate' is written twice" in done.stderr


def test_yaml_merge_keys_and_the_same_key_in_two_mappings_are_no_repeat():
    text = "a: &base {x: 1}\nb:\n  <<: *base\n  x: 2\nc: {x: 3}\n"
    assert files.load_yaml_text(text, "f.yml") == {"a": {"x": 1}, "b": {"x": 2}, "c": {"x": 3}}


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: 1\nb: 2\na: 3\n", 3), ("- {k: 1, k: 2}\n", 1), ("x:\n  1: a\n  1.0: b\n", 3)],
)
def test_every_repeat_is_found_wherever_it_is(text, line):
    with pytest.raises(MlopsError, match=rf"f.yml: key .* line {line}\)"):
        files.load_yaml_text(text, "f.yml")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (
            "roc_auc: {at_least: 0.95}",
            "roc_auc: {at_least: -5}",
            "gate.thresholds.roc_auc.at_least",
        ),
        ("recall: {at_least: 0.90}", "recall: {at_least: 1.5}", "gate.thresholds.recall.at_least"),
        (
            "accuracy: {at_least: 0.90}",
            "accuracy: {at_most: -0.1}",
            "gate.thresholds.accuracy.at_most",
        ),
    ],
)
def test_a_bound_outside_its_metric_range_is_refused(repo, old, new, field):
    path = prod_yml(repo)
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(ConfigError) as refusal:
        config.load("prod", repo)
    message = str(refusal.value)
    assert message.startswith(f"environments/prod.yml: field `{field}` is ")
    assert "outside the range of" in message and "METRIC_RANGES" in message


def test_the_edges_of_a_range_are_bounds(repo):
    path = prod_yml(repo)
    path.write_text(path.read_text().replace("roc_auc: {at_least: 0.95}", "roc_auc: {at_least: 1}"))
    assert config.load("prod", repo).gate.thresholds["roc_auc"] == 1


def test_every_metric_the_template_computes_has_a_range(repo):
    """The names evaluate.metrics returns (its dict literal, read without importing it) are
    the names METRIC_RANGES bounds."""
    tree = ast.parse((repo / metric_ranges.EVALUATE).read_text())
    function = next(n for n in tree.body if getattr(n, "name", "") == "metrics")
    returned = next(n.value for n in ast.walk(function) if isinstance(n, ast.Return))
    assert set(metric_ranges.of(repo)) == {key.value for key in returned.keys}


def test_a_range_table_that_is_no_literal_is_refused(repo):
    evaluate_py = repo / "src" / "model" / "evaluate.py"
    text = evaluate_py.read_text()
    evaluate_py.write_text(text.replace('"roc_auc": [0.0, 1.0]', '"roc_auc": [1.0, 0.0]'))
    with pytest.raises(MlopsError, match="METRIC_RANGES must be a literal mapping"):
        config.load("prod", repo)


# ---- text that is not UTF-8 ------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["status", "gate", "test", "monitor"])
def test_a_byte_that_is_not_utf8_in_prod_yml_is_one_sentence(repo, tmp_path, verb):
    path = prod_yml(repo)
    lines = path.read_bytes().split(b"\n")
    at = next(i for i, line in enumerate(lines) if line.startswith(b"gate:"))
    lines[at] += b"  # \xff"
    path.write_bytes(b"\n".join(lines))
    extra = ["--model", "m:1"] if verb == "gate" else []
    done = run_mlops(repo, tmp_path / "home", verb, "--env", "prod", *extra, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: environments/prod.yml line {at + 1}: byte 0xff is not UTF-8; "
        "save the file as UTF-8 text\n"
    )


def test_project_yml_and_component_files_use_the_same_reader(repo, tmp_path):
    (repo / "project.yml").write_text("project: a\nproject: b\n")
    with pytest.raises(MlopsError, match=r"project.yml: key 'project' .*line 1 and line 2"):
        init.load_answers(repo)
    component = repo / "src" / "model" / "components" / "prep.yml"
    component.write_bytes(b"name: prep\n\xc3(\n")
    with pytest.raises(MlopsError, match=r"prep.yml line 2: byte 0xc3 is not UTF-8"):
        steps.load(repo / "src" / "model")


# ---- where a verb may write ------------------------------------------------------------------


def test_a_regular_file_or_a_new_path_may_be_written(tmp_path):
    existing = tmp_path / "rows.csv"
    existing.write_text("x\n")
    assert files.checked_output(existing) == existing
    assert files.checked_output(tmp_path / "new" / "rows.csv") == tmp_path / "new" / "rows.csv"


def test_anything_else_is_refused(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    os.mkfifo(tmp_path / "pipe")
    for name, said in [
        ("folder", "is a folder"),
        ("link", "is a symbolic link"),
        ("pipe", "is not a regular file"),
    ]:
        with pytest.raises(MlopsError, match=said):
            files.checked_output(tmp_path / name)
    with pytest.raises(MlopsError, match="is not a regular file"):
        files.checked_output(Path(os.devnull))  # a character device, as /dev/full is
    with pytest.raises(MlopsError, match="is not a folder"):
        files.checked_output(tmp_path / "file" / "rows.csv")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # untouched


def test_a_data_file_that_is_not_utf8_is_refused_naming_its_line(repo, tmp_path):
    from mlops import data

    source = repo / "src" / "model" / "data" / "breast_cancer.csv"
    lines = source.read_bytes().splitlines(keepends=True)
    (tmp_path / "rows.csv").write_bytes(b"".join([*lines[:3], b"\xe9" + lines[3]]))
    with pytest.raises(MlopsError) as refusal:
        data.checked_table(repo, tmp_path / "rows.csv", "rows.csv")
    assert str(refusal.value) == (
        "rows.csv line 4: byte 0xe9 is not UTF-8; save the file as UTF-8 text"
    )
