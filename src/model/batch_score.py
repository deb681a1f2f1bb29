"""Batch scoring entry script: Azure ML batch deployments (`init()` / `run(mini_batch)`) and a CLI.

The same ONNX artifact and the same input contract as score.py: rows that break
features.py's contract are written, with their one-sentence reason, to an errors
file instead of failing the job. A file is read and scored in bounded chunks, so
memory does not grow with it. Every output row names the model version, the
model's sha256 and the input file's sha256.

Locally (`python batch_score.py --model-dir DIR --model NAME:VERSION --input FILE
--output DIR`) each chunk becomes a part file written atomically and recorded in
a manifest; a rerun after an interruption skips the chunks already written, so
the merged output holds each row once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # score.py and features.py sit here
import score  # noqa: E402
from features import FEATURES, FLOAT32_MAX, PayloadError, parse_request  # noqa: E402

CHUNK_ROWS = 10_000
ID_COLUMN = "id"  # carried to the outputs when the input has it; else the row number identifies
MODEL_ENV = "MLOPS_MODEL"  # NAME:VERSION, set on the batch deployment
MANIFEST = "manifest.json"
PREDICTIONS = "predictions.csv"
ERRORS = "errors.csv"
SUFFIXES = (".csv", ".parquet")


class BatchInputError(ValueError):
    """A file the batch cannot score at all; the message is one sentence."""


@dataclass(frozen=True)
class Lineage:
    model: str  # NAME:VERSION
    model_sha256: str
    input_sha256: str

    def columns(self) -> dict[str, str]:
        return {
            "model": self.model,
            "model_sha256": self.model_sha256,
            "input_sha256": self.input_sha256,
        }


def sha256_and_lines(path: Path) -> tuple[str, int]:
    """The file's sha256 and its newline count (a row estimate for CSV progress), in one pass."""
    digest, lines = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            lines += block.count(b"\n")
    return digest.hexdigest(), lines


def expected_rows(path: Path, lines: int) -> int:
    if path.suffix == ".parquet":
        return _parquet(path).metadata.num_rows
    return max(lines - 1, 0)  # the header line


