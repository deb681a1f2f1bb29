"""A deployment's container as Azure ML runs it: score.py's init()/run() with the data collector
SDK configured, its collector agent, and the JSON Lines the collector writes to blob storage.

Rules, each from its source:
- the scoring script runs in the inference server: init() once, run() per request, with
  AZUREML_MODEL_DIR naming the model's folder (Learn: how-to-deploy-online-endpoints,
  "Understand the scoring script").
- the collector SDK (azureml-ai-monitoring 1.0.0) reads its collections from the JSON file named
  by AZUREML_MDC_CONFIG_PATH and posts each payload to the collector agent at
  AZUREML_MDC_HOST:AZUREML_MDC_PORT/modeldata/log, the request id in ce-x-request-id
  (config/config.py loadConfig; worker/sender.py). Which of its variables Azure's container
  sets is not documented: the config file is the SDK's non-legacy path (our reading).
- the collections are the deployment's dataCollector.collections (REST spec stable/2024-04-01
  mfe.json, DataCollector); a collection not listed is dropped by the SDK, and with none the
  SDK's Collector raises in its constructor (collector_json.py _validate_mdc_config).
- each line holds data (the DataFrame as records), correlationid, xrequestid and time, under
  modelDataCollector/<endpoint>/<deployment>/<collection>/YYYY/MM/DD/HH/ (Learn: how-to-collect-
  production-data). Payloads arriving close together are merged into one line under one
  correlationid (same page, "Data collector batching"); the interval is not documented: here
  everything a collection received since its last write is one line, written when anyone reads
  the collector's blobs.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .storage import collector_blob

_received: list[tuple[dict, bytes]] = []  # (headers, body) of each payload the agent got
_lock = threading.Condition()  # notified on each payload
_agent: ThreadingHTTPServer | None = None


class _Agent(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with _lock:
            _received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            _lock.notify_all()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


def agent_port() -> int:
    """The collector agent of this test process, on loopback (one for all, as the SDK's config
    is read once per process)."""
    global _agent
    if _agent is None:
        _agent = ThreadingHTTPServer(("127.0.0.1", 0), _Agent)
        threading.Thread(target=_agent.serve_forever, daemon=True).start()
    return _agent.server_address[1]


@contextmanager
def _environment(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Container:
    """One deployment's scoring process state: score.py's globals after its init()."""

    def __init__(self, model_dir: Path, collections: dict):
        import score

        self.folder = Path(tempfile.mkdtemp(prefix="mdc-"))
        config = {  # the collections the deployment enables, as the SDK reads them
            "collections": {
                name: {"enabled": str(c.get("dataCollectionMode", "")).lower() == "enabled"}
                for name, c in collections.items()
            }
        }
        (self.folder / "mdc.json").write_text(json.dumps(config))
        self.variables = {
            "AZUREML_MODEL_DIR": str(model_dir),
            "AZUREML_MDC_CONFIG_PATH": str(self.folder / "mdc.json"),
            "AZUREML_MDC_HOST": "127.0.0.1",
            "AZUREML_MDC_PORT": str(agent_port()),
        }
        self.collections = [n for n, c in config["collections"].items() if c["enabled"]]
        with _environment(self.variables), _without("MLOPS_COLLECT_DIR"):
            score.init()
        self.session, self.collector = score._session, score._collector

    def run(self, body: bytes, headers: dict) -> tuple[int, bytes, list[tuple[dict, bytes]]]:
        """One request through score.run(); the payloads the collector agent got for it."""
        import flask
        import score
        from werkzeug.test import EnvironBuilder

        with _lock:
            mark = len(_received)
        environ = EnvironBuilder(method="POST", path="/score", data=body, headers=headers)
        with _environment(self.variables), _without("MLOPS_COLLECT_DIR"):
            score._session, score._collector = self.session, self.collector
            answer = score.run(flask.Request(environ.get_environ()))
        # score.py collects a client's requests only (its traffic header: smoke tests and
        # probes are left out), one payload per enabled collection
        live = headers.get(score.TRAFFIC_HEADER, "live") == "live"
        expected = len(self.collections) if self.collector and answer.status_code == 200 else 0
        with _lock:  # the SDK's worker thread posts them: a bounded wait
            _lock.wait_for(lambda: len(_received) - mark >= (expected if live else 0), timeout=5)
            sent = _received[mark:]
        return answer.status_code, answer.get_data(), sent


@contextmanager
def _without(name: str):
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


class Collected:
    """What the data collector keeps of each deployment's payloads until it writes them."""

    def take_payloads(self, endpoint: str, deployment: str, payloads) -> None:
        for headers, body in payloads:
            collection = headers.get("ce-type", "").removeprefix("azureml.inference.")
            pending = self.collector_pending.setdefault((endpoint, deployment, collection), [])
            pending.append((headers, json.loads(body)))

    def write_collected(self) -> None:
        """Each collection's pending payloads as one line: rows in order, the first's id."""
        for (endpoint, deployment, collection), payloads in self.collector_pending.items():
            if not payloads:
                continue
            first, _ = payloads[0]
            when = datetime.fromtimestamp(float(first.get("ce-time", time.time())), UTC)
            line = {
                "specversion": "1.0",
                "type": f"azureml.inference.{collection}",
                "time": f"{when:%Y-%m-%dT%H:%M:%SZ}",
                "data": [row for _, data in payloads for row in data],
                "correlationid": first.get("ce-x-request-id"),
                "xrequestid": first.get("ce-x-request-id"),
                "modelversion": first.get("ce-model-version", "default"),
                "collectdatatype": first.get("ce-collect-data-type"),
                "agent": first.get("ce-agent"),
            }
            blob = collector_blob(endpoint, deployment, collection, when, "instance-0.jsonl")
            self.blobs[blob] = self.blobs.get(blob, b"") + json.dumps(line).encode() + b"\n"
            payloads.clear()
