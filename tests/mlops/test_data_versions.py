"""The training data's versions: content-addressed, numbered 1, 2, 3, checked against the model's
contract before anything is registered, and grown from a base version by appended rows."""

import hashlib
import json
from pathlib import Path

import pytest
from helpers import MODEL_DIR

from mlops import cli, config, data, lifecycle
from mlops.backends.base import TAG_DATA, TAG_DATA_ASSET, TAG_DATA_VERSION, ModelVersion
from mlops.context import Context
from mlops.errors import MlopsError

DATA = MODEL_DIR / "data" / "breast_cancer.csv"
LINES = DATA.read_text().splitlines(keepends=True)
ASSET = "breast-cancer"


@pytest.fixture
def ctx(repo, tmp_path):
    return Context(repo, tmp_path / "home")


def write(path, lines):
    path.write_text("".join(lines))
    return str(path)


def test_a_file_becomes_version_1_and_the_same_bytes_reuse_it(ctx, tmp_path):
    first = data.register(ctx, "dev", ASSET, str(DATA))
    assert (first.version, first.sha256) == (1, hashlib.sha256(DATA.read_bytes()).hexdigest())
    assert first.tags["rows"] == str(len(LINES) - 1) and first.tags["parent"] == ""
    copy = write(tmp_path / "copy.csv", LINES)  # same bytes under another name
    assert data.register(ctx, "dev", ASSET, copy) == first
    smaller = data.register(ctx, "dev", ASSET, write(tmp_path / "half.csv", LINES[:300]))
    assert smaller.version == 2 and smaller.tags["rows"] == "299"
    listed = ctx.backend("dev").list_data_versions(ASSET)
    assert [v.version for v in listed] == [1, 2]
    meta = json.loads((ctx.home / "dev" / "data" / ASSET / "2" / "meta.json").read_text())
    assert meta["tags"]["sha256"] == smaller.sha256 and meta["created"]


def test_a_base_version_grows_by_the_files_rows_in_its_column_order(ctx, tmp_path):
    base = data.register(ctx, "dev", ASSET, write(tmp_path / "base.csv", LINES[:101]))
    header = LINES[0].rstrip("\n").split(",")
    shuffled = list(reversed(header))  # labelled feedback may order its columns otherwise
    rows = [dict(zip(header, line.rstrip("\n").split(","), strict=True)) for line in LINES[101:141]]
    feedback = [",".join(shuffled) + "\n"] + [
        ",".join(row[c] for c in shuffled) + "\n" for row in rows
    ]
    grown = data.register(
        ctx, "dev", ASSET, write(tmp_path / "feedback.csv", feedback), base=base.ref
    )
    assert grown.version == 2 and grown.tags["parent"] == base.ref
    assert grown.tags["rows"] == "140"
    # the base's bytes unchanged, then the new rows: exactly the first 141 lines of the file
    assert Path(grown.location).read_text() == "".join(LINES[:141])


def test_a_file_that_breaks_the_contract_is_refused_naming_row_and_column(ctx, tmp_path):
    bad = LINES[:6]
    bad[4] = bad[4].replace(bad[4].split(",")[2], "abc", 1)  # row 4, mean_perimeter
    with pytest.raises(MlopsError) as refusal:
        data.register(ctx, "dev", ASSET, write(tmp_path / "bad.csv", bad))
    assert str(refusal.value).endswith(
        "bad.csv: row 4 (line 5), column mean_perimeter: 'abc' is not a finite number"
    )
    label = LINES[:3] + [LINES[3].rstrip("\n")[:-1] + "2\n"]
    with pytest.raises(MlopsError, match=r"row 3 \(line 4\), column malignant: '2' is not one"):
        data.register(ctx, "dev", ASSET, write(tmp_path / "label.csv", label))
    empty = LINES[:2] + [LINES[2].replace(LINES[2].split(",")[0], "", 1)]
    with pytest.raises(MlopsError, match="row 2 .line 3., column mean_radius: is empty"):
        data.register(ctx, "dev", ASSET, write(tmp_path / "empty.csv", empty))
    missing = [line.split(",", 1)[1] for line in LINES[:5]]
    with pytest.raises(MlopsError, match="missing column.s. mean_radius"):
        data.register(ctx, "dev", ASSET, write(tmp_path / "missing.csv", missing))
    assert ctx.backend("dev").list_data_versions(ASSET) == []  # nothing registered


