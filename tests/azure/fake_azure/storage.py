"""Blob storage of each workspace: SAS and account-key uploads, Entra reads checked by role.

Rules, each from its source:
- a request signed with a SAS (sig=...) or the account key (SharedKey) is authorised by
  that signature; one with an Entra token needs a Storage Blob Data role: control-plane
  roles (Reader, Contributor, AzureML Data Scientist) grant no blob data access (docs:
  learn.microsoft.com/azure/storage/blobs/assign-azure-role-data-access).
- refused, storage answers 403 with x-ms-error-code AuthorizationPermissionMismatch
  (docs: learn.microsoft.com/rest/api/storageservices/blob-service-error-codes).
- a Put Blob request (no comp=) carries the whole blob, kept for later reads (docs:
  learn.microsoft.com/rest/api/storageservices/put-blob); block lists are not modelled.
- a ranged read is answered 206 with Content-Range (docs: rest/api/storageservices/
  specifying-the-range-header-for-blob-service-operations).
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime

from .http import Reply
from .identity import Identity, access, allowed


def account_of(workspace: str) -> str:
    """Each workspace has its own storage account (infra: one per environment)."""
    return "st" + "".join(c for c in workspace if c.isalnum())[-16:]


def collector_blob(
    endpoint: str, deployment: str, collection: str, hour: datetime, name: str = "part.jsonl"
) -> str:
    """Where Azure ML's data collector writes a deployment's collection in the given hour:
    modelDataCollector/<endpoint>/<deployment>/<collection>/YYYY/MM/DD/HH/<file> in the
    workspace blob store (Learn: how-to-collect-production-data; the hourly folders are the
    REST spec's DataCollector.rollingRate "Hour"). The docs do not name the zone: UTC, as the
    monitor reads it (src/mlops/backends/azure/collected.py), is our assumption."""
    folder = f"{hour.astimezone(UTC):%Y/%m/%d/%H}"
    return (
        f"azureml-blobstore/modelDataCollector/{endpoint}/{deployment}/{collection}/{folder}/{name}"
    )


class Storage:
    def blob(self, host: str, call) -> Reply:
        account = host.split(".")[0]
        refusal = self._blob_refusal(account, call)
        if refusal:
            return refusal
        if call.method == "PUT":
            if not call.query.get("comp"):  # Put Blob: one request holds the whole blob
                body = call.body if isinstance(call.body, bytes) else str(call.body).encode()
                self.blobs[urllib.parse.unquote(call.path.lstrip("/"))] = body
            return Reply(200 if call.query.get("comp") == "metadata" else 201)
        if call.query.get("comp") == "list":
            return self._list(account, call)
        key = urllib.parse.unquote(call.path.lstrip("/"))
        if call.method == "GET" and key in self.blobs:
            data = self.blobs[key]
            asked = call.headers.get("x-ms-range") or call.headers.get("range")
            if not asked:
                return Reply(200, data, kind="application/octet-stream")
            first, last = (int(x) for x in asked.removeprefix("bytes=").split("-"))
            last = min(last, len(data) - 1)
            return Reply(
                206,
                data[first : last + 1],
                {"content-range": f"bytes {first}-{last}/{len(data)}"},
                "application/octet-stream",
            )
        return Reply(404, b"")

    def _blob_refusal(self, account: str, call) -> Reply | None:
        if "sig" in call.query or (call.headers.get("authorization") or "").startswith("SharedKey"):
            return None
        identity = Identity.from_header(call.headers.get("authorization"))
        env = self.storage_env.get(account)
        action = "blob-read" if call.method in ("GET", "HEAD") else "blob-write"
        if identity and allowed(identity, action, access.STORAGE, env, self.extra_grants(identity)):
            return None
        body = (
            b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch'
            b"</Code><Message>This request is not authorized to perform this operation using "
            b"this permission.</Message></Error>"
        )
        return Reply(
            403, body, {"x-ms-error-code": "AuthorizationPermissionMismatch"}, "application/xml"
        )

    def _list(self, account: str, call) -> Reply:
        container = call.path.strip("/")
        prefix = f"{container}/{call.query.get('prefix', '')}"
        start = len(container) + 1
        items = "".join(
            f"<Blob><Name>{key[start:]}</Name><Properties>"
            f"<Content-Length>{len(data)}</Content-Length><BlobType>BlockBlob</BlobType>"
            "</Properties></Blob>"
            for key, data in sorted(self.blobs.items())
            if key.startswith(prefix)
        )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?><EnumerationResults '
            f'ServiceEndpoint="https://{account}.blob.core.windows.net/" ContainerName="{container}">'
            f"<Prefix>{call.query.get('prefix', '')}</Prefix><Blobs>{items}</Blobs><NextMarker />"
            "</EnumerationResults>"
        )
        return Reply(200, xml.encode(), kind="application/xml")

    def datastore(self, path: str, listing: bool) -> Reply:
        base = path if listing else path.rsplit("/", 1)[0]
        workspace = base.split("/workspaces/")[1].split("/")[0]
        store = {
            "id": f"{base}/workspaceblobstore",
            "name": "workspaceblobstore",
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": account_of(workspace),
                "containerName": "azureml-blobstore",
                "endpoint": "core.windows.net",
                "protocol": "https",
                "credentials": {"credentialsType": "AccountKey"},
                "isDefault": True,
            },
        }
        return Reply(200, {"value": [store]} if listing else store)
