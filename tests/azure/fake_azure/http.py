"""The wire: recorded requests, and responses built the way azure-core's requests transport does."""

from __future__ import annotations

import io
import json
import urllib.parse
from dataclasses import dataclass

import requests
from azure.core.pipeline.transport import RequestsTransportResponse
from azure.core.rest import HttpRequest as RestRequest
from azure.core.rest._requests_basic import RestRequestsTransportResponse


@dataclass
class Call:
    method: str
    url: str
    path: str
    query: dict
    headers: dict
    body: object
    reply: Reply | None = None  # the double's answer, for tests that hold it against Azure's

    def json(self) -> dict:
        return self.body if isinstance(self.body, dict) else {}

    @staticmethod
    def of(request) -> Call:
        url = urllib.parse.urlsplit(request.url)
        raw = request.content if isinstance(request, RestRequest) else request.body
        headers = {k.lower(): v for k, v in request.headers.items()}
        return Call(
            request.method,
            request.url,
            url.path,
            dict(urllib.parse.parse_qsl(url.query)),
            headers,
            decode(raw),
        )


def decode(raw) -> object:
    if raw is None:
        return None
    if isinstance(raw, bytes | bytearray):
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return bytes(raw)
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    if hasattr(raw, "read"):
        return decode(raw.read())
    return raw


@dataclass
class Reply:
    status: int
    body: object = b""  # a dict (JSON) or bytes
    headers: dict | None = None
    kind: str = "application/json"


def response(request, reply: Reply):
    content = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
    raw = requests.Response()
    raw.status_code = reply.status
    raw._content = content
    raw._content_consumed = True
    raw.raw = io.BytesIO(content)
    raw.headers["content-type"] = reply.kind
    raw.headers["content-length"] = str(len(content))
    raw.headers.update(reply.headers or {})
    raw.request = requests.Request(request.method, request.url).prepare()
    raw.url = request.url
    if isinstance(request, RestRequest):
        return RestRequestsTransportResponse(request=request, internal_response=raw)
    return RequestsTransportResponse(request, raw)


def error(status: int, code: str, message: str) -> Reply:
    """ARM's error body (REST spec: common-types ErrorResponse {error: {code, message}})."""
    return Reply(status, {"error": {"code": code, "message": message}})


def not_found(path: str) -> Reply:
    return error(404, "ResourceNotFound", f"{path} was not found")
