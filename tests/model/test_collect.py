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


def test_a_record_after_a_torn_line_keeps_a_line_of_its_own(tmp_path):
    write_many(str(tmp_path), 0, 1)
    (path,) = tmp_path.glob("inference-*.jsonl")
    with path.open("ab") as handle:
        handle.write(b'{"request_id":"torn","inpu')  # a writer killed mid-line
    write_many(str(tmp_path), 1, 1)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[1] == '{"request_id":"torn","inpu'
    assert json.loads(lines[2])["request_id"] == "1-0"
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # the clients' inputs: this user's only


def test_on_azure_both_collections_carry_the_request_id_as_their_correlation_id(monkeypatch):
    """A stand-in with azureml-ai-monitoring 1.0.0's surface records what is sent (the real SDK
    runs in tests/azure/test_collector_on_azure.py). Each row also names its request in a
    correlationid column: the data collector merges close requests into one line.
    Collector(name=...).collect(frame, context) sends the frame as to_json(orient="records")
    under the context's id (payload/payload.py build_payload, worker/sender.py
    ce-x-request-id); without a context it makes one with a fresh uuid4 (context.py)."""
    import sys
    import types

    import collect

    sent = []

    class BasicCorrelationContext:
        def __init__(self, id=None):  # noqa: A002 - the SDK's own parameter name
            self.id = id or "a-fresh-uuid4"

    class Collector:
        def __init__(self, *, name):
            self.name = name

        def collect(self, frame, context=None):
            context = context or BasicCorrelationContext()
            sent.append((self.name, context.id, json.loads(frame.to_json(orient="records"))))
            return context

    monitoring = types.ModuleType("azureml.ai.monitoring")
    monitoring.Collector = Collector
    monitoring.context = types.ModuleType("azureml.ai.monitoring.context")
    monitoring.context.BasicCorrelationContext = BasicCorrelationContext
    for name in ("azureml", "azureml.ai"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "azureml.ai.monitoring", monitoring)
    monkeypatch.setitem(sys.modules, "azureml.ai.monitoring.context", monitoring.context)

    collector = collect.AzureMonitoringCollector()
    answer = {"predictions": [1, 0], "probabilities": [0.9, 0.2]}
    collector.record("req-7", [ROW, ROW], answer)
    collector.record("req-8", [ROW], answer, traffic="smoke")  # not a client's: not collected
    assert [(name, key) for name, key, _ in sent] == [
        ("model_inputs", "req-7"),
        ("model_outputs", "req-7"),
    ]
    assert sent[0][2] == [{"correlationid": "req-7", **dict(zip(FEATURES, ROW, strict=True))}] * 2
    assert sent[1][2] == [
        {"correlationid": "req-7", "predictions": 1, "probabilities": 0.9},
        {"correlationid": "req-7", "predictions": 0, "probabilities": 0.2},
    ]
