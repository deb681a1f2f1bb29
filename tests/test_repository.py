"""The repository keeps its promises to a newcomer: two commands, proven by CI."""

import re
import subprocess

from helpers import ROOT


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in lines


def test_make_help_lists_the_newcomer_verbs():
    listing = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for target in ("demo", "test", "lint", "down"):
        assert f"make {target}" in listing


def test_local_state_and_the_virtualenv_are_ignored():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".venv/" in ignored
    assert ".mlops/" in ignored


def test_the_model_code_never_imports_mlops():
    for script in (ROOT / "src" / "model").glob("*.py"):
        text = script.read_text()
        assert "import mlops" not in text and "from mlops" not in text, script.name


# A folder or file named by a literal day (the collector's YYYY/MM/DD/HH, the local
# inference-YYYYMMDD.jsonl) passes until the monitor's window moves past that day.
DAY_IN_A_NAME = re.compile(r"\b20\d\d/[01]\d/[0-3]\d\b|inference-20\d{6}\b")


def test_no_test_names_a_file_or_folder_by_a_literal_day():
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if DAY_IN_A_NAME.search(line)
    ]
    assert found == [], "derive the day from the clock (datetime.now(UTC), time_machine)"
