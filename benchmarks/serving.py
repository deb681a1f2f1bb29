"""Serving benchmark, side by side in one run, on loopback only (make bench).

(a) our endpoint: the inference server with score.py and the ONNX model
(b) the same server scoring with the scikit-learn model
(c) `mlflow models serve` of the same model, what a user might pick instead
(d) the same server with an empty scoring script: the floor of the server itself

For 1-row and 100-row requests: requests per second, p50 and p99 latency, and
the peak memory of each server's process group; a markdown table, a PNG chart,
and the ratios of (a) against (b), (c) and (d). Load is bounded in count and time.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
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
MAX_SECONDS = float(os.environ.get("BENCH_MAX_SECONDS", "8"))
CONCURRENCY = 2
SIZES = (1, 100)


@dataclass
class Server:
    key: str
    label: str
    url: str
    pid: int
    payload: object  # rows -> request body


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


def start_inference_server(key, label, entry, model_dir, workdir, payload) -> Server:
    """The same server the local backend deploys, with `entry` as its scoring script."""
    code = inference_server.snapshot_code(MODEL_CODE, workdir / f"code-{key}", extra=entry)
    server = inference_server.start(code, entry.name, model_dir, workdir / f"{key}.log", 120)
    return Server(key, label, server.url, server.pid, payload)


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
    return run_load(
        server.url,
        body,
        concurrency=CONCURRENCY,
        max_requests=MAX_REQUESTS,
        max_seconds=MAX_SECONDS,
    )


def table(servers, results, memory) -> str:
    lines = [
        "| server | rows | req/s | p50 ms | p99 ms | errors | peak MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in SIZES:
        for server in servers:
            r = results[server.key, size]
            cells = (f"{r.rps:.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", str(r.errors))
            memory_mb = f"{memory[server.key]:.0f}"
            lines.append(
                f"| ({server.key}) {server.label} | {size} | {' | '.join(cells)} | {memory_mb} |"
            )
    a = lambda size: results["a", size]  # noqa: E731
    ratios = [
        ("(a)/(b) req/s, 100 rows", a(100).rps / results["b", 100].rps, ">= 2.0"),
        ("(a)/(c) req/s, 1 row", a(1).rps / results["c", 1].rps, ">= 1.5"),
        ("(a)/(d) p50, 1 row", a(1).p50_ms / results["d", 1].p50_ms, "<= 1.5"),
        ("(a)/(d) req/s, 1 row", a(1).rps / results["d", 1].rps, ""),
    ]
    lines += ["", "| ratio | value | target |", "| --- | ---: | --- |"]
    lines += [f"| {name} | {value:.2f} | {target} |" for name, value, target in ratios]
    return "\n".join(lines)


def chart(servers, results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for axis, size in zip(axes, SIZES, strict=True):
        labels = [f"({s.key})" for s in servers]
        axis.bar(
            labels,
            [results[s.key, size].rps for s in servers],
            color=["#2a7", "#c63", "#36c", "#999"],
        )
        axis.set_title(f"{size}-row requests")
        axis.set_ylabel("requests per second")
    fig.suptitle("(a) ONNX  (b) scikit-learn  (c) mlflow models serve  (d) empty script")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
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
                "a", "inference server, ONNX", MODEL_CODE / "score.py", model_dir, workdir, our_body
            ),
            lambda: start_inference_server(
                "b",
                "inference server, scikit-learn",
                here / "score_sklearn.py",
                model_dir,
                workdir,
                our_body,
            ),
            lambda: start_mlflow_serve(model_dir, workdir),
            lambda: start_inference_server(
                "d",
                "inference server, empty script",
                here / "score_empty.py",
                model_dir,
                workdir,
                our_body,
            ),
        ]
        for start in starts:  # one by one, so a failed start still stops the ones before it
            servers.append(start())
        results = {}
        for size in SIZES:
            for server in servers:
                print(f"  ({server.key}) {size:>3} rows …", flush=True)
                results[server.key, size] = measure(server, size)
        memory = {s.key: peak_memory_mb(s.pid) for s in servers}
        report = table(servers, results, memory)
        (out / "serving.md").write_text(report + "\n")
        chart(servers, results, out / "serving.png")
        print("\n" + report)
        print(f"\nwritten: {out / 'serving.md'}, {out / 'serving.png'}")
    finally:
        for server in servers:
            processes.stop(server.pid, "")
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
