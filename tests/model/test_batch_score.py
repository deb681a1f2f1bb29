"""The batch entry script: the online contract and model, file by file, chunk by chunk."""

import hashlib
import json

import batch_score
import pandas as pd
import pytest
import score
from helpers import MODEL_DIR
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

DATA = MODEL_DIR / "data" / "breast_cancer.csv"


@pytest.fixture(scope="module")
def model_dir(trained_model):
    return trained_model  # the session's one training run (tests/conftest.py)


@pytest.fixture(scope="module")
def model(model_dir):
    return batch_score.load_model(model_dir)


def score_csv(model, source, output, **kwargs):
    session, sha = model
    return batch_score.score_file(session, sha, "classifier:7", source, output, **kwargs)


def with_bad_rows(path):
    frame = pd.read_csv(DATA).drop(columns=["malignant"]).astype(object)
    frame.loc[3, "mean_radius"] = "abc"
    frame.loc[5, "se_area"] = None
    frame.loc[7, "worst_texture"] = 1e39
    frame.to_csv(path, index=False)
    return path


def test_predictions_equal_the_online_scoring_scripts_on_the_shipped_data(
    model_dir, model, tmp_path, monkeypatch
):
    summary = score_csv(model, DATA, tmp_path / "out", chunk_rows=100)
    batch = pd.read_csv(summary.predictions)

    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    score.init()  # score.py's own run(), as the inference server calls it
    rows = pd.read_csv(DATA).drop(columns=["malignant"]).to_dict("records")
    online = {"predictions": [], "probabilities": []}
    for start in range(0, len(rows), 500):
        body = json.dumps({"data": rows[start : start + 500]}).encode()
        environ = EnvironBuilder(method="POST", data=body, content_type="application/json")
        answer = json.loads(score.run(Request(environ.get_environ())).get_data())
        for key in online:
            online[key] += answer[key]

    assert summary.rows == len(rows) and summary.refused == 0
    assert batch["row"].tolist() == list(range(len(rows)))
    assert batch["prediction"].tolist() == online["predictions"]
    assert batch["probability"].tolist() == online["probabilities"]


def test_bad_rows_go_to_the_errors_file_with_the_contracts_sentence_and_exit_zero(
    model_dir, tmp_path, capsys
):
    source = with_bad_rows(tmp_path / "bad.csv")
    out = tmp_path / "out"
    argv = ["--model-dir", str(model_dir), "--model", "classifier:7", "--input", str(source)]
    assert batch_score.main([*argv, "--output", str(out), "--chunk-rows", "50"]) == 0

    errors = pd.read_csv(out / "errors.csv")
    assert errors["row"].tolist() == [3, 5, 7]
    assert errors["reason"].tolist() == [
        "row 3, feature 'mean_radius': expected a number, got a string",
        "row 5, feature 'se_area': expected a number, got null",
        "row 7, feature 'worst_texture': 1e+39 is outside float32's finite range "
        "(magnitude at most 3.40282e+38)",
    ]
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 566 and not set(predictions["row"]) & {3, 5, 7}


def with_wrong_field_counts(path):
    """The shipped rows, with one line of an extra field, one of two extra and one short."""
    lines = pd.read_csv(DATA).drop(columns=["malignant"]).to_csv(index=False).splitlines()
    lines[1 + 4] += ",1"  # row 4
    lines[1 + 5] += ",1,2"  # row 5
    lines[1 + 60] = lines[1 + 60].rsplit(",", 1)[0]  # row 60: a field short
    lines[-1] += ",9"  # the last row
    path.write_text("\n".join(lines) + "\n")
    return path, len(lines) - 1


@pytest.mark.parametrize("chunk_rows", ["50", "10000"])
def test_rows_of_a_wrong_field_count_go_to_the_errors_file_not_fail_the_job(
    model_dir, tmp_path, chunk_rows
):
    """One line with too many fields failed the whole job (pandas' tokenizing error); the
    README says bad rows go to errors.csv, and every row keeps the number of its line."""
    source, rows = with_wrong_field_counts(tmp_path / "wide.csv")
    out = tmp_path / "out"
    argv = ["--model-dir", str(model_dir), "--model", "classifier:7", "--input", str(source)]
    assert batch_score.main([*argv, "--output", str(out), "--chunk-rows", chunk_rows]) == 0

    errors = pd.read_csv(out / "errors.csv")
    last = rows - 1
    assert errors["row"].tolist() == [4, 5, 60, last]
    assert errors["reason"].tolist()[:2] == [
        "row 4 (line 6) has 31 fields, the header 30",
        "row 5 (line 7) has 32 fields, the header 30",
    ]
    assert errors["reason"][2].startswith("row 60, feature 'worst_fractal_dimension'")
    assert errors["reason"][3] == f"row {last} (line {last + 2}) has 31 fields, the header 30"
    predictions = pd.read_csv(out / "predictions.csv")
    assert predictions["row"].tolist() == [r for r in range(rows) if r not in {4, 5, 60, last}]


