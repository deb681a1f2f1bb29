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
from datetime import UTC, datetime
from pathlib import Path

from features import FEATURES


class JsonLinesCollector:
    def __init__(self, folder: str | Path, deployment: str, model: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.deployment, self.model = deployment, model

    def record(
        self, request_id: str, rows: list[list[float]], outputs: dict, traffic: str = "live"
    ) -> None:
        """traffic: live, or what marks it as not a client's (mirror, smoke, probe)."""
        now = datetime.now(UTC)
        line = json.dumps(
            {
                "request_id": request_id,
                "timestamp": now.isoformat(timespec="milliseconds"),
                "deployment": self.deployment,
                "model": self.model,
                "traffic": traffic,
                "inputs": [dict(zip(FEATURES, row, strict=True)) for row in rows],
                "outputs": outputs,
            },
            separators=(",", ":"),
        )
        data = (line + "\n").encode()
        path = self.folder / f"inference-{now:%Y%m%d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class AzureMonitoringCollector:
    """Azure ML's data collector: model_inputs and model_outputs, joined by correlation id."""

    def __init__(self):
        from azureml.ai.monitoring import Collector

        self.inputs = Collector(name="model_inputs")
        self.outputs = Collector(name="model_outputs")

    def record(
        self, request_id: str, rows: list[list[float]], outputs: dict, traffic: str = "live"
    ) -> None:
        import pandas as pd

        if traffic != "live":
            return  # only clients' requests are model inputs worth monitoring

        context = self.inputs.collect(pd.DataFrame(rows, columns=list(FEATURES)))
        self.outputs.collect(pd.DataFrame(outputs), context)


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
        return None
