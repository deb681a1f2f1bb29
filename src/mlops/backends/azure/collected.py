"""Collected data on Azure ML: the data collector's model inputs, read from the workspace's
default blob store for the monitor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from mlops.errors import MlopsError


class AzureCollected:
    """The collected data part of AzureBackend (which provides ml, credential, _client_options
    and get_endpoint)."""

    def collected_rows(
        self, endpoint: str, model: str | None = None, since: datetime | None = None
    ) -> Iterator[dict[str, float]]:
        """Stream the data collector's model_inputs, blob by blob, chunk by chunk.

        The collector writes JSON Lines under modelDataCollector/<endpoint>/<deployment>/
        model_inputs/YYYY/MM/DD/HH/ in the workspace's default blob store; each
        line's `data` holds the collected rows. model keeps the blobs of the deployments
        now serving it; since keeps the hours from its hour on."""
        from azure.storage.blob import ContainerClient

        store = self.ml.datastores.get_default()
        container = ContainerClient(
            f"https://{store.account_name}.blob.{store.endpoint}",
            store.container_name,
            credential=self.credential,
            **self._client_options,
        )
        serving = None
        if model:
            live = self.get_endpoint(endpoint)
            serving = {
                d.name for d in (live.deployments if live else {}).values() if d.model == model
            }
        hour = f"{since:%Y/%m/%d/%H}" if since else ""
        from azure.core.exceptions import HttpResponseError

        try:
            names = sorted(
                blob.name
                for blob in container.list_blobs(name_starts_with=f"modelDataCollector/{endpoint}/")
                if "/model_inputs/" in blob.name
                and blob.name.endswith(".jsonl")
                and (serving is None or blob.name.split("/")[2] in serving)
                and blob.name.split("/model_inputs/")[1][:13] >= hour
            )
        except HttpResponseError as failure:
            if failure.status_code != 403:
                raise
            raise MlopsError(
                f"this identity may not read blobs in storage account {store.account_name} "
                f"({failure.error_code}): it needs a Storage Blob Data role there, e.g. "
                "Storage Blob Data Reader (infra/mlops_infra/access.py)"
            ) from None
        for name in names:
            pending = b""
            for chunk in container.download_blob(name).chunks():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    yield from _collected_inputs(line)
            yield from _collected_inputs(pending)


def _collected_inputs(line: bytes) -> Iterator[dict[str, float]]:
    if not line.strip():
        return
    data = json.loads(line).get("data")
    if isinstance(data, str):  # some collector versions nest the records as a JSON string
        data = json.loads(data)
    yield from data if isinstance(data, list) else [data] if isinstance(data, dict) else []
