"""Inference data collection: each scored request's inputs and outputs, with an id and a time.

Locally (MLOPS_COLLECT_DIR set by the local backend) records are appended as
JSON Lines, one line per request, under an exclusive lock and in a single
write, so concurrent workers never interleave and a restart loses nothing that
was answered. On Azure ML the deployment's data collector takes them
(azureml-ai-monitoring), next to Application Insights.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from features import FEATURES


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class JsonLinesCollector:
    def __init__(self, folder: str | Path, deployment: str, model: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.deployment, self.model = deployment, model

    def record(
        self,
        request_id: str,
        rows: Sequence[Sequence[float]],
        outputs: dict,
        traffic: str = "live",
        *,
        rows_json: bytes | None = None,
        outputs_json: bytes | None = None,
    ) -> None:
        """traffic: live, or what marks it as not a client's (mirror, smoke, probe).

        rows_json and outputs_json, when the caller has them (the request's rows as sent, the
        answer as encoded for the reply), are written as they are instead of encoded again."""
        now = datetime.now(UTC)
        head = json.dumps(
            {
                "request_id": request_id,
                "timestamp": now.isoformat(timespec="milliseconds"),
                "deployment": self.deployment,
                "model": self.model,
                "traffic": traffic,
            },
            separators=(",", ":"),
        )
        if rows_json is None:
            rows_json = _compact([dict(zip(FEATURES, row, strict=True)) for row in rows])
        data = b"".join(
            (
                head[:-1].encode(),
                b',"inputs":',
                rows_json,
                b',"outputs":',
                outputs_json if outputs_json is not None else _compact(outputs),
                b"}\n",
            )
        )
        path = self.folder / f"inference-{now:%Y%m%d}.jsonl"
        # read and write: the last byte tells whether a killed writer left a torn line.
        # 0600: inputs are the clients' data, for this user only.
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # end the torn line: this record keeps a line of its own
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


# Azure ML's data collector merges requests that arrive close together into one line with one
# correlationid; each row keeps its request's id in this column (Learn: how-to-collect-
# production-data, "Data collector batching": put the id in a column of the DataFrame).
ID_COLUMN = "correlationid"


class AzureMonitoringCollector:
    """Azure ML's data collector: model_inputs and model_outputs, each row with its request id."""

    def __init__(self):
        from azureml.ai.monitoring import Collector

        # raises when the deployment has no data collection configured (azureml-ai-monitoring
        # 1.0.0, collector_json.py: _validate_mdc_config calls on_error, which raises by default)
        self.inputs = Collector(name="model_inputs")
        self.outputs = Collector(name="model_outputs")

    def record(
        self,
        request_id: str,
        rows: Sequence[Sequence[float]],
        outputs: dict,
        traffic: str = "live",
        **_encoded: bytes | None,  # the JSON Lines collector's shortcuts; the SDK takes frames
    ) -> None:
        import pandas as pd

        if traffic != "live":
            return  # only clients' requests are model inputs worth monitoring

        from azureml.ai.monitoring.context import BasicCorrelationContext

        # The request's own id ties its inputs and outputs lines together (the SDK's default
        # is a fresh uuid4): labels sent back by request id then find both.
        context = BasicCorrelationContext(id=request_id)
        inputs, answers = pd.DataFrame(rows, columns=list(FEATURES)), pd.DataFrame(outputs)
        inputs.insert(0, ID_COLUMN, request_id)
        answers.insert(0, ID_COLUMN, request_id)
        self.inputs.collect(inputs, context)
        self.outputs.collect(answers, context)


def from_environment():
    """The collector this process should use, or None when collection is off."""
    folder = os.environ.get("MLOPS_COLLECT_DIR")
    if folder:
        return JsonLinesCollector(
            folder, os.environ.get("MLOPS_DEPLOYMENT", ""), os.environ.get("MLOPS_MODEL", "")
        )
    try:
        return AzureMonitoringCollector()
    except ImportError:
        print("data collection is off: azureml-ai-monitoring is not installed", file=sys.stderr)
    except Exception as off:  # the SDK raises a bare Exception when collection is not configured
        print(f"data collection is off: {off}", file=sys.stderr)
    return None
