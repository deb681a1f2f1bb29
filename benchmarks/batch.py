"""Batch scoring at volume: rows/s and peak memory of src/model/batch_score.py (make bench-batch).

Writes files of N rows (default 100 000 and 1 000 000, CSV, and the larger one as
Parquet too) by sampling the shipped data, trains a model once, then scores each file
in a fresh process and reports seconds, rows per second and peak resident memory side
by side: memory that stays flat while the file grows tenfold is the bounded-chunk claim.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "src" / "model"
DATA = MODEL_DIR / "data" / "breast_cancer.csv"


def write_rows(path: Path, count: int, seed: int = 7) -> Path:
    import numpy as np
    import pandas as pd

    shipped = pd.read_csv(DATA).drop(columns=["malignant"])
    rng = np.random.default_rng(seed)
    if path.suffix == ".parquet":
        return _write_parquet(path, shipped, count, rng)
    for start in range(0, count, 100_000):  # written in blocks: the writer stays small too
        picks = rng.integers(0, len(shipped), min(100_000, count - start))
        block = shipped.iloc[picks].reset_index(drop=True)
        block.to_csv(path, mode="a" if start else "w", header=not start, index=False)
    return path


def _write_parquet(path: Path, shipped, count: int, rng) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for start in range(0, count, 100_000):
        picks = rng.integers(0, len(shipped), min(100_000, count - start))
        table = pa.Table.from_pandas(shipped.iloc[picks].reset_index(drop=True))
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    return path


def train(folder: Path) -> Path:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
    argv = [sys.executable, str(MODEL_DIR / "train.py"), "--data", str(DATA)]
    subprocess.run(
        [*argv, "--output", str(folder / "outputs")],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return folder / "outputs"


def child(model_dir: str, source: str, output: str) -> None:
    """In a fresh process: score one file with the entry script's CLI, report peak memory."""
    sys.path.insert(0, str(MODEL_DIR))
    import batch_score

    argv = ["--model-dir", model_dir, "--model", "bench:1", "--input", source, "--output", output]
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        code = batch_score.main(argv)
        sys.stdout = stdout
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"code": code, "seconds": seconds, "peak_mb": peak_mb}))


def measure(model_dir: Path, source: Path, output: Path) -> dict:
    argv = [sys.executable, __file__, "--child", str(model_dir), str(source), str(output)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("training the model once …", flush=True)
        model_dir = train(folder)
        cases = [folder / f"rows-{n}.csv" for n in args.rows]
        cases.append(folder / f"rows-{max(args.rows)}.parquet")
        print(f"{'input':>22} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak MB':>8}")
        results = []
        for source in cases:
            count = int(source.stem.split("-")[1])
            write_rows(source, count)
            found = measure(model_dir, source, folder / f"out-{source.name}")
            assert found["code"] == 0, found
            results.append((source.name, count, found))
            rate = count / found["seconds"]
            print(
                f"{source.name:>22} {count:>10,} {found['seconds']:>8.1f} {rate:>9,.0f} "
                f"{found['peak_mb']:>8.0f}",
                flush=True,
            )
        (small, n_small, a), (large, n_large, b) = results[0], results[-2]
        speedup = (n_large / b["seconds"]) / (n_small / a["seconds"])
        print(
            f"\n{large} has {n_large / n_small:.0f}x the rows of {small}; its peak memory is "
            f"{b['peak_mb'] / a['peak_mb']:.2f}x and its throughput {speedup:.2f}x"
        )


if __name__ == "__main__":
    main()
