"""Serving benchmark, side by side in one run, on loopback only (make bench).

(a) our endpoint as deployed: the inference server with score.py, the ONNX model
    and data collection on (every scored request recorded, as the local backend runs it)
(b) the same server scoring with the scikit-learn model
(c) `mlflow models serve` of the same model, what a user might pick instead
(d) the same server with an empty scoring script: the floor of the server itself

For 1-row and 100-row requests: requests per second, p50 and p99 latency, and
the peak memory of each server's process group. The servers take turns, round
after round, so that a neighbour's load on a shared machine falls on all of them;
each figure is the median of the rounds with its spread (lowest to highest), and
each ratio is taken within a round, then its median. A markdown table, a PNG
chart. Load is bounded in count and time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_CODE = ROOT / "src" / "model"
sys.path[:0] = [str(ROOT / "src"), str(MODEL_CODE)]

from features import FEATURES  # noqa: E402

from mlops.backends.local import inference_server, processes  # noqa: E402
from mlops.load import LoadResult, run_load  # noqa: E402

MAX_REQUESTS = int(os.environ.get("BENCH_MAX_REQUESTS", "3000"))
MAX_SECONDS = float(os.environ.get("BENCH_MAX_SECONDS", "3"))
CONCURRENCY = 2
SIZES = (1, 100)
# (name, numerator, denominator, figure, size, target as (comparison, bound))
RATIOS = (
    ("(a)/(b) req/s, 100 rows", "a", "b", "rps", 100, (">=", 2.0)),
    ("(a)/(c) req/s, 1 row", "a", "c", "rps", 1, (">=", 1.5)),
    ("(a)/(d) p50, 100 rows", "a", "d", "p50_ms", 100, ("<=", 2.0)),
    ("(a)/(d) p50, 1 row", "a", "d", "p50_ms", 1, ("<=", 1.3)),
    ("(a)/(d) req/s, 1 row", "a", "d", "rps", 1, None),
)


@dataclass
class Server:
    key: str
    label: str
    url: str
    pid: int
    payload: object  # rows -> request body
    collected: Path | None = None  # where it records requests, when collection is on


def rows_from_data(count: int) -> list[dict[str, float]]:
    with open(MODEL_CODE / "data" / "breast_cancer.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        base = [{name: float(row[name]) for name in FEATURES} for row in reader]
    return [base[i % len(base)] for i in range(count)]


def our_body(rows):
    return json.dumps({"data": rows}).encode()


def mlflow_body(rows):
    data = [[row[name] for name in FEATURES] for row in rows]
    return json.dumps({"dataframe_split": {"columns": list(FEATURES), "data": data}}).encode()


def train(workdir: Path) -> Path:
    """A model trained by src/model/train.py, exactly as the lifecycle trains it."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"}
    subprocess.run(
        [
            sys.executable,
            str(MODEL_CODE / "train.py"),
            "--data",
            str(MODEL_CODE / "data" / "breast_cancer.csv"),
            "--output",
            str(workdir / "outputs"),
        ],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
    )
    return workdir / "outputs" / "model"


def start_inference_server(key, label, entry, model_dir, workdir, collect=False) -> Server:
    """The same server the local backend deploys, with `entry` as its scoring script and, when
    collect, the collection settings the local backend gives a deployment."""
    code = inference_server.snapshot_code(MODEL_CODE, workdir / f"code-{key}", extra=entry)
    collected = workdir / f"collected-{key}" if collect else None
    env = (
        {
            "MLOPS_COLLECT_DIR": str(collected),
            "MLOPS_DEPLOYMENT": f"bench/{key}",
            "MLOPS_MODEL": "bench:1",
        }
        if collected
        else None
    )
    log = workdir / f"{key}.log"
    server = inference_server.start(code, entry.name, model_dir, log, 120, env)
    return Server(key, label, server.url, server.pid, our_body, collected)


def start_mlflow_serve(model_dir, workdir) -> Server:
    port = processes.free_port()
    log = workdir / "c.log"
    venv_bin = str(Path(sys.executable).parent)  # mlflow starts `uvicorn` by name
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    proc = processes.start(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        log,
        env,
        workdir,
    )
    _ready_or_stopped(f"http://127.0.0.1:{port}/ping", proc, log, 180)
    return Server(
        "c", "mlflow models serve", f"http://127.0.0.1:{port}/invocations", proc.pid, mlflow_body
    )


def _ready_or_stopped(url: str, proc, log: Path, timeout: float) -> None:
    try:
        processes.wait_ready(url, proc, log, timeout)
    except Exception:
        processes.stop(proc.pid, "")
        raise


