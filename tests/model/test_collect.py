"""Collected records: one whole JSON line per request, whatever the number of writers."""

import json
import multiprocessing

from collect import JsonLinesCollector
from features import FEATURES

ROW = [float(i) for i in range(len(FEATURES))]


def write_many(folder: str, writer: int, count: int) -> None:
    collector = JsonLinesCollector(folder, f"deployment-{writer}", "m:1")
    for i in range(count):
        collector.record(
            f"{writer}-{i}", [ROW] * 20, {"predictions": [1] * 20, "probabilities": [0.5] * 20}
        )


def test_concurrent_writers_lose_nothing_and_never_interleave(tmp_path):
    writers, each = 4, 250
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=write_many, args=(str(tmp_path), w, each)) for w in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    (path,) = tmp_path.glob("inference-*.jsonl")
    records = [
        json.loads(line) for line in path.read_text().splitlines()
    ]  # a torn line would not parse
    assert len(records) == writers * each
    assert len({r["request_id"] for r in records}) == writers * each
    record = records[0]
    assert set(record) == {
        "request_id",
        "timestamp",
        "deployment",
        "model",
        "traffic",
        "inputs",
        "outputs",
    }
    assert record["traffic"] == "live"
    assert list(record["inputs"][0]) == list(FEATURES) and len(record["inputs"]) == 20