def _parquet(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the file's fault
        raise BatchInputError(f"{path.name} is not a readable Parquet file ({exc})") from None


@dataclass(frozen=True)
class Chunk:
    """Rows of the file read together: the readable ones, each with its row number in the file
    (data lines from 0, the header not counted), and the lines of a wrong field count."""

    frame: pd.DataFrame
    rows: np.ndarray  # frame's row numbers
    broken: list[tuple[int, str]]  # (row number, reason): lines no row can be made of
    end: int  # the row number after the last one read so far


# pandas' C parser, with on_bad_lines="warn", names each line it skips (pandas/_libs/parsers.pyx)
_SKIPPED = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")


def read_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """The file's rows, chunk_rows readable ones at a time (the last chunk shorter); CSV or
    Parquet. A CSV line with more fields than the header is a refused row, not a failed file."""
    if path.suffix not in SUFFIXES:
        raise BatchInputError(f"{path.name}: batch scoring reads .csv or .parquet files")
    if path.suffix == ".parquet":
        source = _parquet(path)
        _check_columns(path, source.schema_arrow.names)
        first = 0
        for batch in source.iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            yield Chunk(frame, np.arange(first, first + len(frame)), [], first + len(frame))
            first += len(frame)
        return
    reader = _csv_call(path, pd.read_csv, path, **_CSV_OPTIONS, chunksize=chunk_rows)
    with reader:
        first, pending, index, columns = 0, {}, 0, list(FEATURES)
        while True:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                frame = _csv_call(path, next, reader, None)
            pending.update(_skipped_lines(said))
            if frame is None:
                if pending:  # wrong lines after the last readable row
                    end = max(pending) + 1
                    no_rows = pd.DataFrame(columns=columns)
                    yield Chunk(no_rows, np.arange(0), sorted(pending.items()), end)
                return
            if index == 0:
                columns = list(frame.columns)
                _check_columns(path, columns)
            index += 1
            rows = _numbered(first, len(frame), pending)
            end = int(rows[-1]) + 1 if len(rows) else first
            broken = sorted((row, why) for row, why in pending.items() if row < end)
            for row, _ in broken:
                del pending[row]
            yield Chunk(frame, rows, broken, end)
            first = end


# Blank lines are kept (as empty rows, which the contract refuses), so that a row's number is
# its line's: line L of the file is row L - 2, whatever lines before it were skipped.
_CSV_OPTIONS = {"dtype": {ID_COLUMN: str}, "on_bad_lines": "warn", "skip_blank_lines": False}


def _csv_call(path: Path, call, *args, **kwargs):
    """call(*args), with the parser's failures said as one sentence naming the file."""
    try:
        return call(*args, **kwargs)
    except pd.errors.EmptyDataError:
        raise BatchInputError(f"{path.name} is empty: it needs a header row of features") from None
    except UnicodeDecodeError:
        raise BatchInputError(
            f"{path.name} line {_undecodable_line(path)} is not UTF-8 text; "
            "save the file as UTF-8 CSV"
        ) from None
    except pd.errors.ParserError as exc:
        first = str(exc).splitlines()[0]
        raise BatchInputError(f"{path.name} is not a readable CSV file ({first})") from None


def _undecodable_line(path: Path) -> int:
    """The number of the file's first line that is not UTF-8 (one pass, only when one is)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def _skipped_lines(said) -> dict[int, str]:
    """The row number and refusal of each line the parser skipped, from its warnings."""
    found = {}
    for warning in said:
        skipped = issubclass(warning.category, pd.errors.ParserWarning)
        lines = _SKIPPED.findall(str(warning.message)) if skipped else []
        if not lines:  # any other warning: passed on, not swallowed
            warnings.warn(warning.message, warning.category, stacklevel=2)
        for line, expected, saw in lines:
            row = int(line) - 2  # line 1 is the header
            found[row] = f"row {row} (line {line}) has {saw} fields, the header {expected}"
    return found


def _numbered(first: int, count: int, skipped: dict[int, str]) -> np.ndarray:
    """The row numbers of count readable rows from first on, passing over skipped lines."""
    if not skipped:
        return np.arange(first, first + count)
    candidates = np.arange(first, first + count + len(skipped))
    return candidates[~np.isin(candidates, list(skipped))][:count]


def _check_columns(path: Path, columns: list[str]) -> None:
    missing = [name for name in FEATURES if name not in columns]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise BatchInputError(f"{path.name} has no column(s) {shown}: every feature is required")


def _numeric(column: pd.Series) -> np.ndarray:
    """Floats where the cell is a number; NaN where it is not (text, booleans, empty)."""
    if pd.api.types.is_bool_dtype(column):  # the contract refuses booleans
        return np.full(len(column), np.nan)
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(np.float64)
    return pd.to_numeric(column, errors="coerce").to_numpy(np.float64)  # CSV text cells


def split(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(float64 feature matrix, mask of rows inside the contract: finite, float32-sized numbers)."""
    matrix = np.column_stack([_numeric(frame[name]) for name in FEATURES])
    return matrix, (np.abs(matrix) <= FLOAT32_MAX).all(axis=1)  # False for NaN and infinities


def refusal(frame: pd.DataFrame, matrix: np.ndarray, position: int, row_number: int) -> str:
    """The contract's own sentence for a refused row (features.parse_request), naming its row."""
    values = {
        name: float(number) if abs(number) <= FLOAT32_MAX else _plain(frame[name].iloc[position])
        for name, number in zip(FEATURES, matrix[position], strict=True)
    }
    try:
        parse_request(json.dumps({"data": [values]}))
    except PayloadError as exc:
        reason = str(exc)
        if reason.startswith("row 0"):
            return f"row {row_number}" + reason[len("row 0") :]
        return f"row {row_number}: {reason}"
    return f"row {row_number} breaks the input contract"


def _plain(value: object) -> object:
    """A cell as JSON would carry it: an empty cell is null, numpy scalars are Python's."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def score_chunk(session, chunk: Chunk, lineage: Lineage) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions for the rows inside the contract, refusals (row, reason) for the others and
    for the chunk's lines of a wrong field count."""
    frame = chunk.frame
    matrix, good = split(frame)
    rows = chunk.rows
    identity = {"row": rows}
    if ID_COLUMN in frame.columns:
        identity["id"] = frame[ID_COLUMN].to_numpy()
    scored = {key: values[good] for key, values in identity.items()}
    if good.any():
        answer = score.predict(session, matrix[good])  # float32 inside, as online
        scored.update(prediction=answer["predictions"], probability=answer["probabilities"])
    else:
        scored.update(prediction=[], probability=[])
    predictions = pd.DataFrame(scored).assign(**lineage.columns())
    bad = np.flatnonzero(~good)
    refused = {key: values[bad] for key, values in identity.items()}
    refused["reason"] = [refusal(frame, matrix, int(i), int(rows[i])) for i in bad]
    refused = pd.DataFrame(refused)
    if chunk.broken:  # same columns in every chunk: the parts are merged under one header
        lines = pd.DataFrame(chunk.broken, columns=["row", "reason"])
        lines = lines.reindex(columns=refused.columns)
        refused = lines if refused.empty else pd.concat([refused, lines])
        refused = refused.sort_values("row", kind="stable")
    return predictions, refused.assign(**lineage.columns())


def load_model(model_dir: str | Path):
    """The ONNX session and the artifact's sha256, from the model folder (as score.py finds it)."""
    path = score.find_model(model_dir)
    return score.load_session(path), sha256_and_lines(path)[0]


# ---- local: one file, resumable -------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    rows: int
    refused: int
    chunks: int
    skipped: int  # chunks already done by an earlier, interrupted run
    predictions: Path
    errors: Path
    lineage: Lineage


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    partial = path.with_suffix(".partial")
    frame.to_csv(partial, index=False)
    os.replace(partial, path)


def _write_json(data: dict, path: Path) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)