def test_every_output_file_names_the_model_its_sha256_and_the_inputs_sha256(model, tmp_path):
    source = with_bad_rows(tmp_path / "bad.csv")
    summary = score_csv(model, source, tmp_path / "out")
    expected = {
        "model": "classifier:7",
        "model_sha256": model[1],
        "input_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }
    for path in (summary.predictions, summary.errors):
        frame = pd.read_csv(path)
        for column, value in expected.items():
            assert set(frame[column]) == {value}, (path.name, column)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {k: manifest[k] for k in expected} == expected and manifest["complete"]


def test_an_interrupted_run_resumes_and_writes_each_row_once(model, tmp_path):
    out = tmp_path / "out"

    def interrupt(done, total):
        if done >= 200:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_csv(model, DATA, out, chunk_rows=100, progress=interrupt)
    assert not (out / "predictions.csv").exists()
    assert len(list((out / "parts").glob("predictions-*.csv"))) == 2

    summary = score_csv(model, DATA, out, chunk_rows=100)
    rows = pd.read_csv(summary.predictions)["row"].tolist()
    assert summary.skipped == 2 and summary.chunks == 6
    assert rows == list(range(569))  # each row once, in order
    assert not (out / "parts").exists()


def test_an_output_folder_of_another_input_is_refused(model, tmp_path):
    score_csv(model, DATA, tmp_path / "out")
    other = with_bad_rows(tmp_path / "other.csv")
    with pytest.raises(batch_score.BatchInputError, match="another run's output"):
        score_csv(model, other, tmp_path / "out")


def test_parquet_is_scored_like_csv_with_the_id_column_carried(model, tmp_path):
    frame = pd.read_csv(DATA).drop(columns=["malignant"])
    frame.insert(0, "id", [f"patient-{i}" for i in range(len(frame))])
    frame.to_parquet(tmp_path / "rows.parquet")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    from_parquet = pd.read_csv(
        score_csv(model, tmp_path / "rows.parquet", tmp_path / "p").predictions
    )
    from_csv = pd.read_csv(score_csv(model, tmp_path / "rows.csv", tmp_path / "c").predictions)
    columns = ["row", "id", "prediction", "probability"]
    assert from_parquet[columns].equals(from_csv[columns])
    assert from_parquet["id"].iloc[10] == "patient-10"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("rows.csv", "mean_radius,mean_texture\n1,2\n", "has no column(s) mean_perimeter"),
        ("rows.csv", "", "is empty"),
        ("rows.json", "{}", "reads .csv or .parquet files"),
        ("rows.parquet", "not parquet", "is not a readable Parquet file"),
        ("rows.csv", b"mean_radius\n1\n\xe9\n", "rows.csv line 3 is not UTF-8 text"),
        ("rows.csv", b"mean_\xff\n1\n", "rows.csv line 1 is not UTF-8 text"),
    ],
)
def test_a_file_the_batch_cannot_read_is_one_sentence_and_exit_2(
    model_dir, tmp_path, capsys, name, content, expected
):
    path = tmp_path / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    argv = ["--model-dir", str(model_dir), "--model", "classifier:7"]
    argv += ["--input", str(tmp_path / name), "--output", str(tmp_path / "out")]
    assert batch_score.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "Traceback" not in err


def test_the_azure_entry_points_score_each_file_of_a_mini_batch(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(tmp_path / "job-output"))
    monkeypatch.setenv(batch_score.MODEL_ENV, "classifier:7")
    (tmp_path / "job-output").mkdir()
    source = with_bad_rows(tmp_path / "bad.csv")
    batch_score.init()
    assert batch_score.run([str(source), str(DATA)]) == ["bad.csv", "breast_cancer.csv"]

    errors = pd.read_csv(tmp_path / "job-output" / "bad.errors.csv")
    scored = pd.read_csv(tmp_path / "job-output" / "breast_cancer.predictions.csv")
    assert errors["row"].tolist() == [3, 5, 7] and len(scored) == 569
    assert set(scored["model"]) == {"classifier:7"}
    assert set(scored["input_sha256"]) == {hashlib.sha256(DATA.read_bytes()).hexdigest()}
    wide, rows = with_wrong_field_counts(tmp_path / "wide.csv")
    assert batch_score.run([str(wide)]) == ["wide.csv"]
    errors = pd.read_csv(tmp_path / "job-output" / "wide.errors.csv")
    assert errors["row"].tolist() == [4, 5, 60, rows - 1]
