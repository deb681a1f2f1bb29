"""Monitor at volume: time and peak memory of `mlops monitor`'s drift pass (make bench-monitor).

Writes N collected records (default one million, one row each, in the
collector's format) under a temporary state home, then, in a fresh process,
streams them through the local backend's reader and the drift measure, and
reports seconds, rows per second and peak resident memory against the
process's memory before the pass.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]


def write_records(folder: Path, count: int, seed: int = 11) -> Path:
    from mlops.monitor import load_reference

    reference = load_reference(ROOT / "src" / "model" / "data" / "breast_cancer.csv")
    features = [name for name in reference if name != "malignant"]
    rows = len(reference[features[0]])
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "inference-20261121.jsonl"
    with open(path, "w", buffering=1 << 20) as handle:
        for i in range(count):
            pick = rng.randrange(rows)
            record = {
                "request_id": f"r{i}",
                "timestamp": "2026-11-21T12:00:00.000+00:00",
                "deployment": "mlops-prod/blue",
                "model": "breast-cancer-classifier:1",
                "inputs": [{name: float(reference[name][pick]) for name in features}],
                "outputs": {"predictions": [0], "probabilities": [0.1]},
            }
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    return path


def measure_pass(home: Path) -> dict:
    """Run in a fresh process: the same reader and measure `mlops monitor` uses."""
    from mlops import config
    from mlops.backends.local.backend import LocalBackend
    from mlops.monitor import load_reference, measure

    prod = config.load("prod", ROOT)
    backend = LocalBackend(prod, ROOT, home)
    reference = load_reference(ROOT / "src" / "model" / "data" / "breast_cancer.csv")
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    rules = prod.require_monitor()
    result = measure(
        reference, backend.collected_rows(prod.endpoint_name), rules.psi, rules.ks, rules.min_rows
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows": result.rows,
        "seconds": round(seconds, 1),
        "rows_per_second": round(result.rows / seconds),
        "peak_rss_mb_before_pass": round(before_mb),
        "peak_rss_mb_after_pass": round(peak_mb),
        "drifted_features": len(result.drifted),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--measure", metavar="HOME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_pass(Path(args.measure))))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as home:
        started = time.perf_counter()
        path = write_records(Path(home) / "prod" / "collected", args.records)
        size_mb, took = path.stat().st_size / 1e6, time.perf_counter() - started
        print(f"wrote {args.records} records ({size_mb:.0f} MB) in {took:.0f}s")
        child = subprocess.run(
            [sys.executable, __file__, "--measure", home],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(child.stdout)
    print("| records | rows | seconds | rows/s | peak MB before | peak MB after | drifted |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    cells = [args.records, *(figures[k] for k in ("rows", "seconds", "rows_per_second"))]
    cells += [
        figures[k]
        for k in ("peak_rss_mb_before_pass", "peak_rss_mb_after_pass", "drifted_features")
    ]
    print("| " + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