def _resume(manifest_path: Path, fresh: dict) -> dict:
    """The manifest to continue from: the earlier run's if it scored the same bytes with the same
    model, else a new one; an output folder holding another run's results is refused."""
    if not manifest_path.exists():
        return fresh
    earlier = json.loads(manifest_path.read_text())
    same = ("input_sha256", "model_sha256", "model", "chunk_rows")
    if any(earlier.get(key) != fresh[key] for key in same):
        raise BatchInputError(
            f"{manifest_path.parent} holds another run's output (other input, model or chunk "
            "size); choose a new --output folder"
        )
    return earlier


def score_file(
    session,
    model_sha256: str,
    model: str,
    source: Path,
    output: Path,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Summary:
    """Score source into output/predictions.csv and output/errors.csv, chunk by chunk."""
    if not source.is_file():
        raise BatchInputError(f"{source} is not a file")
    if source.suffix not in SUFFIXES:
        raise BatchInputError(f"{source.name}: batch scoring reads .csv or .parquet files")
    input_sha256, lines = sha256_and_lines(source)
    lineage = Lineage(model, model_sha256, input_sha256)
    total = expected_rows(source, lines)
    parts = output / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    manifest_path = output / MANIFEST
    manifest = _resume(
        manifest_path,
        {
            "input": source.name,
            **lineage.columns(),
            "chunk_rows": chunk_rows,
            "chunks": {},  # chunk number -> {rows, refused}, written after its parts
            "complete": False,
        },
    )
    done, skipped = manifest["chunks"], 0
    if not manifest["complete"]:
        for number, chunk in enumerate(read_chunks(source, chunk_rows)):
            key = f"{number:06d}"
            if key in done:
                skipped += 1
            else:
                predictions, refused = score_chunk(session, chunk, lineage)
                _atomic_csv(predictions, parts / f"predictions-{key}.csv")
                _atomic_csv(refused, parts / f"errors-{key}.csv")
                done[key] = {"rows": len(predictions), "refused": len(refused)}
                _write_json(manifest, manifest_path)
            progress(chunk.end, max(total, chunk.end))
        for kind in (PREDICTIONS, ERRORS):
            _merge(sorted(parts.glob(f"{kind.split('.')[0]}-*.csv")), output / kind)
        manifest["complete"] = True
        _write_json(manifest, manifest_path)
        shutil.rmtree(parts)
    return Summary(
        rows=sum(c["rows"] for c in done.values()),
        refused=sum(c["refused"] for c in done.values()),
        chunks=len(done),
        skipped=skipped,
        predictions=output / PREDICTIONS,
        errors=output / ERRORS,
        lineage=lineage,
    )


def _merge(parts: list[Path], target: Path) -> None:
    """Concatenate part files (one header) into target, streaming, atomically."""
    partial = target.with_suffix(".partial")
    with open(partial, "wb") as out:
        for index, part in enumerate(parts):
            with open(part, "rb") as handle:
                header = handle.readline()
                if index == 0:
                    out.write(header)
                shutil.copyfileobj(handle, out, 1 << 20)
    os.replace(partial, target)


# ---- Azure ML batch deployment: init() once, run(mini_batch) per list of files -------

_session = None
_model_sha256 = ""
_output_dir: Path | None = None


def init() -> None:
    """Load the model once (AZUREML_MODEL_DIR) and find the job's output folder."""
    global _session, _model_sha256, _output_dir
    _session, _model_sha256 = load_model(os.environ.get("AZUREML_MODEL_DIR", "."))
    # docs how-to-deploy-model-custom-output: the deployment job's output folder
    _output_dir = Path(os.environ.get("AZUREML_BI_OUTPUT_PATH", "."))


def run(mini_batch: list[str]) -> list[str]:
    """Score each file of the mini-batch into <file>.predictions.csv and <file>.errors.csv.

    Returns one element per file processed (docs how-to-batch-scoring-script: each element
    of run()'s result counts one input element of the mini-batch as done)."""
    model = os.environ.get(MODEL_ENV, "unknown")
    done = []
    for name in mini_batch:
        source = Path(name)
        input_sha256, _ = sha256_and_lines(source)
        lineage = Lineage(model, _model_sha256, input_sha256)
        targets = {
            kind: _output_dir / f"{source.stem}.{kind}.csv" for kind in ("predictions", "errors")
        }
        partials = {kind: path.with_suffix(".partial") for kind, path in targets.items()}
        for partial in partials.values():
            partial.unlink(missing_ok=True)  # a retried mini-batch starts its files again
        for number, chunk in enumerate(read_chunks(source, CHUNK_ROWS)):  # bounded memory
            scored, refused = score_chunk(_session, chunk, lineage)
            for kind, rows in (("predictions", scored), ("errors", refused)):
                rows.to_csv(partials[kind], mode="a", header=number == 0, index=False)
        for kind, path in targets.items():
            os.replace(partials[kind], path)
        done.append(source.name)
    return done


# ---- command line -------------------------------------------------------------------


def progress_bar(stream=sys.stderr) -> Callable[[int, int], None]:
    """A bar redrawn in place on a terminal; elsewhere (CI logs) a line per tenth of the file."""
    started, shown = time.monotonic(), [-1]

    def show(done: int, total: int) -> None:
        share = done / total if total else 1.0
        rate = done / max(time.monotonic() - started, 1e-9)
        text = f"{done:>10,} rows {share:6.1%}  {rate:,.0f} rows/s"
        if stream.isatty():
            filled = int(share * 30)
            print(f"\r  [{'#' * filled}{'.' * (30 - filled)}] {text}", end="", file=stream)
        elif int(share * 10) > shown[0]:
            shown[0] = int(share * 10)
            print(f"  {text}", file=stream, flush=True)

    return show


_END_BAR = "\n" if sys.stderr.isatty() else ""  # ends the bar's line on a terminal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="folder holding model.onnx")
    parser.add_argument("--model", required=True, metavar="NAME:VERSION")
    parser.add_argument("--input", required=True, type=Path, help="a .csv or .parquet file")
    parser.add_argument("--output", required=True, type=Path, help="folder for the outputs")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    args = parser.parse_args(argv)
    if not 1 <= args.chunk_rows <= 1_000_000:
        print("error: --chunk-rows must be from 1 to 1000000", file=sys.stderr)
        return 2
    try:
        session, model_sha256 = load_model(args.model_dir)
        summary = score_file(
            session,
            model_sha256,
            args.model,
            args.input,
            args.output,
            args.chunk_rows,
            progress=progress_bar(),
        )
    except (BatchInputError, FileNotFoundError) as exc:
        print(f"{_END_BAR}error: {exc}", file=sys.stderr)
        return 2
    print(_END_BAR, end="", file=sys.stderr)
    print(json.dumps({**summary.__dict__, "lineage": summary.lineage.columns()}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
