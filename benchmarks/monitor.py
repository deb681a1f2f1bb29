"""Monitor at volume: time and peak memory of `mlops monitor`'s drift pass (make bench-monitor).

Writes N collected records (default one million, one row each, in the collector's
format) under a temporary state home, and the first tenth of them under a second
one. Then, round after round, each pass runs in a fresh process: ours over the
tenth and over all (the local backend's reader and the drift measure, as `mlops
monitor` runs them), and, when Evidently is installed (`pip install -e '.[bench]'`,
or any interpreter given with --peer-python), Evidently's data drift report over
the same records, loaded as the peers load them: the whole window in memory. Each
peer step is bounded in time. Prints the median of the rounds with the lowest and
highest, and writes a table and a chart under .mlops/bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]
DATA = ROOT / "src" / "model" / "data" / "breast_cancer.csv"
PEER_SECONDS = 900  # one peer pass; beyond it the step is reported as not finished


def write_records(folder: Path, count: int, seed: int = 11) -> Path:
    """Records of prod's endpoint, as its deployment's collector writes them."""
    from mlops import config
    from mlops.monitor import load_reference

    endpoint = config.load("prod", ROOT).endpoint_name
    reference = load_reference(DATA)
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
                "deployment": f"{endpoint}/blue",
                "model": "breast-cancer-classifier:1",
                "traffic": "live",
                "inputs": [{name: float(reference[name][pick]) for name in features}],
                "outputs": {"predictions": [0], "probabilities": [0.1]},
            }
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    return path


def copy_head(source: Path, target: Path, count: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader, open(target, "wb") as writer:
        for _, line in zip(range(count), reader, strict=False):
            writer.write(line)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User and system time of this process, all its threads: a figure a busy neighbour on a
    shared machine inflates much less than the wall clock."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ours(home: Path) -> dict:
    """In a fresh process: the same reader and measure `mlops monitor` uses."""
    from mlops import config
    from mlops.backends.local.backend import LocalBackend
    from mlops.monitor import load_reference, measure

    prod = config.load("prod", ROOT)
    backend = LocalBackend(prod, ROOT, home)
    reference = load_reference(DATA)
    rules = prod.require_monitor()
    before, cpu = peak_mb(), cpu_seconds()
    started = time.perf_counter()
    result = measure(
        reference, backend.collected_rows(prod.endpoint_name), rules.psi, rules.ks, rules.min_rows
    )
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    if not result.rows:
        raise SystemExit("the drift pass read no row: the records are not prod's endpoint's")
    return {
        "rows": result.rows,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": peak_mb(),
        "before_mb": before,
    }


def peer(home: Path) -> dict:
    """In a fresh process, maybe another interpreter: Evidently's data drift preset on the
    same collected rows, read whole into a frame (how its reports take data)."""
    import pandas as pd
    import pyarrow.json as pj
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_csv(DATA).drop(columns=["malignant"])
    before, cpu = peak_mb(), cpu_seconds()
    started = time.perf_counter()
    (path,) = (home / "prod" / "collected").glob("inference-*.jsonl")
    inputs = pj.read_json(path).column("inputs").combine_chunks().flatten()
    current = pd.DataFrame({name: inputs.field(name).to_numpy() for name in reference.columns})
    loaded = time.perf_counter() - started
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    drifted = snapshot.dict()["metrics"][0]["value"]["count"]  # the drifted-columns count
    seconds = time.perf_counter() - started
    return {
        "rows": len(current),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu,
        "load_seconds": loaded,
        "peak_mb": peak_mb(),
        "before_mb": before,
        "drifted": drifted,
    }


def run_child(python: str, role: str, home: Path, timeout: float) -> dict | None:
    env = {**os.environ, "DO_NOT_TRACK": "1", "ITERATIVE_DO_NOT_TRACK": "1"}  # no telemetry
    try:
        child = subprocess.run(
            [python, __file__, f"--{role}", str(home)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        print(f"  {role}: not finished within {timeout:.0f}s", flush=True)
        return None
    if child.returncode != 0:
        lines = child.stderr.strip().splitlines() or [f"exit {child.returncode}"]
        print(f"  {role}: failed ({lines[-1]})", flush=True)
        return None
    return json.loads(child.stdout.strip().splitlines()[-1])


def peer_available(python: str) -> bool:
    try:
        check = subprocess.run(
            [python, "-c", "import evidently, pyarrow, pandas"], capture_output=True, check=False
        )
    except OSError:  # no such interpreter
        return False
    return check.returncode == 0


def spread(values: list[float], digits: int = 0) -> str:
    """The median, and the lowest and highest of the rounds."""
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:,.{digits}f}"
    return f"{median:,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def table(records: int, passes: dict[str, list[dict]]) -> str:
    lines = [
        f"Median of the rounds (lowest–highest); {records:,} collected records.",
        "",
        "| pass | rows | seconds | rows/s | CPU s | rows per CPU s | peak MB | peak MB before "
        "the pass | rounds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, results in passes.items():
        if not results:
            lines.append(f"| {label} | | | | | | | | 0 (see above) |")
            continue
        cells = (
            f"{results[0]['rows']:,}",
            spread([r["seconds"] for r in results], 1),
            spread([r["rows"] / r["seconds"] for r in results]),
            spread([r["cpu_seconds"] for r in results], 1),
            spread([r["rows"] / r["cpu_seconds"] for r in results]),
            spread([r["peak_mb"] for r in results]),
            spread([r["before_mb"] for r in results]),
            str(len(results)),
        )
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def chart(passes: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = {label: results for label, results in passes.items() if results}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for axis, (name, unit) in zip(
        axes, (("rows_per_second", "rows per second"), ("peak_mb", "peak MB")), strict=True
    ):
        values = [
            [r["rows"] / r["seconds"] if name == "rows_per_second" else r[name] for r in results]
            for results in shown.values()
        ]
        medians = [statistics.median(v) for v in values]
        low = [m - min(v) for m, v in zip(medians, values, strict=True)]
        high = [max(v) - m for m, v in zip(medians, values, strict=True)]
        axis.bar(range(len(shown)), medians, yerr=[low, high], capsize=4, color="#2a7")
        axis.set_xticks(range(len(shown)), list(shown), rotation=15, fontsize=8)
        axis.set_ylabel(unit)
    fig.suptitle("Drift pass over collected records (median, lowest–highest)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--peer-python",
        default=sys.executable,
        help="the interpreter that has Evidently (default: this one)",
    )
    parser.add_argument("--ours", metavar="HOME", help=argparse.SUPPRESS)
    parser.add_argument("--peer", metavar="HOME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ours or args.peer:
        print(json.dumps(ours(Path(args.ours)) if args.ours else peer(Path(args.peer))))
        return 0
    if args.records < 10 or args.rounds < 1:
        parser.error("--records must be at least 10 and --rounds at least 1")
    with_peer = peer_available(args.peer_python)
    if not with_peer:
        print(f"Evidently is not importable by {args.peer_python}: the peer step is skipped")
    out = ROOT / ".mlops" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    tenth = args.records // 10
    labels = {
        "small": f"ours, {tenth:,} records",
        "all": f"ours, {args.records:,} records",
        "peer": f"Evidently DataDriftPreset, {args.records:,} records",
    }
    passes: dict[str, list[dict]] = {label: [] for label in labels.values()}
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as folder:
        homes = {"small": Path(folder) / "small", "all": Path(folder) / "all"}
        started = time.perf_counter()
        path = write_records(homes["all"] / "prod" / "collected", args.records)
        copy_head(path, homes["small"] / "prod" / "collected" / path.name, tenth)
        size_mb, took = path.stat().st_size / 1e6, time.perf_counter() - started
        print(f"wrote {args.records:,} records ({size_mb:.0f} MB) in {took:.0f}s", flush=True)
        for number in range(1, args.rounds + 1):
            steps = [("small", "ours"), ("all", "ours")] + [("peer", "peer")] * with_peer
            for key, role in steps:
                print(f"  round {number}: {labels[key]} …", flush=True)
                home = homes["all"] if role == "peer" else homes[key]
                python = args.peer_python if role == "peer" else sys.executable
                figures = run_child(python, role, home, PEER_SECONDS)
                if figures is not None:
                    passes[labels[key]].append(figures)
    report = table(args.records, passes if with_peer else dict(list(passes.items())[:2]))
    (out / "monitor.md").write_text(report + "\n")
    chart(passes, out / "monitor.png")
    print("\n" + report)
    print(f"\nwritten: {out / 'monitor.md'}, {out / 'monitor.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