def test_the_command_line_registers_lists_and_refuses_with_exit_2(
    repo, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MLOPS_ROOT", str(repo))
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLOPS_BACKEND", raising=False)
    initial = "src/model/data/breast_cancer.csv"
    monkeypatch.chdir(repo)

    def main(*args):
        try:
            return cli.main(list(args))
        except SystemExit as stop:  # the parser's refusals: flags checked before any work
            return stop.code

    assert main("train", "--data", "breast-cancer") == 2  # refused before any work
    assert "expected a data version as NAME:VERSION" in capsys.readouterr().err
    assert main(*["data", "register", "--asset", ASSET, "--path", initial]) == 0
    assert main(*["data", "list", "--asset", ASSET]) == 0
    assert f"{ASSET}:1  rows 569" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text(LINES[0] + LINES[1].replace(LINES[1].split(",")[5], "x", 1))
    code = cli.main(
        ["data", "register", "--asset", ASSET, "--path", str(bad), "--base", f"{ASSET}:1"]
    )
    assert code == 2
    assert (
        "row 1 (line 2), column mean_compactness: 'x' is not a finite number"
        in capsys.readouterr().err
    )
    assert main(*["data", "register", "--asset", ASSET, "--path", initial, "--base", "nope"]) == 2
    assert "NAME:VERSION" in capsys.readouterr().err
    code = cli.main(
        ["data", "register", "--asset", ASSET, "--path", initial, "--base", f"{ASSET}:9"]
    )
    assert code == 2
    assert f"data {ASSET}:9 is not registered in dev; nothing registered" in capsys.readouterr().err


def test_latest_resolves_once_and_an_empty_asset_takes_the_committed_file(ctx, tmp_path):
    named = ctx.config("dev").training_data
    first = data.resolve(ctx, "dev", named)
    assert first.ref == f"{ASSET}:1"  # the committed initial file, registered once
    second = data.register(ctx, "dev", ASSET, write(tmp_path / "more.csv", LINES[:200]))
    assert data.resolve(ctx, "dev", named) == second
    assert data.resolve(ctx, "dev", config.TrainingData(ASSET, 1)) == first
    with pytest.raises(MlopsError, match=f"data {ASSET}:7 is not registered in dev"):
        data.resolve(ctx, "dev", config.TrainingData(ASSET, 7))
    with pytest.raises(MlopsError, match="has no version in dev; register one"):
        data.resolve(ctx, "dev", config.TrainingData("other-data", None))


def test_a_models_training_data_is_found_by_its_data_asset_version(ctx, tmp_path):
    data.register(ctx, "dev", ASSET, str(DATA))
    subset = data.register(ctx, "dev", ASSET, write(tmp_path / "sub.csv", LINES[:100]))
    tags = {TAG_DATA: subset.sha256, TAG_DATA_ASSET: ASSET, TAG_DATA_VERSION: "2"}
    model = ModelVersion("m", 1, tags, "", "")
    assert (
        lifecycle.training_data_of(ctx, "m:1", model).read_bytes() == "".join(LINES[:100]).encode()
    )
    old = ModelVersion("m", 2, {TAG_DATA: first_sha()}, "", "")  # before data assets
    assert (
        lifecycle.training_data_of(ctx, "m:2", old) == ctx.root / "src/model/data/breast_cancer.csv"
    )
    lying = ModelVersion("m", 3, {**tags, TAG_DATA: "0" * 64}, "", "")
    with pytest.raises(MlopsError, match="data_sha256 differs"):
        lifecycle.training_data_of(ctx, "m:3", lying)


def first_sha():
    return hashlib.sha256(DATA.read_bytes()).hexdigest()


def test_a_shared_models_data_version_is_read_from_the_registry_outside_dev(ctx, tmp_path):
    """The local registry folder keeps data versions beside models: preprod and prod read a
    model's training data there, the copy `share` made, not from dev's data folder."""
    data.register(ctx, "dev", ASSET, str(DATA))
    subset = data.register(ctx, "dev", ASSET, write(tmp_path / "sub.csv", LINES[:100]))
    tags = {TAG_DATA: subset.sha256, TAG_DATA_ASSET: ASSET, TAG_DATA_VERSION: "2"}
    model = ModelVersion("m", 1, tags, "", "")
    with pytest.raises(MlopsError) as missing:  # not shared yet: one sentence, what to run
        lifecycle.training_data_of(ctx, "m:1", model, "prod")
    assert str(missing.value) == (
        f"the training data of m:1, data {ASSET}:2, is not in the registry; sharing the model "
        "again shares it: mlops share --env dev --model m:1"
    )

    shared = data.share_training_data(ctx, "dev", model)
    assert shared.ref == f"{ASSET}:2" and shared.sha256 == subset.sha256
    assert Path(shared.location).is_relative_to(ctx.home / "registry" / "data" / ASSET / "2")
    for env in ("preprod", "prod"):
        found = lifecycle.training_data_of(ctx, "m:1", model, env)
        assert (
            found == Path(shared.location)
            and found.read_bytes() == Path(subset.location).read_bytes()
        )
    assert data.share_training_data(ctx, "dev", model) == shared  # again: already there
    old = ModelVersion("m", 2, {TAG_DATA: first_sha()}, "", "")  # before data assets
    assert data.share_training_data(ctx, "dev", old) is None


def test_sharing_refuses_a_registry_data_version_with_other_bytes_or_a_lying_model(ctx, tmp_path):
    first = data.register(ctx, "dev", ASSET, str(DATA))
    model = ModelVersion(
        "m", 1, {TAG_DATA: first.sha256, TAG_DATA_ASSET: ASSET, TAG_DATA_VERSION: "1"}, "", ""
    )
    backend = ctx.backend("dev")
    other = tmp_path / "other.csv"
    write(other, LINES[:50])
    backend.create_data_version(ASSET, 1, other, {"sha256": "0" * 64}, shared=True)
    with pytest.raises(MlopsError, match=rf"^the registry already holds data {ASSET}:1 with other"):
        data.share_training_data(ctx, "dev", model)
    lying = ModelVersion("m", 2, {**model.tags, TAG_DATA: "f" * 64}, "", "")
    with pytest.raises(MlopsError, match=rf"^m:2's data_sha256 differs from data {ASSET}:1's"):
        data.share_training_data(ctx, "dev", lying)
    unknown = ModelVersion("m", 3, {**model.tags, TAG_DATA_VERSION: "9"}, "", "")
    with pytest.raises(MlopsError, match=rf"^m:3 was trained on data {ASSET}:9, not in dev$"):
        data.share_training_data(ctx, "dev", unknown)
