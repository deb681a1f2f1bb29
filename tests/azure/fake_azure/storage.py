"""Blob storage of each workspace, as our infra configures it: shared keys off, Entra only.

Rules, each from its source:
- a workspace's storage account refuses Shared Key, and any SAS signed with the account key,
  with 403 KeyBasedAuthenticationNotPermitted; a user delegation SAS (signed with an Entra
  key: skoid/sktid) still works (docs: learn.microsoft.com/azure/storage/common/shared-key-
  authorization-prevent, "Understand how disallowing Shared Key affects SAS tokens"; infra:
  storage_accounts.py allow_shared_key_access=False). Only SAS the double issued are valid.
- a request with an Entra token needs a Storage Blob Data role on the account (or above):
  control-plane roles (Reader, Contributor, AzureML Data Scientist) grant no blob data access
  (docs: learn.microsoft.com/azure/storage/blobs/assign-azure-role-data-access).
- refused, storage answers 403 with x-ms-error-code AuthorizationPermissionMismatch
  (docs: learn.microsoft.com/rest/api/storageservices/blob-service-error-codes).
- workspaceblobstore is identity-based (credentialsType None): infra sets
  system_datastores_auth_mode "Identity" (environment.py), so the SDK skips listSecrets and
  sends the caller's own token (azure/ai/ml/_artifacts/_artifact_utilities.py,
  get_datastore_info: NoneCredentialConfiguration -> operations._credential).
- a Put Blob request (no comp=) carries the whole blob, kept for later reads (docs:
  learn.microsoft.com/rest/api/storageservices/put-blob); block lists are not modelled.
- a ranged read is answered 206 with Content-Range (docs: rest/api/storageservices/
  specifying-the-range-header-for-blob-service-operations).
"""

from __future__ import annotations

import itertools
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


_signatures = itertools.count(1)
_NO_KEYS = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>KeyBasedAuthenticationNotPermitted'
    b"</Code><Message>Key based authentication is not permitted on this storage account."
    b"</Message></Error>"
)


class Storage:
    def user_delegation_sas(self, url: str) -> str:
        """A SAS as the service issues it for a container: signed with a user delegation key
        (skoid, sktid), so a keys-off account accepts it. Which kind Azure ML issues for code
        snapshots (startPendingUpload) is not documented; a key-signed one would fail on our
        accounts, so this is the only kind that can work there (our reading)."""
        account, container = url.split("//")[1].split(".")[0], url.split("/")[3]
        sig = f"udk{next(_signatures)}"
        self.issued_sas[sig] = f"{account}/{container}"
        return (
            f"{url}?skoid=00000000-0000-0000-0000-0000000000ab&sktid=tenant&sr=c&sp=racwl&sig={sig}"
        )

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
        if "modelDataCollector" in urllib.parse.unquote(call.url):
            self.write_collected()  # what the collector merged so far is written (collector.py)
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
        keys_off = account in self.storage_env  # our workspaces' accounts (infra: no keys)
        if "sig" in call.query:
            if keys_off and "skoid" not in call.query:  # a key-signed SAS (docs, see above)
                return Reply(
                    403,
                    _NO_KEYS,
                    {"x-ms-error-code": "KeyBasedAuthenticationNotPermitted"},
                    "application/xml",
                )
            container = call.path.lstrip("/").split("/")[0]
            if self.issued_sas.get(call.query["sig"]) == f"{account}/{container}":
                return None
            return Reply(403, b"", {"x-ms-error-code": "AuthenticationFailed"}, "application/xml")
        if (call.headers.get("authorization") or "").startswith("SharedKey"):
            if keys_off:  # docs shared-key-authorization-prevent: 403 once keys are off
                return Reply(
                    403,
                    _NO_KEYS,
                    {"x-ms-error-code": "KeyBasedAuthenticationNotPermitted"},
                    "application/xml",
                )
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
                # identity-based (see the module's note): REST NoneDatastoreCredentials
                "credentials": {"credentialsType": "None"},
                "isDefault": True,
            },
        }
        return Reply(200, {"value": [store]} if listing else store)
