"""Azure's own recorded traffic, as the tests keep it: trimmed exchanges from the azure-ai-ml
SDK's end-to-end recordings (Azure/azure-sdk-assets, python/sdk/ml/azure-ai-ml/tests/
recordings/), with no credential left in them.

A recording file names its source (repository, path, commit) and keeps, per exchange, the
method, the URI with its api-version only, the status, the long-running-operation headers and
the answer's fields the SDK or our code reads. `scrub` is what trims one; `leaks` is what the
suite runs on every file kept, so a token or key cannot be committed by hand either.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

FOLDER = Path(__file__).parent / "recordings"
ASSETS = "Azure/azure-sdk-assets"
RECORDINGS = "python/sdk/ml/azure-ai-ml/tests/recordings/"

# The response headers a poller or our code reads; every other header is dropped.
KEPT_HEADERS = ("Azure-AsyncOperation", "Location", "Retry-After", "azureml-model-deployment")
# Body fields that hold a secret whatever their value: replaced, never kept.
SECRET_FIELDS = re.compile(
    r"^(key|primaryKey|secondaryKey|accessToken|token|sasUri|sasToken|password|secret|"
    r"connectionString|credential)$",
    re.I,
)
REDACTED = "<redacted>"

# Anything shaped like a credential: a JWT (an Entra token: base64url JSON header "eyJ"), a
# bearer header, a SAS signature or the signed query of an ARM operation URL (c=, s=, h=),
# a storage account key or connection string, a long run of base64.
LEAK_SHAPES = {
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "bearer": re.compile(r"bearer\s+[A-Za-z0-9._~+/-]{16,}", re.I),
    "SAS signature": re.compile(r"[?&]sig=", re.I),
    "signed operation URL": re.compile(r"[?&](?:c|s|h)=[A-Za-z0-9_%-]{16,}"),
    "account key": re.compile(r"AccountKey\s*=", re.I),
    # padded base64 (a storage key ends in ==), or a long unbroken run of it (no "/" so a
    # resource path is not one, and not all lower-case hex so a commit id is not one)
    "base64 key": re.compile(
        r"[A-Za-z0-9+/]{20,}={1,2}(?![A-Za-z0-9])|(?<![A-Za-z0-9+])(?![0-9a-f]+\b)[A-Za-z0-9+]{40,}"
    ),
    "secret field": re.compile(
        r'"(?:key|primaryKey|secondaryKey|accessToken|sasUri|sasToken|password)"\s*:\s*'
        r'"(?!<redacted>")[^"]+"',
        re.I,
    ),
}


def leaks(text: str) -> list[str]:
    """The kinds of credential-shaped text found, empty when there is none."""
    return sorted(kind for kind, shape in LEAK_SHAPES.items() if shape.search(text))


def clean_uri(uri: str) -> str:
    """A URI with only its api-version left in the query (SAS and operation signatures go)."""
    parts = urllib.parse.urlsplit(uri)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k == "api-version"]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _clean_body(value: object) -> object:
    if isinstance(value, dict):
        return {
            k: REDACTED if SECRET_FIELDS.match(k) and v else _clean_body(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_clean_body(v) for v in value]
    if isinstance(value, str):
        if value.startswith("https://"):
            value = clean_uri(value)
        return REDACTED if leaks(value) else value
    return value


def scrub(entry: dict) -> dict:
    """One exchange as kept: request headers (Authorization among them) dropped, URIs with no
    signature, only the headers in KEPT_HEADERS, secret fields redacted."""
    headers = entry.get("ResponseHeaders") or entry.get("headers") or {}
    return {
        "operation": entry.get("operation", ""),
        "method": entry.get("RequestMethod") or entry["method"],
        "uri": clean_uri(entry.get("RequestUri") or entry["uri"]),
        "status": entry.get("StatusCode") or entry["status"],
        "headers": {k: clean_uri(v) for k, v in headers.items() if k in KEPT_HEADERS},
        "body": _clean_body(entry["ResponseBody"] if "ResponseBody" in entry else entry["body"]),
    }


def load(name: str) -> dict:
    return json.loads((FOLDER / f"{name}.json").read_text())


def entries(recording: dict, operation: str) -> list[dict]:
    return [e for e in recording["entries"] if e["operation"] == operation]


def field(body: object, dotted: str) -> object:
    """body["a"]["b"] for "a.b"; KeyError when a step is missing."""
    for step in dotted.split("."):
        body = body[step]  # type: ignore[index]
    return body