def peak_memory_mb(group: int) -> float:
    """Sum of the peak resident memory of every process in the server's process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != group:  # field 5 of stat: the process group
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def measure(server: Server, size: int) -> LoadResult:
    body = server.payload(rows_from_data(size))
    run_load(server.url, body, concurrency=CONCURRENCY, max_requests=50, max_seconds=5)  # warm up
    result = run_load(
        server.url,
        body,
        concurrency=CONCURRENCY,
        max_requests=MAX_REQUESTS,
        max_seconds=MAX_SECONDS,
    )
    if server.collected is not None:
        records = _collected_records(server.collected)
        if records < result.requests:  # what was answered was recorded, or the bench is wrong
            raise RuntimeError(f"({server.key}) recorded {records} of {result.requests} requests")
        for path in server.collected.glob("*.jsonl"):
            path.unlink()  # the collector opens the file per request: a new one starts cleanly
    return result


def _collected_records(folder: Path) -> int:
    count = 0
    for path in folder.glob("*.jsonl"):
        with open(path, "rb") as handle:
            count += sum(
                chunk.count(b"\n") for chunk in iter(lambda h=handle: h.read(1 << 20), b"")
            )
    return count


def figure(result: LoadResult, name: str) -> float:
    return {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms}[name]


def spread(values: list[float], digits: int) -> str:
    """The median, and the lowest and highest of the rounds."""
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def ratio_values(rounds: list[dict], ratio) -> list[float]:
    _, top, bottom, name, size, _ = ratio
    return [figure(r[top, size], name) / figure(r[bottom, size], name) for r in rounds]


def verdict(median: float, target) -> str:
    if target is None:
        return ""
    comparison, bound = target
    met = median >= bound if comparison == ">=" else median <= bound
    return f"{comparison} {bound} | {'met' if met else 'not met'}"


def table(servers, rounds: list[dict], memory) -> str:
    lines = [
        f"Median of {len(rounds)} round(s), (lowest–highest); data collection on for (a).",
        "",
        "| server | rows | req/s | p50 ms | p99 ms | errors | peak MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in SIZES:
        for server in servers:
            results = [r[server.key, size] for r in rounds]
            cells = (
                spread([x.rps for x in results], 0),
                spread([x.p50_ms for x in results], 2),
                spread([x.p99_ms for x in results], 2),
                str(sum(x.errors for x in results)),
                f"{memory[server.key]:.0f}",
            )
            lines.append(f"| ({server.key}) {server.label} | {size} | {' | '.join(cells)} |")
    lines += [
        "",
        "| ratio (within a round) | value | target | verdict |",
        "| --- | ---: | --- | --- |",
    ]
    for ratio in RATIOS:
        values = ratio_values(rounds, ratio)
        judged = verdict(statistics.median(values), ratio[5]) or " | "
        lines.append(f"| {ratio[0]} | {spread(values, 2)} | {judged} |")
    return "\n".join(lines)


def chart(servers, rounds: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for axis, size in zip(axes, SIZES, strict=True):
        labels = [f"({s.key})" for s in servers]
        per_server = [[r[s.key, size].rps for r in rounds] for s in servers]
        medians = [statistics.median(v) for v in per_server]
        low = [m - min(v) for m, v in zip(medians, per_server, strict=True)]
        high = [max(v) - m for m, v in zip(medians, per_server, strict=True)]
        axis.bar(
            labels, medians, yerr=[low, high], capsize=4, color=["#2a7", "#c63", "#36c", "#999"]
        )
        axis.set_title(f"{size}-row requests (median, lowest–highest of {len(rounds)})")
        axis.set_ylabel("requests per second")
    fig.suptitle(
        "(a) ONNX, collection on  (b) scikit-learn  (c) mlflow models serve  (d) empty script"
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "5")))
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, not {args.rounds}")
    out = ROOT / ".mlops" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    servers: list[Server] = []
    try:
        print("training the model …", flush=True)
        model_dir = train(workdir)
        here = Path(__file__).resolve().parent
        print("starting four servers on loopback …", flush=True)
        starts = [
            lambda: start_inference_server(
                "a",
                "inference server, ONNX, collection on",
                MODEL_CODE / "score.py",
                model_dir,
                workdir,
                collect=True,
            ),
            lambda: start_inference_server(
                "b",
                "inference server, scikit-learn",
                here / "score_sklearn.py",
                model_dir,
                workdir,
            ),
            lambda: start_mlflow_serve(model_dir, workdir),
            lambda: start_inference_server(
                "d",
                "inference server, empty script",
                here / "score_empty.py",
                model_dir,
                workdir,
            ),
        ]
        for start in starts:  # one by one, so a failed start still stops the ones before it
            servers.append(start())
        rounds = []
        for number in range(1, args.rounds + 1):
            results = {}
            for size in SIZES:
                for server in servers:
                    print(f"  round {number}: ({server.key}) {size:>3} rows …", flush=True)
                    results[server.key, size] = measure(server, size)
            rounds.append(results)
        memory = {s.key: peak_memory_mb(s.pid) for s in servers}
        report = table(servers, rounds, memory)
        (out / "serving.md").write_text(report + "\n")
        chart(servers, rounds, out / "serving.png")
        print("\n" + report)
        print(f"\nwritten: {out / 'serving.md'}, {out / 'serving.png'}")
    finally:
        for server in servers:
            processes.stop(server.pid, "")
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
