"""Collected data on Azure ML: the data collector's model inputs (and, for labelled feedback,
its model outputs), read from the workspace's default blob store.

Layout, from the data collector's documentation ("Collect production data from models
deployed for real-time inferencing", Azure ML docs, how-to-collect-production-data): blobs
modelDataCollector/<endpoint>/<deployment>/<collection>/YYYY/MM/DD/HH/<instance>.jsonl, one
JSON object a line, its `data` the collected DataFrame and its `correlationid` the id that
ties a request's model_inputs line to its model_outputs line. The collector SDK
(azureml-ai-monitoring 1.0.0, payload/logdata.py) sends a DataFrame as
`to_json(orient="records")`: a list of one object per row, in outputs as in inputs; it puts
the correlation context's id in the `ce-x-request-id` header (worker/sender.py), and src/model/
collect.py makes that id the request's own x-request-id.

The collector merges requests that arrive close together into one line with one correlationid
(the docs' "Data collector batching"), so src/model/collect.py also writes each row's request id
in a `correlationid` column: rows are joined by that column, and by the line's id only when a
line has no such column (collected before the column existed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

from mlops import clock
from mlops.backends.base import CollectedRecord
from mlops.errors import MlopsError

INPUTS, OUTPUTS = "model_inputs", "model_outputs"
ID_COLUMN = "correlationid"  # src/model/collect.py ID_COLUMN: each row's own request id


class AzureCollected:
    """The collected data part of AzureBackend (which provides ml, credential, _client_options
    and get_endpoint)."""

    def collected_rows(
        self, endpoint: str, model: str | None = None, since: datetime | None = None
    ) -> Iterator[dict[str, float]]:
        """Stream the data collector's model_inputs, blob by blob, chunk by chunk.

        model keeps the blobs of the deployments now serving it; since keeps the hours from
        its hour on."""
        serving = self._serving(endpoint, model)
        container, names = self._collected_blobs(endpoint, INPUTS, serving, since)
        for name in names:
            for line in _lines(container, name):
                for row in _rows_of(_parsed(line)):
                    if isinstance(row, dict):
                        row.pop(ID_COLUMN, None)  # an id, not a feature
                    yield row

    def collected_records(
        self,
        endpoint: str,
        model: str | None = None,
        since: datetime | None = None,
        request_ids: set[str] | None = None,
    ) -> Iterator[CollectedRecord]:
        """Requests whose model_inputs and model_outputs lines share a correlation id. Lines
        wait for their partner in memory: with request_ids (labelled feedback) only those."""
        serving = self._serving(endpoint, model)
        inputs: dict[str, tuple[str, datetime, list[dict]]] = {}
        answers: dict[str, list[dict]] = {}
        for collection in (INPUTS, OUTPUTS):
            container, names = self._collected_blobs(endpoint, collection, serving, since)
            for name in names:
                deployment, hour = name.split("/")[2], _hour_of(name, collection)
                for line in _lines(container, name):
                    try:
                        found = _parsed(line)
                    except ValueError:
                        continue  # a torn line: that request is left out
                    line_id = str(found.get("correlationid") or found.get("xrequestid") or "")
                    try:
                        by_request = _by_request(_rows_of(found), line_id)
                    except ValueError:
                        continue
                    for key, rows in by_request.items():
                        if not key or (request_ids is not None and key not in request_ids):
                            continue
                        if collection == INPUTS:
                            inputs[key] = (deployment, _time_of(found) or hour, rows)
                        else:
                            answers[key] = rows
        for key, (deployment, time, rows) in sorted(inputs.items(), key=lambda i: i[1][1]):
            if since and time < since:
                continue
            answered = answers.get(key)
            if answered is None or len(answered) != len(rows):
                continue  # outputs not collected (yet), or not one per row
            model_of = (serving or {}).get(deployment, model or "")
            yield CollectedRecord(key, time, f"{endpoint}/{deployment}", model_of, rows, answered)

    def _serving(self, endpoint: str, model: str | None) -> dict[str, str] | None:
        """Deployment -> model, for the deployments now serving model (None: any)."""
        if not model:
            return None
        live = self.get_endpoint(endpoint)
        return {
            d.name: d.model for d in (live.deployments if live else {}).values() if d.model == model
        }

    def _collected_blobs(
        self,
        endpoint: str,
        collection: str,
        serving: dict[str, str] | None,
        since: datetime | None,
    ):
        from azure.core.exceptions import HttpResponseError
        from azure.storage.blob import ContainerClient

        store = self.ml.datastores.get_default()
        container = ContainerClient(
            f"https://{store.account_name}.blob.{store.endpoint}",
            store.container_name,
            credential=self.credential,
            **self._client_options,
        )
        hour = f"{clock.utc(since):%Y/%m/%d/%H}" if since else ""  # the collector's folders: UTC
        marker = f"/{collection}/"
        try:
            names = sorted(
                blob.name
                for blob in container.list_blobs(name_starts_with=f"modelDataCollector/{endpoint}/")
                if marker in blob.name
                and blob.name.endswith(".jsonl")
                and (serving is None or blob.name.split("/")[2] in serving)
                and blob.name.split(marker)[1][:13] >= hour
            )
        except HttpResponseError as failure:
            if failure.status_code != 403:
                raise
            raise MlopsError(
                f"this identity may not read blobs in storage account {store.account_name} "
                f"({failure.error_code}): it needs a Storage Blob Data role there, e.g. "
                "Storage Blob Data Reader (infra/mlops_infra/access.py)"
            ) from None
        return container, names


def _lines(container, name: str) -> Iterator[bytes]:
    pending = b""
    for chunk in container.download_blob(name).chunks():
        *lines, pending = (pending + chunk).split(b"\n")
        yield from (line for line in lines if line.strip())
    if pending.strip():
        yield pending


def _parsed(line: bytes) -> dict:
    found = json.loads(line)
    return found if isinstance(found, dict) else {}


def _rows_of(found: dict) -> Iterator[dict]:
    data = found.get("data")
    if isinstance(data, str):  # some collector versions nest the records as a JSON string
        data = json.loads(data)
    yield from data if isinstance(data, list) else [data] if isinstance(data, dict) else []


def _by_request(rows: Iterator[dict], line_id: str) -> dict[str, list[dict]]:
    """A line's rows by the request each came from: its id column, else the line's id."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        if not isinstance(row, dict):
            raise ValueError("a collected row is not an object")
        grouped.setdefault(str(row.pop(ID_COLUMN, None) or line_id), []).append(row)
    return grouped


def _time_of(found: dict) -> datetime | None:
    """The line's `time`: ISO 8601 in the documented sample, seconds since the epoch as the
    SDK sends it (ce-time); None when neither."""
    value = found.get("time")
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            return clock.parse(value)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def _hour_of(name: str, collection: str) -> datetime:
    """The hour folder a blob sits in (YYYY/MM/DD/HH), the time of a line without its own."""
    try:
        return datetime.strptime(name.split(f"/{collection}/")[1][:13], "%Y/%m/%d/%H").replace(
            tzinfo=UTC
        )
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
